// A NATS JetStream cluster for tests: N nats-server processes (Debian's /usr/sbin/nats-server)
// on loopback ports chosen at start, each with its own store directory, routed to one another,
// started and ended by this object only (by PID). Start returns once every server accepts
// clients and JetStream has a meta leader.
//
// By hand, the same as one of these servers (docs/scale.md, "Trying it"):
//   nats-server -c DIR/n0.conf
#ifndef IHS_TESTS_TESTUTIL_NATS_SERVERS_H_
#define IHS_TESTS_TESTUTIL_NATS_SERVERS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testutil/child_process.h"

namespace ihs::testing {

// Where one server runs and how the others and clients reach it.
struct NatsServerPlace {
  std::string netns;                 // a named network namespace (`ip netns`); empty: this one
  std::string listen = "127.0.0.1";  // what it binds, for clients and routes
  std::string host = "127.0.0.1";    // the address it is reached at
};

class NatsServers {
 public:
  // Writes DIR/nI.conf and starts the servers (dir must exist), all on 127.0.0.1.
  static absl::StatusOr<std::unique_ptr<NatsServers>> Start(const std::string& dir, int count = 3);
  // One server per place.
  static absl::StatusOr<std::unique_ptr<NatsServers>> Start(
      const std::string& dir, const std::vector<NatsServerPlace>& places);
  ~NatsServers();  // SIGTERM to each server still running

  int size() const { return static_cast<int>(servers_.size()); }
  std::string url(int i) const;           // nats://HOST:PORT
  std::vector<std::string> urls() const;  // every server's

  // SIGKILL server i (its store stays). Returns once it is gone.
  void Kill(int i);
  // Starts server i again with its configuration and store, and waits until it takes clients.
  absl::Status Restart(int i);
  std::string Log(int i) const;

 private:
  struct Server {
    std::string name, conf, log;
    NatsServerPlace place;
    int port = 0;
    std::unique_ptr<ChildProcess> process;
  };
  NatsServers() = default;
  static absl::StatusOr<std::unique_ptr<NatsServers>> StartOnce(
      const std::string& dir, const std::vector<NatsServerPlace>& places);
  absl::Status Launch(Server& s);
  std::vector<Server> servers_;
};

}  // namespace ihs::testing

#endif  // IHS_TESTS_TESTUTIL_NATS_SERVERS_H_
