#include "tests/testutil/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/time/clock.h"

namespace ihs::testing {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& args, const std::string& log_path, bool pipe_stdout) {
  std::unique_ptr<ChildProcess> p(new ChildProcess());
  p->log_path_ = log_path;
  int out[2] = {-1, -1};
  if (pipe_stdout && pipe(out) != 0) return absl::InternalError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (pipe_stdout) {
      dup2(out[1], 1);
      close(out[0]);
    } else if (log >= 0) {
      dup2(log, 1);
    }
    if (log >= 0) dup2(log, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pipe_stdout) {
    close(out[1]);
    p->stdout_fd_ = out[0];
  }
  p->pid_ = pid;
  return p;
}

ChildProcess::~ChildProcess() {
  if (Running()) Stop(SIGTERM);
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

bool ChildProcess::Running() {
  if (pid_ < 0 || exit_code_ >= 0) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

int ChildProcess::Stop(int signo) {
  if (!Running()) return exit_code_;
  kill(pid_, signo);
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (Running()) {
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      deadline = absl::InfiniteFuture();
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return exit_code_;
}

std::string ChildProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ihs::testing
