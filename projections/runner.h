// The projection runner: keeps every registered projection up to date with the log, rebuilds one
// from position 0 beside the live one and swaps it in atomically, and serves consistent views of
// their state.
//
// Generations: a projection's state lives in a state family "NAME@G" (store/state_store.h). The
// registry family "projections" names each projection's active generation ("active/NAME").
// A rebuild writes generation G+1 while generation G keeps following the log and serving reads;
// when G+1 has caught up, one write to the registry makes it active, and G is dropped once the
// last reader lets go of it. Inside a generation, the checkpoint (key "\0checkpoint": the next
// position to apply and the projection's version) is written in the same batch as the state it
// covers, so a crash at any moment resumes from a consistent state.
//
// Use: Open, then either Start (one worker thread per projection, following commits: ihsd) or
// CatchUp (in the caller's thread: the ihs command line). Thread safety: all methods are safe for
// concurrent use; Stop (or the destructor) joins the workers.
#ifndef IHS_PROJECTIONS_RUNNER_H_
#define IHS_PROJECTIONS_RUNNER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/log.h"
#include "projections/projection.h"
#include "projections/status.h"
#include "store/event_store.h"

namespace ihs::projections {

inline constexpr char kRegistryFamily[] = "projections";
inline constexpr char kCheckpointKey[] = "\0checkpoint";  // sizeof - 1 = 11 bytes

struct RunnerOptions {
  size_t batch_events = 1000;  // most events one live batch applies
  // Most events one batch applies when catching up or rebuilding (read in chunks of 16,384): the
  // batch's writes are held in memory until it commits.
  size_t rebuild_batch_events = 131072;
  // A rebuild holds the state it builds in memory, up to about this many bytes, and writes it
  // out as sorted files (docs/projections.md "Rebuilds"); past the bound it writes what it has
  // and goes on. 0: it writes out after every few chunks of the log it reads, with one instance.
  size_t rebuild_memory_bytes = size_t{4} << 30;
  // Shards of a rebuild's bulk phase for a projection that takes the ShardedRebuild extension, each
  // applied on its own thread. 0: one per core, at most 8. At most 255.
  size_t rebuild_shards = 0;
  // How much lower than the process's the CPU priority of the workers' and rebuilds' threads is
  // (added to their nice value, 0..19): appends and reads then get the CPU first, and a worker
  // that fell behind applies what it missed in larger batches, at the price of a longer lag
  // (docs/projections.md "Priority", ihsd --projection-nice). 0: the same priority.
  int worker_nice = 0;
  Clock* clock = nullptr;  // lag in seconds; default RealClock()
  LogSink* log = nullptr;  // rebuilds, retries and failures; default DefaultLog() (stderr)
};

// Read access to the active generation of one projection, stable while the object lives: a swap
// after a rebuild does not pull the state from under it. Values are checked: a checksum mismatch
// is kDataLoss (and the runner is told, so that it rebuilds).
class StateView {
 public:
  class Generation;
  StateView(std::shared_ptr<Generation> gen, std::function<void(const absl::Status&)> on_corrupt);
  // A view of state built in memory (a replay): keys to payloads, nothing sealed.
  StateView(std::shared_ptr<const std::map<std::string, std::string>> memory, uint64_t checkpoint);

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) const;
  // Keys in [from, to) in order, payloads checked; visit returns false to stop.
  absl::Status Scan(absl::string_view from, absl::string_view to,
                    const store::StateVisitor& visit) const;
  uint64_t checkpoint() const;

 private:
  absl::Status Corrupt(absl::Status s) const;
  std::shared_ptr<Generation> gen_;
  std::function<void(const absl::Status&)> on_corrupt_;
  std::shared_ptr<const std::map<std::string, std::string>> memory_;
  uint64_t memory_checkpoint_ = 0;
};

class Runner {
 public:
  // Resolves each projection's active generation (creating the first one), and drops the
  // families a crashed rebuild left behind. A stored state of another version is rebuilt by the
  // worker (Start) or by CatchUp. The store must outlive the runner.
  static absl::StatusOr<std::unique_ptr<Runner>> Open(LogAndState store,
                                                      std::vector<ProjectionFactory> factories,
                                                      RunnerOptions options = {});
  // The same over an embedded store's log and state families.
  static absl::StatusOr<std::unique_ptr<Runner>> Open(store::EventStore* store,
                                                      std::vector<ProjectionFactory> factories,
                                                      RunnerOptions options = {});
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // One worker per projection follows the log until Stop.
  void Start();
  void Stop();

  // Applies the log up to its current head to one projection (all when name is empty), in the
  // caller's thread, rebuilding first if the state is of another version or corrupt, then the
  // clock up to the log's watermark (Projection::AdvanceClock). Not while Start's workers run
  // (kFailedPrecondition).
  absl::Status CatchUp(absl::string_view name, const store::ProgressFn& progress = nullptr);

  // Builds a new generation from position 0 to the head in the caller's thread while the live
  // one keeps serving, then swaps it in, and applies the clock (Projection::AdvanceClock) as
  // CatchUp does. kNotFound for an unknown name.
  absl::Status Rebuild(absl::string_view name, const store::ProgressFn& progress = nullptr);
  // The same in a background thread (RPC); kFailedPrecondition if one is already running.
  absl::Status StartRebuild(absl::string_view name);

  std::vector<ProjectionStatus> Status();
  std::vector<std::string> Names() const;

  // The active generation of a projection; kUnavailable while its state is known to be corrupt
  // and a rebuild is under way.
  absl::StatusOr<StateView> View(absl::string_view name);

  // How often the projection's active state has changed (a batch, a clock batch, a swap):
  // returns the count once it exceeds `known`, or when the deadline passes or the runner stops.
  // WaitForChange(name, UINT64_MAX, InfinitePast()) reads it. 0 for an unknown name.
  uint64_t WaitForChange(absl::string_view name, uint64_t known, absl::Time deadline);

  // Waits until the projection has applied the log up to `position` (exclusive); false on
  // timeout or when the runner stops.
  bool WaitFor(absl::string_view name, uint64_t position, absl::Time deadline);

  struct Slot;

 private:
  Runner(LogAndState store, RunnerOptions options);
  absl::StatusOr<Slot*> Find(absl::string_view name) const;
  absl::Status ApplyBatch(Slot& slot, size_t max_events, bool* applied,
                          const std::function<void(uint64_t)>& reached = nullptr);
  // A rebuild is claimed (marked running; kFailedPrecondition if one runs) before it runs.
  absl::Status ClaimRebuild(Slot& slot);
  absl::Status RebuildSlot(Slot& slot, const store::ProgressFn& progress);  // claims and runs
  absl::Status RunClaimedRebuild(Slot& slot, const store::ProgressFn& progress);
  // Fires the projection's timers due before the log's watermark, once it has applied every
  // event before it; `wake`: when the next timer is due (InfiniteFuture: none).
  absl::Status ApplyClock(Slot& slot, absl::Time* wake);
  void Work(Slot& slot);
  // Names the calling thread after its projection and gives it options_.worker_nice.
  void NameAndLowerThisThread(const std::string& name) const;
  void MarkCorrupt(Slot& slot, const absl::Status& status);

  const LogAndState store_;
  const RunnerOptions options_;
  Clock* const clock_;
  LogSink* const log_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_RUNNER_H_
