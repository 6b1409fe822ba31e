// Tests of store/internal/merkle.h against a plain recursive RFC 9162 section 2.1 written here.
#include "store/internal/merkle.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "tests/testutil/testutil.h"

namespace ihs::store::internal {
namespace {

std::vector<std::string> Leaves(size_t n) {
  std::vector<std::string> d;
  for (size_t i = 0; i < n; ++i) d.push_back(absl::StrCat("event ", i, std::string(i % 7, 'x')));
  return d;
}

TEST(Merkle, EmptyTreeIsSha256OfNothing) {
  EXPECT_EQ(absl::BytesToHexString(HashBytes(EmptyTreeHash())),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Frontier().Root(), EmptyTreeHash());
}

TEST(Merkle, FrontierRootEqualsReferenceForEverySizeUpTo300) {
  ASSERT_GE(sodium_init(), 0);
  std::vector<std::string> d = Leaves(300);
  Frontier f;
  for (size_t n = 1; n <= d.size(); ++n) {
    f.Push(LeafHash(d[n - 1]), [](SubtreeId, const Hash&) {});
    ASSERT_EQ(f.size(), n);
    ASSERT_EQ(std::string(HashBytes(f.Root())), ihs::testing::ReferenceTreeHash(d, 0, n))
        << "size " << n;
  }
}

TEST(Merkle, StoredSubtreesGiveTheRootOfEveryPrefix) {
  std::vector<std::string> d = Leaves(200);
  std::map<std::pair<int, uint64_t>, Hash> stored;
  Frontier f;
  for (const auto& leaf : d) {
    f.Push(LeafHash(leaf), [&](SubtreeId id, const Hash& h) {
      EXPECT_TRUE(stored.emplace(std::make_pair(id.level, id.index), h).second)
          << "subtree emitted twice";
    });
  }
  for (size_t n = 0; n <= d.size(); ++n) {
    std::vector<SubtreeId> ids = SubtreesOf(n);
    EXPECT_EQ(ids.size(), static_cast<size_t>(__builtin_popcountll(n)));  // O(log n) reads
    std::vector<Hash> hashes;
    for (const auto& id : ids) {
      auto it = stored.find({id.level, id.index});
      ASSERT_NE(it, stored.end()) << "subtree (" << int(id.level) << ", " << id.index << ")";
      hashes.push_back(it->second);
    }
    EXPECT_EQ(std::string(HashBytes(FoldSubtrees(hashes))),
              ihs::testing::ReferenceTreeHash(d, 0, n))
        << n;
  }
  // Each complete subtree, checked directly: (level L, index i) is MTH of its 2^L leaves.
  for (const auto& [key, h] : stored) {
    size_t begin = key.second << key.first, end = begin + (size_t{1} << key.first);
    EXPECT_EQ(std::string(HashBytes(h)), ihs::testing::ReferenceTreeHash(d, begin, end));
  }
}

TEST(Merkle, LoadedFrontierContinuesLikeTheOriginal) {
  std::vector<std::string> d = Leaves(77);
  std::map<std::pair<int, uint64_t>, Hash> stored;
  Frontier f;
  auto keep = [&](SubtreeId id, const Hash& h) { stored[{id.level, id.index}] = h; };
  for (size_t i = 0; i < 50; ++i) f.Push(LeafHash(d[i]), keep);
  auto loaded = Frontier::Load(50, [&](SubtreeId id) -> absl::StatusOr<Hash> {
    return stored.at({id.level, id.index});
  });
  ASSERT_TRUE(loaded.ok());
  for (size_t i = 50; i < d.size(); ++i) {
    f.Push(LeafHash(d[i]), keep);
    loaded->Push(LeafHash(d[i]), [](SubtreeId, const Hash&) {});
  }
  EXPECT_EQ(loaded->Root(), f.Root());
  EXPECT_EQ(std::string(HashBytes(f.Root())), ihs::testing::ReferenceTreeHash(d, 0, d.size()));
}

TEST(Merkle, LoadReportsAMissingSubtree) {
  auto loaded = Frontier::Load(
      5, [](SubtreeId) -> absl::StatusOr<Hash> { return absl::DataLossError("gone"); });
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ihs::store::internal
