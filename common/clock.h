// An injectable wall clock. Components take a Clock* through their options so that tests can
// use a FakeClock; production code uses RealClock(). Implementations are thread-safe.
#ifndef IHS_COMMON_CLOCK_H_
#define IHS_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace ihs {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

// The process-wide real clock; never deleted.
Clock* RealClock();

// A clock that moves only when told to. Safe for concurrent use.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start) : now_(start) {}
  absl::Time Now() override {
    MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ihs

#endif  // IHS_COMMON_CLOCK_H_
