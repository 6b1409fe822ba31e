// The company's service hours: when employees answer. Response times are counted in service time
// as well as wall-clock time, by the workload generator (which only replies inside them) and by
// the timeline projection (which reports both), so both use this one definition.
//
// The calendar is weekly and in UTC: for each weekday an opening and a closing hour. The default
// is Mon-Fri 06:00-22:00, Sat-Sun 10:00-22:00 (docs/workload.md). Immutable; safe for concurrent
// use.
#ifndef IHS_COMMON_SERVICE_HOURS_H_
#define IHS_COMMON_SERVICE_HOURS_H_

#include <array>
#include <cstdint>

namespace ihs {

class ServiceHours {
 public:
  struct Window {
    int open_hour;   // [0, 24]
    int close_hour;  // [open_hour, 24]; open == close: closed all day
  };
  // Index 0 is Monday.
  explicit ServiceHours(const std::array<Window, 7>& week);
  // Mon-Fri 06:00-22:00, Sat-Sun 10:00-22:00.
  static const ServiceHours& Default();

  // All times are µs since the Unix epoch, UTC. Times outside years 1 to 9999 count as the end
  // of that range they are past (common/time_math.h).
  bool IsOpen(int64_t t) const;
  // Service time (µs) in [from, to); 0 if to <= from.
  int64_t Between(int64_t from, int64_t to) const;
  // The earliest time t >= from at which Between(from, t) == service_us and the service is
  // open just before t (for service_us == 0: the first open moment at or after from).
  int64_t Add(int64_t from, int64_t service_us) const;

 private:
  struct Day {
    int64_t start, open, close;  // the UTC day containing a time, and its service window
  };
  Day DayOf(int64_t t) const;

  std::array<Window, 7> week_;
  int64_t open_us_per_week_;
};

}  // namespace ihs

#endif  // IHS_COMMON_SERVICE_HOURS_H_
