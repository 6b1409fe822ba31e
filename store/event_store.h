// The ihs event log: every touchpoint appended once, as an immutable event, to RocksDB.
//
// This is the header other folders include from store/, with store/tlog.h (RFC 9162 and the
// signed heads) and store/audit.h (an auditor's checks over a store). An EventStore owns one
// data directory:
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
//   retention class and year: docs/format.md) before it is
//   written; reads open it again when asked.
// - Every event is a leaf of an RFC 9162 Merkle tree over the global log; Root(n) costs O(log n).
//
// - Derived views (projections/) keep their state in state families: column families of their
//   own, written and read through this header (WriteState, GetState, ScanState), so that
//   projections/ never opens RocksDB itself.
//
// Thread safety: an EventStore is safe for concurrent use without external locking. Results are
// plain values owned by the caller. A second EventStore on another directory in the same process
// just works; a second one on the same directory fails to open (kFailedPrecondition).
#ifndef IHS_STORE_EVENT_STORE_H_
#define IHS_STORE_EVENT_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "schema/event.capnp.h"
#include "store/tlog.h"
#include "store/types.h"

namespace ihs::store {

// One event as stored. Owns its bytes and the reader over them together, so a reader can never
// dangle. Movable, not copyable.
class StoredEvent {
 public:
  StoredEvent(StoredEvent&&) noexcept;
  StoredEvent& operator=(StoredEvent&&) noexcept;
  ~StoredEvent();

  uint64_t position() const;
  // The stored event: content sealed, store-set fields filled in.
  schema::Event::Reader event() const;
  // The exact stored bytes, which the Merkle leaf hash covers.
  absl::string_view bytes() const;
  ContentState content_state() const;
  // Valid when content_state() == kOpen.
  schema::Content::Reader content() const;

  // Hints for a reader that walks many events in turn, given some events before it reads this
  // one: each event lies in memory of its own, and reading one that is not in the cache waits
  // for memory several times over. PrefetchHandle starts to fetch the event's handle;
  // PrefetchRecord, given once the handle has arrived (a few events later), its record and the
  // reader over it. Neither changes anything.
  void PrefetchHandle() const;
  void PrefetchRecord() const;

  struct Rep;
  explicit StoredEvent(std::unique_ptr<Rep> rep);

 private:
  std::unique_ptr<Rep> rep_;
};

struct ReadOptions {
  bool open_content = true;  // decrypt personal content with the stream's data key
  // ReadAll stops after the event that brings the stored bytes read to this many (0: no bound),
  // so that a reader can bound what one read holds in memory; at least one event is read.
  size_t max_bytes = 0;
};

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

class RetentionPolicy;  // store/retention.h
// The system stream of retention runs' events.
inline constexpr char kRetentionStream[] = "$retention";

struct RetentionReport {
  uint64_t parties = 0;                  // whose content expired
  uint64_t classes = 0;                  // data keys deleted (or, in a dry run, to delete)
  std::vector<std::string> held;         // parties with expired content, left alone: under hold
  std::optional<uint64_t> run_position;  // the retentionRun event (none in a dry run)
};

// Progress of a long operation: done out of total (total may grow).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct VerifyReport {
  uint64_t events_checked = 0;
  std::string root_hash;  // recomputed root over the events checked
};

// Hooks through which tests force races. Called on the writer's thread; never set in production.
struct TestHooks {
  // A writer became group leader, before it collects its group.
  std::function<void()> on_group_leader;
  // A writer queued behind another and is about to wait. Called with the writer queue's lock
  // held: it must not call into the store.
  std::function<void()> on_queued;
};

// Puts and deletes for one state family, applied atomically by EventStore::WriteState.
class StateBatch {
 public:
  struct Op {
    std::string key;
    std::optional<std::string> value;  // nullopt: delete the key
  };
  void Put(std::string key, std::string value) {
    ops_.push_back({std::move(key), std::move(value)});
  }
  void Delete(std::string key) { ops_.push_back({std::move(key), std::nullopt}); }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  const std::vector<Op>& ops() const { return ops_; }
  void Clear() { ops_.clear(); }

 private:
  std::vector<Op> ops_;
};

// A file of state for EventStore::IngestState, written outside the memtable and the WAL: a bulk
// load, for state that is new as a whole (a rebuild). One thread at a time per file; several
// files may be written at once on different threads.
class StateFile {
 public:
  virtual ~StateFile() = default;
  // Keys strictly ascending across Put and Delete; kInvalidArgument otherwise.
  virtual absl::Status Put(absl::string_view key, absl::string_view value) = 0;
  virtual absl::Status Delete(absl::string_view key) = 0;
  virtual uint64_t entries() const = 0;
};

// Called for each key of a scan, in key order; returning false ends the scan.
using StateVisitor = std::function<bool(absl::string_view key, absl::string_view value)>;

// A state family's name: 1 to 64 bytes of [a-z0-9_.@-].
inline constexpr size_t kMaxStateFamilyName = 64;

struct Options {
  std::string path;               // the data directory
  std::string master_key_path;    // empty: DIR/master.key
  std::string signing_key_path;   // empty: DIR/signing.key
  bool create_if_missing = true;  // create the store (and a new master key) if DIR is empty
  // false: appends are acknowledged before their WAL is synced. Only for bulk loads that are
  // re-run from the start after a crash; Open says so on stderr.
  bool sync = true;
  bool read_only = false;  // open for reading only (another process may write)
  Clock* clock = nullptr;  // recordedAt comes from here; default RealClock()
  TestHooks hooks;
};

class EventStore {
 public:
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(const Options& options);

  EventStore() = default;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  virtual ~EventStore() = default;

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

  // Up to max_count events of a stream starting at from_version, forward or backward
  // (backward from UINT64_MAX starts at the last event). kNotFound if the stream does not exist.
  virtual absl::StatusOr<std::vector<StoredEvent>> ReadStream(absl::string_view stream,
                                                              uint64_t from_version,
                                                              size_t max_count,
                                                              ReadDirection direction,
                                                              const ReadOptions& options = {}) = 0;

  // Up to max_count events of the global log from from_position, in position order.
  virtual absl::StatusOr<std::vector<StoredEvent>> ReadAll(uint64_t from_position, size_t max_count,
                                                           const ReadOptions& options = {}) = 0;

  virtual absl::StatusOr<StreamInfo> GetStreamInfo(absl::string_view stream) = 0;

  // The log's size: the position the next event will get. Only acknowledged events count.
  virtual uint64_t Head() = 0;

  // Blocks until the log's size exceeds `known_head`, the deadline passes or the store closes;
  // returns the size then. Costs nothing while idle (a condition variable).
  virtual uint64_t WaitForCommit(uint64_t known_head, absl::Time deadline) = 0;

  // The RFC 9162 Merkle tree hash over the first `size` events (32 bytes); O(log size) reads.
  // kOutOfRange if size > Head().
  virtual absl::StatusOr<std::string> Root(uint64_t size) = 0;

  // Recomputes every leaf hash from the stored bytes and every stored subtree, and checks the
  // stream index. kDataLoss names the first position whose bytes no longer match.
  virtual absl::StatusOr<VerifyReport> Verify(const ProgressFn& progress = nullptr) = 0;

  virtual absl::StatusOr<StoreStats> Stats() = 0;

  // The position of the acknowledged event with this id (16 bytes), or nullopt.
  virtual absl::StatusOr<std::optional<uint64_t>> FindEvent(absl::string_view event_id) = 0;

  // --- Audit: signed tree heads and proofs (docs/audit.md, RFC 9162) ---------------------------
  // kFailedPrecondition if the store has no signing key: a read-only open of a store that was
  // never opened for writing by a version that makes one.

  // The key that checks this store's heads.
  virtual absl::StatusOr<tlog::VerifierKey> VerifierKey() = 0;
  // A signed tree head (tlog::SignHead) of the log as it is now, timed by Options::clock.
  virtual absl::StatusOr<std::string> SignedHead() = 0;
  // The RFC 9162 audit path of leaf `index` in the tree of the first `size` events, leaf to
  // root: O(log size) hashes, read in one batch. kOutOfRange unless index < size <= Head().
  virtual absl::StatusOr<std::vector<tlog::Hash>> InclusionProof(uint64_t index, uint64_t size) = 0;
  // The audit paths of several leaves in the same tree, in the order of `indices`: the nodes
  // they share are read once, all in one batch (what verify-party needs).
  virtual absl::StatusOr<std::vector<std::vector<tlog::Hash>>> InclusionProofs(
      const std::vector<uint64_t>& indices, uint64_t size) = 0;
  // The RFC 9162 proof that the tree of `new_size` events extends the tree of `old_size`.
  // kOutOfRange unless old_size <= new_size <= Head().
  virtual absl::StatusOr<std::vector<tlog::Hash>> ConsistencyProof(uint64_t old_size,
                                                                   uint64_t new_size) = 0;

  // --- Backup (docs/operations.md) -------------------------------------------------------------
  // A consistent copy of the store as of now in `to`, a new (or empty) directory: to/db is a
  // RocksDB checkpoint (SST files hard-linked when on the same file system, copied otherwise),
  // and to/signing.key a copy of the signing key, so that the copy signs as the same store. With
  // `include_master_key`, to/master.key too; without it, open the copy with --master-key.
  // Works on a read-only open beside a running writer (ihsd): its WAL is copied, not flushed,
  // and the copy holds at least every event acknowledged before the call. Returns the log size
  // this store saw when the copy began. kAlreadyExists: `to` holds something.
  virtual absl::StatusOr<uint64_t> Backup(const std::string& to, bool include_master_key) = 0;

  // --- Erasure and legal holds (docs/audit.md) -------------------------------------------------
  // Both append an event to the party's stream that a plain Append refuses to carry, so that
  // only these calls (admin's) can make them, and the trail shows who did what and why.

  // Erases the party's personal content without rewriting history: appends an erasureRequest
  // event and deletes the party's data key in the same atomic write; then flushes and compacts
  // so that the key's bytes leave RocksDB's files. The events, their hashes and the tree stay;
  // reads return the content as kErased; the party's later events may not carry content.
  // Returns the erasure event's position. Errors, with nothing changed:
  //   kInvalidArgument    an empty reason or requested_by
  //   kNotFound           no such party
  //   kFailedPrecondition the party is under legal hold, or was erased already (the message
  //                       names the position)
  // If the write landed but the compaction failed, kUnavailable says so: the erasure stands,
  // and the key's bytes leave the files with RocksDB's next compaction of them.
  virtual absl::StatusOr<uint64_t> Erase(absl::string_view party, absl::string_view reason,
                                         absl::string_view requested_by) = 0;
  // Places a legal hold on the party (or with `lift`, lifts the one in force): a legalHold
  // event. While held, Erase (and retention) refuse the party. Returns the event's position.
  //   kInvalidArgument an empty reason or requested_by; kNotFound no such party;
  //   kFailedPrecondition already held, not held (lift), or erased.
  virtual absl::StatusOr<uint64_t> SetLegalHold(absl::string_view party, bool lift,
                                                absl::string_view reason,
                                                absl::string_view requested_by) = 0;

  // Applies a retention policy (store/retention.h) as of `now`: for every party, the data keys
  // of the classes and years whose content has expired are deleted, with a contentExpiry event
  // on the party's stream in the same write; parties under legal hold are left alone and named.
  // Then a retentionRun event on "$retention" records the run, and a compaction removes the
  // keys' bytes. `dry_run` reports what would expire and changes nothing. Content of an expired
  // class and year cannot be appended again (kFailedPrecondition), so no key is ever reused.
  virtual absl::StatusOr<RetentionReport> RunRetention(const RetentionPolicy& policy,
                                                       absl::Time now,
                                                       absl::string_view requested_by,
                                                       bool dry_run) = 0;

  // --- State families: the derived state of projections/ ------------------------------------
  // Each is a RocksDB column family of its own ("state." + name), so dropping one is cheap and
  // touches nothing else. Writes are atomic per call and go through the WAL without a sync:
  // what a crash loses of them, the projection recomputes from its checkpoint, which is written
  // in the same batch as the state it covers. kInvalidArgument for a bad name, kNotFound for a
  // family that does not exist, kFailedPrecondition for writes on a read-only store.

  // Creates the family; nothing happens if it exists.
  virtual absl::Status CreateStateFamily(absl::string_view name) = 0;
  // Drops the family and its data. Readers already inside a call finish on the old data.
  virtual absl::Status DropStateFamily(absl::string_view name) = 0;
  // The names of the state families, sorted.
  virtual std::vector<std::string> StateFamilies() = 0;
  virtual absl::Status WriteState(absl::string_view family, const StateBatch& batch) = 0;
  virtual absl::StatusOr<std::optional<std::string>> GetState(absl::string_view family,
                                                              absl::string_view key) = 0;
  // Visits the keys in [from, to) in order (an empty `to`: no upper bound).
  virtual absl::Status ScanState(absl::string_view family, absl::string_view from,
                                 absl::string_view to, const StateVisitor& visit) = 0;
  // A new, empty file for the family (DIR/ingest/, cleared at Open).
  virtual absl::StatusOr<std::unique_ptr<StateFile>> NewStateFile(absl::string_view family) = 0;
  // Makes the files' keys part of the family, all at once or not at all; they win over what the
  // family held. The files' key ranges must not overlap each other. The files are synced before
  // they are added, so the state survives a crash as a write through WriteState would.
  virtual absl::Status IngestState(absl::string_view family,
                                   std::vector<std::unique_ptr<StateFile>> files) = 0;
};

}  // namespace ihs::store

#endif  // IHS_STORE_EVENT_STORE_H_
