#include "server/commit_watch.h"

#include "absl/time/clock.h"
#include "common/mutex.h"

namespace ihs::server {

CommitWatch::CommitWatch(store::EventStore& store) : store_(store), head_(store.Head()) {
  thread_ = std::thread([this] { Watch(); });
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
    uint64_t head = store_.WaitForCommit(last, absl::Now() + absl::Milliseconds(100));
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

}  // namespace ihs::server
