// The fixture of the tests that drive a real ihsd (rpc_test.cc, identity_rpc_test.cc): a child
// process on a free loopback port and a unix socket, a token per role, the client library.
#ifndef IHS_TESTS_INTEGRATION_RPC_FIXTURE_H_
#define IHS_TESTS_INTEGRATION_RPC_FIXTURE_H_

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "server/client.h"
#include "server/tokens.h"
#include "store/event_store.h"
#include "tests/testutil/ihsd_process.h"
#include "tests/testutil/testutil.h"
#include "workload/generator.h"
#include "workload/load.h"

namespace ihs {

using client::Client;
using client::RemoteEvent;
using store::ExpectedVersion;
using testing::EventFactory;
using testing::IhsdOptions;
using testing::IhsdProcess;

class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* role : {"writer", "reader", "auditor", "admin"}) {
      tokens_[role] = server::NewToken();
      std::ofstream(dir_.Sub("tokens"), std::ios::app) << server::TokenLine(
          *server::ParseRole(role), absl::StrCat("test-", role), tokens_[role]);
    }
  }

  void StartServer(std::vector<std::string> extra = {}) {
    IhsdOptions o;
    o.binary = IHS_IHSD;
    o.data = dir_.Sub("data");
    o.tokens = dir_.Sub("tokens");
    o.listen = {"127.0.0.1:0", "unix:" + dir_.Sub("ihsd.sock")};
    o.extra_args = std::move(extra);
    auto p = IhsdProcess::Start(o);
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::move(*p);
    ASSERT_EQ(server_->addresses().size(), 2u);
  }

  std::string tcp() const { return server_->addresses()[0]; }
  std::string unix_socket() const { return server_->addresses()[1]; }

  absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& role,
                                                  const std::string& address = "") {
    return Client::Connect({address.empty() ? tcp() : address, tokens_[role]});
  }

  std::unique_ptr<Client> MustConnect(const std::string& role) {
    auto c = Connect(role);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  testing::TempDir dir_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<IhsdProcess> server_;
  EventFactory events_;
};

inline store::StreamAppend One(const std::string& stream, schema::Event::Reader e,
                               ExpectedVersion expected = ExpectedVersion::Any()) {
  return {stream, expected, {e}};
}

// Appends a generated history through `writer`, in AppendMulti calls of 500 events; its truth.
inline nlohmann::json AppendHistory(Client& writer, const workload::Config& config) {
  workload::Generator g(config);
  for (;;) {
    auto batch = workload::NextBatch(g, 500);
    if (batch->events.empty()) break;
    auto r = writer.AppendMulti(workload::GroupByStream(batch->Readers()));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
  }
  std::stringstream truth;
  g.WriteTruth(truth);
  return nlohmann::json::parse(truth.str());
}

// Waits until ihsd's identity resolver has appended what the history made inferable (nothing
// pending, the projection at the head), so that the log stops growing under a test that compares
// heads and checkpoints. `reader`: any role with the reads.
inline void SettleIdentity(Client& reader) {
  for (absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;
       absl::SleepFor(absl::Milliseconds(50))) {
    absl::StatusOr<uint64_t> head = reader.Head();
    capnp::MallocMessageBuilder m;
    if (!head.ok() || !reader.IdentityStats(*head, m).ok()) continue;
    auto st = m.getRoot<schema::IdentityStats>();
    if (st.getPending() == 0 && st.getCheckpoint() == *head) return;
  }
  ADD_FAILURE() << "the identity resolver did not settle within 30 s";
}

}  // namespace ihs

#endif  // IHS_TESTS_INTEGRATION_RPC_FIXTURE_H_
