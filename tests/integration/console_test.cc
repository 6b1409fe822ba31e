// The console's API and its rules of access (server/console.h, docs/console.md), asked over raw
// sockets of a real ihsd, as a browser (or an attacker without one) would. What the pages do with
// it is tested in a real browser by tests/browser/console_test.mjs.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/time_math.h"
#include "nlohmann/json.hpp"
#include "tests/integration/http_client.h"
#include "tests/integration/rpc_fixture.h"

namespace ihs {
namespace {

using nlohmann::json;

class ConsoleTest : public RpcTest {
 protected:
  void SetUp() override {
    RpcTest::SetUp();
    StartServer({"--http", "127.0.0.1:0"});
    ASSERT_EQ(server_->http_addresses().size(), 1u);
    http_ = server_->http_addresses()[0];
  }

  // Logs in with `token`; the reply, and in *cookie the "Cookie:" header line for the session.
  HttpReply Login(const std::string& token, std::string* cookie = nullptr) {
    HttpReply r = Http(http_, "POST", "/api/login", "Content-Type: application/json\r\n",
                       json{{"token", token}}.dump());
    const size_t at = r.head.find("Set-Cookie: ");
    if (cookie != nullptr && at != std::string::npos) {
      const size_t end = r.head.find(';', at);
      *cookie = absl::StrCat("Cookie: ", r.head.substr(at + 12, end - at - 12), "\r\n");
    }
    return r;
  }
  struct Session {
    std::string cookie;
    std::string csrf;
  };
  Session MustLogin(const std::string& role) {
    Session s;
    HttpReply r = Login(tokens_[role], &s.cookie);
    EXPECT_EQ(r.status, 200) << r.head << r.body;
    json j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("csrf")) s.csrf = j["csrf"].get<std::string>();
    return s;
  }
  HttpReply Get(const Session& s, const std::string& path) {
    return Http(http_, "GET", path, s.cookie);
  }
  HttpReply Post(const Session& s, const std::string& path, const json& body, bool csrf = true) {
    return Http(http_, "POST", path,
                absl::StrCat(s.cookie, "Content-Type: application/json\r\n",
                             csrf ? absl::StrCat("X-CSRF-Token: ", s.csrf, "\r\n") : ""),
                body.dump());
  }
  // The timeline of `party` once the projection shows `entries` entries (bounded: 10 s).
  json TimelineOnce(const Session& s, const std::string& party, size_t entries) {
    json j;
    for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;
         absl::SleepFor(absl::Milliseconds(20))) {
      HttpReply r = Get(s, "/api/timeline?party=" + party);
      j = json::parse(r.body, nullptr, false);
      if (r.status == 200 && j["entries"].size() >= entries) return j;
    }
    ADD_FAILURE() << "the timeline of " << party << " did not show " << entries
                  << " entries: " << j;
    return j;
  }
  size_t AccessEvents() {
    auto reader = MustConnect("auditor");
    auto events = reader->ReadStream("$access", 0, 1000, store::ReadDirection::kForward);
    return events.ok() ? events->size() : 0;
  }

  std::string http_;
};

TEST_F(ConsoleTest, TheConsoleIsServedWithAStrictContentSecurityPolicy) {
  HttpReply page = Http(http_, "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_TRUE(absl::StrContains(page.head, "Content-Type: text/html")) << page.head;
  EXPECT_TRUE(absl::StrContains(page.head,
                                "Content-Security-Policy: default-src 'none'; "
                                "script-src 'self'; style-src 'self'"))
      << page.head;
  EXPECT_TRUE(absl::StrContains(page.head, "X-Frame-Options: DENY")) << page.head;
  EXPECT_TRUE(absl::StrContains(page.body, "/console.js")) << page.body;
  // The page loads nothing of another host, and holds no inline script.
  EXPECT_FALSE(absl::StrContains(page.body, "http://")) << page.body;
  EXPECT_FALSE(absl::StrContains(page.body, "https://")) << page.body;
  EXPECT_FALSE(absl::StrContains(page.body, "<script>")) << page.body;
  EXPECT_EQ(Http(http_, "GET", "/console.js").status, 200);
  EXPECT_TRUE(absl::StrContains(Http(http_, "GET", "/console.css").head, "text/css"));
  HttpReply none = Http(http_, "GET", "/../etc/passwd");
  EXPECT_EQ(none.status, 404);
}

TEST_F(ConsoleTest, ALoginGivesAStrictSessionCookieAndTheApiNeedsOne) {
  EXPECT_EQ(Http(http_, "GET", "/api/timeline?party=c-1").status, 401);
  std::string cookie;
  HttpReply r = Login(tokens_["reader"], &cookie);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(absl::StrContains(r.head, "; Path=/; HttpOnly; SameSite=Strict")) << r.head;
  EXPECT_FALSE(absl::StrContains(r.head, "Secure")) << r.head;  // no TLS here
  json me = json::parse(r.body);
  EXPECT_EQ(me["name"], "test-reader");
  EXPECT_EQ(me["role"], "reader");
  EXPECT_EQ(me["csrf"].get<std::string>().size(), 64u);
  // A forged or stale cookie is no session.
  EXPECT_EQ(Http(http_, "GET", "/api/me", "Cookie: ihs_session=00ff\r\n").status, 401);
  EXPECT_EQ(Http(http_, "GET", "/api/me", cookie).status, 200);
  // Log out: the cookie is cleared and no longer works.
  Session s{cookie, me["csrf"]};
  HttpReply out = Post(s, "/api/logout", json::object());
  EXPECT_EQ(out.status, 200);
  EXPECT_TRUE(absl::StrContains(out.head, "Max-Age=0")) << out.head;
  EXPECT_EQ(Http(http_, "GET", "/api/me", cookie).status, 401);
}

TEST_F(ConsoleTest, LoginsNeedJsonAndFailuresAreLimitedPerAddress) {
  // A form post (what another site's page could send without asking) is refused.
  HttpReply form =
      Http(http_, "POST", "/api/login", "Content-Type: application/x-www-form-urlencoded\r\n",
           absl::StrCat("token=", tokens_["admin"]));
  EXPECT_EQ(form.status, 400);
  EXPECT_TRUE(absl::StrContains(form.body, "application/json")) << form.body;
  EXPECT_EQ(Http(http_, "POST", "/api/login", "Content-Type: application/json\r\n", "[1,").status,
            400);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Login("not-a-token").status, 401);
  // The eleventh attempt within the minute is refused, even with a good token.
  HttpReply limited = Login(tokens_["reader"]);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_TRUE(absl::StrContains(limited.head, "Retry-After: 60")) << limited.head;
  EXPECT_EQ(Http(http_, "GET", "/healthz").status, 200);
}

TEST_F(ConsoleTest, BadRequestsGetClearErrorsAndChangeNothing) {
  Session s = MustLogin("reader");
  HttpReply malformed = Get(s, "/api/timeline?party=%zz");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_TRUE(absl::StrContains(malformed.body, "query string")) << malformed.body;
  HttpReply unknown = Get(s, "/api/timeline?party=nobody-at-all");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  HttpReply no_party = Get(s, "/api/timeline");
  EXPECT_EQ(no_party.status, 400);
  EXPECT_TRUE(absl::StrContains(no_party.body, "party")) << no_party.body;
  EXPECT_EQ(Get(s, "/api/timeline?party=x&limit=abc").status, 400);
  EXPECT_EQ(Get(s, "/api/timeline?party=x&from=yesterday").status, 400);
  HttpReply api = Get(s, "/api/nothing");
  EXPECT_EQ(api.status, 404);
  EXPECT_TRUE(absl::StrContains(api.body, "docs/console.md")) << api.body;
  HttpReply handle = Get(s, "/api/find?q=no%20handle%20at%20all");
  EXPECT_EQ(handle.status, 404);
  EXPECT_TRUE(absl::StrContains(handle.body, "no handle")) << handle.body;
  // Too large a body: 413, and nothing recorded.
  HttpReply big = Post(s, "/api/open", json{{"eventId", std::string(20000, 'a')}});
  EXPECT_EQ(big.status, 413);
  HttpReply bad_id = Post(s, "/api/open", json{{"eventId", "xyz"}});
  EXPECT_EQ(bad_id.status, 400);
  EXPECT_EQ(AccessEvents(), 0u);
}

TEST_F(ConsoleTest, OpeningContentNeedsTheCsrfTokenAndIsRecordedFirst) {
  auto writer = MustConnect("writer");
  IHS_ASSERT_OK(writer->Append(
      One("c-1", events_.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::COMPLAINT,
                                    "the parcel <b>never</b> came"))));
  Session s = MustLogin("reader");
  json t = TimelineOnce(s, "c-1", 1);
  ASSERT_EQ(t["entries"].size(), 1u);
  // The timeline itself carries no content.
  EXPECT_FALSE(t["entries"][0].contains("text")) << t;
  const std::string id = t["entries"][0]["eventId"];
  HttpReply forged = Post(s, "/api/open", json{{"eventId", id}}, /*csrf=*/false);
  EXPECT_EQ(forged.status, 403);
  EXPECT_EQ(AccessEvents(), 0u);
  HttpReply opened = Post(s, "/api/open", json{{"eventId", id}});
  ASSERT_EQ(opened.status, 200) << opened.body;
  json o = json::parse(opened.body);
  EXPECT_EQ(o["text"], "the parcel <b>never</b> came");
  // The access is in the log: who, whose, which event, from where.
  auto auditor = MustConnect("auditor");
  auto trail = auditor->ReadStream("$access", 0, 10, store::ReadDirection::kForward);
  IHS_ASSERT_OK(trail.status());
  ASSERT_EQ(trail->size(), 1u);
  auto a = (*trail)[0].event().getContentAccess();
  EXPECT_EQ(std::string(a.getParty().cStr()), "c-1");
  EXPECT_EQ(std::string(a.getReadBy().cStr()), "test-reader");
  EXPECT_EQ(std::string(a.getRole().cStr()), "reader");
  EXPECT_EQ(std::string(a.getVia().cStr()), "console");
  EXPECT_EQ(std::string(a.getPeer().cStr()), "127.0.0.1");
  ASSERT_EQ(a.getEvents().size(), 1u);
  EXPECT_EQ(o["accessPosition"], (*trail)[0].position());
  // The trail is for auditors and admins.
  EXPECT_EQ(Get(s, "/api/access").status, 403);
  HttpReply seen = Get(MustLogin("auditor"), "/api/access");
  ASSERT_EQ(seen.status, 200);
  EXPECT_EQ(json::parse(seen.body)["accesses"][0]["readBy"], "test-reader");
  // A client cannot forge an access, over RPC or onto another stream.
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<schema::Event>();
  const std::string eid = testing::EventId(99);
  e.setId(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(eid.data()), eid.size()));
  e.setOccurredAt(1700000000000000);
  e.initContentAccess().setParty("c-1");
  e.getContentAccess().setReadBy("nobody");
  auto forged_rpc = writer->Append(One("$access", e.asReader()));
  EXPECT_TRUE(absl::IsInvalidArgument(forged_rpc.status())) << forged_rpc.status();
  EXPECT_EQ(AccessEvents(), 1u);
}

TEST_F(ConsoleTest, TheRoleDecidesWhatTheConsoleAllows) {
  auto writer = MustConnect("writer");
  IHS_ASSERT_OK(
      writer->Append(One("c-1", events_.Touchpoint(1, schema::Channel::EMAIL,
                                                   schema::TouchpointType::MESSAGE, "hi"))));
  Session reader = MustLogin("reader");
  TimelineOnce(reader, "c-1", 1);
  HttpReply erase = Post(reader, "/api/erase", json{{"party", "c-1"}, {"reason", "asked"}});
  EXPECT_EQ(erase.status, 403);
  EXPECT_TRUE(absl::StrContains(erase.body, "admin")) << erase.body;
  // A writer appends over RPC but reads no timelines here, as over RPC.
  Session w = MustLogin("writer");
  HttpReply refused = Get(w, "/api/timeline?party=c-1");
  EXPECT_EQ(refused.status, 403);
  EXPECT_TRUE(absl::StrContains(refused.body, "writer")) << refused.body;
  // An admin erases; the content is gone for every reader after.
  Session admin = MustLogin("admin");
  HttpReply erased = Post(admin, "/api/erase", json{{"party", "c-1"}, {"reason", "asked"}});
  ASSERT_EQ(erased.status, 200) << erased.body;
  json t = TimelineOnce(reader, "c-1", 1);
  HttpReply opened = Post(reader, "/api/open", json{{"eventId", t["entries"][0]["eventId"]}});
  ASSERT_EQ(opened.status, 200) << opened.body;
  EXPECT_EQ(json::parse(opened.body)["erased"], true);
  EXPECT_FALSE(json::parse(opened.body).contains("text"));
}

TEST_F(ConsoleTest, SessionsAreBoundedInNumber) {
  Session first = MustLogin("reader");
  // 1,100 logins, none logged out: the least recently used sessions end, memory stays bounded.
  for (int i = 0; i < 1100; ++i) ASSERT_EQ(Login(tokens_["reader"]).status, 200);
  EXPECT_EQ(Get(first, "/api/me").status, 401);
  HttpReply m = Http(http_, "GET", "/metrics",
                     absl::StrCat("Authorization: Bearer ", tokens_["admin"], "\r\n"));
  EXPECT_TRUE(absl::StrContains(m.body, "\nihs_console_sessions 1024\n")) << m.body;
}

// The person's timeline covers every stream identity links to them, each entry naming its
// stream, and a handle finds them through the blind index.
TEST_F(ConsoleTest, APersonsTimelineCoversTheirLinkedStreams) {
  auto writer = MustConnect("writer");
  IHS_ASSERT_OK(writer->Append(
      One("c-1", events_.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE))));
  IHS_ASSERT_OK(writer->Append(
      One("c-2", events_.Touchpoint(2, schema::Channel::TWITTER, schema::TouchpointType::COMPLAINT,
                                    "", 1700000100000000))));
  auto link = writer->Link("c-1", "c-2", false, "the same customer, said on the phone");
  IHS_ASSERT_OK(link.status());
  Session s = MustLogin("reader");
  json t = TimelineOnce(s, "c-1", 2);
  ASSERT_EQ(t["entries"].size(), 2u) << t;
  EXPECT_EQ(t["person"]["streams"], json({"c-1", "c-2"})) << t;
  EXPECT_EQ(t["entries"][1]["party"], "c-2") << t;
  EXPECT_EQ(t["entries"][1]["channel"], "twitter") << t;
  json found = json::parse(Get(s, "/api/find?q=c-2").body);
  ASSERT_EQ(found["matches"].size(), 1u) << found;
  EXPECT_EQ(found["matches"][0]["streams"], json({"c-2", "c-1"})) << found;
}

TEST_F(ConsoleTest, AZoomsFirstPageIsTheLastDaysUpToThePersonsLatestTouchpoint) {
  constexpr int64_t kDay = 86'400'000'000;
  constexpr int64_t t0 = 1700000000000000;
  auto writer = MustConnect("writer");
  int id = 0;
  for (int64_t at : {t0, t0 + 3 * kDay, t0 + 10 * kDay}) {
    IHS_ASSERT_OK(
        writer->Append(One("c-1", events_.Touchpoint(++id, schema::Channel::EMAIL,
                                                     schema::TouchpointType::MESSAGE, "", at))));
  }
  Session s = MustLogin("reader");
  json all = TimelineOnce(s, "c-1", 3);
  EXPECT_FALSE(all.contains("from")) << all;  // no days: no range chosen
  // 8 days before the latest touchpoint (and a µs after it): the second and the third.
  json week = json::parse(Get(s, "/api/timeline?party=c-1&days=8").body);
  ASSERT_EQ(week["entries"].size(), 2u) << week;
  EXPECT_EQ(week["from"], t0 + 2 * kDay + 1) << week;
  EXPECT_EQ(week["summary"]["entries"], 3) << week;  // the summary is the whole person's
  // A page with that `from` (as the console asks for the next one) gives the same entries.
  json again =
      json::parse(Get(s, absl::StrCat("/api/timeline?party=c-1&from=", t0 + 2 * kDay + 1)).body);
  EXPECT_EQ(again["entries"], week["entries"]);
  // More days than the history has: from the first touchpoint.
  json year = json::parse(Get(s, "/api/timeline?party=c-1&days=365").body);
  EXPECT_EQ(year["entries"].size(), 3u) << year;
  EXPECT_EQ(year["from"], t0) << year;
  // At the ends of the times the store takes, the arithmetic does not overflow.
  for (int64_t at : {kEarliestTime, kLatestTime}) {
    const std::string party = at == kEarliestTime ? "c-first" : "c-last";
    IHS_ASSERT_OK(
        writer->Append(One(party, events_.Touchpoint(++id, schema::Channel::EMAIL,
                                                     schema::TouchpointType::MESSAGE, "", at))));
    TimelineOnce(s, party, 1);
    json far = json::parse(Get(s, absl::StrCat("/api/timeline?party=", party, "&days=7")).body);
    ASSERT_EQ(far["entries"].size(), 1u) << far;
    EXPECT_EQ(far["from"], at) << far;
  }
  for (const char* bad : {"days=0", "days=-1", "days=week", "days=36601", "days=7&from=0"}) {
    HttpReply r = Get(s, absl::StrCat("/api/timeline?party=c-1&", bad));
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_TRUE(absl::StrContains(r.body, "days")) << bad << ": " << r.body;
  }
}

// A stream of server-sent events of the console, read from a raw socket; every read is bounded.
class EventStreamReader {
 public:
  EventStreamReader(const std::string& address, const std::string& path,
                    const std::string& cookie) {
    fd_ = ConnectTo(address);
    const std::string req = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\n", cookie, "\r\n");
    if (fd_ >= 0 && write(fd_, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
      close(fd_);
      fd_ = -1;
    }
    timeval tv{10, 0};
    if (fd_ >= 0) setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~EventStreamReader() {
    if (fd_ >= 0) close(fd_);
  }
  // Reads until `what` has come (true) or 10 s pass without a byte (false).
  bool Until(const std::string& what) {
    char buf[4096];
    while (!absl::StrContains(got_, what)) {
      ssize_t n = fd_ < 0 ? -1 : read(fd_, buf, sizeof buf);
      if (n <= 0) return false;
      got_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  const std::string& got() const { return got_; }

 private:
  int fd_ = -1;
  std::string got_;
};

TEST_F(ConsoleTest, ALiveStreamTellsOfTheTouchpointsOfThePerson) {
  auto writer = MustConnect("writer");
  IHS_ASSERT_OK(writer->Append(
      One("c-1", events_.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE))));
  Session s = MustLogin("reader");
  TimelineOnce(s, "c-1", 1);
  EventStreamReader live(http_, "/api/live?party=c-1", s.cookie);
  ASSERT_TRUE(live.Until(": live")) << live.got();
  EXPECT_TRUE(absl::StrContains(live.got(), "text/event-stream")) << live.got();
  // Another party's event says nothing; the person's own is told, once the timeline holds it.
  IHS_ASSERT_OK(writer->Append(
      One("c-2", events_.Touchpoint(2, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE))));
  auto third = writer->Append(
      One("c-1", events_.Touchpoint(3, schema::Channel::CHAT, schema::TouchpointType::MESSAGE)));
  IHS_ASSERT_OK(third.status());
  ASSERT_TRUE(live.Until("event: append") && live.Until("}\n\n")) << live.got();
  EXPECT_TRUE(absl::StrContains(live.got(), absl::StrCat("\"position\":", third->positions[0])))
      << live.got();
  EXPECT_TRUE(absl::StrContains(live.got(), "\"stream\":\"c-1\"")) << live.got();
  EXPECT_FALSE(absl::StrContains(live.got(), "c-2")) << live.got();
  json t = TimelineOnce(s, "c-1", 2);  // the page reads it at once
  EXPECT_EQ(t["entries"].size(), 2u);
  // One append of 300 of the person's events among others': each told once, in log order.
  std::vector<store::StreamAppend> many(2);
  many[0] = {"c-2", ExpectedVersion::Any(), {}};
  many[1] = {"c-1", ExpectedVersion::Any(), {}};
  for (int i = 0; i < 300; ++i) {
    many[i % 3 == 0 ? 0 : 1].events.push_back(
        events_.Touchpoint(100 + i, schema::Channel::SMS, schema::TouchpointType::MESSAGE));
  }
  auto burst = writer->AppendMulti(many);
  IHS_ASSERT_OK(burst.status());
  const std::vector<uint64_t>& told = (*burst)[1].positions;
  ASSERT_EQ(told.size(), 200u);
  ASSERT_TRUE(live.Until(absl::StrCat("\"position\":", told.back(), ",")) && live.Until("}\n\n"))
      << live.got();
  std::vector<uint64_t> got;
  for (absl::string_view line : absl::StrSplit(live.got(), '\n')) {
    if (!absl::StartsWith(line, "data: ")) continue;
    got.push_back(json::parse(line.substr(6))["position"].get<uint64_t>());
  }
  std::vector<uint64_t> want = {third->positions[0]};
  want.insert(want.end(), told.begin(), told.end());
  EXPECT_EQ(got, want);
  // A writer gets no stream.
  EXPECT_EQ(Get(MustLogin("writer"), "/api/live?party=c-1").status, 403);
}

TEST_F(ConsoleTest, TransitionsOfSegmentsAreToldAsTheyHappen) {
  auto writer = MustConnect("writer");
  IHS_ASSERT_OK(writer->DefineSegment(schema::SegmentOp::DEFINE, "complainers",
                                      "count(type = complaint) >= 1", ""));
  IHS_ASSERT_OK(writer->DefineSegment(schema::SegmentOp::DEFINE, "buyers",
                                      "count(type = purchase) >= 1", ""));
  Session s = MustLogin("reader");
  for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;
       absl::SleepFor(absl::Milliseconds(20))) {
    if (json::parse(Get(s, "/api/segment-list").body)["segments"].size() == 2) break;
  }
  EventStreamReader all(http_, "/api/transitions", s.cookie);
  EventStreamReader one(http_, "/api/transitions?segment=buyers", s.cookie);
  ASSERT_TRUE(all.Until(": live") && one.Until(": live")) << all.got() << one.got();
  IHS_ASSERT_OK(writer->Append(One(
      "c-1", events_.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::COMPLAINT))));
  IHS_ASSERT_OK(writer->Append(One(
      "c-2", events_.Touchpoint(2, schema::Channel::WEB_FORM, schema::TouchpointType::PURCHASE))));
  ASSERT_TRUE(all.Until("\"segment\":\"buyers\"") && all.Until("}\n\n")) << all.got();
  EXPECT_TRUE(absl::StrContains(all.got(), "\"segment\":\"complainers\"")) << all.got();
  EXPECT_TRUE(absl::StrContains(all.got(), "\"person\":\"c-1\"")) << all.got();
  EXPECT_TRUE(absl::StrContains(all.got(), "\"entered\":true")) << all.got();
  ASSERT_TRUE(one.Until("\"segment\":\"buyers\"") && one.Until("}\n\n")) << one.got();
  EXPECT_FALSE(absl::StrContains(one.got(), "complainers")) << one.got();
  // Each told once.
  size_t complainers = 0;
  for (absl::string_view part : absl::StrSplit(all.got(), "event: transition")) {
    if (absl::StrContains(part, "\"segment\":\"complainers\"")) ++complainers;
  }
  EXPECT_EQ(complainers, 1u) << all.got();
}

// Hostile requests, at random (bounded: 400, seeded): paths of the API with broken query
// strings, bodies that are not JSON or not UTF-8 or deeply nested, odd methods and cookies. Every
// one gets an answer that is not a server error, nothing is appended, and ihsd stays up.
TEST_F(ConsoleTest, RandomHostileRequestsGetClearAnswersAndChangeNothing) {
  auto writer = MustConnect("writer");
  IHS_ASSERT_OK(writer->Append(One(
      "c-1", events_.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE, "x"))));
  Session s = MustLogin("admin");
  TimelineOnce(s, "c-1", 1);
  auto reader = MustConnect("reader");
  const uint64_t head = *reader->Head();
  std::mt19937 rng(20261206);
  auto pick = [&](std::initializer_list<const char*> v) {
    return std::string(*(v.begin() + rng() % v.size()));
  };
  auto junk = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(rng() % 256));
    return out;
  };
  int answered = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string path =
        pick({"/api/timeline", "/api/find", "/api/segments", "/api/community", "/api/members",
              "/api/top", "/api/open", "/api/erase", "/api/login", "/api/logout", "/api/me",
              "/api/live", "/api/x", "/", "/console.js", "/%00", "/api/"});
    std::string query = pick({"", "?party=c-1", "?party=%zz", "?q=%40", "?party=c-1&limit=0",
                              "?party=c-1&limit=99999999999999999999", "?segment=&after=%ff",
                              "?by=zzz", "?party=c-1&from=-9223372036854775808",
                              "?party=c-1&cursor=not-a-cursor", "?party=$access", "?=&&=="});
    if (rng() % 4 == 0) query = "?q=" + absl::CHexEscape(junk(20));
    const std::string method = pick({"GET", "POST", "POST", "PUT", "DELETE", "HEAD"});
    std::string body = pick({"", "{}", "[]", "null", "{\"eventId\":5}", "{\"eventId\":\"zz\"}",
                             "{\"token\":[1]}", "{\"party\":\"c-1\"}", "\"\\ud800\""});
    if (rng() % 4 == 0) body = junk(rng() % 300);
    if (rng() % 8 == 0) body = std::string(2000, '[');
    const bool with_session = rng() % 3 != 0;
    const std::string headers = absl::StrCat(
        with_session ? s.cookie : (rng() % 2 ? "Cookie: ihs_session=" + junk(8) + "\r\n" : ""),
        rng() % 2 ? absl::StrCat("X-CSRF-Token: ", s.csrf, "\r\n") : "",
        rng() % 2 ? "Content-Type: application/json\r\n" : "");
    HttpReply r = Http(http_, method, path + query,
                       method == "GET" || method == "HEAD" ? headers : headers, body);
    if (r.status != 0) ++answered;
    EXPECT_LT(r.status, 500) << method << " " << path << query << " -> " << r.status << " "
                             << r.body;
    if (r.status >= 500) break;
  }
  EXPECT_GT(answered, 300);  // (a request kj-http cannot parse is closed without an answer)
  EXPECT_EQ(Http(http_, "GET", "/healthz").status, 200);
  // Nothing was appended: no access, no erasure (the admin's erase of c-1 needs a reason).
  EXPECT_EQ(*reader->Head(), head);
}

// Slowloris: connections that send their headers a byte at a time hold a slot for kj-http's
// header timeout (10 s) at most; then ihsd closes them and serves again.
TEST_F(ConsoleTest, HeadersSentByTheByteAreCutOffAndTheSlotsComeBack) {
  std::vector<int> slow;
  for (int i = 0; i < 4; ++i) {
    int fd = ConnectTo(http_);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "GET / HTTP/1.1\r\nX-Slow: ", 25), 25);
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    slow.push_back(fd);
  }
  // A byte each a second; each connection is closed by ihsd within 10 s of its start (15 s
  // allowed here), whatever it still sends.
  const absl::Time start = absl::Now();
  std::vector<bool> closed(slow.size(), false);
  size_t open = slow.size();
  while (open > 0 && absl::Now() - start < absl::Seconds(15)) {
    for (size_t i = 0; i < slow.size(); ++i) {
      if (closed[i]) continue;
      (void)!write(slow[i], "a", 1);
      char c;
      const ssize_t n = read(slow[i], &c, 1);  // waits 1 s at most
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        closed[i] = true;
        --open;
      }
    }
    // Meanwhile others are served.
    EXPECT_EQ(Http(http_, "GET", "/healthz").status, 200);
  }
  EXPECT_EQ(open, 0u) << "connections that never finished their headers were still open after "
                      << absl::FormatDuration(absl::Now() - start);
  EXPECT_GE(absl::Now() - start, absl::Seconds(9));  // not cut before the timeout
  for (int fd : slow) close(fd);
  EXPECT_EQ(Http(http_, "GET", "/").status, 200);
}

// Under TLS (--tls-cert) the console's session cookie is Secure. Asked with curl, trusting the
// test's own certificate.
TEST_F(RpcTest, UnderTlsTheConsoleCookieIsSecure) {
  const std::string cert = dir_.Sub("cert.pem"), key = dir_.Sub("key.pem");
  ASSERT_EQ(std::system(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
                                     "-subj /CN=localhost -addext subjectAltName=DNS:localhost "
                                     "-keyout ",
                                     key, " -out ", cert, " 2>/dev/null")
                            .c_str()),
            0)
      << "openssl (installed by tools/setup.sh) failed";
  StartServer({"--tls-cert", cert, "--tls-key", key, "--http", "127.0.0.1:0"});
  const std::string http = server_->http_addresses()[0];
  const std::string port = http.substr(http.rfind(':') + 1);
  const std::string body = dir_.Sub("login.json"), head = dir_.Sub("head.txt");
  std::ofstream(body) << json{{"token", tokens_["reader"]}}.dump();
  const std::string curl = absl::StrCat(
      "curl -s --max-time 20 --cacert ", cert, " --resolve localhost:", port, ":127.0.0.1 -D ",
      head, " -o /dev/null -H 'Content-Type: application/json' --data @", body,
      " https://localhost:", port, "/api/login");
  ASSERT_EQ(std::system(curl.c_str()), 0) << curl << " (curl is installed by tools/setup.sh)";
  std::ifstream in(head);
  const std::string headers((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(absl::StrContains(headers, "HttpOnly; SameSite=Strict; Secure")) << headers;
}

}  // namespace
}  // namespace ihs
