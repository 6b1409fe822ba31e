// Segments runs the conformance suite every projection runs (tests/projections/conformance.h).
#include "projections/segments/segments.h"
#include "tests/projections/conformance.h"

namespace ihs::projections {
namespace {

INSTANTIATE_TEST_SUITE_P(Segments, ProjectionConformance,
                         ::testing::Values(ConformanceCase{
                             "segments", [] { return segments::NewSegmentsProjection(); }}),
                         ConformanceCaseName);

}  // namespace
}  // namespace ihs::projections
