// Threads for blocking store calls, so that the event loop never waits: an append blocks until
// its group's WAL sync, and a read may wait for the disk. Run() hands a function to a worker and
// returns a promise, on the calling event loop, for its result (kj's cross-thread fulfiller).
//
// Run() is called from an event-loop thread; the functions run on the workers. The destructor
// runs every queued function, then joins: nothing handed over is dropped, so an append that
// started always finishes before the store can be closed.
#ifndef IHS_SERVER_WORKER_POOL_H_
#define IHS_SERVER_WORKER_POOL_H_

#include <kj/async.h>
#include <kj/exception.h>
#include <pthread.h>

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/mutex.h"

namespace ihs::server {

class WorkerPool {
 public:
  // `name` (at most 15 bytes) names the threads, as top -H and ps -L show them.
  WorkerPool(size_t threads, const char* name) {
    for (size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this, name] {
        (void)pthread_setname_np(pthread_self(), name);
        Work();
      });
    }
  }
  ~WorkerPool() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // `fn` must be copyable and must not touch the event loop. If the promise is dropped, `fn`
  // still runs (its result is discarded). An exception `fn` throws rejects the promise, on the
  // caller's loop, instead of ending the process: a worker thread has no one else to catch it.
  // Whatever `fn` holds is destroyed on the worker, so it must hold no capability (their
  // reference counts belong to the event loop's thread).
  template <typename Fn>
  auto Run(Fn fn) -> kj::Promise<decltype(fn())> {
    using T = decltype(fn());
    auto paf = kj::newPromiseAndCrossThreadFulfiller<T>();
    auto fulfiller =
        std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<T>>>(kj::mv(paf.fulfiller));
    // kj hands the result over inside its library, where ThreadSanitizer cannot see it: the
    // worker releases this address before it fulfils, the loop acquires it when the result
    // arrives (common/mutex.h). Nothing at all outside TSan builds.
    const void* handoff = fulfiller.get();
    {
      MutexLock lock(&mu_);
      queue_.push_back([fn = std::move(fn), fulfiller, handoff]() mutable {
        KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] {
                       T result = fn();
                       TsanRelease(handoff);
                       (*fulfiller)->fulfill(kj::mv(result));
                     })) {
          TsanRelease(handoff);
          (*fulfiller)->reject(kj::mv(*e));
        }
      });
    }
#ifdef IHS_TSAN
    return paf.promise.then(
        [handoff](T result) {
          TsanAcquire(handoff);
          return result;
        },
        [handoff](kj::Exception&& e) -> T {
          TsanAcquire(handoff);
          kj::throwFatalException(kj::mv(e));
        });
#else
    (void)handoff;
    return kj::mv(paf.promise);
#endif
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> job;
      {
        MutexLock lock(&mu_);
        Await(mu_, absl::Condition(
                       +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
                         return p->stopping_ || !p->queue_.empty();
                       },
                       this));
        if (queue_.empty()) return;  // stopping, and nothing left to run
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ihs::server

#endif  // IHS_SERVER_WORKER_POOL_H_
