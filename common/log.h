// Where a library says what an operator should know (a store opened without sync, a projection
// rebuilt or retried, a connection dropped): a sink passed in options, as leveldb's
// Options::info_log. One line per call, without its newline. Implementations are safe for
// concurrent use.
#ifndef IHS_COMMON_LOG_H_
#define IHS_COMMON_LOG_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace ihs {

class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Log(absl::string_view line) = 0;
};

// Lines to stderr as "PREFIX: LINE", with `timestamps` as "PREFIX: 2026-12-04T20:30:00.123Z LINE".
std::unique_ptr<LogSink> NewStderrLog(std::string prefix, bool timestamps);

// The default of every options struct: stderr, prefixed "ihs", no timestamps. Never destroyed.
LogSink* DefaultLog();

}  // namespace ihs

#endif  // IHS_COMMON_LOG_H_
