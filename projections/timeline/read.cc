// The timeline's reads: one page of a party's entries and the party's summary, from a view of
// the active generation (projections/runner.h), as of a moment.
#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/field_error.h"
#include "common/service_hours.h"
#include "common/status_macros.h"
#include "common/time_math.h"
#include "projections/timeline/format.h"
#include "projections/timeline/timeline.h"
#include "schema/json.h"

namespace ihs::projections::timeline {

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
  return std::max<int64_t>(0,
                           SaturatingSub(absl::ToUnixMicros(as_of), occurred) / kMicrosPerSecond);
}

}  // namespace

absl::Status ReadPage(const StateView& view, const Query& q, capnp::MessageBuilder& out,
                      store::EventStore* store) {
  IHS_RETURN_IF_ERROR(Validate(q));
  std::optional<std::string> state;
  IHS_RETURN_IF_ERROR(RequireParty(view, q.party, &state));
  // Each stream's entries from the cursor (or `from`), up to limit + 1 of them; merged by their
  // key's time and position, which the cursor names, so that a page of a person goes on where
  // the last one ended in every stream.
  struct Found {
    std::array<unsigned char, 16> order;  // occurred_at | position, as in the key (bytewise)
    size_t stream;
    Entry entry;
  };
  std::vector<std::string> streams = {q.party};
  for (const std::string& s : q.also) {
    if (s != q.party && std::find(streams.begin(), streams.end(), s) == streams.end()) {
      streams.push_back(s);
    }
  }
  std::vector<Found> found;
  found.reserve(std::min<size_t>(q.limit + 1, 1024));
  absl::Status bad;
  for (size_t i = 0; i < streams.size(); ++i) {
    std::string from = PartyKey('E', streams[i]);
    std::string to = from;
    if (!q.cursor.empty()) {
      from.append(absl::HexStringToBytes(q.cursor));
    } else {
      PutTime(&from, q.from);
    }
    PutTime(&to, q.to);
    size_t taken = 0;
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
      Found& f = found.emplace_back(Found{{}, i, *std::move(e)});
      std::memcpy(f.order.data(), key.data() + key.size() - 16, 16);
      return ++taken <= q.limit;
    }));
    IHS_RETURN_IF_ERROR(bad);
  }
  if (streams.size() > 1) {  // one stream's entries are in order already
    std::stable_sort(found.begin(), found.end(),
                     [](const Found& a, const Found& b) { return a.order < b.order; });
  }
  std::string next;
  if (found.size() > q.limit) {
    next = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(found[q.limit].order.data()), 16));
    found.resize(q.limit);
  }
  auto page = out.initRoot<schema::TimelinePage>();
  page.setParty(q.party);
  page.setNextCursor(next);
  page.setCheckpoint(view.checkpoint());
  if (streams.size() > 1) {
    auto list = page.initStreams(static_cast<unsigned>(streams.size()));
    for (unsigned i = 0; i < streams.size(); ++i) list.set(i, streams[i]);
  }
  auto list = page.initEntries(static_cast<unsigned>(found.size()));
  for (unsigned i = 0; i < found.size(); ++i) {
    auto e = list[i];
    ToRecord(found[i].entry, e);
    if (streams.size() > 1) e.setParty(streams[found[i].stream]);
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
  std::vector<std::pair<uint64_t, OpenMsg>> open;
  absl::Status bad;
  IHS_RETURN_IF_ERROR(view.Scan(PartyKey('O', party), PartyKeysEnd('O', party),
                                [&](absl::string_view key, absl::string_view value) {
                                  absl::StatusOr<std::pair<uint64_t, OpenMsg>> o =
                                      DecodeOpen(key, value);
                                  if (!o.ok()) bad = o.status();
                                  if (o.ok()) open.push_back(*std::move(o));
                                  return o.ok();
                                }));
  IHS_RETURN_IF_ERROR(bad);
  std::sort(open.begin(), open.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.occurred, a.first) < std::tie(b.second.occurred, b.first);
  });
  auto os = s.initOpen(static_cast<unsigned>(open.size()));
  i = 0;
  for (const auto& [pos, o] : open) {
    auto x = os[i++];
    SetOpenMessage(x, pos, o);
    x.setWaitingSeconds(WaitedSeconds(as_of, o.occurred));
  }
  std::vector<int64_t> wall, service;
  IHS_RETURN_IF_ERROR(
      view.Scan(PartyKey('R', party), PartyKeysEnd('R', party),
                [&](absl::string_view, absl::string_view value) {
                  if (value.size() != 16) {
                    bad = absl::DataLossError("timeline state: a response's record is malformed");
                    return false;
                  }
                  wall.push_back(static_cast<int64_t>(GetBigEndian64(value.data())));
                  service.push_back(static_cast<int64_t>(GetBigEndian64(value.data() + 8)));
                  return true;
                }));
  IHS_RETURN_IF_ERROR(bad);
  s.setAnswered(wall.size());
  if (!wall.empty()) {
    // The lower median: an observed value, never an average of two.
    const size_t mid = (wall.size() - 1) / 2;
    std::nth_element(wall.begin(), wall.begin() + static_cast<long>(mid), wall.end());
    std::nth_element(service.begin(), service.begin() + static_cast<long>(mid), service.end());
    s.setMedianResponseSeconds(wall[mid]);
    s.setMedianResponseServiceSeconds(service[mid]);
  }
  const int32_t today = UtcDayOf(absl::ToUnixMicros(as_of));
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
