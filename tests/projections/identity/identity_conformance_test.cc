// Identity runs the conformance suite every projection runs (tests/projections/conformance.h).
#include "projections/identity/identity.h"
#include "tests/projections/conformance.h"

namespace ihs::projections {
namespace {

INSTANTIATE_TEST_SUITE_P(Identity, ProjectionConformance,
                         ::testing::Values(ConformanceCase{
                             "identity", [] { return identity::NewIdentityProjection(); }}),
                         ConformanceCaseName);

}  // namespace
}  // namespace ihs::projections
