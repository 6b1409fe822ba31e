// A real ihsd against a raw Cap'n Proto client (not ihs_client) that sends what no honest client
// sends: capabilities where the schema has none (inside an event, where a Text belongs, in unknown
// fields of the request), text without its NUL, floods of never-answering subscribers, sockets
// that never log in. After each, ihsd is up, serves an honest client, and stored nothing.
#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "schema/rpc.capnp.h"
#include "server/client.h"
#include "server/tokens.h"
#include "tests/integration/hostile.capnp.h"
#include "tests/testutil/ihsd_process.h"
#include "tests/testutil/testutil.h"

namespace ihs {
namespace {

using testing::IhsdOptions;
using testing::IhsdProcess;

class ProbeImpl final : public hostile::Probe::Server {};

// A subscriber that takes no push: its events() never returns.
class StuckSubscriber final : public rpc::Subscriber::Server {
 protected:
  kj::Promise<void> events(EventsContext) override { return kj::NEVER_DONE; }
};

// The same for segment transitions.
class StuckSegmentSubscriber final : public rpc::SegmentSubscriber::Server {
 protected:
  kj::Promise<void> transitions(TransitionsContext) override { return kj::NEVER_DONE; }
};

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* role : {"writer", "reader", "admin"}) {
      tokens_[role] = server::NewToken();
      std::ofstream(dir_.Sub("tokens"), std::ios::app) << server::TokenLine(
          *server::ParseRole(role), absl::StrCat("test-", role), tokens_[role]);
    }
    IhsdOptions o;
    o.binary = IHS_IHSD;
    o.data = dir_.Sub("data");
    o.tokens = dir_.Sub("tokens");
    o.extra_args = {"--max-connections",
                    "20",
                    "--login-timeout",
                    "1",
                    "--max-subscriptions-per-connection",
                    "3",
                    "--max-subscriptions",
                    "5",
                    "--subscriber-timeout",
                    "1"};
    auto p = IhsdProcess::Start(o);
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::move(*p);
    address_ = server_->addresses()[0];
  }

  // A raw connection: the bootstrap Gateway, nothing of ihs_client.
  struct Raw {
    kj::Own<kj::AsyncIoStream> stream;
    kj::Own<capnp::TwoPartyClient> client;
    rpc::Gateway::Client gateway = nullptr;
  };
  Raw Open() {
    Raw r;
    auto addr = io_.provider->getNetwork().parseAddress(address_).wait(io_.waitScope);
    r.stream = addr->connect().wait(io_.waitScope);
    r.client = kj::heap<capnp::TwoPartyClient>(*r.stream);
    r.gateway = r.client->bootstrap().castAs<rpc::Gateway>();
    return r;
  }
  template <typename Iface>
  typename Iface::Client Login(Raw& r, const std::string& role) {
    auto req = r.gateway.loginRequest();
    req.setToken(tokens_[role]);
    auto resp = req.send().wait(io_.waitScope);
    EXPECT_TRUE(resp.getResult().isOk()) << role;
    auto s = resp.getResult().getOk();
    switch (s.which()) {
      case rpc::Session::WRITER_CAP:
        return s.getWriterCap().template castAs<Iface>();
      case rpc::Session::READER_CAP:
        return s.getReaderCap().template castAs<Iface>();
      case rpc::Session::AUDITOR_CAP:
        return s.getAuditorCap().template castAs<Iface>();
      default:
        return s.getAdminCap().template castAs<Iface>();
    }
  }

  // The honest side, through ihs_client on a thread of its own (its event loop cannot share this
  // thread's): ihsd is up and serves a client; `stream` holds nothing.
  void ExpectServingAndNothingStored(const std::string& stream) {
    ASSERT_TRUE(server_->Running()) << server_->Log();
    std::thread([&] {
      auto w = client::Client::Connect({address_, tokens_["writer"]});
      ASSERT_TRUE(w.ok()) << w.status();
      auto info = (*w)->GetStreamInfo(stream);
      EXPECT_EQ(info.status().code(), absl::StatusCode::kNotFound) << stream;
      EXPECT_EQ(*(*w)->Head(), honest_appends_);
      testing::EventFactory f;
      auto r = (*w)->Append({"honest",
                             store::ExpectedVersion::Any(),
                             {f.Touchpoint(1000 + honest_appends_, schema::Channel::EMAIL,
                                           schema::TouchpointType::MESSAGE, "fine")}});
      ASSERT_TRUE(r.ok()) << r.status();
      ++honest_appends_;
    }).join();
  }

  // ihsd's status as its admin sees it, polled (while this thread's loop runs) until `done`
  // holds or 20 s have passed.
  client::ServerStatus StatusWhen(const std::function<bool(const client::ServerStatus&)>& done) {
    client::ServerStatus last;
    std::atomic<bool> finished{false};
    std::thread poller([&] {
      auto admin = client::Client::Connect({address_, tokens_["admin"]});
      ASSERT_TRUE(admin.ok()) << admin.status();
      const absl::Time deadline = absl::Now() + absl::Seconds(20);
      do {
        auto st = (*admin)->Status();
        ASSERT_TRUE(st.ok()) << st.status();
        last = *st;
        if (done(last)) break;
        absl::SleepFor(absl::Milliseconds(100));
      } while (absl::Now() < deadline);
      finished = true;
    });
    while (!finished) {
      io_.waitScope.poll();
      absl::SleepFor(absl::Milliseconds(5));
    }
    poller.join();
    return last;
  }

  // A valid touchpoint in any struct laid out as Event (hostile.capnp's, or Event itself).
  template <typename EventBuilder>
  static void FillEvent(EventBuilder e, uint64_t n) {
    auto id = e.initId(16);
    id[0] = 0x40;
    id[15] = static_cast<kj::byte>(n);
    e.setOccurredAt(1790000000000000);
    auto tp = e.initTouchpoint();
    tp.setChannel(schema::Channel::EMAIL);
    tp.setDirection(schema::Direction::INBOUND);
    tp.setType(schema::TouchpointType::MESSAGE);
  }

  // A StreamAppend of one event to the stream "victim": the event, to fill.
  template <typename StreamAppendBuilder>
  static auto VictimEvent(StreamAppendBuilder a) {
    a.setStream("victim");
    a.initExpected().setKind(rpc::ExpectedKind::ANY);
    return a.initEvents(1)[0];
  }

  // Sends `params` as method `method` of interface `Iface` on `cap` and returns the error kind
  // of its result (an exception fails the test).
  template <typename Iface, typename Results, typename Params, typename Fill>
  rpc::ErrorKind Send(typename Iface::Client cap, uint16_t method, Fill fill) {
    auto req = cap.typelessRequest(capnp::typeId<Iface>(), method, nullptr);
    fill(req.template initAs<Params>());
    auto resp = req.send().wait(io_.waitScope);
    auto result = resp.template getAs<Results>().getResult();
    if (!result.isError()) return rpc::ErrorKind::UNSPECIFIED;
    last_message_ = result.getError().getMessage();
    return result.getError().getKind();
  }

  testing::TempDir dir_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<IhsdProcess> server_;
  std::string address_;
  // Held by pointer: its destructor may throw, which a gtest fixture's may not.
  std::unique_ptr<kj::AsyncIoContext> io_holder_ =
      std::make_unique<kj::AsyncIoContext>(kj::setupAsyncIo());
  kj::AsyncIoContext& io_ = *io_holder_;
  uint64_t honest_appends_ = 0;
  std::string last_message_;
};

TEST_F(HostileTest, CapabilitiesWhereTheSchemaHasNoneAreBadInputAndIhsdStaysUp) {
  Raw raw = Open();
  auto writer = Login<rpc::Writer>(raw, "writer");
  // Each several times: a crash came in about half the attempts.
  for (int round = 0; round < testing::Rounds("IHS_HOSTILE_ROUNDS", 6); ++round) {
    SCOPED_TRACE(round);
    // In an unknown pointer field of an event: aborted ihsd every time.
    EXPECT_EQ((Send<rpc::Writer, rpc::Writer::AppendResults, hostile::AppendParams>(
                  writer, 0,
                  [](hostile::AppendParams::Builder p) {
                    auto e = VictimEvent(p.initAppend());
                    FillEvent(e, 1);
                    e.setExtra(kj::heap<ProbeImpl>());
                  })),
              rpc::ErrorKind::BAD_INPUT);
    EXPECT_NE(last_message_.find("capabilit"), std::string::npos) << last_message_;
    // Where a Text belongs (Event.sourceSystem).
    EXPECT_EQ((Send<rpc::Writer, rpc::Writer::AppendResults, hostile::CapInTextAppendParams>(
                  writer, 0,
                  [](hostile::CapInTextAppendParams::Builder p) {
                    auto e = VictimEvent(p.initAppend());
                    FillEvent(e, 4);
                    e.setSourceSystem(kj::heap<ProbeImpl>());
                  })),
              rpc::ErrorKind::BAD_INPUT);
    // In an unknown pointer field of the StreamAppend, the events themselves fine.
    EXPECT_EQ((Send<rpc::Writer, rpc::Writer::AppendResults, hostile::AppendParams>(
                  writer, 0,
                  [](hostile::AppendParams::Builder p) {
                    auto a = p.initAppend();
                    FillEvent(VictimEvent(a), 2);
                    a.setExtra(kj::heap<ProbeImpl>());
                  })),
              rpc::ErrorKind::BAD_INPUT);
    // appendMulti, which copies its parameters the same way.
    EXPECT_EQ((Send<rpc::Writer, rpc::Writer::AppendMultiResults, hostile::AppendMultiParams>(
                  writer, 1,
                  [](hostile::AppendMultiParams::Builder p) {
                    auto e = VictimEvent(p.initAppends(1)[0]);
                    FillEvent(e, 3);
                    e.setExtra(kj::heap<ProbeImpl>());
                  })),
              rpc::ErrorKind::BAD_INPUT);
    // A read, and the login itself.
    EXPECT_EQ((Send<rpc::Reads, rpc::Reads::ReadStreamResults, hostile::ReadStreamParams>(
                  writer, 0,
                  [](hostile::ReadStreamParams::Builder p) {
                    p.setStream("honest");
                    p.setLimit(10);
                    p.setExtra(kj::heap<ProbeImpl>());
                  })),
              rpc::ErrorKind::BAD_INPUT);
    EXPECT_EQ((Send<rpc::Gateway, rpc::Gateway::LoginResults, hostile::LoginParams>(
                  raw.gateway, 0,
                  [](hostile::LoginParams::Builder p) { p.setToken(kj::heap<ProbeImpl>()); })),
              rpc::ErrorKind::BAD_INPUT);
    ExpectServingAndNothingStored("victim");
  }
  EXPECT_EQ(server_->Log().find("Cannot create a canonical message"), std::string::npos);
}

// Cap'n Proto checks text lazily; a Text without its NUL threw inside a method and came back as an
// untyped FAILED, which clients take for a bug of ihsd's.
TEST_F(HostileTest, TextWithoutItsNulIsBadInput) {
  Raw raw = Open();
  auto writer = Login<rpc::Writer>(raw, "writer");
  auto cut = [](capnp::Text::Builder t) { *const_cast<char*>(t.end()) = 'x'; };
  {
    auto req = writer.readStreamRequest();
    req.setStream("honest");
    req.setLimit(10);
    cut(req.getStream());
    auto response = req.send().wait(io_.waitScope);
    auto result = response.getResult();
    ASSERT_TRUE(result.isError());
    EXPECT_EQ(result.getError().getKind(), rpc::ErrorKind::BAD_INPUT);
  }
  for (int where = 0; where < 2; ++where) {
    auto req = writer.appendRequest();
    auto a = req.initAppend();
    a.setStream("victim");
    a.initExpected().setKind(rpc::ExpectedKind::ANY);
    auto e = a.initEvents(1)[0];
    FillEvent(e, 5);
    e.initContent().setText("personal");
    if (where == 0) {
      cut(a.getStream());
    } else {
      cut(e.getContent().getText());  // inside the event, read on a worker
    }
    auto response = req.send().wait(io_.waitScope);
    auto result = response.getResult();
    ASSERT_TRUE(result.isError()) << where;
    EXPECT_EQ(result.getError().getKind(), rpc::ErrorKind::BAD_INPUT) << where;
  }
  ExpectServingAndNothingStored("victim");
}

// Subscriptions are limited per connection and in all, and one whose subscriber takes no push
// ends after --subscriber-timeout, so that a reader token cannot pin ihsd's memory.
TEST_F(HostileTest, SubscriptionFloodsAreLimitedAndStalledSubscribersEnd) {
  // Enough to push that Cap'n Proto's stream window fills: 200 events of 40 KB.
  std::thread([&] {
    auto w = client::Client::Connect({address_, tokens_["writer"]});
    ASSERT_TRUE(w.ok()) << w.status();
    testing::EventFactory f;
    for (int batch = 0; batch < 4; ++batch) {
      store::StreamAppend a{"bulk", store::ExpectedVersion::Any(), {}};
      for (int i = 0; i < 50; ++i) {
        a.events.push_back(f.Touchpoint(5000 + batch * 50 + i, schema::Channel::EMAIL,
                                        schema::TouchpointType::MESSAGE,
                                        std::string(40000, 'a' + i % 26)));
      }
      ASSERT_TRUE((*w)->Append(a).ok());
    }
  }).join();
  honest_appends_ += 200;
  std::vector<Raw> conns;
  std::vector<rpc::Subscription::Client> held;
  auto subscribe = [&](rpc::Reader::Client reader) {
    auto req = reader.subscribeRequest();
    req.setFromPosition(0);
    req.setSubscriber(kj::heap<StuckSubscriber>());
    auto resp = req.send().wait(io_.waitScope);
    if (resp.getResult().isOk()) {
      held.push_back(resp.getResult().getOk());
      return rpc::ErrorKind::UNSPECIFIED;
    }
    return resp.getResult().getError().getKind();
  };
  conns.push_back(Open());
  auto r1 = Login<rpc::Reader>(conns.back(), "reader");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(subscribe(r1), rpc::ErrorKind::UNSPECIFIED) << i;
  EXPECT_EQ(subscribe(r1), rpc::ErrorKind::OVERLOADED);  // 3 per connection
  conns.push_back(Open());
  auto r2 = Login<rpc::Reader>(conns.back(), "reader");
  EXPECT_EQ(subscribe(r2), rpc::ErrorKind::UNSPECIFIED);
  EXPECT_EQ(subscribe(r2), rpc::ErrorKind::UNSPECIFIED);
  EXPECT_EQ(subscribe(r2), rpc::ErrorKind::OVERLOADED);  // 5 in all

  EXPECT_EQ(StatusWhen([](const client::ServerStatus&) { return true; }).subscriptions, 5u);
  // The stalled ones end within the timeout (1 s) and stop counting, though their handles are
  // still held; then there is room again.
  client::ServerStatus status =
      StatusWhen([](const client::ServerStatus& s) { return s.subscriptions == 0; });
  EXPECT_EQ(status.subscriptions, 0u) << server_->Log();
  EXPECT_EQ(status.max_subscriptions, 5u);
  EXPECT_EQ(status.max_subscriptions_per_connection, 3u);
  EXPECT_NE(server_->Log().find("let no push through within"), std::string::npos);
  EXPECT_EQ(subscribe(r2), rpc::ErrorKind::UNSPECIFIED);
  ExpectServingAndNothingStored("victim");
}

// A subscriber to segment transitions that takes no push is ended like one to events, and both
// kinds count against the same limits.
TEST_F(HostileTest, StalledTransitionSubscribersEndAndCountAgainstTheLimits) {
  std::thread([&] {
    auto w = client::Client::Connect({address_, tokens_["writer"]});
    ASSERT_TRUE(w.ok()) << w.status();
    // Enough to push that Cap'n Proto's stream window fills: 3,000 members, each entry with 17
    // clauses of 200 bytes (the rule's conditions, which a transition quotes).
    std::string rule = "any()";
    for (char c = 'a'; c < 'a' + 16; ++c) {
      absl::StrAppend(&rule, " or any(topic = \"", std::string(180, c), "\")");
    }
    ASSERT_TRUE((*w)->DefineSegment(schema::SegmentOp::DEFINE, "anyone", rule, "").ok());
    testing::EventFactory f;
    std::vector<store::StreamAppend> appends;
    for (int i = 0; i < 3000; ++i) {
      appends.push_back(
          {absl::StrCat("member-", i),
           store::ExpectedVersion::Any(),
           {f.Touchpoint(9000 + i, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE)}});
    }
    ASSERT_TRUE((*w)->AppendMulti(appends).ok());
  }).join();
  honest_appends_ += 3001;
  std::vector<Raw> conns;
  std::vector<rpc::SegmentSubscription::Client> held;
  auto subscribe = [&](rpc::Reader::Client reader) {
    auto req = reader.subscribeSegmentsRequest();
    req.initSegments(1).set(0, "anyone");
    req.setSubscriber(kj::heap<StuckSegmentSubscriber>());
    auto resp = req.send().wait(io_.waitScope);
    if (resp.getResult().isOk()) {
      held.push_back(resp.getResult().getOk());
      return rpc::ErrorKind::UNSPECIFIED;
    }
    return resp.getResult().getError().getKind();
  };
  conns.push_back(Open());
  auto r1 = Login<rpc::Reader>(conns.back(), "reader");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(subscribe(r1), rpc::ErrorKind::UNSPECIFIED) << i;
  EXPECT_EQ(subscribe(r1), rpc::ErrorKind::OVERLOADED);  // 3 per connection
  client::ServerStatus status =
      StatusWhen([](const client::ServerStatus& s) { return s.subscriptions == 0; });
  EXPECT_EQ(status.subscriptions, 0u) << server_->Log();
  EXPECT_NE(server_->Log().find("let no push through within"), std::string::npos) << server_->Log();
  EXPECT_EQ(subscribe(r1), rpc::ErrorKind::UNSPECIFIED);
  ExpectServingAndNothingStored("victim");
}

// Twenty silent sockets on an ihsd of --max-connections 20 locked every client out for as long as
// they stayed open.
TEST_F(HostileTest, SocketsThatNeverLogInCannotLockClientsOut) {
  std::vector<kj::Own<kj::AsyncIoStream>> silent;
  auto addr = io_.provider->getNetwork().parseAddress(address_).wait(io_.waitScope);
  for (int i = 0; i < 25; ++i) silent.push_back(addr->connect().wait(io_.waitScope));
  io_.waitScope.poll();
  ExpectServingAndNothingStored("victim");  // logs in at once, beside them
  // And they are closed once the login timeout (1 s) has passed.
  client::ServerStatus status =
      StatusWhen([](const client::ServerStatus& s) { return s.connections_awaiting_login == 0; });
  EXPECT_EQ(status.connections_awaiting_login, 0u);
  EXPECT_EQ(status.connections, 1u);
  EXPECT_EQ(status.max_connections, 20u);
  EXPECT_EQ(status.login_timeout_seconds, 1.0);
  EXPECT_NE(server_->Log().find("no login within"), std::string::npos) << server_->Log();
}

}  // namespace
}  // namespace ihs
