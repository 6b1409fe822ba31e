// Progress of a long operation on stderr. On a terminal: one line redrawn in place, with count,
// percentage, rate and ETA, at most 10 times a second. Otherwise nothing: a pipe or a log gets
// only what the command says. Not thread-safe: one caller.
#ifndef IHS_TOOLS_IHS_PROGRESS_H_
#define IHS_TOOLS_IHS_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/time/time.h"

namespace ihs::tools {

class Progress {
 public:
  Progress(std::string label, FILE* out = stderr);
  // Disabled: Update and Finish do nothing (for --json and --quiet). Nothing is shown either
  // while every Update has total 0 (nothing to do).
  void Disable() { enabled_ = false; }
  void Update(uint64_t done, uint64_t total);
  void Finish();

 private:
  std::string Line(uint64_t done, uint64_t total) const;

  std::string label_;
  FILE* out_;
  bool tty_;
  bool enabled_ = true;
  absl::Time start_;
  absl::Time last_draw_ = absl::InfinitePast();
  uint64_t done_ = 0, total_ = 0;
  bool drawn_ = false;
};

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_PROGRESS_H_
