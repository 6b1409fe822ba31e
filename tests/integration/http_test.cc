// ihsd's operator endpoints over HTTP (server/http.h): a real ihsd with --http, asked over a
// plain socket as Prometheus, a load balancer or curl would; and the metrics text and the
// readiness rules by themselves.
#include "server/http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "tests/integration/http_client.h"
#include "tests/integration/rpc_fixture.h"

namespace ihs {
namespace {

// The value of a sample line "NAME VALUE" or "NAME{LABELS} VALUE" of a metrics text; -1 if none.
double Sample(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      double v = 0;
      return absl::SimpleAtod(line, &v) ? v : -1;
    }
  }
  return -1;
}

class HttpTest : public RpcTest {
 protected:
  void StartWithHttp(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--http", "127.0.0.1:0"});
    StartServer(std::move(extra));
    ASSERT_EQ(server_->http_addresses().size(), 1u);
    http_ = server_->http_addresses()[0];
  }
  // Events 1..n, each an inbound email to a stream of its own ("c-1" ...).
  void AppendMessages(Client& w, uint64_t n) {
    for (uint64_t id = 1; id <= n; ++id) {
      IHS_ASSERT_OK(w.Append(
          One(absl::StrCat("c-", id),
              events_.Touchpoint(id, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE))));
    }
  }
  std::string Bearer(const std::string& token) {
    return absl::StrCat("Authorization: Bearer ", token, "\r\n");
  }
  std::string http_;
};

TEST_F(HttpTest, HealthAndReadinessAnswerWithoutAToken) {
  StartWithHttp();
  HttpReply h = Http(http_, "GET", "/healthz");
  EXPECT_EQ(h.status, 200) << h.head;
  EXPECT_EQ(h.body, "ok\n");
  EXPECT_TRUE(absl::StrContains(h.head, "Cache-Control: no-store")) << h.head;
  HttpReply r = Http(http_, "GET", "/readyz");
  EXPECT_EQ(r.status, 200) << r.head << r.body;
  EXPECT_EQ(r.body, "ready\n");
}

// What an operator sees in top -H or ps -L: each of ihsd's busy threads says what it does.
TEST_F(HttpTest, IhsdsThreadsAreNamedForWhatTheyDo) {
  StartWithHttp();
  const std::vector<std::string> wanted = {"ihsd:appends", "ihsd:reads",   "ihsd:waits",
                                           "ihsd:console", "ihsd:commits", "p:timeline",
                                           "p:identity",   "p:segments",   "p:community"};
  // A thread names itself once it runs, which under a sanitizer can be a while after ihsd
  // answers: look until every name is there or the time is up.
  auto missing = [&](const std::set<std::string>& names) {
    return std::count_if(wanted.begin(), wanted.end(),
                         [&](const std::string& w) { return !names.count(w); });
  };
  std::set<std::string> names;
  const std::string tasks = absl::StrCat("/proc/", server_->pid(), "/task");
  for (absl::Time end = absl::Now() + absl::Seconds(20); absl::Now() < end && missing(names) > 0;
       absl::SleepFor(absl::Milliseconds(10))) {
    names.clear();
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
      std::string comm;
      std::getline(std::ifstream(task.path() / "comm"), comm);
      names.insert(comm);
    }
  }
  for (const std::string& want : wanted) {
    EXPECT_TRUE(names.count(want)) << want << " among " << absl::StrJoin(names, ", ");
  }
}

TEST_F(HttpTest, MetricsCountTheAppendsAndShowEveryProjection) {
  StartWithHttp();
  auto w = MustConnect("writer");
  ASSERT_NE(w, nullptr);
  AppendMessages(*w, 3);
  // One that the store refuses: counted by the kind of its error.
  auto conflict = w->Append(
      One("c-1", events_.Touchpoint(9, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE),
          ExpectedVersion::NoStream()));
  EXPECT_FALSE(conflict.ok());
  HttpReply m = Http(http_, "GET", "/metrics", Bearer(tokens_["admin"]));
  ASSERT_EQ(m.status, 200) << m.head << m.body;
  EXPECT_TRUE(absl::StrContains(m.head, "Content-Type: text/plain; version=0.0.4")) << m.head;
  EXPECT_EQ(Sample(m.body, "ihs_rpc_calls_total{method=\"append\",outcome=\"ok\"}"), 3);
  EXPECT_EQ(Sample(m.body, "ihs_rpc_calls_total{method=\"append\",outcome=\"versionConflict\"}"),
            1);
  EXPECT_GE(Sample(m.body, "ihs_rpc_calls_total{method=\"login\",outcome=\"ok\"}"), 1);
  EXPECT_EQ(Sample(m.body, "ihs_events"), 3);
  EXPECT_EQ(Sample(m.body, "ihs_streams"), 3);
  EXPECT_EQ(Sample(m.body, "ihs_appends_total"), 3);
  EXPECT_EQ(Sample(m.body, "ihs_appended_events_total"), 3);
  // Every group is counted in +Inf, and its appends in the sum.
  const double groups = Sample(m.body, "ihs_group_commit_appends_count");
  EXPECT_GE(groups, 1);
  EXPECT_LE(groups, 3);
  EXPECT_EQ(Sample(m.body, "ihs_group_commit_appends_bucket{le=\"+Inf\"}"), groups);
  EXPECT_EQ(Sample(m.body, "ihs_group_commit_appends_sum"), 3);
  EXPECT_EQ(Sample(m.body, "ihs_group_commit_write_seconds_count"), groups);
  EXPECT_GT(Sample(m.body, "ihs_group_commit_write_seconds_sum"), 0);
  EXPECT_GT(Sample(m.body, "ihs_disk_bytes"), 0);
  EXPECT_GE(Sample(m.body, "ihs_rpc_connections"), 1);  // the writer's
  for (const char* p : {"timeline", "identity", "segments", "community"}) {
    const std::string label = absl::StrCat("{projection=\"", p, "\"}");
    EXPECT_GE(Sample(m.body, "ihs_projection_checkpoint" + label), 0) << p;
    EXPECT_GE(Sample(m.body, "ihs_projection_lag_events" + label), 0) << p;
  }
  // HEAD: the same headers, no body.
  HttpReply head = Http(http_, "HEAD", "/metrics", Bearer(tokens_["admin"]));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

// Runs a subscription on a connection of its own (`connect`, called on the subscriber's thread,
// which must use the client), on its own thread: `subscribe` gets the connection and `took(n)`, to
// call with each push's size; once 8 have come, `took` returns false only after Release(), holding
// the subscription open in between.
class HeldSubscriber {
 public:
  using Took = std::function<bool(size_t)>;
  using Connector = std::function<absl::StatusOr<std::unique_ptr<Client>>()>;
  HeldSubscriber(Connector connect, std::function<void(Client&, const Took&)> subscribe)
      : thread_([this, connect, subscribe] {
          auto c = connect();
          if (!c.ok()) return all_.Notify();
          subscribe(**c, [this](size_t n) {
            got_ += n;
            if (got_ < 8) return true;
            all_.Notify();
            release_.WaitForNotification();
            return false;
          });
        }) {}
  ~HeldSubscriber() {
    if (!release_.HasBeenNotified()) release_.Notify();
    thread_.join();
  }
  bool WaitForAll() { return all_.WaitForNotificationWithTimeout(absl::Seconds(30)); }

 private:
  size_t got_ = 0;
  absl::Notification all_, release_;
  std::thread thread_;
};

// A subscriber that has been pushed every event has no backlog: the gauge is the head minus
// the position the subscription pushes next (8 here if it were not kept), not a count of pushes.
// (A stalled subscriber's backlog is in RenderMetricsTest: the client library takes pushes on
// its own thread and buffers them, so it does not stall the server.)
TEST_F(HttpTest, ASubscriberThatHasEveryEventHasNoBacklog) {
  StartWithHttp();
  auto w = MustConnect("writer");
  ASSERT_NE(w, nullptr);
  AppendMessages(*w, 8);
  HeldSubscriber sub([this] { return Connect("reader"); },
                     [](Client& c, const HeldSubscriber::Took& took) {
                       client::SubscribeOptions o;
                       o.open_content = false;
                       (void)c.Subscribe(o, [&](const std::vector<RemoteEvent>& evs, uint64_t) {
                         return took(evs.size());
                       });
                     });
  ASSERT_TRUE(sub.WaitForAll());
  HttpReply m = Http(http_, "GET", "/metrics", Bearer(tokens_["admin"]));
  EXPECT_EQ(Sample(m.body, "ihs_rpc_subscriptions"), 1) << m.body;
  EXPECT_EQ(Sample(m.body, "ihs_rpc_subscription_backlog_events_max"), 0) << m.body;
  EXPECT_EQ(Sample(m.body, "ihs_rpc_subscription_backlog_events_sum"), 0);
  EXPECT_EQ(Sample(m.body, "ihs_rpc_transition_subscriptions"), 0);
}

// The same for a subscription of segment transitions: counted apart, and with no backlog once
// it has pushed the feed's every transition (8 entries into "wrote", one per party).
TEST_F(HttpTest, ATransitionSubscriberThatHasEveryTransitionHasNoBacklog) {
  StartWithHttp();
  auto w = MustConnect("writer");
  ASSERT_NE(w, nullptr);
  IHS_ASSERT_OK(w->DefineSegment(schema::SegmentOp::DEFINE, "wrote", "any(type = message)", ""));
  AppendMessages(*w, 8);
  HeldSubscriber sub([this] { return Connect("reader"); },
                     [](Client& c, const HeldSubscriber::Took& took) {
                       (void)c.SubscribeSegments({"wrote"}, 0, false,
                                                 [&](capnp::List<schema::Transition>::Reader ts,
                                                     uint64_t) { return took(ts.size()); });
                     });
  ASSERT_TRUE(sub.WaitForAll());
  HttpReply m = Http(http_, "GET", "/metrics", Bearer(tokens_["admin"]));
  EXPECT_EQ(Sample(m.body, "ihs_rpc_subscriptions"), 1) << m.body;
  EXPECT_EQ(Sample(m.body, "ihs_rpc_transition_subscriptions"), 1) << m.body;
  EXPECT_EQ(Sample(m.body, "ihs_rpc_subscription_backlog_transitions_max"), 0) << m.body;
  EXPECT_EQ(Sample(m.body, "ihs_rpc_subscription_backlog_transitions_sum"), 0);
  EXPECT_EQ(Sample(m.body, "ihs_rpc_subscription_backlog_events_max"), 0);
}

TEST_F(HttpTest, MetricsAskForAnAdminOrAMetricsToken) {
  const std::string scrape = server::NewToken();
  std::ofstream(dir_.Sub("metrics-tokens"))
      << server::TokenLine(rpc::Role::READER, "prometheus", scrape);
  StartWithHttp({"--metrics-tokens", dir_.Sub("metrics-tokens")});
  HttpReply none = Http(http_, "GET", "/metrics");
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(absl::StrContains(none.head, "WWW-Authenticate: Bearer")) << none.head;
  // A refused RPC login is counted too.
  EXPECT_FALSE(Client::Connect({tcp(), "not-a-token"}).ok());
  EXPECT_FALSE(absl::StrContains(none.body, "ihs_events"));
  EXPECT_EQ(Http(http_, "GET", "/metrics", Bearer(tokens_["reader"])).status, 401);
  EXPECT_EQ(Http(http_, "GET", "/metrics", Bearer("not-a-token")).status, 401);
  EXPECT_EQ(Http(http_, "GET", "/metrics", "Authorization: Basic YTpi\r\n").status, 401);
  EXPECT_EQ(Http(http_, "GET", "/metrics", Bearer(tokens_["admin"])).status, 200);
  HttpReply scraped = Http(http_, "GET", "/metrics", Bearer(scrape));
  EXPECT_EQ(scraped.status, 200);
  EXPECT_EQ(
      Sample(scraped.body, "ihs_rpc_calls_total{method=\"login\",outcome=\"unauthenticated\"}"), 1);
  // A metrics token is no RPC token.
  EXPECT_FALSE(Client::Connect({tcp(), scrape}).ok());
  EXPECT_EQ(Http(http_, "GET", "/healthz").status, 200);
}

TEST_F(HttpTest, OtherPathsAndMethodsAreRefusedByName) {
  StartWithHttp();
  HttpReply nf = Http(http_, "GET", "/admin");
  EXPECT_EQ(nf.status, 404);
  EXPECT_TRUE(absl::StrContains(nf.body, "/healthz")) << nf.body;
  HttpReply post = Http(http_, "POST", "/healthz", "Content-Length: 0\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_TRUE(absl::StrContains(post.head, "Allow: GET, HEAD")) << post.head;
  // A query string does not change the path.
  EXPECT_EQ(Http(http_, "GET", "/healthz?verbose=1").status, 200);
  // A request that is not HTTP gets an error, and ihsd goes on serving.
  HttpReply bad = Http(http_, "GARBAGE\x01", "/healthz");
  EXPECT_NE(bad.status, 200);
  EXPECT_EQ(Http(http_, "GET", "/healthz").status, 200);
}

// Idle sockets cannot take ihsd's descriptors: past --max-http-connections a connection is
// closed as it is accepted, and one that ends makes room.
TEST_F(HttpTest, ConnectionsPastTheLimitAreClosedAtOnceAndCounted) {
  StartWithHttp({"--max-http-connections", "2"});
  const int a = ConnectTo(http_), b = ConnectTo(http_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  HttpReply over = Http(http_, "GET", "/healthz");
  EXPECT_EQ(over.status, 0) << over.head;  // closed without an answer
  close(a);
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    status = Http(http_, "GET", "/healthz").status;
  }
  EXPECT_EQ(status, 200);
  // The connection of the last /healthz may not have been seen closed yet: ask until answered.
  HttpReply m;
  for (int i = 0; i < 100 && m.status != 200; ++i) {
    m = Http(http_, "GET", "/metrics", Bearer(tokens_["admin"]));
    if (m.status != 200) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_GE(Sample(m.body, "ihs_http_connections_refused_total"), 1) << m.body;
  close(b);
}

TEST(HttpOpenTest, WithoutTokensHttpListensOnLoopbackOnly) {
  testing::TempDir dir;
  IhsdOptions o;
  o.binary = IHS_IHSD;
  o.data = dir.Sub("data");
  o.extra_args = {"--http", "0.0.0.0:0"};
  auto p = IhsdProcess::Start(o);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::StrContains(p.status().message(), "exit 2")) << p.status();
  EXPECT_TRUE(absl::StrContains(p.status().message(), "--http 0.0.0.0:0")) << p.status();
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("data") + "/CURRENT"));  // the store untouched
}

// --- the text and the rules by themselves ---------------------------------------------------

TEST(RenderMetricsTest, HistogramsAreCumulativeAndLabelsEscaped) {
  store::StoreMetrics st;
  st.groups = 4;
  st.appends = 9;
  st.group_buckets[0] = 2;  // 1 append
  st.group_buckets[2] = 1;  // 3..4
  // and one group above 1024: only in +Inf
  server::ServerMetrics sv;
  sv.backlog_max = 40;
  sv.backlog_sum = 55;
  sv.transition_subscriptions = 2;
  sv.transition_backlog_max = 12;
  sv.transition_backlog_sum = 13;
  sv.calls[{"append", "versionConflict"}] = 2;
  projections::ProjectionStatus p;
  p.name = "odd\"name\\";
  p.state = "catching up";
  p.lag_events = 7;
  const std::string text =
      server::RenderMetrics(st, sv, {p}, "1.2.3", server::HttpMetrics{5, 0, 0});
  EXPECT_EQ(Sample(text, "ihs_group_commit_appends_bucket{le=\"1\"}"), 2);
  EXPECT_EQ(Sample(text, "ihs_group_commit_appends_bucket{le=\"2\"}"), 2);
  EXPECT_EQ(Sample(text, "ihs_group_commit_appends_bucket{le=\"4\"}"), 3);
  EXPECT_EQ(Sample(text, "ihs_group_commit_appends_bucket{le=\"1024\"}"), 3);
  EXPECT_EQ(Sample(text, "ihs_group_commit_appends_bucket{le=\"+Inf\"}"), 4);
  EXPECT_EQ(Sample(text, "ihs_group_commit_appends_sum"), 9);
  EXPECT_EQ(Sample(text, "ihs_projection_lag_events{projection=\"odd\\\"name\\\\\"}"), 7);
  EXPECT_EQ(
      Sample(text, "ihs_projection_state{projection=\"odd\\\"name\\\\\",state=\"catching up\"}"),
      1);
  EXPECT_EQ(Sample(text, "ihs_projection_state{projection=\"odd\\\"name\\\\\",state=\"live\"}"), 0);
  EXPECT_EQ(Sample(text, "ihs_build_info{version=\"1.2.3\"}"), 1);
  EXPECT_EQ(Sample(text, "ihs_http_connections_refused_total"), 5);
  EXPECT_EQ(Sample(text, "ihs_rpc_subscription_backlog_events_max"), 40);
  EXPECT_EQ(Sample(text, "ihs_rpc_subscription_backlog_events_sum"), 55);
  EXPECT_EQ(Sample(text, "ihs_rpc_transition_subscriptions"), 2);
  EXPECT_EQ(Sample(text, "ihs_rpc_subscription_backlog_transitions_max"), 12);
  EXPECT_EQ(Sample(text, "ihs_rpc_subscription_backlog_transitions_sum"), 13);
  EXPECT_EQ(Sample(text, "ihs_rpc_calls_total{method=\"append\",outcome=\"versionConflict\"}"), 2);
  // Each family is declared once, before its samples.
  EXPECT_EQ(text.find("# TYPE ihs_projection_state gauge"),
            text.rfind("# TYPE ihs_projection_state gauge"));
}

TEST(NotReadyTest, FailedCorruptOrLaggingProjectionsAndShutdownAreReasons) {
  server::ServerMetrics sv;
  projections::ProjectionStatus live, behind, failed;
  live.name = "timeline";
  live.state = "catching up";
  live.lag_events = 100;
  EXPECT_TRUE(server::NotReady(sv, {live}, 100).empty());
  behind = live;
  behind.name = "segments";
  behind.lag_events = 101;
  failed.name = "community";
  failed.state = "failed";
  failed.error = "projection community threw: boom";
  sv.draining = true;
  const std::vector<std::string> why = server::NotReady(sv, {live, behind, failed}, 100);
  ASSERT_EQ(why.size(), 3u);
  EXPECT_EQ(why[0], "ihsd is shutting down");
  EXPECT_EQ(why[1], "projection segments is 101 events behind the log (more than 100)");
  EXPECT_EQ(why[2], "projection community is failed: projection community threw: boom");
}

}  // namespace
}  // namespace ihs
