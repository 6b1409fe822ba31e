#include "projections/registry.h"

#include "projections/timeline/timeline.h"

namespace ihs::projections {

std::vector<ProjectionFactory> AllProjections() {
  return {
      [] { return timeline::NewTimelineProjection(); },
  };
}

}  // namespace ihs::projections
