#include "projections/segments/segments.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/prefetch.h"
#include "common/status_macros.h"
#include "projections/bulk.h"
#include "projections/identity/grouping.h"
#include "projections/identity/identity.h"
#include "projections/internal/hint_table.h"
#include "projections/packed_record.h"
#include "projections/segments/evaluate.h"
#include "projections/segments/state.h"
#include "schema/json.h"
#include "schema/touchpoint.h"
#include "store/types.h"

namespace ihs::projections::segments {
namespace {

using schema::Direction;
using schema::TouchpointType;
using schema::TransitionCause;

using store::IsSystemStream;

bool Waits(const StoredTouch& t) { return schema::WaitsForAnswer(t.direction, t.type); }

template <typename T>
struct Cached {
  std::optional<T> value;  // nullopt: no such record (or deleted)
  bool dirty = false;
};

// A person's cached record, with the due its stored timer key ("W") holds: the projection
// writes timer keys when it writes the person (Flush), not at every change.
struct CachedPerson : Cached<PersonRec> {
  int64_t stored_due = 0;  // 0: no timer key
};

// A segment's count, with the value the state held when it was read (a shard's changes are
// what it added to that: SegmentsProjection::BeforeWriteOut).
struct CachedCount : Cached<int64_t> {
  int64_t base = 0;
};

// An unanswered condition's spilled messages (kept.h SpillStore) as keys of the state ("K" and
// "V", segments.h). Errors are kept in `error` (the first one) for the caller to return.
class KeySpill : public SpillStore {
 public:
  KeySpill(Txn& txn, absl::string_view person, uint32_t index, absl::Status& error)
      : txn_(txn), person_(person), index_(index), error_(error) {}

  void Put(uint64_t slot, const KeptTouch& t) override {
    txn_.Put(SpillKey(person_, index_, slot), EncodeSpilled(t));
    txn_.Put(SpillIndexKey(person_, index_, t.event_id()), BigEndian64(slot));
  }
  std::optional<KeptTouch> Get(uint64_t slot) override {
    absl::StatusOr<std::optional<std::string>> v = txn_.Get(SpillKey(person_, index_, slot));
    if (!Ok(v.status()) || !*v) return std::nullopt;
    absl::StatusOr<KeptTouch> t = DecodeSpilled(**v);
    if (!Ok(t.status())) return std::nullopt;
    return *t;
  }
  std::optional<uint64_t> Find(absl::string_view event_id) override {
    absl::StatusOr<std::optional<std::string>> v =
        txn_.Get(SpillIndexKey(person_, index_, event_id));
    if (!Ok(v.status()) || !*v) return std::nullopt;
    if ((*v)->size() != 8) {
      Ok(absl::DataLossError("segments state: a spill index is not 8 bytes"));
      return std::nullopt;
    }
    return GetBigEndian64((*v)->data());
  }
  void Remove(uint64_t slot, absl::string_view event_id) override {
    txn_.Delete(SpillKey(person_, index_, slot));
    txn_.Delete(SpillIndexKey(person_, index_, event_id));
  }

 private:
  bool Ok(const absl::Status& s) {
    if (!s.ok() && error_.ok()) error_ = s;
    return s.ok();
  }
  Txn& txn_;
  const absl::string_view person_;
  const uint32_t index_;
  absl::Status& error_;
};

// A live segment as the projection evaluates it.
struct Live {
  std::string name;
  uint32_t version = 0;
  Rule rule;
  Clauses clauses;  // of `rule`, for `why`
  // Its conditions over touchpoints, each with its number among the projection's (Kept::index).
  std::vector<std::pair<const Condition*, uint32_t>> filters;
};

class SegmentsProjection final : public Projection, public ShardedRebuild {
 public:
  absl::string_view name() const override { return kName; }
  // 2: kept state per condition (kept.h). 3: a public request or complaint waits for an answer
  // too (schema/touchpoint.h). 4: community conditions (communityBand events).
  // 5: a key per touchpoint and per thread, not one record per stream.
  uint32_t version() const override { return 5; }

  absl::Status Apply(const store::StoredEvent& stored, Txn& txn) override {
    IHS_RETURN_IF_ERROR(Arrive(stored, txn));
    const schema::Event::Reader ev = stored.event();
    const std::string stream(ev.getStreamId().cStr(), ev.getStreamId().size());
    if (IsSystemStream(stream)) {
      if (stream == store::kSegmentsStream && ev.isSegmentDefinition()) {
        return ApplyDefinition(ev);
      }
      if (ev.isIdentityLink()) return ApplyLink(ev);
      if (stream == store::kCommunityStream && ev.isCommunityBand()) return ApplyBand(ev);
      return absl::OkStatus();
    }
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(stream));
    switch (ev.which()) {
      case schema::Event::TOUCHPOINT: {
        TouchChange change;
        IHS_RETURN_IF_ERROR(ApplyTouch(stream, *s, ev, &change));
        if (change.appended) return Take(s->person, change.touch, change.answers);
        if (!change.changed) return absl::OkStatus();
        return Reevaluate(s->person, TransitionCause::EVENT, nullptr, /*remake=*/true);
      }
      case schema::Event::PARTY_PROFILE: {
        s->kind = ev.getPartyProfile().getKind();
        s->cohort = std::string(View(ev.getPartyProfile().getCohort()));
        s->profile_position = position_;
        // The latest profile of any of the person's streams speaks for the person: this one.
        // Kept states do not depend on the profile, so nothing is made again.
        const std::string person = s->person;
        IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(person));
        p->profile.kind =
            s->kind == schema::PartyKind::UNSPECIFIED ? "" : schema::EnumName(s->kind);
        p->profile.cohort = s->cohort;
        return Reevaluate(person, TransitionCause::EVENT, nullptr, /*remake=*/false, p);
      }
      case schema::Event::ERASURE_REQUEST: {
        // Topics and sentiment may come from the content: they go with it. The one event whose
        // cost grows with the stream: it visits every touchpoint.
        bool changed = false;
        for (uint64_t seq = 0; seq < s->touch_count; ++seq) {
          const std::string key = TouchKey(stream, seq);
          IHS_ASSIGN_OR_RETURN(StoredTouch t, ReadTouch(key));
          if (t.topics.empty() && std::isnan(t.sentiment)) continue;
          t.topics.clear();
          t.sentiment = std::nanf("");
          txn_->Put(key, EncodeTouch(t));
          changed = true;
        }
        if (!changed) return absl::OkStatus();
        return Reevaluate(s->person, TransitionCause::ERASURE, nullptr, /*remake=*/true);
      }
      default:
        return absl::OkStatus();
    }
  }

  absl::Status Flush(Txn& txn) override {
    txn_ = &txn;
    IHS_RETURN_IF_ERROR(WriteHeld());
    WriteRecords();
    txn.Put(kNextSeqKey, BigEndian64(next_seq_));
    // The tag: where the batch ends and the projection's clock. Every batch writes it, so the
    // next one knows from it whether this one was committed; and a rebuild that reached the same
    // position and clock writes the same bytes.
    tag_ = BigEndian64(txn.position());
    PutBigEndian64(&tag_, static_cast<uint64_t>(now_));
    txn.Put(kTagKey, tag_);
    verified_ = false;
    mutated_ = false;
    return absl::OkStatus();
  }

  void Discard() override {
    ClearCaches();
    held_.clear();
    stream_hints_.Release();  // 4 MiB each that only a bulk phase uses
    person_hints_.Release();
    dropped_timers_.clear();
    counts_.clear();
    verified_ = false;
    // A batch that failed before its Flush changed what is held across batches: load it again.
    if (mutated_) loaded_ = false;
  }

  absl::StatusOr<int64_t> NextTimer(Txn& txn) override {
    IHS_RETURN_IF_ERROR(Begin(txn));
    return timers_.empty() ? kNoTimer : timers_.begin()->first;
  }

  absl::Status AdvanceClock(int64_t until, Txn& txn) override {
    IHS_RETURN_IF_ERROR(Begin(txn));
    position_ = txn.position();
    return FireTimers(until);
  }

  // --- a rebuild sharded by person (docs/segments.md "Cost") -------------------------------------

  ShardedRebuild* sharded_rebuild() override { return this; }
  // On two cores two shards gained nothing (bench/RESULTS.md, 2026-12-07 twelfth entry): the
  // first touch of memory, which a thread of tcmalloc_huge_pages.cc does on an idle core for one
  // instance, falls on the shards, and they read the log once more first.
  size_t min_shards() const override { return 4; }

  // Every stream that an identityLink below the horizon names joins one group with the others it
  // names (links and unlinks alike): a person at any moment lies inside one group, so a shard
  // holds whole persons. Shard 0 reads the links once and shares them.
  absl::Status PrepareShards(store::LogReader& log, uint64_t from, uint64_t horizon,
                             const std::vector<ShardedRebuild*>& shards) override {
    (void)from;  // a person's links may lie below it
    auto groups = std::make_shared<Groups>();
    store::ReadOptions ro;
    ro.open_content = false;
    for (uint64_t pos = 0; pos < horizon;) {
      IHS_ASSIGN_OR_RETURN(std::vector<store::StoredEvent> events,
                           log.ReadAll(pos, std::min<uint64_t>(16384, horizon - pos), ro));
      if (events.empty()) break;
      for (const store::StoredEvent& e : events) {
        const schema::Event::Reader ev = e.event();
        if (!ev.isIdentityLink() || !IsSystemStream(View(ev.getStreamId()))) continue;
        const auto parties = ev.getIdentityLink().getParties();
        for (uint32_t i = 1; i < parties.size(); ++i) {
          groups->Join(View(parties[0]), View(parties[i]));
        }
      }
      pos = events.back().position() + 1;
    }
    groups->Settle();
    for (size_t i = 0; i < shards.size(); ++i) {
      auto* s = static_cast<SegmentsProjection*>(shards[i]);
      s->shard_ = i;
      s->shards_ = shards.size();
      s->sharded_phase_ = true;
      s->groups_ = groups;
    }
    return absl::OkStatus();
  }

  size_t ShardOf(const store::StoredEvent& stored, size_t shards) const override {
    const schema::Event::Reader ev = stored.event();
    const absl::string_view stream = View(ev.getStreamId());
    if (!IsSystemStream(stream)) return ShardOfStream(stream, shards);
    if (stream == store::kSegmentsStream && ev.isSegmentDefinition()) return kEveryShard;
    if (ev.isIdentityLink()) {
      const auto parties = ev.getIdentityLink().getParties();
      return parties.size() == 0 ? 0 : ShardOfStream(View(parties[0]), shards);
    }
    if (stream == store::kCommunityStream && ev.isCommunityBand()) {
      return ShardOfStream(View(ev.getCommunityBand().getParty()), shards);
    }
    return 0;  // Apply passes it by
  }

  // Another shard's event: this shard's clock moves as Apply's would.
  absl::Status Observe(const store::StoredEvent& stored, Txn& txn) override {
    return Arrive(stored, txn);
  }

  // Numbers the transitions every shard holds in the order one instance would have made them
  // (Held::Before), and settles the counts; each shard writes its own at Flush.
  absl::Status BeforeWriteOut(const std::vector<ShardedRebuild*>& shards) override {
    std::vector<SegmentsProjection*> all;
    for (ShardedRebuild* s : shards) all.push_back(static_cast<SegmentsProjection*>(s));
    std::vector<size_t> at(all.size(), 0);
    uint64_t seq = next_seq_;
    for (;;) {
      SegmentsProjection* least = nullptr;
      size_t which = 0;
      for (size_t i = 0; i < all.size(); ++i) {
        if (at[i] >= all[i]->held_.size()) continue;
        if (least == nullptr || all[i]->held_[at[i]].Before(least->held_[at[which]])) {
          least = all[i];
          which = i;
        }
      }
      if (least == nullptr) break;
      least->held_[at[which]++].seq = seq++;
    }
    // The counts: what the state held, and each shard's changes to it.
    std::map<std::string, std::pair<int64_t, int64_t>> totals;  // base, total
    for (SegmentsProjection* s : all) {
      if (s->next_seq_ != next_seq_) {
        return absl::InternalError("the shards of a segments rebuild began at different seqs");
      }
      for (const auto& [key, c] : s->counts_) {
        auto [it, fresh] = totals.try_emplace(key, c.base, c.base);
        if (it->second.first != c.base) {
          return absl::InternalError("the shards of a segments rebuild read different counts");
        }
        it->second.second += c.value.value_or(0) - c.base;
      }
    }
    for (SegmentsProjection* s : all) {
      s->next_seq_ = seq;
      for (auto& [key, c] : s->counts_) {
        c.value = c.base = totals.at(key).second;
        c.dirty = true;
      }
    }
    return absl::OkStatus();
  }

  // Keys that every shard writes alike (the tag, the next seq, the definitions, the counts once
  // BeforeWriteOut settled them).
  absl::StatusOr<std::string> MergeShards(absl::string_view key, std::string a,
                                          std::string b) override {
    if (a == b) return a;
    return absl::InternalError(absl::StrCat("two shards of the segments rebuild wrote different ",
                                            "values of the key ", absl::CHexEscape(key)));
  }

  // In a bulk phase: stage 0 fetches the hint of the event's stream, the place of its record in
  // the cache and the hint of the person of the same name (a stream is its own person until it
  // is linked), stage 1 their cached nodes, stage 2 what Reevaluate reads first of the person and
  // the place of the person's record in the cache. MutableStream and MutablePerson put the hints.
  int prefetch_stages() const override { return 3; }
  void Prefetch(const store::StoredEvent& stored, int stage) const override {
    if (!stream_hints_.enabled()) return;
    const absl::string_view stream = View(stored.event().getStreamId());
    PrefetchPerson(stream, stage);
    const size_t hash = IdHash(stream);
    switch (stage) {
      case 0:
        stream_hints_.PrefetchBucket(hash);
        streams_.prefetch(StreamKey(stream));
        return;
      case 1:
        if (const StreamNode* s = stream_hints_.Find(hash)) PrefetchBytes(s, sizeof(*s));
        return;
      default:
        if (const StreamNode* s = stream_hints_.Find(hash); s != nullptr && s->second.value) {
          persons_.prefetch(PersonKey(s->second.value->person));
        }
        return;
    }
  }

 private:
  // Writes the cached records that changed into the batch (Txn::Scan sees them then).
  void WriteRecords() {
    Txn& txn = *txn_;
    for (auto& [key, c] : streams_) {
      if (!c.dirty) continue;
      c.dirty = false;
      c.value ? txn.Put(key, EncodeStream(*c.value)) : txn.Delete(key);
    }
    // Timers: those of persons deleted, then those that moved.
    for (const auto& [due, person] : dropped_timers_) txn.Delete(TimerKey(due, person));
    dropped_timers_.clear();
    for (auto& [key, c] : persons_) {
      if (!c.dirty) continue;
      c.dirty = false;
      if (!c.value) {
        txn.Delete(key);
        continue;
      }
      PersonRec& p = *c.value;
      if (p.due != c.stored_due) {
        const absl::string_view person = absl::string_view(key).substr(1);
        if (c.stored_due != 0) txn.Delete(TimerKey(c.stored_due, person));
        if (p.due != 0) txn.Put(TimerKey(p.due, person), "");
        c.stored_due = p.due;
      }
      txn.Put(key, EncodePerson(p));
    }
    for (auto& [key, c] : counts_) {
      if (!c.dirty) continue;
      c.dirty = false;
      txn.Put(key, BigEndian64(static_cast<uint64_t>(*c.value)));
    }
  }

  // What every event does first, applied or observed: the timers due before it fire.
  absl::Status Arrive(const store::StoredEvent& stored, Txn& txn) {
    IHS_RETURN_IF_ERROR(Begin(txn));
    const schema::Event::Reader ev = stored.event();
    position_ = stored.position();
    IHS_RETURN_IF_ERROR(FireTimers(ev.getRecordedAt()));
    now_ = std::max(now_, ev.getRecordedAt());
    if (sharded_phase_ && ev.isPartyProfile()) {
      kinds_[View(ev.getStreamId())] = ev.getPartyProfile().getKind();
    }
    return absl::OkStatus();
  }

  // Streams joined by identity links, each group named by one of its streams.
  class Groups {
   public:
    void Join(absl::string_view a, absl::string_view b) {
      const std::string ra = Root(std::string(a)), rb = Root(std::string(b));
      if (ra != rb) parent_[std::max(ra, rb)] = std::min(ra, rb);
    }
    // Points every stream at its group's name.
    void Settle() {
      for (auto& [stream, up] : parent_) up = Root(up);
    }
    // The group's name (the stream itself if no link names it). After Settle.
    absl::string_view Of(absl::string_view stream) const {
      auto it = parent_.find(stream);
      return it == parent_.end() ? stream : absl::string_view(it->second);
    }

   private:
    std::string Root(std::string s) {
      for (;;) {
        auto [it, fresh] = parent_.try_emplace(s, s);
        if (fresh || it->second == s) return s;
        s = it->second;
      }
    }
    absl::flat_hash_map<std::string, std::string> parent_;
  };

  size_t ShardOfStream(absl::string_view stream, size_t shards) const {
    const absl::string_view group = groups_ != nullptr ? groups_->Of(stream) : stream;
    return IdHash(group) % shards;
  }
  // Whether this instance applies the person's events (always, unless in a sharded bulk phase).
  bool Mine(absl::string_view person) const {
    return !sharded_phase_ || shards_ <= 1 || ShardOfStream(person, shards_) == shard_;
  }

  // A transition of a sharded bulk phase, held until BeforeWriteOut gives it its seq and Flush
  // writes it: its message packed with seq 0, and where one instance would have made it.
  struct Held {
    uint64_t position = 0;  // of the event that made it
    bool own = false;       // by the event itself, not by a timer due before it
    int64_t due = 0;        // a timer's: when it was due
    absl::string_view who;  // a timer's person, or the person a definition's scan was at
    absl::string_view segment, person, message;  // kept in the bulk phase's memory
    uint64_t seq = 0;
    // Before in the order one instance makes transitions: by event, a timer's before the event's
    // own, timers by (due, person), a definition's scan by person. Within one shard, the order it
    // held them in (which agrees): only equal keys of one shard compare neither way.
    bool Before(const Held& o) const {
      return std::tie(position, own, due, who) < std::tie(o.position, o.own, o.due, o.who);
    }
  };

  // Where the transitions being made stand in that order (Held).
  void Ordering(bool own, int64_t due, absl::string_view who) {
    order_own_ = own;
    order_due_ = due;
    order_who_ = std::string(who);
  }

  // Writes the transitions held, with their seqs (Flush).
  absl::Status WriteHeld() {
    if (held_.empty()) return absl::OkStatus();
    BulkPhase* bulk = txn_->bulk();
    if (bulk == nullptr) return absl::InternalError("segments: transitions held outside a rebuild");
    for (const Held& h : held_) {
      bulk->PutInOrder(FeedKey(h.seq), bulk->Keep(WithSeq(h.message, h.seq)));
      txn_->Put(HistoryKey(h.segment, h.person, h.seq), "");
    }
    held_.clear();
    return absl::OkStatus();
  }

  // --- caches ----------------------------------------------------------------------------------

  using StreamNode = std::pair<const std::string, Cached<StreamRec>>;
  using PersonNode = std::pair<const std::string, CachedPerson>;

  // A stream's or a person's id, for the hint tables.
  static size_t IdHash(absl::string_view id) { return absl::Hash<absl::string_view>()(id); }

  // Drops the records held and the hints that point into them.
  void ClearCaches() {
    streams_.clear();
    persons_.clear();
    stream_hints_.Clear();
    person_hints_.Clear();
  }

  // In a bulk phase, the person's record: stage 0 fetches its hint, stage 1 its cached node,
  // stage 2 what Reevaluate reads first of it (dues, memberships, kept states).
  void PrefetchPerson(absl::string_view person, int stage) const {
    const size_t hash = IdHash(person);
    if (stage == 0) return person_hints_.PrefetchBucket(hash);
    const PersonNode* node = person_hints_.Find(hash);
    if (node == nullptr) return;
    if (stage == 1) return PrefetchBytes(node, sizeof(*node));
    if (!node->second.value) return;
    const PersonRec& p = *node->second.value;
    constexpr size_t kMostBytes = 1024;  // of each vector: its first lines
    PrefetchBytes(p.dues.data(), std::min(kMostBytes, p.dues.size() * sizeof(p.dues[0])));
    PrefetchBytes(p.in.data(), p.in.size());
    PrefetchBytes(p.members.data(), std::min(kMostBytes, p.members.size() * sizeof(p.members[0])));
    PrefetchBytes(p.kept.data(), std::min(kMostBytes, p.kept.size() * sizeof(p.kept[0])));
  }

  // Checks, once per batch, that the definitions, timers and seq held in memory are those of the
  // stored state (the tag moves with every batch that wrote), and reloads them if not.
  absl::Status Begin(Txn& txn) {
    txn_ = &txn;
    if (sharded_phase_ && txn.bulk() == nullptr) {
      // The instance that goes on after a sharded bulk phase held its own persons' timers only:
      // all of them are in the state now.
      sharded_phase_ = false;
      shards_ = 1;
      groups_.reset();
      kinds_.clear();
      loaded_ = false;
      verified_ = false;
    }
    if (verified_) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> tag, txn.Get(kTagKey));
    const std::string stored = tag.value_or("");
    if (!loaded_ || stored != tag_) {
      IHS_RETURN_IF_ERROR(Load(stored));
      ClearCaches();
      dropped_timers_.clear();
      counts_.clear();
    }
    verified_ = true;
    return absl::OkStatus();
  }

  absl::Status Load(const std::string& tag) {
    if (!tag.empty() && tag.size() != 16) return absl::DataLossError("segments state: a bad tag");
    now_ = tag.empty() ? 0 : static_cast<int64_t>(GetBigEndian64(tag.data() + 8));
    defs_ = Definitions();
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> n, txn_->Get(kDefinitionCountKey));
    def_count_ = n && n->size() == 8 ? GetBigEndian64(n->data()) : 0;
    epoch_ = 0;
    for (uint64_t i = 0; i < def_count_; ++i) {
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, txn_->Get(DefinitionKey(i)));
      if (!bytes) return absl::DataLossError("segments state: a definition is missing");
      PackedRecord rec(*bytes, "segments");
      IHS_ASSIGN_OR_RETURN(schema::Event::Reader ev, rec.Root<schema::Event>());
      if (ApplyToDefinitions(ev)) epoch_ = i + 1;
    }
    IHS_RETURN_IF_ERROR(Order());
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> seq, txn_->Get(kNextSeqKey));
    next_seq_ = seq && seq->size() == 8 ? GetBigEndian64(seq->data()) : 0;
    timers_.clear();
    absl::Status error;
    IHS_RETURN_IF_ERROR(txn_->Scan("W", "X", [&](absl::string_view key, absl::string_view) {
      if (key.size() < 9) {
        error = absl::DataLossError("segments state: a timer key is short");
        return false;
      }
      const int64_t due =
          static_cast<int64_t>(GetBigEndian64(key.data() + 1) ^ (uint64_t{1} << 63));
      timers_.emplace(due, std::string(key.substr(9)));
      return true;
    }));
    IHS_RETURN_IF_ERROR(error);
    tag_ = tag;
    loaded_ = true;
    mutated_ = false;
    return absl::OkStatus();
  }

  // The live segments in an order where a segment comes after those it names.
  absl::Status Order() {
    order_.clear();
    filters_.clear();
    filter_segment_.clear();
    named_.clear();
    std::map<std::string, int> state;  // 1: visiting, 2: done
    std::function<absl::Status(const Segment&)> visit = [&](const Segment& s) -> absl::Status {
      int& st = state[s.name];
      if (st == 2) return absl::OkStatus();
      if (st == 1) return absl::DataLossError("segments state: definitions form a cycle");
      st = 1;
      for (const std::string& n : s.current().named) {
        const Segment* other = defs_.Find(n);
        if (other == nullptr || !other->live()) {
          return absl::DataLossError("segments state: a rule names a segment that is not live");
        }
        IHS_RETURN_IF_ERROR(visit(*other));
      }
      state[s.name] = 2;
      Live l;
      l.name = s.name;
      l.version = s.current().version;
      IHS_ASSIGN_OR_RETURN(l.rule, ParseRule(s.current().rule));
      order_.push_back(std::move(l));
      return absl::OkStatus();
    };
    for (const auto& [name, s] : defs_.all()) {
      if (s.live()) IHS_RETURN_IF_ERROR(visit(s));
    }
    place_.clear();
    for (uint32_t j = 0; j < order_.size(); ++j) {
      order_[j].clauses = ClausesOf(order_[j].rule);  // order_ no longer moves
      std::vector<const Condition*> all;
      Conditions(order_[j].rule, &all);
      for (const Condition* c : all) {
        if (!HasFilter(*c)) continue;
        order_[j].filters.emplace_back(c, static_cast<uint32_t>(filters_.size()));
        filters_.push_back(c);
        filter_segment_.push_back(j);
      }
      named_.emplace_back();
      for (const std::string& n : SegmentsNamed(order_[j].rule)) named_.back().push_back(place_[n]);
      place_[order_[j].name] = j;
    }
    return absl::OkStatus();
  }

  // The cache's node of `key`, loaded from the state if it is not held yet.
  template <typename Entry, typename Decode>
  absl::StatusOr<std::pair<const std::string, Entry>*> LoadCached(
      absl::node_hash_map<std::string, Entry>& cache, const std::string& key, Decode decode) {
    auto [it, inserted] = cache.try_emplace(key);
    if (inserted) {
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, txn_->Get(key));
      if (bytes) {
        IHS_ASSIGN_OR_RETURN(it->second.value, decode(*bytes));
        if constexpr (std::is_same_v<Entry, CachedPerson>) {
          it->second.stored_due = it->second.value->due;
        }
        if constexpr (std::is_same_v<Entry, CachedCount>) it->second.base = *it->second.value;
      }
    }
    return &*it;
  }

  // The stream's record, or nullptr if the log has not named it.
  absl::StatusOr<const StreamRec*> FindStream(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(StreamNode * node, LoadCached(streams_, StreamKey(stream), DecodeStream));
    return node->second.value ? &*node->second.value : nullptr;
  }

  // The stream's record, made at the current position if the log names it for the first time.
  absl::StatusOr<StreamRec*> MutableStream(const std::string& stream) {
    IHS_ASSIGN_OR_RETURN(StreamNode * node, LoadCached(streams_, StreamKey(stream), DecodeStream));
    if (txn_->bulk() != nullptr) {
      stream_hints_.Enable();
      stream_hints_.Put(IdHash(stream), node);
    }
    Cached<StreamRec>* c = &node->second;
    if (!c->value) {
      StreamRec s;
      s.first_position = position_;
      s.person = stream;
      c->value = std::move(s);
      // Every stream is a person from the start, so that a segment defined later finds it.
      IHS_RETURN_IF_ERROR(MutablePerson(stream).status());
    }
    c->dirty = true;
    return &*c->value;
  }

  // The person's record; a person of one stream has one as soon as it is evaluated.
  absl::StatusOr<PersonRec*> MutablePerson(const std::string& person) {
    IHS_ASSIGN_OR_RETURN(PersonNode * node, LoadCached(persons_, PersonKey(person), DecodePerson));
    if (txn_->bulk() != nullptr) {
      person_hints_.Enable();
      person_hints_.Put(IdHash(person), node);
    }
    CachedPerson* c = &node->second;
    if (!c->value) {
      PersonRec p;
      p.streams = {person};
      c->value = std::move(p);
    }
    c->dirty = true;
    return &*c->value;
  }

  void DeletePerson(const std::string& person) {
    CachedPerson& c = persons_[PersonKey(person)];
    if (c.stored_due != 0) dropped_timers_.emplace_back(c.stored_due, person);
    c.stored_due = 0;
    c.value.reset();
    c.dirty = true;
  }

  absl::StatusOr<int64_t*> CountOf(const std::string& segment) {
    IHS_ASSIGN_OR_RETURN(
        auto* node,
        LoadCached(counts_, CountKey(segment), [](absl::string_view b) -> absl::StatusOr<int64_t> {
          if (b.size() != 8) return absl::DataLossError("segments state: a count is not 8 bytes");
          return static_cast<int64_t>(GetBigEndian64(b.data()));
        }));
    CachedCount* c = &node->second;
    if (!c->value) c->value = 0;
    c->dirty = true;
    return &*c->value;
  }

  // --- touchpoints -----------------------------------------------------------------------------

  // What a touchpoint event did to its stream's record.
  struct TouchChange {
    bool changed = false;   // a correction or retraction changed an earlier touchpoint
    bool appended = false;  // it was added as the stream's next touchpoint, `touch`
    StoredTouch touch;
    std::vector<std::pair<std::string, int64_t>> answers;  // it answered these messages then
  };

  // A touchpoint's record; it must exist.
  absl::StatusOr<StoredTouch> ReadTouch(const std::string& key) {
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, txn_->Get(key));
    if (!bytes) return absl::DataLossError("segments state: a touchpoint is missing");
    return DecodeTouch(*bytes);
  }

  // The number of the stream's touchpoint with this event id, if it has one.
  absl::StatusOr<std::optional<uint64_t>> SeqOf(const std::string& stream, absl::string_view id) {
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn_->Get(EventIndexKey(stream, id)));
    if (!v) return std::nullopt;
    if (v->size() != 8) return absl::DataLossError("segments state: an event index is not 8 bytes");
    return GetBigEndian64(v->data());
  }

  // Adds the touchpoint to the stream, or applies a correction or retraction. Reads and writes
  // the touchpoints and threads it concerns, each its own key: the cost is the event's and its
  // thread's, not the stream's.
  absl::Status ApplyTouch(const std::string& stream, StreamRec& s, schema::Event::Reader ev,
                          TouchChange* change) {
    const schema::Touchpoint::Reader t = ev.getTouchpoint();
    if (t.getType() == TouchpointType::CORRECTION || t.getType() == TouchpointType::RETRACTION) {
      IHS_ASSIGN_OR_RETURN(std::optional<uint64_t> seq, SeqOf(stream, View(t.getCorrects())));
      if (!seq) return absl::OkStatus();
      const std::string key = TouchKey(stream, *seq);
      IHS_ASSIGN_OR_RETURN(StoredTouch target, ReadTouch(key));
      if (target.retracted) return absl::OkStatus();
      if (t.getType() == TouchpointType::RETRACTION) {
        target.retracted = true;
      } else {
        target.sentiment = t.getSentiment();
        target.topics.clear();
        for (auto topic : t.getTopics()) target.topics.emplace_back(View(topic));
      }
      txn_->Put(key, EncodeTouch(target));
      change->changed = true;
      return absl::OkStatus();
    }
    StoredTouch& n = change->touch;
    n.seq = s.touch_count;
    n.occurred = ev.getOccurredAt();
    n.position = position_;
    if (ev.getId().size() != n.id.size()) return absl::DataLossError("an event id is not 16 bytes");
    std::memcpy(n.id.data(), ev.getId().begin(), n.id.size());
    n.channel = t.getChannel();
    n.direction = t.getDirection();
    n.type = t.getType();
    for (auto topic : t.getTopics()) n.topics.emplace_back(View(topic));
    n.campaign = std::string(View(t.getCampaignId()));
    n.source = std::string(View(ev.getSourceSystem()));
    n.sentiment = t.getSentiment();
    n.audience = t.getAudienceSize();
    n.original = ev.getCausationId().size() == 0;
    IHS_ASSIGN_OR_RETURN(n.company_reply, IsCompanyReply(t));
    IHS_ASSIGN_OR_RETURN(n.thread, ThreadOf(stream, ev));
    if (!n.thread.empty() && (Waits(n) || n.company_reply)) {
      const std::string key = ThreadKey(stream, n.thread);
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, txn_->Get(key));
      ThreadRec th;
      if (bytes) {
        IHS_ASSIGN_OR_RETURN(th, DecodeThread(*bytes));
      }
      if (Waits(n)) {
        // The company's first reply in the thread at or after it, on any channel.
        for (int64_t r : th.replies) {
          if (r >= n.occurred && (n.answered == 0 || r < n.answered)) n.answered = r;
        }
        th.waiting.push_back({n.seq, n.occurred, n.answered});
      } else {
        // Answers every message of the thread at or before it that has no earlier answer.
        for (Waiting& m : th.waiting) {
          if (m.occurred > n.occurred || (m.answered != 0 && m.answered <= n.occurred)) continue;
          m.answered = n.occurred;
          const std::string mkey = TouchKey(stream, m.seq);
          IHS_ASSIGN_OR_RETURN(StoredTouch message, ReadTouch(mkey));
          message.answered = n.occurred;
          txn_->Put(mkey, EncodeTouch(message));
          change->answers.emplace_back(message.event_id(), n.occurred);
        }
        th.replies.push_back(n.occurred);
      }
      txn_->Put(key, EncodeThread(th));
    }
    if (n.type == TouchpointType::CONSENT_GIVEN || n.type == TouchpointType::CONSENT_REVOKED ||
        n.type == TouchpointType::UNSUBSCRIBE) {
      const bool given = n.type == TouchpointType::CONSENT_GIVEN;
      auto c = std::find_if(s.consents.begin(), s.consents.end(),
                            [&](const ConsentState& x) { return x.channel == n.channel; });
      if (c == s.consents.end()) {
        s.consents.push_back({n.channel, given, position_});
      } else {
        *c = {n.channel, given, position_};
      }
    }
    txn_->Put(TouchKey(stream, n.seq), EncodeTouch(n));
    txn_->Put(EventIndexKey(stream, n.event_id()), BigEndian64(n.seq));
    ++s.touch_count;
    change->appended = true;
    return absl::OkStatus();
  }

  // The timeline's rule (projections/timeline/timeline.cc): the company's reply is an outbound
  // reply, or a public one by an employee.
  absl::StatusOr<bool> IsCompanyReply(schema::Touchpoint::Reader t) {
    if (t.getType() != TouchpointType::REPLY) return false;
    if (t.getDirection() == Direction::OUTBOUND) return true;
    if (t.getDirection() != Direction::PUBLIC || t.getCounterpart().size() == 0) return false;
    if (sharded_phase_) {  // the counterpart's record may be another shard's
      auto it = kinds_.find(View(t.getCounterpart()));
      return it != kinds_.end() && it->second == schema::PartyKind::EMPLOYEE;
    }
    IHS_ASSIGN_OR_RETURN(const StreamRec* c, FindStream(std::string(View(t.getCounterpart()))));
    return c != nullptr && c->kind == schema::PartyKind::EMPLOYEE;
  }

  // The thread as the timeline names it (schema/timeline.capnp TimelineEntry.thread); empty:
  // none.
  absl::StatusOr<std::string> ThreadOf(const std::string& stream, schema::Event::Reader ev) {
    const auto t = ev.getTouchpoint();
    if (t.getThreadId().size() > 0) return std::string(View(t.getThreadId()));
    if (t.getInReplyTo().size() == 16) {
      const absl::string_view target = View(t.getInReplyTo());
      IHS_ASSIGN_OR_RETURN(std::optional<uint64_t> seq, SeqOf(stream, target));
      if (seq) {
        IHS_ASSIGN_OR_RETURN(StoredTouch x, ReadTouch(TouchKey(stream, *seq)));
        if (!x.thread.empty() && !absl::StartsWith(x.thread, "event:")) return x.thread;
      }
      return absl::StrCat("event:", absl::BytesToHexString(target));
    }
    if (schema::WaitsForAnswer(t.getDirection(), t.getType())) {
      return absl::StrCat("event:", absl::BytesToHexString(View(ev.getId())));
    }
    return std::string();
  }

  // --- evaluation ------------------------------------------------------------------------------

  absl::StatusOr<Facts> FactsOf(const PersonRec& p) {
    Facts f;
    size_t touches = 0;
    for (const std::string& stream : p.streams) {
      IHS_ASSIGN_OR_RETURN(const StreamRec* s, FindStream(stream));
      if (s != nullptr) touches += s->touch_count;
    }
    f.touches.reserve(touches);
    uint64_t profile_at = 0;
    std::map<schema::Channel, std::pair<uint64_t, bool>> consent;
    for (const std::string& stream : p.streams) {
      IHS_ASSIGN_OR_RETURN(const StreamRec* s, FindStream(stream));
      if (s == nullptr) continue;
      for (uint64_t seq = 0; seq < s->touch_count; ++seq) {
        IHS_ASSIGN_OR_RETURN(StoredTouch t, ReadTouch(TouchKey(stream, seq)));
        if (!t.retracted) f.touches.push_back(ToTouch(t));
      }
      // The latest profile of any of the person's streams speaks for the person.
      if (s->profile_position != 0 && s->profile_position >= profile_at) {
        profile_at = s->profile_position;
        f.kind = s->kind == schema::PartyKind::UNSPECIFIED ? "" : schema::EnumName(s->kind);
        f.cohort = s->cohort;
      }
      f.community.insert(s->bands.begin(), s->bands.end());
      for (const ConsentState& c : s->consents) {
        auto& [at, given] = consent[c.channel];
        if (c.position >= at) {
          at = c.position;
          given = c.given;
        }
      }
    }
    for (const auto& [channel, v] : consent) f.consent[schema::EnumName(channel)] = v.second;
    return f;
  }

  // Where the person's kept state for filter `index` is, or would go (kept is by index).
  static std::vector<Kept>::iterator FindKept(PersonRec& p, uint32_t index) {
    return std::lower_bound(p.kept.begin(), p.kept.end(), index,
                            [](const Kept& k, uint32_t i) { return k.index < i; });
  }

  // Where the person's membership of `segment` is, or would go (members is by segment name).
  static std::vector<MemberRec>::iterator FindMember(PersonRec& p, const std::string& segment) {
    return std::lower_bound(p.members.begin(), p.members.end(), segment,
                            [](const MemberRec& m, const std::string& n) { return m.segment < n; });
  }

  // The person's kept state for filter `index`, made empty if it holds none.
  static Kept& KeptOf(PersonRec& p, uint32_t index) {
    auto it = FindKept(p, index);
    if (it == p.kept.end() || it->index != index) {
      it = p.kept.insert(it, Kept());
      it->index = index;
    }
    return *it;
  }

  static bool Empty(const Kept& k) {
    return k.count == 0 && k.touches.empty() && k.latest.empty() && k.spilled == 0;
  }

  // Empties the spills of the person's kept states (before they are dropped or made again).
  absl::Status DropSpills(const std::string& person, PersonRec& p) {
    for (Kept& k : p.kept) {
      if (k.slots == 0) continue;
      KeySpill spill(*txn_, person, k.index, spill_error_);
      DropSpill(k, spill);
    }
    return TakeSpillError();
  }

  // Makes the person's kept state again from their streams, for the live rules at now_.
  absl::Status Remake(const std::string& person, PersonRec& p) {
    IHS_ASSIGN_OR_RETURN(Facts f, FactsOf(p));
    p.profile = f;
    IHS_RETURN_IF_ERROR(DropSpills(person, p));
    p.kept.clear();
    for (uint32_t i = 0; i < filters_.size(); ++i) {
      Kept k;
      k.index = i;
      KeySpill spill(*txn_, person, i, spill_error_);
      for (const Touch& t : f.touches) {
        if (Matches(filters_[i]->filter, t)) Keep(*filters_[i], t, now_, k, &spill);
      }
      if (!Empty(k)) p.kept.push_back(std::move(k));
    }
    IHS_RETURN_IF_ERROR(TakeSpillError());
    p.dues.assign(order_.size(), 0);
    p.in.clear();
    p.epoch = epoch_;
    return absl::OkStatus();
  }

  // A touchpoint appended to one of the person's streams: the conditions whose filter picks it
  // keep it, the messages it answered are answered, and the segments that concern evaluated.
  absl::Status Take(const std::string& person, const StoredTouch& stored,
                    const std::vector<std::pair<std::string, int64_t>>& answers) {
    IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(person));
    if (p->epoch != epoch_) return Reevaluate(person, TransitionCause::EVENT, nullptr, true);
    const Touch t = ToTouch(stored);
    std::vector<bool> affected(order_.size(), false);
    for (uint32_t i = 0; i < filters_.size(); ++i) {
      if (!Matches(filters_[i]->filter, t)) continue;
      Kept& k = KeptOf(*p, i);
      KeySpill spill(*txn_, person, i, spill_error_);
      Keep(*filters_[i], t, now_, k, &spill);
      if (Empty(k)) p->kept.erase(FindKept(*p, i));  // it can never count
      affected[filter_segment_[i]] = true;
    }
    for (const auto& [id, at] : answers) {
      for (Kept& k : p->kept) {
        KeySpill spill(*txn_, person, k.index, spill_error_);
        if (Answer(id, at, k, &spill)) affected[filter_segment_[k.index]] = true;
      }
    }
    IHS_RETURN_IF_ERROR(TakeSpillError());
    const bool consent = stored.type == TouchpointType::CONSENT_GIVEN ||
                         stored.type == TouchpointType::CONSENT_REVOKED ||
                         stored.type == TouchpointType::UNSUBSCRIBE;
    if (consent) {  // the latest consent event of any of the person's streams speaks
      p->profile.consent[schema::EnumName(stored.channel)] =
          stored.type == TouchpointType::CONSENT_GIVEN;
    }
    return Reevaluate(person, TransitionCause::EVENT, consent ? nullptr : &affected, false, p);
  }

  // Evaluates the person's live segments at now_ (those `affected` marks, those due by now_ and
  // those that name one whose answer changed; all when nullptr), records what changed, and sets
  // the person's next timer. `remake`: the kept state is made again from the streams first.
  // `p`: the person's record if the caller holds it (MutablePerson's), else looked up.
  absl::Status Reevaluate(const std::string& person, TransitionCause cause,
                          const std::vector<bool>* affected, bool remake, PersonRec* p = nullptr) {
    if (p == nullptr) {
      IHS_ASSIGN_OR_RETURN(p, MutablePerson(person));
    }
    if (remake || p->epoch != epoch_) {
      IHS_RETURN_IF_ERROR(Remake(person, *p));
      affected = nullptr;
    }
    auto member_of = [p](const std::string& name) {
      auto it = FindMember(*p, name);
      return it != p->members.end() && it->segment == name;
    };
    const Live* seg_of = nullptr;  // the segment being evaluated: its conditions' numbers
    bool emptied = false;          // a kept state became empty: drop it at the end
    const ConditionFn condition = [&](const Condition& c, Evidence* evidence) {
      if (!HasFilter(c)) return ProfileVerdict(c, p->profile, member_of);
      uint32_t index = UINT32_MAX;  // always found: seg_of's rule holds c
      for (const auto& [filtered, i] : seg_of->filters) {
        if (filtered == &c) index = i;
      }
      auto it = FindKept(*p, index);
      if (it == p->kept.end() || it->index != index) {
        Kept none;
        return EvaluateKept(c, now_, none, evidence);
      }
      KeySpill spill(*txn_, person, index, spill_error_);
      const Verdict v = EvaluateKept(c, now_, *it, evidence, &spill);
      emptied = emptied || Empty(*it);
      return v;
    };
    if (p->in.size() != order_.size()) {
      p->in.assign(order_.size(), 0);
      for (const MemberRec& m : p->members) {
        if (auto it = place_.find(m.segment); it != place_.end()) p->in[it->second] = 1;
      }
    }
    std::vector<bool> changed(order_.size(), false);
    int64_t next = kNever;
    for (uint32_t j = 0; j < order_.size(); ++j) {
      const Live& seg = order_[j];
      seg_of = &seg;
      bool evaluate =
          affected == nullptr || (*affected)[j] || (p->dues[j] != 0 && p->dues[j] <= now_);
      for (uint32_t n : named_[j]) evaluate = evaluate || changed[n];
      if (evaluate) {
        const Verdict v = Combine(seg.rule, condition);
        // Time moves on whatever the rule says.
        const int64_t due = v.next_change == kNever ? 0 : std::max(v.next_change, now_ + 1);
        p->dues[j] = due;
        if (v.member != (p->in[j] != 0)) {
          changed[j] = true;
          const std::vector<Account> why = ExplainWith(seg.clauses, condition);
          IHS_RETURN_IF_ERROR(Record(seg.name, person, v.member, seg.version, cause, &why));
          p->in[j] = v.member ? 1 : 0;
          auto it = FindMember(*p, seg.name);
          if (v.member) {
            p->members.insert(it, MemberRec{seg.name, now_, seg.version});
          } else {
            p->members.erase(it);
          }
        }
      }
      if (p->dues[j] != 0) next = std::min(next, p->dues[j]);
    }
    IHS_RETURN_IF_ERROR(TakeSpillError());
    // Only an evaluation empties a kept state (Keep adds, Answer moves an answer earlier).
    if (emptied) {
      p->kept.erase(std::remove_if(p->kept.begin(), p->kept.end(), Empty), p->kept.end());
    }
    SetDue(person, *p, next == kNever ? 0 : next);
    return absl::OkStatus();
  }

  // Writes one transition: the feed, the person's history, the member key and the count.
  absl::Status Record(const std::string& segment, const std::string& person, bool entered,
                      uint32_t version, TransitionCause cause, const std::vector<Account>* why) {
    const bool held = sharded_phase_ && shards_ > 1 && txn_->bulk() != nullptr;
    const uint64_t seq = held ? 0 : next_seq_++;
    mutated_ = true;
    capnp::MallocMessageBuilder m(256);  // words; a transition with its clauses fits
    auto t = m.initRoot<schema::Transition>();
    t.setSeq(seq);
    t.setSegment(segment);
    t.setPerson(person);
    t.setAt(now_);
    t.setEntered(entered);
    t.setVersion(version);
    t.setCause(cause);
    t.setPosition(position_);
    if (why != nullptr) {
      auto clauses = t.initClauses(static_cast<unsigned>(why->size()));
      for (unsigned i = 0; i < why->size(); ++i) {
        const Account& a = (*why)[i];
        clauses[i].setText(a.clause);
        clauses[i].setHolds(a.holds);
        clauses[i].setValue(a.value);
        auto events = clauses[i].initEvents(static_cast<unsigned>(a.events.size()));
        for (unsigned j = 0; j < a.events.size(); ++j) events.set(j, AsData(a.events[j]));
      }
    }
    BulkPhase* bulk = txn_->bulk();
    if (bulk != nullptr && sharded_phase_ && shards_ > 1) {
      // A shard: the seq comes when every shard's transitions are ordered (BeforeWriteOut).
      Held h;
      h.position = position_;
      h.own = order_own_;
      h.due = order_due_;
      h.who = bulk->Keep(order_who_);
      h.segment = bulk->Keep(segment);
      h.person = bulk->Keep(person);
      h.message = bulk->Keep(Encode(m));
      held_.push_back(h);
    } else if (bulk != nullptr) {
      // A rebuild: the feed's keys come in order and nothing reads them back while it runs.
      bulk->PutInOrder(FeedKey(seq), bulk->Keep(Encode(m)));
      txn_->Put(HistoryKey(segment, person, seq), "");
    } else {
      txn_->Put(FeedKey(seq), Encode(m));
      txn_->Put(HistoryKey(segment, person, seq), "");
    }
    IHS_ASSIGN_OR_RETURN(int64_t * count, CountOf(segment));
    if (entered) {
      txn_->Put(MemberKey(segment, person), EncodeMember(now_, version));
      ++*count;
    } else {
      txn_->Delete(MemberKey(segment, person));
      --*count;
    }
    return absl::OkStatus();
  }

  void SetDue(const std::string& person, PersonRec& p, int64_t due) {
    if (p.due == due) return;
    mutated_ = true;
    // The timer key moves when the person is written (WriteRecords).
    if (p.due != 0) timers_.erase({p.due, person});
    if (due != 0) timers_.emplace(due, person);
    p.due = due;
  }

  // Fires the timers due before `until`, in (due, person) order, each at its moment.
  absl::Status FireTimers(int64_t until) {
    while (!timers_.empty() && timers_.begin()->first < until) {
      if (person_hints_.enabled()) {  // the persons of the next timers, as Prefetch does
        auto ahead = std::next(timers_.begin());
        for (int stage = 2; stage >= 0 && ahead != timers_.end() && ahead->first < until;
             --stage, ++ahead) {
          PrefetchPerson(ahead->second, stage);
        }
      }
      const auto [due, person] = *timers_.begin();
      Ordering(false, due, person);
      now_ = std::max(now_, due);
      const std::vector<bool> none(order_.size(), false);  // those due, and what names them
      IHS_RETURN_IF_ERROR(Reevaluate(person, TransitionCause::CLOCK, &none, false));
    }
    Ordering(true, 0, "");  // what comes next is the event's own
    return absl::OkStatus();
  }

  // --- definitions -----------------------------------------------------------------------------

  absl::Status ApplyDefinition(schema::Event::Reader ev) {
    mutated_ = true;
    {
      capnp::MallocMessageBuilder m;
      m.setRoot(ev);
      txn_->Put(DefinitionKey(def_count_++), Encode(m));
      txn_->Put(kDefinitionCountKey, BigEndian64(def_count_));
    }
    const std::string name(View(ev.getSegmentDefinition().getName()));
    if (!ApplyToDefinitions(ev)) return absl::OkStatus();  // refused
    epoch_ = def_count_;
    const Segment* after = defs_.Find(name);
    IHS_RETURN_IF_ERROR(Order());
    // Every person is evaluated again at this moment: a retired segment's members leave, a new
    // or changed one takes the members its rule gives.
    WriteRecords();
    std::vector<std::string> persons;
    const std::string from = after->live() ? "P" : MemberKey(name, "");
    std::string to = from;
    to.back() = static_cast<char>(to.back() + 1);
    IHS_RETURN_IF_ERROR(txn_->Scan(from, to, [&](absl::string_view key, absl::string_view) {
      const absl::string_view person = key.substr(from.size());
      if (Mine(person)) persons.emplace_back(person);  // a shard: its own persons
      return true;
    }));
    if (after->live()) {
      for (const std::string& p : persons) {
        Ordering(true, 0, p);
        IHS_RETURN_IF_ERROR(Reevaluate(p, TransitionCause::DEFINITION, nullptr, true));
      }
      Ordering(true, 0, "");
      return absl::OkStatus();
    }
    const uint32_t version = after->current().version;
    for (const std::string& person : persons) {
      Ordering(true, 0, person);
      IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(person));
      auto it = std::find_if(p->members.begin(), p->members.end(),
                             [&](const MemberRec& m) { return m.segment == name; });
      if (it == p->members.end()) continue;
      p->members.erase(it);
      p->in.clear();
      IHS_RETURN_IF_ERROR(
          Record(name, person, false, version, TransitionCause::DEFINITION, nullptr));
    }
    Ordering(true, 0, "");
    return absl::OkStatus();
  }

  // Applies a definition event to defs_; whether it was taken (not refused).
  bool ApplyToDefinitions(schema::Event::Reader ev) {
    const std::string name(View(ev.getSegmentDefinition().getName()));
    const Segment* before = defs_.Find(name);
    const size_t versions = before == nullptr ? 0 : before->versions.size();
    defs_.Apply(ev);
    const Segment* after = defs_.Find(name);
    return after != nullptr && after->versions.size() != versions;
  }

  // --- community -------------------------------------------------------------------------------

  // A communityBand of "$community" (the community projection's band appender): the stream is
  // inside the clause, or not; the person is inside when any of their streams is.
  absl::Status ApplyBand(schema::Event::Reader ev) {
    const auto b = ev.getCommunityBand();
    const std::string party(View(b.getParty()));
    if (party.empty() || IsSystemStream(party)) return absl::OkStatus();
    const std::string clause(View(b.getClause()));
    IHS_ASSIGN_OR_RETURN(StreamRec * s, MutableStream(party));
    auto it = std::lower_bound(s->bands.begin(), s->bands.end(), clause);
    const bool had = it != s->bands.end() && *it == clause;
    if (had == b.getInside()) return absl::OkStatus();
    if (had) {
      s->bands.erase(it);
    } else {
      s->bands.insert(it, clause);
    }
    const std::string person = s->person;
    IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(person));
    std::set<std::string> community;
    for (const std::string& stream : p->streams) {
      IHS_ASSIGN_OR_RETURN(const StreamRec* r, FindStream(stream));
      if (r != nullptr) community.insert(r->bands.begin(), r->bands.end());
    }
    p->profile.community = std::move(community);
    return Reevaluate(person, TransitionCause::EVENT, nullptr, false);
  }

  // --- identity --------------------------------------------------------------------------------

  absl::Status ApplyLink(schema::Event::Reader ev) {
    const auto l = ev.getIdentityLink();
    return identity::ForEachLinkChange(
        l, [this](const std::string& a, const std::string& b) { return Join(a, b); },
        [this](const std::string& a, const std::string& b) { return Unlink(a, b); });
  }

  absl::Status Join(const std::string& a, const std::string& b) {
    IHS_ASSIGN_OR_RETURN(StreamRec * sa, MutableStream(a));
    const std::string pa = sa->person;
    IHS_ASSIGN_OR_RETURN(StreamRec * sb, MutableStream(b));
    const std::string pb = sb->person;
    IHS_ASSIGN_OR_RETURN(PersonRec * first, MutablePerson(pa));
    PersonRec merged = *first;
    merged.links.emplace_back(std::min(a, b), std::max(a, b));
    std::vector<std::string> old{pa};
    if (pb != pa) {
      IHS_ASSIGN_OR_RETURN(PersonRec * second, MutablePerson(pb));
      merged.streams.insert(merged.streams.end(), second->streams.begin(), second->streams.end());
      std::sort(merged.streams.begin(), merged.streams.end());
      merged.links.insert(merged.links.end(), second->links.begin(), second->links.end());
      old.push_back(pb);
    }
    return Regroup(std::move(merged.streams), std::move(merged.links), old);
  }

  absl::Status Unlink(const std::string& a, const std::string& b) {
    IHS_ASSIGN_OR_RETURN(StreamRec * sa, MutableStream(a));
    const std::string pa = sa->person;
    IHS_ASSIGN_OR_RETURN(StreamRec * sb, MutableStream(b));
    if (sb->person != pa) return absl::OkStatus();
    IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(pa));
    PersonRec person = *p;
    if (!identity::RemoveLink(person.links, a, b)) return absl::OkStatus();
    return Regroup(std::move(person.streams), std::move(person.links), {pa});
  }

  // Makes persons of `streams` joined by `links`, one per connected group, named by its stream
  // seen first. A group named as one of the `old` persons keeps its memberships; the other old
  // persons leave their segments. Every group is then evaluated again.
  absl::Status Regroup(std::vector<std::string> streams,
                       std::vector<std::pair<std::string, std::string>> links,
                       const std::vector<std::string>& old) {
    IHS_ASSIGN_OR_RETURN(
        auto groups, identity::GroupStreams(
                         streams, links, [this](const std::string& s) -> absl::StatusOr<uint64_t> {
                           IHS_ASSIGN_OR_RETURN(const StreamRec* r, FindStream(s));
                           return r == nullptr ? position_ : r->first_position;
                         }));
    std::map<std::string, PersonRec> named;  // by person id
    for (auto& [id, g] : groups) {
      PersonRec& p = named[id];
      p.streams = std::move(g.streams);
      p.links = std::move(g.links);
    }
    // The old persons: those that no group continues leave every segment.
    std::map<std::string, PersonRec> previous;
    for (const std::string& o : old) {
      IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(o));
      IHS_RETURN_IF_ERROR(DropSpills(o, *p));  // made again below, or gone
      p->kept.clear();
      previous[o] = *p;
      if (named.count(o)) continue;
      for (const MemberRec& m : p->members) {
        const Segment* seg = defs_.Find(m.segment);
        IHS_RETURN_IF_ERROR(Record(m.segment, o, false,
                                   seg != nullptr ? seg->current().version : m.version,
                                   TransitionCause::IDENTITY, nullptr));
      }
      p->members.clear();
      p->in.clear();
      SetDue(o, *p, 0);
      DeletePerson(o);
    }
    for (auto& [id, g] : named) {
      for (const std::string& s : g.streams) {
        IHS_ASSIGN_OR_RETURN(StreamRec * r, MutableStream(s));
        r->person = id;
      }
      IHS_ASSIGN_OR_RETURN(PersonRec * p, MutablePerson(id));
      if (auto it = previous.find(id); it != previous.end()) {
        g.members = it->second.members;
        g.due = it->second.due;
      } else {  // a stream that becomes a person of its own: nothing yet
        g.members = p->members;
        g.due = p->due;
      }
      *p = std::move(g);
      IHS_RETURN_IF_ERROR(Reevaluate(id, TransitionCause::IDENTITY, nullptr, true));
    }
    return absl::OkStatus();
  }

  Txn* txn_ = nullptr;
  absl::Status spill_error_;  // KeySpill's, until returned
  // The first error of a spill since the last call (OK if none), and forgets it.
  absl::Status TakeSpillError() { return std::exchange(spill_error_, absl::OkStatus()); }
  uint64_t position_ = 0;
  int64_t now_ = 0;

  // Held across batches while the tag says they are current.
  bool loaded_ = false, verified_ = false;
  bool mutated_ = false;  // definitions, timers or seq changed since the last Flush
  std::string tag_;
  Definitions defs_;
  uint64_t def_count_ = 0;
  std::vector<Live> order_;
  uint64_t epoch_ = 0;  // definition events up to the last one taken
  // The conditions over touchpoints of order_'s rules, in order (their numbers: Live::filters),
  // and which segment each is of.
  std::vector<const Condition*> filters_;
  std::vector<uint32_t> filter_segment_;
  std::vector<std::vector<uint32_t>> named_;          // per segment: those its rule names
  absl::flat_hash_map<std::string, uint32_t> place_;  // a live segment's name: its place in order_
  // A B-tree: a person's timer moves at most events, and with 100k persons a red-black tree's
  // pointer chase for each move cost a tenth of a rebuild.
  absl::btree_set<std::pair<int64_t, std::string>> timers_;
  uint64_t next_seq_ = 0;

  // Dropped at the head.
  absl::node_hash_map<std::string, Cached<StreamRec>> streams_;
  absl::node_hash_map<std::string, CachedPerson> persons_;
  std::vector<std::pair<int64_t, std::string>> dropped_timers_;  // of persons deleted
  absl::node_hash_map<std::string, CachedCount> counts_;
  // In a bulk phase, by the hash of the stream's or the person's id (Prefetch): their nodes in
  // streams_ and persons_. Cleared with them (ClearCaches), whose nodes stay where they are
  // until then.
  HintTable<StreamNode> stream_hints_;
  HintTable<PersonNode> person_hints_;

  // A sharded bulk phase (PrepareShard): this instance's shard of shards_, the groups of linked
  // streams (shared by the shards), the transitions held until BeforeWriteOut numbers them, and
  // where the transitions being made stand in the order of one instance (Ordering).
  bool sharded_phase_ = false;
  size_t shard_ = 0, shards_ = 1;
  std::shared_ptr<const Groups> groups_;
  // Each stream's kind from its latest profile, applied or observed: IsCompanyReply asks it of a
  // counterpart, whose record another shard may hold.
  absl::flat_hash_map<std::string, schema::PartyKind> kinds_;
  std::vector<Held> held_;
  bool order_own_ = true;
  int64_t order_due_ = 0;
  std::string order_who_;
};

}  // namespace

std::unique_ptr<Projection> NewSegmentsProjection() {
  return std::make_unique<SegmentsProjection>();
}

}  // namespace ihs::projections::segments
