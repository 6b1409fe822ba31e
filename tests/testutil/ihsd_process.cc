#include "tests/testutil/ihsd_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace ihs::testing {

absl::StatusOr<std::unique_ptr<IhsdProcess>> IhsdProcess::Start(const IhsdOptions& o) {
  std::unique_ptr<IhsdProcess> p(new IhsdProcess());
  p->log_path_ = o.log_path.empty() ? o.data + ".log" : o.log_path;
  std::vector<std::string> args = {o.binary, "--data", o.data};
  if (!o.tokens.empty()) args.insert(args.end(), {"--tokens", o.tokens});
  for (const auto& l : o.listen) args.insert(args.end(), {"--listen", l});
  args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
  int out[2];
  if (pipe(out) != 0) return absl::InternalError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int log = open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(out[1], 1);
    if (log >= 0) dup2(log, 2);
    close(out[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  p->pid_ = pid;
  // Read its stdout until "ready" (or it exits, or a minute passes).
  std::string text;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!absl::StrContains(text, "ready")) {
    struct pollfd pfd = {out[0], POLLIN, 0};
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0 || poll(&pfd, 1, left) <= 0) break;
    char buf[4096];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, n);
  }
  if (!absl::StrContains(text, "ready")) {
    close(out[0]);
    int code = p->Stop(SIGKILL);
    return absl::UnavailableError(absl::StrCat("ihsd did not become ready (exit ", code,
                                               "); stdout: ", text, "; stderr: ", p->Log()));
  }
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "listening on ")) {
      p->addresses_.emplace_back(line.substr(0, line.find(' ')));  // "ADDR" or "ADDR tls"
    } else if (absl::ConsumePrefix(&line, "http on ")) {
      p->http_addresses_.emplace_back(line.substr(0, line.find(' ')));
    }
  }
  // stdout stays open until ihsd exits; it writes nothing more, so the pipe never fills.
  p->stdout_fd_ = out[0];
  return p;
}

IhsdProcess::~IhsdProcess() {
  if (Running()) Stop(SIGTERM);
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

bool IhsdProcess::Running() {
  if (pid_ < 0 || exit_code_ >= 0) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

int IhsdProcess::Stop(int signo) {
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

uint64_t IhsdProcess::RssBytes() const {
  std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    if (absl::ConsumePrefix(&v, "VmRSS:")) {
      uint64_t kb = 0;
      std::vector<std::string> parts = absl::StrSplit(v, ' ', absl::SkipEmpty());
      if (!parts.empty() && absl::SimpleAtoi(parts[0], &kb)) return kb * 1024;
    }
  }
  return 0;
}

std::string IhsdProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ihs::testing
