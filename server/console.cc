#include "server/console.h"

#include <kj/compat/url.h>
#include <sys/socket.h>

#include <algorithm>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "common/time_math.h"
#include "nlohmann/json.hpp"
#include "projections/community/community.h"
#include "projections/identity/identity.h"
#include "projections/segments/definitions.h"
#include "projections/segments/segments.h"
#include "projections/timeline/timeline.h"
#include "projections/views_json.h"
#include "schema/json.h"
#include "server/console_assets.h"
#include "store/governance.h"
#include "store/stored_event.h"

namespace ihs::server {
namespace {

using Reply = Console::Reply;
using nlohmann::json;
using projections::JsonLine;

constexpr char kSessionCookie[] = "ihs_session";
// Nothing but the console's own files and API: no inline script or style, no other host, no
// framing, no plugins.
constexpr char kCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

Reply Json(json j, unsigned status = 200) { return Reply{status, JsonLine(j)}; }

Reply Error(unsigned status, absl::string_view message) {
  return Json({{"error", std::string(message)}}, status);
}

// An absl::Status as the API answers it: its HTTP status and {"error": message}.
Reply FromStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return Error(400, s.message());
    case absl::StatusCode::kNotFound:
      return Error(404, s.message());
    case absl::StatusCode::kPermissionDenied:
      return Error(403, s.message());
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
      return Error(409, s.message());
    case absl::StatusCode::kUnavailable:
      return Error(503, s.message());
    default:
      return Error(500, s.message());
  }
}

const char* StatusText(unsigned status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

// The parameters of a query string, decoded; nullopt if it does not parse.
std::optional<std::map<std::string, std::string>> QueryOf(kj::StringPtr url) {
  KJ_IF_MAYBE (u, kj::Url::tryParse(url, kj::Url::HTTP_REQUEST)) {
    std::map<std::string, std::string> out;
    for (auto& p : u->query) out[std::string(p.name.cStr())] = std::string(p.value.cStr());
    return out;
  }
  return std::nullopt;
}

std::string Param(const std::map<std::string, std::string>& q, const std::string& name) {
  auto it = q.find(name);
  return it == q.end() ? "" : it->second;
}

// A time of the API: RFC 3339 ("2026-11-13T09:40:00Z") or µs since the epoch.
absl::StatusOr<int64_t> TimeParam(const std::string& name, const std::string& v) {
  int64_t micros = 0;
  if (absl::SimpleAtoi(v, &micros)) return micros;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, v, &t, &err)) return absl::ToUnixMicros(t);
  return absl::InvalidArgumentError(
      absl::StrCat(name, " \"", v, "\" is no time: give RFC 3339 or µs since the epoch"));
}

bool ReadsProjections(rpc::Role role) { return role != rpc::Role::WRITER; }

absl::Status NeedsReader(const Identity& who) {
  if (ReadsProjections(who.role)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      "a writer token cannot read timelines, segments or community values; a reader, auditor or "
      "admin token can");
}

// The streams of `party`'s person (the party first), or the party alone when identity does not
// know it yet.
std::vector<std::string> PersonStreams(projections::Runner& runner, const std::string& party,
                                       std::string* person_id) {
  std::vector<std::string> streams = {party};
  *person_id = party;
  absl::StatusOr<projections::StateView> view = runner.View(projections::identity::kName);
  if (!view.ok()) return streams;
  capnp::MallocMessageBuilder m;
  if (!projections::identity::ReadPerson(*view, party, m).ok()) return streams;
  auto p = m.getRoot<schema::Person>().asReader();
  *person_id = p.getId().cStr();
  for (auto s : p.getStreams()) {
    if (s != party) streams.emplace_back(s.cStr());
  }
  return streams;
}

Reply FindParty(store::EventStore& store, projections::Runner& runner, const std::string& q) {
  if (q.empty()) return Error(400, "give q: a stream id or a handle (\"@name\", an email, ...)");
  std::vector<std::string> found;
  std::string how = "stream";
  absl::StatusOr<store::StreamInfo> info = store.GetStreamInfo(q);
  if (info.ok() && !store::IsSystemStream(q)) {
    found.push_back(q);
  } else {
    std::optional<schema::HandleKind> kind = projections::identity::GuessHandleKind(q);
    if (!kind) {
      return Error(404, absl::StrCat("no stream is named \"", q,
                                     "\", and it is no handle: give \"@name\", an email address, "
                                     "a phone number, \"fb:\", \"yt:\", \"forum:\" or \"app:\""));
    }
    absl::StatusOr<std::string> key = store.BlindIndexKey();
    if (!key.ok()) return FromStatus(key.status());
    absl::StatusOr<projections::StateView> view = runner.View(projections::identity::kName);
    if (!view.ok()) return FromStatus(view.status());
    absl::StatusOr<std::vector<std::string>> streams =
        projections::identity::FindHandle(*view, *key, *kind, q);
    if (!streams.ok()) return FromStatus(streams.status());
    found = *streams;
    how = schema::EnumName(*kind);
  }
  json matches = json::array();
  for (const std::string& s : found) {
    std::string person;
    std::vector<std::string> streams = PersonStreams(runner, s, &person);
    matches.push_back({{"stream", s}, {"person", person}, {"streams", streams}});
  }
  return Json({{"query", q}, {"matched", how}, {"matches", matches}});
}

Reply Timeline(projections::Runner& runner, const std::map<std::string, std::string>& params) {
  namespace tl = projections::timeline;
  tl::Query q;
  q.party = Param(params, "party");
  if (q.party.empty()) return Error(400, "give party: a stream id");
  q.cursor = Param(params, "cursor");
  q.limit = 50;
  if (std::string l = Param(params, "limit"); !l.empty() && !absl::SimpleAtoi(l, &q.limit)) {
    return Error(400, absl::StrCat("limit \"", l, "\" is no number"));
  }
  for (const char* name : {"from", "to"}) {
    if (std::string v = Param(params, name); !v.empty()) {
      absl::StatusOr<int64_t> t = TimeParam(name, v);
      if (!t.ok()) return FromStatus(t.status());
      (std::string(name) == "from" ? q.from : q.to) = *t;
    }
  }
  int64_t days = 0;
  if (std::string d = Param(params, "days"); !d.empty()) {
    if (!absl::SimpleAtoi(d, &days) || days < 1 || days > 36600) {
      return Error(400, absl::StrCat("days \"", d, "\" is no number of days from 1 to 36600"));
    }
    if (!Param(params, "from").empty() || !Param(params, "to").empty()) {
      return Error(400, "give days or from and to, not both");
    }
  }
  q.as_of = absl::Now();
  if (absl::Status s = tl::Validate(q); !s.ok()) return FromStatus(s);
  std::string person;
  std::vector<std::string> streams = PersonStreams(runner, q.party, &person);
  q.also.assign(streams.begin() + 1, streams.end());
  absl::StatusOr<projections::StateView> view = runner.View(tl::kName);
  if (!view.ok()) return FromStatus(view.status());
  capnp::MallocMessageBuilder sm, pm;
  if (absl::Status s = tl::ReadSummary(*view, q.party, q.as_of, sm); !s.ok()) return FromStatus(s);
  auto summary = sm.getRoot<schema::TimelineSummary>().asReader();
  if (days > 0) {
    // The last `days` up to the person's latest touchpoint, from their first at the earliest:
    // the range the page's zoom shows, read with the page instead of a summary read before it.
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (auto c : summary.getChannels()) {
      first = std::min(first, c.getFirstAt());
      last = std::max(last, c.getLastAt());
    }
    if (last != INT64_MIN) {
      // Saturating: a store written before occurredAt was limited may hold any 64-bit time.
      q.from = std::max(first, SaturatingSub(SaturatingAdd(last, 1), days * 86'400'000'000));
    }
  }
  // No content here: subject and text are shown when a reader opens them (POST /api/open).
  if (absl::Status s = tl::ReadPage(*view, q, pm, nullptr); !s.ok()) return FromStatus(s);
  json j = projections::TimelinePageJson(summary, pm.getRoot<schema::TimelinePage>().asReader());
  j["person"] = {{"id", person}, {"streams", streams}};
  if (days > 0) {
    // µs since the epoch, what a later page gives as `from`; null: no touchpoint yet.
    j["from"] = q.from != std::numeric_limits<int64_t>::min() ? json(q.from) : json();
  }
  return Json(std::move(j));
}

Reply Segments(projections::Runner& runner, const std::string& party) {
  namespace sg = projections::segments;
  if (party.empty()) return Error(400, "give party: a stream id");
  absl::StatusOr<projections::StateView> view = runner.View(sg::kName);
  if (!view.ok()) return FromStatus(view.status());
  capnp::MallocMessageBuilder m;
  if (absl::Status s = sg::ReadPartySegments(*view, party, 0, m); !s.ok()) return FromStatus(s);
  auto r = m.getRoot<schema::PartySegments>().asReader();
  json list = json::array();
  for (auto member : r.getSegments()) {
    json one = projections::MembershipJson(member);
    capnp::MallocMessageBuilder w;
    if (sg::ReadWhy(*view, party, member.getSegment().cStr(), 0, w).ok()) {
      auto why = w.getRoot<schema::SegmentWhy>().asReader();
      // The transition that made it a member: the last one (it entered).
      if (why.getTransitions().size() > 0) {
        one["why"] =
            projections::TransitionJson(why.getTransitions()[why.getTransitions().size() - 1]);
      }
    }
    list.push_back(std::move(one));
  }
  return Json({{"party", party}, {"person", r.getPerson().cStr()}, {"segments", list}});
}

Reply Community(projections::Runner& runner, const std::string& party) {
  namespace cm = projections::community;
  if (party.empty()) return Error(400, "give party: a stream id");
  absl::StatusOr<projections::StateView> view = runner.View(cm::kName);
  if (!view.ok()) return FromStatus(view.status());
  capnp::MallocMessageBuilder m;
  absl::Status s = cm::ReadCard(*view, party, absl::ToUnixMicros(absl::Now()), m);
  if (!s.ok()) return FromStatus(s);
  return Json(projections::CommunityCardJson(m.getRoot<schema::CommunityCard>().asReader()));
}

Reply SegmentList(store::EventStore& store, projections::Runner& runner) {
  namespace sg = projections::segments;
  absl::StatusOr<sg::Definitions> d = sg::ReadDefinitions(store);
  if (!d.ok()) return FromStatus(d.status());
  absl::StatusOr<projections::StateView> view = runner.View(sg::kName);
  if (!view.ok()) return FromStatus(view.status());
  json list = json::array();
  for (const auto& [name, segment] : d->all()) {
    const sg::Version& v = segment.current();
    if (v.retired) continue;
    capnp::MallocMessageBuilder m;
    uint64_t count = 0;
    if (sg::ReadMembers(*view, name, 0, "", 1, m).ok()) {
      count = m.getRoot<schema::MemberPage>().getCount();
    }
    list.push_back({{"name", name},
                    {"rule", v.rule},
                    {"description", v.description},
                    {"version", segment.versions.size()},
                    {"members", count}});
  }
  return Json({{"segments", list}});
}

Reply Members(projections::Runner& runner, const std::map<std::string, std::string>& params) {
  namespace sg = projections::segments;
  const std::string segment = Param(params, "segment"), after = Param(params, "after");
  if (segment.empty()) return Error(400, "give segment: its name");
  absl::StatusOr<projections::StateView> view = runner.View(sg::kName);
  if (!view.ok()) return FromStatus(view.status());
  capnp::MallocMessageBuilder m;
  if (absl::Status s = sg::ReadMembers(*view, segment, 0, after, 100, m); !s.ok()) {
    return FromStatus(s);
  }
  auto page = m.getRoot<schema::MemberPage>().asReader();
  json list = json::array();
  for (auto member : page.getMembers()) list.push_back(projections::MembershipJson(member));
  const auto members = page.getMembers();
  json next;
  if (page.getMore() && members.size() > 0) next = members[members.size() - 1].getPerson().cStr();
  return Json(
      {{"segment", segment}, {"count", page.getCount()}, {"members", list}, {"next", next}});
}

Reply Top(projections::Runner& runner, const std::string& by_name) {
  namespace cm = projections::community;
  cm::TopBy by = cm::TopBy::kValue;
  if (by_name == "reach") {
    by = cm::TopBy::kReach;
  } else if (by_name == "risk") {
    by = cm::TopBy::kRisk;
  } else if (by_name == "standing") {
    by = cm::TopBy::kStanding;
  } else if (!by_name.empty() && by_name != "value") {
    return Error(400, absl::StrCat("by \"", by_name, "\": give value, reach, risk or standing"));
  }
  absl::StatusOr<projections::StateView> view = runner.View(cm::kName);
  if (!view.ok()) return FromStatus(view.status());
  capnp::MallocMessageBuilder m;
  if (absl::Status s = cm::ReadTop(*view, 50, by, m); !s.ok()) return FromStatus(s);
  json list = json::array();
  uint64_t rank = 0;
  for (auto e : m.getRoot<schema::CommunityTop>().asReader().getEntries()) {
    list.push_back(projections::CommunityTopEntryJson(e, ++rank));
  }
  return Json({{"by", by_name.empty() ? "value" : by_name}, {"persons", list}});
}

// The "$access" trail, newest first: who opened whose content.
Reply AccessTrail(store::EventStore& store) {
  absl::StatusOr<std::vector<store::StoredEvent>> events =
      store.ReadStream(store::kAccessStream, UINT64_MAX, 200, store::ReadDirection::kBackward);
  json list = json::array();
  if (!events.ok() && !absl::IsNotFound(events.status())) return FromStatus(events.status());
  if (events.ok()) {
    for (const store::StoredEvent& e : *events) {
      schema::Event::Reader ev = e.event();
      if (!ev.isContentAccess()) continue;
      auto a = ev.getContentAccess();
      json ids = json::array();
      for (auto id : a.getEvents()) ids.push_back(projections::HexJson(id));
      list.push_back({{"position", ev.getPosition()},
                      {"recordedAt", schema::FormatMicros(ev.getRecordedAt())},
                      {"party", a.getParty().cStr()},
                      {"events", ids},
                      {"readBy", a.getReadBy().cStr()},
                      {"role", a.getRole().cStr()},
                      {"via", a.getVia().cStr()},
                      {"peer", a.getPeer().cStr()}});
    }
  }
  return Json({{"accesses", list}});
}

// Opens one event's subject and text for `who`: first the contentAccess event on "$access",
// durable, then the content.
Reply Open(store::EventStore& store, const Identity& who, const std::string& peer,
           const std::string& event_hex) {
  std::string id;
  if (event_hex.size() != 32 || !absl::c_all_of(event_hex, absl::ascii_isxdigit)) {
    return Error(400, "eventId must be 32 hex digits");
  }
  id = absl::HexStringToBytes(event_hex);
  absl::StatusOr<std::optional<uint64_t>> position = store.FindEvent(id);
  if (!position.ok()) return FromStatus(position.status());
  if (!*position) return Error(404, absl::StrCat("no event has the id ", event_hex));
  store::ReadOptions closed;
  closed.open_content = false;
  absl::StatusOr<std::vector<store::StoredEvent>> found = store.ReadAll(**position, 1, closed);
  if (!found.ok()) return FromStatus(found.status());
  if (found->empty()) return Error(404, absl::StrCat("no event has the id ", event_hex));
  const std::string party = found->front().event().getStreamId().cStr();
  if (store::IsSystemStream(party)) {
    return Error(400, "events of system streams hold no personal content to open");
  }
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<schema::Event>();
  // Random: each opening is an access of its own.
  const std::string access_id = absl::HexStringToBytes(NewToken()).substr(0, 16);
  e.setId(
      capnp::Data::Reader(reinterpret_cast<const kj::byte*>(access_id.data()), access_id.size()));
  e.setStreamId(store::kAccessStream);
  e.setOccurredAt(absl::ToUnixMicros(absl::Now()));
  e.setSourceSystem("ihsd-console");
  auto a = e.initContentAccess();
  a.setParty(party);
  a.initEvents(1).set(0,
                      capnp::Data::Reader(reinterpret_cast<const kj::byte*>(id.data()), id.size()));
  a.setReadBy(who.name);
  a.setRole(RoleName(who.role));
  a.setVia("console");
  a.setPeer(peer);
  store::StreamAppend append;
  append.stream = store::kAccessStream;
  append.events.push_back(e.asReader());
  absl::StatusOr<store::AppendResult> recorded = store.Append(append);
  if (!recorded.ok()) return FromStatus(recorded.status());
  absl::StatusOr<std::vector<store::StoredEvent>> opened = store.ReadAll(**position, 1);
  if (!opened.ok()) return FromStatus(opened.status());
  const store::StoredEvent& ev = opened->front();
  json j = {
      {"eventId", event_hex}, {"party", party}, {"accessPosition", recorded->positions.front()}};
  if (ev.content_state() == store::ContentState::kOpen) {
    j["subject"] = ev.content().getSubject().cStr();
    j["text"] = ev.content().getText().cStr();
  } else {
    // The party's content was erased or expired, or the event has none: nothing to show.
    j["erased"] = ev.content_state() == store::ContentState::kErased;
  }
  return Json(std::move(j));
}

// The value of a request header, or "".
std::string HeaderValue(const kj::HttpHeaders& headers, kj::HttpHeaderId id) {
  KJ_IF_MAYBE (v, headers.get(id)) {
    return std::string(v->cStr(), v->size());
  }
  return "";
}

// The events appended to the person's streams since `*cursor` (a log position), as server-sent
// events, once the timeline holds them; advances the cursor past what it read.
std::string PersonEvents(store::EventStore& store, projections::Runner& runner,
                         const std::string& party, uint64_t* cursor) {
  const uint64_t head = store.Head();
  if (head <= *cursor) return "";
  std::string person;
  std::vector<std::string> streams = PersonStreams(runner, party, &person);
  store::ReadOptions closed;
  closed.open_content = false;
  // Each of the person's streams read backwards from its last event to the cursor: the cost is
  // the person's new events, not everything the log took since (a live stream is woken by every
  // commit of the store).
  std::vector<std::pair<uint64_t, const std::string*>> found;
  for (const std::string& s : streams) {
    absl::StatusOr<store::StreamInfo> info = store.GetStreamInfo(s);
    if (!info.ok() || info->event_count == 0 || info->last_position < *cursor) continue;
    uint64_t version = UINT64_MAX;
    for (bool more = true; more;) {
      absl::StatusOr<std::vector<store::StoredEvent>> events =
          store.ReadStream(s, version, 256, store::ReadDirection::kBackward, closed);
      if (!events.ok() || events->empty()) break;
      for (const store::StoredEvent& e : *events) {
        if (e.position() < *cursor) {
          more = false;
          break;
        }
        if (e.position() < head) found.emplace_back(e.position(), &s);
      }
      const uint64_t oldest = events->back().event().getStreamVersion();
      if (oldest == 0) break;
      version = oldest - 1;
    }
  }
  *cursor = head;
  if (found.empty()) return "";
  std::sort(found.begin(), found.end());
  std::string out;
  for (const auto& [position, stream] : found) {
    absl::StrAppend(&out, "event: append\ndata: ",
                    JsonLine({{"position", position}, {"stream", *stream}}), "\n\n");
  }
  // The page reads the timeline next: let it hold the events first.
  runner.WaitFor(projections::timeline::kName, found.back().first + 1,
                 absl::Now() + absl::Seconds(5));
  return out;
}

// The segment transitions from `*cursor` (a seq) on, of `segment` (all when empty), as
// server-sent events; advances the cursor past what it looked at.
std::string SegmentTransitions(projections::Runner& runner, const std::string& segment,
                               uint64_t* cursor) {
  namespace sg = projections::segments;
  absl::StatusOr<projections::StateView> view = runner.View(sg::kName);
  if (!view.ok()) return "";  // a rebuild after corruption: the next change tells
  std::set<std::string> only;
  if (!segment.empty()) only.insert(segment);
  std::string out;
  for (int pages = 0; pages < 10; ++pages) {  // at most 1,000 a wake-up; the rest next time
    capnp::MallocMessageBuilder m;
    if (!sg::ReadTransitions(*view, *cursor, only, 100, 1 << 20, m).ok()) break;
    auto page = m.getRoot<schema::TransitionPage>().asReader();
    for (auto t : page.getTransitions()) {
      absl::StrAppend(&out, "event: transition\ndata: ", JsonLine(projections::TransitionJson(t)),
                      "\n\n");
    }
    if (page.getScannedTo() == *cursor) break;
    *cursor = page.getScannedTo();
  }
  return out;
}

}  // namespace

Reply Console::TooLarge() const {
  return Error(413,
               absl::StrCat("the request body is larger than ", options_.max_body_bytes, " bytes"));
}

kj::Promise<kj::Maybe<kj::String>> Console::Body(kj::AsyncInputStream& body) {
  // readAllText throws past its limit; that is the answer 413, not a failed connection.
  return body.readAllText(options_.max_body_bytes)
      .then([](kj::String text) -> kj::Maybe<kj::String> { return kj::mv(text); },
            [](kj::Exception&&) -> kj::Maybe<kj::String> { return nullptr; });
}

Console::Console(kj::HttpHeaderTable::Builder& b, store::EventStore& store,
                 projections::Runner* runner, const Tokens& tokens, kj::Timer& timer,
                 ConsoleOptions options)
    : store_(store), runner_(runner), tokens_(tokens), timer_(timer), options_(options) {
  log_watch_ = std::make_unique<CommitWatch>(store);
  if (runner != nullptr)
    segments_watch_ = NewProjectionWatch(*runner, projections::segments::kName);
  cookie_ = b.add("Cookie");
  set_cookie_ = b.add("Set-Cookie");
  csrf_ = b.add("X-CSRF-Token");
  csp_ = b.add("Content-Security-Policy");
  cache_control_ = b.add("Cache-Control");
  nosniff_ = b.add("X-Content-Type-Options");
  frame_options_ = b.add("X-Frame-Options");
  referrer_policy_ = b.add("Referrer-Policy");
  retry_after_ = b.add("Retry-After");
  allow_ = b.add("Allow");
}

Console::~Console() = default;

std::string Console::Cookie(const std::string& value, bool clear) const {
  return absl::StrCat(kSessionCookie, "=", value, "; Path=/; HttpOnly; SameSite=Strict",
                      options_.secure_cookies ? "; Secure" : "", clear ? "; Max-Age=0" : "");
}

kj::Promise<void> Console::Send(kj::HttpService::Response& response, unsigned status,
                                std::string body, const char* content_type,
                                const std::string& cookie) {
  kj::HttpHeaders h(*table_);
  h.set(kj::HttpHeaderId::CONTENT_TYPE, content_type);
  h.set(cache_control_, "no-store");
  h.set(nosniff_, "nosniff");
  h.set(csp_, kCsp);
  h.set(frame_options_, "DENY");
  h.set(referrer_policy_, "no-referrer");
  if (!cookie.empty()) h.set(set_cookie_, cookie);
  if (status == 405) h.set(allow_, "GET, HEAD, POST");
  if (status == 429) h.set(retry_after_, "60");
  auto text = kj::heap<std::string>(std::move(body));
  auto out = response.send(status, StatusText(status), h, text->size());
  auto written = out->write(text->data(), text->size());
  return written.attach(kj::mv(out), kj::mv(text));
}

kj::Promise<void> Console::SendReply(kj::HttpService::Response& response, Reply reply) {
  return Send(response, reply.status, std::move(reply.body), "application/json; charset=utf-8");
}

kj::Promise<void> Console::Asset(kj::HttpMethod method, absl::string_view path,
                                 kj::HttpService::Response& response) {
  const ConsoleAsset* asset = FindConsoleAsset(path == "/" ? "/index.html" : path);
  if (asset == nullptr) {
    return Send(response, 404,
                "not found: ihsd serves the console at /, its API under /api/, and /healthz, "
                "/readyz, /metrics\n",
                "text/plain; charset=utf-8");
  }
  if (method != kj::HttpMethod::GET && method != kj::HttpMethod::HEAD) {
    return Send(response, 405, "only GET and HEAD\n", "text/plain; charset=utf-8");
  }
  return Send(response, 200, std::string(asset->bytes), asset->content_type);
}

Console::Session* Console::Find(const kj::HttpHeaders& headers, std::string* id) {
  const std::string cookies = HeaderValue(headers, cookie_);
  for (absl::string_view part : absl::StrSplit(cookies, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (!absl::ConsumePrefix(&part, kSessionCookie) || !absl::ConsumePrefix(&part, "=")) continue;
    auto it = sessions_.find(std::string(part));
    if (it == sessions_.end()) continue;
    const absl::Time now = absl::Now();
    if (now - it->second.last_used > options_.session_idle ||
        !tokens_.StillHolds(it->second.who, now)) {
      sessions_.erase(it);  // idle too long, or its token was revoked or expired
      continue;
    }
    it->second.last_used = now;
    *id = it->first;
    return &it->second;
  }
  return nullptr;
}

void Console::ForgetOldestFailures(const std::string& keep, absl::Time now) {
  // Addresses whose failures are all past the window first; then the one that failed longest
  // ago. Never `keep`, the address failing now.
  for (auto it = failures_.begin(); it != failures_.end();) {
    if (it->first != keep && now - it->second.back() > options_.login_failure_window) {
      it = failures_.erase(it);
    } else {
      ++it;
    }
  }
  while (failures_.size() > kMaxFailingAddresses) {
    auto oldest = failures_.end();
    for (auto it = failures_.begin(); it != failures_.end(); ++it) {
      if (it->first != keep &&
          (oldest == failures_.end() || it->second.back() < oldest->second.back())) {
        oldest = it;
      }
    }
    if (oldest == failures_.end()) break;
    failures_.erase(oldest);
  }
}

bool Console::LoginRefused(const std::string& peer, absl::Time now) {
  auto it = failures_.find(peer);
  if (it == failures_.end()) return false;
  while (!it->second.empty() && now - it->second.front() > options_.login_failure_window) {
    it->second.pop_front();
  }
  if (it->second.empty()) {
    failures_.erase(it);
    return false;
  }
  return it->second.size() >= options_.max_login_failures;
}

kj::Promise<void> Console::Login(const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                                 kj::HttpService::Response& response, const std::string& peer) {
  // JSON only: a page of another site cannot send it without the browser asking first (CORS),
  // so it cannot log a visitor in with a token of its own.
  if (!absl::StartsWith(HeaderValue(headers, kj::HttpHeaderId::CONTENT_TYPE), "application/json")) {
    return SendReply(response, Error(400, "log in with Content-Type: application/json"));
  }
  const absl::Time now = absl::Now();
  if (LoginRefused(peer, now)) {
    return SendReply(response,
                     Error(429, "too many failed logins from this address; wait a minute"));
  }
  return Body(body).then([this, &response, peer](kj::Maybe<kj::String> text) -> kj::Promise<void> {
    if (text == nullptr) return SendReply(response, TooLarge());
    json j = json::parse(KJ_ASSERT_NONNULL(text).cStr(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("token") || !j["token"].is_string()) {
      return SendReply(response, Error(400, "send {\"token\": \"...\"}"));
    }
    const absl::Time now = absl::Now();
    std::optional<absl::Time> expired;
    std::optional<Identity> who =
        tokens_.Authenticate(j["token"].get<std::string>(), now, &expired);
    if (!who) {
      auto& f = failures_[peer];
      f.push_back(now);
      if (failures_.size() > kMaxFailingAddresses) ForgetOldestFailures(peer, now);
      return SendReply(response, Error(401, expired ? "the token has expired" : "unknown token"));
    }
    if (sessions_.size() >= options_.max_sessions) {  // end the least recently used
      auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
        return a.second.last_used < b.second.last_used;
      });
      sessions_.erase(oldest);
    }
    const std::string id = NewToken();
    Session s{*who, NewToken(), now};
    sessions_[id] = s;
    return Send(response, 200,
                JsonLine({{"name", who->name}, {"role", RoleName(who->role)}, {"csrf", s.csrf}}),
                "application/json; charset=utf-8", Cookie(id, false));
  });
}

kj::Promise<void> Console::Serve(kj::HttpMethod method, kj::StringPtr url,
                                 const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                                 kj::HttpService::Response& response, const std::string& peer) {
  absl::string_view path(url.cStr(), url.size());
  path = path.substr(0, path.find('?'));
  if (!absl::StartsWith(path, "/api/")) return Asset(method, path, response);
  std::optional<std::map<std::string, std::string>> params = QueryOf(url);
  if (!params) return SendReply(response, Error(400, "the query string does not parse"));
  const bool post = method == kj::HttpMethod::POST;
  if (!post && method != kj::HttpMethod::GET) {
    return Send(response, 405, JsonLine({{"error", "only GET and POST"}}),
                "application/json; charset=utf-8");
  }
  if (path == "/api/login") {
    if (!post) return SendReply(response, Error(405, "log in with POST"));
    return Login(headers, body, response, peer);
  }
  std::string sid;
  Session* session = Find(headers, &sid);
  if (session == nullptr) return SendReply(response, Error(401, "log in first"));
  if (post && HeaderValue(headers, csrf_) != session->csrf) {
    return SendReply(response, Error(403, "this request needs the session's X-CSRF-Token"));
  }
  const Identity who = session->who;
  if (path == "/api/me" && !post) {
    return SendReply(response, Json({{"name", who.name},
                                     {"role", RoleName(who.role)},
                                     {"csrf", session->csrf},
                                     {"projections", runner_ != nullptr}}));
  }
  if (path == "/api/logout" && post) {
    sessions_.erase(sid);
    return Send(response, 200, "{}", "application/json; charset=utf-8", Cookie("", true));
  }
  store::EventStore* store = &store_;
  if (path == "/api/access" && !post) {
    if (who.role != rpc::Role::AUDITOR && who.role != rpc::Role::ADMIN) {
      return SendReply(response, Error(403, "the access trail is for auditor and admin tokens"));
    }
    return pool_.Run([store] { return AccessTrail(*store); }).then([this, &response](Reply r) {
      return SendReply(response, std::move(r));
    });
  }
  if (post && (path == "/api/open" || path == "/api/erase")) {
    const bool erase = path == "/api/erase";
    if (erase && who.role != rpc::Role::ADMIN) {
      return SendReply(response, Error(403, "erasing a party's content needs an admin token"));
    }
    return Body(body).then([this, &response, store, who, peer,
                            erase](kj::Maybe<kj::String> text) -> kj::Promise<void> {
      if (text == nullptr) return SendReply(response, TooLarge());
      json j = json::parse(KJ_ASSERT_NONNULL(text).cStr(), nullptr, /*allow_exceptions=*/false);
      const char* field = erase ? "party" : "eventId";
      if (!j.is_object() || !j.contains(field) || !j[field].is_string()) {
        return SendReply(response, Error(400, absl::StrCat("send {\"", field, "\": \"...\"}")));
      }
      std::string value = j[field].get<std::string>();
      std::string reason =
          j.contains("reason") && j["reason"].is_string() ? j["reason"].get<std::string>() : "";
      return pool_
          .Run([store, who, peer, erase, value, reason]() -> Reply {
            if (!erase) return Open(*store, who, peer, value);
            absl::StatusOr<uint64_t> at = store::Erase(*store, value, reason, who.name);
            if (!at.ok()) return FromStatus(at.status());
            return Json({{"party", value}, {"position", *at}});
          })
          .then([this, &response](Reply r) { return SendReply(response, std::move(r)); });
    });
  }
  if (post) return SendReply(response, Error(404, absl::StrCat("no POST ", path)));
  if (runner_ == nullptr) {
    return SendReply(response, Error(503, "this ihsd runs no projections"));
  }
  if (absl::Status s = NeedsReader(who); !s.ok()) return SendReply(response, FromStatus(s));
  if (path == "/api/live" || path == "/api/transitions") {
    if (live_ >= options_.max_live) {
      return SendReply(response, Error(503, "too many live streams are open; try again later"));
    }
    projections::Runner* runner = runner_;
    if (path == "/api/live") {
      const std::string party = Param(*params, "party");
      if (party.empty()) return SendReply(response, Error(400, "give party: a stream id"));
      return Stream(sid, response, *log_watch_, store_.Head(),
                    [store, runner, party](uint64_t* cursor) {
                      return PersonEvents(*store, *runner, party, cursor);
                    });
    }
    const std::string segment = Param(*params, "segment");
    absl::StatusOr<projections::StateView> view = runner_->View(projections::segments::kName);
    absl::StatusOr<uint64_t> next =
        view.ok() ? projections::segments::NextSeq(*view) : absl::StatusOr<uint64_t>(view.status());
    if (!next.ok()) return SendReply(response, FromStatus(next.status()));
    return Stream(sid, response, *segments_watch_, *next, [runner, segment](uint64_t* cursor) {
      return SegmentTransitions(*runner, segment, cursor);
    });
  }
  projections::Runner* runner = runner_;
  std::function<Reply()> read;
  const std::map<std::string, std::string> p = *params;
  if (path == "/api/find") {
    read = [store, runner, p] { return FindParty(*store, *runner, Param(p, "q")); };
  } else if (path == "/api/timeline") {
    read = [runner, p] { return Timeline(*runner, p); };
  } else if (path == "/api/segments") {
    read = [runner, p] { return Segments(*runner, Param(p, "party")); };
  } else if (path == "/api/community") {
    read = [runner, p] { return Community(*runner, Param(p, "party")); };
  } else if (path == "/api/segment-list") {
    read = [store, runner] { return SegmentList(*store, *runner); };
  } else if (path == "/api/members") {
    read = [runner, p] { return Members(*runner, p); };
  } else if (path == "/api/top") {
    read = [runner, p] { return Top(*runner, Param(p, "by")); };
  } else {
    return SendReply(response,
                     Error(404, absl::StrCat("no API ", path, " (docs/console.md lists them)")));
  }
  return pool_.Run(std::move(read)).then([this, &response](Reply r) {
    return SendReply(response, std::move(r));
  });
}

kj::Promise<void> Console::Stream(const std::string& sid, kj::HttpService::Response& response,
                                  CommitWatch& watch, uint64_t cursor, Poll poll) {
  kj::HttpHeaders h(*table_);
  h.set(kj::HttpHeaderId::CONTENT_TYPE, "text/event-stream; charset=utf-8");
  h.set(cache_control_, "no-store");
  h.set(nosniff_, "nosniff");
  h.set(csp_, kCsp);
  ++live_;
  auto st = kj::heap<StreamState>();
  st->out = response.send(200, "OK", h);
  st->sid = sid;
  st->watch = &watch;
  st->cursor = cursor;
  st->known = watch.Current();
  st->poll = std::move(poll);
  st->text = ": live\n\n";
  StreamState* s = st.get();
  return s->out->write(s->text.data(), s->text.size())
      .then([this, s] { return Step(s); })
      .attach(kj::mv(st), kj::defer([this] { --live_; }));
}

kj::Promise<void> Console::Step(StreamState* s) {
  // Woken by the watch, or after 15 s for a comment that finds a client gone.
  const uint64_t known = s->known;
  return s->watch->WaitBeyond(known)
      .exclusiveJoin(timer_.afterDelay(15 * kj::SECONDS).then([known] { return known; }))
      .then([this, s](uint64_t now) -> kj::Promise<void> {
        if (sessions_.find(s->sid) == sessions_.end()) return kj::READY_NOW;  // logged out
        if (now == s->known) {
          s->text = ": keepalive\n\n";
          return s->out->write(s->text.data(), s->text.size()).then([this, s] { return Step(s); });
        }
        s->known = now;
        const uint64_t from = s->cursor;
        Poll poll = s->poll;
        return pool_
            .Run([poll, from]() -> std::pair<uint64_t, std::string> {
              uint64_t cursor = from;
              std::string text = poll(&cursor);
              return {cursor, std::move(text)};
            })
            .then([this, s](std::pair<uint64_t, std::string> r) -> kj::Promise<void> {
              s->cursor = std::max(s->cursor, r.first);
              if (r.second.empty()) return Step(s);
              s->text = std::move(r.second);
              return s->out->write(s->text.data(), s->text.size()).then([this, s] {
                return Step(s);
              });
            });
      });
}

}  // namespace ihs::server
