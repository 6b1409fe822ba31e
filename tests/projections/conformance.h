// The conformance suite every projection runs: what the runner promises of any projection's
// state, checked on the projection's own factory. A projection's test file instantiates it:
//
//   INSTANTIATE_TEST_SUITE_P(Timeline, ProjectionConformance,
//                            ::testing::Values(ConformanceCase{"timeline", &NewTimeline}),
//                            ConformanceCaseName);
//
// and links ihs_projection_conformance (tests/CMakeLists.txt). The cases, each on a generated
// history (workload/):
//   - the state kept live while events arrive equals a rebuild from position 0, byte for byte;
//   - a rebuild sharded over several threads equals one of one shard, and a catch-up in batches;
//   - a tiny memory bound (a write-out after every chunk of the log) changes no byte;
//   - a process killed with SIGKILL at random moments resumes to the state a rebuild gives;
//   - a batch that failed half-way leaves no trace (the batch is applied again from the store).
#ifndef IHS_TESTS_PROJECTIONS_CONFORMANCE_H_
#define IHS_TESTS_PROJECTIONS_CONFORMANCE_H_

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "projections/projection.h"

namespace ihs::projections {

struct ConformanceCase {
  std::string name;  // the projection's name()
  ProjectionFactory factory;
};

inline std::ostream& operator<<(std::ostream& os, const ConformanceCase& c) { return os << c.name; }

inline std::string ConformanceCaseName(const ::testing::TestParamInfo<ConformanceCase>& info) {
  return info.param.name;
}

class ProjectionConformance : public ::testing::TestWithParam<ConformanceCase> {};

}  // namespace ihs::projections

#endif  // IHS_TESTS_PROJECTIONS_CONFORMANCE_H_
