// Reads of the community projection's state (community.h).
#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "common/time_math.h"
#include "projections/community/community.h"
#include "projections/community/state.h"
#include "projections/packed_record.h"
#include "schema/community.capnp.h"

namespace ihs::projections::community {

namespace {

template <typename T, typename Decode>
absl::StatusOr<std::optional<T>> Load(const StateView& view, const std::string& key,
                                      Decode decode) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, view.Get(key));
  if (!v) return std::nullopt;
  IHS_ASSIGN_OR_RETURN(T t, decode(*v));
  return t;
}

// The keys under `prefix`, without it.
absl::StatusOr<std::vector<std::string>> KeysUnder(const StateView& view,
                                                   const std::string& prefix) {
  std::vector<std::string> out;
  IHS_RETURN_IF_ERROR(
      view.Scan(prefix, PrefixEnd(prefix), [&](absl::string_view key, absl::string_view) {
        out.emplace_back(key.substr(prefix.size()));
        return true;
      }));
  return out;
}

struct PersonFigures {
  std::string id;
  std::vector<std::string> streams;
  std::vector<StreamRec> records;  // per stream
  uint64_t reach = 0;
  double standing = 0, value = 0, risk = 0;
  uint32_t waited = 0, went_public = 0;
};

// The person of `party` and their streams' records; nullopt: the log has no such stream.
absl::StatusOr<std::optional<PersonFigures>> FiguresOf(const StateView& view,
                                                       const std::string& party) {
  IHS_ASSIGN_OR_RETURN(auto s, Load<StreamRec>(view, StreamKey(party), DecodeStream));
  if (!s) return std::nullopt;
  PersonFigures f;
  f.id = s->person.empty() ? party : s->person;
  if (s->person.empty()) {
    f.streams = {party};
    f.records = {*s};
    f.reach = s->reach;
    f.standing = s->standing;
    f.value = s->value;
    f.risk = s->risk;
    f.waited = s->waited;
    f.went_public = s->went_public;
    return f;
  }
  IHS_ASSIGN_OR_RETURN(auto p, Load<PersonRec>(view, PersonKey(f.id), DecodePerson));
  if (!p) return absl::DataLossError("community: a stream names a missing person");
  f.streams = p->streams;
  f.reach = p->reach;
  f.standing = p->standing;
  f.value = p->value;
  f.risk = p->risk;
  f.waited = p->waited;
  f.went_public = p->went_public;
  for (const std::string& st : f.streams) {
    IHS_ASSIGN_OR_RETURN(auto r, Load<StreamRec>(view, StreamKey(st), DecodeStream));
    f.records.push_back(r ? *r : StreamRec{});
  }
  return f;
}

PostFigures Figures(const PostRec& p) {
  PostFigures f;
  f.audience = p.audience;
  f.cascade = p.cascade;
  f.direct = p.direct;
  f.depth = p.depth;
  f.retracted = p.retracted;
  return f;
}

struct Place {
  uint64_t rank = 0;
  double percentile = 0;
};

// The place of `key` in the index under `prefix` of `of` keys: the keys ahead of it (cost: the
// rank), and the share of the index below it, in percent.
absl::StatusOr<Place> PlaceIn(const StateView& view, const std::string& prefix,
                              const std::string& key, uint64_t of) {
  uint64_t ahead = 0;
  IHS_RETURN_IF_ERROR(view.Scan(prefix, key, [&](absl::string_view, absl::string_view) {
    ++ahead;
    return true;
  }));
  Place p;
  p.rank = ahead + 1;
  p.percentile = of <= ahead ? 0 : 100.0 * static_cast<double>(of - ahead - 1) / of;
  return p;
}

}  // namespace

absl::StatusOr<Counters> LoadCounters(const StateView& view) {
  IHS_ASSIGN_OR_RETURN(auto c, Load<Counters>(view, kCountersKey, DecodeCounters));
  return c ? *c : Counters{};
}

absl::Status ReadCard(const StateView& view, const std::string& party, int64_t as_of,
                      capnp::MessageBuilder& out) {
  IHS_ASSIGN_OR_RETURN(auto figures, FiguresOf(view, party));
  if (!figures) return absl::NotFoundError(absl::StrCat("no stream '", party, "' in the log"));
  const PersonFigures& f = *figures;
  auto card = out.initRoot<schema::CommunityCard>();
  card.setPerson(f.id);
  auto streams = card.initStreams(static_cast<unsigned>(f.streams.size()));
  for (size_t i = 0; i < f.streams.size(); ++i) streams.set(i, f.streams[i]);
  card.setAsOf(as_of);
  card.setReach(f.reach);
  const int32_t today = UtcDayOf(as_of);
  uint64_t recent = 0, carried = 0, reactions = 0, anonymous = 0;
  uint32_t posts = 0, depth = 0, erased = 0;
  for (const StreamRec& r : f.records) {
    for (const auto& [day, reach] : r.days) {
      if (day > today - kRecentDays && day <= today) recent += reach;
    }
    posts += r.posts;
    carried += r.carried;
    reactions += r.reactions;
    depth = std::max(depth, r.max_depth);
    erased += r.erased;
    anonymous += r.anonymous_in;
  }
  card.setReach90d(recent);
  card.setPosts(posts);
  card.setCarried(carried);
  card.setReactions(reactions);
  card.setMaxDepth(depth);
  card.setErasedStreams(erased);
  card.setAnonymousIn(anonymous);

  // Rank: the persons ahead in the index (cost: the rank).
  IHS_ASSIGN_OR_RETURN(Counters counters, LoadCounters(view));
  card.setPersons(counters.persons);
  if (f.reach > 0) {
    IHS_ASSIGN_OR_RETURN(const Place place,
                         PlaceIn(view, "R", RankKey(f.reach, f.id), counters.persons));
    card.setRank(place.rank);
    card.setPercentile(place.percentile);
  }
  card.setStanding(f.standing);
  card.setGraphPersons(counters.standing_persons);
  if (StandingKey(f.standing, f.id) != StandingKey(0, f.id)) {
    IHS_ASSIGN_OR_RETURN(const Place place, PlaceIn(view, "Q", StandingKey(f.standing, f.id),
                                                    counters.standing_persons));
    card.setStandingRank(place.rank);
    card.setStandingPercentile(place.percentile);
  }

  card.setValue(f.value);
  card.setValuePersons(counters.value_persons);
  if (ValueKey(f.value, f.id) != ValueKey(0, f.id)) {
    IHS_ASSIGN_OR_RETURN(const Place place,
                         PlaceIn(view, "V", ValueKey(f.value, f.id), counters.value_persons));
    card.setValueRank(place.rank);
    card.setValuePercentile(place.percentile);
  }

  card.setRisk(f.risk);
  card.setRiskPersons(counters.risk_persons);
  card.setWaited(f.waited);
  card.setWentPublic(f.went_public);
  card.setPublicChance(PublicChance(f.waited, f.went_public));
  uint64_t own = 0, carried_audience = 0;
  for (const StreamRec& r : f.records) {
    own = std::max(own, r.own_audience);
    carried_audience += r.carried_audience;
  }
  card.setOwnAudience(own);
  card.setCarriedAudience(carried_audience);
  if (RiskKey(f.risk, f.id) != RiskKey(0, f.id)) {
    IHS_ASSIGN_OR_RETURN(const Place place,
                         PlaceIn(view, "K", RiskKey(f.risk, f.id), counters.risk_persons));
    card.setRiskRank(place.rank);
    card.setRiskPercentile(place.percentile);
  }

  // Evidence: the original posts that reached most, and who carried them most.
  std::vector<std::pair<std::string, PostRec>> originals;
  std::map<std::string, EdgeRec> carriers;
  for (const std::string& st : f.streams) {
    IHS_ASSIGN_OR_RETURN(auto ids, KeysUnder(view, AuthoredPrefix(st)));
    for (const std::string& id : ids) {
      IHS_ASSIGN_OR_RETURN(auto p, Load<PostRec>(view, PostKey(id), DecodePost));
      if (p && p->depth == 0) originals.emplace_back(id, *p);
    }
    const std::string in = EdgePrefix(st);
    IHS_RETURN_IF_ERROR(
        view.Scan(in, PrefixEnd(in), [&](absl::string_view key, absl::string_view value) {
          auto e = DecodeEdge(value);
          if (!e.ok()) return false;
          EdgeRec& sum = carriers[std::string(key.substr(in.size()))];
          sum.shares += e->shares;
          sum.mentions += e->mentions;
          sum.likes += e->likes;
          sum.other += e->other;
          sum.follows += e->follows;
          return true;
        }));
  }
  // Those that count first; retracted ones after, with what they had reached.
  std::sort(originals.begin(), originals.end(), [](const auto& a, const auto& b) {
    if (a.second.retracted != b.second.retracted) return b.second.retracted;
    return a.second.cascade != b.second.cascade ? a.second.cascade > b.second.cascade
                                                : a.first < b.first;
  });
  if (originals.size() > kEvidence) originals.resize(kEvidence);
  auto top = card.initTopPosts(static_cast<unsigned>(originals.size()));
  for (size_t i = 0; i < originals.size(); ++i) {
    const PostRec& p = originals[i].second;
    auto e = top[i];
    e.setId(AsData(originals[i].first));
    e.setStream(p.author);
    e.setOccurredAt(p.occurred_at);
    e.setType(p.type);
    e.setChannel(p.channel);
    e.setAudience(p.audience);
    e.setCascade(p.cascade);
    e.setCarries(p.carries);
    e.setRetracted(p.retracted);
  }
  std::vector<std::pair<std::string, EdgeRec>> ranked(carriers.begin(), carriers.end());
  for (const std::string& st : f.streams) {  // a person's own streams carrying each other
    ranked.erase(
        std::remove_if(ranked.begin(), ranked.end(), [&](const auto& c) { return c.first == st; }),
        ranked.end());
  }
  auto weight = [](const EdgeRec& e) { return e.shares + e.mentions; };
  std::sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
    if (weight(a.second) != weight(b.second)) return weight(a.second) > weight(b.second);
    if (a.second.total() != b.second.total()) return a.second.total() > b.second.total();
    return a.first < b.first;
  });
  if (ranked.size() > kEvidence) ranked.resize(kEvidence);
  auto list = card.initCarriers(static_cast<unsigned>(ranked.size()));
  for (size_t i = 0; i < ranked.size(); ++i) {
    list[i].setStream(ranked[i].first);
    list[i].setShares(ranked[i].second.shares);
    list[i].setMentions(ranked[i].second.mentions);
    list[i].setLikes(ranked[i].second.likes);
    list[i].setOther(ranked[i].second.other);
    list[i].setFollows(ranked[i].second.follows);
  }
  return absl::OkStatus();
}

TopBy TopByOf(schema::CommunityRank rank) {
  switch (rank) {
    case schema::CommunityRank::STANDING:
      return TopBy::kStanding;
    case schema::CommunityRank::VALUE:
      return TopBy::kValue;
    case schema::CommunityRank::RISK:
      return TopBy::kRisk;
    default:
      return TopBy::kReach;
  }
}

absl::Status ReadTop(const StateView& view, size_t n, TopBy by, capnp::MessageBuilder& out) {
  if (n == 0 || n > kMaxTop) {
    return absl::InvalidArgumentError(absl::StrCat("--n must be 1 to ", kMaxTop, ", not ", n));
  }
  std::vector<std::string> persons;
  const std::string index = by == TopBy::kStanding ? "Q"
                            : by == TopBy::kValue  ? "V"
                            : by == TopBy::kRisk   ? "K"
                                                   : "R";
  IHS_RETURN_IF_ERROR(
      view.Scan(index, PrefixEnd(index), [&](absl::string_view key, absl::string_view) {
        persons.emplace_back(key.substr(9));
        return persons.size() < n;
      }));
  IHS_ASSIGN_OR_RETURN(Counters counters, LoadCounters(view));
  auto top = out.initRoot<schema::CommunityTop>();
  top.setBy(by == TopBy::kStanding ? schema::CommunityRank::STANDING
            : by == TopBy::kValue  ? schema::CommunityRank::VALUE
            : by == TopBy::kRisk   ? schema::CommunityRank::RISK
                                   : schema::CommunityRank::REACH);
  top.setPersons(counters.persons);
  top.setStandingPersons(counters.standing_persons);
  top.setValuePersons(counters.value_persons);
  top.setRiskPersons(counters.risk_persons);
  auto c = top.initCounters();
  c.setPersons(counters.persons);
  c.setUnknownTargets(counters.unknown_targets);
  c.setTooDeep(counters.too_deep);
  c.setDeadCarries(counters.dead_carries);
  c.setAnonymousEdges(counters.anonymous_edges);
  c.setForeignRetractions(counters.foreign_retractions);
  c.setNodes(counters.nodes);
  c.setPushes(counters.pushes);
  c.setCappedEvents(counters.capped_events);
  c.setStandingPersons(counters.standing_persons);
  c.setValuePersons(counters.value_persons);
  c.setRiskPersons(counters.risk_persons);
  auto entries = top.initEntries(static_cast<unsigned>(persons.size()));
  for (size_t i = 0; i < persons.size(); ++i) {
    IHS_ASSIGN_OR_RETURN(auto f, FiguresOf(view, persons[i]));
    if (!f) return absl::DataLossError("community: the rank names a missing stream");
    auto e = entries[i];
    e.setPerson(f->id);
    e.setReach(f->reach);
    e.setStanding(f->standing);
    e.setValue(f->value);
    e.setRisk(f->risk);
    uint32_t posts = 0, depth = 0;
    uint64_t carried = 0;
    for (const StreamRec& r : f->records) {
      posts += r.posts;
      carried += r.carried;
      depth = std::max(depth, r.max_depth);
    }
    e.setPosts(posts);
    e.setCarried(carried);
    e.setMaxDepth(depth);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<PostFigures>> ReadPost(const StateView& view, const std::string& id) {
  IHS_ASSIGN_OR_RETURN(auto p, Load<PostRec>(view, PostKey(id), DecodePost));
  if (!p) return std::nullopt;
  return Figures(*p);
}

absl::Status ForEachPostOf(
    const StateView& view, const std::string& stream,
    const std::function<void(const std::string&, const PostFigures&)>& visit) {
  IHS_ASSIGN_OR_RETURN(auto ids, KeysUnder(view, AuthoredPrefix(stream)));
  for (const std::string& id : ids) {
    IHS_ASSIGN_OR_RETURN(auto p, Load<PostRec>(view, PostKey(id), DecodePost));
    if (p) visit(id, Figures(*p));
  }
  return absl::OkStatus();
}

absl::Status ForEachGraphStream(const StateView& view,
                                const std::function<bool(const GraphStream&)>& visit) {
  absl::Status inner;
  IHS_RETURN_IF_ERROR(view.Scan("S", "T", [&](absl::string_view key, absl::string_view value) {
    auto s = DecodeStream(value);
    if (!s.ok()) {
      inner = s.status();
      return false;
    }
    if (!s->in_graph) return true;
    GraphStream g;
    g.stream = std::string(key.substr(1));
    g.person = s->person.empty() ? g.stream : s->person;
    g.standing = s->standing;
    g.out = std::move(s->out);
    return visit(g);
  }));
  return inner;
}

}  // namespace ihs::projections::community
