// Part of the programs that run the store in release builds (CMakeLists.txt, ihs_malloc): turns
// off absl::Mutex's deadlock detection.
//
// Why: Debian's Abseil is built without NDEBUG, so its Mutex checks every acquisition against a
// graph of lock orders, under one process-wide lock. In a profile of ihsd under load that graph
// showed as a symbol of its own (bench/RESULTS.md, 2026-12-06 fifth entry), and the process-wide
// lock serialises the append workers and projection workers at every Mutex they take. The
// tests, debug and sanitizer builds keep the detection: they are where a lock-order inversion
// should be found.
#include "absl/synchronization/mutex.h"

namespace ihs {
namespace {

#ifdef NDEBUG
[[maybe_unused]] const bool kDetectionOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();
#endif

}  // namespace
}  // namespace ihs
