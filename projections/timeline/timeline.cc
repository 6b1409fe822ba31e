#include "projections/timeline/timeline.h"

#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/field_error.h"
#include "common/prefetch.h"
#include "common/service_hours.h"
#include "common/status_macros.h"
#include "common/time_math.h"
#include "projections/bulk.h"
#include "projections/internal/hint_table.h"
#include "projections/timeline/entry.h"
#include "projections/timeline/format.h"
#include "schema/json.h"

namespace ihs::projections::timeline {
namespace {

// --- the projection ---------------------------------------------------------------------------

class TimelineProjection final : public Projection, public ShardedRebuild {
 public:
  explicit TimelineProjection(size_t max_cached_threads)
      : max_cached_threads_(max_cached_threads) {}
  absl::string_view name() const override { return kName; }
  // 2: records packed. 3: entries in their own form (entry.h), not Cap'n Proto. 4: entries
  // leave occurred_at and position to their keys, and small numbers short (entry form 4). 5: a
  // public request or complaint waits for an answer too (schema/touchpoint.h). 6: a retracted
  // message is not open on its entry either. 7: open messages and response times in keys of
  // their own ("O", "R"), not in the party's record, which no longer grows with its history.
  uint32_t version() const override { return 7; }

  absl::Status Apply(const store::StoredEvent& stored, Txn& txn) override {
    // A rebuild's bulk phase flushes only before it writes out: threads, most of which see no
    // message after their first days, would all stay decoded. Past the bound they go to the
    // Txn in their stored form, and those still in use are read back.
    if (threads_.size() > max_cached_threads_) FlushThreads(txn);
    const schema::Event::Reader ev = stored.event();
    const std::string party(View(ev.getStreamId()));
    if (ev.isPartyProfile()) {
      IHS_ASSIGN_OR_RETURN(PartyState * p, Party(party, txn));
      p->kind = ev.getPartyProfile().getKind();
      kinds_[party] = p->kind;
      txn.Put(PartyKey('K', party), std::string(1, static_cast<char>(p->kind)));
      return absl::OkStatus();
    }
    if (!ev.isTouchpoint()) return absl::OkStatus();
    const schema::Touchpoint::Reader t = ev.getTouchpoint();
    if (!KnownChannel(t.getChannel())) {  // the store refuses them at append
      return absl::InternalError(absl::StrCat("event at position ", stored.position(),
                                              " has channel ", static_cast<int>(t.getChannel()),
                                              ", which this build does not know"));
    }
    if ((t.getType() == TouchpointType::CORRECTION || t.getType() == TouchpointType::RETRACTION) &&
        t.getCorrects().size() == 16) {
      IHS_ASSIGN_OR_RETURN(std::optional<store::StoredEvent> target,
                           txn.FindEarlierEvent(View(t.getCorrects())));
      if (target && target->event().isTouchpoint() &&
          View(target->event().getStreamId()) == party) {
        return Correct(party, stored, *target, txn);
      }
      // A correction of nothing this party has: kept as an entry of its own.
    }
    return Add(party, stored, txn);
  }

  // Writes the party records and threads the batch touched. The decoded records stay cached for
  // the next batches (they equal what is stored once this batch commits), up to a bound.
  absl::Status Flush(Txn& txn) override {
    WriteHeldEntries(txn);
    for (auto* p : dirty_parties_) {
      txn.Put(PartyKey('S', p->first), EncodeParty(p->second.value));
      p->second.dirty = false;
    }
    dirty_parties_.clear();
    if (parties_.size() > kMaxCachedParties) ClearParties();
    FlushThreads(txn);
    // kinds_ stays: a sharded rebuild knows other shards' parties only from it (Observe).
    return absl::OkStatus();
  }

  // The state belongs to the event's stream, except "P" keys (MergeShards) and what KindOf asks
  // of counterparts: Observe keeps every party's kind.
  ShardedRebuild* sharded_rebuild() override { return this; }

  bool Observes(const store::StoredEvent& stored) const override {
    return stored.event().isPartyProfile();
  }

  absl::Status Observe(const store::StoredEvent& stored, Txn&) override {
    const schema::Event::Reader ev = stored.event();
    if (ev.isPartyProfile())
      kinds_[std::string(View(ev.getStreamId()))] = ev.getPartyProfile().getKind();
    return absl::OkStatus();
  }

  // The record of the event's party: stage 0 fetches its hint, stage 1 what Add reads of the
  // record.
  int prefetch_stages() const override { return 2; }
  void Prefetch(const store::StoredEvent& stored, int stage) const override {
    if (!party_hints_.enabled()) return;
    const size_t hash = PartyHash(View(stored.event().getStreamId()));
    if (stage == 0) {
      party_hints_.PrefetchBucket(hash);
      return;
    }
    const PartyNode* node = party_hints_.Find(hash);
    if (node == nullptr) return;
    const char* head = reinterpret_cast<const char*>(node);
    PrefetchBytes(head, reinterpret_cast<const char*>(&node->second.value.channels) - head);
    const schema::Event::Reader ev = stored.event();
    if (ev.isTouchpoint() && KnownChannel(ev.getTouchpoint().getChannel())) {
      __builtin_prefetch(
          &node->second.value.channels[static_cast<size_t>(ev.getTouchpoint().getChannel())]);
    }
  }

  // The entries a bulk phase holds, in key order: parties in the order of their keys (by
  // length, then bytes), and a party's entries by occurred_at, then position.
  void WriteHeldEntries(Txn& txn) {
    if (held_entries_ == 0) return;
    std::vector<PartyNode*> holding;
    for (auto& kv : parties_) {
      if (!kv.second.value.held.empty()) holding.push_back(&kv);
    }
    std::sort(holding.begin(), holding.end(), [](const auto* a, const auto* b) {
      return std::make_pair(a->first.size(), absl::string_view(a->first)) <
             std::make_pair(b->first.size(), absl::string_view(b->first));
    });
    std::string key;
    for (auto* kv : holding) {
      std::vector<HeldEntry>& held = kv->second.value.held;
      std::sort(held.begin(), held.end(), [](const HeldEntry& a, const HeldEntry& b) {
        return std::tie(a.occurred, a.position) < std::tie(b.occurred, b.position);
      });
      key = PartyKey('E', kv->first);
      const size_t prefix = key.size();
      for (const HeldEntry& h : held) {
        key.resize(prefix);
        PutEntrySuffix(&key, h.occurred, h.position);
        txn.bulk()->PutInOrder(key, h.value);
      }
      std::vector<HeldEntry>().swap(held);
    }
    held_entries_ = 0;
  }

  // Writes the threads the batch changed; past the bound, drops every decoded thread.
  void FlushThreads(Txn& txn) {
    for (auto* t : dirty_threads_) {
      txn.Put(t->first, EncodeThread(t->second.value));
      t->second.dirty = false;
    }
    dirty_threads_.clear();
    if (threads_.size() > max_cached_threads_) threads_.clear();
  }

  // Two shards' follow-ups of the same message: one list, in position order.
  absl::StatusOr<std::string> MergeShards(absl::string_view key, std::string a,
                                          std::string b) override {
    if (key.empty() || key[0] != 'P') return ShardedRebuild::MergeShards(key, a, b);
    IHS_ASSIGN_OR_RETURN(std::vector<PendingSwitch> list, DecodePending(a));
    IHS_ASSIGN_OR_RETURN(std::vector<PendingSwitch> more, DecodePending(b));
    list.insert(list.end(), std::make_move_iterator(more.begin()),
                std::make_move_iterator(more.end()));
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& x, const auto& y) { return x.position < y.position; });
    // Both shards hold what an earlier write-out merged and each read back: once each.
    list.erase(std::unique(list.begin(), list.end(),
                           [](const auto& x, const auto& y) { return x.position == y.position; }),
               list.end());
    return EncodePending(list);
  }

  void Discard() override {
    ClearParties();
    party_hints_.Release();  // 4 MiB that only a bulk phase uses
    threads_.clear();
    kinds_.clear();
    dirty_parties_.clear();
    dirty_threads_.clear();
    held_entries_ = 0;
  }

 private:
  // The party's record, to read and change: it is written back at Flush.
  absl::StatusOr<PartyState*> Party(const std::string& party, Txn& txn) {
    // Only a bulk phase, whose Prefetch fetches the record ahead, uses the hints.
    const size_t hash = txn.bulk() ? PartyHash(party) : 0;
    if (txn.bulk()) {
      party_hints_.Enable();
      PartyNode* hinted = party_hints_.Find(hash);
      if (hinted != nullptr && hinted->first == party) return Touch(*hinted, dirty_parties_);
    }
    auto it = parties_.find(party);
    if (it == parties_.end()) {
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn.Get(PartyKey('S', party)));
      PartyState p;
      if (v) {
        IHS_ASSIGN_OR_RETURN(p, DecodeParty(*v));
      }
      it = parties_.emplace(party, Cached<PartyState>(std::move(p))).first;
    }
    if (txn.bulk()) party_hints_.Put(hash, &*it);
    return Touch(*it, dirty_parties_);
  }

  static size_t PartyHash(absl::string_view party) {
    return absl::Hash<absl::string_view>()(party);
  }
  void ClearParties() {
    parties_.clear();
    party_hints_.Clear();
  }

  absl::StatusOr<Thread*> ThreadOf(const std::string& key, Txn& txn) {
    auto it = threads_.find(key);
    if (it == threads_.end()) {
      IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn.Get(key));
      Thread t;
      if (v) {
        IHS_ASSIGN_OR_RETURN(t, DecodeThread(*v));
      }
      it = threads_.emplace(key, Cached<Thread>(std::move(t))).first;
    }
    return Touch(*it, dirty_threads_);
  }

  // A decoded record and whether the batch changed it (then it is in the dirty list).
  template <typename T>
  struct Cached {
    explicit Cached(T v) : value(std::move(v)) {}
    bool dirty = false;
    T value;
  };
  template <typename T>
  using DirtyList = std::vector<std::pair<const std::string, Cached<T>>*>;

  template <typename T>
  static T* Touch(std::pair<const std::string, Cached<T>>& entry, DirtyList<T>& dirty) {
    if (!entry.second.dirty) {
      entry.second.dirty = true;
      dirty.push_back(&entry);
    }
    return &entry.second.value;
  }

  absl::StatusOr<schema::PartyKind> KindOf(const std::string& party, Txn& txn) {
    if (auto it = kinds_.find(party); it != kinds_.end()) return it->second;
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn.Get(PartyKey('K', party)));
    const auto kind = v && v->size() == 1
                          ? static_cast<schema::PartyKind>(static_cast<uint8_t>((*v)[0]))
                          : schema::PartyKind::UNSPECIFIED;
    kinds_[party] = kind;
    return kind;
  }

  // A reply by the company: outbound, or public and said by an employee.
  absl::StatusOr<bool> IsCompanyReply(schema::Touchpoint::Reader t, Txn& txn) {
    if (t.getType() != TouchpointType::REPLY) return false;
    if (t.getDirection() == Direction::OUTBOUND) return true;
    if (t.getDirection() != Direction::PUBLIC || t.getCounterpart().size() == 0) return false;
    IHS_ASSIGN_OR_RETURN(schema::PartyKind k, KindOf(std::string(View(t.getCounterpart())), txn));
    return k == schema::PartyKind::EMPLOYEE;
  }

  // The thread an event belongs to (see schema/timeline.capnp TimelineEntry.thread).
  absl::StatusOr<std::string> ThreadName(const std::string& party, schema::Event::Reader ev,
                                         Txn& txn) {
    const auto t = ev.getTouchpoint();
    if (t.getThreadId().size() > 0) return std::string(View(t.getThreadId()));
    if (t.getInReplyTo().size() == 16) {
      IHS_ASSIGN_OR_RETURN(std::optional<store::StoredEvent> target,
                           txn.FindEarlierEvent(View(t.getInReplyTo())));
      if (target && target->event().isTouchpoint() &&
          View(target->event().getStreamId()) == party) {
        const auto tt = target->event().getTouchpoint();
        if (tt.getThreadId().size() > 0) return std::string(View(tt.getThreadId()));
      }
      return absl::StrCat("event:", absl::BytesToHexString(View(t.getInReplyTo())));
    }
    if (WaitsForAnswer(t.getDirection(), t.getType())) {
      return absl::StrCat("event:", absl::BytesToHexString(View(ev.getId())));
    }
    return std::string();
  }

  // A new entry of the party: in a bulk phase, held until Flush.
  void PutEntry(PartyState& p, absl::string_view party, int64_t occurred, uint64_t position,
                const std::string& value, Txn& txn) {
    if (BulkPhase* bulk = txn.bulk()) {
      p.held.push_back({position, occurred, bulk->Keep(value)});
      ++held_entries_;
      return;
    }
    txn.Put(EntryKey(party, occurred, position), value);
  }

  // Reads, changes and writes back one entry of the party, held or stored.
  template <typename F>
  absl::Status UpdateEntry(PartyState& p, absl::string_view party, int64_t occurred,
                           uint64_t position, Txn& txn, F&& change) {
    auto held = std::lower_bound(p.held.begin(), p.held.end(), position,
                                 [](const HeldEntry& h, uint64_t at) { return h.position < at; });
    if (held != p.held.end() && held->position == position) {
      IHS_ASSIGN_OR_RETURN(Entry e, DecodeEntry(held->value, held->occurred, held->position));
      change(e);
      held->value = txn.bulk()->Keep(EncodeEntry(e));  // only a bulk phase holds entries
      return absl::OkStatus();
    }
    return UpdateStoredEntry(EntryKey(party, occurred, position), txn, change);
  }

  // Reads, changes and writes back one stored entry.
  template <typename F>
  absl::Status UpdateStoredEntry(const std::string& key, Txn& txn, F&& change) {
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn.Get(key));
    if (!v) return absl::DataLossError("timeline state: a thread names an entry that is missing");
    IHS_ASSIGN_OR_RETURN(Entry e, DecodeEntryAt(key, *v));
    change(e);
    txn.Put(key, EncodeEntry(e));
    return absl::OkStatus();
  }

  // Marks `e` answered by `reply`.
  static void SetAnswer(Entry& e, const Member& reply) {
    e.response = Entry::Response::kAnswered;
    Entry::Answer& a = e.answer;
    a.reply_position = reply.position;
    a.reply_event_id = std::string(reply.id.view());
    a.reply_channel = reply.channel;
    a.replied_at = reply.occurred;
    a.wall_seconds = SaturatingSub(reply.occurred, e.occurred_at) / kMicrosPerSecond;
    a.service_seconds =
        ServiceHours::Default().Between(e.occurred_at, reply.occurred) / kMicrosPerSecond;
  }

  static void Count(PartyState& p, Channel channel, Direction d, int64_t occurred, float sentiment,
                    int sign) {
    ChannelCounts& c = p.channels[static_cast<size_t>(channel)];  // known: Apply checked
    c.used = true;
    if (sign > 0) {
      if (c.inbound + c.outbound + c.pub == 0 || occurred < c.first) c.first = occurred;
      if (c.inbound + c.outbound + c.pub == 0 || occurred > c.last) c.last = occurred;
    }
    uint32_t& n = d == Direction::INBOUND    ? c.inbound
                  : d == Direction::OUTBOUND ? c.outbound
                                             : c.pub;
    n = static_cast<uint32_t>(static_cast<int64_t>(n) + sign);
    p.entries = static_cast<uint64_t>(static_cast<int64_t>(p.entries) + sign);
    Sentiment(p, occurred, sentiment, sign);
  }

  static void Sentiment(PartyState& p, int64_t occurred, float sentiment, int sign) {
    if (std::isnan(sentiment)) return;
    auto& day = p.days[UtcDayOf(occurred)];
    day.first += sign * static_cast<double>(sentiment);
    day.second = static_cast<uint32_t>(static_cast<int64_t>(day.second) + sign);
    if (day.second == 0) p.days.erase(UtcDayOf(occurred));
  }

  absl::Status Add(const std::string& party, const store::StoredEvent& stored, Txn& txn) {
    const schema::Event::Reader ev = stored.event();
    const schema::Touchpoint::Reader t = ev.getTouchpoint();
    const int64_t occurred = ev.getOccurredAt();
    const uint64_t position = stored.position();
    IHS_ASSIGN_OR_RETURN(PartyState * p, Party(party, txn));
    IHS_ASSIGN_OR_RETURN(const bool company_reply, IsCompanyReply(t, txn));
    IHS_ASSIGN_OR_RETURN(const std::string thread, ThreadName(party, ev, txn));
    const bool waits = WaitsForAnswer(t.getDirection(), t.getType());

    Entry e;
    e.position = position;
    e.event_id = std::string(View(ev.getId()));
    e.occurred_at = occurred;
    e.recorded_at = ev.getRecordedAt();
    e.channel = t.getChannel();
    e.direction = t.getDirection();
    e.type = t.getType();
    e.sentiment = t.getSentiment();
    for (auto topic : t.getTopics()) e.topics.emplace_back(View(topic));
    e.thread = thread;
    e.in_reply_to = std::string(View(t.getInReplyTo()));
    e.counterpart = std::string(View(t.getCounterpart()));
    e.campaign_id = std::string(View(t.getCampaignId()));
    e.audience_size = t.getAudienceSize();
    e.source_system = std::string(View(ev.getSourceSystem()));
    e.company_reply = company_reply;
    Count(*p, t.getChannel(), t.getDirection(), occurred, t.getSentiment(), +1);

    Member self;
    self.reply = company_reply;
    self.occurred = occurred;
    self.position = position;
    self.channel = t.getChannel();
    self.id = EventId(e.event_id);
    if (!thread.empty() && (waits || company_reply)) {
      IHS_ASSIGN_OR_RETURN(Thread * th, ThreadOf(ThreadKey(party, thread), txn));
      if (waits) {
        // The company's first reply at or after it, on any channel.
        const Member* best = nullptr;
        for (const Member& r : *th) {
          if (r.reply && r.occurred >= occurred &&
              (best == nullptr ||
               std::tie(r.occurred, r.position) < std::tie(best->occurred, best->position))) {
            best = &r;
          }
        }
        if (best) {
          SetAnswer(e, *best);
          self.answered = true;
          self.ans_occurred = best->occurred;
          self.ans_position = best->position;
          txn.Put(ResponseKey(party, position),
                  EncodeResponse(e.answer.wall_seconds, e.answer.service_seconds));
        } else {
          e.response = Entry::Response::kOpen;
          txn.Put(OpenKey(party, self.id.view()),
                  EncodeOpen(position, {self.id, t.getChannel(), t.getType(), occurred}));
        }
      } else {
        // Answers every message of the thread that happened at or before it and has no earlier
        // answer.
        for (Member& in : *th) {
          if (in.reply || in.occurred > occurred) continue;
          if (in.answered &&
              std::tie(in.ans_occurred, in.ans_position) <= std::tie(occurred, position)) {
            continue;
          }
          in.answered = true;
          in.ans_occurred = occurred;
          in.ans_position = position;
          bool retracted = false;
          int64_t wall = 0, service = 0;
          IHS_RETURN_IF_ERROR(UpdateEntry(*p, party, in.occurred, in.position, txn, [&](Entry& b) {
            SetAnswer(b, self);
            retracted = !b.retracted_by.empty();
            wall = b.answer.wall_seconds;
            service = b.answer.service_seconds;
          }));
          txn.Delete(OpenKey(party, in.id.view()));
          if (!retracted) txn.Put(ResponseKey(party, in.position), EncodeResponse(wall, service));
        }
      }
      th->push_back(std::move(self));
    } else if (waits) {
      e.response = Entry::Response::kOpen;  // no thread: nothing can answer it
      const EventId id(View(ev.getId()));
      txn.Put(OpenKey(party, id.view()),
              EncodeOpen(position, {id, t.getChannel(), t.getType(), occurred}));
    }

    // A channel switch: a new message that follows up (causationId) on a message waiting for an
    // answer, on another channel.
    const bool speaks =
        (t.getDirection() == Direction::INBOUND || t.getDirection() == Direction::PUBLIC) &&
        (t.getType() == TouchpointType::MESSAGE || t.getType() == TouchpointType::REQUEST ||
         t.getType() == TouchpointType::COMPLAINT);
    const bool follows_up = speaks && ev.getCausationId().size() == 16;
    // Usually the message followed up on is one of the party's own that still waits for an
    // answer: the party's record has what a switch names, and the log need not be searched.
    std::optional<std::pair<uint64_t, OpenMsg>> open_cause;
    if (follows_up) {
      IHS_ASSIGN_OR_RETURN(open_cause,
                           OpenMessage(party, View(ev.getCausationId()), position, txn));
    }
    if (open_cause) {
      const auto& [cause_position, cause] = *open_cause;
      if (cause.channel != t.getChannel()) {  // open messages all wait for an answer
        SetSwitch(e, party, cause.id.view(), cause.channel, cause.occurred, cause_position);
        ++p->switches;
      }
    } else if (follows_up) {
      IHS_ASSIGN_OR_RETURN(std::optional<store::StoredEvent> cause,
                           txn.FindEarlierEvent(View(ev.getCausationId())));
      if (cause && cause->event().isTouchpoint()) {
        const auto ct = cause->event().getTouchpoint();
        if (WaitsForAnswer(ct.getDirection(), ct.getType()) && ct.getChannel() != t.getChannel()) {
          SetSwitch(e, cause->event(), cause->position());
          ++p->switches;
        }
      } else if (!cause) {
        // The message it follows up on has a later position (one append may order a batch's
        // streams as it likes, and a letter may be scanned after the complaint that followed
        // it): it marks this one when it comes (MarkLateSwitch). Below the horizon of a
        // rebuild, it is marked now, as MarkLateSwitch would mark it.
        std::optional<store::StoredEvent> later;
        if (BulkPhase* bulk = txn.bulk()) {
          IHS_ASSIGN_OR_RETURN(later, bulk->FindLaterEvent(View(ev.getCausationId())));
        }
        if (later && MarksLateSwitches(later->event())) {
          if (later->event().getTouchpoint().getChannel() != t.getChannel()) {
            SetSwitch(e, later->event(), later->position());
            ++p->switches;
          }
        } else {
          IHS_RETURN_IF_ERROR(AddPendingSwitch(View(ev.getCausationId()), party, occurred, position,
                                               t.getChannel(), txn));
        }
      }
    }
    PutEntry(*p, party, occurred, position, EncodeEntry(e), txn);
    const uint64_t horizon = txn.bulk() ? txn.bulk()->horizon() : 0;
    if (waits && position >= horizon) IHS_RETURN_IF_ERROR(MarkLateSwitch(stored, txn));
    return absl::OkStatus();
  }

  // The party's open message with this id, other than the one at `position`; nullopt if none.
  static absl::StatusOr<std::optional<std::pair<uint64_t, OpenMsg>>> OpenMessage(
      const std::string& party, absl::string_view id, uint64_t position, Txn& txn) {
    if (!EventId::Valid(id)) return std::nullopt;
    const std::string key = OpenKey(party, id);
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn.Get(key));
    if (!v) return std::nullopt;
    IHS_ASSIGN_OR_RETURN(auto open, DecodeOpen(key, *v));
    if (open.first == position) return std::nullopt;
    return open;
  }

  // Whether applying `ev` calls MarkLateSwitch: a message that waits for an answer.
  static bool MarksLateSwitches(schema::Event::Reader ev) {
    if (!ev.isTouchpoint()) return false;
    const auto t = ev.getTouchpoint();
    return WaitsForAnswer(t.getDirection(), t.getType());
  }

  // Key "P" | cause id: the follow-ups of a message that has not been applied yet.
  //   value := follow-up*, in position order
  //   follow-up := party length: fixed16 | party | occurred_at | position | channel: fixed32
  struct PendingSwitch {
    std::string party;
    std::string entry_suffix;  // occurred_at | position, as in the entry's key
    uint64_t position = 0;
    Channel channel = Channel::UNSPECIFIED;
  };

  static absl::StatusOr<std::vector<PendingSwitch>> DecodePending(absl::string_view v) {
    std::vector<PendingSwitch> out;
    while (!v.empty()) {
      if (v.size() < 2) break;
      const size_t len = (static_cast<uint8_t>(v[0]) << 8) | static_cast<uint8_t>(v[1]);
      if (v.size() < 2 + len + 20) break;
      PendingSwitch f;
      f.party = std::string(v.substr(2, len));
      f.entry_suffix = std::string(v.substr(2 + len, 16));
      f.position = GetBigEndian64(v.data() + 2 + len + 8);
      f.channel = static_cast<Channel>(GetBigEndian32(v.data() + 2 + len + 16));
      out.push_back(std::move(f));
      v.remove_prefix(2 + len + 20);
    }
    if (!v.empty()) return absl::DataLossError("timeline state: a bad pending switch");
    return out;
  }

  static std::string EncodePending(const std::vector<PendingSwitch>& list) {
    std::string v;
    for (const PendingSwitch& f : list) {
      v.append(PartyKey('P', f.party).substr(1));
      v.append(f.entry_suffix);
      PutBigEndian32(&v, static_cast<uint32_t>(f.channel));
    }
    return v;
  }

  static absl::Status AddPendingSwitch(absl::string_view cause_id, const std::string& party,
                                       int64_t occurred, uint64_t position, Channel channel,
                                       Txn& txn) {
    const std::string key = absl::StrCat("P", cause_id);
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn.Get(key));
    PendingSwitch f{party, std::string(), position, channel};
    PutEntrySuffix(&f.entry_suffix, occurred, position);
    txn.Put(key, absl::StrCat(v ? *v : std::string(), EncodePending({f})));
    return absl::OkStatus();
  }

  static void SetSwitch(Entry& e, schema::Event::Reader cause, uint64_t position) {
    SetSwitch(e, View(cause.getStreamId()), View(cause.getId()), cause.getTouchpoint().getChannel(),
              cause.getOccurredAt(), position);
  }
  static void SetSwitch(Entry& e, absl::string_view party, absl::string_view id, Channel channel,
                        int64_t occurred_at, uint64_t position) {
    e.has_switch = true;
    e.switch_from.party = std::string(party);
    e.switch_from.event_id = std::string(id);
    e.switch_from.channel = channel;
    e.switch_from.occurred_at = occurred_at;
    e.switch_from.position = position;
  }

  // A message that earlier events already followed up on (key "P" | its id, written above):
  // each of them that is on another channel is a channel switch.
  absl::Status MarkLateSwitch(const store::StoredEvent& cause, Txn& txn) {
    const schema::Event::Reader ev = cause.event();
    const std::string key = absl::StrCat("P", View(ev.getId()));
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, txn.Get(key));
    if (!v) return absl::OkStatus();
    txn.Delete(key);
    IHS_ASSIGN_OR_RETURN(std::vector<PendingSwitch> followers, DecodePending(*v));
    for (const PendingSwitch& f : followers) {
      if (f.channel == ev.getTouchpoint().getChannel()) continue;
      // Never in a bulk phase, which holds entries: it marks late switches at once (Add).
      IHS_RETURN_IF_ERROR(UpdateStoredEntry(PartyKey('E', f.party) + f.entry_suffix, txn,
                                            [&](Entry& b) { SetSwitch(b, ev, cause.position()); }));
      IHS_ASSIGN_OR_RETURN(PartyState * p, Party(f.party, txn));
      ++p->switches;
    }
    return absl::OkStatus();
  }

  // A correction replaces the sentiment and topics of the event it names; a retraction marks
  // it withdrawn and takes it out of the summary. The original stays in the log.
  absl::Status Correct(const std::string& party, const store::StoredEvent& stored,
                       const store::StoredEvent& target, Txn& txn) {
    const auto t = stored.event().getTouchpoint();
    const bool retraction = t.getType() == TouchpointType::RETRACTION;
    const std::string id(View(stored.event().getId()));
    const uint64_t pos = target.position();
    IHS_ASSIGN_OR_RETURN(PartyState * p, Party(party, txn));
    return UpdateEntry(*p, party, target.event().getOccurredAt(), pos, txn, [&](Entry& b) {
      const bool was_retracted = !b.retracted_by.empty();
      if (retraction) {
        if (was_retracted) return;
        b.retracted_by = id;
        // Withdrawn, it waits for nothing: neither open nor answered (the summary's rule).
        if (b.response == Entry::Response::kOpen) b.response = Entry::Response::kNone;
        Count(*p, b.channel, b.direction, b.occurred_at, b.sentiment, -1);
        txn.Delete(OpenKey(party, View(target.event().getId())));
        txn.Delete(ResponseKey(party, pos));
        return;
      }
      b.corrected_by = id;
      if (!std::isnan(t.getSentiment())) {
        if (!was_retracted) {
          Sentiment(*p, b.occurred_at, b.sentiment, -1);
          Sentiment(*p, b.occurred_at, t.getSentiment(), +1);
        }
        b.sentiment = t.getSentiment();
      }
      if (t.getTopics().size() > 0) {
        b.topics.clear();
        for (auto topic : t.getTopics()) b.topics.emplace_back(View(topic));
      }
    });
  }

  // Decoded records, kept across batches (pointers into them stay valid: node maps), cleared
  // when they pass these bounds or on Discard.
  static constexpr size_t kMaxCachedParties = 200'000;
  const size_t max_cached_threads_;
  absl::node_hash_map<std::string, Cached<PartyState>> parties_;
  using PartyNode = std::pair<const std::string, Cached<PartyState>>;
  HintTable<PartyNode> party_hints_;  // in front of parties_, in a bulk phase
  absl::node_hash_map<std::string, Cached<Thread>> threads_;
  absl::flat_hash_map<std::string, schema::PartyKind> kinds_;
  DirtyList<PartyState> dirty_parties_;  // touched by this batch
  DirtyList<Thread> dirty_threads_;
  size_t held_entries_ = 0;  // in the parties' records (HeldEntry)
};

}  // namespace

std::unique_ptr<Projection> NewTimelineProjection(size_t max_cached_threads) {
  return std::make_unique<TimelineProjection>(max_cached_threads);
}

}  // namespace ihs::projections::timeline
