// The projections this build runs: adding one means writing its class and one line in
// registry.cc. A list made on request, not a global registry: each Runner gets its own.
#ifndef IHS_PROJECTIONS_REGISTRY_H_
#define IHS_PROJECTIONS_REGISTRY_H_

#include <vector>

#include "projections/projection.h"

namespace ihs::projections {

std::vector<ProjectionFactory> AllProjections();

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_REGISTRY_H_
