// absl::Mutex as ThreadSanitizer must see it. Debian's Abseil is not built with TSan, so the
// happens-before that its lock and unlock make is invisible to TSan, which would then report
// every access to guarded memory as a race. Under TSan these wrappers tell it themselves: a
// release of the mutex's address before every unlock (or wait), an acquire after every lock (or
// wait). Elsewhere they compile to the absl calls alone. Use them instead of absl::MutexLock and
// the waits: the lock annotations (ABSL_GUARDED_BY ...) work the same.
#ifndef IHS_COMMON_MUTEX_H_
#define IHS_COMMON_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define IHS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IHS_TSAN 1
#endif
#endif

#ifdef IHS_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace ihs {

// A happens-before edge that TSan cannot see by itself (one made inside an uninstrumented
// library: absl::Mutex, kj's cross-thread fulfillers): everything a thread did before
// TsanRelease(x) happens before what another thread does after a later TsanAcquire(x).
inline void TsanRelease(const void* sync) {
#ifdef IHS_TSAN
  __tsan_release(const_cast<void*>(sync));
#else
  (void)sync;
#endif
}

inline void TsanAcquire(const void* sync) {
#ifdef IHS_TSAN
  __tsan_acquire(const_cast<void*>(sync));
#else
  (void)sync;
#endif
}

inline void TsanAcquired(absl::Mutex* mu) { TsanAcquire(mu); }
inline void TsanReleasing(absl::Mutex* mu) { TsanRelease(mu); }

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
    TsanAcquired(mu_);
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() {
    TsanReleasing(mu_);
    mu_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(absl::Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
    TsanAcquired(mu_);
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() {
    TsanReleasing(mu_);
    mu_->ReaderUnlock();
  }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

// The waits, for code that holds `mu`: each releases it while it sleeps and holds it again after.
inline void Wait(absl::CondVar& cv, absl::Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  TsanReleasing(mu);
  cv.Wait(mu);
  TsanAcquired(mu);
}

// True if the deadline passed.
inline bool WaitWithDeadline(absl::CondVar& cv, absl::Mutex* mu, absl::Time deadline)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  TsanReleasing(mu);
  const bool timed_out = cv.WaitWithDeadline(mu, deadline);
  TsanAcquired(mu);
  return timed_out;
}

// Abseil evaluates a wait's condition with the mutex held, inside the library, on whichever
// thread holds it then: under TSan the condition acquires before it reads and releases after.
// `await` is the absl call, given the condition to wait on.
template <typename AbslAwait>
bool AwaitAnnotated(absl::Mutex& mu, const absl::Condition& condition, AbslAwait&& await) {
  TsanReleasing(&mu);
#ifdef IHS_TSAN
  auto checked = [&mu, &condition] {
    TsanAcquired(&mu);
    const bool holds = condition.Eval();
    TsanReleasing(&mu);  // the lock may be given up after this, inside the library
    return holds;
  };
  const bool held = await(absl::Condition(&checked));
#else
  const bool held = await(condition);
#endif
  TsanAcquired(&mu);
  return held;
}

inline void Await(absl::Mutex& mu, const absl::Condition& condition)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  AwaitAnnotated(mu, condition, [&mu](const absl::Condition& c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mu.Await(c);
    return true;
  });
}

// True if the condition holds.
inline bool AwaitWithTimeout(absl::Mutex& mu, const absl::Condition& condition,
                             absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  return AwaitAnnotated(mu, condition,
                        [&mu, timeout](const absl::Condition& c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                          return mu.AwaitWithTimeout(c, timeout);
                        });
}

}  // namespace ihs

#endif  // IHS_COMMON_MUTEX_H_
