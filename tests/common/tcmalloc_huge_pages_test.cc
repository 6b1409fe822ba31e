// The programs linked with tcmalloc (ihs_malloc) take their heap in blocks advised
// MADV_HUGEPAGE (common/tcmalloc_huge_pages.cc): a rebuild's state then sits in huge pages
// wherever the kernel grants them on request. And a thread faults in the heap's next blocks
// before tcmalloc hands them out, so that a growing heap does not wait for fresh memory.
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace ihs {
namespace {

// The VmFlags line of the mapping in /proc/self/smaps that holds `p`; empty if none does.
std::string VmFlagsOf(const void* p) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    const std::string range = line.substr(0, line.find(' '));
    std::vector<std::string> ends = absl::StrSplit(range, '-');
    uint64_t lo = 0, hi = 0;
    if (ends.size() == 2 && absl::SimpleHexAtoi(ends[0], &lo) &&
        absl::SimpleHexAtoi(ends[1], &hi)) {
      inside = lo <= at && at < hi;
      continue;
    }
    if (inside && absl::StartsWith(line, "VmFlags:")) return line;
  }
  return "";
}

TEST(TcmallocHugePages, ALargeAllocationLiesInMemoryAdvisedForHugePages) {
  constexpr size_t kBytes = size_t{64} << 20;
  std::unique_ptr<char[]> big(new char[kBytes]);
  big[0] = big[kBytes - 1] = 1;
  const std::string flags = VmFlagsOf(big.get());
  ASSERT_FALSE(flags.empty()) << "no mapping holds the allocation";
  // "hg": the mapping was advised MADV_HUGEPAGE (proc(5)).
  EXPECT_TRUE(absl::StrContains(flags, " hg")) << flags;
}

TEST(TcmallocHugePages, ManySmallAllocationsComeFromAdvisedMemory) {
  // Past what the heap held before the allocator was installed (static constructors use it):
  // 128 MiB of 1 KiB records, as a rebuild's records come.
  std::vector<std::unique_ptr<char[]>> records;
  for (int i = 0; i < 128 * 1024; ++i) records.emplace_back(new char[1024]);
  const std::string flags = VmFlagsOf(records.back().get());
  ASSERT_FALSE(flags.empty());
  EXPECT_TRUE(absl::StrContains(flags, " hg")) << flags;
}

// How many of the pages of [p, p + bytes) are resident (mincore(2)).
size_t ResidentPages(const char* p, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t start = reinterpret_cast<uintptr_t>(p) / page * page;
  const size_t pages = (reinterpret_cast<uintptr_t>(p) + bytes - start + page - 1) / page;
  std::vector<unsigned char> in(pages);
  if (mincore(reinterpret_cast<void*>(start), pages * page, in.data()) != 0) return 0;
  size_t n = 0;
  for (unsigned char c : in) n += c & 1;
  return n;
}

// The process's resident set, in bytes (/proc/self/statm).
size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

TEST(TcmallocHugePages, AGrowingHeapFindsItsNextBlocksAlreadyFaultedIn) {
  // A heap that grew by 512 MiB is populated up to 128 MiB (a quarter) further, untouched: the
  // resident set grows by that much while this program touches nothing, and the next block
  // tcmalloc takes from there is resident before this program writes to it.
  constexpr size_t kGrown = size_t{512} << 20, kNext = size_t{32} << 20;
  const size_t before = ResidentBytes();
  std::unique_ptr<char[]> grown(new char[kGrown]);  // tcmalloc writes nothing into it
  // The compiler may not drop the allocation, which this function does not otherwise read.
  asm volatile("" : : "r"(grown.get()) : "memory");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ResidentBytes() < before + (size_t{96} << 20) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(ResidentBytes(), before + (size_t{96} << 20)) << "nothing was populated ahead";
  std::unique_ptr<char[]> next(new char[kNext]);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(ResidentPages(next.get(), kNext), kNext / page)
      << "of the next block's pages, resident before a touch";
  grown[0] = next[0] = 1;
}

}  // namespace
}  // namespace ihs
