#include "server/commit_watch.h"

#include <pthread.h>

#include "absl/time/clock.h"
#include "common/mutex.h"

namespace ihs::server {

CommitWatch::CommitWatch(store::EventStore& store)
    : CommitWatch(store.Head(), [&store](uint64_t known, absl::Time deadline) {
        return store.WaitForCommit(known, deadline);
      }) {}

CommitWatch::CommitWatch(uint64_t initial, WaitFn wait) : wait_(std::move(wait)), head_(initial) {
  thread_ = std::thread([this] {
    (void)pthread_setname_np(pthread_self(), "ihsd:commits");
    Watch();
  });
}

uint64_t CommitWatch::Current() {
  MutexLock lock(&mu_);
  return head_;
}

CommitWatch::~CommitWatch() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

kj::Promise<uint64_t> CommitWatch::WaitBeyond(uint64_t known) {
  // head_ is updated under the lock before the waiters are taken, so a commit is either seen
  // here or wakes the waiter registered here: none is missed.
  MutexLock lock(&mu_);
  if (head_ > known) return head_;
  auto paf = kj::newPromiseAndCrossThreadFulfiller<uint64_t>();
  waiters_.push_back(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

void CommitWatch::Watch() {
  uint64_t last;
  {
    MutexLock lock(&mu_);
    last = head_;
  }
  for (;;) {
    uint64_t head = wait_(last, absl::Now() + absl::Milliseconds(100));
    std::vector<kj::Own<kj::CrossThreadPromiseFulfiller<uint64_t>>> wake;
    {
      MutexLock lock(&mu_);
      if (stop_) return;
      if (head <= last) continue;
      head_ = last = head;
      wake.swap(waiters_);
    }
    for (auto& w : wake) w->fulfill(kj::cp(head));
  }
}

std::unique_ptr<CommitWatch> NewProjectionWatch(projections::Runner& runner, std::string name) {
  projections::Runner* r = &runner;
  return std::make_unique<CommitWatch>(runner.WaitForChange(name, UINT64_MAX, absl::InfinitePast()),
                                       [r, name](uint64_t known, absl::Time deadline) {
                                         return r->WaitForChange(name, known, deadline);
                                       });
}

}  // namespace ihs::server
