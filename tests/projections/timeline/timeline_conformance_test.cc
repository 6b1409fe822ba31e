// The timeline runs the conformance suite every projection runs (tests/projections/conformance.h),
// with the default bound on decoded threads and with a bound of 20, which makes it write threads
// out in the middle of batches and bulk phases.
#include "projections/timeline/timeline.h"
#include "tests/projections/conformance.h"

namespace ihs::projections {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Timeline, ProjectionConformance,
    ::testing::Values(ConformanceCase{"timeline", [] { return timeline::NewTimelineProjection(); }},
                      ConformanceCase{"timeline",
                                      [] { return timeline::NewTimelineProjection(20); }}),
    [](const ::testing::TestParamInfo<ConformanceCase>& info) {
      return info.index == 0 ? std::string("timeline") : std::string("timeline_20_threads");
    });

}  // namespace
}  // namespace ihs::projections
