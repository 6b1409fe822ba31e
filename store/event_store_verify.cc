// EventStoreImpl::Verify: every stored byte against its hash, every index against the log.

#include <filesystem>
#include <thread>
#include <tuple>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "store/event_store_impl.h"
#include "store/internal/codec.h"
#include "store/internal/impl_parts.h"
#include "store/internal/rocks_status.h"

namespace ihs::store {

using internal::FromRocksStatus;
using internal::Hash;
using internal::Hex;
using internal::S;
using internal::StreamMeta;
using internal::ToView;

namespace {

// An order-independent digest of a multiset of index entries: the log pass adds what every
// event implies, the index pass what the index holds, and equal digests mean equal multisets
// (up to a 2^-64 chance per differing entry). Both sides run in one process, so absl::Hash's
// per-process seed is the same for both.
struct EntryDigest {
  uint64_t count = 0, sum = 0, mix = 0;
  void Add(uint64_t h) {
    ++count;
    sum += h;
    mix ^= h * 0x9e3779b97f4a7c15ULL + (h >> 29);
  }
  bool operator==(const EntryDigest& o) const {
    return count == o.count && sum == o.sum && mix == o.mix;
  }
};

uint64_t StreamIndexEntry(uint64_t stream_no, uint64_t version, uint64_t position) {
  return absl::Hash<std::tuple<uint64_t, uint64_t, uint64_t>>{}(
      std::make_tuple(stream_no, version, position));
}

uint64_t EventIdEntry(absl::string_view id, uint64_t position, uint64_t version) {
  return absl::Hash<std::tuple<absl::string_view, uint64_t, uint64_t>>{}(
      std::make_tuple(id, position, version));
}

// Reads the stored subtrees of the merkle family in the order a pass over the log completes
// them: one sequential iterator per level, so that no subtree costs a point lookup.
class SubtreeCursors {
 public:
  SubtreeCursors(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const rocksdb::ReadOptions& ro)
      : db_(db), cf_(cf), ro_(ro) {}
  // Whether the stored subtree `id` holds `h`.
  bool Matches(internal::SubtreeId id, const Hash& h) {
    if (cursors_.size() <= id.level) cursors_.resize(id.level + 1);
    std::unique_ptr<rocksdb::Iterator>& it = cursors_[id.level];
    const std::string key = internal::MerkleKey(id.level, id.index);
    if (it == nullptr) {
      it.reset(db_->NewIterator(ro_, cf_));
      it->Seek(key);
    } else {
      it->Next();
      if (!it->Valid() || it->key() != rocksdb::Slice(key)) it->Seek(key);
    }
    return it->Valid() && it->key() == rocksdb::Slice(key) &&
           ToView(it->value()) == internal::HashBytes(h);
  }
  absl::Status status() const {
    for (const auto& it : cursors_) {
      if (it != nullptr && !it->status().ok()) return FromRocksStatus(it->status(), "read tree");
    }
    return absl::OkStatus();
  }

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* cf_;
  rocksdb::ReadOptions ro_;
  std::vector<std::unique_ptr<rocksdb::Iterator>> cursors_;
};

}  // namespace

absl::StatusOr<VerifyReport> EventStoreImpl::Verify(const ProgressFn& progress) {
  const uint64_t head = Head();
  // A snapshot, so that appends during the walk do not change what is compared.
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_.get(), snapshot};
  // Every family is read in one sequential pass: not worth caching, worth reading ahead.
  rocksdb::ReadOptions scan;
  scan.snapshot = snapshot;
  scan.fill_cache = false;
  scan.readahead_size = 2 << 20;

  // The indexes, on a second thread while this one walks the log: what they hold, as digests.
  EntryDigest index_held, ids_held;
  absl::Status index_status;
  std::thread index_pass([&] {
    index_status = [&]() -> absl::Status {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, cf_stream_index_));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        if (it->key().size() != 16 || it->value().size() != 8) {
          return absl::DataLossError("verify: the stream index holds a malformed entry");
        }
        const uint64_t position = GetBigEndian64(it->value().data());
        if (position >= head) continue;  // appended after the walk began
        index_held.Add(StreamIndexEntry(GetBigEndian64(it->key().data()),
                                        GetBigEndian64(it->key().data() + 8), position));
      }
      IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), "verify: read the stream index"));
      it.reset(db_->NewIterator(scan, cf_event_ids_));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        std::optional<internal::EventIdValue> v = internal::DecodeEventIdValue(ToView(it->value()));
        if (!v) return absl::DataLossError("verify: the event id index holds a malformed entry");
        if (v->position >= head) continue;
        ids_held.Add(EventIdEntry(ToView(it->key()), v->position, v->stream_version));
      }
      return FromRocksStatus(it->status(), "verify: read the event id index");
    }();
  });
  struct Join {  // on every return: the pass reads state that lives on this stack
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{index_pass};

  std::string upper = internal::EventKey(head);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions log_ro = scan;
  log_ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(log_ro, cf_events_));
  SubtreeCursors stored_tree(db_.get(), cf_merkle_, scan);

  absl::flat_hash_map<std::string, StreamTally> streams;
  EntryDigest index_implied, ids_implied;
  internal::Frontier frontier;
  uint64_t p = 0;
  absl::Status mismatch;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++p) {
    if (it->key().size() != 8 || GetBigEndian64(it->key().data()) != p) {
      return absl::DataLossError(absl::StrCat("verify: the log has no event at position ", p));
    }
    absl::string_view bytes = ToView(it->value());
    absl::StatusOr<std::unique_ptr<internal::StoredEventRep>> rep =
        internal::DecodeRecord(p, bytes);
    if (!rep.ok()) {
      return absl::DataLossError(
          absl::StrCat("verify: first mismatch at position ", p, ": ", rep.status().message()));
    }
    // Leaf and every subtree it completes must equal what was stored when it was appended.
    frontier.Push(internal::LeafHash(bytes), [&](internal::SubtreeId id, const Hash& h) {
      if (!mismatch.ok() || stored_tree.Matches(id, h)) return;
      uint64_t first = id.index << id.level;
      mismatch = absl::DataLossError(absl::StrCat(
          "verify: first mismatch at position ", p,
          id.level == 0
              ? std::string(": its bytes no longer match their leaf hash")
              : absl::StrCat(": the stored hash of positions [", first, ", ",
                             first + (uint64_t{1} << id.level), ") does not match them")));
    });
    if (!mismatch.ok()) {
      IHS_RETURN_IF_ERROR(stored_tree.status());
      return mismatch;
    }
    auto ev = (*rep)->root;
    const absl::string_view stream = ToView(ev.getStreamId());
    auto entry = streams.find(stream);
    if (entry == streams.end()) {
      IHS_ASSIGN_OR_RETURN(std::optional<StreamMeta> meta, LoadMeta(stream));
      if (!meta) {
        return absl::DataLossError(
            absl::StrCat("verify: position ", p, ": stream ", stream, " has no metadata"));
      }
      entry = streams.emplace(std::string(stream), StreamTally{meta->stream_no, 0}).first;
    }
    if (ev.getStreamVersion() != entry->second.count) {
      return absl::DataLossError(absl::StrCat("verify: position ", p, " has stream version ",
                                              ev.getStreamVersion(), ", expected ",
                                              entry->second.count));
    }
    index_implied.Add(StreamIndexEntry(entry->second.stream_no, ev.getStreamVersion(), p));
    ids_implied.Add(EventIdEntry(ToView(ev.getId()), p, ev.getStreamVersion()));
    ++entry->second.count;
    if (progress && (p + 1) % 16384 == 0) progress(p + 1, head);
  }
  IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), "verify: read the log"));
  if (p != head) {
    return absl::DataLossError(absl::StrCat("verify: the log has no event at position ", p));
  }
  for (const auto& [stream, tally] : streams) {
    IHS_ASSIGN_OR_RETURN(std::optional<StreamMeta> meta, LoadMeta(stream));
    if (!meta || meta->event_count != tally.count) {
      return absl::DataLossError(absl::StrCat("verify: stream ", stream, " metadata counts ",
                                              meta ? meta->event_count : 0, " events, the log ",
                                              tally.count));
    }
  }
  IHS_ASSIGN_OR_RETURN(std::string stored_root, Root(head));
  Hash root = frontier.Root();
  if (stored_root != internal::HashBytes(root)) {
    return absl::DataLossError("verify: the stored tree's root differs from the recomputed root");
  }
  index_pass.join();
  IHS_RETURN_IF_ERROR(index_status);
  if (!(index_held == index_implied) || !(ids_held == ids_implied)) {
    // Rare: find the first event the indexes do not point at, by looking each one up.
    return LocateIndexMismatch(snapshot, head, streams);
  }
  if (progress) progress(head, head);
  VerifyReport report;
  report.events_checked = head;
  report.root_hash = std::string(internal::HashBytes(root));
  return report;
}

absl::Status EventStoreImpl::LocateIndexMismatch(
    const rocksdb::Snapshot* snapshot, uint64_t head,
    const absl::flat_hash_map<std::string, StreamTally>& tallies) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string upper = internal::EventKey(head);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions log_ro = ro;
  log_ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(log_ro, cf_events_));
  uint64_t p = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++p) {
    IHS_ASSIGN_OR_RETURN(std::unique_ptr<internal::StoredEventRep> rep,
                         internal::DecodeRecord(p, ToView(it->value())));
    auto ev = rep->root;
    const absl::string_view stream = ToView(ev.getStreamId());
    auto tally = tallies.find(stream);
    if (tally == tallies.end()) return absl::DataLossError("verify: the log changed under it");
    std::string indexed;
    rocksdb::Status s = db_->Get(
        ro, cf_stream_index_,
        internal::StreamIndexKey(tally->second.stream_no, ev.getStreamVersion()), &indexed);
    if (!s.ok() || indexed != internal::EventKey(p)) {
      return absl::DataLossError(absl::StrCat("verify: position ", p, ": the stream index of ",
                                              stream, " version ", ev.getStreamVersion(),
                                              " does not point at it"));
    }
    std::string id_value;
    s = db_->Get(ro, cf_event_ids_, S(ToView(ev.getId())), &id_value);
    const std::optional<internal::EventIdValue> indexed_id =
        s.ok() ? internal::DecodeEventIdValue(id_value) : std::nullopt;
    if (!indexed_id || indexed_id->position != p ||
        indexed_id->stream_version != ev.getStreamVersion()) {
      return absl::DataLossError(absl::StrCat("verify: position ", p, ": event id ",
                                              Hex(ToView(ev.getId())),
                                              " is not indexed at this position"));
    }
  }
  IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), "verify: read the log"));
  return absl::DataLossError(
      "verify: the stream index or the event id index holds entries that no event of the log "
      "implies");
}

}  // namespace ihs::store
