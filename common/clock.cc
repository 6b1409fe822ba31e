#include "common/clock.h"

namespace ihs {
namespace {

class RealClockImpl : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

}  // namespace

Clock* RealClock() {
  static Clock* clock = new RealClockImpl();  // never deleted: usable during shutdown
  return clock;
}

}  // namespace ihs
