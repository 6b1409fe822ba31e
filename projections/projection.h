// What a projection is: a deterministic function of the log (DESIGN.md decision 6). The runner
// (projections/runner.h) feeds it events in position order, in batches; everything it writes for
// a batch lands in one WriteBatch of its own state family, together with its checkpoint.
//
// Writing a projection: subclass Projection, keep no state outside the Txn other than caches
// (Flush writes what a batch changed; after a commit a cache must equal the stored state, and
// Discard drops it), and add a factory to projections/registry.cc.
// The same log must give the same bytes: iterate only in deterministic orders, never read the
// wall clock, and look other events up only through Txn::FindEarlierEvent.
//
// Threads: a Projection instance and its Txn are used by one thread at a time; the runner makes
// one instance per worker and one per rebuild.
#ifndef IHS_PROJECTIONS_PROJECTION_H_
#define IHS_PROJECTIONS_PROJECTION_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "store/log_reader.h"
#include "store/state_store.h"
#include "store/stored_event.h"

namespace ihs::projections {

// What projections need of the store: the log they follow and the state families they keep
// their state in. Apart, so that a node of a cluster can follow a partition kept elsewhere
// (issue 29) with its state in its own RocksDB; an embedded store is both (LogAndStateOf).
struct LogAndState {
  store::LogReader* log = nullptr;
  store::StateStore* state = nullptr;
};

// The whole state a rebuild has built so far, held in memory until the runner writes it out as
// sorted files (runner.cc).
class MemState;

// The state of one projection generation while a batch is applied: reads see the batch's own
// writes; nothing reaches the store until the runner commits the batch with its checkpoint.
// Keys are the projection's own, except that keys starting with a 0 byte are the framework's.
// With a MemState (a rebuild's bulk phase), writes go there, and reads look there first.
class Txn {
 public:
  // `horizon`: see horizon(); 0 for a live batch.
  Txn(LogAndState store, std::string family, MemState* mem = nullptr, uint64_t horizon = 0);

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);
  void Put(absl::string_view key, std::string value);
  void Delete(absl::string_view key);

  // A rebuild's bulk phase: the state is in memory (a MemState) until the runner writes it out,
  // and horizon() > 0.
  bool bulk() const { return mem_ != nullptr && horizon_ > 0; }
  // For a projection that holds values of its own until Flush, and writes most keys once. Keep
  // copies bytes to memory that lasts until the bulk phase's next write-out and counts against
  // its bound (outside a bulk phase, until Finish). PutInOrder writes a kept value under a key
  // that is greater than every key it was given since the last write-out, and that no Put or
  // Delete names: in a bulk phase such keys are written out as the sorted run they are, and
  // are neither indexed nor sorted, and Get does not see them. Outside a bulk phase it is Put.
  absl::string_view Keep(absl::string_view bytes);
  void PutInOrder(absl::string_view key, absl::string_view kept);

  // The event with this id if the log holds it before the event being applied; nullopt
  // otherwise, so that the answer depends only on the log's prefix (content stays sealed).
  absl::StatusOr<std::optional<store::StoredEvent>> FindEarlierEvent(absl::string_view id);

  // A rebuild's bulk phase applies every event below the horizon before anything reads the
  // state, which is then written at the horizon or later: a projection may settle an effect of
  // a later event (below the horizon) when it applies an earlier one, as long as the state at
  // the horizon comes out the same. 0: a live batch, whose state is read at its checkpoint.
  uint64_t horizon() const { return horizon_; }

  // The event with this id if the log holds it at or after the event being applied and below
  // the horizon; nullopt otherwise (always in a live batch).
  absl::StatusOr<std::optional<store::StoredEvent>> FindLaterEvent(absl::string_view id);

  // The position of the event being applied.
  uint64_t position() const { return position_; }
  void set_position(uint64_t p) { position_ = p; }

  // The writes of the batch, each value with its checksum (runner.cc), and the checkpoint.
  store::StateBatch Finish(uint64_t checkpoint, uint32_t version);
  size_t pending() const { return writes_.size(); }

 private:
  // The event with this id if its position is in [from, to).
  absl::StatusOr<std::optional<store::StoredEvent>> FindEventIn(absl::string_view id, uint64_t from,
                                                                uint64_t to);

  const LogAndState store_;
  const std::string family_;
  MemState* const mem_;
  const uint64_t horizon_;
  uint64_t position_ = 0;
  absl::flat_hash_map<std::string, std::optional<std::string>> writes_;
  std::deque<std::string> kept_;  // Keep's, outside a bulk phase
};

class Projection {
 public:
  virtual ~Projection() = default;
  // 1-40 bytes of [a-z0-9_]: names the state families ("NAME@GENERATION") and the commands.
  virtual absl::string_view name() const = 0;
  // Bump when Apply's output changes: a stored state of another version is rebuilt.
  virtual uint32_t version() const = 0;
  // Applies one event. An error stops the worker (kDataLoss: the state is corrupt and rebuilt).
  virtual absl::Status Apply(const store::StoredEvent& event, Txn& txn) = 0;
  // Before the runner writes: after a batch's last event (before its commit), and in a
  // rebuild's bulk phase before each write-out. Write what was cached and changed.
  virtual absl::Status Flush(Txn& txn) {
    (void)txn;
    return absl::OkStatus();
  }
  // A projection whose Apply reads and writes only state that belongs to the event's stream, and
  // learns what it needs of other streams from the log or through Observe, says true: then a
  // rebuild's bulk phase runs one instance per shard of the streams, on its own core, with its
  // own Txn. Each instance sees every event in position order, Apply for its streams and
  // Observe for the others; the shards' states are merged when written out.
  virtual bool sharded_by_stream() const { return false; }
  // In a sharded bulk phase: an event of a stream that another shard applies, if Observes(it).
  virtual void Observe(const store::StoredEvent& event) { (void)event; }
  // Whether Observe wants to see this event. A pure function of the event: the runner asks it
  // on the thread that reads the log, while the instance applies other events.
  virtual bool Observes(const store::StoredEvent& event) const {
    (void)event;
    return true;
  }
  // Hints, in a rebuild's bulk phase, a few events before Apply(event) of an event this instance
  // applies: the projection may start to fetch what Apply will read for it, so that Apply does
  // not wait for memory. Stage 0 comes first, stage 1 a few events later, when what stage 0
  // fetched has arrived. Neither changes what the projection holds or writes.
  virtual void Prefetch(const store::StoredEvent& event, int stage) const {
    (void)event;
    (void)stage;
  }
  // In a sharded bulk phase: two shards wrote the same key (neither deleted it). Returns the
  // value that stands for both, as one instance applying every event would have written it.
  virtual absl::StatusOr<std::string> MergeShards(absl::string_view key, std::string a,
                                                  std::string b) {
    (void)a;
    (void)b;
    return absl::InternalError(absl::StrCat("two shards of projection ", name(),
                                            " wrote the same key ", absl::CHexEscape(key)));
  }

  // Drop every cache: the next batch starts again from the stored state. The runner calls it
  // when a batch failed and was not committed, and when a worker has reached the head (so that
  // caches help catch-ups and rebuilds without staying in memory while ihsd runs).
  virtual void Discard() {}
};

using ProjectionFactory = std::function<std::unique_ptr<Projection>()>;

// Stored values carry a checksum so that corrupt state is detected, reported and rebuilt instead
// of served. value := payload | checksum: 8 bytes (SipHash-2-4 of key | payload).
std::string Seal(absl::string_view key, std::string payload);
// The payload, or kDataLoss naming the key.
absl::StatusOr<absl::string_view> Unseal(absl::string_view family, absl::string_view key,
                                         absl::string_view value);

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_PROJECTION_H_
