#include "projections/community/state.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "projections/packed_record.h"
#include "schema/community.capnp.h"

namespace ihs::projections::community {

namespace {

constexpr char kWhat[] = "community";

std::string Joined(char tag, absl::string_view a, absl::string_view b) {
  return absl::StrCat(absl::string_view(&tag, 1), a, absl::string_view("\0", 1), b);
}

}  // namespace

std::string StreamKey(absl::string_view stream) { return absl::StrCat("S", stream); }
std::string PersonKey(absl::string_view person) { return absl::StrCat("P", person); }
std::string PostKey(absl::string_view id) { return absl::StrCat("T", id); }
std::string AuthoredKey(absl::string_view stream, absl::string_view id) {
  return Joined('A', stream, id);
}
std::string AuthoredPrefix(absl::string_view stream) { return Joined('A', stream, ""); }
std::string EdgeKey(absl::string_view target, absl::string_view source) {
  return Joined('E', target, source);
}
std::string EdgePrefix(absl::string_view target) { return Joined('E', target, ""); }
std::string OutKey(absl::string_view source, absl::string_view target) {
  return Joined('O', source, target);
}
std::string OutPrefix(absl::string_view source) { return Joined('O', source, ""); }
std::string BandKey(absl::string_view clause, absl::string_view party) {
  return Joined('B', clause, party);
}
std::string BandPrefix(absl::string_view clause) { return Joined('B', clause, ""); }
std::string EncodeBand(const BandRec& b) {
  std::string v(1, b.inside ? '\1' : '\0');
  PutBigEndian64(&v, b.count);
  return v;
}
absl::StatusOr<BandRec> DecodeBand(absl::string_view v) {
  if (v.size() != 9 || static_cast<unsigned char>(v[0]) > 1) {
    return absl::DataLossError("community: a band record is not 9 bytes");
  }
  BandRec b;
  b.inside = v[0] == '\1';
  b.count = GetBigEndian64(v.data() + 1);
  return b;
}
std::string RankKey(uint64_t reach, absl::string_view person) {
  std::string k = "R";
  PutBigEndian64(&k, ~reach);
  k.append(person.data(), person.size());
  return k;
}
namespace {

std::string MilliKey(char tag, double x, absl::string_view person) {
  std::string k(1, tag);
  const double milli = std::max(0.0, std::round(x * 1000));
  PutBigEndian64(&k, ~static_cast<uint64_t>(std::min(milli, 1.8e19)));
  k.append(person.data(), person.size());
  return k;
}

}  // namespace

std::string StandingKey(double standing, absl::string_view person) {
  return MilliKey('Q', standing, person);
}
std::string ValueKey(double value, absl::string_view person) {
  return MilliKey('V', value, person);
}
double CommunityValue(uint64_t reach, uint32_t posts, double standing) {
  if (posts == 0) return 0;
  // A person nobody carried, in the graph or not, stands at 1 (their own walk).
  return static_cast<double>(reach) / posts * std::max(1.0, standing);
}
std::string RiskKey(double risk, absl::string_view person) { return MilliKey('K', risk, person); }
double PublicChance(uint32_t waited, uint32_t went_public) {
  return (went_public + 1.0) / (std::max(waited, went_public) + 5.0);
}
double AudienceAtRisk(uint64_t own_audience, uint64_t carried_audience, uint32_t posts) {
  if (posts == 0) return 0;
  return static_cast<double>(own_audience) + static_cast<double>(carried_audience) / posts;
}
std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

std::string EncodeStream(const StreamRec& s) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<schema::CommunityStream>();
  r.setPerson(s.person);
  r.setFirstPosition(s.first_position);
  r.setReach(s.reach);
  r.setPosts(s.posts);
  r.setCarried(s.carried);
  r.setReactions(s.reactions);
  r.setMaxDepth(s.max_depth);
  auto days = r.initDays(static_cast<unsigned>(s.days.size()));
  for (size_t i = 0; i < s.days.size(); ++i) {
    days[i].setDay(s.days[i].first);
    days[i].setReach(s.days[i].second);
  }
  r.setErased(s.erased);
  r.setAnonymousIn(s.anonymous_in);
  r.setStanding(s.standing);
  r.setResidual(s.residual);
  r.setInGraph(s.in_graph);
  auto out = r.initOut(static_cast<unsigned>(s.out.size()));
  for (size_t i = 0; i < s.out.size(); ++i) {
    out[i].setTarget(s.out[i].first);
    out[i].setWeight(s.out[i].second);
  }
  r.setOutTotal(s.out_total);
  r.setValue(s.value);
  r.setWaited(s.waited);
  r.setWentPublic(s.went_public);
  r.setRisk(s.risk);
  r.setIndexedStanding(s.indexed_standing);
  r.setIndexedReach(s.indexed_reach);
  r.setOwnAudience(s.own_audience);
  r.setCarriedAudience(s.carried_audience);
  return Encode(m);
}

absl::StatusOr<StreamRec> DecodeStream(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::CommunityStream>());
  StreamRec s;
  s.person = std::string(View(r.getPerson()));
  s.first_position = r.getFirstPosition();
  s.reach = r.getReach();
  s.posts = r.getPosts();
  s.carried = r.getCarried();
  s.reactions = r.getReactions();
  s.max_depth = r.getMaxDepth();
  for (auto d : r.getDays()) s.days.emplace_back(d.getDay(), d.getReach());
  s.erased = r.getErased();
  s.anonymous_in = r.getAnonymousIn();
  s.standing = r.getStanding();
  s.residual = r.getResidual();
  s.in_graph = r.getInGraph();
  for (auto o : r.getOut()) s.out.emplace_back(View(o.getTarget()), o.getWeight());
  s.out_total = r.getOutTotal();
  s.value = r.getValue();
  s.waited = r.getWaited();
  s.went_public = r.getWentPublic();
  s.risk = r.getRisk();
  s.indexed_standing = r.getIndexedStanding();
  s.indexed_reach = r.getIndexedReach();
  s.own_audience = r.getOwnAudience();
  s.carried_audience = r.getCarriedAudience();
  return s;
}

std::string EncodePost(const PostRec& p) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<schema::CommunityPost>();
  r.setAuthor(p.author);
  r.setRoot(AsData(p.root));
  if (!p.parent.empty()) r.setParent(AsData(p.parent));
  r.setDepth(p.depth);
  r.setAudience(p.audience);
  r.setCascade(p.cascade);
  r.setRetracted(p.retracted);
  r.setOccurredAt(p.occurred_at);
  r.setCarries(p.carries);
  r.setType(p.type);
  r.setChannel(p.channel);
  r.setDirect(p.direct);
  return Encode(m);
}

absl::StatusOr<PostRec> DecodePost(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::CommunityPost>());
  PostRec p;
  p.author = std::string(View(r.getAuthor()));
  p.root = std::string(View(r.getRoot()));
  p.parent = std::string(View(r.getParent()));
  p.depth = r.getDepth();
  p.audience = r.getAudience();
  p.cascade = r.getCascade();
  p.retracted = r.getRetracted();
  p.occurred_at = r.getOccurredAt();
  p.carries = r.getCarries();
  p.type = r.getType();
  p.channel = r.getChannel();
  p.direct = r.getDirect();
  return p;
}

std::string EncodePerson(const PersonRec& p) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<schema::CommunityPerson>();
  auto streams = r.initStreams(static_cast<unsigned>(p.streams.size()));
  for (size_t i = 0; i < p.streams.size(); ++i) streams.set(i, p.streams[i]);
  auto links = r.initLinks(static_cast<unsigned>(p.links.size()));
  for (size_t i = 0; i < p.links.size(); ++i) {
    links[i].setA(p.links[i].first);
    links[i].setB(p.links[i].second);
  }
  r.setReach(p.reach);
  r.setStanding(p.standing);
  r.setPosts(p.posts);
  r.setValue(p.value);
  r.setWaited(p.waited);
  r.setWentPublic(p.went_public);
  r.setRisk(p.risk);
  r.setIndexedStanding(p.indexed_standing);
  r.setIndexedReach(p.indexed_reach);
  return Encode(m);
}

absl::StatusOr<PersonRec> DecodePerson(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::CommunityPerson>());
  PersonRec p;
  for (auto s : r.getStreams()) p.streams.emplace_back(View(s));
  for (auto l : r.getLinks()) p.links.emplace_back(View(l.getA()), View(l.getB()));
  p.reach = r.getReach();
  p.standing = r.getStanding();
  p.posts = r.getPosts();
  p.value = r.getValue();
  p.waited = r.getWaited();
  p.went_public = r.getWentPublic();
  p.risk = r.getRisk();
  p.indexed_standing = r.getIndexedStanding();
  p.indexed_reach = r.getIndexedReach();
  return p;
}

std::string EncodeEdge(const EdgeRec& e) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<schema::CommunityEdge>();
  r.setShares(e.shares);
  r.setMentions(e.mentions);
  r.setLikes(e.likes);
  r.setOther(e.other);
  r.setLastAt(e.last_at);
  r.setFollows(e.follows);
  return Encode(m);
}

absl::StatusOr<EdgeRec> DecodeEdge(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::CommunityEdge>());
  EdgeRec e;
  e.shares = r.getShares();
  e.mentions = r.getMentions();
  e.likes = r.getLikes();
  e.other = r.getOther();
  e.last_at = r.getLastAt();
  e.follows = r.getFollows();
  return e;
}

std::string EncodeCounters(const Counters& c) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<schema::CommunityCounters>();
  r.setPersons(c.persons);
  r.setUnknownTargets(c.unknown_targets);
  r.setTooDeep(c.too_deep);
  r.setDeadCarries(c.dead_carries);
  r.setAnonymousEdges(c.anonymous_edges);
  r.setForeignRetractions(c.foreign_retractions);
  r.setNodes(c.nodes);
  r.setPushes(c.pushes);
  r.setCappedEvents(c.capped_events);
  r.setStandingPersons(c.standing_persons);
  r.setValuePersons(c.value_persons);
  r.setRiskPersons(c.risk_persons);
  return Encode(m);
}

absl::StatusOr<Counters> DecodeCounters(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::CommunityCounters>());
  Counters c;
  c.persons = r.getPersons();
  c.unknown_targets = r.getUnknownTargets();
  c.too_deep = r.getTooDeep();
  c.dead_carries = r.getDeadCarries();
  c.anonymous_edges = r.getAnonymousEdges();
  c.foreign_retractions = r.getForeignRetractions();
  c.nodes = r.getNodes();
  c.pushes = r.getPushes();
  c.capped_events = r.getCappedEvents();
  c.standing_persons = r.getStandingPersons();
  c.value_persons = r.getValuePersons();
  c.risk_persons = r.getRiskPersons();
  return c;
}

}  // namespace ihs::projections::community
