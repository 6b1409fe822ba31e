// HintTable (projections/internal/hint_table.h): the timeline's rebuild finds a party's record
// through it; a wrong hint would give an event to another party's record.
#include "projections/internal/hint_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ihs::projections {
namespace {

using Table = HintTable<std::string>;

TEST(HintTableTest, FindsWhatWasPutUntilTwoOthersOfItsBucketPushItOut) {
  std::vector<std::string> nodes = {"a", "b", "c", "d"};
  Table t;
  EXPECT_FALSE(t.enabled());
  EXPECT_EQ(t.Find(7), nullptr);  // not enabled: nothing, and no memory
  t.Enable();
  EXPECT_TRUE(t.enabled());
  EXPECT_EQ(t.Find(7), nullptr);

  // Three hashes of one bucket: a bucket holds the two last put.
  const size_t h1 = 7, h2 = 7 + Table::kBuckets, h3 = 7 + 2 * Table::kBuckets;
  t.Put(h1, &nodes[0]);
  t.Put(h2, &nodes[1]);
  EXPECT_EQ(t.Find(h1), &nodes[0]);
  EXPECT_EQ(t.Find(h2), &nodes[1]);
  t.Put(h3, &nodes[2]);
  EXPECT_EQ(t.Find(h1), nullptr);  // the oldest went
  EXPECT_EQ(t.Find(h2), &nodes[1]);
  EXPECT_EQ(t.Find(h3), &nodes[2]);

  // Another bucket is not touched; an equal hash is all a hint promises.
  t.Put(8, &nodes[3]);
  EXPECT_EQ(t.Find(8), &nodes[3]);
  EXPECT_EQ(t.Find(h3), &nodes[2]);
  EXPECT_EQ(t.Find(9), nullptr);

  t.Clear();
  for (size_t h : {h1, h2, h3, size_t{8}}) EXPECT_EQ(t.Find(h), nullptr) << h;
  EXPECT_TRUE(t.enabled());
  t.PrefetchBucket(h3);  // a hint only: changes nothing
  EXPECT_EQ(t.Find(h3), nullptr);

  // Release gives the memory back: nothing is found and nothing is held until Enable.
  t.Put(h1, &nodes[0]);
  t.Release();
  EXPECT_FALSE(t.enabled());
  EXPECT_EQ(t.Find(h1), nullptr);
  t.PrefetchBucket(h1);  // not enabled: does nothing
  t.Enable();
  EXPECT_EQ(t.Find(h1), nullptr);
  t.Put(h1, &nodes[0]);
  EXPECT_EQ(t.Find(h1), &nodes[0]);
}

}  // namespace
}  // namespace ihs::projections
