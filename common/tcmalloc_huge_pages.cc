// Part of the programs linked with tcmalloc (CMakeLists.txt, ihs_malloc): tcmalloc takes the
// memory it hands out from the system in runs of 2 MiB-aligned huge-page-sized blocks that are
// advised MADV_HUGEPAGE, so that the kernel backs them with transparent huge pages where it
// allows them only on request (Debian's default, "madvise").
//
// Why: a rebuild's state (docs/projections.md) is gigabytes of hash tables and records that it
// touches at random; with 4 KiB pages nearly every touch misses the TLB, and on a virtual machine
// each miss walks two page tables. Huge pages made the 10M timeline rebuild about 8% faster
// (docs/impl.md). Memory that tcmalloc releases is still returned page by page.
#include <gperftools/malloc_extension.h>
#include <sys/mman.h>

#include <cstdint>

namespace ihs {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

class HugePageSysAllocator final : public SysAllocator {
 public:
  explicit HugePageSysAllocator(SysAllocator* fallback) : fallback_(fallback) {}

  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    const size_t align = alignment > kHugePage ? RoundUp(alignment, kHugePage) : kHugePage;
    const size_t len = RoundUp(size, kHugePage);
    if (len < size) return fallback_->Alloc(size, actual_size, alignment);  // overflow
    // Map one alignment more than needed, and give back the ends that lie outside the aligned run.
    void* mapped = mmap(nullptr, len + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
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
};

// Installed before main: tcmalloc has allocated from the system by then (every static
// constructor may allocate), and asks the allocator set here from then on.
const bool kInstalled = [] {
  MallocExtension* m = MallocExtension::instance();
  static HugePageSysAllocator allocator(m->GetSystemAllocator());
  m->SetSystemAllocator(&allocator);
  return true;
}();

}  // namespace
}  // namespace ihs
