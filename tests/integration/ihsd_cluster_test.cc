// ihsd --cluster: two ihsd nodes on three real nats-server processes (all started and ended by
// the test, by PID), used as services use ihsd: through the RPC client.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/client.h"
#include "tests/testutil/ihsd_process.h"
#include "tests/testutil/nats_servers.h"
#include "tests/testutil/testutil.h"

namespace ihs {
namespace {

using client::Client;
using store::ExpectedVersion;
using testing::EventFactory;
using testing::IhsdOptions;
using testing::IhsdProcess;
using testing::NatsServers;
using testing::TempDir;

class IhsdClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto servers = NatsServers::Start(dir_.path(), 3);
    ASSERT_TRUE(servers.ok()) << servers.status();
    servers_ = std::move(*servers);
  }

  std::vector<std::string> ClusterArgs(const std::string& node, uint32_t partitions) {
    std::vector<std::string> args = {
        "--cluster", absl::StrJoin(servers_->urls(), ","), "--node", node, "--lease", "1.5"};
    if (partitions > 0) {
      args.push_back("--partitions");
      args.push_back(absl::StrCat(partitions));
    }
    return args;
  }

  std::unique_ptr<IhsdProcess> StartNode(const std::string& node, uint32_t partitions) {
    IhsdOptions o;
    o.binary = IHS_IHSD;
    o.data = dir_.Sub(node);
    o.extra_args = ClusterArgs(node, partitions);
    auto p = IhsdProcess::Start(o);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  // `ihsd ARGS` that exits by itself: its exit code and what it wrote.
  std::pair<int, std::string> RunIhsd(const std::vector<std::string>& args) {
    return testing::RunCommand(absl::StrCat(IHS_IHSD, " --listen 127.0.0.1:0 --data ",
                                            dir_.Sub("refused"), " ", absl::StrJoin(args, " ")));
  }

  // One touchpoint without personal content (a cluster takes none yet, docs/scale.md).
  store::StreamAppend Append(const std::string& stream, uint64_t id, ExpectedVersion expected) {
    return store::StreamAppend{
        stream,
        expected,
        {events_.Touchpoint(id, schema::Channel::EMAIL, schema::TouchpointType::COMPLAINT, "",
                            1700000000000000 + static_cast<int64_t>(id))}};
  }

  static std::unique_ptr<Client> MustConnect(const IhsdProcess& node) {
    auto c = Client::Connect({node.addresses()[0], ""});
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<NatsServers> servers_;
  EventFactory events_;
};

TEST_F(IhsdClusterTest, AppendsAndReadsThroughEitherNodeAndAKilledNodesPartitionsMove) {
  auto a = StartNode("node-a", 4);
  ASSERT_NE(a, nullptr);
  auto b = StartNode("node-b", 0);
  ASSERT_NE(b, nullptr);
  auto ca = MustConnect(*a);
  auto cb = MustConnect(*b);
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(cb, nullptr);

  // Appends through either node, to streams of every partition, answered with their versions;
  // the first through each node may wait for the partitions to be shared out.
  std::map<std::string, uint64_t> count;
  uint64_t id = 1;
  for (int i = 0; i < 24; ++i, ++id) {
    const std::string stream = absl::StrCat("customer-", i % 8);
    const uint64_t n = count[stream];
    Client& c = i % 2 == 0 ? *ca : *cb;
    auto r = c.Append(
        Append(stream, id, n == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(n - 1)));
    ASSERT_TRUE(r.ok()) << stream << ": " << r.status();
    EXPECT_EQ(r->versions, std::vector<uint64_t>{n});
    ++count[stream];
  }
  for (const auto& [stream, n] : count) {
    for (Client* c : {ca.get(), cb.get()}) {
      auto events = c->ReadStream(stream, 0, 100, store::ReadDirection::kForward);
      ASSERT_TRUE(events.ok()) << events.status();
      ASSERT_EQ(events->size(), n) << stream;
      for (size_t v = 0; v < n; ++v) EXPECT_EQ((*events)[v].event().getStreamVersion(), v);
      auto info = c->GetStreamInfo(stream);
      ASSERT_TRUE(info.ok()) << info.status();
      EXPECT_EQ(info->event_count, n);
    }
  }
  // A stale version is refused with the current one, through the node that does not hold it
  // as through the one that does.
  for (Client* c : {ca.get(), cb.get()}) {
    auto stale = c->Append(Append("customer-3", 9000 + id++, ExpectedVersion::Exact(0)));
    EXPECT_EQ(store::ConflictCurrentVersion(stale.status()),
              static_cast<int64_t>(count["customer-3"] - 1))
        << stale.status();
  }
  // What needs one node's single log is refused, and says so; an append across streams too.
  auto all = ca->ReadAll(0, 10);
  EXPECT_EQ(all.status().code(), absl::StatusCode::kUnimplemented) << all.status();
  absl::Status sub =
      cb->Subscribe({}, [](const std::vector<client::RemoteEvent>&, uint64_t) { return true; });
  EXPECT_EQ(sub.code(), absl::StatusCode::kUnimplemented) << sub;
  EXPECT_TRUE(absl::StrContains(sub.message(), "cluster")) << sub;
  auto multi = ca->AppendMulti({Append("customer-0", 9100, ExpectedVersion::Any()),
                                Append("customer-1", 9101, ExpectedVersion::Any())});
  EXPECT_EQ(multi.status().code(), absl::StatusCode::kFailedPrecondition) << multi.status();

  // A steady load through node-a while node-b is SIGKILLed: appends wait while its partitions
  // move (one lease), and every acknowledged one is stored exactly once.
  std::atomic<bool> stop{false};
  std::map<std::string, uint64_t> acked = count;
  std::atomic<int> acknowledged_after_kill{0};
  std::atomic<bool> killed{false};
  std::thread writer([&] {
    auto w = MustConnect(*a);  // a client belongs to the thread that made it
    ASSERT_NE(w, nullptr);
    uint64_t next_id = 20000;
    for (int i = 0; !stop && i < 2000; ++i) {
      const std::string stream = absl::StrCat("customer-", i % 8);
      const uint64_t n = acked[stream];
      const store::StreamAppend append = Append(stream, next_id++, ExpectedVersion::Exact(n - 1));
      // An append whose answer was lost is sent again as it was: stored once either way.
      absl::StatusOr<store::AppendResult> r;
      for (absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;) {
        r = w->Append(append);
        if (r.ok() || absl::IsAborted(r.status())) break;
      }
      ASSERT_TRUE(r.ok()) << stream << ": " << r.status() << "\nnode-a:\n" << a->Log();
      EXPECT_EQ(r->versions, std::vector<uint64_t>{n}) << stream;
      acked[stream] = n + 1;
      if (killed) ++acknowledged_after_kill;
    }
  });
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(b->Stop(SIGKILL), 128 + SIGKILL);
  killed = true;
  for (absl::Time end = absl::Now() + absl::Seconds(20);
       absl::Now() < end && acknowledged_after_kill < 40;) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  stop = true;
  writer.join();
  EXPECT_GE(acknowledged_after_kill, 40) << "appends did not go on after the kill";
  for (const auto& [stream, n] : acked) {
    auto events = ca->ReadStream(stream, 0, 10000, store::ReadDirection::kForward);
    ASSERT_TRUE(events.ok()) << events.status();
    ASSERT_EQ(events->size(), n) << stream << ": every acknowledged append, once";
    for (size_t v = 0; v < n; ++v) EXPECT_EQ((*events)[v].event().getStreamVersion(), v);
  }

  // node-b comes back under its name, catches up from the log, and answers again.
  b = StartNode("node-b", 0);
  ASSERT_NE(b, nullptr);
  cb = MustConnect(*b);
  ASSERT_NE(cb, nullptr);
  for (const auto& [stream, n] : acked) {
    auto events = cb->ReadStream(stream, 0, 10000, store::ReadDirection::kForward);
    ASSERT_TRUE(events.ok()) << events.status();
    EXPECT_EQ(events->size(), n) << stream;
  }
}

TEST_F(IhsdClusterTest, BadClusterConfigurationsAreRefusedWithTheirExitCodes) {
  auto a = StartNode("node-a", 4);
  ASSERT_NE(a, nullptr);
  // Another partition count than the cluster's: bad configuration (2), both counts named.
  auto [count_code, count_out] = RunIhsd(ClusterArgs("node-b", 8));
  EXPECT_EQ(count_code, 2) << count_out;
  EXPECT_TRUE(absl::StrContains(count_out, "4 partitions")) << count_out;
  // A name a running node has: 2.
  auto [name_code, name_out] = RunIhsd(ClusterArgs("node-a", 0));
  EXPECT_EQ(name_code, 2) << name_out;
  EXPECT_TRUE(absl::StrContains(name_out, "node-a")) << name_out;
  // --cluster without --node, or --node without --cluster: usage (1).
  EXPECT_EQ(RunIhsd({"--cluster", servers_->url(0)}).first, 1);
  EXPECT_EQ(RunIhsd({"--node", "x"}).first, 1);
  // Nothing answers there: unavailable (5), the address named.
  servers_->Kill(2);
  auto [down_code, down_out] =
      RunIhsd({"--cluster", servers_->url(2), "--node", "node-c", "--lease", "1.5"});
  EXPECT_EQ(down_code, 5) << down_out;
  EXPECT_TRUE(absl::StrContains(down_out, servers_->url(2))) << down_out;
}

}  // namespace
}  // namespace ihs
