// The resolver: appends the links identity resolution decided. For every pair the identity
// projection holds above the threshold (pending), an identityLink on "$identity" with the score,
// the clues and sourceSystem "ihs-resolver", under an id that is a function of the pair
// (ResolverEventId), so that it lands once however often it is tried, across crashes and
// restarts; an operator's unlink of the pair stays in force, because the pair's link has been
// appended already and is not appended again.
//
// ihsd runs one (Start); `ihs identity resolve --data DIR` runs passes until nothing is pending.
#ifndef IHS_PROJECTIONS_IDENTITY_RESOLVER_H_
#define IHS_PROJECTIONS_IDENTITY_RESOLVER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/log.h"
#include "projections/follower.h"
#include "projections/runner.h"
#include "store/event_store.h"

namespace ihs::projections::identity {

struct ResolverReport {
  uint64_t appended = 0;  // links appended
  uint64_t present = 0;   // links the log held already (an earlier try, or another resolver)
  uint64_t passes = 0;
};

class Resolver {
 public:
  // The store and runner (which runs the identity projection) must outlive the resolver.
  Resolver(store::EventStore& store, Runner& runner, LogSink* log = DefaultLog());
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Follows the projection on a thread of its own until Stop: after every change of the log it
  // waits for the identity projection to apply it, then appends what is pending.
  void Start();
  void Stop();

  // One pass over the pending pairs of the projection as it stands (call CatchUp first when no
  // worker runs).
  absl::StatusOr<ResolverReport> RunOnce();
  // Catches the projection up and runs passes until none appends (a link can make other pairs
  // pending), at most `max_passes`.
  absl::StatusOr<ResolverReport> RunUntilSettled(int max_passes = 32);

 private:
  store::EventStore& store_;
  Runner& runner_;
  Follower follower_;
};

}  // namespace ihs::projections::identity

#endif  // IHS_PROJECTIONS_IDENTITY_RESOLVER_H_
