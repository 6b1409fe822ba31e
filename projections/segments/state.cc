#include "projections/segments/state.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "projections/packed_record.h"
#include "schema/json.h"

namespace ihs::projections::segments {
namespace {

constexpr char kWhat[] = "segments";

std::string Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// Time keys: an int64 with its sign bit flipped, so that byte order is numeric order.
void PutTime(std::string* out, int64_t t) {
  PutBigEndian64(out, static_cast<uint64_t>(t) ^ (uint64_t{1} << 63));
}

}  // namespace

std::string StreamKey(absl::string_view stream) { return absl::StrCat("S", stream); }
std::string TouchKey(absl::string_view stream, uint64_t seq) {
  std::string k = absl::StrCat("T", stream, absl::string_view("\0", 1));
  PutBigEndian64(&k, seq);
  return k;
}
std::string EventIndexKey(absl::string_view stream, absl::string_view event_id) {
  return absl::StrCat("E", stream, absl::string_view("\0", 1), event_id);
}
std::string ThreadKey(absl::string_view stream, absl::string_view thread) {
  return absl::StrCat("Y", stream, absl::string_view("\0", 1), thread);
}
std::string PersonKey(absl::string_view person) { return absl::StrCat("P", person); }
std::string SpillKey(absl::string_view person, uint32_t index, uint64_t slot) {
  std::string k = absl::StrCat("K", person, absl::string_view("\0", 1));
  PutBigEndian32(&k, index);
  PutBigEndian64(&k, slot);
  return k;
}
std::string SpillIndexKey(absl::string_view person, uint32_t index, absl::string_view event_id) {
  std::string k = absl::StrCat("V", person, absl::string_view("\0", 1));
  PutBigEndian32(&k, index);
  k.append(event_id.data(), event_id.size());
  return k;
}
std::string EncodeSpilled(const KeptTouch& t) {
  std::string v;
  PutBigEndian64(&v, static_cast<uint64_t>(t.occurred));
  PutBigEndian64(&v, static_cast<uint64_t>(t.due));
  v.append(t.id.data(), t.id.size());
  return v;
}
absl::StatusOr<KeptTouch> DecodeSpilled(absl::string_view bytes) {
  KeptTouch t;
  if (bytes.size() != 16 + t.id.size()) {
    return absl::DataLossError("segments state: a spilled message is not 32 bytes");
  }
  t.occurred = static_cast<int64_t>(GetBigEndian64(bytes.data()));
  t.due = static_cast<int64_t>(GetBigEndian64(bytes.data() + 8));
  std::memcpy(t.id.data(), bytes.data() + 16, t.id.size());
  return t;
}
std::string MemberKey(absl::string_view segment, absl::string_view person) {
  return absl::StrCat("M", segment, absl::string_view("\0", 1), person);
}
std::string CountKey(absl::string_view segment) { return absl::StrCat("C", segment); }
std::string HistoryPrefix(absl::string_view segment, absl::string_view person) {
  const absl::string_view zero("\0", 1);
  return absl::StrCat("H", segment, zero, person, zero);
}
std::string HistoryKey(absl::string_view segment, absl::string_view person, uint64_t seq) {
  std::string k = HistoryPrefix(segment, person);
  PutBigEndian64(&k, seq);
  return k;
}
std::string FeedKey(uint64_t seq) {
  std::string k = "F";
  PutBigEndian64(&k, seq);
  return k;
}
std::string TimerKey(int64_t due, absl::string_view person) {
  std::string k = "W";
  PutTime(&k, due);
  absl::StrAppend(&k, person);
  return k;
}
std::string DefinitionKey(uint64_t index) {
  std::string k = "D";
  PutBigEndian64(&k, index);
  return k;
}

std::string EncodeStream(const StreamRec& s) {
  capnp::MallocMessageBuilder m(128);  // words
  auto b = m.initRoot<schema::SegStream>();
  b.setFirstPosition(s.first_position);
  b.setPerson(s.person);
  b.setKind(s.kind);
  b.setCohort(s.cohort);
  b.setProfilePosition(s.profile_position);
  auto consents = b.initConsents(static_cast<unsigned>(s.consents.size()));
  for (unsigned i = 0; i < s.consents.size(); ++i) {
    consents[i].setChannel(s.consents[i].channel);
    consents[i].setGiven(s.consents[i].given);
    consents[i].setPosition(s.consents[i].position);
  }
  auto bands = b.initBands(static_cast<unsigned>(s.bands.size()));
  for (unsigned i = 0; i < s.bands.size(); ++i) bands.set(i, s.bands[i]);
  b.setTouchCount(s.touch_count);
  return Encode(m);
}

absl::StatusOr<StreamRec> DecodeStream(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::SegStream>());
  StreamRec s;
  s.first_position = r.getFirstPosition();
  s.person = Str(r.getPerson());
  s.kind = r.getKind();
  s.cohort = Str(r.getCohort());
  s.profile_position = r.getProfilePosition();
  for (auto c : r.getConsents())
    s.consents.push_back({c.getChannel(), c.getGiven(), c.getPosition()});
  for (auto band : r.getBands()) s.bands.push_back(Str(band));
  s.touch_count = r.getTouchCount();
  return s;
}

std::string EncodeTouch(const StoredTouch& t) {
  capnp::MallocMessageBuilder m(64);  // words
  auto tb = m.initRoot<schema::SegTouch>();
  tb.setSeq(t.seq);
  tb.setOccurred(t.occurred);
  tb.setPosition(t.position);
  tb.setEventId(AsData(t.event_id()));
  tb.setChannel(t.channel);
  tb.setDirection(t.direction);
  tb.setType(t.type);
  auto topics = tb.initTopics(static_cast<unsigned>(t.topics.size()));
  for (unsigned j = 0; j < t.topics.size(); ++j) topics.set(j, t.topics[j]);
  tb.setCampaign(t.campaign);
  tb.setSource(t.source);
  tb.setSentiment(t.sentiment);
  tb.setAudience(t.audience);
  tb.setOriginal(t.original);
  tb.setThread(t.thread);
  tb.setCompanyReply(t.company_reply);
  tb.setAnswered(t.answered);
  tb.setRetracted(t.retracted);
  return Encode(m);
}

absl::StatusOr<StoredTouch> DecodeTouch(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto tr, rec.Root<schema::SegTouch>());
  StoredTouch t;
  t.seq = tr.getSeq();
  t.occurred = tr.getOccurred();
  t.position = tr.getPosition();
  if (tr.getEventId().size() != t.id.size()) {
    return absl::DataLossError("segments state: a touchpoint's event id is not 16 bytes");
  }
  std::memcpy(t.id.data(), tr.getEventId().begin(), t.id.size());
  t.channel = tr.getChannel();
  t.direction = tr.getDirection();
  t.type = tr.getType();
  for (auto topic : tr.getTopics()) t.topics.push_back(Str(topic));
  t.campaign = Str(tr.getCampaign());
  t.source = Str(tr.getSource());
  t.sentiment = tr.getSentiment();
  t.audience = tr.getAudience();
  t.original = tr.getOriginal();
  t.thread = Str(tr.getThread());
  t.company_reply = tr.getCompanyReply();
  t.answered = tr.getAnswered();
  t.retracted = tr.getRetracted();
  return t;
}

std::string EncodeThread(const ThreadRec& t) {
  capnp::MallocMessageBuilder m(64);  // words
  auto b = m.initRoot<schema::SegThread>();
  auto replies = b.initReplies(static_cast<unsigned>(t.replies.size()));
  for (unsigned i = 0; i < t.replies.size(); ++i) replies.set(i, t.replies[i]);
  auto waiting = b.initWaiting(static_cast<unsigned>(t.waiting.size()));
  for (unsigned i = 0; i < t.waiting.size(); ++i) {
    waiting[i].setSeq(t.waiting[i].seq);
    waiting[i].setOccurred(t.waiting[i].occurred);
    waiting[i].setAnswered(t.waiting[i].answered);
  }
  return Encode(m);
}

absl::StatusOr<ThreadRec> DecodeThread(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::SegThread>());
  ThreadRec t;
  t.replies.reserve(r.getReplies().size());
  for (int64_t at : r.getReplies()) t.replies.push_back(at);
  t.waiting.reserve(r.getWaiting().size());
  for (auto w : r.getWaiting()) t.waiting.push_back({w.getSeq(), w.getOccurred(), w.getAnswered()});
  return t;
}

std::string EncodePerson(const PersonRec& p) {
  capnp::MallocMessageBuilder m(512);  // words; most persons take less
  auto b = m.initRoot<schema::SegPerson>();
  auto streams = b.initStreams(static_cast<unsigned>(p.streams.size()));
  for (unsigned i = 0; i < p.streams.size(); ++i) streams.set(i, p.streams[i]);
  auto links = b.initLinks(static_cast<unsigned>(p.links.size()));
  for (unsigned i = 0; i < p.links.size(); ++i) {
    links[i].setA(p.links[i].first);
    links[i].setB(p.links[i].second);
  }
  auto members = b.initMembers(static_cast<unsigned>(p.members.size()));
  for (unsigned i = 0; i < p.members.size(); ++i) {
    members[i].setSegment(p.members[i].segment);
    members[i].setSince(p.members[i].since);
    members[i].setVersion(p.members[i].version);
  }
  b.setDue(p.due);
  b.setEpoch(p.epoch);
  b.setKind(p.profile.kind);
  b.setCohort(p.profile.cohort);
  auto consent = b.initConsent(static_cast<unsigned>(p.profile.consent.size()));
  unsigned i = 0;
  for (const auto& [name, on] : p.profile.consent) {
    consent[i].setName(name);
    consent[i++].setOn(on);
  }
  auto community = b.initCommunity(static_cast<unsigned>(p.profile.community.size()));
  i = 0;
  for (const std::string& clause : p.profile.community) community.set(i++, clause);
  auto set = [](const KeptTouch& from, auto to) {
    to.setOccurred(from.occurred);
    to.setDue(from.due);
    to.setAnswered(from.answered == kNever ? 0 : from.answered);  // 0 packs away
    to.setValue(from.value);
    to.setId(AsData(from.event_id()));
  };
  auto put = [&set](const std::vector<KeptTouch>& from, auto to) {
    for (unsigned j = 0; j < from.size(); ++j) set(from[j], to[j]);
  };
  auto kept = b.initKept(static_cast<unsigned>(p.kept.size()));
  for (unsigned j = 0; j < p.kept.size(); ++j) {
    const Kept& k = p.kept[j];
    kept[j].setIndex(k.index);
    kept[j].setCount(k.count);
    kept[j].setSum(k.sum);
    put(k.touches, kept[j].initTouches(static_cast<unsigned>(k.touches.size())));
    put(k.latest, kept[j].initLatest(static_cast<unsigned>(k.latest.size())));
    if (k.spilled > 0) {
      kept[j].setSpilled(k.spilled);
      kept[j].setSlots(k.slots);
      set(k.top, kept[j].initTop());
    }
  }
  auto dues = b.initDues(static_cast<unsigned>(p.dues.size()));
  for (unsigned j = 0; j < p.dues.size(); ++j) dues.set(j, p.dues[j]);
  return Encode(m);
}

absl::StatusOr<PersonRec> DecodePerson(absl::string_view bytes) {
  PackedRecord rec(bytes, kWhat);
  IHS_ASSIGN_OR_RETURN(auto r, rec.Root<schema::SegPerson>());
  PersonRec p;
  for (auto s : r.getStreams()) p.streams.push_back(Str(s));
  for (auto l : r.getLinks()) p.links.emplace_back(Str(l.getA()), Str(l.getB()));
  for (auto m : r.getMembers()) {
    p.members.push_back({Str(m.getSegment()), m.getSince(), m.getVersion()});
  }
  p.due = r.getDue();
  p.epoch = r.getEpoch();
  p.profile.kind = Str(r.getKind());
  p.profile.cohort = Str(r.getCohort());
  for (auto f : r.getConsent()) p.profile.consent[Str(f.getName())] = f.getOn();
  for (auto c : r.getCommunity()) p.profile.community.insert(Str(c));
  auto one = [](auto t, KeptTouch& kt) -> absl::Status {
    kt.occurred = t.getOccurred();
    kt.due = t.getDue();
    kt.answered = t.getAnswered() == 0 ? kNever : t.getAnswered();
    kt.value = t.getValue();
    if (t.getId().size() != kt.id.size()) {
      return absl::DataLossError("segments state: a kept event id is not 16 bytes");
    }
    std::memcpy(kt.id.data(), t.getId().begin(), kt.id.size());
    return absl::OkStatus();
  };
  auto get = [&one](auto from, std::vector<KeptTouch>& to) -> absl::Status {
    to.resize(from.size());
    for (unsigned i = 0; i < from.size(); ++i) IHS_RETURN_IF_ERROR(one(from[i], to[i]));
    return absl::OkStatus();
  };
  p.kept.reserve(r.getKept().size());
  for (auto k : r.getKept()) {
    Kept kept;
    kept.index = k.getIndex();
    kept.count = k.getCount();
    kept.sum = k.getSum();
    IHS_RETURN_IF_ERROR(get(k.getTouches(), kept.touches));
    IHS_RETURN_IF_ERROR(get(k.getLatest(), kept.latest));
    kept.spilled = k.getSpilled();
    kept.slots = k.getSlots();
    if (kept.spilled > 0) {
      if (kept.slots < kept.spilled) return absl::DataLossError("segments state: bad spill");
      IHS_RETURN_IF_ERROR(one(k.getTop(), kept.top));
    }
    p.kept.push_back(std::move(kept));
  }
  for (int64_t d : r.getDues()) p.dues.push_back(d);
  return p;
}

std::string EncodeMember(int64_t since, uint32_t version) {
  std::string v;
  PutBigEndian64(&v, static_cast<uint64_t>(since));
  PutBigEndian32(&v, version);
  return v;
}

absl::StatusOr<MemberRec> DecodeMember(absl::string_view bytes) {
  if (bytes.size() != 12) return absl::DataLossError("segments state: a member is not 12 bytes");
  MemberRec m;
  m.since = static_cast<int64_t>(GetBigEndian64(bytes.data()));
  m.version = GetBigEndian32(bytes.data() + 8);
  return m;
}

std::optional<std::string> PatchPackedSeq(absl::string_view packed, uint64_t seq) {
  const auto* p = reinterpret_cast<const unsigned char*>(packed.data());
  size_t at = 0;
  auto skip_word = [&](uint64_t* value) {
    if (at >= packed.size() || p[at] == 0 || p[at] == 0xff) return false;
    const unsigned tag = p[at++];
    *value = 0;
    for (int b = 0; b < 8; ++b) {
      if ((tag & (1u << b)) == 0) continue;
      if (at >= packed.size()) return false;
      *value |= uint64_t{p[at++]} << (8 * b);
    }
    return true;
  };
  uint64_t first = 0;
  if (!skip_word(&first)) return std::nullopt;
  const uint64_t segments = (first & 0xffffffff) + 1;
  uint64_t ignored = 0;
  for (uint64_t w = 1; w < (segments + 2) / 2 + 1; ++w) {  // the rest of the table, the root
    if (!skip_word(&ignored)) return std::nullopt;
  }
  if (at + 1 >= packed.size() || p[at] != 0) return std::nullopt;
  if (seq == 0) return std::string(packed);
  const unsigned char zeros_after = p[at + 1];
  std::string out(packed.substr(0, at));
  unsigned tag = 0;
  std::string bytes;
  for (int b = 0; b < 8; ++b) {
    const auto byte = static_cast<unsigned char>(seq >> (8 * b));
    if (byte == 0) continue;
    tag |= 1u << b;
    bytes.push_back(static_cast<char>(byte));
  }
  if (tag == 0xff) return std::nullopt;
  out.push_back(static_cast<char>(tag));
  out += bytes;
  if (zeros_after > 0) {
    out.push_back('\0');
    out.push_back(static_cast<char>(zeros_after - 1));
  }
  out.append(packed.data() + at + 2, packed.size() - at - 2);
  return out;
}

std::string ReencodeWithSeq(absl::string_view held, uint64_t seq) {
  // The same segments (a copy of the message would lay it out anew), the seq set in the first.
  kj::ArrayInputStream in(
      kj::arrayPtr(reinterpret_cast<const kj::byte*>(held.data()), held.size()));
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kj::maxValue;
  capnp::PackedMessageReader reader(in, options);
  std::vector<std::vector<uint64_t>> words;
  for (uint id = 0;; ++id) {
    const kj::ArrayPtr<const capnp::word> segment = reader.getSegment(id);
    if (segment == nullptr) break;
    words.emplace_back(segment.size());
    std::memcpy(words.back().data(), segment.begin(), segment.size() * sizeof(capnp::word));
  }
  if (!words.empty() && words[0].size() > 1) {
    unsigned char le[8];
    for (int b = 0; b < 8; ++b) le[b] = static_cast<unsigned char>(seq >> (8 * b));
    std::memcpy(&words[0][1], le, sizeof(le));  // the root struct's first data word
  }
  std::vector<kj::ArrayPtr<const capnp::word>> segments;
  for (const auto& w : words) {
    segments.push_back(kj::arrayPtr(reinterpret_cast<const capnp::word*>(w.data()), w.size()));
  }
  kj::VectorOutputStream out(held.size() + 64);
  capnp::writePackedMessage(out, kj::arrayPtr(segments.data(), segments.size()));
  const kj::ArrayPtr<kj::byte> bytes = out.getArray();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

std::string WithSeq(absl::string_view held, uint64_t seq) {
  if (std::optional<std::string> patched = PatchPackedSeq(held, seq)) return *std::move(patched);
  return ReencodeWithSeq(held, seq);
}

Touch ToTouch(const StoredTouch& s) {
  Touch t;
  t.occurred = s.occurred;
  t.channel = schema::EnumName(s.channel);
  t.direction = schema::EnumName(s.direction);
  t.type = schema::EnumName(s.type);
  t.topics = s.topics;
  t.campaign = s.campaign;
  t.source = s.source;
  t.sentiment = s.sentiment;
  t.audience = static_cast<double>(s.audience);
  t.original = s.original;
  t.answered = s.answered == 0 ? kNever : s.answered;
  t.event_id = std::string(s.event_id());
  return t;
}

}  // namespace ihs::projections::segments
