#include "common/log.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace ihs {
namespace {

class StderrLog final : public LogSink {
 public:
  StderrLog(std::string prefix, bool timestamps)
      : prefix_(std::move(prefix)), timestamps_(timestamps) {}

  void Log(absl::string_view line) override {
    std::string text = absl::StrCat(prefix_, ": ");
    if (timestamps_) {
      absl::StrAppend(
          &text, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ");
    }
    absl::StrAppend(&text, line, "\n");
    MutexLock l(&mu_);  // whole lines, never interleaved
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  }

 private:
  const std::string prefix_;
  const bool timestamps_;
  absl::Mutex mu_;
};

}  // namespace

std::unique_ptr<LogSink> NewStderrLog(std::string prefix, bool timestamps) {
  return std::make_unique<StderrLog>(std::move(prefix), timestamps);
}

LogSink* DefaultLog() {
  static LogSink* const log = new StderrLog("ihs", false);
  return log;
}

}  // namespace ihs
