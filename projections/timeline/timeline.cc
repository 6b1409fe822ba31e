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
#include "projections/bulk.h"
#include "projections/internal/hint_table.h"
#include "projections/timeline/entry.h"
#include "schema/json.h"

namespace ihs::projections::timeline {
namespace {

using schema::Channel;
using schema::Direction;
using schema::TouchpointType;

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;

// --- keys -------------------------------------------------------------------------------------

std::string PartyKey(char tag, absl::string_view party) {
  std::string k(1, tag);
  k.push_back(static_cast<char>((party.size() >> 8) & 0xff));
  k.push_back(static_cast<char>(party.size() & 0xff));
  k.append(party.data(), party.size());
  return k;
}

// A time in a key: big-endian with the sign bit flipped, so that keys sort as times do.
constexpr uint64_t kSignBit = uint64_t{1} << 63;
void PutTime(std::string* k, int64_t t) { PutBigEndian64(k, static_cast<uint64_t>(t) ^ kSignBit); }
int64_t GetTime(const char* at) { return static_cast<int64_t>(GetBigEndian64(at) ^ kSignBit); }

// What follows the party in an entry's key.
void PutEntrySuffix(std::string* k, int64_t occurred, uint64_t position) {
  PutTime(k, occurred);
  PutBigEndian64(k, position);
}

// The entry's occurred_at and position, from the end of its key.
std::pair<int64_t, uint64_t> EntrySuffix(absl::string_view key) {
  if (key.size() < 16) return {0, 0};  // not an entry's key: its value does not decode either
  const char* at = key.data() + key.size() - 16;
  return {GetTime(at), GetBigEndian64(at + 8)};
}

absl::StatusOr<Entry> DecodeEntryAt(absl::string_view key, absl::string_view value) {
  const auto [occurred, position] = EntrySuffix(key);
  return DecodeEntry(value, occurred, position);
}

std::string EntryKey(absl::string_view party, int64_t occurred, uint64_t position) {
  std::string k = PartyKey('E', party);
  PutEntrySuffix(&k, occurred, position);
  return k;
}

std::string ThreadKey(absl::string_view party, absl::string_view thread) {
  std::string k = PartyKey('T', party);
  k.append(thread.data(), thread.size());
  return k;
}

absl::string_view View(capnp::Text::Reader t) { return absl::string_view(t.cStr(), t.size()); }
absl::string_view View(capnp::Data::Reader d) {
  return absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size());
}
capnp::Data::Reader AsData(absl::string_view s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// --- capnp records as strings -----------------------------------------------------------------

// Records are stored packed (capnp's packing drops the zero bytes that unset fields leave): a
// timeline entry shrinks to about half, and a rebuild writes out gigabytes fewer.
std::string Encode(capnp::MessageBuilder& m) {
  kj::VectorOutputStream out(512);
  capnp::writePackedMessage(out, m);
  const kj::ArrayPtr<kj::byte> bytes = out.getArray();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// Owns a stored record's bytes and a reader over them (which may read segments lazily).
class Record {
 public:
  explicit Record(absl::string_view bytes) : bytes_(bytes) {
    error_ = kj::runCatchingExceptions([&] {
      in_.emplace(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes_.data()), bytes_.size()));
      reader_.emplace(*in_);
    });
  }
  template <typename T>
  absl::StatusOr<typename T::Reader> Root() {
    typename T::Reader r;
    if (error_ == nullptr) {
      error_ = kj::runCatchingExceptions([&] {
        r = reader_->getRoot<T>();
        (void)r.totalSize();
      });
    }
    KJ_IF_MAYBE (e, error_) {
      return absl::DataLossError(
          absl::StrCat("timeline state does not decode: ", e->getDescription().cStr()));
    }
    return r;
  }

 private:
  const std::string bytes_;
  std::optional<kj::ArrayInputStream> in_;
  std::optional<capnp::PackedMessageReader> reader_;
  kj::Maybe<kj::Exception> error_;
};

// --- the in-memory forms of a batch -----------------------------------------------------------

struct ChannelCounts {
  bool used = false;  // counted at least once (stays listed when a retraction takes it to 0)
  int64_t first = 0, last = 0;
  uint32_t inbound = 0, outbound = 0, pub = 0;
};
// Channels are known enumerants (the store refuses others at append), so a party's counts are an
// array indexed by channel: no allocation, and no tree to walk per event.
constexpr size_t kChannels = static_cast<size_t>(Channel::IN_PERSON) + 1;
bool KnownChannel(Channel c) { return static_cast<size_t>(c) < kChannels; }
// An event id: 16 bytes (the store refuses others at append), held inline: one std::string
// per open message and per thread member would be an allocation each, as the id does not fit
// in its small-string buffer.
class EventId {
 public:
  static constexpr size_t kSize = 16;
  EventId() { bytes_.fill(0); }
  // `id` must have kSize bytes (Valid).
  explicit EventId(absl::string_view id) {
    bytes_.fill(0);
    std::memcpy(bytes_.data(), id.data(), std::min(id.size(), kSize));
  }
  static bool Valid(absl::string_view id) { return id.size() == kSize; }
  absl::string_view view() const { return absl::string_view(bytes_.data(), kSize); }
  bool operator==(absl::string_view id) const { return view() == id; }

 private:
  std::array<char, kSize> bytes_;
};

struct OpenMsg {
  EventId id;
  Channel channel;
  TouchpointType type;
  int64_t occurred;
};
// A map kept as a vector sorted by key. A party's open messages, responses and sentiment days
// are nearly always added at the end (the log comes in about the order things happened), and a
// rebuild reaches them once per event: one array costs a cache miss where a tree costs one per
// node on the way down.
template <typename K, typename V>
class SortedVectorMap {
 public:
  using value_type = std::pair<K, V>;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  V& operator[](const K& key) {
    if (items_.empty() || items_.back().first < key) return items_.emplace_back(key, V{}).second;
    auto it = LowerBound(key);
    if (it != items_.end() && it->first == key) return it->second;
    return items_.insert(it, value_type(key, V{}))->second;
  }
  void erase(const K& key) {
    auto it = LowerBound(key);
    if (it != items_.end() && it->first == key) items_.erase(it);
  }
  const_iterator lower_bound(const K& key) const {
    return std::lower_bound(items_.begin(), items_.end(), key,
                            [](const value_type& a, const K& k) { return a.first < k; });
  }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

 private:
  typename std::vector<value_type>::iterator LowerBound(const K& key) {
    return items_.begin() + (lower_bound(key) - items_.cbegin());
  }
  std::vector<value_type> items_;
};

// An entry that a rebuild's bulk phase holds (Txn::Keep) until Flush writes the party's entries
// in key order (Txn::PutInOrder): ten million entries then need neither the index of the state
// in memory nor its sort.
struct HeldEntry {
  uint64_t position;
  int64_t occurred;
  absl::string_view value;
};

// The fields that every event reads come first, with the key and the dirty mark before them
// in a cache's node (Cached): a prefetch of the node's first lines and of one channel's
// counts brings in what Add reads of the record itself.
struct PartyState {
  schema::PartyKind kind = schema::PartyKind::UNSPECIFIED;
  uint32_t switches = 0;
  uint64_t entries = 0;
  SortedVectorMap<uint64_t, OpenMsg> open;                           // by position
  SortedVectorMap<uint64_t, std::pair<int64_t, int64_t>> responses;  // position -> wall, service
  SortedVectorMap<int32_t, std::pair<double, uint32_t>> days;        // sentiment sum, count
  std::vector<HeldEntry> held;  // in position order; a bulk phase's, not stored
  std::array<ChannelCounts, kChannels> channels;
};

struct Member {
  bool reply = false;  // else an inbound message waiting for an answer
  int64_t occurred = 0;
  uint64_t position = 0;
  Channel channel = Channel::UNSPECIFIED;
  EventId id;
  bool answered = false;  // inbound: by the reply below
  int64_t ans_occurred = 0;
  uint64_t ans_position = 0;
};
using Thread = std::vector<Member>;

//   thread := count: fixed32 | member*
//   member := reply: u8 | occurred: fixed64 | position: fixed64 | channel: fixed32 |
//             id_len: u8 | id | answered: u8 | ans_occurred: fixed64 | ans_position: fixed64
std::string EncodeThread(const Thread& t) {
  std::string s;
  PutBigEndian32(&s, static_cast<uint32_t>(t.size()));
  for (const Member& m : t) {
    s.push_back(m.reply ? 1 : 0);
    PutBigEndian64(&s, static_cast<uint64_t>(m.occurred));
    PutBigEndian64(&s, m.position);
    PutBigEndian32(&s, static_cast<uint32_t>(m.channel));
    s.push_back(static_cast<char>(EventId::kSize));
    s.append(m.id.view().data(), EventId::kSize);
    s.push_back(m.answered ? 1 : 0);
    PutBigEndian64(&s, static_cast<uint64_t>(m.ans_occurred));
    PutBigEndian64(&s, m.ans_position);
  }
  return s;
}

absl::StatusOr<Thread> DecodeThread(absl::string_view s) {
  auto bad = [] { return absl::DataLossError("timeline state: a thread record is malformed"); };
  if (s.size() < 4) return bad();
  const uint32_t n = GetBigEndian32(s.data());
  size_t at = 4;
  Thread t;
  t.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (s.size() < at + 22) return bad();
    Member m;
    m.reply = s[at] != 0;
    m.occurred = static_cast<int64_t>(GetBigEndian64(s.data() + at + 1));
    m.position = GetBigEndian64(s.data() + at + 9);
    m.channel = static_cast<Channel>(GetBigEndian32(s.data() + at + 17));
    const size_t idlen = static_cast<uint8_t>(s[at + 21]);
    at += 22;
    if (s.size() < at + idlen + 17) return bad();
    if (!EventId::Valid(s.substr(at, idlen))) return bad();
    m.id = EventId(s.substr(at, idlen));
    at += idlen;
    m.answered = s[at] != 0;
    m.ans_occurred = static_cast<int64_t>(GetBigEndian64(s.data() + at + 1));
    m.ans_position = GetBigEndian64(s.data() + at + 9);
    at += 17;
    t.push_back(std::move(m));
  }
  if (at != s.size()) return bad();
  return t;
}

absl::StatusOr<PartyState> DecodeParty(absl::string_view bytes) {
  Record rec(bytes);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::TimelinePartyState>());
  PartyState p;
  p.kind = r.getKind();
  p.entries = r.getEntries();
  for (auto c : r.getChannels()) {
    if (!KnownChannel(c.getChannel())) {
      return absl::DataLossError("timeline state: a party record names an unknown channel");
    }
    p.channels[static_cast<size_t>(c.getChannel())] = {
        true, c.getFirstAt(), c.getLastAt(), c.getInbound(), c.getOutbound(), c.getPublic()};
  }
  for (auto o : r.getOpen()) {
    if (!EventId::Valid(View(o.getEventId()))) {
      return absl::DataLossError("timeline state: a party record names an open message badly");
    }
    p.open[o.getPosition()] = {EventId(View(o.getEventId())), o.getChannel(), o.getType(),
                               o.getOccurredAt()};
  }
  for (auto x : r.getResponses()) {
    p.responses[x.getPosition()] = {x.getWallSeconds(), x.getServiceSeconds()};
  }
  for (auto d : r.getSentimentDays()) p.days[d.getDay()] = {d.getSum(), d.getCount()};
  p.switches = r.getChannelSwitches();
  return p;
}

void SetChannelSummary(schema::ChannelSummary::Builder x, uint16_t channel,
                       const ChannelCounts& n) {
  x.setChannel(static_cast<Channel>(channel));
  x.setFirstAt(n.first);
  x.setLastAt(n.last);
  x.setInbound(n.inbound);
  x.setOutbound(n.outbound);
  x.setPublic(n.pub);
}

void SetOpenMessage(schema::OpenMessage::Builder x, uint64_t position, const OpenMsg& o) {
  x.setPosition(position);
  x.setEventId(AsData(o.id.view()));
  x.setChannel(o.channel);
  x.setType(o.type);
  x.setOccurredAt(o.occurred);
}

std::string EncodeParty(const PartyState& p) {
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::TimelinePartyState>();
  b.setKind(p.kind);
  b.setEntries(p.entries);
  auto ch = b.initChannels(static_cast<unsigned>(
      std::count_if(p.channels.begin(), p.channels.end(), [](const auto& n) { return n.used; })));
  unsigned i = 0;
  for (size_t c = 0; c < kChannels; ++c) {
    if (p.channels[c].used) SetChannelSummary(ch[i++], static_cast<uint16_t>(c), p.channels[c]);
  }
  auto open = b.initOpen(static_cast<unsigned>(p.open.size()));
  i = 0;
  for (const auto& [pos, o] : p.open) SetOpenMessage(open[i++], pos, o);
  auto rs = b.initResponses(static_cast<unsigned>(p.responses.size()));
  i = 0;
  for (const auto& [pos, r] : p.responses) {
    auto x = rs[i++];
    x.setPosition(pos);
    x.setWallSeconds(r.first);
    x.setServiceSeconds(r.second);
  }
  auto days = b.initSentimentDays(static_cast<unsigned>(p.days.size()));
  i = 0;
  for (const auto& [day, d] : p.days) {
    auto x = days[i++];
    x.setDay(day);
    x.setSum(d.first);
    x.setCount(d.second);
  }
  b.setChannelSwitches(p.switches);
  return Encode(m);
}

bool WaitsForAnswer(Direction d, TouchpointType t) {
  return d == Direction::INBOUND && (t == TouchpointType::MESSAGE || t == TouchpointType::REQUEST ||
                                     t == TouchpointType::COMPLAINT);
}

int32_t DayOf(int64_t t) {
  return static_cast<int32_t>(t >= 0 ? t / kMicrosPerDay : (t - kMicrosPerDay + 1) / kMicrosPerDay);
}

// --- the projection ---------------------------------------------------------------------------

class TimelineProjection final : public Projection, public ShardedRebuild {
 public:
  explicit TimelineProjection(size_t max_cached_threads)
      : max_cached_threads_(max_cached_threads) {}
  absl::string_view name() const override { return kName; }
  // 2: records packed. 3: entries in their own form (entry.h), not Cap'n Proto. 4: entries
  // leave occurred_at and position to their keys, and small numbers short (entry form 4).
  uint32_t version() const override { return 4; }

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

  void Observe(const store::StoredEvent& stored) override {
    const schema::Event::Reader ev = stored.event();
    if (ev.isPartyProfile())
      kinds_[std::string(View(ev.getStreamId()))] = ev.getPartyProfile().getKind();
  }

  // The record of the event's party: stage 0 fetches its hint, stage 1 what Add reads of the
  // record.
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
    a.wall_seconds = (reply.occurred - e.occurred_at) / kMicrosPerSecond;
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
    auto& day = p.days[DayOf(occurred)];
    day.first += sign * static_cast<double>(sentiment);
    day.second = static_cast<uint32_t>(static_cast<int64_t>(day.second) + sign);
    if (day.second == 0) p.days.erase(DayOf(occurred));
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
          p->responses[position] = {e.answer.wall_seconds, e.answer.service_seconds};
        } else {
          e.response = Entry::Response::kOpen;
          p->open[position] = {self.id, t.getChannel(), t.getType(), occurred};
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
          p->open.erase(in.position);
          if (!retracted) p->responses[in.position] = {wall, service};
        }
      }
      th->push_back(std::move(self));
    } else if (waits) {
      e.response = Entry::Response::kOpen;  // no thread: nothing can answer it
      p->open[position] = {EventId(View(ev.getId())), t.getChannel(), t.getType(), occurred};
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
    const std::pair<uint64_t, OpenMsg>* open_cause =
        follows_up ? OpenMessage(*p, View(ev.getCausationId()), position) : nullptr;
    if (open_cause != nullptr) {
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

  // The party's open message with this id, other than the one at `position`; nullptr if none.
  static const std::pair<uint64_t, OpenMsg>* OpenMessage(const PartyState& p, absl::string_view id,
                                                         uint64_t position) {
    for (const auto& kv : p.open) {
      if (kv.first != position && kv.second.id == id) return &kv;
    }
    return nullptr;
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
        Count(*p, b.channel, b.direction, b.occurred_at, b.sentiment, -1);
        p->open.erase(pos);
        p->responses.erase(pos);
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

absl::Status Validate(const Query& q) {
  if (q.party.empty()) return BadField("party", "a timeline needs a party");
  if (q.party.size() > store::kMaxStreamIdBytes) {
    return BadField("party",
                    absl::StrCat("a party id has at most ", store::kMaxStreamIdBytes, " bytes"));
  }
  if (q.from > q.to) {
    return BadField("to",
                    absl::StrCat("the time range is backwards: from ", schema::FormatMicros(q.from),
                                 " is after to ", schema::FormatMicros(q.to)));
  }
  if (q.limit == 0 || q.limit > kMaxPageEntries) {
    return BadField("limit", absl::StrCat("limit ", q.limit, " is out of range: 1 to ",
                                          kMaxPageEntries, " entries per page"));
  }
  for (Channel c : q.channels) {
    if (c == Channel::UNSPECIFIED ||
        static_cast<uint16_t>(c) > static_cast<uint16_t>(Channel::IN_PERSON)) {
      return BadField("channels", absl::StrCat("unknown channel ", static_cast<uint16_t>(c)));
    }
  }
  if (!q.cursor.empty()) {
    std::string raw = absl::HexStringToBytes(q.cursor);
    if (q.cursor.size() != 32 || absl::BytesToHexString(raw) != absl::AsciiStrToLower(q.cursor)) {
      return BadField("cursor", absl::StrCat("bad cursor \"", q.cursor,
                                             "\": pass a page's nextCursor unchanged"));
    }
  }
  return absl::OkStatus();
}

namespace {

absl::Status RequireParty(const StateView& view, const std::string& party,
                          std::optional<std::string>* state) {
  IHS_ASSIGN_OR_RETURN(*state, view.Get(PartyKey('S', party)));
  if (!*state) return absl::NotFoundError(absl::StrCat("no such party: ", party));
  return absl::OkStatus();
}

int64_t WaitedSeconds(absl::Time as_of, int64_t occurred) {
  return std::max<int64_t>(0, (absl::ToUnixMicros(as_of) - occurred) / kMicrosPerSecond);
}

}  // namespace

absl::Status ReadPage(const StateView& view, const Query& q, capnp::MessageBuilder& out,
                      store::EventStore* store) {
  IHS_RETURN_IF_ERROR(Validate(q));
  std::optional<std::string> state;
  IHS_RETURN_IF_ERROR(RequireParty(view, q.party, &state));
  std::string from = PartyKey('E', q.party);
  std::string to = from;
  if (!q.cursor.empty()) {
    from.append(absl::HexStringToBytes(q.cursor));
  } else {
    PutTime(&from, q.from);
  }
  PutTime(&to, q.to);
  std::vector<Entry> entries;
  std::string next;
  absl::Status bad;
  IHS_RETURN_IF_ERROR(view.Scan(from, to, [&](absl::string_view key, absl::string_view value) {
    absl::StatusOr<Entry> e = DecodeEntryAt(key, value);
    if (!e.ok()) {
      bad = e.status();
      return false;
    }
    if (!q.channels.empty() &&
        std::find(q.channels.begin(), q.channels.end(), e->channel) == q.channels.end()) {
      return true;
    }
    if (entries.size() == q.limit) {
      next = absl::BytesToHexString(key.substr(key.size() - 16));
      return false;
    }
    entries.push_back(*std::move(e));
    return true;
  }));
  IHS_RETURN_IF_ERROR(bad);
  auto page = out.initRoot<schema::TimelinePage>();
  page.setParty(q.party);
  page.setNextCursor(next);
  page.setCheckpoint(view.checkpoint());
  auto list = page.initEntries(static_cast<unsigned>(entries.size()));
  for (unsigned i = 0; i < entries.size(); ++i) {
    auto e = list[i];
    ToRecord(entries[i], e);
    if (e.getResponse().isOpen()) e.setWaitingSeconds(WaitedSeconds(q.as_of, e.getOccurredAt()));
    if (store != nullptr) {
      IHS_ASSIGN_OR_RETURN(std::vector<store::StoredEvent> ev, store->ReadAll(e.getPosition(), 1));
      if (!ev.empty() && ev[0].content_state() == store::ContentState::kOpen) {
        e.setSubject(ev[0].content().getSubject());
        e.setText(ev[0].content().getText());
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ReadSummary(const StateView& view, const std::string& party, absl::Time as_of,
                         capnp::MessageBuilder& out) {
  if (party.empty()) return absl::InvalidArgumentError("a summary needs a party");
  std::optional<std::string> state;
  IHS_RETURN_IF_ERROR(RequireParty(view, party, &state));
  IHS_ASSIGN_OR_RETURN(PartyState p, DecodeParty(*state));
  auto s = out.initRoot<schema::TimelineSummary>();
  s.setParty(party);
  s.setKind(p.kind);
  s.setEntries(p.entries);
  s.setAsOf(absl::ToUnixMicros(as_of));
  unsigned i = 0;
  std::vector<std::pair<uint16_t, ChannelCounts>> used;
  for (size_t c = 0; c < kChannels; ++c) {
    const ChannelCounts& n = p.channels[c];
    if (n.inbound + n.outbound + n.pub > 0) used.emplace_back(static_cast<uint16_t>(c), n);
  }
  auto ch = s.initChannels(static_cast<unsigned>(used.size()));
  for (const auto& [c, n] : used) SetChannelSummary(ch[i++], c, n);
  std::vector<std::pair<uint64_t, const OpenMsg*>> open;
  for (const auto& [pos, o] : p.open) open.emplace_back(pos, &o);
  std::sort(open.begin(), open.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->occurred, a.first) < std::tie(b.second->occurred, b.first);
  });
  auto os = s.initOpen(static_cast<unsigned>(open.size()));
  i = 0;
  for (const auto& [pos, o] : open) {
    auto x = os[i++];
    SetOpenMessage(x, pos, *o);
    x.setWaitingSeconds(WaitedSeconds(as_of, o->occurred));
  }
  s.setAnswered(p.responses.size());
  if (!p.responses.empty()) {
    std::vector<int64_t> wall, service;
    for (const auto& [pos, r] : p.responses) {
      wall.push_back(r.first);
      service.push_back(r.second);
    }
    // The lower median: an observed value, never an average of two.
    const size_t mid = (wall.size() - 1) / 2;
    std::nth_element(wall.begin(), wall.begin() + static_cast<long>(mid), wall.end());
    std::nth_element(service.begin(), service.begin() + static_cast<long>(mid), service.end());
    s.setMedianResponseSeconds(wall[mid]);
    s.setMedianResponseServiceSeconds(service[mid]);
  }
  const int32_t today = DayOf(absl::ToUnixMicros(as_of));
  double sum = 0;
  uint32_t count = 0;
  for (auto it = p.days.lower_bound(today - 89); it != p.days.end() && it->first <= today; ++it) {
    sum += it->second.first;
    count += it->second.second;
  }
  if (count > 0) s.setSentiment90d(static_cast<float>(sum / count));
  s.setSentimentCount90d(count);
  s.setChannelSwitches(p.switches);
  return absl::OkStatus();
}

}  // namespace ihs::projections::timeline
