#include "projections/identity/format.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/status_macros.h"
#include "projections/identity/clues.h"
#include "projections/packed_record.h"

namespace ihs::projections::identity {

constexpr char kWhat[] = "identity";

std::string StreamKey(absl::string_view stream) { return absl::StrCat("S", stream); }
std::string PersonKey(absl::string_view person) { return absl::StrCat("P", person); }
std::string MembersKey(absl::string_view clue) { return absl::StrCat("X", clue); }
std::string PairKey(char prefix, absl::string_view a, absl::string_view b) {
  std::string k(1, prefix);
  k.append(a.data(), a.size());
  k.push_back('\0');
  k.append(b.data(), b.size());
  return k;
}
std::pair<std::string, std::string> SplitPairKey(absl::string_view key) {
  const size_t zero = key.find('\0');
  if (zero == absl::string_view::npos) return {std::string(key), ""};
  return {std::string(key.substr(0, zero)), std::string(key.substr(zero + 1))};
}

namespace {

std::string Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
std::string Str(capnp::Data::Reader d) { return std::string(View(d)); }

void FromClue(schema::IdentityClue::Reader r, ClueEvidence* c) {
  c->kind = r.getKind();
  c->weight = r.getWeight();
  for (auto e : r.getEvents()) c->events.push_back(Str(e));
}

}  // namespace

void ToClue(const ClueEvidence& c, schema::IdentityClue::Builder b) {
  b.setKind(c.kind);
  b.setWeight(c.weight);
  auto ev = b.initEvents(static_cast<unsigned>(c.events.size()));
  for (unsigned i = 0; i < c.events.size(); ++i) ev.set(i, AsData(c.events[i]));
}

std::string EncodeNode(const Node& n) {
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::StreamNode>();
  b.setFirstPosition(n.first_position);
  b.setPerson(n.person);
  auto clues = b.initClues(static_cast<unsigned>(n.clues.size()));
  for (unsigned i = 0; i < n.clues.size(); ++i) {
    const StreamClue& c = n.clues[i];
    auto cb = clues[i];
    cb.setKey(AsData(c.key));
    cb.setEvent(AsData(c.event));
    auto cl = cb.initClasses(static_cast<unsigned>(c.classes.size()));
    for (unsigned j = 0; j < c.classes.size(); ++j) cl.set(j, c.classes[j]);
    auto v = cb.initVariants(static_cast<unsigned>(c.variants.size()));
    for (unsigned j = 0; j < c.variants.size(); ++j) v.set(j, c.variants[j]);
  }
  auto partners = b.initPartners(static_cast<unsigned>(n.partners.size()));
  for (unsigned i = 0; i < n.partners.size(); ++i) partners.set(i, n.partners[i]);
  return Encode(m);
}

absl::StatusOr<Node> DecodeNode(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::StreamNode>());
  Node n;
  n.first_position = r.getFirstPosition();
  n.person = Str(r.getPerson());
  for (auto c : r.getClues()) {
    StreamClue sc;
    sc.key = Str(c.getKey());
    if (sc.key.size() != 17)
      return absl::DataLossError("identity state: a clue key is not 17 bytes");
    sc.event = Str(c.getEvent());
    for (uint32_t v : c.getClasses()) sc.classes.push_back(v);
    for (uint64_t v : c.getVariants()) sc.variants.push_back(v);
    n.clues.push_back(std::move(sc));
  }
  for (auto p : r.getPartners()) n.partners.push_back(Str(p));
  return n;
}

std::string EncodePair(const PairRec& p) {
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::PairRecord>();
  auto f = b.initFollowUps(static_cast<unsigned>(p.follow_ups.size()));
  for (unsigned i = 0; i < p.follow_ups.size(); ++i) {
    f[i].setFrom(AsData(p.follow_ups[i].first));
    f[i].setTo(AsData(p.follow_ups[i].second));
  }
  b.setDecision(p.decision);
  b.setScore(p.score);
  b.setState(p.state);
  b.setAt(p.at);
  return Encode(m);
}

absl::StatusOr<PairRec> DecodePair(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::PairRecord>());
  PairRec p;
  for (auto f : r.getFollowUps()) p.follow_ups.emplace_back(Str(f.getFrom()), Str(f.getTo()));
  p.decision = r.getDecision();
  p.score = r.getScore();
  p.state = r.getState();
  p.at = r.getAt();
  return p;
}

void ToPerson(const PersonRec& p, schema::Person::Builder b) {
  b.setId(p.id);
  auto s = b.initStreams(static_cast<unsigned>(p.streams.size()));
  for (unsigned i = 0; i < p.streams.size(); ++i) s.set(i, p.streams[i]);
  auto links = b.initLinks(static_cast<unsigned>(p.links.size()));
  for (unsigned i = 0; i < p.links.size(); ++i) {
    const Link& l = p.links[i];
    auto lb = links[i];
    lb.setA(l.a);
    lb.setB(l.b);
    lb.setEventId(AsData(l.event_id));
    lb.setPosition(l.position);
    lb.setInferred(l.inferred);
    lb.setConfidence(l.confidence);
    lb.setReason(l.reason);
    auto clues = lb.initClues(static_cast<unsigned>(l.clues.size()));
    for (unsigned j = 0; j < l.clues.size(); ++j) ToClue(l.clues[j], clues[j]);
  }
}

std::string EncodePerson(const PersonRec& p) {
  capnp::MallocMessageBuilder m;
  ToPerson(p, m.initRoot<schema::Person>());
  return Encode(m);
}

absl::StatusOr<PersonRec> DecodePerson(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::Person>());
  PersonRec p;
  p.id = Str(r.getId());
  for (auto s : r.getStreams()) p.streams.push_back(Str(s));
  for (auto l : r.getLinks()) {
    Link k;
    k.a = Str(l.getA());
    k.b = Str(l.getB());
    k.event_id = Str(l.getEventId());
    k.position = l.getPosition();
    k.inferred = l.getInferred();
    k.confidence = l.getConfidence();
    k.reason = Str(l.getReason());
    for (auto c : l.getClues()) FromClue(c, &k.clues.emplace_back());
    p.links.push_back(std::move(k));
  }
  return p;
}

std::string EncodeMembers(const Members& m) {
  capnp::MallocMessageBuilder mb;
  auto b = mb.initRoot<schema::ClueMembers>();
  auto s = b.initStreams(static_cast<unsigned>(m.streams.size()));
  for (unsigned i = 0; i < m.streams.size(); ++i) s.set(i, m.streams[i]);
  b.setCount(m.count);
  return Encode(mb);
}

absl::StatusOr<Members> DecodeMembers(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::ClueMembers>());
  Members m;
  for (auto s : r.getStreams()) m.streams.push_back(Str(s));
  m.count = r.getCount();
  return m;
}

std::string EncodeCounters(const Counters& c) {
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::IdentityStats>();
  b.setExplicitLinks(c.explicit_links);
  b.setInferredLinks(c.inferred_links);
  b.setUnlinks(c.unlinks);
  b.setStreams(c.streams);
  return Encode(m);
}

absl::StatusOr<Counters> DecodeCounters(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::IdentityStats>());
  Counters c;
  c.explicit_links = r.getExplicitLinks();
  c.inferred_links = r.getInferredLinks();
  c.unlinks = r.getUnlinks();
  c.streams = r.getStreams();
  return c;
}

Score ScorePair(const Node& a, const Node& b, const PairRec& pair,
                absl::FunctionRef<bool(absl::string_view)> is_common) {
  // Each kind counts once, with the events of its first clue in `a`'s order.
  absl::flat_hash_map<ClueKind, ClueEvidence> found;
  absl::flat_hash_map<absl::string_view, const StreamClue*> theirs;
  for (const StreamClue& c : b.clues) theirs.emplace(c.key, &c);
  auto add = [&found](ClueKind kind, const std::string& e1, const std::string& e2) {
    if (found.contains(kind)) return;
    found[kind] = {kind, ClueWeight(kind), {e1, e2}};
  };
  for (const StreamClue& c : a.clues) {
    auto it = theirs.find(c.key);
    if (c.kind() == ClueKind::NAME) {
      if (it != theirs.end()) {
        add(ClueKind::NAME, c.event, it->second->event);
        continue;
      }
      // One typo apart: a name with one letter left out that the other shows too, or the other's
      // whole name (one letter more here).
      const absl::flat_hash_set<uint64_t> mine(c.variants.begin(), c.variants.end());
      for (const StreamClue& o : b.clues) {
        if (o.kind() != ClueKind::NAME) continue;
        if (std::any_of(o.variants.begin(), o.variants.end(),
                        [&mine](uint64_t v) { return mine.contains(v); })) {
          add(ClueKind::SIMILAR_NAME, c.event, o.event);
          break;
        }
      }
      continue;
    }
    if (it != theirs.end() && !is_common(c.key)) add(c.kind(), c.event, it->second->event);
  }
  if (!pair.follow_ups.empty()) {
    add(ClueKind::FOLLOW_UP, pair.follow_ups.front().first, pair.follow_ups.front().second);
  }
  if (found.contains(ClueKind::NAME)) found.erase(ClueKind::SIMILAR_NAME);
  Score s;
  for (auto& [kind, c] : found) s.clues.push_back(std::move(c));
  std::sort(s.clues.begin(), s.clues.end(),
            [](const ClueEvidence& x, const ClueEvidence& y) { return x.kind < y.kind; });
  for (const ClueEvidence& c : s.clues) s.score += c.weight;
  return s;
}

}  // namespace ihs::projections::identity
