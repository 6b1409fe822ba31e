// The programs linked with tcmalloc (ihs_malloc) take their heap in blocks advised
// MADV_HUGEPAGE (common/tcmalloc_huge_pages.cc): a rebuild's state then sits in huge pages
// wherever the kernel grants them on request.
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
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

}  // namespace
}  // namespace ihs
