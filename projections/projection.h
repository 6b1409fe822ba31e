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

#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/log_reader.h"
#include "store/state_store.h"
#include "store/stored_event.h"

namespace ihs::projections {

// What projections need of the store: the log they follow and the state families they keep
// their state in. Apart, so that a node of a cluster can follow a partition kept elsewhere
// (issue 29) with its state in its own RocksDB; an embedded store is both (Runner::Open).
struct LogAndState {
  store::LogReader* log = nullptr;
  store::StateStore* state = nullptr;
};

// The whole state a rebuild has built so far, held in memory until the runner writes it out as
// sorted files (runner.cc).
class MemState;
class BulkPhase;       // projections/bulk.h
class ShardedRebuild;  // projections/bulk.h

// The state of one projection generation while a batch is applied: reads see the batch's own
// writes; nothing reaches the store until the runner commits the batch with its checkpoint.
// Keys are the projection's own, except that keys starting with a 0 byte are the framework's.
// With a MemState (a rebuild's bulk phase), writes go there, and reads look there first.
class Txn {
 public:
  // With a MemState and a horizon > 0: a rebuild's bulk phase (bulk()); `horizon` 0 for a live
  // batch.
  Txn(LogAndState store, std::string family, MemState* mem = nullptr, uint64_t horizon = 0);
  ~Txn();
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key);
  void Put(absl::string_view key, std::string value);
  void Delete(absl::string_view key);
  // The keys in [from, to) in order, as Get would see them (the batch's own writes included),
  // until `visit` returns false. The batch's writes in the range are sorted first: meant for
  // the rare walk (a new segment visits every person), not for each event.
  absl::Status Scan(absl::string_view from, absl::string_view to, const store::StateVisitor& visit);

  // The event with this id if the log holds it before the event being applied; nullopt
  // otherwise, so that the answer depends only on the log's prefix (content stays sealed).
  absl::StatusOr<std::optional<store::StoredEvent>> FindEarlierEvent(absl::string_view id);

  // The log's key for blind indexes (store::LogReader::BlindIndexKey).
  absl::StatusOr<std::string> BlindIndexKey() { return store_.log->BlindIndexKey(); }

  // In a rebuild's bulk phase, what it offers (projections/bulk.h); nullptr otherwise.
  BulkPhase* bulk() { return bulk_.get(); }

  // The position of the event being applied.
  uint64_t position() const { return position_; }
  void set_position(uint64_t p) { position_ = p; }

  // The writes of the batch, each value with its checksum (runner.cc), and the checkpoint.
  store::StateBatch Finish(uint64_t checkpoint, uint32_t version);
  size_t pending() const { return writes_.size(); }

 private:
  friend class BulkPhase;
  // The event with this id if its position is in [from, to).
  absl::StatusOr<std::optional<store::StoredEvent>> FindEventIn(absl::string_view id, uint64_t from,
                                                                uint64_t to);

  const LogAndState store_;
  const std::string family_;
  MemState* const mem_;
  std::unique_ptr<BulkPhase> bulk_;
  uint64_t position_ = 0;
  absl::flat_hash_map<std::string, std::optional<std::string>> writes_;
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
  // Whether Apply reads personal content: the runner then opens it (StoredEvent::content();
  // content_state() says when it cannot be: erased or expired). What a projection derives from
  // content must go when the content goes (an erasureRequest or contentExpiry event), so that a
  // rebuild, which can no longer open it, gives the same state.
  virtual bool reads_content() const { return false; }
  // A rebuild's bulk phase (one instance or a shard) calls Prefetch(event, s) for s = 0 ..
  // prefetch_stages() - 1, 2 * (prefetch_stages() - s) events before Apply(event), on the thread
  // that applies: the projection may start to fetch what Apply will read for the event, a step
  // of a chain of pointers at each stage (what stage s fetched has arrived by stage s + 1), so
  // that Apply does not wait for memory. It changes nothing the projection holds or writes.
  virtual int prefetch_stages() const { return 0; }
  virtual void Prefetch(const store::StoredEvent& event, int stage) const {
    (void)event;
    (void)stage;
  }
  // The opt-in extension for a rebuild's sharded bulk phase (projections/bulk.h), or nullptr:
  // a rebuild then applies the log with one instance.
  virtual ShardedRebuild* sharded_rebuild() { return nullptr; }

  // The clock, for a projection whose state changes as time passes (segments: a window slides
  // past a touchpoint). NextTimer says the earliest moment (µs since the epoch) a timer of its
  // state is due, kNoTimer if none. AdvanceClock fires every timer due before `until`; the
  // runner calls it once the log holds every event recorded before `until`
  // (store::LogReader::Watermark), in a batch of its own that keeps the checkpoint. Apply must
  // fire the timers due before an event's recordedAt before it applies the event, so that a
  // rebuild, which never calls AdvanceClock, gives the same state.
  static constexpr int64_t kNoTimer = INT64_MAX;
  virtual absl::StatusOr<int64_t> NextTimer(Txn& txn) {
    (void)txn;
    return kNoTimer;
  }
  virtual absl::Status AdvanceClock(int64_t until, Txn& txn) {
    (void)until;
    (void)txn;
    return absl::OkStatus();
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
