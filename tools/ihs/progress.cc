#include "tools/ihs/progress.h"

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace ihs::tools {

Progress::Progress(std::string label, FILE* out)
    : label_(std::move(label)),
      out_(out),
      tty_(::isatty(::fileno(out)) == 1),
      start_(absl::Now()) {}

std::string Progress::Line(uint64_t done, uint64_t total) const {
  double secs = absl::ToDoubleSeconds(absl::Now() - start_);
  double rate = secs > 0 ? done / secs : 0;
  std::string eta = "?";
  if (rate > 0 && total >= done) {
    int64_t left = static_cast<int64_t>((total - done) / rate);
    eta = absl::StrFormat("%d:%02d", left / 60, left % 60);
  }
  double pct = total ? 100.0 * done / total : 100.0;
  return absl::StrFormat("%s %d/%d %5.1f%% %.0f/s ETA %s", label_, done, total, pct, rate, eta);
}

void Progress::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || !tty_ || total == 0) return;  // nothing to do: nothing to show
  done_ = done;
  total_ = total;
  absl::Time now = absl::Now();
  if (now - last_draw_ < absl::Milliseconds(100)) return;
  last_draw_ = now;
  absl::FPrintF(out_, "\r\033[K%s", Line(done, total));
  drawn_ = true;
  std::fflush(out_);
}

void Progress::Finish() {
  if (!enabled_ || !drawn_) return;
  absl::FPrintF(out_, "\r\033[K%s\n", Line(done_, total_));
  std::fflush(out_);
}

}  // namespace ihs::tools
