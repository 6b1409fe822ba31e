#include "common/time_math.h"

#include <gtest/gtest.h>

#include <limits>

namespace ihs {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kDay = int64_t{86400} * 1000000;

TEST(TimeMath, SumsAndDifferencesSaturateAtTheEndsOfInt64) {
  EXPECT_EQ(SaturatingAdd(2, 3), 5);
  EXPECT_EQ(SaturatingAdd(kMax, 1), kMax);
  EXPECT_EQ(SaturatingAdd(kMin, -1), kMin);
  EXPECT_EQ(SaturatingAdd(kMax, kMin), -1);
  EXPECT_EQ(SaturatingSub(2, 3), -1);
  EXPECT_EQ(SaturatingSub(kMax, kMin), kMax);
  EXPECT_EQ(SaturatingSub(kMin + 1, kMax), kMin);
  EXPECT_EQ(SaturatingSub(0, kMin), kMax);
  EXPECT_EQ(SaturatingSub(-1, kMin), kMax);
  EXPECT_EQ(SaturatingSub(-2, kMax), kMin);
}

TEST(TimeMath, ADayIsTheUtcDayThatHoldsTheMoment) {
  EXPECT_EQ(UtcDayOf(0), 0);
  EXPECT_EQ(UtcDayOf(kDay - 1), 0);
  EXPECT_EQ(UtcDayOf(kDay), 1);
  EXPECT_EQ(UtcDayOf(-1), -1);
  EXPECT_EQ(UtcDayOf(-kDay), -1);
  EXPECT_EQ(UtcDayOf(-kDay - 1), -2);
  EXPECT_EQ(UtcDayOf(kEarliestTime), -719162);  // 0001-01-01
  EXPECT_EQ(UtcDayOf(kLatestTime), 2932896);    // 9999-12-31
  EXPECT_EQ(UtcDayOf(kMin), -106751992);
  EXPECT_EQ(UtcDayOf(kMax), 106751991);
}

TEST(TimeMath, ClampKeepsTimesInsideTheYearsOneTo9999) {
  EXPECT_EQ(ClampTime(0), 0);
  EXPECT_EQ(ClampTime(kEarliestTime), kEarliestTime);
  EXPECT_EQ(ClampTime(kEarliestTime - 1), kEarliestTime);
  EXPECT_EQ(ClampTime(kMin), kEarliestTime);
  EXPECT_EQ(ClampTime(kLatestTime + 1), kLatestTime);
  EXPECT_EQ(ClampTime(kMax), kLatestTime);
}

}  // namespace
}  // namespace ihs
