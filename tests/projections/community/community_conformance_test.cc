// Community runs the conformance suite every projection runs (tests/projections/conformance.h).
#include "projections/community/community.h"
#include "tests/projections/conformance.h"

namespace ihs::projections {
namespace {

INSTANTIATE_TEST_SUITE_P(Community, ProjectionConformance,
                         ::testing::Values(ConformanceCase{
                             "community", [] { return community::NewCommunityProjection(); }}),
                         ConformanceCaseName);

}  // namespace
}  // namespace ihs::projections
