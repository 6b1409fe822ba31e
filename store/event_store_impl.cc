// EventStoreImpl: open and recovery, the log's head, stats and event ids.
#include "store/event_store_impl.h"

#include <fcntl.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/big_endian.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "store/internal/codec.h"
#include "store/internal/db_options.h"
#include "store/internal/impl_parts.h"
#include "store/internal/rocks_status.h"

namespace ihs::store {

using internal::FromRocksStatus;
using internal::Hash;
using internal::ToView;

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Open.

EventStoreImpl::EventStoreImpl(const Options& options)
    : options_(options), clock_(options.clock ? options.clock : RealClock()) {}

// Tries of a read-only open that races a writer's flushes and file deletions (see Open).
constexpr int kReadOnlyOpenAttempts = 20;

absl::StatusOr<std::unique_ptr<EventStore>> EventStoreImpl::Open(const Options& options) {
  IHS_RETURN_IF_ERROR(internal::SodiumInit());
  if (options.path.empty()) return absl::InvalidArgumentError("no data directory given");
  std::unique_ptr<EventStoreImpl> store(new EventStoreImpl(options));
  std::error_code ec;
  const bool dir_existed = fs::exists(options.path, ec);
  absl::Status s = store->OpenDb();
  // A read-only open beside a running writer sees the files as they were at one moment, and the
  // writer flushes and deletes WAL and table files meanwhile: the open can catch a table file
  // gone, or column families from two moments (a Merkle subtree flushed away from the WAL that
  // held it). That is a race, not damage: the open is tried again on the files as they are now.
  // Damage stays damage on every try, and is reported as it is.
  for (int attempt = 1; options.read_only && attempt < kReadOnlyOpenAttempts; ++attempt) {
    if (s.code() != absl::StatusCode::kDataLoss && s.code() != absl::StatusCode::kUnavailable) {
      break;
    }
    store.reset(new EventStoreImpl(options));
    absl::SleepFor(absl::Milliseconds(10 * attempt));
    s = store->OpenDb();
  }
  if (!s.ok()) {
    // A directory this call made holds only what it made (a master key, db.creating): a failed
    // creation (an unusable --master-key, say) leaves nothing behind.
    store.reset();
    if (!dir_existed && options.create_if_missing && !options.read_only) {
      fs::remove_all(options.path, ec);
    }
    return s;
  }
  if (options.bulk_load && (options.read_only || store->Head() != 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat("a bulk load needs a new store, opened for writing; ", options.path,
                     options.read_only ? " is opened for reading only"
                                       : absl::StrCat(" holds ", store->Head(), " events")));
  }
  if (!options.sync && !options.read_only && !options.synced_by_caller) {
    LogSink* log = options.log != nullptr ? options.log : DefaultLog();
    log->Log(absl::StrCat("WARNING: store ", options.path,
                          " opened with sync OFF: appends are acknowledged before they are "
                          "durable; a crash loses them. Use only for bulk loads you can re-run."));
  }
  return std::unique_ptr<EventStore>(std::move(store));
}

absl::Status EventStoreImpl::OpenDb() {
  const fs::path dir(options_.path);
  const fs::path db_dir = dir / "db";
  std::error_code ec;
  bool new_store = false;
  if (!fs::exists(dir, ec)) {
    if (!options_.create_if_missing || options_.read_only) {
      return absl::NotFoundError(absl::StrCat("data directory ", options_.path, " does not exist"));
    }
    fs::create_directories(dir, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot create data directory ", options_.path, ": ", ec.message()));
    }
    new_store = true;
  } else if (!fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.path, " is not a directory, so not an ihs store"));
  } else if (!fs::exists(db_dir, ec)) {
    // An existing directory becomes a store only if it is empty, or holds only what an
    // interrupted creation left (the key file, db.creating).
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name != "master.key" && name != "master.key.tmp" && name != "db.creating") {
        return absl::FailedPreconditionError(
            absl::StrCat(options_.path,
                         " is not an ihs store (no db/ inside) and is not empty; "
                         "refusing to create a store there"));
      }
    }
    if (!options_.create_if_missing || options_.read_only) {
      return absl::NotFoundError(absl::StrCat(options_.path, " holds no ihs store"));
    }
    new_store = true;
  }

  const std::string key_path =
      options_.master_key_path.empty() ? (dir / "master.key").string() : options_.master_key_path;
  IHS_ASSIGN_OR_RETURN(master_, internal::LoadOrCreateMasterKey(key_path, new_store));
  digest_key_ = internal::DigestKey(master_);
  nonce_prefix_ = internal::RandomBytes(16);

  rocksdb::DBOptions db_options = internal::StoreDbOptions();
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = internal::StoreColumnFamilies();
  const size_t store_families = descriptors.size();
  state_options_ = internal::StateFamilyOptions(descriptors[0].options);  // no insert hints
  if (options_.bulk_load) internal::ForBulkLoad(&db_options, &descriptors);

  if (new_store) {
    // Create the whole store under db.creating and rename it into place, so that a crash during
    // creation leaves either no store or a complete one, never a half-made database.
    const fs::path creating = dir / "db.creating";
    fs::remove_all(creating, ec);
    rocksdb::Options create_options(db_options, rocksdb::ColumnFamilyOptions());
    create_options.create_if_missing = true;
    create_options.create_missing_column_families = true;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s =
        rocksdb::DB::Open(create_options, creating.string(), descriptors, &handles_, &db);
    if (!s.ok()) return FromRocksStatus(s, absl::StrCat("create store ", options_.path));
    db_.reset(db);
    cf_meta_ = handles_[0];
    cf_events_ = handles_[1];
    absl::Status init = InitOrCheckMeta(/*new_store=*/true);
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    handles_.clear();
    rocksdb::Status closed = db_->Close();
    db_.reset();
    IHS_RETURN_IF_ERROR(init);
    IHS_RETURN_IF_ERROR(FromRocksStatus(closed, "close the new store"));
    fs::rename(creating, db_dir, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot move the new store into ", db_dir.string(), ": ", ec.message()));
    }
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);  // make the rename durable
      ::close(dir_fd);
    }
  }
  {
    std::vector<std::string> existing;
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, db_dir.string(), &existing);
    if (!s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          options_.path, " is not an ihs store: ", db_dir.string(), ": ", s.ToString()));
    }
    for (const auto& d : descriptors) {
      if (std::find(existing.begin(), existing.end(), d.name) == existing.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            options_.path, " is not an ihs store (column family ", d.name, " is missing)"));
      }
    }
    for (const std::string& name : existing) {
      if (absl::StartsWith(name, internal::kCfStatePrefix)) {
        descriptors.emplace_back(name, state_options_);
      }
    }
  }

  rocksdb::DB* db = nullptr;
  rocksdb::Status s;
  rocksdb::Options open_options(db_options, rocksdb::ColumnFamilyOptions());
  if (options_.read_only) {
    // Beside a running writer (ihsd): with max_open_files -1 every table file is opened during
    // the open, so one the writer's compaction deletes afterwards stays readable through its
    // descriptor for as long as this store is open. A file deleted during the open itself
    // ("Corruption: Can't access ...sst") is a race that Open retries.
    open_options.max_open_files = -1;
    s = rocksdb::DB::OpenForReadOnly(open_options, db_dir.string(), descriptors, &handles_, &db);
  } else {
    s = rocksdb::DB::Open(open_options, db_dir.string(), descriptors, &handles_, &db);
  }
  if (!s.ok()) return FromRocksStatus(s, absl::StrCat("open store ", options_.path));
  db_.reset(db);
  if (!options_.read_only) {
    // State files of a bulk load that a crash cut short. Only now, under RocksDB's lock: another
    // process that has the store open for writing may be writing some.
    fs::remove_all(dir / "ingest", ec);
  }
  // The key that signs tree heads: made at the first open for writing, under RocksDB's lock.
  const std::string signing_path = options_.signing_key_path.empty()
                                       ? (dir / "signing.key").string()
                                       : options_.signing_key_path;
  absl::StatusOr<internal::SecretKey> seed = internal::LoadOrCreateKeyFile(
      signing_path, !options_.read_only, "signing key",
      "the store signs tree heads with it; open the store for writing once to make one");
  if (seed.ok()) {
    std::array<uint8_t, tlog::kSecretKeyBytes> secret;
    uint8_t pub[tlog::kPublicKeyBytes];
    crypto_sign_seed_keypair(pub, secret.data(), seed->data());
    sodium_memzero(seed->data(), seed->size());
    signing_key_ = secret;
    sodium_memzero(secret.data(), secret.size());
  } else if (!options_.read_only) {
    return seed.status();
  } else {
    signing_key_error_ = seed.status();
  }
  cf_meta_ = handles_[0];
  cf_events_ = handles_[1];
  cf_stream_index_ = handles_[2];
  cf_stream_meta_ = handles_[3];
  cf_event_ids_ = handles_[4];
  cf_content_keys_ = handles_[5];
  cf_merkle_ = handles_[6];
  {
    MutexLock l(&state_mu_);
    for (size_t i = store_families; i < handles_.size(); ++i) {
      states_[handles_[i]->GetName().substr(strlen(internal::kCfStatePrefix))] =
          AdoptStateHandle(handles_[i]);
    }
    handles_.resize(store_families);
  }

  IHS_RETURN_IF_ERROR(InitOrCheckMeta(/*new_store=*/false));
  return LoadWriterState();
}

absl::Status EventStoreImpl::InitOrCheckMeta(bool new_store) {
  std::string version;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf_meta_, internal::kMetaFormatVersion, &version);
  if (s.IsNotFound()) {
    if (!new_store) {
      return absl::FailedPreconditionError(
          absl::StrCat(options_.path, " is not an ihs store (no format version recorded)"));
    }
    rocksdb::WriteBatch batch;
    std::string v;
    PutBigEndian32(&v, kFormatVersion);
    batch.Put(cf_meta_, internal::kMetaFormatVersion, v);
    batch.Put(cf_meta_, internal::kMetaMasterKeyCheck, internal::MasterKeyCheck(master_));
    batch.Put(cf_meta_, internal::kMetaNextStreamNo, BigEndian64(0));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocksStatus(db_->Write(wo, &batch), "initialise store");
  }
  if (!s.ok()) return FromRocksStatus(s, "read format version");
  if (version.size() != 4) {
    return absl::DataLossError(absl::StrCat(options_.path, ": format version is malformed"));
  }
  uint32_t v = GetBigEndian32(version.data());
  if (v > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store ", options_.path, " has format version ", v,
        ", newer than this build of ihs supports (", kFormatVersion, "); upgrade ihs to open it"));
  }
  std::string check;
  s = db_->Get(rocksdb::ReadOptions(), cf_meta_, internal::kMetaMasterKeyCheck, &check);
  if (!s.ok()) return FromRocksStatus(s, "read master key check");
  if (check != internal::MasterKeyCheck(master_)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the master key given is not the key of store ", options_.path,
                     " (wrong --master-key file?)"));
  }
  if (v < kFormatVersion && !options_.read_only) {
    // Format 1 to 2: nothing to rewrite (its party keys stay readable as version 1); the number
    // keeps older builds, which cannot read the class keys this build writes, from opening it.
    std::string now;
    PutBigEndian32(&now, kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    IHS_RETURN_IF_ERROR(FromRocksStatus(db_->Put(wo, cf_meta_, internal::kMetaFormatVersion, now),
                                        "upgrade the format version"));
  }
  return absl::OkStatus();
}

absl::Status EventStoreImpl::LoadWriterState() {
  uint64_t head = 0;
  int64_t last_recorded_at = 0, recorded_floor = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_events_));
    it->SeekToLast();
    IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), "find the log's end"));
    if (it->Valid()) {
      if (it->key().size() != 8) return absl::DataLossError("events key is not 8 bytes");
      head = GetBigEndian64(it->key().data()) + 1;
      IHS_ASSIGN_OR_RETURN(std::unique_ptr<internal::StoredEventRep> last,
                           internal::DecodeRecord(head - 1, ToView(it->value())));
      last_recorded_at = last->root.getRecordedAt();
    }
  }
  std::string floor;
  if (db_->Get(rocksdb::ReadOptions(), cf_meta_, internal::kMetaRecordedFloor, &floor).ok() &&
      floor.size() == 8) {
    recorded_floor = static_cast<int64_t>(GetBigEndian64(floor.data()));
  }
  std::string next;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf_meta_, internal::kMetaNextStreamNo, &next);
  if (!s.ok() || next.size() != 8) {
    return absl::DataLossError(absl::StrCat(options_.path, ": stream counter is missing"));
  }
  auto lookup = [this](internal::SubtreeId id) -> absl::StatusOr<Hash> {
    std::string v;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cf_merkle_, internal::MerkleKey(id.level, id.index), &v);
    Hash h;
    if (!s.ok() || !internal::HashFromBytes(v, &h)) {
      return absl::DataLossError(absl::StrCat("Merkle subtree (level ", id.level, ", index ",
                                              id.index, ") is missing or malformed"));
    }
    return h;
  };
  IHS_ASSIGN_OR_RETURN(internal::Frontier frontier, internal::Frontier::Load(head, lookup));
  {
    MutexLock l(&leader_mu_);
    frontier_ = std::move(frontier);
    next_stream_no_ = GetBigEndian64(next.data());
    // A watermark handed out before a restart still holds: nothing is recorded before it. (A
    // store opened for reading only answers Watermark with the last event's time: a writer
    // elsewhere may still record up to its floor.)
    last_recorded_at_ =
        options_.read_only ? last_recorded_at : std::max(last_recorded_at, recorded_floor);
    recorded_floor_ = recorded_floor;
  }
  MutexLock l(&mu_);
  head_ = head;
  return absl::OkStatus();
}

EventStoreImpl::~EventStoreImpl() {
  {
    MutexLock l(&mu_);
    closing_ = true;
    commit_cv_.SignalAll();
  }
  {
    MutexLock l(&state_mu_);
    states_.clear();  // destroys the handles: no call is running in a destructor
  }
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db_->Close().PermitUncheckedError();  // nothing to do about it in a destructor
  }
  sodium_memzero(master_.data(), master_.size());
  sodium_memzero(digest_key_.data(), digest_key_.size());
}

uint64_t EventStoreImpl::Head() {
  MutexLock l(&mu_);
  return head_;
}

uint64_t EventStoreImpl::WaitForCommit(uint64_t known_head, absl::Time deadline) {
  MutexLock l(&mu_);
  while (head_ <= known_head && !closing_) {
    if (WaitWithDeadline(commit_cv_, &mu_, deadline)) break;  // deadline passed
  }
  return head_;
}

absl::StatusOr<int64_t> EventStoreImpl::Watermark() {
  // Under the leader's lock no group is between taking its time and becoming visible; moving
  // the last time up makes every later group's time at least W (CommitGroup).
  MutexLock l(&leader_mu_);
  if (options_.read_only) return last_recorded_at_;
  const int64_t w = std::max(absl::ToUnixMicros(clock_->Now()), last_recorded_at_);
  if (w > recorded_floor_) {
    // Stored before it is handed out, so that it holds after a restart too; a second ahead, so
    // that this writes at most once a second.
    const int64_t floor = w + 1'000'000;
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    IHS_RETURN_IF_ERROR(
        FromRocksStatus(db_->Put(wo, cf_meta_, internal::kMetaRecordedFloor, BigEndian64(floor)),
                        "store the watermark"));
    recorded_floor_ = floor;
  }
  last_recorded_at_ = w;
  return w;
}

absl::StatusOr<StoreStats> EventStoreImpl::Stats() {
  StoreStats st;
  st.event_count = Head();
  st.format_version = kFormatVersion;
  {
    MutexLock l(&leader_mu_);
    st.stream_count = next_stream_no_;
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf_content_keys_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!it->value().empty() && it->value()[0] != internal::kExpiredKeyTag) ++st.key_count;
    }
    IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), "count data keys"));
  }
  st.disk_bytes = DiskBytes();
  IHS_ASSIGN_OR_RETURN(st.root_hash, Root(st.event_count));
  MutexLock l(&mu_);
  st.appends = stat_appends_;
  st.syncs = stat_syncs_;
  st.largest_group = stat_largest_group_;
  return st;
}

uint64_t EventStoreImpl::DiskBytes() {
  uint64_t bytes = 0;
  for (auto* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kLiveSstFilesSize, &v)) bytes += v;
  }
  rocksdb::VectorLogPtr wals;
  if (db_->GetSortedWalFiles(wals).ok()) {
    for (const auto& w : wals) bytes += w->SizeFileBytes();
  }
  return bytes;
}

StoreMetrics EventStoreImpl::Metrics() {
  const uint64_t disk = DiskBytes();
  uint64_t streams = 0;
  {
    MutexLock l(&leader_mu_);
    streams = next_stream_no_;
  }
  MutexLock l(&mu_);
  StoreMetrics m = metrics_;
  m.disk_bytes = disk;
  m.streams = streams;
  m.events = head_;
  m.appends = stat_appends_;
  m.groups = stat_syncs_;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Event ids and state families.

absl::StatusOr<std::string> EventStoreImpl::BlindIndexKey() {
  const internal::SecretKey k = internal::BlindIndexKey(master_);
  return std::string(reinterpret_cast<const char*>(k.data()), k.size());
}

absl::StatusOr<std::optional<uint64_t>> EventStoreImpl::FindEvent(absl::string_view event_id) {
  if (event_id.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("an event id has 16 bytes, not ", event_id.size()));
  }
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_event_ids_,
                               rocksdb::Slice(event_id.data(), event_id.size()), &value);
  if (s.IsNotFound()) return std::nullopt;
  IHS_RETURN_IF_ERROR(FromRocksStatus(s, "look up an event id"));
  const std::optional<internal::EventIdValue> v = internal::DecodeEventIdValue(value);
  if (!v) return absl::DataLossError("an event-id index entry is malformed");
  const uint64_t position = v->position;
  // An id is indexed in its group's batch, before the group is acknowledged.
  if (position >= Head()) return std::nullopt;
  return position;
}

}  // namespace ihs::store
