// The ihs event log: every touchpoint appended once, as an immutable event, to RocksDB.
//
// This header is the log: append, read, head, wait for a commit, find an event, stream info and
// stats. The store's other faces have headers of their own, each a set of calls on an
// EventStore, as leveldb keeps its db.h to the log and rocksdb::Checkpoint apart:
//   store/log_reader.h   what a follower of the log needs (EventStore is one)
//   store/state_store.h  state families, where projections/ keeps derived state
//   store/audit.h        the RFC 9162 tree: roots, signed heads, proofs, Verify
//   store/governance.h   erasure, legal holds, retention
//   store/backup.h       a consistent copy
//   store/tlog.h         RFC 9162 and C2SP signed notes, with no store behind them
//
// An EventStore owns one data directory:
//   DIR/db/          the RocksDB database (column families: see docs/format.md)
//   DIR/master.key   default place of the master key that wraps the per-party data keys; it may
//                    (and in production should) live elsewhere: Options::master_key_path
//   DIR/signing.key  the seed of the Ed25519 key that signs tree heads (docs/audit.md), made at
//                    the first open for writing; elsewhere with Options::signing_key_path
//
// Guarantees:
// - Append/AppendMulti are atomic (all events of one call land, or none), acknowledged only after
//   the WAL sync of the group that carried them (unless Options::sync is false), and idempotent
//   by event id.
// - Concurrent appends are served by one group-commit writer: one sync serves every append that
//   was waiting (docs/impl.md).
// - Personal content (schema Event.content) is sealed with a data key of the stream (one per
//   retention class and year: docs/format.md) before it is written; reads open it again when
//   asked.
// - Every event is a leaf of an RFC 9162 Merkle tree over the global log; its root costs
//   O(log n) reads (store/audit.h).
//
// Thread safety: an EventStore is safe for concurrent use without external locking. Results are
// plain values owned by the caller. A second EventStore on another directory in the same process
// just works; a second one on the same directory fails to open (kFailedPrecondition).
#ifndef IHS_STORE_EVENT_STORE_H_
#define IHS_STORE_EVENT_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/log.h"
#include "store/log_reader.h"
#include "store/stored_event.h"
#include "store/types.h"

namespace ihs::store {

struct StoreStats {
  uint64_t event_count = 0;  // the log's size: the next position
  uint64_t stream_count = 0;
  uint64_t key_count = 0;   // data keys (of streams' content classes; not erased or expired)
  uint64_t disk_bytes = 0;  // live SST + WAL bytes reported by RocksDB
  std::string root_hash;    // Merkle root over the whole log, 32 bytes
  uint32_t format_version = 0;
  // Since open.
  uint64_t appends = 0;        // calls that wrote
  uint64_t syncs = 0;          // write groups (one WAL write + sync each)
  uint64_t largest_group = 0;  // most appends in one group
};

// What ihsd's /metrics shows of the store (docs/operations.md "Metrics"): counters since open and
// sizes, cheap to read (unlike Stats(), no scan of the store and no Merkle root).
struct StoreMetrics {
  // Upper bounds of the histograms' buckets (Prometheus `le`); larger values count in +Inf only.
  static constexpr std::array<double, 11> kGroupBounds = {1,  2,   4,   8,   16,  32,
                                                          64, 128, 256, 512, 1024};
  static constexpr std::array<double, 12> kWriteBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  uint64_t events = 0;  // the log's size
  uint64_t streams = 0;
  uint64_t disk_bytes = 0;  // live SST + WAL bytes, all column families
  // Since open.
  uint64_t appends = 0;          // calls that wrote
  uint64_t appended_events = 0;  // the events they wrote
  uint64_t groups = 0;           // write groups: one WAL write (and sync) each
  // Per bucket, not cumulative: groups of at most kGroupBounds[i] appends (and more than the
  // bound before); the same for the seconds of a group's WAL write and sync.
  std::array<uint64_t, kGroupBounds.size()> group_buckets{};
  std::array<uint64_t, kWriteBounds.size()> write_buckets{};
  double write_seconds = 0;  // their sum
};

// Hooks through which tests force races. Called on the writer's thread; never set in production.
struct TestHooks {
  // A writer became group leader, before it collects its group.
  std::function<void()> on_group_leader;
  // A writer queued behind another and is about to wait. Called with the writer queue's lock
  // held: it must not call into the store.
  std::function<void()> on_queued;
};

struct Options {
  std::string path;               // the data directory
  std::string master_key_path;    // empty: DIR/master.key
  std::string signing_key_path;   // empty: DIR/signing.key
  bool create_if_missing = true;  // create the store (and a new master key) if DIR is empty
  // false: appends are acknowledged before their WAL is synced. Only for bulk loads that are
  // re-run from the start after a crash; Open says so on stderr.
  bool sync = true;
  // With sync false: the caller makes appends durable itself, with SyncLog, and can redo what a
  // crash loses (a cluster's replica, which applies its partition's log again from its mark:
  // store/cluster/replica.h). Open does not warn then.
  bool synced_by_caller = false;
  bool read_only = false;  // open for reading only (another process may write)
  // true (ihs import): a new store that one process fills from the start and throws away if
  // anything fails. Appends skip the WAL, and the lookups an append makes (stream metadata, data
  // keys, event ids) are answered from memory, which holds every stream's metadata and every event
  // id appended since open (about 150 bytes per stream and 40 per event). Nothing is durable until
  // Flush() returns. Open refuses a store that holds events.
  bool bulk_load = false;
  Clock* clock = nullptr;  // recordedAt comes from here; default RealClock()
  LogSink* log = nullptr;  // what an operator should know; default DefaultLog() (stderr)
  TestHooks hooks;
};

// An AppendMulti checked and encoded ahead by EventStore::PrepareAppends, for AppendPrepared to
// commit once. It points into the StreamAppends it was made from: they must outlive it.
class PreparedAppends {
 public:
  virtual ~PreparedAppends() = default;
};

class EventStore : public LogReader {
 public:
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(const Options& options);

  EventStore() = default;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  ~EventStore() override = default;

  // Appends events to one stream. Errors:
  //   kInvalidArgument   a bad event (the message names the event index and the field)
  //   kAborted           wrong expected version (ConflictCurrentVersion tells the current one)
  //   kAlreadyExists     an event id is stored with other content, or only part of the batch is
  //   kUnavailable       the store failed an earlier write and must be reopened
  virtual absl::StatusOr<AppendResult> Append(const StreamAppend& append) = 0;

  // One atomic append across several streams, each with its own expected version: one conflict
  // fails all. A stream may appear once.
  virtual absl::StatusOr<std::vector<AppendResult>> AppendMulti(
      const std::vector<StreamAppend>& appends) = 0;

  // Appends taken one after another, in this order, exactly as if each were its own AppendMarked
  // with the clock at `recorded_at` (µs; the store raises it to the last event's time): each is
  // checked against the log as those before it left it, and a refusal fails only itself. But
  // they are written in one atomic batch, with one sync. A cluster's replica applies a batch of
  // its partition's messages so (store/cluster/replica.h). The outer status is the store's
  // trouble (then nothing was written); the inner ones are each append's answer.
  struct OrderedAppend {
    StreamAppend append;
    int64_t recorded_at = 0;
    std::string mark_key;  // empty: no mark
    std::string mark_value;
  };
  virtual absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      const std::vector<OrderedAppend>& appends) {
    (void)appends;
    return absl::UnimplementedError("this store cannot append in order");
  }

  // Makes every append so far durable (the WAL synced), for stores opened with sync false.
  virtual absl::Status SyncLog() { return absl::UnimplementedError("this store cannot sync"); }

  // Append, and in the same atomic write a caller's mark: a small value under `mark_key`, kept
  // beside the log's own metadata (not in the log, not in the tree). Written only when the append
  // writes events: a repeat or a refusal leaves the mark as it was. A cluster's replica marks the
  // last partition message it applied so, which a crash cannot separate from the events
  // (store/cluster/replica.h). Keys are at most 128 bytes, values at most 4 KiB.
  virtual absl::StatusOr<AppendResult> AppendMarked(const StreamAppend& append,
                                                    absl::string_view mark_key,
                                                    absl::string_view mark_value) {
    (void)append, (void)mark_key, (void)mark_value;
    return absl::UnimplementedError("this store keeps no marks");
  }
  // The value of a mark, or nullopt if none was written.
  virtual absl::StatusOr<std::optional<std::string>> ReadMark(absl::string_view mark_key) {
    (void)mark_key;
    return absl::UnimplementedError("this store keeps no marks");
  }

  // AppendMulti in two steps, so that they can run on two threads: first what AppendMulti does on
  // the caller's thread (the checks of every event, canonical bytes, digests, sealing where the
  // party's data key exists), then the commit. PrepareAppends refuses bad input as AppendMulti
  // does, and writes nothing; AppendPrepared answers as AppendMulti (a conflict, a repeat ...),
  // and kFailedPrecondition for a batch committed already. ihs import prepares a chunk on its
  // decoding thread while the store commits the one before.
  virtual absl::StatusOr<std::unique_ptr<PreparedAppends>> PrepareAppends(
      const std::vector<StreamAppend>& appends) = 0;
  virtual absl::StatusOr<std::vector<AppendResult>> AppendPrepared(PreparedAppends& prepared) = 0;

  // Up to max_count events of a stream starting at from_version, forward or backward
  // (backward from UINT64_MAX starts at the last event). kNotFound if the stream does not exist.
  virtual absl::StatusOr<std::vector<StoredEvent>> ReadStream(absl::string_view stream,
                                                              uint64_t from_version,
                                                              size_t max_count,
                                                              ReadDirection direction,
                                                              const ReadOptions& options = {}) = 0;

  virtual absl::StatusOr<StreamInfo> GetStreamInfo(absl::string_view stream) = 0;

  virtual absl::StatusOr<StoreStats> Stats() = 0;
  virtual StoreMetrics Metrics() = 0;

  // Writes what is appended so far into synced table files (every memtable flushed). Appends are
  // durable without it; those of a store opened with bulk_load only after it.
  virtual absl::Status Flush() = 0;

  // From LogReader: Head(), WaitForCommit(), ReadAll() and FindEvent() over the global log.
};

}  // namespace ihs::store

#endif  // IHS_STORE_EVENT_STORE_H_
