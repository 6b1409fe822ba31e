#include "common/service_hours.h"

#include <algorithm>

#include "common/time_math.h"

namespace ihs {
namespace {

constexpr int64_t kHour = 3600LL * 1000 * 1000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kWeek = 7 * kDay;
// 1970-01-01 was a Thursday: shifting by 3 days makes day 0 of a week a Monday.
constexpr int64_t kMondayShift = 3 * kDay;

}  // namespace

ServiceHours::Day ServiceHours::DayOf(int64_t t) const {
  const int64_t day = FloorDiv(t + kMondayShift, kDay);
  const Window& w = week_[static_cast<int>((day % 7 + 7) % 7)];
  Day d;
  d.start = day * kDay - kMondayShift;
  d.open = d.start + w.open_hour * kHour;
  d.close = d.start + w.close_hour * kHour;
  return d;
}

ServiceHours::ServiceHours(const std::array<Window, 7>& week) : week_(week), open_us_per_week_(0) {
  for (const Window& w : week_) open_us_per_week_ += (w.close_hour - w.open_hour) * kHour;
}

const ServiceHours& ServiceHours::Default() {
  static const ServiceHours* hours =
      new ServiceHours({{{6, 22}, {6, 22}, {6, 22}, {6, 22}, {6, 22}, {10, 22}, {10, 22}}});
  return *hours;
}

bool ServiceHours::IsOpen(int64_t t) const {
  t = ClampTime(t);
  const Day d = DayOf(t);
  return t >= d.open && t < d.close;
}

int64_t ServiceHours::Between(int64_t from, int64_t to) const {
  from = ClampTime(from);
  to = ClampTime(to);
  if (to <= from) return 0;
  // Whole weeks first, then day by day over what is left (at most 8 days).
  int64_t total = 0;
  const int64_t weeks = (to - from) / kWeek;
  total += weeks * open_us_per_week_;
  int64_t t = from + weeks * kWeek;
  while (t < to) {
    const Day d = DayOf(t);
    const int64_t a = std::max(t, d.open), b = std::min({d.start + kDay, to, d.close});
    if (b > a) total += b - a;
    t = d.start + kDay;
  }
  return total;
}

int64_t ServiceHours::Add(int64_t from, int64_t service_us) const {
  if (open_us_per_week_ == 0) return from;  // never open: nothing sensible to add
  int64_t t = ClampTime(from);
  int64_t left = std::min(service_us, kLatestTime - kEarliestTime);
  // Skip whole weeks while more than a week's service time is left.
  if (left > open_us_per_week_) {
    const int64_t weeks = left / open_us_per_week_ - 1;
    t += weeks * kWeek;
    left -= weeks * open_us_per_week_;
  }
  for (;;) {
    const Day d = DayOf(t);
    const int64_t a = std::max(t, d.open);
    if (a < d.close) {
      if (left == 0) return a;
      if (a + left <= d.close) return a + left;
      left -= d.close - a;
    }
    t = d.start + kDay;
  }
}

}  // namespace ihs
