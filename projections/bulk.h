// The opt-in extension of a projection for the sharded bulk phase of a rebuild
// (docs/projections.md "Rebuilds"). A rebuild holds the state it builds in memory and writes it
// out as sorted files; a projection without this extension is applied there by one instance,
// one that takes it by one instance per shard of the streams, each on its own core: how the
// timeline rebuilds ten million events in seconds.
//
// Two parts: ShardedRebuild, which the projection implements (Projection::sharded_rebuild()
// returns it), and BulkPhase, which the runner offers through Txn::bulk() while it applies
// events below a rebuild's horizon.
#ifndef IHS_PROJECTIONS_BULK_H_
#define IHS_PROJECTIONS_BULK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/log_reader.h"
#include "store/stored_event.h"

namespace ihs::projections {

class MemState;
class Txn;

// A projection whose Apply reads and writes only state that belongs to the event's shard (by
// default its stream; ShardOf says otherwise), and learns what it needs of other shards from the
// log or through Observe: a rebuild's bulk phase runs one instance per shard, on its own core,
// with its own Txn. Each instance sees every event in position order, Apply for its shard's and
// Observe for the others; the shards' states are merged when written out.
class ShardedRebuild {
 public:
  virtual ~ShardedRebuild() = default;
  // The fewest shards worth their cost (a projection whose shards must read the log first, or
  // hold more, may gain nothing from two): with fewer, the rebuild applies the log with one
  // instance.
  virtual size_t min_shards() const { return 2; }
  // Before a bulk phase of more than one shard, on shard 0's instance: `shards` are every
  // shard's instance in order (this one first) for the log from `from` to `horizon`, which it
  // may read (to learn which streams must share a shard).
  virtual absl::Status PrepareShards(store::LogReader& log, uint64_t from, uint64_t horizon,
                                     const std::vector<ShardedRebuild*>& shards) {
    (void)log, (void)from, (void)horizon, (void)shards;
    return absl::OkStatus();
  }
  // The shard that applies the event, below `shards`, or kEveryShard: each instance applies it.
  // A pure function of the event and of what PrepareShard learnt: the runner asks it on the
  // thread that reads the log, of shard 0's instance. The default: a hash of the stream id.
  static constexpr size_t kEveryShard = SIZE_MAX;
  virtual size_t ShardOf(const store::StoredEvent& event, size_t shards) const;
  // An event that another shard applies, if Observes(it), with this shard's Txn.
  virtual absl::Status Observe(const store::StoredEvent& event, Txn& txn) {
    (void)event, (void)txn;
    return absl::OkStatus();
  }
  // Whether Observe wants to see this event. A pure function of the event: the runner asks it on
  // the thread that reads the log, while the instance applies other events.
  virtual bool Observes(const store::StoredEvent& event) const {
    (void)event;
    return true;
  }
  // Two shards wrote the same key (neither deleted it). Returns the value that stands for both,
  // as one instance applying every event would have written it. kUnimplemented by default: the
  // runner then names the projection and the key.
  virtual absl::StatusOr<std::string> MergeShards(absl::string_view key, std::string a,
                                                  std::string b);
  // Before each write-out of a bulk phase of more than one shard, after every shard applied the
  // same events and before their Flush, on one thread: `shards` are every shard's instance in
  // order (this is shard 0's), to settle what depends on all of them.
  virtual absl::Status BeforeWriteOut(const std::vector<ShardedRebuild*>& shards) {
    (void)shards;
    return absl::OkStatus();
  }
};

// What a Txn offers in a rebuild's bulk phase (Txn::bulk()), whose state is in memory until the
// runner writes it out.
class BulkPhase {
 public:
  BulkPhase(Txn* txn, MemState* mem, uint64_t horizon) : txn_(txn), mem_(mem), horizon_(horizon) {}

  // Every event below the horizon is applied before anything reads the state, which is then
  // written at the horizon or later: a projection may settle an effect of a later event (below
  // the horizon) when it applies an earlier one, as long as the state at the horizon comes out
  // the same.
  uint64_t horizon() const { return horizon_; }

  // The event with this id if the log holds it at or after the event being applied and below the
  // horizon; nullopt otherwise.
  absl::StatusOr<std::optional<store::StoredEvent>> FindLaterEvent(absl::string_view id);

  // For a projection that holds values of its own until Flush, and writes most keys once. Keep
  // copies bytes to memory that lasts until the next write-out and counts against its bound.
  // PutInOrder writes a kept value under a key that is greater than every key it was given since
  // the last write-out, and that no Put or Delete names: such keys are written out as the sorted
  // run they are, and are neither indexed nor sorted, and Txn::Get does not see them.
  absl::string_view Keep(absl::string_view bytes);
  void PutInOrder(absl::string_view key, absl::string_view kept);

 private:
  Txn* const txn_;
  MemState* const mem_;
  const uint64_t horizon_;
};

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_BULK_H_
