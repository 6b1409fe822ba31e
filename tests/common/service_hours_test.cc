#include "common/service_hours.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "absl/time/time.h"
#include "common/time_math.h"

namespace ihs {
namespace {

constexpr int64_t kMinute = 60LL * 1000 * 1000;
constexpr int64_t kHour = 60 * kMinute;

// 2026-01-05 is a Monday.
int64_t At(int day_of_jan, int hour, int minute = 0) {
  return absl::ToUnixMicros(
      absl::FromCivil(absl::CivilMinute(2026, 1, day_of_jan, hour, minute), absl::UTCTimeZone()));
}

TEST(ServiceHours, WeekdaysOpenAtSixAndCloseAtTen) {
  const ServiceHours& h = ServiceHours::Default();
  EXPECT_FALSE(h.IsOpen(At(5, 5, 59)));
  EXPECT_TRUE(h.IsOpen(At(5, 6, 0)));
  EXPECT_TRUE(h.IsOpen(At(9, 21, 59)));  // Friday
  EXPECT_FALSE(h.IsOpen(At(9, 22, 0)));
}

TEST(ServiceHours, WeekendsOpenAtTen) {
  const ServiceHours& h = ServiceHours::Default();
  EXPECT_FALSE(h.IsOpen(At(10, 9, 59)));  // Saturday
  EXPECT_TRUE(h.IsOpen(At(10, 10, 0)));
  EXPECT_TRUE(h.IsOpen(At(11, 21, 59)));  // Sunday
  EXPECT_FALSE(h.IsOpen(At(11, 22, 0)));
}

TEST(ServiceHours, BetweenCountsOnlyOpenTime) {
  const ServiceHours& h = ServiceHours::Default();
  // Friday 21:00 to Saturday 11:00: one hour on Friday, one on Saturday.
  EXPECT_EQ(h.Between(At(9, 21), At(10, 11)), 2 * kHour);
  // A whole week: 5 x 16 h + 2 x 12 h.
  EXPECT_EQ(h.Between(At(5, 0), At(12, 0)), (5 * 16 + 2 * 12) * kHour);
  EXPECT_EQ(h.Between(At(5, 23), At(6, 5)), 0);
  EXPECT_EQ(h.Between(At(6, 12), At(5, 12)), 0);
}

TEST(ServiceHours, AddSkipsClosedTime) {
  const ServiceHours& h = ServiceHours::Default();
  EXPECT_EQ(h.Add(At(9, 21, 30), kHour), At(10, 10, 30));  // Friday evening -> Saturday
  EXPECT_EQ(h.Add(At(6, 3), 0), At(6, 6));                 // at night: the next opening
  EXPECT_EQ(h.Add(At(6, 12), 0), At(6, 12));               // open: now
  EXPECT_EQ(h.Add(At(6, 21), kHour), At(6, 22));           // exactly until closing
}

TEST(ServiceHours, AddAndBetweenAreInverse) {
  const ServiceHours& h = ServiceHours::Default();
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    const int64_t from = At(1, 0) + static_cast<int64_t>(rng() % (60LL * 24 * kHour));
    const int64_t d = static_cast<int64_t>(rng() % (400 * kHour));
    const int64_t to = h.Add(from, d);
    ASSERT_EQ(h.Between(from, to), d) << "from " << from << " d " << d;
    ASSERT_TRUE(d == 0 || h.IsOpen(to - 1)) << "the answer lands in open time";
  }
}

// Times come from writers and callers: at the ends of int64 the calendar answers as at the ends
// of the years 1 to 9999, without overflowing.
TEST(ServiceHours, TimesPastTheYears1To9999CountAsTheirEnds) {
  const ServiceHours& h = ServiceHours::Default();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(h.Between(kMin, kMax), h.Between(kEarliestTime, kLatestTime));
  EXPECT_GT(h.Between(kMin, kMax), 0);
  EXPECT_EQ(h.Between(kMax, kMin), 0);
  EXPECT_EQ(h.IsOpen(kMin), h.IsOpen(kEarliestTime));
  EXPECT_EQ(h.IsOpen(kMax), h.IsOpen(kLatestTime));
  EXPECT_EQ(h.Add(kMin, kHour), h.Add(kEarliestTime, kHour));
  EXPECT_GT(h.Add(kMax, kHour), kLatestTime);
}

}  // namespace
}  // namespace ihs
