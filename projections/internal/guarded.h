// Calls into a projection with its exceptions caught: an exception it throws (a Cap'n Proto
// limit, a bad_alloc) becomes an error that the runner reports and retries, instead of ending
// ihsd. The projection drops what it cached, since the throw may have left it half-way.
#ifndef IHS_PROJECTIONS_INTERNAL_GUARDED_H_
#define IHS_PROJECTIONS_INTERNAL_GUARDED_H_

#include <kj/exception.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "projections/projection.h"

namespace ihs::projections::internal {

// Runs `f` (which calls into `projection`); the error if it threw, else OK.
template <typename F>
absl::Status Guarded(Projection& projection, F&& f) {
  kj::Maybe<kj::Exception> thrown = kj::runCatchingExceptions(std::forward<F>(f));
  KJ_IF_MAYBE (e, thrown) {
    projection.Discard();
    return absl::InternalError(
        absl::StrCat("projection ", projection.name(), " threw: ", e->getDescription().cStr()));
  }
  return absl::OkStatus();
}

}  // namespace ihs::projections::internal

#endif  // IHS_PROJECTIONS_INTERNAL_GUARDED_H_
