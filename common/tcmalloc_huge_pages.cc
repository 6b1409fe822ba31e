// Part of the programs linked with tcmalloc (CMakeLists.txt, ihs_malloc): tcmalloc takes the
// memory it hands out from the system in runs of 2 MiB-aligned huge-page-sized blocks that are
// advised MADV_HUGEPAGE, so that the kernel backs them with transparent huge pages where it
// allows them only on request (Debian's default, "madvise").
//
// Why: a rebuild's state (docs/projections.md) is gigabytes of hash tables and records that it
// touches at random; with 4 KiB pages nearly every touch misses the TLB, and on a virtual machine
// each miss walks two page tables. Huge pages made the 10M timeline rebuild about 8% faster
// (docs/impl.md). Memory that tcmalloc releases is still returned page by page.
//
// And the blocks come from one span of address space that a thread of its own faults in ahead of
// tcmalloc's requests (MADV_POPULATE_WRITE), on another core: on a virtual machine the first
// touch of fresh memory is slow (the host backs it; 2.3 s per GiB with 4 KiB pages, more with huge
// pages, on the VMs the benchmarks ran on), and a rebuild that grows its heap by gigabytes spent
// a third of its time there (bench/RESULTS.md, 2026-12-06 third entry). Ahead means at most a
// quarter of what the span has handed out, and at most 256 MiB: a small program populates little.
// The thread only advises the kernel; Alloc never waits for it (nor does a forked child, which
// has no such thread).
#include <gperftools/malloc_extension.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace ihs {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kSpanBytes = size_t{64} << 30;  // address space only, until touched
constexpr size_t kMaxAhead = size_t{256} << 20;  // populated beyond what was handed out

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// The span: handed out in order by Take (under tcmalloc's lock, one caller at a time), populated
// ahead by Populate's thread.
class Span {
 public:
  bool Map() {
    void* mapped = mmap(nullptr, kSpanBytes + kHugePage, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapped == MAP_FAILED) return false;
    base_ = RoundUp(reinterpret_cast<uintptr_t>(mapped), kHugePage);
    end_ = base_ + kSpanBytes;
    next_.store(base_);
    populated_ = base_;
    madvise(reinterpret_cast<void*>(base_), kSpanBytes, MADV_HUGEPAGE);  // a refusal is harmless
    return true;
  }

  // `len` bytes (a multiple of kHugePage) at the span's next address, or 0 when it is used up.
  uintptr_t Take(size_t len) {
    const uintptr_t at = next_.load(std::memory_order_relaxed);
    if (base_ == 0 || len > end_ - at) return 0;
    next_.store(at + len, std::memory_order_release);
    wakes_.fetch_add(1, std::memory_order_release);
    syscall(SYS_futex, &wakes_, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    return at;
  }

  // The thread: keeps the span populated ahead of Take; ends if the kernel cannot populate.
  void Populate() {
    for (;;) {
      const uint32_t seen = wakes_.load(std::memory_order_acquire);
      const uintptr_t next = next_.load(std::memory_order_acquire);
      const size_t ahead = std::min(kMaxAhead, RoundUp((next - base_) / 4, kHugePage));
      const uintptr_t target = std::min<uintptr_t>(end_, next + ahead);
      if (populated_ < next) populated_ = next;  // what Take handed out, its users touch anyway
      if (populated_ >= target) {
        syscall(SYS_futex, &wakes_, FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
        continue;
      }
      // Populating memory that tcmalloc has handed out meanwhile changes nothing in it.
      if (madvise(reinterpret_cast<void*>(populated_), kHugePage, MADV_POPULATE_WRITE) != 0) {
        return;  // an older kernel, or no memory: the users fault it in themselves
      }
      populated_ += kHugePage;
    }
  }

 private:
  uintptr_t base_ = 0, end_ = 0;
  std::atomic<uintptr_t> next_{0};
  std::atomic<uint32_t> wakes_{0};  // a futex word: Take's count
  uintptr_t populated_ = 0;         // Populate's own
};

class HugePageSysAllocator final : public SysAllocator {
 public:
  HugePageSysAllocator(SysAllocator* fallback, Span* span) : fallback_(fallback), span_(span) {}

  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    const size_t align = alignment > kHugePage ? RoundUp(alignment, kHugePage) : kHugePage;
    const size_t len = RoundUp(size, kHugePage);
    if (len < size) return fallback_->Alloc(size, actual_size, alignment);  // overflow
    if (span_ != nullptr && align == kHugePage) {
      if (const uintptr_t at = span_->Take(len)) {
        if (actual_size != nullptr) *actual_size = len;
        return reinterpret_cast<void*>(at);
      }
    }
    // Map one alignment more than needed, and give back the ends that lie outside the aligned run.
    void* mapped =
        mmap(nullptr, len + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) return fallback_->Alloc(size, actual_size, alignment);
    const uintptr_t base = reinterpret_cast<uintptr_t>(mapped);
    const uintptr_t start = RoundUp(base, align);
    if (start > base) munmap(mapped, start - base);
    const uintptr_t end = base + len + align;
    if (end > start + len) munmap(reinterpret_cast<void*>(start + len), end - (start + len));
    madvise(reinterpret_cast<void*>(start), len, MADV_HUGEPAGE);  // advice: a refusal is harmless
    if (actual_size != nullptr) *actual_size = len;
    return reinterpret_cast<void*>(start);
  }

 private:
  SysAllocator* const fallback_;
  Span* const span_;
};

void* RunPopulate(void* span) {
  // Only on a core that nothing else wants: where the program's own threads keep every core busy
  // (a sharded rebuild), they fault their memory in themselves, as without this thread.
  sched_param idle{};
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
  static_cast<Span*>(span)->Populate();
  return nullptr;
}

// Installed before main: tcmalloc has allocated from the system by then (every static
// constructor may allocate), and asks the allocator set here from then on. The thread starts
// here too, where no lock of tcmalloc's is held.
const bool kInstalled = [] {
  static Span span;
  Span* use = nullptr;
  if (span.Map()) {
    // With every signal blocked, which it inherits: a program that waits for SIGTERM on a
    // thread of its own (ihsd) must not have it delivered here, where it would end the process.
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &before);
    pthread_t thread;
    if (pthread_create(&thread, nullptr, RunPopulate, &span) == 0) {
      pthread_detach(thread);
      use = &span;
    }
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }
  MallocExtension* m = MallocExtension::instance();
  static HugePageSysAllocator allocator(m->GetSystemAllocator(), use);
  m->SetSystemAllocator(&allocator);
  return true;
}();

}  // namespace
}  // namespace ihs
