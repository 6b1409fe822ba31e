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
#include "common/status_macros.h"

namespace ihs::testing {

absl::StatusOr<std::unique_ptr<IhsdProcess>> IhsdProcess::Start(const IhsdOptions& o) {
  std::unique_ptr<IhsdProcess> p(new IhsdProcess());
  std::vector<std::string> args = {o.binary, "--data", o.data};
  if (!o.tokens.empty()) args.insert(args.end(), {"--tokens", o.tokens});
  for (const auto& l : o.listen) args.insert(args.end(), {"--listen", l});
  args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
  IHS_ASSIGN_OR_RETURN(p->child_,
                       ChildProcess::Start(args, o.log_path.empty() ? o.data + ".log" : o.log_path,
                                           /*pipe_stdout=*/true));
  const int out = p->child_->stdout_fd();
  // Read its stdout until "ready" (or it exits, or a minute passes).
  std::string text;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!absl::StrContains(text, "ready")) {
    struct pollfd pfd = {out, POLLIN, 0};
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0 || poll(&pfd, 1, left) <= 0) break;
    char buf[4096];
    ssize_t n = read(out, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, n);
  }
  if (!absl::StrContains(text, "ready")) {
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
  return p;
}

uint64_t IhsdProcess::RssBytes() const {
  std::ifstream in(absl::StrCat("/proc/", pid(), "/status"));
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

}  // namespace ihs::testing
