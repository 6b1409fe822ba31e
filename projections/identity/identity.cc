#include "projections/identity/identity.h"

#include <sodium.h>

#include <algorithm>
#include <map>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "common/status_macros.h"
#include "projections/identity/clues.h"
#include "projections/identity/format.h"
#include "projections/packed_record.h"
#include "store/internal/content_keys.h"

namespace ihs::projections::identity {

namespace {

using schema::Direction;
using schema::TouchpointType;

using store::IsSystemStream;

std::string Hash(absl::string_view label, absl::string_view a, absl::string_view b, size_t n) {
  std::string in = absl::StrCat(label, std::string(1, '\0'), a, std::string(1, '\0'), b);
  std::string out(n, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), n,
                     reinterpret_cast<const unsigned char*>(in.data()), in.size(), nullptr, 0);
  return out;
}

// A record read once per batch and written back by Flush if it changed.
template <typename T>
struct Cached {
  std::optional<T> value;  // nullopt: absent (or deleted)
  bool dirty = false;
};

class IdentityProjection : public Projection {
 public:
  absl::string_view name() const override { return kName; }
  uint32_t version() const override { return 1; }
  bool reads_content() const override { return true; }

  absl::Status Apply(const store::StoredEvent& stored, Txn& txn) override {
    if (!index_) {
      IHS_ASSIGN_OR_RETURN(std::string key, txn.BlindIndexKey());
      index_.emplace(std::move(key));
    }
    txn_ = &txn;
    const schema::Event::Reader ev = stored.event();
    position_ = stored.position();
    recorded_at_ = ev.getRecordedAt();
    const std::string stream(ev.getStreamId().cStr(), ev.getStreamId().size());
    if (!IsSystemStream(stream)) IHS_RETURN_IF_ERROR(NodeOf(stream).status());
    switch (ev.which()) {
      case schema::Event::TOUCHPOINT:
        if (stored.content_state() == store::ContentState::kOpen) {
          IHS_RETURN_IF_ERROR(ContentClues(stream, ev, stored.content()));
        }
        return FollowUp(stream, ev);
      case schema::Event::IDENTITY_LINK:
        return ApplyLink(ev);
      case schema::Event::ERASURE_REQUEST:
        return Forget(stream, std::nullopt);
      case schema::Event::CONTENT_EXPIRY: {
        absl::flat_hash_set<uint32_t> versions;
        for (auto c : ev.getContentExpiry().getExpired()) {
          versions.insert(store::internal::ClassKeyVersionOfYear(
              static_cast<uint16_t>(c.getChannel()), static_cast<uint16_t>(c.getType()),
              c.getYear()));
        }
        return Forget(stream, versions);
      }
      default:
        return absl::OkStatus();
    }
  }

  absl::Status Flush(Txn& txn) override {
    FlushCache(txn, nodes_, EncodeNode);
    FlushCache(txn, pairs_, EncodePair);
    FlushCache(txn, members_, EncodeMembers);
    FlushCache(txn, persons_, EncodePerson);
    if (counters_ && counters_dirty_) txn.Put(kCountersKey, EncodeCounters(*counters_));
    Discard();
    return absl::OkStatus();
  }

  void Discard() override {
    nodes_.clear();
    pairs_.clear();
    members_.clear();
    persons_.clear();
    counters_.reset();
    counters_dirty_ = false;
  }

 private:
  // --- records ---------------------------------------------------------------------------------

  template <typename T, typename Decode>
  absl::StatusOr<Cached<T>*> Load(absl::node_hash_map<std::string, Cached<T>>& cache,
                                  const std::string& key, Decode decode) {
    auto it = cache.find(key);
    if (it != cache.end()) return &it->second;
    Cached<T> c;
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn_->Get(key));
    if (v) {
      IHS_ASSIGN_OR_RETURN(T t, decode(*v));
      c.value = std::move(t);
    }
    return &cache.emplace(key, std::move(c)).first->second;
  }

  // Writes back what changed: a record, or its deletion when it went away.
  template <typename T, typename Encode>
  static void FlushCache(Txn& txn, absl::node_hash_map<std::string, Cached<T>>& cache,
                         Encode encode) {
    for (auto& [key, c] : cache) {
      if (!c.dirty) continue;
      if (c.value) {
        txn.Put(key, encode(*c.value));
      } else {
        txn.Delete(key);
      }
    }
  }

  // The stream's node, made at the current position if the log names it for the first time.
  absl::StatusOr<Node*> NodeOf(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(Cached<Node> * c, Load(nodes_, StreamKey(stream), DecodeNode));
    if (!c->value) {
      Node n;
      n.first_position = position_;
      n.person = stream;
      c->value = std::move(n);
      c->dirty = true;
      IHS_ASSIGN_OR_RETURN(Counters * k, CountersOf());
      ++k->streams;
    }
    return &*c->value;
  }
  absl::StatusOr<Node*> MutableNode(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(Node * n, NodeOf(stream));
    nodes_[StreamKey(stream)].dirty = true;
    return n;
  }

  absl::StatusOr<PairRec*> PairOf(const std::string& a, const std::string& b) {
    IHS_ASSIGN_OR_RETURN(Cached<PairRec> * c, Load(pairs_, PairKey('Q', a, b), DecodePair));
    if (!c->value) c->value = PairRec{};
    c->dirty = true;
    return &*c->value;
  }

  absl::StatusOr<Cached<Members>*> MembersOf(const std::string& clue) {
    return Load(members_, MembersKey(clue), DecodeMembers);
  }

  // The person `id` (a stream's own id for a person of one stream).
  absl::StatusOr<PersonRec> PersonOf(const std::string& id) {
    IHS_ASSIGN_OR_RETURN(Cached<PersonRec> * c, Load(persons_, PersonKey(id), DecodePerson));
    if (c->value) return *c->value;
    PersonRec p;
    p.id = id;
    p.streams = {id};
    return p;
  }
  void PutPerson(PersonRec p) {
    Cached<PersonRec>& c = persons_[PersonKey(p.id)];
    c.dirty = true;
    if (p.streams.size() > 1) {
      c.value = std::move(p);
    } else {
      c.value.reset();
    }
  }
  void DeletePerson(const std::string& id) {
    Cached<PersonRec>& c = persons_[PersonKey(id)];
    c.value.reset();
    c.dirty = true;
  }

  absl::StatusOr<Counters*> CountersOf() {
    if (!counters_) {
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn_->Get(kCountersKey));
      counters_ = Counters{};
      if (v) {
        IHS_ASSIGN_OR_RETURN(counters_, DecodeCounters(*v));
      }
    }
    counters_dirty_ = true;
    return &*counters_;
  }

  // --- clues -----------------------------------------------------------------------------------

  absl::Status ContentClues(const std::string& stream, schema::Event::Reader ev,
                            schema::Content::Reader content) {
    const auto tp = ev.getTouchpoint();
    // The company's replies carry the company's handles, not the party's.
    if (tp.getType() == TouchpointType::REPLY && tp.getDirection() != Direction::INBOUND) {
      return absl::OkStatus();
    }
    const uint32_t cls = ev.getSealedContent().getKeyVersion();
    const std::string event_id(View(ev.getId()));
    auto handle = [&](schema::Handle::Reader h) -> absl::Status {
      absl::StatusOr<std::string> normal = NormalizeHandle(h.getKind(), View(h.getAddress()));
      const ClueKind kind = ClueKindOf(h.getKind());
      if (!normal.ok() || kind == ClueKind::UNSPECIFIED) return absl::OkStatus();
      IHS_RETURN_IF_ERROR(AddClue(stream, index_->ClueKey(kind, *normal), event_id, cls, {}));
      if (std::optional<std::string> name = NameOf(h.getKind(), View(h.getAddress()))) {
        std::vector<uint64_t> variants = {index_->NameHash(*name)};
        for (const std::string& v : OneLetterOut(*name)) variants.push_back(index_->NameHash(v));
        IHS_RETURN_IF_ERROR(AddClue(stream, index_->ClueKey(ClueKind::NAME, *name), event_id, cls,
                                    std::move(variants)));
      }
      return absl::OkStatus();
    };
    if (tp.getDirection() == Direction::OUTBOUND) {
      for (auto h : content.getTo()) IHS_RETURN_IF_ERROR(handle(h));
    } else if (content.hasFrom()) {
      IHS_RETURN_IF_ERROR(handle(content.getFrom()));
    }
    for (absl::string_view text : {View(content.getSubject()), View(content.getText())}) {
      for (const std::string& ref : References(text)) {
        IHS_RETURN_IF_ERROR(
            AddClue(stream, index_->ClueKey(ClueKind::ORDER_REFERENCE, ref), event_id, cls, {}));
      }
    }
    return absl::OkStatus();
  }

  absl::Status AddClue(const std::string& stream, const std::string& key, const std::string& event,
                       uint32_t cls, std::vector<uint64_t> variants) {
    IHS_ASSIGN_OR_RETURN(Node * node, NodeOf(stream));
    for (StreamClue& c : node->clues) {
      if (c.key != key) continue;
      auto at = std::lower_bound(c.classes.begin(), c.classes.end(), cls);
      if (at == c.classes.end() || *at != cls) {
        c.classes.insert(at, cls);
        nodes_[StreamKey(stream)].dirty = true;
      }
      return absl::OkStatus();
    }
    StreamClue c;
    c.key = key;
    c.event = event;
    c.classes = {cls};
    c.variants = std::move(variants);
    const ClueKind kind = c.kind();
    node->clues.push_back(std::move(c));
    nodes_[StreamKey(stream)].dirty = true;
    if (kind == ClueKind::NAME) return EvaluatePartners(stream);
    IHS_ASSIGN_OR_RETURN(Cached<Members> * m, MembersOf(key));
    if (!m->value) m->value = Members{};
    m->dirty = true;
    Members& members = *m->value;
    ++members.count;
    const std::vector<std::string> others = members.streams;
    if (members.streams.size() < kMaxMembersKept) members.streams.push_back(stream);
    if (members.count <= kMaxIdentifying) {
      for (const std::string& other : others) {
        IHS_RETURN_IF_ERROR(AddPartners(stream, other));
        IHS_RETURN_IF_ERROR(Evaluate(stream, other));
      }
    } else if (members.count == kMaxIdentifying + 1) {
      IHS_RETURN_IF_ERROR(EvaluateAmong(others));  // the clue stops counting
    }
    return absl::OkStatus();
  }

  // Drops what the stream's content showed: all of it (erasure), or what events of the expired
  // classes showed.
  absl::Status Forget(const std::string& stream,
                      const std::optional<absl::flat_hash_set<uint32_t>>& expired) {
    if (IsSystemStream(stream)) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(Node * node, MutableNode(stream));
    std::vector<StreamClue> kept, gone;
    for (StreamClue& c : node->clues) {
      if (expired) {
        c.classes.erase(std::remove_if(c.classes.begin(), c.classes.end(),
                                       [&](uint32_t v) { return expired->contains(v); }),
                        c.classes.end());
      }
      (expired && !c.classes.empty() ? kept : gone).push_back(std::move(c));
    }
    node->clues = std::move(kept);
    if (gone.empty()) return absl::OkStatus();
    for (const StreamClue& c : gone) {
      if (c.kind() == ClueKind::NAME) continue;
      IHS_ASSIGN_OR_RETURN(Cached<Members> * m, MembersOf(c.key));
      if (!m->value) continue;
      m->dirty = true;
      Members& members = *m->value;
      members.streams.erase(std::remove(members.streams.begin(), members.streams.end(), stream),
                            members.streams.end());
      if (--members.count == 0) {
        m->value.reset();
      } else if (members.count == kMaxIdentifying) {
        const std::vector<std::string> others = members.streams;
        IHS_RETURN_IF_ERROR(EvaluateAmong(others));  // the clue counts again
      }
    }
    return EvaluatePartners(stream);
  }

  absl::Status FollowUp(const std::string& stream, schema::Event::Reader ev) {
    const auto tp = ev.getTouchpoint();
    const bool message = tp.getType() == TouchpointType::COMPLAINT ||
                         tp.getType() == TouchpointType::MESSAGE ||
                         tp.getType() == TouchpointType::REQUEST;
    if (!ev.hasCausationId() || !message || tp.getDirection() == Direction::OUTBOUND ||
        IsSystemStream(stream)) {
      return absl::OkStatus();
    }
    IHS_ASSIGN_OR_RETURN(std::optional<store::StoredEvent> cause,
                         txn_->FindEarlierEvent(View(ev.getCausationId())));
    if (!cause) return absl::OkStatus();
    const auto c = cause->event();
    const std::string other(c.getStreamId().cStr(), c.getStreamId().size());
    if (other == stream || IsSystemStream(other) || !c.isTouchpoint()) return absl::OkStatus();
    const auto ctp = c.getTouchpoint();
    if (ctp.getDirection() != Direction::INBOUND ||
        (ctp.getType() != TouchpointType::COMPLAINT && ctp.getType() != TouchpointType::MESSAGE &&
         ctp.getType() != TouchpointType::REQUEST)) {
      return absl::OkStatus();
    }
    const auto [a, b] = std::minmax(stream, other);
    IHS_ASSIGN_OR_RETURN(PairRec * p, PairOf(a, b));
    if (p->follow_ups.size() < 4) p->follow_ups.emplace_back(View(c.getId()), View(ev.getId()));
    IHS_RETURN_IF_ERROR(AddPartners(a, b));
    return Evaluate(a, b);
  }

  // --- pairs -----------------------------------------------------------------------------------

  absl::Status AddPartners(const std::string& a, const std::string& b) {
    for (const auto& [x, y] : {std::pair(&a, &b), std::pair(&b, &a)}) {
      IHS_ASSIGN_OR_RETURN(Node * n, NodeOf(*x));
      auto at = std::lower_bound(n->partners.begin(), n->partners.end(), *y);
      if (at != n->partners.end() && *at == *y) continue;
      n->partners.insert(at, *y);
      nodes_[StreamKey(*x)].dirty = true;
    }
    return absl::OkStatus();
  }

  absl::Status RemovePartners(const std::string& a, const std::string& b) {
    for (const auto& [x, y] : {std::pair(&a, &b), std::pair(&b, &a)}) {
      IHS_ASSIGN_OR_RETURN(Node * n, MutableNode(*x));
      n->partners.erase(std::remove(n->partners.begin(), n->partners.end(), *y), n->partners.end());
    }
    return absl::OkStatus();
  }

  absl::Status EvaluatePartners(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(Node * n, NodeOf(stream));
    const std::vector<std::string> partners = n->partners;
    for (const std::string& p : partners) IHS_RETURN_IF_ERROR(Evaluate(stream, p));
    return absl::OkStatus();
  }

  absl::Status EvaluateAmong(const std::vector<std::string>& streams) {
    for (size_t i = 0; i < streams.size(); ++i) {
      for (size_t j = i + 1; j < streams.size(); ++j) {
        IHS_RETURN_IF_ERROR(Evaluate(streams[i], streams[j]));
      }
    }
    return absl::OkStatus();
  }

  // Scores the pair again from both nodes and says what follows: pending, suggested, or nothing.
  absl::Status Evaluate(const std::string& x, const std::string& y) {
    const auto [a, b] = std::minmax(x, y);
    if (a == b) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(Node * na, NodeOf(a));
    IHS_ASSIGN_OR_RETURN(Node * nb, NodeOf(b));
    IHS_ASSIGN_OR_RETURN(PairRec * p, PairOf(a, b));
    absl::Status error;
    const Score s = ScorePair(*na, *nb, *p, [&](absl::string_view key) {
      absl::StatusOr<Cached<Members>*> m = MembersOf(std::string(key));
      if (!m.ok()) {
        error.Update(m.status());
        return true;
      }
      return (*m)->value && (*m)->value->count > kMaxIdentifying;
    });
    IHS_RETURN_IF_ERROR(error);
    const bool same = na->person == nb->person;
    PairState state = p->decision == PairState::DISTINCT         ? PairState::DISTINCT
                      : p->decision == PairState::LINKED && same ? PairState::LINKED
                      : same                                     ? PairState::SAME_PERSON
                      : s.score >= kLinkThreshold                ? PairState::PENDING
                      : s.score >= kSuggestThreshold             ? PairState::SUGGESTED
                                                                 : PairState::BELOW;
    if (s.score != p->score) p->at = recorded_at_;
    p->score = s.score;
    if (s.score == 0 && p->decision == PairState::UNSPECIFIED && p->follow_ups.empty()) {
      // Nothing joins them any more (erasure, expiry, a clue turned common): forget the pair,
      // as a rebuild that never saw the evidence would.
      if (p->state == PairState::PENDING) txn_->Delete(PairKey('R', a, b));
      if (p->state == PairState::SUGGESTED) txn_->Delete(PairKey('G', a, b));
      pairs_[PairKey('Q', a, b)].value.reset();
      return RemovePartners(a, b);
    }
    if (state != p->state) {
      if (p->state == PairState::PENDING) txn_->Delete(PairKey('R', a, b));
      if (p->state == PairState::SUGGESTED) txn_->Delete(PairKey('G', a, b));
      if (state == PairState::PENDING) txn_->Put(PairKey('R', a, b), "");
      if (state == PairState::SUGGESTED) txn_->Put(PairKey('G', a, b), "");
      p->state = state;
    }
    return absl::OkStatus();
  }

  // --- links -----------------------------------------------------------------------------------

  absl::Status ApplyLink(schema::Event::Reader ev) {
    const auto l = ev.getIdentityLink();
    const std::vector<std::string> parties = LinkedParties(l);
    if (parties.size() < 2) return absl::OkStatus();
    Link link;
    link.event_id = std::string(View(ev.getId()));
    link.position = position_;
    link.inferred = View(ev.getSourceSystem()) == kResolverSource;
    link.confidence = l.getConfidence();
    link.reason = std::string(View(l.getReason()));
    for (auto c : l.getClues()) {
      ClueEvidence e;
      e.kind = c.getKind();
      e.weight = c.getWeight();
      for (auto id : c.getEvents()) e.events.emplace_back(View(id));
      link.clues.push_back(std::move(e));
    }
    IHS_ASSIGN_OR_RETURN(Counters * k, CountersOf());
    if (l.getUnlink()) {
      ++k->unlinks;
      for (size_t i = 0; i < parties.size(); ++i) {
        for (size_t j = i + 1; j < parties.size(); ++j) {
          IHS_RETURN_IF_ERROR(Unlink(parties[i], parties[j]));
        }
      }
      return absl::OkStatus();
    }
    ++(link.inferred ? k->inferred_links : k->explicit_links);
    for (size_t i = 1; i < parties.size(); ++i) {
      if (parties[i] == parties[0]) continue;
      link.a = parties[0];
      link.b = parties[i];
      IHS_RETURN_IF_ERROR(Join(link));
    }
    return absl::OkStatus();
  }

  absl::Status Join(const Link& link) {
    IHS_ASSIGN_OR_RETURN(Node * na, NodeOf(link.a));
    IHS_ASSIGN_OR_RETURN(Node * nb, NodeOf(link.b));
    const std::string pa = na->person, pb = nb->person;
    {
      const auto [a, b] = std::minmax(link.a, link.b);
      IHS_ASSIGN_OR_RETURN(PairRec * p, PairOf(a, b));
      p->decision = PairState::LINKED;
      IHS_RETURN_IF_ERROR(AddPartners(a, b));
    }
    IHS_ASSIGN_OR_RETURN(PersonRec first, PersonOf(pa));
    PersonRec merged = std::move(first);
    if (pa != pb) {
      IHS_ASSIGN_OR_RETURN(PersonRec second, PersonOf(pb));
      merged.streams.insert(merged.streams.end(), second.streams.begin(), second.streams.end());
      std::sort(merged.streams.begin(), merged.streams.end());
      merged.links.insert(merged.links.end(), second.links.begin(), second.links.end());
      std::sort(merged.links.begin(), merged.links.end(),
                [](const Link& x, const Link& y) { return x.position < y.position; });
      DeletePerson(pa);
      DeletePerson(pb);
    }
    merged.links.push_back(link);
    IHS_RETURN_IF_ERROR(Regroup(std::move(merged.streams), std::move(merged.links)));
    return absl::OkStatus();
  }

  absl::Status Unlink(const std::string& x, const std::string& y) {
    const std::string& a = std::min(x, y);  // a lambda below names them: no bindings
    const std::string& b = std::max(x, y);
    IHS_ASSIGN_OR_RETURN(Node * na, NodeOf(a));
    IHS_ASSIGN_OR_RETURN(Node * nb, NodeOf(b));
    IHS_ASSIGN_OR_RETURN(PairRec * p, PairOf(a, b));
    p->decision = PairState::DISTINCT;
    IHS_RETURN_IF_ERROR(AddPartners(a, b));
    if (na->person != nb->person) return Evaluate(a, b);
    IHS_ASSIGN_OR_RETURN(PersonRec person, PersonOf(na->person));
    auto joins = [&](const Link& l) { return (l.a == a && l.b == b) || (l.a == b && l.b == a); };
    const size_t before = person.links.size();
    person.links.erase(std::remove_if(person.links.begin(), person.links.end(), joins),
                       person.links.end());
    if (person.links.size() == before) return Evaluate(a, b);  // joined through others
    DeletePerson(person.id);
    return Regroup(std::move(person.streams), std::move(person.links));
  }

  // Makes persons of `streams` joined by `links`: one per connected group, named by its stream
  // seen first; then scores again every pair of these streams.
  absl::Status Regroup(std::vector<std::string> streams, std::vector<Link> links) {
    std::map<std::string, std::string> parent;
    for (const std::string& s : streams) parent[s] = s;
    auto find = [&parent](std::string s) {
      while (parent[s] != s) s = parent[s] = parent[parent[s]];
      return s;
    };
    for (const Link& l : links) {
      if (!parent.count(l.a) || !parent.count(l.b)) continue;
      parent[find(l.a)] = find(l.b);
    }
    std::map<std::string, PersonRec> groups;  // by root
    for (const std::string& s : streams) groups[find(s)].streams.push_back(s);
    for (const Link& l : links) groups[find(l.a)].links.push_back(l);
    for (auto& [root, g] : groups) {
      std::sort(g.streams.begin(), g.streams.end());
      const Node* first = nullptr;
      for (const std::string& s : g.streams) {
        IHS_ASSIGN_OR_RETURN(Node * n, NodeOf(s));
        if (first == nullptr || n->first_position < first->first_position) {
          first = n;
          g.id = s;
        }
      }
      for (const std::string& s : g.streams) {
        IHS_ASSIGN_OR_RETURN(Node * n, MutableNode(s));
        n->person = g.id;
      }
      PutPerson(std::move(g));
    }
    for (const std::string& s : streams) IHS_RETURN_IF_ERROR(EvaluatePartners(s));
    return absl::OkStatus();
  }

  std::optional<BlindIndex> index_;
  Txn* txn_ = nullptr;
  uint64_t position_ = 0;
  int64_t recorded_at_ = 0;
  absl::node_hash_map<std::string, Cached<Node>> nodes_;
  absl::node_hash_map<std::string, Cached<PairRec>> pairs_;
  absl::node_hash_map<std::string, Cached<Members>> members_;
  absl::node_hash_map<std::string, Cached<PersonRec>> persons_;
  std::optional<Counters> counters_;
  bool counters_dirty_ = false;
};

}  // namespace

std::vector<std::string> LinkedParties(schema::IdentityLink::Reader link) {
  std::vector<std::string> parties;
  for (auto p : link.getParties()) {
    if (p.size() == 0 || IsSystemStream(View(p))) continue;
    parties.emplace_back(p.cStr(), p.size());
  }
  return parties;
}

std::unique_ptr<Projection> NewIdentityProjection() {
  return std::make_unique<IdentityProjection>();
}

std::string SuggestionId(const std::string& a, const std::string& b) {
  return absl::BytesToHexString(Hash("ihs-suggestion/v1", a, b, 6));
}

std::string ResolverEventId(const std::string& a, const std::string& b) {
  return Hash("ihs-resolver/link/v1", a, b, 16);
}

}  // namespace ihs::projections::identity
