// Wakes subscriptions when new events commit, without a thread per subscription: one thread
// waits on EventStore::WaitForCommit and fulfils, across threads, every promise waiting for a
// head beyond what it knew. The same for any counter that only grows and can be waited on (a
// projection's changes, for subscriptions to segment transitions).
//
// WaitBeyond() is called from the event-loop thread; the watcher thread is private.
#ifndef IHS_SERVER_COMMIT_WATCH_H_
#define IHS_SERVER_COMMIT_WATCH_H_

#include <kj/async.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "projections/runner.h"
#include "store/event_store.h"

namespace ihs::server {

class CommitWatch {
 public:
  explicit CommitWatch(store::EventStore& store);
  // A counter: `wait(known, deadline)` returns it once it exceeds `known` or at the deadline;
  // `initial` is its value now.
  using WaitFn = std::function<uint64_t(uint64_t known, absl::Time deadline)>;
  CommitWatch(uint64_t initial, WaitFn wait);
  ~CommitWatch();  // stops the thread (within WaitForCommit's 100 ms deadline)
  CommitWatch(const CommitWatch&) = delete;
  CommitWatch& operator=(const CommitWatch&) = delete;

  // Resolves with the log's size (the counter) once it exceeds `known` (at once if it already
  // does).
  kj::Promise<uint64_t> WaitBeyond(uint64_t known);
  // The value as last seen.
  uint64_t Current();

 private:
  void Watch();

  const WaitFn wait_;
  absl::Mutex mu_;
  uint64_t head_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<kj::Own<kj::CrossThreadPromiseFulfiller<uint64_t>>> waiters_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// A watch of how often projection `name`'s state changed (Runner::WaitForChange): wakes what
// waits for it (subscriptions of segment transitions, the console's streams).
std::unique_ptr<CommitWatch> NewProjectionWatch(projections::Runner& runner, std::string name);

}  // namespace ihs::server

#endif  // IHS_SERVER_COMMIT_WATCH_H_
