// Arithmetic on times in µs since the Unix epoch that cannot overflow.
//
// The store takes occurredAt only inside years 1 to 9999 (store/types.h), but a query's moment
// (asOf, a console's zoom) is whatever the caller sends, and a store written before that limit
// may hold any int64. Differences and sums of such times saturate at the ends of int64 instead
// of overflowing, which is undefined behaviour in C++.
#ifndef IHS_COMMON_TIME_MATH_H_
#define IHS_COMMON_TIME_MATH_H_

#include <cstdint>
#include <limits>

namespace ihs {

// The moments RFC 3339 can write, and so the range of occurredAt the store takes:
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
inline constexpr int64_t kEarliestTime = -62'135'596'800'000'000;
inline constexpr int64_t kLatestTime = 253'402'300'799'999'999;

// a + b, or the end of int64 it passes.
inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

// a - b, or the end of int64 it passes.
inline int64_t SaturatingSub(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_sub_overflow(a, b, &r)) return r;
  return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

// a / b rounded towards negative infinity (b > 0).
inline int64_t FloorDiv(int64_t a, int64_t b) { return a / b - (a % b < 0 ? 1 : 0); }

// `t` moved into [kEarliestTime, kLatestTime].
inline int64_t ClampTime(int64_t t) {
  return t < kEarliestTime ? kEarliestTime : t > kLatestTime ? kLatestTime : t;
}

// The UTC day (days since 1970-01-01) that holds the moment `micros`; any int64 has one.
inline int32_t UtcDayOf(int64_t micros) {
  return static_cast<int32_t>(FloorDiv(micros, int64_t{86400} * 1000000));
}

}  // namespace ihs

#endif  // IHS_COMMON_TIME_MATH_H_
