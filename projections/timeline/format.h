// The timeline's state as stored (docs/format.md "timeline"): keys, packed records of parties,
// threads and entries, and the party's record as the projection holds it. Shared by the
// projection (timeline.cc) and its reads (read.cc). Not API: projections/timeline/timeline.h is.
#ifndef IHS_PROJECTIONS_TIMELINE_FORMAT_H_
#define IHS_PROJECTIONS_TIMELINE_FORMAT_H_

#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "projections/packed_record.h"
#include "projections/timeline/entry.h"
#include "schema/timeline.capnp.h"
#include "schema/touchpoint.h"

namespace ihs::projections::timeline {

using projections::AsData;
using projections::Encode;
using projections::PackedRecord;
using projections::View;

using schema::Channel;
using schema::Direction;
using schema::TouchpointType;

constexpr int64_t kMicrosPerSecond = 1'000'000;

// --- keys -------------------------------------------------------------------------------------

inline std::string PartyKey(char tag, absl::string_view party) {
  std::string k(1, tag);
  k.push_back(static_cast<char>((party.size() >> 8) & 0xff));
  k.push_back(static_cast<char>(party.size() & 0xff));
  k.append(party.data(), party.size());
  return k;
}

// A time in a key: big-endian with the sign bit flipped, so that keys sort as times do.
constexpr uint64_t kSignBit = uint64_t{1} << 63;
inline void PutTime(std::string* k, int64_t t) {
  PutBigEndian64(k, static_cast<uint64_t>(t) ^ kSignBit);
}
inline int64_t GetTime(const char* at) {
  return static_cast<int64_t>(GetBigEndian64(at) ^ kSignBit);
}

// What follows the party in an entry's key.
inline void PutEntrySuffix(std::string* k, int64_t occurred, uint64_t position) {
  PutTime(k, occurred);
  PutBigEndian64(k, position);
}

// The entry's occurred_at and position, from the end of its key.
inline std::pair<int64_t, uint64_t> EntrySuffix(absl::string_view key) {
  if (key.size() < 16) return {0, 0};  // not an entry's key: its value does not decode either
  const char* at = key.data() + key.size() - 16;
  return {GetTime(at), GetBigEndian64(at + 8)};
}

inline absl::StatusOr<Entry> DecodeEntryAt(absl::string_view key, absl::string_view value) {
  const auto [occurred, position] = EntrySuffix(key);
  return DecodeEntry(value, occurred, position);
}

inline std::string EntryKey(absl::string_view party, int64_t occurred, uint64_t position) {
  std::string k = PartyKey('E', party);
  PutEntrySuffix(&k, occurred, position);
  return k;
}

inline std::string ThreadKey(absl::string_view party, absl::string_view thread) {
  std::string k = PartyKey('T', party);
  k.append(thread.data(), thread.size());
  return k;
}

// The keys of one party under `tag` end before this one (their suffixes are at most 16 bytes).
inline std::string PartyKeysEnd(char tag, absl::string_view party) {
  return PartyKey(tag, party) + std::string(17, '\xff');
}

// --- the in-memory forms of a batch -----------------------------------------------------------

struct ChannelCounts {
  bool used = false;  // counted at least once (stays listed when a retraction takes it to 0)
  int64_t first = 0, last = 0;
  uint32_t inbound = 0, outbound = 0, pub = 0;
};
// Channels are known enumerants (the store refuses others at append), so a party's counts are an
// array indexed by channel: no allocation, and no tree to walk per event.
constexpr size_t kChannels = static_cast<size_t>(Channel::IN_PERSON) + 1;
inline bool KnownChannel(Channel c) { return static_cast<size_t>(c) < kChannels; }
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
// Key "O" | party | event id (16 bytes): a message of the party that waits for an answer. One key
// each, not a list in the party's record, so that an event costs the same however many messages
// wait (issue 27: a party's history does not slow its appends).
//   value := position: fixed64 | occurredAt: fixed64 | channel: fixed32 | type: fixed32
inline std::string OpenKey(absl::string_view party, absl::string_view id) {
  std::string k = PartyKey('O', party);
  k.append(id.data(), id.size());
  return k;
}
inline std::string EncodeOpen(uint64_t position, const OpenMsg& o) {
  std::string v;
  PutBigEndian64(&v, position);
  PutBigEndian64(&v, static_cast<uint64_t>(o.occurred));
  PutBigEndian32(&v, static_cast<uint32_t>(o.channel));
  PutBigEndian32(&v, static_cast<uint32_t>(o.type));
  return v;
}
// The open message of an "O" key and its value, with its position.
inline absl::StatusOr<std::pair<uint64_t, OpenMsg>> DecodeOpen(absl::string_view key,
                                                               absl::string_view v) {
  if (v.size() != 24 || key.size() < EventId::kSize) {
    return absl::DataLossError("timeline state: an open message's record is malformed");
  }
  OpenMsg o;
  o.id = EventId(key.substr(key.size() - EventId::kSize));
  o.occurred = static_cast<int64_t>(GetBigEndian64(v.data() + 8));
  o.channel = static_cast<Channel>(GetBigEndian32(v.data() + 16));
  o.type = static_cast<TouchpointType>(GetBigEndian32(v.data() + 20));
  return std::make_pair(GetBigEndian64(v.data()), o);
}

// Key "R" | party | position: fixed64: the response times of an answered message (not
// withdrawn), for the summary's count and medians.
//   value := wall seconds: fixed64 | service seconds: fixed64
inline std::string ResponseKey(absl::string_view party, uint64_t position) {
  std::string k = PartyKey('R', party);
  PutBigEndian64(&k, position);
  return k;
}
inline std::string EncodeResponse(int64_t wall, int64_t service) {
  std::string v;
  PutBigEndian64(&v, static_cast<uint64_t>(wall));
  PutBigEndian64(&v, static_cast<uint64_t>(service));
  return v;
}

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

// An entry that a rebuild's bulk phase holds (BulkPhase::Keep) until Flush writes the party's
// entries in key order (Txn::PutInOrder): ten million entries then need neither the index of the
// state in memory nor its sort.
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
  SortedVectorMap<int32_t, std::pair<double, uint32_t>> days;  // sentiment sum, count
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
inline std::string EncodeThread(const Thread& t) {
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

inline absl::StatusOr<Thread> DecodeThread(absl::string_view s) {
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

inline absl::StatusOr<PartyState> DecodeParty(absl::string_view bytes) {
  PackedRecord rec(bytes, "timeline");
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
  for (auto d : r.getSentimentDays()) p.days[d.getDay()] = {d.getSum(), d.getCount()};
  p.switches = r.getChannelSwitches();
  return p;
}

inline void SetChannelSummary(schema::ChannelSummary::Builder x, uint16_t channel,
                              const ChannelCounts& n) {
  x.setChannel(static_cast<Channel>(channel));
  x.setFirstAt(n.first);
  x.setLastAt(n.last);
  x.setInbound(n.inbound);
  x.setOutbound(n.outbound);
  x.setPublic(n.pub);
}

inline void SetOpenMessage(schema::OpenMessage::Builder x, uint64_t position, const OpenMsg& o) {
  x.setPosition(position);
  x.setEventId(AsData(o.id.view()));
  x.setChannel(o.channel);
  x.setType(o.type);
  x.setOccurredAt(o.occurred);
}

inline std::string EncodeParty(const PartyState& p) {
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

using schema::WaitsForAnswer;  // schema/touchpoint.h

}  // namespace ihs::projections::timeline

#endif  // IHS_PROJECTIONS_TIMELINE_FORMAT_H_
