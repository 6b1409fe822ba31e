// A child process of a test, started from a path and arguments and ended by its PID only: ihsd
// (ihsd_process.h), nats-server (nats_servers.h). Its stderr is appended to a log file; its
// stdout, when asked for, is a pipe the caller reads.
#ifndef IHS_TESTS_TESTUTIL_CHILD_PROCESS_H_
#define IHS_TESTS_TESTUTIL_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ihs::testing {

class ChildProcess {
 public:
  // args[0] is the program's path. stdout goes to a pipe (stdout_fd()) when pipe_stdout, else
  // to the log as well.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& args,
                                                             const std::string& log_path,
                                                             bool pipe_stdout);
  ~ChildProcess();  // SIGTERM if still running, then waits (SIGKILL after 60 s)

  pid_t pid() const { return pid_; }
  int stdout_fd() const { return stdout_fd_; }
  // Sends `signo` and waits for the exit; returns the exit code (128 + signal if killed).
  int Stop(int signo);
  bool Running();
  std::string Log() const;  // what it wrote to its log

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  int stdout_fd_ = -1;
  std::string log_path_;
};

}  // namespace ihs::testing

#endif  // IHS_TESTS_TESTUTIL_CHILD_PROCESS_H_
