#include "projections/community/community.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "common/status_macros.h"
#include "common/time_math.h"
#include "projections/community/state.h"
#include "projections/identity/grouping.h"
#include "projections/identity/identity.h"
#include "projections/packed_record.h"
#include "schema/touchpoint.h"

namespace ihs::projections::community {

namespace {

using schema::Direction;
using schema::TouchpointType;

// The types of public touchpoint that are posts: others can carry them, and their audience
// counts. Likes, replies and the rest react to a post and reach nobody themselves.
bool IsPost(TouchpointType t) {
  switch (t) {
    case TouchpointType::MESSAGE:
    case TouchpointType::COMPLAINT:
    case TouchpointType::REQUEST:
    case TouchpointType::REVIEW:
    case TouchpointType::RECOMMENDATION:
    case TouchpointType::SHARE:
    case TouchpointType::MENTION:
      return true;
    default:
      return false;
  }
}

bool IsCarry(TouchpointType t) {
  return t == TouchpointType::SHARE || t == TouchpointType::MENTION;
}

// A record a batch has read (Records): decoded once, written back by Flush if it changed;
// value nullopt: absent, or deleted. `extra` is what the projection keeps beside the record
// while the slot lives (never stored).
struct NoExtra {};
template <typename T, typename Extra>
struct RecordSlot {
  std::optional<T> value;
  bool dirty = false;
  const std::string* key = nullptr;  // the cache's, as long as the slot
  Extra extra;
};

// The records a batch reads, by key. A slot's address holds until Clear (node_hash_map), so a
// caller may keep a slot (a handle) instead of looking its key up again.
template <typename T, typename Extra = NoExtra>
class Records {
 public:
  using Slot = RecordSlot<T, Extra>;
  using Decoder = absl::StatusOr<T> (*)(absl::string_view);
  using Encoder = std::string (*)(const T&);
  Records(Decoder decode, Encoder encode) : decode_(decode), encode_(encode) {}

  absl::StatusOr<T*> Find(Txn& txn, const std::string& key) {
    IHS_ASSIGN_OR_RETURN(Slot * s, Load(txn, key));
    return s->value ? &*s->value : nullptr;
  }
  // The record, changed by the caller: written back.
  absl::StatusOr<T*> Mutable(Txn& txn, const std::string& key) {
    IHS_ASSIGN_OR_RETURN(Slot * s, Load(txn, key));
    return Mutable(s);
  }
  static T* Mutable(Slot* s) {
    if (!s->value) return nullptr;
    s->dirty = true;
    return &*s->value;
  }
  // The record, made by `make` if absent; changed by the caller: written back.
  template <typename Make>
  absl::StatusOr<T*> MutableOr(Txn& txn, const std::string& key, const Make& make) {
    IHS_ASSIGN_OR_RETURN(Slot * s, Load(txn, key));
    return MutableOr(s, make);
  }
  template <typename Make>
  static T* MutableOr(Slot* s, const Make& make) {
    if (!s->value) s->value = make();
    s->dirty = true;
    return &*s->value;
  }
  T* Set(const std::string& key, T value) {
    Slot& s = At(key);
    s.value = std::move(value);
    s.dirty = true;
    return &*s.value;
  }
  void Erase(const std::string& key) {
    Slot& s = At(key);
    s.value.reset();
    s.dirty = true;
  }
  void Flush(Txn& txn) {
    for (auto& [key, s] : slots_) {
      if (!s.dirty) continue;
      if (s.value) {
        txn.Put(key, encode_(*s.value));
      } else {
        txn.Delete(key);
      }
    }
    Clear();
  }
  void Clear() {
    slots_.clear();
    recent_ = {};
  }

  // The slot of `key`, read from the Txn the first time.
  absl::StatusOr<Slot*> Load(Txn& txn, const std::string& key) {
    // An event reads the same few records many times (a carry: the sharer's and the author's
    // streams, each push's): the last few lookups are checked first.
    for (Slot* slot : recent_) {
      if (slot != nullptr && *slot->key == key) return slot;
    }
    auto it = slots_.find(key);
    if (it == slots_.end()) {
      Slot s;
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn.Get(key));
      if (v) {
        IHS_ASSIGN_OR_RETURN(T t, decode_(*v));
        s.value = std::move(t);
      }
      it = slots_.emplace(key, std::move(s)).first;
      it->second.key = &it->first;
    }
    recent_[next_recent_++ % recent_.size()] = &it->second;
    return &it->second;
  }

 private:
  Slot& At(const std::string& key) {
    auto [it, inserted] = slots_.try_emplace(key);
    if (inserted) it->second.key = &it->first;
    return it->second;
  }

  const Decoder decode_;
  const Encoder encode_;
  absl::node_hash_map<std::string, Slot> slots_;
  std::array<Slot*, 4> recent_{};
  size_t next_recent_ = 0;
};

// What the standing's pushes keep beside a stream's record (community.cc "Standing"): whether
// the stream waits in the push queue, and the slots of its record's out edges, in their order,
// so that a push reaches its targets without looking their keys up.
struct StreamLinks {
  bool queued = false;
  // What the record's out edges name, unless its size differs (OutChanged clears it).
  std::vector<RecordSlot<StreamRec, StreamLinks>*> out;
};
using StreamSlot = RecordSlot<StreamRec, StreamLinks>;

class CommunityProjection : public Projection {
 public:
  absl::string_view name() const override { return kName; }
  // 2: the network standing. 3: the community value. 4: the audience at risk. 5: follows.
  // 6: the standing's index kept at the batch's end. 7: retractions and follows in any direction.
  // 8: the bands published (bands.h). 9: the audience at risk from how others carry a person.
  // 10: the reach index kept at the batch's end.
  uint32_t version() const override { return 10; }

  absl::Status Apply(const store::StoredEvent& stored, Txn& txn) override {
    txn_ = &txn;
    const schema::Event::Reader ev = stored.event();
    position_ = stored.position();
    recorded_at_ = ev.getRecordedAt();
    const std::string stream(View(ev.getStreamId()));
    if (store::IsSystemStream(stream)) {
      if (ev.isIdentityLink()) return ApplyLink(ev.getIdentityLink());
      if (ev.isCommunityBand() && stream == store::kCommunityStream) {
        return ApplyBand(ev.getCommunityBand());
      }
      return absl::OkStatus();
    }
    IHS_ASSIGN_OR_RETURN(StreamRec * s, StreamOf(stream));
    switch (ev.which()) {
      case schema::Event::TOUCHPOINT:
        return ApplyTouch(stream, *s, ev);
      case schema::Event::ERASURE_REQUEST:
        return Erase(stream);
      default:
        return absl::OkStatus();
    }
  }

  absl::Status Flush(Txn& txn) override {
    txn_ = &txn;
    IHS_RETURN_IF_ERROR(Revalue());
    streams_.Flush(txn);
    posts_.Flush(txn);
    persons_.Flush(txn);
    edges_.Flush(txn);
    if (counters_ && counters_dirty_) txn.Put(kCountersKey, EncodeCounters(*counters_));
    counters_.reset();
    counters_dirty_ = false;
    return absl::OkStatus();
  }

  void Discard() override {
    dirty_.clear();
    queue_.clear();
    streams_.Clear();
    posts_.Clear();
    persons_.Clear();
    edges_.Clear();
    counters_.reset();
    counters_dirty_ = false;
  }

 private:
  // --- records ---------------------------------------------------------------------------------

  // The stream's record, made at the current position if the log names it for the first time.
  absl::StatusOr<StreamRec*> StreamOf(const std::string& stream) {
    const std::string key = StreamKey(stream);
    IHS_ASSIGN_OR_RETURN(StreamRec * s, streams_.Find(*txn_, key));
    if (s != nullptr) return s;
    StreamRec fresh;
    fresh.first_position = position_;
    return streams_.Set(key, std::move(fresh));
  }
  // The stream's slot in the cache (its record may be absent).
  absl::StatusOr<StreamSlot*> StreamSlotOf(absl::string_view stream) {
    return streams_.Load(*txn_, StreamKey(stream));
  }
  absl::StatusOr<StreamRec*> MutableStream(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(StreamSlot * slot, StreamSlotOf(stream));
    return MutableStream(slot);
  }
  StreamRec* MutableStream(StreamSlot* slot) {
    return streams_.MutableOr(slot, [this] {
      StreamRec fresh;
      fresh.first_position = position_;
      return fresh;
    });
  }
  // The stream a slot of `streams_` holds: its key is StreamKey(stream), "S" and the id.
  static std::string StreamIdOf(const StreamSlot* slot) { return slot->key->substr(1); }

  absl::StatusOr<Counters*> MutableCounters() {
    if (!counters_) {
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn_->Get(kCountersKey));
      if (v) {
        IHS_ASSIGN_OR_RETURN(Counters c, DecodeCounters(*v));
        counters_ = c;
      } else {
        counters_.emplace();
      }
    }
    counters_dirty_ = true;
    return &*counters_;
  }

  static std::string PersonIdOf(const std::string& stream, const StreamRec& s) {
    return s.person.empty() ? stream : s.person;
  }

  // --- touchpoints -----------------------------------------------------------------------------

  absl::Status ApplyTouch(const std::string& stream, StreamRec& s, schema::Event::Reader ev) {
    const auto tp = ev.getTouchpoint();
    const TouchpointType type = tp.getType();
    // A retraction withdraws a post whatever direction it is recorded with.
    if (type == TouchpointType::RETRACTION) {
      return Retract(stream, std::string(View(tp.getCorrects())));
    }
    if (s.erased) return absl::OkStatus();
    if (type == TouchpointType::FOLLOW) {  // the graph's follows, where the log has them
      const std::string followed(View(tp.getCounterpart()));
      if (followed.empty() || store::IsSystemStream(followed)) return absl::OkStatus();
      IHS_RETURN_IF_ERROR(StreamOf(followed).status());
      return AddEdge(followed, stream, type);
    }
    if (tp.getDirection() == Direction::INBOUND &&
        schema::WaitsForAnswer(Direction::INBOUND, type)) {
      return CountWaiting(stream, /*went_public=*/false);
    }
    if (tp.getDirection() != Direction::PUBLIC || type == TouchpointType::CORRECTION) {
      return absl::OkStatus();
    }
    const std::string cause(View(ev.getCausationId()));
    PostRec* parent = nullptr;
    if (!cause.empty()) {
      IHS_ASSIGN_OR_RETURN(parent, posts_.Find(*txn_, PostKey(cause)));
    }
    if (parent != nullptr) {
      if (IsPost(type)) return Carry(stream, ev, cause);
      return React(stream, type, *parent);
    }
    if (!IsPost(type)) return absl::OkStatus();
    if (IsCarry(type)) {
      // A share or mention of something the log does not hold: what its audience saw is the
      // sharer's own post.
      IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
      ++c->unknown_targets;
    } else if (!cause.empty()) {
      // A message that waited, taken public: the person who waited went public.
      IHS_ASSIGN_OR_RETURN(std::optional<store::StoredEvent> earlier,
                           txn_->FindEarlierEvent(cause));
      if (earlier && earlier->event().isTouchpoint()) {
        const auto was = earlier->event().getTouchpoint();
        const std::string by(View(earlier->event().getStreamId()));
        if (was.getDirection() == Direction::INBOUND &&
            schema::WaitsForAnswer(Direction::INBOUND, was.getType()) &&
            !store::IsSystemStream(by)) {
          IHS_RETURN_IF_ERROR(CountWaiting(by, /*went_public=*/true));
        }
      }
    }
    return Original(stream, ev);
  }

  // A message of `stream` that waits for an answer, or (`went_public`) one taken public.
  absl::Status CountWaiting(const std::string& stream, bool went_public) {
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(stream));
    if (s->erased) return absl::OkStatus();
    (went_public ? s->went_public : s->waited) += 1;
    if (!s->person.empty()) {
      IHS_ASSIGN_OR_RETURN(PersonRec * p, persons_.Mutable(*txn_, PersonKey(s->person)));
      if (p == nullptr) return absl::DataLossError("community: a stream names a missing person");
      (went_public ? p->went_public : p->waited) += 1;
    }
    dirty_.insert(PersonIdOf(stream, *s));
    return absl::OkStatus();
  }

  PostRec NewPost(const std::string& stream, schema::Event::Reader ev) {
    const auto tp = ev.getTouchpoint();
    PostRec p;
    p.author = stream;
    p.audience = tp.getAudienceSize();
    p.occurred_at = ev.getOccurredAt();
    p.type = tp.getType();
    p.channel = tp.getChannel();
    return p;
  }

  absl::Status Original(const std::string& stream, schema::Event::Reader ev) {
    const std::string id(View(ev.getId()));
    PostRec p = NewPost(stream, ev);
    p.root = id;
    p.cascade = p.audience;
    const uint64_t audience = p.audience;
    const int32_t day = UtcDayOf(p.occurred_at);
    posts_.Set(PostKey(id), std::move(p));
    txn_->Put(AuthoredKey(stream, id), "");
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(stream));
    ++s->posts;
    s->own_audience = std::max(s->own_audience, audience);
    if (!s->person.empty()) {
      IHS_ASSIGN_OR_RETURN(PersonRec * person, persons_.Mutable(*txn_, PersonKey(s->person)));
      if (person == nullptr)
        return absl::DataLossError("community: a stream names a missing person");
      ++person->posts;
    }
    dirty_.insert(PersonIdOf(stream, *s));
    return AddReach(stream, day, static_cast<int64_t>(audience));
  }

  // The ancestors of the post `id` (itself first) up to its original, or an error if the chain
  // is broken (state that lost a post).
  absl::StatusOr<std::vector<std::pair<std::string, PostRec*>>> Chain(const std::string& id) {
    std::vector<std::pair<std::string, PostRec*>> chain;
    std::string at = id;
    while (true) {
      IHS_ASSIGN_OR_RETURN(PostRec * p, posts_.Find(*txn_, PostKey(at)));
      if (p == nullptr || chain.size() > kMaxDepth) {
        return absl::DataLossError("community: a cascade's chain of posts is broken");
      }
      chain.emplace_back(at, p);
      if (p->parent.empty()) return chain;
      at = p->parent;
    }
  }

  absl::Status Carry(const std::string& stream, schema::Event::Reader ev,
                     const std::string& cause) {
    IHS_ASSIGN_OR_RETURN(auto chain, Chain(cause));
    const PostRec& parent = *chain.front().second;
    const PostRec& root = *chain.back().second;
    const TouchpointType type = ev.getTouchpoint().getType();
    IHS_RETURN_IF_ERROR(AddEdge(parent.author, stream, type));
    if (parent.depth + 1 > kMaxDepth) {
      IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
      ++c->too_deep;
      return absl::OkStatus();
    }
    const std::string id(View(ev.getId()));
    PostRec p = NewPost(stream, ev);
    p.root = parent.root;
    p.parent = cause;
    p.depth = parent.depth + 1;
    bool dead = root.author.empty();
    for (const auto& link : chain) dead |= link.second->retracted;
    const uint64_t audience = dead ? 0 : p.audience;
    p.cascade = audience;
    const uint32_t depth = p.depth;
    const uint64_t raw_audience = p.audience;
    const std::string parent_author = parent.author;
    const bool parent_original = parent.depth == 0;
    const std::string root_author = root.author;
    const int32_t day = UtcDayOf(root.occurred_at);
    posts_.Set(PostKey(id), std::move(p));
    txn_->Put(AuthoredKey(stream, id), "");
    for (const auto& link : chain) {
      IHS_ASSIGN_OR_RETURN(PostRec * a, posts_.Mutable(*txn_, PostKey(link.first)));
      a->cascade += audience;
      if (&link == &chain.front()) {
        if (IsCarry(type)) ++a->carries;
        a->direct += raw_audience;
      }
    }
    IHS_RETURN_IF_ERROR(Carried(stream, raw_audience, parent_original ? parent_author : ""));
    if (dead) {
      IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
      ++c->dead_carries;
      return absl::OkStatus();
    }
    IHS_ASSIGN_OR_RETURN(StreamRec * r, MutableStream(root_author));
    if (IsCarry(type) && root_author != stream) ++r->carried;
    r->max_depth = std::max(r->max_depth, depth);
    return AddReach(root_author, day, static_cast<int64_t>(audience));
  }

  // A post of `stream` carried another's: its own audience is at least `audience`; and when it
  // carries an original of another person (`author`) directly, that author counts it among what
  // others carry of theirs (the audience at risk).
  absl::Status Carried(const std::string& stream, uint64_t audience, const std::string& author) {
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(stream));
    if (audience > s->own_audience) {
      s->own_audience = audience;
      dirty_.insert(PersonIdOf(stream, *s));
    }
    if (author.empty() || author == stream) return absl::OkStatus();
    const std::string carrier = PersonIdOf(stream, *s);
    IHS_ASSIGN_OR_RETURN(StreamRec * a, MutableStream(author));
    if (a->erased || PersonIdOf(author, *a) == carrier) return absl::OkStatus();
    a->carried_audience += audience;
    dirty_.insert(PersonIdOf(author, *a));
    return absl::OkStatus();
  }

  absl::Status React(const std::string& stream, TouchpointType type, const PostRec& post) {
    const std::string author = post.author;
    IHS_RETURN_IF_ERROR(AddEdge(author, stream, type));
    if (author.empty() || author == stream) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(StreamRec * a, MutableStream(author));
    ++a->reactions;
    return absl::OkStatus();
  }

  // `source` carried or reacted to a post of `target`. Carries are edges of the amplification
  // graph too.
  absl::Status AddEdge(const std::string& target, const std::string& source, TouchpointType type) {
    if (target.empty() || target == source) return absl::OkStatus();
    if (IsCarry(type)) IHS_RETURN_IF_ERROR(AddCarryEdge(source, target));
    const std::string key = EdgeKey(target, source);
    IHS_ASSIGN_OR_RETURN(EdgeRec * e, edges_.Mutable(*txn_, key));
    if (e == nullptr) {
      e = edges_.Set(key, EdgeRec{});
      txn_->Put(OutKey(source, target), "");
    }
    switch (type) {
      case TouchpointType::SHARE:
        ++e->shares;
        break;
      case TouchpointType::MENTION:
        ++e->mentions;
        break;
      case TouchpointType::LIKE:
        ++e->likes;
        break;
      case TouchpointType::FOLLOW:
        ++e->follows;
        break;
      default:
        ++e->other;
    }
    e->last_at = recorded_at_;
    return absl::OkStatus();
  }

  // A retraction by `stream` of the post `id`: what its cascade reached stops counting.
  absl::Status Retract(const std::string& stream, const std::string& id) {
    IHS_ASSIGN_OR_RETURN(PostRec * p, posts_.Find(*txn_, PostKey(id)));
    if (p == nullptr || p->retracted) return absl::OkStatus();
    if (p->author != stream) {
      IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
      ++c->foreign_retractions;
      return absl::OkStatus();
    }
    IHS_ASSIGN_OR_RETURN(auto chain, Chain(id));
    bool counted = !chain.back().second->author.empty();
    for (const auto& link : chain) counted &= !link.second->retracted;
    IHS_ASSIGN_OR_RETURN(PostRec * self, posts_.Mutable(*txn_, PostKey(id)));
    self->retracted = true;
    if (!counted) return absl::OkStatus();
    const uint64_t amount = self->cascade;
    for (size_t i = 1; i < chain.size(); ++i) {
      IHS_ASSIGN_OR_RETURN(PostRec * a, posts_.Mutable(*txn_, PostKey(chain[i].first)));
      a->cascade -= amount;
    }
    const PostRec& root = *chain.back().second;
    return AddReach(root.author, UtcDayOf(root.occurred_at), -static_cast<int64_t>(amount));
  }

  // Adds `delta` to the reach of `stream` (of an original post of `day`) and of its person. The
  // index follows at the batch's end (Revalue).
  absl::Status AddReach(const std::string& stream, int32_t day, int64_t delta) {
    if (delta == 0) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(stream));
    dirty_.insert(PersonIdOf(stream, *s));
    if (delta < 0 && s->reach < static_cast<uint64_t>(-delta)) {
      return absl::DataLossError("community: a stream's reach would go below zero");
    }
    s->reach += static_cast<uint64_t>(delta);
    auto& days = s->days;
    auto it = std::lower_bound(days.begin(), days.end(), std::make_pair(day, uint64_t{0}));
    if (it != days.end() && it->first == day) {
      it->second += static_cast<uint64_t>(delta);
      if (it->second == 0) days.erase(it);
    } else if (delta > 0) {
      days.insert(it, {day, static_cast<uint64_t>(delta)});
    }
    if (!days.empty()) {
      const int32_t oldest = days.back().first - kKeptDays;
      days.erase(days.begin(),
                 std::lower_bound(days.begin(), days.end(), std::make_pair(oldest, uint64_t{0})));
    }
    if (s->person.empty()) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(PersonRec * p, persons_.Mutable(*txn_, PersonKey(s->person)));
    if (p == nullptr) return absl::DataLossError("community: a stream names a missing person");
    p->reach += static_cast<uint64_t>(delta);
    return absl::OkStatus();
  }

  absl::Status Reindex(const std::string& person, uint64_t before, uint64_t after) {
    if (before == after) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
    if (before > 0) {
      txn_->Delete(RankKey(before, person));
      --c->persons;
    }
    if (after > 0) {
      txn_->Put(RankKey(after, person), "");
      ++c->persons;
    }
    return absl::OkStatus();
  }

  // --- standing --------------------------------------------------------------------------------
  //
  // The network standing of a stream is x[v], the expected visits to v of random walks that
  // start once at every stream of the amplification graph, follow a carry edge u -> w (u carried
  // w's posts; chosen by weight A[u,w] / W_u) and stop with chance kReset at each step, or at a
  // stream that carried nobody: x = 1 + (1 - kReset) P^T x, PageRank's equation before
  // normalisation. It is kept by forward push (Andersen, Chung and Lang 2006; on a changing
  // graph, Zhang, Lofgren and Goel 2016): each stream keeps an estimate p[v] (`standing`) and a
  // residual r[v] such that, for every v,
  //   r[v] = 1 - p[v] + (1 - kReset) * sum over u of p[u] A[u,v] / W_u,
  // which makes x = p + M r exactly (M = (I - (1 - kReset) P^T)^-1, the visits a walk from each
  // stream makes). A new edge of u changes row u of P: the residuals of u's targets change by
  // (1 - kReset) p[u] (new share - old share), and the invariant holds again. A push moves a
  // residual into the estimate and passes (1 - kReset) of it on along the edges; every residual
  // above kPushThreshold is pushed before the event ends. So |x - p| sums to at most
  // sum |r| / kReset, each |r| below the threshold.

  // The stream, a node of the graph from now on: its walk's start is a residual of 1.
  absl::Status JoinGraph(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(StreamRec * r, MutableStream(stream));
    if (r->in_graph) return absl::OkStatus();
    r->in_graph = true;
    IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
    ++c->nodes;
    return AddResidual(stream, 1);
  }

  absl::Status AddCarryEdge(const std::string& source, const std::string& target) {
    IHS_RETURN_IF_ERROR(JoinGraph(target));
    IHS_RETURN_IF_ERROR(JoinGraph(source));
    IHS_ASSIGN_OR_RETURN(StreamSlot * slot, StreamSlotOf(source));
    StreamRec* const u = MutableStream(slot);
    const uint64_t old_total = u->out_total;
    auto it = std::lower_bound(u->out.begin(), u->out.end(), std::make_pair(target, uint64_t{0}));
    if (it != u->out.end() && it->first == target) {
      ++it->second;
    } else {
      u->out.insert(it, {target, 1});
      OutChanged(slot);
    }
    ++u->out_total;
    // Row `source` of P gained one carry of `target`: what RowChanged does, without a copy of the
    // old row (each weight was what it is, but target's one less). AddResidual changes other
    // streams only (no stream carries itself): the row stays as it is through the loop.
    const double p = u->standing;
    if (p != 0) {
      IHS_ASSIGN_OR_RETURN(const std::vector<StreamSlot*>* targets, OutSlots(slot));
      for (size_t i = 0; i < targets->size(); ++i) {
        const auto& [t, w] = u->out[i];
        const double before = Share(t == target ? w - 1 : w, old_total);
        const double after = Share(w, u->out_total);
        if (after != before) AddResidual((*targets)[i], (1 - kReset) * p * (after - before));
      }
    }
    return PushAll();
  }

  static double Share(uint64_t w, uint64_t of) {
    return of == 0 ? 0.0 : static_cast<double>(w) / static_cast<double>(of);
  }

  // Row `source` of P changed from `old` (of total weight `old_total`) to what its record holds:
  // the residuals of its targets, old and new, follow.
  absl::Status RowChanged(const std::string& source,
                          const std::vector<std::pair<std::string, uint64_t>>& old,
                          uint64_t old_total) {
    IHS_ASSIGN_OR_RETURN(StreamRec * u, MutableStream(source));
    const double p = u->standing;
    if (p == 0) return absl::OkStatus();
    const std::vector<std::pair<std::string, uint64_t>> now = u->out;
    const uint64_t total = u->out_total;
    auto share = Share;
    size_t i = 0, j = 0;
    while (i < old.size() || j < now.size()) {
      std::string target;
      double before = 0, after = 0;
      if (j == now.size() || (i < old.size() && old[i].first < now[j].first)) {
        target = old[i].first;
        before = share(old[i++].second, old_total);
      } else if (i == old.size() || now[j].first < old[i].first) {
        target = now[j].first;
        after = share(now[j++].second, total);
      } else {
        target = now[j].first;
        before = share(old[i++].second, old_total);
        after = share(now[j++].second, total);
      }
      if (after != before) {
        IHS_RETURN_IF_ERROR(AddResidual(target, (1 - kReset) * p * (after - before)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status AddResidual(const std::string& stream, double delta) {
    IHS_ASSIGN_OR_RETURN(StreamSlot * slot, StreamSlotOf(stream));
    AddResidual(slot, delta);
    return absl::OkStatus();
  }
  void AddResidual(StreamSlot* slot, double delta) {
    StreamRec* const r = MutableStream(slot);
    r->residual += delta;
    if (std::abs(r->residual) > kPushThreshold && !slot->extra.queued) {
      slot->extra.queued = true;
      queue_.push_back(slot);
    }
  }

  // The slots of `slot`'s out edges (StreamLinks), looked up once while the slot lives.
  absl::StatusOr<const std::vector<StreamSlot*>*> OutSlots(StreamSlot* slot) {
    StreamLinks& links = slot->extra;
    const std::vector<std::pair<std::string, uint64_t>>& out = slot->value->out;
    if (links.out.size() != out.size()) {
      links.out.clear();
      for (const auto& edge : out) {
        IHS_ASSIGN_OR_RETURN(StreamSlot * t, StreamSlotOf(edge.first));
        links.out.push_back(t);
      }
    }
    return &links.out;
  }
  // The stream's out edges changed: OutSlots looks them up again.
  static void OutChanged(StreamSlot* slot) { slot->extra.out.clear(); }

  // Pushes the residuals above the threshold, in the order they rose above it, at most
  // kMaxPushes (what is left waits for the next change at those streams).
  absl::Status PushAll() {
    size_t pushes = 0;
    while (!queue_.empty()) {
      if (pushes == kMaxPushes) {
        IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
        ++c->capped_events;
        for (StreamSlot* v : queue_) v->extra.queued = false;
        queue_.clear();
        break;
      }
      StreamSlot* const v = queue_.front();
      queue_.pop_front();
      v->extra.queued = false;
      StreamRec* const r = MutableStream(v);
      const double amount = r->residual;
      if (std::abs(amount) <= kPushThreshold) continue;
      r->residual = 0;
      r->standing += amount;
      ++pushes;
      const double total = static_cast<double>(r->out_total);
      IHS_RETURN_IF_ERROR(AddStanding(StreamIdOf(v), *r, amount));
      // AddResidual changes other streams' residuals only (no stream carries itself), and a
      // record's address holds until Flush: r->out stays as it is through the loop.
      IHS_ASSIGN_OR_RETURN(const std::vector<StreamSlot*>* targets, OutSlots(v));
      for (size_t i = 0; i < targets->size(); ++i) {
        AddResidual((*targets)[i],
                    (1 - kReset) * amount * static_cast<double>(r->out[i].second) / total);
      }
    }
    if (pushes > 0) {
      IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
      c->pushes += pushes;
    }
    return absl::OkStatus();
  }

  // The stream's standing grew by `delta` (its record holds the new one): its person's too. The
  // index follows at the batch's end (Revalue), not per push.
  absl::Status AddStanding(const std::string& stream, double delta) {
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(stream));
    return AddStanding(stream, *s, delta);
  }
  absl::Status AddStanding(const std::string& stream, const StreamRec& s, double delta) {
    dirty_.insert(PersonIdOf(stream, s));
    if (s.person.empty()) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(PersonRec * p, persons_.Mutable(*txn_, PersonKey(s.person)));
    if (p == nullptr) return absl::DataLossError("community: a stream names a missing person");
    p->standing += delta;
    return absl::OkStatus();
  }

  absl::Status ReindexStanding(const std::string& person, double before, double after) {
    return ReindexScore(StandingKey, &Counters::standing_persons, person, before, after);
  }

  // Moves `person` in an index of scores in thousandths (`key`), counted in `count`.
  absl::Status ReindexScore(std::string (*key)(double, absl::string_view),
                            uint64_t Counters::*count, const std::string& person, double before,
                            double after) {
    const std::string from = key(before, person), to = key(after, person);
    const std::string zero = key(0, person);
    if (from == to) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
    if (from != zero) {
      txn_->Delete(from);
      --(c->*count);
    }
    if (to != zero) {
      txn_->Put(to, "");
      ++(c->*count);
    }
    return absl::OkStatus();
  }

  // --- value ------------------------------------------------------------------------------------

  // The community value of every person whose figures the batch changed, and its index: at the
  // batch's end, from the figures then (a function of the log's prefix, however it is batched).
  absl::Status Revalue() {
    // In person order, so that the batch's writes do not depend on the hash set's.
    std::vector<std::string> dirty(dirty_.begin(), dirty_.end());
    std::sort(dirty.begin(), dirty.end());
    for (const std::string& person : dirty) {
      // A person's id is a stream's (identity/grouping.h): a person record exists only for a
      // group of streams, whose id stream names it; a stream of its own is its person.
      IHS_ASSIGN_OR_RETURN(StreamSlot * slot, StreamSlotOf(person));
      StreamRec* s = slot->value ? &*slot->value : nullptr;
      PersonRec* p = nullptr;
      if (s == nullptr || !s->person.empty()) {
        IHS_ASSIGN_OR_RETURN(p, persons_.Mutable(*txn_, PersonKey(person)));
        if (p == nullptr) continue;  // no longer a person
      }
      double *value = nullptr, *risk = nullptr, *indexed = nullptr;
      double new_value = 0, new_risk = 0, standing = 0;
      uint64_t* indexed_reach = nullptr;
      uint64_t reach = 0;
      if (p != nullptr) {
        value = &p->value;
        risk = &p->risk;
        indexed = &p->indexed_standing;
        standing = p->standing;
        indexed_reach = &p->indexed_reach;
        reach = p->reach;
        new_value = CommunityValue(p->reach, p->posts, p->standing);
        uint64_t own = 0, carried = 0;
        for (const std::string& st : p->streams) {
          IHS_ASSIGN_OR_RETURN(StreamRec * r, streams_.Find(*txn_, StreamKey(st)));
          if (r == nullptr) continue;
          own = std::max(own, r->own_audience);
          carried += r->carried_audience;
        }
        new_risk = AudienceAtRisk(own, carried, p->posts);
      } else {
        s = MutableStream(slot);
        value = &s->value;
        risk = &s->risk;
        indexed = &s->indexed_standing;
        standing = s->standing;
        indexed_reach = &s->indexed_reach;
        reach = s->reach;
        new_value = CommunityValue(s->reach, s->posts, s->standing);
        new_risk = AudienceAtRisk(s->own_audience, s->carried_audience, s->posts);
      }
      IHS_RETURN_IF_ERROR(ReindexValue(person, *value, new_value));
      IHS_RETURN_IF_ERROR(ReindexScore(RiskKey, &Counters::risk_persons, person, *risk, new_risk));
      IHS_RETURN_IF_ERROR(ReindexStanding(person, *indexed, standing));
      IHS_RETURN_IF_ERROR(Reindex(person, *indexed_reach, reach));
      *indexed_reach = reach;
      *value = new_value;
      *risk = new_risk;
      *indexed = standing;
    }
    dirty_.clear();
    return absl::OkStatus();
  }

  absl::Status ReindexValue(const std::string& person, double before, double after) {
    return ReindexScore(ValueKey, &Counters::value_persons, person, before, after);
  }

  // The stream leaves the graph (an erasure): its edges and the edges to it go, the residuals
  // follow, and its standing is taken from its person.
  absl::Status LeaveGraph(const std::string& stream, const std::vector<std::string>& sources) {
    IHS_ASSIGN_OR_RETURN(StreamSlot * slot, StreamSlotOf(stream));
    StreamRec* s = MutableStream(slot);
    if (!s->in_graph) return absl::OkStatus();
    std::vector<std::pair<std::string, uint64_t>> old = std::move(s->out);
    uint64_t old_total = s->out_total;
    s->out.clear();
    s->out_total = 0;
    OutChanged(slot);
    IHS_RETURN_IF_ERROR(RowChanged(stream, old, old_total));
    for (const std::string& source : sources) {
      IHS_ASSIGN_OR_RETURN(StreamSlot * from, StreamSlotOf(source));
      StreamRec* const u = MutableStream(from);
      auto it = std::lower_bound(u->out.begin(), u->out.end(), std::make_pair(stream, uint64_t{0}));
      if (it == u->out.end() || it->first != stream) continue;
      old = u->out;
      old_total = u->out_total;
      u->out_total -= it->second;
      u->out.erase(it);
      OutChanged(from);
      IHS_RETURN_IF_ERROR(RowChanged(source, old, old_total));
    }
    s = MutableStream(slot);
    const double standing = s->standing;
    s->standing = 0;
    s->residual = 0;
    s->in_graph = false;
    if (slot->extra.queued) {
      slot->extra.queued = false;
      queue_.erase(std::remove(queue_.begin(), queue_.end(), slot), queue_.end());
    }
    IHS_RETURN_IF_ERROR(AddStanding(stream, -standing));
    IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
    --c->nodes;
    return PushAll();
  }

  // --- erasure ---------------------------------------------------------------------------------

  // The stream's values go; its posts stay in their cascades without its id, and its edges
  // become anonymous counts.
  absl::Status Erase(const std::string& stream) {
    // The scans below read the batch through the Txn: what the caches hold goes there first.
    posts_.Flush(*txn_);
    edges_.Flush(*txn_);
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(stream));
    if (s->erased) return absl::OkStatus();
    std::vector<std::string> sources;
    const std::string into = EdgePrefix(stream);
    IHS_RETURN_IF_ERROR(
        txn_->Scan(into, PrefixEnd(into), [&](absl::string_view key, absl::string_view) {
          sources.emplace_back(key.substr(into.size()));
          return true;
        }));
    IHS_RETURN_IF_ERROR(LeaveGraph(stream, sources));
    IHS_ASSIGN_OR_RETURN(s, MutableStream(stream));
    const uint64_t reach = s->reach;
    if (reach > 0) {
      // Through AddReach so that the person's reach and rank follow.
      s->days.clear();
      IHS_RETURN_IF_ERROR(AddReach(stream, 0, -static_cast<int64_t>(reach)));
      IHS_ASSIGN_OR_RETURN(s, MutableStream(stream));
    }
    if (!s->person.empty()) {
      IHS_ASSIGN_OR_RETURN(PersonRec * person, persons_.Mutable(*txn_, PersonKey(s->person)));
      if (person != nullptr) {
        person->posts -= std::min(person->posts, s->posts);
        person->waited -= std::min(person->waited, s->waited);
        person->went_public -= std::min(person->went_public, s->went_public);
      }
    }
    dirty_.insert(PersonIdOf(stream, *s));
    StreamRec erased;
    erased.person = s->person;
    erased.first_position = s->first_position;
    erased.erased = true;
    erased.value = s->value;  // what the indexes hold, until Revalue takes it out
    erased.risk = s->risk;
    erased.indexed_standing = s->indexed_standing;
    erased.indexed_reach = s->indexed_reach;
    *s = std::move(erased);

    std::vector<std::string> keys;
    auto collect = [&keys](absl::string_view key, absl::string_view) {
      keys.emplace_back(key);
      return true;
    };
    const std::string authored = AuthoredPrefix(stream);
    IHS_RETURN_IF_ERROR(txn_->Scan(authored, PrefixEnd(authored), collect));
    for (const std::string& k : keys) {
      IHS_ASSIGN_OR_RETURN(
          PostRec * p,
          posts_.Mutable(*txn_, PostKey(absl::string_view(k).substr(authored.size()))));
      if (p != nullptr) p->author.clear();
      txn_->Delete(k);
    }
    IHS_ASSIGN_OR_RETURN(Counters * c, MutableCounters());
    keys.clear();
    const std::string in = EdgePrefix(stream);
    IHS_RETURN_IF_ERROR(txn_->Scan(in, PrefixEnd(in), collect));
    for (const std::string& k : keys) {
      const std::string source = k.substr(in.size());
      IHS_ASSIGN_OR_RETURN(EdgeRec * e, edges_.Find(*txn_, k));
      if (e != nullptr) c->anonymous_edges += e->total();
      edges_.Erase(k);
      txn_->Delete(OutKey(source, stream));
    }
    keys.clear();
    const std::string out = OutPrefix(stream);
    IHS_RETURN_IF_ERROR(txn_->Scan(out, PrefixEnd(out), collect));
    for (const std::string& k : keys) {
      const std::string target = k.substr(out.size());
      const std::string edge = EdgeKey(target, stream);
      IHS_ASSIGN_OR_RETURN(EdgeRec * e, edges_.Find(*txn_, edge));
      if (e != nullptr) {
        const uint64_t total = e->total();
        IHS_ASSIGN_OR_RETURN(StreamRec * t, MutableStream(target));
        t->anonymous_in += total;
      }
      edges_.Erase(edge);
      txn_->Delete(k);
    }
    return absl::OkStatus();
  }

  // --- identity --------------------------------------------------------------------------------

  // The band appender's own events, folded so that it knows what it has published.
  absl::Status ApplyBand(schema::CommunityBand::Reader b) {
    const std::string key = BandKey(View(b.getClause()), View(b.getParty()));
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn_->Get(key));
    BandRec band;
    if (v) {
      IHS_ASSIGN_OR_RETURN(band, DecodeBand(*v));
    }
    band.inside = b.getInside();
    ++band.count;
    txn_->Put(key, EncodeBand(band));
    return absl::OkStatus();
  }

  absl::Status ApplyLink(schema::IdentityLink::Reader l) {
    for (const std::string& p : identity::LinkedParties(l)) {
      IHS_RETURN_IF_ERROR(StreamOf(p).status());
    }
    return identity::ForEachLinkChange(
        l, [this](const std::string& a, const std::string& b) { return Join(a, b); },
        [this](const std::string& a, const std::string& b) { return Unlink(a, b); });
  }

  // The person `id`'s streams and links.
  absl::StatusOr<PersonRec> PersonNamed(const std::string& id) {
    IHS_ASSIGN_OR_RETURN(PersonRec * p, persons_.Find(*txn_, PersonKey(id)));
    if (p != nullptr) return *p;
    IHS_ASSIGN_OR_RETURN(StreamRec * s, StreamOf(id));
    PersonRec alone;
    alone.streams = {id};
    alone.reach = s->reach;
    alone.standing = s->standing;
    alone.posts = s->posts;
    alone.value = s->value;
    alone.waited = s->waited;
    alone.went_public = s->went_public;
    alone.risk = s->risk;
    alone.indexed_standing = s->indexed_standing;
    alone.indexed_reach = s->indexed_reach;
    return alone;
  }

  absl::Status Join(const std::string& a, const std::string& b) {
    IHS_ASSIGN_OR_RETURN(StreamRec * sa, StreamOf(a));
    const std::string pa = PersonIdOf(a, *sa);
    IHS_ASSIGN_OR_RETURN(StreamRec * sb, StreamOf(b));
    const std::string pb = PersonIdOf(b, *sb);
    IHS_ASSIGN_OR_RETURN(PersonRec merged, PersonNamed(pa));
    merged.links.emplace_back(std::min(a, b), std::max(a, b));
    std::vector<std::string> old{pa};
    if (pb != pa) {
      IHS_ASSIGN_OR_RETURN(PersonRec second, PersonNamed(pb));
      merged.streams.insert(merged.streams.end(), second.streams.begin(), second.streams.end());
      std::sort(merged.streams.begin(), merged.streams.end());
      merged.links.insert(merged.links.end(), second.links.begin(), second.links.end());
      old.push_back(pb);
    }
    return Regroup(merged.streams, merged.links, old);
  }

  absl::Status Unlink(const std::string& a, const std::string& b) {
    IHS_ASSIGN_OR_RETURN(StreamRec * sa, StreamOf(a));
    const std::string pa = PersonIdOf(a, *sa);
    IHS_ASSIGN_OR_RETURN(StreamRec * sb, StreamOf(b));
    if (PersonIdOf(b, *sb) != pa) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(PersonRec person, PersonNamed(pa));
    if (!identity::RemoveLink(person.links, a, b)) return absl::OkStatus();
    return Regroup(person.streams, person.links, {pa});
  }

  // Makes persons of `streams` joined by `links` (identity::GroupStreams), with the reach of
  // their streams, in place of the `old` persons.
  absl::Status Regroup(const std::vector<std::string>& streams,
                       const std::vector<std::pair<std::string, std::string>>& links,
                       const std::vector<std::string>& old) {
    for (const std::string& o : old) {
      IHS_ASSIGN_OR_RETURN(PersonRec p, PersonNamed(o));
      IHS_RETURN_IF_ERROR(Reindex(o, p.indexed_reach, 0));
      IHS_RETURN_IF_ERROR(ReindexStanding(o, p.indexed_standing, 0));
      IHS_RETURN_IF_ERROR(ReindexValue(o, p.value, 0));
      IHS_RETURN_IF_ERROR(ReindexScore(RiskKey, &Counters::risk_persons, o, p.risk, 0));
      persons_.Erase(PersonKey(o));
    }
    IHS_ASSIGN_OR_RETURN(
        auto groups, identity::GroupStreams(
                         streams, links, [this](const std::string& s) -> absl::StatusOr<uint64_t> {
                           IHS_ASSIGN_OR_RETURN(StreamRec * r, StreamOf(s));
                           return r->first_position;
                         }));
    for (auto& [id, g] : groups) {
      PersonRec p;
      for (const std::string& s : g.streams) {
        IHS_ASSIGN_OR_RETURN(StreamRec * r, MutableStream(s));
        r->person = g.streams.size() > 1 ? id : "";
        p.reach += r->reach;
        p.standing += r->standing;
        p.posts += r->posts;
        p.waited += r->waited;
        p.went_public += r->went_public;
        r->value = 0;  // the old persons' are out of the indexes
        r->risk = 0;
        r->indexed_standing = 0;
        r->indexed_reach = 0;
      }
      dirty_.insert(id);  // Revalue indexes it
      if (g.streams.size() > 1) {
        p.streams = std::move(g.streams);
        p.links = std::move(g.links);
        persons_.Set(PersonKey(id), std::move(p));
      }
    }
    return absl::OkStatus();
  }

  Txn* txn_ = nullptr;
  uint64_t position_ = 0;
  int64_t recorded_at_ = 0;
  Records<StreamRec, StreamLinks> streams_{DecodeStream, EncodeStream};
  Records<PostRec> posts_{DecodePost, EncodePost};
  Records<PersonRec> persons_{DecodePerson, EncodePerson};
  Records<EdgeRec> edges_{DecodeEdge, EncodeEdge};
  std::optional<Counters> counters_;
  bool counters_dirty_ = false;
  // Streams whose residual is above the threshold, in the order they rose above it; empty
  // between events.
  std::deque<StreamSlot*> queue_;  // the streams whose residual waits to be pushed
  // Persons whose figures changed since the last Flush, in order (Revalue).
  absl::flat_hash_set<std::string> dirty_;
};

}  // namespace

std::unique_ptr<Projection> NewCommunityProjection() {
  return std::make_unique<CommunityProjection>();
}

}  // namespace ihs::projections::community
