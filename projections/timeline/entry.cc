#include "projections/timeline/entry.h"

#include <cstring>

#include "common/big_endian.h"

namespace ihs::projections::timeline {
namespace {

//   entry := form: u8 (4) | flags: u8 | recorded_at - occurred_at: zigzag |
//            channel: varint | direction: varint | type: varint |
//            sentiment: 4 (IEEE 754 bits; flag 64) | audience: varint (flag 128) |
//            event_id | thread | in_reply_to | counterpart | campaign_id | source_system |
//            topics: varint count, bytes* | answer? | switch? | corrected_by? | retracted_by?
//   answer := reply_position - position: zigzag | reply_event_id | reply_channel: varint |
//             replied_at - occurred_at: zigzag | wall_seconds: zigzag | service_seconds: zigzag
//   switch := party | event_id | channel: varint | occurred_at: 8 | position: 8
//   bytes  := length: varint | data;  fixed integers are big-endian
// The key holds occurred_at and position (timeline.cc): the value does not repeat them, and
// what is mostly small or mostly absent takes a byte or none. Form 3 gave each of them 8 bytes,
// and an entry 115 bytes on average; a rebuild holds ten million of them in memory.
constexpr uint8_t kForm = 4;
enum Flag : uint8_t {
  kCompanyReply = 1,
  kOpen = 2,
  kAnswered = 4,
  kSwitch = 8,
  kCorrected = 16,
  kRetracted = 32,
  kSentiment = 64,
  kAudience = 128,
};

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutBytes(std::string* out, absl::string_view b) {
  PutVarint(out, b.size());
  out->append(b.data(), b.size());
}
// A signed difference: zigzag, then varint, so that small ones of either sign are short.
void PutSigned(std::string* out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
template <typename E>
void PutEnum(std::string* out, E e) {
  PutVarint(out, static_cast<uint16_t>(e));
}
// a + b as the two's-complement sum: a difference stored by PutSigned comes back whatever the
// operands (hostile bytes may give any).
int64_t Plus(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t Minus(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

// A bounds-checked cursor; the first failure sticks and every later read returns zero.
class Cursor {
 public:
  explicit Cursor(absl::string_view s) : s_(s) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && at_ == s_.size(); }

  uint64_t U64() { return Fixed(8); }
  int64_t I64() { return static_cast<int64_t>(Fixed(8)); }
  uint32_t U32() { return static_cast<uint32_t>(Fixed(4)); }
  uint8_t U8() { return static_cast<uint8_t>(Fixed(1)); }
  template <typename E>
  E Enum() {
    const uint64_t v = Varint();
    if (v > UINT16_MAX) ok_ = false;
    return static_cast<E>(static_cast<uint16_t>(v));
  }
  int64_t Signed() {
    const uint64_t v = Varint();
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) return 0;
      const auto b = static_cast<uint8_t>(s_[at_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok_ = false;
    return 0;
  }
  std::string Bytes() {
    const uint64_t n = Varint();
    if (!Need(n)) return std::string();
    std::string b(s_.substr(at_, n));
    at_ += n;
    return b;
  }

 private:
  bool Need(uint64_t n) {
    if (ok_ && s_.size() - at_ >= n) return true;
    ok_ = false;
    return false;
  }
  uint64_t Fixed(int n) {
    if (!Need(static_cast<uint64_t>(n))) return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(s_[at_ + i]);
    at_ += static_cast<size_t>(n);
    return v;
  }

  absl::string_view s_;
  size_t at_ = 0;
  bool ok_ = true;
};

capnp::Data::Reader AsData(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
capnp::Text::Reader AsText(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

}  // namespace

std::string EncodeEntry(const Entry& e) {
  std::string s;
  s.reserve(48 + e.event_id.size() + e.thread.size() + e.in_reply_to.size() + e.counterpart.size() +
            e.campaign_id.size() + e.source_system.size());
  uint8_t flags = e.company_reply ? kCompanyReply : 0;
  if (e.response == Entry::Response::kOpen) flags |= kOpen;
  if (e.response == Entry::Response::kAnswered) flags |= kAnswered;
  if (e.has_switch) flags |= kSwitch;
  if (!e.corrected_by.empty()) flags |= kCorrected;
  if (!e.retracted_by.empty()) flags |= kRetracted;
  if (!std::isnan(e.sentiment)) flags |= kSentiment;
  if (e.audience_size != 0) flags |= kAudience;
  s.push_back(static_cast<char>(kForm));
  s.push_back(static_cast<char>(flags));
  PutSigned(&s, Minus(e.recorded_at, e.occurred_at));
  PutEnum(&s, e.channel);
  PutEnum(&s, e.direction);
  PutEnum(&s, e.type);
  if ((flags & kSentiment) != 0) {
    uint32_t bits;
    std::memcpy(&bits, &e.sentiment, sizeof(bits));
    PutBigEndian32(&s, bits);
  }
  if ((flags & kAudience) != 0) PutVarint(&s, e.audience_size);
  PutBytes(&s, e.event_id);
  PutBytes(&s, e.thread);
  PutBytes(&s, e.in_reply_to);
  PutBytes(&s, e.counterpart);
  PutBytes(&s, e.campaign_id);
  PutBytes(&s, e.source_system);
  PutVarint(&s, e.topics.size());
  for (const std::string& t : e.topics) PutBytes(&s, t);
  if (e.response == Entry::Response::kAnswered) {
    const Entry::Answer& a = e.answer;
    PutSigned(&s, Minus(static_cast<int64_t>(a.reply_position), static_cast<int64_t>(e.position)));
    PutBytes(&s, a.reply_event_id);
    PutEnum(&s, a.reply_channel);
    PutSigned(&s, Minus(a.replied_at, e.occurred_at));
    PutSigned(&s, a.wall_seconds);
    PutSigned(&s, a.service_seconds);
  }
  if (e.has_switch) {
    const Entry::Switch& w = e.switch_from;
    PutBytes(&s, w.party);
    PutBytes(&s, w.event_id);
    PutEnum(&s, w.channel);
    PutBigEndian64(&s, static_cast<uint64_t>(w.occurred_at));
    PutBigEndian64(&s, w.position);
  }
  if (!e.corrected_by.empty()) PutBytes(&s, e.corrected_by);
  if (!e.retracted_by.empty()) PutBytes(&s, e.retracted_by);
  return s;
}

absl::StatusOr<Entry> DecodeEntry(absl::string_view bytes, int64_t occurred_at, uint64_t position) {
  Cursor c(bytes);
  Entry e;
  if (c.U8() != kForm) {
    return absl::DataLossError("timeline state: an entry is not of form 4");
  }
  const uint8_t flags = c.U8();
  e.company_reply = (flags & kCompanyReply) != 0;
  e.response = (flags & kAnswered) ? Entry::Response::kAnswered
               : (flags & kOpen)   ? Entry::Response::kOpen
                                   : Entry::Response::kNone;
  e.position = position;
  e.occurred_at = occurred_at;
  e.recorded_at = Plus(occurred_at, c.Signed());
  e.channel = c.Enum<schema::Channel>();
  e.direction = c.Enum<schema::Direction>();
  e.type = c.Enum<schema::TouchpointType>();
  if ((flags & kSentiment) != 0) {
    const uint32_t bits = c.U32();
    std::memcpy(&e.sentiment, &bits, sizeof(bits));
  }
  if ((flags & kAudience) != 0) e.audience_size = c.Varint();
  e.event_id = c.Bytes();
  e.thread = c.Bytes();
  e.in_reply_to = c.Bytes();
  e.counterpart = c.Bytes();
  e.campaign_id = c.Bytes();
  e.source_system = c.Bytes();
  const uint64_t topics = c.Varint();
  for (uint64_t i = 0; i < topics && c.ok(); ++i) e.topics.push_back(c.Bytes());
  if (e.response == Entry::Response::kAnswered) {
    Entry::Answer& a = e.answer;
    a.reply_position = static_cast<uint64_t>(Plus(static_cast<int64_t>(position), c.Signed()));
    a.reply_event_id = c.Bytes();
    a.reply_channel = c.Enum<schema::Channel>();
    a.replied_at = Plus(occurred_at, c.Signed());
    a.wall_seconds = c.Signed();
    a.service_seconds = c.Signed();
  }
  if ((flags & kSwitch) != 0) {
    e.has_switch = true;
    Entry::Switch& w = e.switch_from;
    w.party = c.Bytes();
    w.event_id = c.Bytes();
    w.channel = c.Enum<schema::Channel>();
    w.occurred_at = c.I64();
    w.position = c.U64();
  }
  if ((flags & kCorrected) != 0) e.corrected_by = c.Bytes();
  if ((flags & kRetracted) != 0) e.retracted_by = c.Bytes();
  // A NaN sentiment is stored as no sentiment, which reads back as the one NaN: its bits are
  // not kept. A sentiment flag with NaN bits is not what EncodeEntry writes.
  if (!c.done() || ((flags & kCorrected) != 0 && e.corrected_by.empty()) ||
      ((flags & kRetracted) != 0 && e.retracted_by.empty()) ||
      ((flags & kSentiment) != 0 && std::isnan(e.sentiment)) ||
      ((flags & kAudience) != 0 && e.audience_size == 0)) {
    return absl::DataLossError("timeline state: an entry is malformed");
  }
  return e;
}

void ToRecord(const Entry& e, schema::TimelineEntry::Builder b) {
  b.setPosition(e.position);
  b.setEventId(AsData(e.event_id));
  b.setOccurredAt(e.occurred_at);
  b.setRecordedAt(e.recorded_at);
  b.setChannel(e.channel);
  b.setDirection(e.direction);
  b.setType(e.type);
  b.setSentiment(e.sentiment);
  if (!e.topics.empty()) {
    auto topics = b.initTopics(static_cast<unsigned>(e.topics.size()));
    for (unsigned i = 0; i < e.topics.size(); ++i) topics.set(i, AsText(e.topics[i]));
  }
  b.setThread(AsText(e.thread));
  b.setInReplyTo(AsData(e.in_reply_to));
  b.setCounterpart(AsText(e.counterpart));
  b.setCampaignId(AsText(e.campaign_id));
  b.setAudienceSize(e.audience_size);
  b.setSourceSystem(AsText(e.source_system));
  b.setCompanyReply(e.company_reply);
  switch (e.response) {
    case Entry::Response::kNone:
      b.getResponse().setNone();
      break;
    case Entry::Response::kOpen:
      b.getResponse().setOpen();
      break;
    case Entry::Response::kAnswered: {
      auto a = b.getResponse().initAnswered();
      a.setReplyPosition(e.answer.reply_position);
      a.setReplyEventId(AsData(e.answer.reply_event_id));
      a.setReplyChannel(e.answer.reply_channel);
      a.setRepliedAt(e.answer.replied_at);
      a.setWallSeconds(e.answer.wall_seconds);
      a.setServiceSeconds(e.answer.service_seconds);
      break;
    }
  }
  if (e.has_switch) {
    auto w = b.initSwitchFrom();
    w.setParty(AsText(e.switch_from.party));
    w.setEventId(AsData(e.switch_from.event_id));
    w.setChannel(e.switch_from.channel);
    w.setOccurredAt(e.switch_from.occurred_at);
    w.setPosition(e.switch_from.position);
  }
  if (!e.corrected_by.empty()) b.setCorrectedBy(AsData(e.corrected_by));
  if (!e.retracted_by.empty()) b.setRetractedBy(AsData(e.retracted_by));
}

}  // namespace ihs::projections::timeline
