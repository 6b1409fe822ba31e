// EventStoreImpl: the EventStore on RocksDB. Not API: include store/event_store.h.
//
// Threads: any thread may call any method. Appends queue in writers_; the writer at the front is
// the group leader: it takes every append queued behind it (up to kMaxGroupEvents), checks
// versions and idempotency in order, assigns positions, writes one WriteBatch with one WAL sync
// and wakes the others with their results (leveldb's DBImpl::Write is the model; docs/impl.md).
// Lock order: mu_ is never held while leader_mu_ is taken; keys_mu_ is a leaf.
#ifndef IHS_STORE_EVENT_STORE_IMPL_H_
#define IHS_STORE_EVENT_STORE_IMPL_H_

#include <rocksdb/db.h>

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "store/governance.h"
#include "store/internal/content_keys.h"
#include "store/internal/keys.h"
#include "store/internal/merkle.h"
#include "store/state_store.h"

namespace ihs::store {

// The embedded store behind `store`, or kUnimplemented: `store` keeps no `what` of its own.
class EventStoreImpl;
absl::StatusOr<EventStoreImpl*> Embedded(EventStore& store, absl::string_view what);

class EventStoreImpl final : public EventStore, public StateStore {
 public:
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(const Options& options);
  // A range of positions whose RFC 9162 subtree hash a proof needs.
  struct Range {
    uint64_t start, size;
  };
  ~EventStoreImpl() override;

  absl::StatusOr<AppendResult> Append(const StreamAppend& append) override;
  absl::StatusOr<AppendResult> AppendMarked(const StreamAppend& append, absl::string_view mark_key,
                                            absl::string_view mark_value) override;
  absl::StatusOr<std::optional<std::string>> ReadMark(absl::string_view mark_key) override;
  absl::Status SyncLog() override;
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      const std::vector<OrderedAppend>& appends) override;
  absl::StatusOr<std::vector<AppendResult>> AppendMulti(
      const std::vector<StreamAppend>& appends) override;
  absl::StatusOr<std::unique_ptr<PreparedAppends>> PrepareAppends(
      const std::vector<StreamAppend>& appends) override;
  absl::StatusOr<std::vector<AppendResult>> AppendPrepared(PreparedAppends& prepared) override;
  absl::StatusOr<std::vector<StoredEvent>> ReadStream(absl::string_view stream,
                                                      uint64_t from_version, size_t max_count,
                                                      ReadDirection direction,
                                                      const ReadOptions& options) override;
  absl::StatusOr<std::vector<StoredEvent>> ReadAll(uint64_t from_position, size_t max_count,
                                                   const ReadOptions& options) override;
  absl::StatusOr<StreamInfo> GetStreamInfo(absl::string_view stream) override;
  uint64_t Head() override;
  uint64_t WaitForCommit(uint64_t known_head, absl::Time deadline) override;
  absl::StatusOr<int64_t> Watermark() override;
  absl::StatusOr<StoreStats> Stats() override;
  StoreMetrics Metrics() override;
  absl::Status Flush() override;
  uint64_t DiskBytes();  // live SST and WAL bytes
  absl::StatusOr<std::optional<uint64_t>> FindEvent(absl::string_view event_id) override;
  absl::StatusOr<std::string> BlindIndexKey() override;

  // The calls of store/audit.h, store/governance.h and store/backup.h, which reach the store
  // through Embedded().
  absl::StatusOr<std::string> Root(uint64_t size);
  absl::StatusOr<VerifyReport> Verify(const ProgressFn& progress);
  absl::StatusOr<tlog::VerifierKey> VerifierKey();
  absl::StatusOr<std::string> SignedHead();
  absl::StatusOr<std::vector<tlog::Hash>> InclusionProof(uint64_t index, uint64_t size);
  absl::StatusOr<std::vector<std::vector<tlog::Hash>>> InclusionProofs(
      const std::vector<uint64_t>& indices, uint64_t size);
  absl::StatusOr<std::vector<tlog::Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size);
  absl::StatusOr<uint64_t> Backup(const std::string& to, bool include_master_key);
  absl::StatusOr<uint64_t> BackgroundWork();
  absl::StatusOr<RetentionReport> RunRetention(const RetentionPolicy& policy, absl::Time now,
                                               absl::string_view requested_by, bool dry_run);
  absl::StatusOr<uint64_t> Erase(absl::string_view party, absl::string_view reason,
                                 absl::string_view requested_by);
  absl::StatusOr<std::vector<uint64_t>> EraseAll(const std::vector<std::string>& parties,
                                                 absl::string_view reason,
                                                 absl::string_view requested_by);
  absl::StatusOr<uint64_t> SetLegalHold(absl::string_view party, bool lift,
                                        absl::string_view reason, absl::string_view requested_by);
  absl::Status CreateStateFamily(absl::string_view name) override;
  absl::Status DropStateFamily(absl::string_view name) override;
  std::vector<std::string> StateFamilies() override;
  absl::Status WriteState(absl::string_view family, const StateBatch& batch) override;
  absl::StatusOr<std::optional<std::string>> GetState(absl::string_view family,
                                                      absl::string_view key) override;
  absl::Status ScanState(absl::string_view family, absl::string_view from, absl::string_view to,
                         const StateVisitor& visit) override;
  absl::StatusOr<std::unique_ptr<StateFile>> NewStateFile(absl::string_view family) override;
  absl::Status IngestState(absl::string_view family,
                           std::vector<std::unique_ptr<StateFile>> files) override;

 private:
  struct PreparedEvent;
  struct PreparedAppend;
  struct PreparedBatch;  // what PrepareAppends hands out
  struct Writer;
  struct Group;

  explicit EventStoreImpl(const Options& options);
  absl::Status OpenDb();
  absl::Status InitOrCheckMeta(bool new_store);
  absl::Status LoadWriterState();

  // Caller-thread work, in parallel across callers: validation, canonical bytes, digests.
  // `control`: the appends are Erase's or SetLegalHold's, which alone may carry those events.
  absl::StatusOr<std::vector<PreparedAppend>> Prepare(const std::vector<StreamAppend>& appends,
                                                      bool control);
  absl::Status PrepareEvent(const StreamAppend& append, size_t index, bool control,
                            PreparedEvent* out) const;
  // Queues prepared appends for the group-commit writer and waits for their result.
  // Commits `group` as one group, in order, once every writer queued before it is done.
  void CommitAlone(std::vector<Writer*>& group);
  // `mark`: a key (in cf_meta_) and value written with the appends if they write (AppendMarked).
  absl::StatusOr<std::vector<AppendResult>> Commit(
      std::vector<PreparedAppend>& prepared,
      const std::pair<std::string, std::string>* mark = nullptr);
  // Appends one erasureRequest or legalHold event (made by `fill`) to the party's stream.
  absl::StatusOr<uint64_t> AppendControl(absl::string_view party,
                                         const std::function<void(schema::Event::Builder)>& fill);
  // The same for several parties in one atomic append (all or none).
  absl::StatusOr<std::vector<uint64_t>> AppendControls(
      const std::vector<std::string>& parties,
      const std::function<void(schema::Event::Builder)>& fill);
  // Flushes every column family and compacts content_keys, so that deleted data keys leave the
  // files (and the WAL files that held them become obsolete and are deleted).
  absl::Status PurgeDeletedKeys();

  // Leader work.
  void CommitGroup(std::vector<Writer*>& group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  absl::StatusOr<std::vector<AppendResult>> StageWriter(Writer& w, Group& g)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  // StageWriter's steps (event_store_write.cc).
  absl::StatusOr<std::optional<std::vector<AppendResult>>> FindStoredIds(
      const std::vector<PreparedAppend>& appends, const Group& g)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  absl::Status CheckExpectedVersions(const std::vector<PreparedAppend>& appends, const Group& g,
                                     std::vector<internal::StreamMeta>* metas,
                                     std::vector<bool>* exists)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  absl::Status ResolveDataKeys(const std::vector<PreparedAppend>& appends, const Group& g,
                               std::vector<std::vector<internal::DataKey>>* keys,
                               std::vector<std::pair<std::string, internal::DataKey>>* made)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  void PutNewDataKeys(std::vector<std::pair<std::string, internal::DataKey>>& made, Group& g)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  void EmitAppend(PreparedAppend& append, internal::StreamMeta m, bool exists,
                  const std::vector<internal::DataKey>& keys, Group& g, AppendResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  absl::StatusOr<std::optional<internal::StreamMeta>> LoadMeta(absl::string_view stream);
  // The leader's view: LoadMeta, or with bulk_load the metadata in memory.
  absl::StatusOr<std::optional<internal::StreamMeta>> MetaForWrite(absl::string_view stream)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  // With bulk_load: whether no event with this id is stored (it is then in no table either).
  bool KnownAbsent(const std::string& id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(leader_mu_);
  // The stream's data key, and whether it is new (to be written with the group).
  absl::StatusOr<std::pair<internal::DataKey, bool>> DataKeyForWrite(const std::string& stream,
                                                                     uint32_t version,
                                                                     const Group& g);

  // Verify's slow path, when the indexes' digests differ from what the log implies: looks up
  // each event's index entries to name the first position they do not point at.
  struct StreamTally {
    uint64_t stream_no;
    uint64_t count;
  };
  absl::Status LocateIndexMismatch(const rocksdb::Snapshot* snapshot, uint64_t head,
                                   const absl::flat_hash_map<std::string, StreamTally>& tallies);

  // Reads.
  // nullopt: no key, or (`expired` set) one that retention deleted.
  absl::StatusOr<std::optional<internal::DataKey>> DataKeyForRead(absl::string_view stream,
                                                                  uint32_t version,
                                                                  bool* expired = nullptr);
  absl::StatusOr<StoredEvent> MakeStoredEvent(uint64_t position, absl::string_view bytes,
                                              const ReadOptions& options);

  const Options options_;
  Clock* const clock_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* cf_meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_events_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_stream_index_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_stream_meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_event_ids_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_content_keys_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_merkle_ = nullptr;
  internal::SecretKey master_{};
  // The Ed25519 key that signs heads (seed | public key), if the store has one.
  std::optional<std::array<uint8_t, tlog::kSecretKeyBytes>> signing_key_;
  absl::Status signing_key_error_;  // why there is none
  // The hashes of the RFC 9162 subtrees [start, start + size) (each a fold of stored complete
  // subtrees: every range a proof names is), in one MultiGet.
  absl::StatusOr<std::vector<tlog::Hash>> RangeHashes(const std::vector<Range>& ranges);
  internal::SecretKey digest_key_{};
  // A content nonce is 16 random bytes drawn at open | a counter: unique under any key.
  std::string nonce_prefix_;
  std::atomic<uint64_t> nonce_counter_{0};
  std::string NextNonce();

  absl::Mutex mu_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);
  uint64_t head_ ABSL_GUARDED_BY(mu_) = 0;  // acknowledged log size
  absl::CondVar commit_cv_;                 // head_ grew, or closing_
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // a failed write; appends refuse after it
  uint64_t stat_appends_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t stat_syncs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t stat_largest_group_ ABSL_GUARDED_BY(mu_) = 0;
  StoreMetrics metrics_ ABSL_GUARDED_BY(mu_);  // the counters and histograms of Metrics()

  // Held only by the group leader: the tree's right edge and the stream counter.
  absl::Mutex leader_mu_;
  internal::Frontier frontier_ ABSL_GUARDED_BY(leader_mu_);
  uint64_t next_stream_no_ ABSL_GUARDED_BY(leader_mu_) = 0;
  int64_t last_recorded_at_ ABSL_GUARDED_BY(leader_mu_) = 0;  // of the last event written
  int64_t recorded_floor_ ABSL_GUARDED_BY(leader_mu_) = 0;    // as stored (Watermark)
  // options_.bulk_load: every stream's metadata and the id of every event, since open (the store
  // was empty then, so what is not here is in no table).
  absl::flat_hash_map<std::string, internal::StreamMeta> bulk_metas_ ABSL_GUARDED_BY(leader_mu_);
  absl::flat_hash_set<std::array<char, 16>> bulk_ids_ ABSL_GUARDED_BY(leader_mu_);

  // State families by name. A reader copies the shared_ptr, so a concurrent drop cannot destroy
  // the handle under it; the last copy destroys it (always before db_ closes).
  using StateHandle = std::shared_ptr<rocksdb::ColumnFamilyHandle>;
  absl::StatusOr<StateHandle> FindState(absl::string_view name);
  StateHandle AdoptStateHandle(rocksdb::ColumnFamilyHandle* h);
  rocksdb::ColumnFamilyOptions state_options_;
  absl::Mutex state_mu_;
  absl::flat_hash_map<std::string, StateHandle> states_ ABSL_GUARDED_BY(state_mu_);
  std::atomic<uint64_t> next_state_file_{0};  // names of files under DIR/ingest/

  // Unwrapped data keys (by content_keys row) seen since open; the streams erased and the rows
  // expired since open, whose keys a read that began before must not put back into keys_.
  absl::Mutex keys_mu_;
  absl::flat_hash_map<std::string, internal::DataKey> keys_ ABSL_GUARDED_BY(keys_mu_);
  absl::flat_hash_set<std::string> erased_ ABSL_GUARDED_BY(keys_mu_);
  absl::flat_hash_set<std::string> expired_ ABSL_GUARDED_BY(keys_mu_);  // rows, by retention
};

}  // namespace ihs::store

#endif  // IHS_STORE_EVENT_STORE_IMPL_H_
