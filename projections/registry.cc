#include "projections/registry.h"

#include "projections/community/community.h"
#include "projections/identity/identity.h"
#include "projections/segments/segments.h"
#include "projections/timeline/timeline.h"

namespace ihs::projections {

std::vector<ProjectionFactory> AllProjections() {
  return {
      [] { return timeline::NewTimelineProjection(); },
      [] { return identity::NewIdentityProjection(); },
      [] { return segments::NewSegmentsProjection(); },
      [] { return community::NewCommunityProjection(); },
  };
}

}  // namespace ihs::projections
