// A real ihsd in a child process, for integration tests and the RPC load benchmark: started on
// the addresses asked for (port 0 picks a free loopback port), ready when it prints "ready", and
// stopped by its PID only.
#ifndef IHS_TESTS_TESTUTIL_IHSD_PROCESS_H_
#define IHS_TESTS_TESTUTIL_IHSD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testutil/child_process.h"

namespace ihs::testing {

struct IhsdOptions {
  std::string binary;  // path of ihsd
  std::string data;    // --data
  std::string tokens;  // --tokens, or empty (open, loopback only)
  std::vector<std::string> listen = {"127.0.0.1:0"};
  std::vector<std::string> extra_args;
  std::string log_path;  // stderr goes here (default DATA.log)
};

class IhsdProcess {
 public:
  // Starts ihsd and waits (up to 60 s) until it is ready.
  static absl::StatusOr<std::unique_ptr<IhsdProcess>> Start(const IhsdOptions& options);
  // Destroyed: SIGTERM, then waits (SIGKILL after 60 s).

  pid_t pid() const { return child_->pid(); }
  // The addresses it listens on, as it printed them ("127.0.0.1:41234", "unix:/tmp/x.sock").
  const std::vector<std::string>& addresses() const { return addresses_; }
  // The addresses of its --http listeners, as it printed them ("http on ADDR").
  const std::vector<std::string>& http_addresses() const { return http_addresses_; }
  // Sends `signo` and waits for the exit; returns the exit code (128 + signal if killed).
  int Stop(int signo) { return child_->Stop(signo); }
  bool Running() { return child_->Running(); }
  uint64_t RssBytes() const;                         // VmRSS from /proc
  std::string Log() const { return child_->Log(); }  // what it wrote to stderr

 private:
  IhsdProcess() = default;
  std::unique_ptr<ChildProcess> child_;
  std::vector<std::string> addresses_;
  std::vector<std::string> http_addresses_;
};

}  // namespace ihs::testing

#endif  // IHS_TESTS_TESTUTIL_IHSD_PROCESS_H_
