#include "store/event_store_impl.h"

#include <capnp/message.h>
#include <capnp/schema.h>
#include <fcntl.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "schema/json.h"
#include "store/internal/codec.h"
#include "store/internal/db_options.h"
#include "store/internal/rocks_status.h"
#include "store/retention.h"

namespace ihs::store {

using internal::DataKey;
using internal::FromRocksStatus;
using internal::Hash;
using internal::StreamMeta;

namespace {

namespace fs = std::filesystem;

// One group writes at most this many events (and so holds at most this much in one batch).
constexpr size_t kMaxGroupEvents = 20000;

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

absl::string_view ToView(capnp::Data::Reader d) {
  return absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size());
}
absl::string_view ToView(capnp::Text::Reader t) { return absl::string_view(t.cStr(), t.size()); }
absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }
rocksdb::Slice S(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

bool AllZero(absl::string_view s) { return s.find_first_not_of('\0') == absl::string_view::npos; }

absl::Status ValidateStreamId(absl::string_view stream) {
  if (stream.empty()) return absl::InvalidArgumentError("stream id is missing");
  if (stream.size() > kMaxStreamIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream id is ", stream.size(), " bytes; the limit is ", kMaxStreamIdBytes));
  }
  for (char c : stream) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat("stream id \"", absl::CHexEscape(stream),
                                                     "\" contains a control character"));
    }
  }
  if (const size_t bad = FindInvalidUtf8(stream); bad != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream id \"", absl::CHexEscape(stream), "\" is not UTF-8 (byte ", bad, ")"));
  }
  return absl::OkStatus();
}

// The highest enumerant this build knows, so that a number from a newer client is refused.
template <typename E>
bool KnownEnumerant(E value) {
  auto enumerants = capnp::Schema::from<E>().getEnumerants();
  return static_cast<uint16_t>(value) > 0 && static_cast<uint16_t>(value) < enumerants.size();
}

absl::Status ValidateTouchpoint(schema::Touchpoint::Reader tp) {
  if (!KnownEnumerant(tp.getChannel())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "touchpoint.channel ", static_cast<int>(tp.getChannel()), " is missing or unknown"));
  }
  if (!KnownEnumerant(tp.getDirection())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "touchpoint.direction ", static_cast<int>(tp.getDirection()), " is missing or unknown"));
  }
  if (!KnownEnumerant(tp.getType())) {
    return absl::InvalidArgumentError(
        absl::StrCat("touchpoint.type ", static_cast<int>(tp.getType()), " is missing or unknown"));
  }
  float s = tp.getSentiment();
  if (!std::isnan(s) && !(s >= -1.0f && s <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("touchpoint.sentiment ", s, " is outside [-1, 1]"));
  }
  if (tp.hasInReplyTo() && tp.getInReplyTo().size() != 16) {
    return absl::InvalidArgumentError("touchpoint.inReplyTo must be a 16-byte event id");
  }
  if (tp.hasCorrects() && tp.getCorrects().size() != 16) {
    return absl::InvalidArgumentError("touchpoint.corrects must be a 16-byte event id");
  }
  bool corrects_needed = tp.getType() == schema::TouchpointType::CORRECTION ||
                         tp.getType() == schema::TouchpointType::RETRACTION;
  if (corrects_needed && !tp.hasCorrects()) {
    return absl::InvalidArgumentError(
        "touchpoint.corrects is required for a correction or retraction");
  }
  return absl::OkStatus();
}

const char* ControlKindName(schema::Event::Which kind) {
  switch (kind) {
    case schema::Event::ERASURE_REQUEST:
      return "erasureRequest";
    case schema::Event::LEGAL_HOLD:
      return "legalHold";
    case schema::Event::CONTENT_EXPIRY:
      return "contentExpiry";
    default:
      return "retentionRun";
  }
}

// Whether a content_keys row (internal::ContentKeyRow) is one of `stream`'s.
bool RowOfStream(absl::string_view row, absl::string_view stream) {
  return absl::StartsWith(row, stream) &&
         (row.size() == stream.size() || row[stream.size()] == '\0');
}

// Whether an append may go ahead given the stream's hold and erasure: an erasure or hold
// (`control`, one event of `kind`) checks its party's state; content is refused after erasure.
absl::Status CheckPartyState(absl::string_view stream, bool control, schema::Event::Which kind,
                             bool lift, bool any_content, const std::optional<StreamMeta>& meta) {
  if (!control) {
    if (any_content && meta && meta->erased_position) {
      return absl::FailedPreconditionError(
          absl::StrCat("party ", stream, " was erased (position ", *meta->erased_position,
                       "): its new events cannot carry personal content"));
    }
    return absl::OkStatus();
  }
  if (kind == schema::Event::RETENTION_RUN) return absl::OkStatus();  // "$retention": any state
  if (!meta) return absl::NotFoundError(absl::StrCat("no such party: ", stream));
  if (kind == schema::Event::CONTENT_EXPIRY && meta->hold_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " is under legal hold (placed at position ",
                     *meta->hold_position, "): its content does not expire"));
  }
  if (meta->erased_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " was already erased (position ", *meta->erased_position,
                     kind == schema::Event::ERASURE_REQUEST ? ")" : "): there is nothing to hold"));
  }
  if (kind == schema::Event::ERASURE_REQUEST && meta->hold_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " is under legal hold (placed at position ",
                     *meta->hold_position, "): lift the hold before erasing"));
  }
  if (kind == schema::Event::LEGAL_HOLD && !lift && meta->hold_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " is already under legal hold (placed at position ",
                     *meta->hold_position, ")"));
  }
  if (kind == schema::Event::LEGAL_HOLD && lift && !meta->hold_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " is not under legal hold"));
  }
  return absl::OkStatus();
}

absl::Status Conflict(absl::string_view stream, const ExpectedVersion& expected, int64_t current) {
  return VersionConflictError(
      absl::StrCat("append to stream ", stream, ": expected version ", expected.ToString(),
                   ", but the current version is ",
                   current < 0 ? std::string("none (no stream yet)") : absl::StrCat(current)),
      current);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Internal records of the write path.

struct EventStoreImpl::PreparedEvent {
  std::unique_ptr<capnp::MallocMessageBuilder> message;  // the input, streamId filled in
  std::string id;
  std::string digest;
  std::string content;  // canonical Content bytes, or empty
  bool has_content = false;
  // Sealed by the caller's thread when the stream's data key already existed; the leader uses
  // it if the key is still the one it would use, and seals itself otherwise.
  std::optional<internal::Sealed> sealed;
  DataKey sealed_with;
  int64_t occurred_at = 0;
  schema::Event::Which kind = schema::Event::UNSPECIFIED;
  bool lift = false;         // a legalHold event that lifts the hold
  uint32_t key_version = 0;  // of the data key that seals its content: its retention class
  std::vector<uint32_t> expired_versions;  // a contentExpiry event: the keys it deletes
};

struct EventStoreImpl::PreparedAppend {
  const StreamAppend* request;
  std::vector<PreparedEvent> events;
  bool control = false;  // Erase's or SetLegalHold's: one erasureRequest or legalHold event
};

struct EventStoreImpl::Writer {
  std::vector<PreparedAppend>* appends;
  size_t event_count = 0;
  absl::StatusOr<std::vector<AppendResult>> result;
  bool done = false;
  absl::CondVar cv;
};

// State of one group while the leader stages it: the effect of earlier writers of the group.
struct EventStoreImpl::Group {
  rocksdb::WriteBatch batch;
  internal::Frontier frontier;
  uint64_t next_stream_no = 0;
  int64_t recorded_at = 0;
  absl::flat_hash_map<std::string, StreamMeta> metas;
  struct IdEntry {
    uint64_t position;
    uint64_t version;
    std::string digest;
  };
  absl::flat_hash_map<std::string, IdEntry> ids;
  absl::flat_hash_map<std::string, DataKey> new_keys;
  std::vector<std::string> erased;   // streams whose data keys the group deletes
  std::vector<std::string> expired;  // content_keys rows the group marks expired
  size_t writes = 0;                 // writers that staged events
};

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
  if (!options.sync && !options.read_only) {
    std::fprintf(stderr,
                 "ihs: WARNING: store %s opened with sync OFF: appends are acknowledged before "
                 "they are durable; a crash loses them. Use only for bulk loads you can re-run.\n",
                 options.path.c_str());
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

  const rocksdb::DBOptions db_options = internal::StoreDbOptions();
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = internal::StoreColumnFamilies();
  const size_t store_families = descriptors.size();
  state_options_ = descriptors[0].options;  // the default family's: no insert hints

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
    absl::MutexLock l(&state_mu_);
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
  int64_t last_recorded_at = 0;
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
    absl::MutexLock l(&leader_mu_);
    frontier_ = std::move(frontier);
    next_stream_no_ = GetBigEndian64(next.data());
    last_recorded_at_ = last_recorded_at;
  }
  absl::MutexLock l(&mu_);
  head_ = head;
  return absl::OkStatus();
}

EventStoreImpl::~EventStoreImpl() {
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
    commit_cv_.SignalAll();
  }
  {
    absl::MutexLock l(&state_mu_);
    states_.clear();  // destroys the handles: no call is running in a destructor
  }
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db_->Close().PermitUncheckedError();  // nothing to do about it in a destructor
  }
  sodium_memzero(master_.data(), master_.size());
  sodium_memzero(digest_key_.data(), digest_key_.size());
}

// ---------------------------------------------------------------------------------------------
// Append: caller-thread preparation.

absl::Status EventStoreImpl::PrepareEvent(const StreamAppend& append, size_t index, bool control,
                                          PreparedEvent* out) const {
  schema::Event::Reader in = append.events[index];
  auto fail = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("append to stream ", append.stream, ", event ",
                                               index, ": ", s.message()));
  };
  capnp::MessageSize size{0, 0};
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { size = in.totalSize(); })) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("malformed message: ", e->getDescription().cStr())));
  }
  const uint64_t words = size.wordCount;
  // An event holds no capability (the schema has none); one in an unknown pointer field, sent
  // over RPC, would make the canonical encoding throw.
  if (size.capCount != 0) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("the event carries ", size.capCount, " capabilities; an event holds none")));
  }
  if (std::string problem = internal::EventShapeProblem(in); !problem.empty()) {
    return fail(absl::InvalidArgumentError(absl::StrCat("malformed message: ", problem)));
  }
  if (std::string problem = internal::EventTextProblem(in); !problem.empty()) {
    return fail(absl::InvalidArgumentError(problem));
  }
  if (!in.hasId() || in.getId().size() != 16 || AllZero(ToView(in.getId()))) {
    return fail(absl::InvalidArgumentError("id must be 16 bytes, not all zero"));
  }
  if (in.hasStreamId() && ToView(in.getStreamId()) != append.stream) {
    return fail(absl::InvalidArgumentError(absl::StrCat("streamId \"", ToView(in.getStreamId()),
                                                        "\" differs from the stream appended to")));
  }
  if (in.getRecordedAt() != 0 || in.getPosition() != 0 || in.getStreamVersion() != 0 ||
      in.hasSealedContent()) {
    return fail(absl::InvalidArgumentError(
        "recordedAt, position, streamVersion and sealedContent are set by the store"));
  }
  if (in.getOccurredAt() == 0) return fail(absl::InvalidArgumentError("occurredAt is missing"));
  switch (in.which()) {
    case schema::Event::TOUCHPOINT: {
      absl::Status s = ValidateTouchpoint(in.getTouchpoint());
      if (!s.ok()) return fail(s);
      break;
    }
    case schema::Event::PARTY_PROFILE:
      if (!KnownEnumerant(in.getPartyProfile().getKind())) {
        return fail(absl::InvalidArgumentError("partyProfile.kind is missing or unknown"));
      }
      break;
    case schema::Event::IDENTITY_LINK:
      if (in.getIdentityLink().getParties().size() < 2) {
        return fail(absl::InvalidArgumentError("identityLink needs at least two parties"));
      }
      break;
    case schema::Event::ERASURE_REQUEST:
    case schema::Event::LEGAL_HOLD:
    case schema::Event::CONTENT_EXPIRY:
    case schema::Event::RETENTION_RUN:
      if (!control) {
        return fail(absl::InvalidArgumentError(absl::StrCat(
            ControlKindName(in.which()),
            " events are made by `ihs erase`, `ihs hold` and `ihs retention run` (RPC: "
            "Admin.erase, Admin.hold), which check and change the party's data keys and hold "
            "with them; a plain append cannot carry them")));
      }
      out->lift = in.which() == schema::Event::LEGAL_HOLD && in.getLegalHold().getLift();
      if (in.which() == schema::Event::CONTENT_EXPIRY) {
        for (auto c : in.getContentExpiry().getExpired()) {
          out->expired_versions.push_back(
              internal::ClassKeyVersionOfYear(static_cast<uint16_t>(c.getChannel()),
                                              static_cast<uint16_t>(c.getType()), c.getYear()));
        }
      }
      break;
    case schema::Event::UNSPECIFIED:
    default:
      return fail(absl::InvalidArgumentError(
          "event type is missing or unknown (one of touchpoint, partyProfile, identityLink)"));
  }
  if (control && in.hasContent()) {
    return fail(absl::InvalidArgumentError("an erasure or hold carries no content"));
  }
  out->kind = in.which();

  // Sized to the event (plus room for the sealed content and store fields), so the copy does
  // not zero capnp's default 8 KiB first segment per event.
  out->message =
      std::make_unique<capnp::MallocMessageBuilder>(static_cast<unsigned>(words + 32 + words / 2));
  out->message->setRoot(in);
  auto root = out->message->getRoot<schema::Event>();
  root.setStreamId(append.stream);
  std::string canonical = internal::CanonicalBytes(root.asReader());
  if (canonical.size() > kMaxEventBytes) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("event is ", canonical.size(), " bytes; the limit is ", kMaxEventBytes)));
  }
  out->id = std::string(ToView(in.getId()));
  out->digest = internal::KeyedDigest(digest_key_, canonical);
  out->occurred_at = in.getOccurredAt();
  if (in.hasContent()) {
    out->has_content = true;
    out->content = internal::CanonicalBytes(in.getContent());
    const bool tp = in.isTouchpoint();
    out->key_version = internal::ClassKeyVersion(
        tp ? static_cast<uint16_t>(in.getTouchpoint().getChannel()) : 0,
        tp ? static_cast<uint16_t>(in.getTouchpoint().getType()) : 0, in.getOccurredAt());
  }
  return absl::OkStatus();
}

std::string EventStoreImpl::NextNonce() {
  std::string nonce = nonce_prefix_;
  PutBigEndian64(&nonce, nonce_counter_.fetch_add(1, std::memory_order_relaxed));
  return nonce;
}

absl::StatusOr<std::vector<EventStoreImpl::PreparedAppend>> EventStoreImpl::Prepare(
    const std::vector<StreamAppend>& appends, bool control) {
  if (appends.empty()) return absl::InvalidArgumentError("append of no streams");
  size_t total = 0;
  absl::flat_hash_set<absl::string_view> streams;
  absl::flat_hash_set<std::string> ids;
  std::vector<PreparedAppend> out;
  out.reserve(appends.size());
  for (const StreamAppend& a : appends) {
    IHS_RETURN_IF_ERROR(ValidateStreamId(a.stream));
    if (!streams.insert(a.stream).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("stream ", a.stream, " appears twice in one multi-stream append"));
    }
    if (a.events.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("append to stream ", a.stream, ": no events (empty batch)"));
    }
    total += a.events.size();
    if (total > kMaxEventsPerAppend) {
      return absl::InvalidArgumentError(absl::StrCat("append of more than ", kMaxEventsPerAppend,
                                                     " events; split it into several"));
    }
    PreparedAppend pa{&a, {}, control};
    pa.events.resize(a.events.size());
    for (size_t i = 0; i < a.events.size(); ++i) {
      IHS_RETURN_IF_ERROR(PrepareEvent(a, i, control, &pa.events[i]));
      if (!ids.insert(pa.events[i].id).second) {
        return absl::InvalidArgumentError(absl::StrCat("append to stream ", a.stream, ", event ", i,
                                                       ": id ", Hex(pa.events[i].id),
                                                       " appears twice in one append"));
      }
    }
    // Seal here, in parallel with other callers, where the stream has the data key already.
    for (PreparedEvent& e : pa.events) {
      if (!e.has_content) continue;
      IHS_ASSIGN_OR_RETURN(std::optional<DataKey> key, DataKeyForRead(a.stream, e.key_version));
      if (!key) continue;
      e.sealed = internal::SealContent(*key, NextNonce(), e.id + a.stream, e.content);
      e.sealed_with = *key;
    }
    out.push_back(std::move(pa));
  }
  return out;
}

absl::StatusOr<AppendResult> EventStoreImpl::Append(const StreamAppend& append) {
  IHS_ASSIGN_OR_RETURN(std::vector<AppendResult> r, AppendMulti({append}));
  return std::move(r[0]);
}

absl::StatusOr<std::vector<AppendResult>> EventStoreImpl::AppendMulti(
    const std::vector<StreamAppend>& appends) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("store is open for reading only");
  }
  IHS_ASSIGN_OR_RETURN(std::vector<PreparedAppend> prepared, Prepare(appends, /*control=*/false));
  return Commit(prepared);
}

absl::StatusOr<std::vector<AppendResult>> EventStoreImpl::Commit(
    std::vector<PreparedAppend>& prepared) {
  Writer w;
  w.appends = &prepared;
  for (const auto& pa : prepared) w.event_count += pa.events.size();

  std::vector<Writer*> group;
  {
    absl::MutexLock l(&mu_);
    if (!failed_.ok()) return failed_;
    writers_.push_back(&w);
    if (&w != writers_.front() && options_.hooks.on_queued) options_.hooks.on_queued();
    while (!w.done && &w != writers_.front()) w.cv.Wait(&mu_);
    if (w.done) return std::move(w.result);
  }
  // This writer leads a group: itself and whoever queued behind it.
  if (options_.hooks.on_group_leader) options_.hooks.on_group_leader();
  {
    absl::MutexLock l(&mu_);
    size_t events = 0;
    for (Writer* x : writers_) {
      if (!group.empty() && events + x->event_count > kMaxGroupEvents) break;
      events += x->event_count;
      group.push_back(x);
    }
  }
  {
    absl::MutexLock l(&leader_mu_);
    CommitGroup(group);
  }
  {
    absl::MutexLock l(&mu_);
    for (Writer* x : group) {
      writers_.pop_front();
      x->done = true;
      if (x != &w) x->cv.Signal();
    }
    if (!writers_.empty()) writers_.front()->cv.Signal();
  }
  return std::move(w.result);
}

// ---------------------------------------------------------------------------------------------
// Append: the leader.

absl::StatusOr<std::optional<StreamMeta>> EventStoreImpl::LoadMeta(absl::string_view stream) {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_stream_meta_, S(stream), &v);
  if (s.IsNotFound()) return std::optional<StreamMeta>();
  IHS_RETURN_IF_ERROR(FromRocksStatus(s, absl::StrCat("read metadata of stream ", stream)));
  std::optional<StreamMeta> m = internal::DecodeStreamMeta(v);
  if (!m) return absl::DataLossError(absl::StrCat("metadata of stream ", stream, " is malformed"));
  return m;
}

absl::StatusOr<std::pair<DataKey, bool>> EventStoreImpl::DataKeyForWrite(const std::string& stream,
                                                                         uint32_t version,
                                                                         const Group& g) {
  const std::string row = internal::ContentKeyRow(stream, version);
  if (auto it = g.new_keys.find(row); it != g.new_keys.end()) {
    return std::make_pair(it->second, false);
  }
  bool expired = absl::c_linear_search(g.expired, row);
  IHS_ASSIGN_OR_RETURN(std::optional<DataKey> existing, DataKeyForRead(stream, version, &expired));
  if (existing) return std::make_pair(*existing, false);
  if (expired) return absl::FailedPreconditionError("the key's content has expired");
  // The first content of this stream and class: a new data key, written with what it seals.
  return std::make_pair(internal::NewDataKey(version), true);
}

absl::StatusOr<std::vector<AppendResult>> EventStoreImpl::StageWriter(Writer& w, Group& g) {
  std::vector<PreparedAppend>& appends = *w.appends;
  std::vector<AppendResult> results(appends.size());

  // 1. Idempotency: which ids are stored already (by an earlier group or earlier in this one).
  //    The ids the group has not seen are looked up in one MultiGet.
  std::vector<const PreparedEvent*> flat;
  std::vector<size_t> flat_append;
  for (size_t a = 0; a < appends.size(); ++a) {
    for (const PreparedEvent& e : appends[a].events) {
      flat.push_back(&e);
      flat_append.push_back(a);
    }
  }
  std::vector<rocksdb::Slice> lookup;
  std::vector<size_t> lookup_index;
  for (size_t i = 0; i < flat.size(); ++i) {
    if (!g.ids.contains(flat[i]->id)) {
      lookup.emplace_back(flat[i]->id);
      lookup_index.push_back(i);
    }
  }
  std::vector<rocksdb::PinnableSlice> values(lookup.size());
  std::vector<rocksdb::Status> statuses(lookup.size());
  if (!lookup.empty()) {
    db_->MultiGet(rocksdb::ReadOptions(), cf_event_ids_, lookup.size(), lookup.data(),
                  values.data(), statuses.data());
  }
  std::vector<std::optional<Group::IdEntry>> stored(flat.size());
  for (size_t j = 0; j < lookup.size(); ++j) {
    if (statuses[j].IsNotFound()) continue;
    IHS_RETURN_IF_ERROR(FromRocksStatus(statuses[j], "read event id index"));
    std::optional<internal::EventIdValue> v = internal::DecodeEventIdValue(ToView(values[j]));
    if (!v) {
      return absl::DataLossError(
          absl::StrCat("event id index entry ", Hex(flat[lookup_index[j]]->id), " is malformed"));
    }
    stored[lookup_index[j]] = Group::IdEntry{v->position, v->stream_version, std::move(v->digest)};
  }
  size_t known = 0;
  const size_t total = flat.size();
  for (size_t i = 0; i < flat.size(); ++i) {
    const PreparedEvent& e = *flat[i];
    const Group::IdEntry* entry = nullptr;
    if (auto it = g.ids.find(e.id); it != g.ids.end()) {
      entry = &it->second;
    } else if (stored[i]) {
      entry = &*stored[i];
    }
    if (entry == nullptr) continue;
    const size_t a = flat_append[i];
    if (entry->digest != e.digest) {
      return absl::AlreadyExistsError(
          absl::StrCat("append to stream ", appends[a].request->stream, ": event id ", Hex(e.id),
                       " is already stored at position ", entry->position, " with other content"));
    }
    ++known;
    results[a].positions.push_back(entry->position);
    results[a].versions.push_back(entry->version);
  }
  if (known == total) {
    for (auto& r : results) r.duplicate = true;
    return results;
  }
  if (known > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("append of ", total, " events of which ", known,
                     " are already stored: a retry must repeat the original append exactly"));
  }

  // 2. Expected versions, against the log as the group has changed it so far.
  std::vector<StreamMeta> metas(appends.size());
  std::vector<bool> exists(appends.size());
  for (size_t a = 0; a < appends.size(); ++a) {
    const StreamAppend& req = *appends[a].request;
    std::optional<StreamMeta> meta;
    if (auto it = g.metas.find(req.stream); it != g.metas.end()) {
      meta = it->second;
    } else {
      IHS_ASSIGN_OR_RETURN(meta, LoadMeta(req.stream));
    }
    int64_t current = meta ? static_cast<int64_t>(meta->event_count) - 1 : -1;
    bool ok = true;
    switch (req.expected.kind()) {
      case ExpectedVersion::Kind::kAny:
        break;
      case ExpectedVersion::Kind::kNoStream:
        ok = !meta.has_value();
        break;
      case ExpectedVersion::Kind::kStreamExists:
        ok = meta.has_value();
        break;
      case ExpectedVersion::Kind::kExact:
        ok = meta.has_value() && current == static_cast<int64_t>(req.expected.version());
        break;
    }
    if (!ok) return Conflict(req.stream, req.expected, current);
    bool any_content = false;
    for (const PreparedEvent& e : appends[a].events) any_content |= e.has_content;
    const PreparedEvent& first = appends[a].events[0];
    IHS_RETURN_IF_ERROR(
        CheckPartyState(req.stream, appends[a].control, first.kind, first.lift, any_content, meta));
    exists[a] = meta.has_value();
    if (meta) metas[a] = *meta;
  }

  // 3. Data keys for the events that carry content, one per stream and retention class. Up to
  //    here nothing of the group changed, so a failure leaves no trace; from here on nothing
  //    can fail.
  std::vector<std::vector<DataKey>> keys(appends.size());
  std::vector<std::pair<std::string, DataKey>> made;  // row -> key, new in this writer
  for (size_t a = 0; a < appends.size(); ++a) {
    const std::string& stream = appends[a].request->stream;
    keys[a].resize(appends[a].events.size());
    for (size_t i = 0; i < appends[a].events.size(); ++i) {
      const PreparedEvent& e = appends[a].events[i];
      if (!e.has_content) continue;
      std::string row = internal::ContentKeyRow(stream, e.key_version);
      auto mine =
          std::find_if(made.begin(), made.end(), [&](const auto& m) { return m.first == row; });
      if (mine != made.end()) {
        keys[a][i] = mine->second;
        continue;
      }
      absl::StatusOr<std::pair<DataKey, bool>> k = DataKeyForWrite(stream, e.key_version, g);
      if (k.status().code() == absl::StatusCode::kFailedPrecondition) {
        const internal::KeyClass c = *internal::ClassOfKeyVersion(e.key_version);
        return absl::FailedPreconditionError(absl::StrCat(
            "append to stream ", stream, ", event ", i, ": its content (",
            schema::EnumName(static_cast<schema::Channel>(c.channel)), " ",
            schema::EnumName(static_cast<schema::TouchpointType>(c.type)), " of ", c.year,
            ") has expired under the retention policy; send the event without content"));
      }
      IHS_RETURN_IF_ERROR(k.status());
      keys[a][i] = k->first;
      if (k->second) made.emplace_back(std::move(row), k->first);
    }
  }
  for (auto& [row, key] : made) {
    std::string stream;
    uint32_t version = 0;
    internal::ParseContentKeyRow(row, &stream, &version);
    g.batch.Put(cf_content_keys_, row, internal::WrapDataKey(master_, stream, key));
    g.new_keys[row] = key;
  }

  // 4. Emit: positions, versions, sealed content, records, indexes, Merkle nodes.
  for (size_t a = 0; a < appends.size(); ++a) {
    const std::string& stream = appends[a].request->stream;
    StreamMeta& m = metas[a];
    if (!exists[a]) {
      m = StreamMeta{};
      m.stream_no = g.next_stream_no++;
    }
    for (size_t i = 0; i < appends[a].events.size(); ++i) {
      PreparedEvent& e = appends[a].events[i];
      const uint64_t position = g.frontier.size();
      const uint64_t version = m.event_count;
      auto ev = e.message->getRoot<schema::Event>();
      ev.setRecordedAt(g.recorded_at);
      ev.setPosition(position);
      ev.setStreamVersion(version);
      if (e.has_content) {
        const DataKey& key = keys[a][i];
        const bool presealed =
            e.sealed && e.sealed_with.version == key.version && e.sealed_with.key == key.key;
        const internal::Sealed sealed =
            presealed ? *e.sealed
                      : internal::SealContent(key, NextNonce(), e.id + stream, e.content);
        auto sc = ev.initSealedContent();
        sc.setKeyVersion(key.version);
        sc.setNonce(kj::arrayPtr(reinterpret_cast<const kj::byte*>(sealed.nonce.data()),
                                 sealed.nonce.size()));
        sc.setCiphertext(kj::arrayPtr(reinterpret_cast<const kj::byte*>(sealed.ciphertext.data()),
                                      sealed.ciphertext.size()));
        ev.disownContent();  // the plaintext never reaches the record
      }
      std::string record = internal::EncodeRecord(ev.asReader());
      g.batch.Put(cf_events_, internal::EventKey(position), record);
      g.batch.Put(cf_stream_index_, internal::StreamIndexKey(m.stream_no, version),
                  BigEndian64(position));
      g.batch.Put(cf_event_ids_, e.id, internal::EncodeEventIdValue(position, version, e.digest));
      g.frontier.Push(internal::LeafHash(record), [&](internal::SubtreeId id, const Hash& h) {
        g.batch.Put(cf_merkle_, internal::MerkleKey(id.level, id.index), S(internal::HashBytes(h)));
      });
      g.ids[e.id] = {position, version, e.digest};
      if (m.event_count == 0) {
        m.first_position = position;
        m.first_occurred_at = e.occurred_at;
        m.last_occurred_at = e.occurred_at;
      }
      m.first_occurred_at = std::min(m.first_occurred_at, e.occurred_at);
      m.last_occurred_at = std::max(m.last_occurred_at, e.occurred_at);
      m.last_position = position;
      ++m.event_count;
      results[a].positions.push_back(position);
      results[a].versions.push_back(version);
    }
    if (appends[a].control) {
      const PreparedEvent& e = appends[a].events[0];
      const uint64_t position = results[a].positions[0];
      if (e.kind == schema::Event::ERASURE_REQUEST) {
        m.erased_position = position;
        // Every key of the party: version 1's row and the class keys' rows after it.
        g.batch.DeleteRange(cf_content_keys_, stream, stream + '\x01');
        absl::erase_if(g.new_keys, [&](const auto& kv) { return RowOfStream(kv.first, stream); });
        g.erased.push_back(stream);
      } else if (e.kind == schema::Event::CONTENT_EXPIRY) {
        // The keys' rows become markers that hold no key material: the content stays
        // unreadable, and no later append can make a new key under the same version.
        std::string marker(1, internal::kExpiredKeyTag);
        PutBigEndian64(&marker, position);
        for (uint32_t version : e.expired_versions) {
          std::string row = internal::ContentKeyRow(stream, version);
          g.batch.Put(cf_content_keys_, row, marker);
          g.new_keys.erase(row);
          g.expired.push_back(std::move(row));
        }
      } else if (e.kind == schema::Event::RETENTION_RUN) {
        // nothing but the event
      } else if (e.lift) {
        m.hold_position.reset();
      } else {
        m.hold_position = position;
      }
    }
    g.batch.Put(cf_stream_meta_, stream, internal::EncodeStreamMeta(m));
    g.metas[stream] = m;
  }
  ++g.writes;
  return results;
}

void EventStoreImpl::CommitGroup(std::vector<Writer*>& group) {
  Group g;
  g.frontier = frontier_;
  g.next_stream_no = next_stream_no_;
  // Never before the last group's: recorded_at ascends with position even if the clock steps
  // back, so "as of a time" is a prefix of the log (replay, docs/audit.md).
  g.recorded_at = std::max(absl::ToUnixMicros(clock_->Now()), last_recorded_at_);
  const uint64_t old_next_stream_no = next_stream_no_;

  // A writer that fails leaves no trace in the group (StageWriter changes it only once nothing
  // can fail any more), so the others of the group go on.
  std::vector<bool> staged(group.size(), false);
  for (size_t i = 0; i < group.size(); ++i) {
    size_t writes_before = g.writes;
    group[i]->result = StageWriter(*group[i], g);
    staged[i] = g.writes > writes_before;
  }
  if (g.writes == 0) return;  // only duplicates and failures: nothing to write

  if (g.next_stream_no != old_next_stream_no) {
    g.batch.Put(cf_meta_, internal::kMetaNextStreamNo, BigEndian64(g.next_stream_no));
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  absl::Status s = FromRocksStatus(db_->Write(wo, &g.batch), "write group");
  if (!s.ok()) {
    absl::Status failed = absl::UnavailableError(
        absl::StrCat("store ", options_.path,
                     " failed a write and refuses appends until reopened: ", s.message()));
    for (size_t i = 0; i < group.size(); ++i) {
      if (staged[i]) group[i]->result = failed;
    }
    absl::MutexLock l(&mu_);
    failed_ = failed;
    return;
  }
  frontier_ = g.frontier;
  last_recorded_at_ = g.recorded_at;
  next_stream_no_ = g.next_stream_no;
  if (!g.new_keys.empty() || !g.erased.empty() || !g.expired.empty()) {
    absl::MutexLock l(&keys_mu_);
    for (auto& [row, key] : g.new_keys) keys_[row] = key;
    for (const std::string& stream : g.erased) {
      absl::erase_if(keys_, [&](const auto& kv) { return RowOfStream(kv.first, stream); });
      erased_.insert(stream);
    }
    for (const std::string& row : g.expired) {
      keys_.erase(row);
      expired_.insert(row);
    }
  }
  absl::MutexLock l(&mu_);
  head_ = frontier_.size();
  stat_appends_ += g.writes;
  ++stat_syncs_;
  stat_largest_group_ = std::max<uint64_t>(stat_largest_group_, g.writes);
  commit_cv_.SignalAll();
}

// ---------------------------------------------------------------------------------------------
// Reads.

absl::StatusOr<std::optional<DataKey>> EventStoreImpl::DataKeyForRead(absl::string_view stream,
                                                                      uint32_t version,
                                                                      bool* expired) {
  const std::string row = internal::ContentKeyRow(stream, version);
  {
    absl::MutexLock l(&keys_mu_);
    if (auto it = keys_.find(row); it != keys_.end()) return std::optional<DataKey>(it->second);
    if (expired_.contains(row)) {
      if (expired != nullptr) *expired = true;
      return std::optional<DataKey>();
    }
  }
  std::string wrapped;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_content_keys_, row, &wrapped);
  if (s.IsNotFound()) return std::optional<DataKey>();
  IHS_RETURN_IF_ERROR(FromRocksStatus(s, absl::StrCat("read data key of stream ", stream)));
  if (!wrapped.empty() && wrapped[0] == internal::kExpiredKeyTag) {
    if (expired != nullptr) *expired = true;
    return std::optional<DataKey>();
  }
  IHS_ASSIGN_OR_RETURN(DataKey key, internal::UnwrapDataKey(master_, stream, wrapped));
  if (key.version != version) {
    return absl::DataLossError(absl::StrCat("data key of stream ", stream, " under version ",
                                            version, " says it is version ", key.version));
  }
  absl::MutexLock l(&keys_mu_);
  // Erased (or expired) while we read: not put back.
  if (erased_.contains(stream) || expired_.contains(row)) return std::optional<DataKey>();
  keys_[row] = key;
  return std::optional<DataKey>(key);
}

absl::StatusOr<StoredEvent> EventStoreImpl::MakeStoredEvent(uint64_t position,
                                                            absl::string_view bytes,
                                                            const ReadOptions& options) {
  IHS_ASSIGN_OR_RETURN(std::unique_ptr<internal::StoredEventRep> rep,
                       internal::DecodeRecord(position, bytes));
  if (options.open_content && rep->content_state == ContentState::kSealed) {
    auto ev = rep->root;
    absl::string_view stream = ToView(ev.getStreamId());
    IHS_ASSIGN_OR_RETURN(std::optional<DataKey> key,
                         DataKeyForRead(stream, ev.getSealedContent().getKeyVersion()));
    if (!key) {
      rep->content_state = ContentState::kErased;
    } else {
      auto sc = ev.getSealedContent();
      std::string ad = absl::StrCat(ToView(ev.getId()), stream);
      absl::StatusOr<std::string> plain =
          internal::OpenContent(*key, ad, ToView(sc.getNonce()), ToView(sc.getCiphertext()));
      if (!plain.ok()) {
        return absl::DataLossError(
            absl::StrCat("event at position ", position, ": ", plain.status().message()));
      }
      IHS_ASSIGN_OR_RETURN(rep->content,
                           CanonicalMessage::Parse<schema::Content>(
                               *plain, absl::StrCat("content of event at position ", position)));
      if (std::string problem =
              internal::ContentShapeProblem(rep->content->root<schema::Content>());
          !problem.empty()) {
        return absl::DataLossError(
            absl::StrCat("content of event at position ", position, " is malformed: ", problem));
      }
      rep->content_state = ContentState::kOpen;
    }
  }
  return internal::StoredEventAccess::Make(std::move(rep));
}

absl::StatusOr<std::vector<StoredEvent>> EventStoreImpl::ReadStream(absl::string_view stream,
                                                                    uint64_t from_version,
                                                                    size_t max_count,
                                                                    ReadDirection direction,
                                                                    const ReadOptions& options) {
  IHS_RETURN_IF_ERROR(ValidateStreamId(stream));
  IHS_ASSIGN_OR_RETURN(std::optional<StreamMeta> meta, LoadMeta(stream));
  if (!meta) return absl::NotFoundError(absl::StrCat("no such stream: ", stream));
  std::vector<StoredEvent> out;
  if (max_count == 0 || meta->event_count == 0) return out;
  uint64_t lo, hi;  // versions [lo, hi)
  if (direction == ReadDirection::kForward) {
    if (from_version >= meta->event_count) return out;
    lo = from_version;
    hi = lo + std::min<uint64_t>(max_count, meta->event_count - lo);
  } else {
    uint64_t start = std::min(from_version, meta->event_count - 1);
    hi = start + 1;
    lo = hi - std::min<uint64_t>(max_count, hi);
  }
  std::string lower = internal::StreamIndexKey(meta->stream_no, lo);
  std::string upper = internal::StreamIndexKey(meta->stream_no, hi);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::vector<std::string> keys;
  keys.reserve(hi - lo);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_stream_index_));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    if (it->value().size() != 8) return absl::DataLossError("stream index value is malformed");
    keys.emplace_back(it->value().data(), 8);
  }
  IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), absl::StrCat("read stream ", stream)));
  if (keys.size() != hi - lo) {
    return absl::DataLossError(absl::StrCat("stream ", stream, " index has ", keys.size(),
                                            " entries for versions [", lo, ", ", hi, ")"));
  }
  if (direction == ReadDirection::kBackward) std::reverse(keys.begin(), keys.end());

  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), cf_events_, keys.size(), slices.data(), values.data(),
                statuses.data());
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    uint64_t position = GetBigEndian64(keys[i].data());
    if (!statuses[i].ok()) {
      return FromRocksStatus(statuses[i].IsNotFound()
                                 ? rocksdb::Status::Corruption("event missing from the log")
                                 : statuses[i],
                             absl::StrCat("read event at position ", position));
    }
    IHS_ASSIGN_OR_RETURN(StoredEvent e, MakeStoredEvent(position, ToView(values[i]), options));
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<StoredEvent>> EventStoreImpl::ReadAll(uint64_t from_position,
                                                                 size_t max_count,
                                                                 const ReadOptions& options) {
  const uint64_t head = Head();
  if (from_position > head) {
    return absl::OutOfRangeError(
        absl::StrCat("position ", from_position, " is past the log's end (", head, ")"));
  }
  std::vector<StoredEvent> out;
  const uint64_t end = from_position + std::min<uint64_t>(max_count, head - from_position);
  if (end == from_position) return out;
  out.reserve(end - from_position);
  if (end - from_position == 1) {
    // One event (a projection looking up the event an id names): a point lookup, which costs
    // a fraction of an iterator's creation and seek.
    rocksdb::PinnableSlice value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cf_events_, internal::EventKey(from_position), &value);
    if (s.IsNotFound()) {
      return absl::DataLossError(absl::StrCat("the log has no event at position ", from_position));
    }
    IHS_RETURN_IF_ERROR(FromRocksStatus(s, "read the log"));
    IHS_ASSIGN_OR_RETURN(StoredEvent e, MakeStoredEvent(from_position, ToView(value), options));
    out.push_back(std::move(e));
    return out;
  }
  std::string upper = internal::EventKey(end);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_events_));
  uint64_t expected = from_position;
  size_t bytes = 0;
  for (it->Seek(internal::EventKey(from_position)); it->Valid(); it->Next(), ++expected) {
    if (it->key().size() != 8 || GetBigEndian64(it->key().data()) != expected) {
      return absl::DataLossError(absl::StrCat("the log has no event at position ", expected));
    }
    IHS_ASSIGN_OR_RETURN(StoredEvent e, MakeStoredEvent(expected, ToView(it->value()), options));
    out.push_back(std::move(e));
    bytes += it->value().size();
    if (options.max_bytes != 0 && bytes >= options.max_bytes) {
      ++expected;
      break;
    }
  }
  IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), "read the log"));
  if (expected != end && (options.max_bytes == 0 || bytes < options.max_bytes)) {
    return absl::DataLossError(absl::StrCat("the log has no event at position ", expected));
  }
  return out;
}

absl::StatusOr<StreamInfo> EventStoreImpl::GetStreamInfo(absl::string_view stream) {
  IHS_RETURN_IF_ERROR(ValidateStreamId(stream));
  IHS_ASSIGN_OR_RETURN(std::optional<StreamMeta> meta, LoadMeta(stream));
  if (!meta) return absl::NotFoundError(absl::StrCat("no such stream: ", stream));
  StreamInfo info;
  info.stream = std::string(stream);
  info.event_count = meta->event_count;
  info.current_version = meta->event_count - 1;
  info.first_position = meta->first_position;
  info.last_position = meta->last_position;
  info.first_occurred_at = meta->first_occurred_at;
  info.last_occurred_at = meta->last_occurred_at;
  info.hold_position = meta->hold_position;
  info.erased_position = meta->erased_position;
  return info;
}

uint64_t EventStoreImpl::Head() {
  absl::MutexLock l(&mu_);
  return head_;
}

uint64_t EventStoreImpl::WaitForCommit(uint64_t known_head, absl::Time deadline) {
  absl::MutexLock l(&mu_);
  while (head_ <= known_head && !closing_) {
    if (commit_cv_.WaitWithDeadline(&mu_, deadline)) break;  // deadline passed
  }
  return head_;
}

absl::StatusOr<std::string> EventStoreImpl::Root(uint64_t size) {
  const uint64_t head = Head();
  if (size > head) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", size, " is larger than the log (", head, " events)"));
  }
  std::vector<internal::SubtreeId> ids = internal::SubtreesOf(size);
  std::vector<std::string> keys;
  for (const auto& id : ids) keys.push_back(internal::MerkleKey(id.level, id.index));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), cf_merkle_, keys.size(), slices.data(), values.data(),
                statuses.data());
  std::vector<Hash> hashes(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!statuses[i].ok() || !internal::HashFromBytes(ToView(values[i]), &hashes[i])) {
      return absl::DataLossError(absl::StrCat("Merkle subtree (level ", ids[i].level, ", index ",
                                              ids[i].index, ") is missing or malformed"));
    }
  }
  Hash root = internal::FoldSubtrees(hashes);
  return std::string(internal::HashBytes(root));
}

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

absl::StatusOr<StoreStats> EventStoreImpl::Stats() {
  StoreStats st;
  st.event_count = Head();
  st.format_version = kFormatVersion;
  {
    absl::MutexLock l(&leader_mu_);
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
  uint64_t sst = 0;
  for (auto* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kLiveSstFilesSize, &v)) sst += v;
  }
  rocksdb::VectorLogPtr wals;
  if (db_->GetSortedWalFiles(wals).ok()) {
    for (const auto& w : wals) sst += w->SizeFileBytes();
  }
  st.disk_bytes = sst;
  IHS_ASSIGN_OR_RETURN(st.root_hash, Root(st.event_count));
  absl::MutexLock l(&mu_);
  st.appends = stat_appends_;
  st.syncs = stat_syncs_;
  st.largest_group = stat_largest_group_;
  return st;
}

// ---------------------------------------------------------------------------------------------
// Event ids and state families.

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

// ---------------------------------------------------------------------------------------------
// Audit: signed tree heads and proofs.

namespace {

// The largest power of two below n (n > 1): where RFC 9162 splits a tree of n leaves.
uint64_t SplitPoint(uint64_t n) { return uint64_t{1} << (63 - __builtin_clzll(n - 1)); }

}  // namespace

absl::StatusOr<tlog::VerifierKey> EventStoreImpl::VerifierKey() {
  if (!signing_key_) return signing_key_error_;
  tlog::PublicKey pub;
  std::memcpy(pub.data(), signing_key_->data() + 32, pub.size());
  return tlog::VerifierKeyFor(pub);
}

absl::StatusOr<std::string> EventStoreImpl::SignedHead() {
  IHS_ASSIGN_OR_RETURN(tlog::VerifierKey key, VerifierKey());
  tlog::TreeHead head;
  head.origin = key.name;
  head.size = Head();
  IHS_ASSIGN_OR_RETURN(std::string root, Root(head.size));
  tlog::HashFromBytes(root, &head.root);
  head.time_micros = absl::ToUnixMicros(clock_->Now());
  return tlog::SignHead(head, *signing_key_);
}

absl::StatusOr<std::vector<tlog::Hash>> EventStoreImpl::RangeHashes(
    const std::vector<Range>& ranges) {
  // The stored subtrees that make up each range; ranges of many proofs share many of them, so
  // each distinct one is read once, and in key order (MultiGet then walks each block once).
  // A subtree is packed as level << 58 | index while they are sorted: the order of its key.
  std::vector<uint64_t> subtrees;
  std::vector<size_t> first;  // of each range, in subtrees
  for (const Range& r : ranges) {
    first.push_back(subtrees.size());
    for (const internal::SubtreeId& id : internal::SubtreesOf(r.size)) {
      if ((r.start & ((uint64_t{1} << id.level) - 1)) != 0) {
        return absl::InternalError(absl::StrCat("range [", r.start, ", +", r.size,
                                                ") is not a subtree of the RFC 9162 tree"));
      }
      subtrees.push_back(uint64_t{id.level} << 58 | ((r.start >> id.level) + id.index));
    }
  }
  first.push_back(subtrees.size());
  std::vector<uint64_t> distinct = subtrees;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<std::string> keys;
  keys.reserve(distinct.size());
  for (uint64_t d : distinct) {
    keys.push_back(
        internal::MerkleKey(static_cast<uint8_t>(d >> 58), d & ((uint64_t{1} << 58) - 1)));
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  // A big batch (verify-party's) is mostly lookups that miss the block cache: its second half
  // is read on another thread, the machine having at least two cores.
  constexpr size_t kSplitBatch = 4096;
  const size_t half = keys.size() >= kSplitBatch ? keys.size() / 2 : keys.size();
  auto read = [&](size_t from, size_t to) {
    if (from == to) return;
    db_->MultiGet(rocksdb::ReadOptions(), cf_merkle_, to - from, slices.data() + from,
                  values.data() + from, statuses.data() + from, /*sorted_input=*/true);
  };
  if (half < keys.size()) {
    std::thread second(read, half, keys.size());
    read(0, half);
    second.join();
  } else {
    read(0, keys.size());
  }
  std::vector<tlog::Hash> out;
  out.reserve(ranges.size());
  std::vector<Hash> hashes;
  for (size_t i = 0; i < ranges.size(); ++i) {
    hashes.assign(first[i + 1] - first[i], Hash{});
    for (size_t j = first[i]; j < first[i + 1]; ++j) {
      const size_t d =
          std::lower_bound(distinct.begin(), distinct.end(), subtrees[j]) - distinct.begin();
      if (!statuses[d].ok() || !internal::HashFromBytes(ToView(values[d]), &hashes[j - first[i]])) {
        return absl::DataLossError(absl::StrCat("a Merkle subtree of positions [", ranges[i].start,
                                                ", ", ranges[i].start + ranges[i].size,
                                                ") is missing or malformed"));
      }
    }
    out.push_back(internal::FoldSubtrees(hashes));
  }
  return out;
}

namespace {
// RFC 9162 2.1.3.1, top down: the ranges of the siblings on the audit path of leaf `index` in
// the tree of `size` leaves, bottom up.
void AuditPathRanges(uint64_t index, uint64_t size, std::vector<EventStoreImpl::Range>* out) {
  const size_t begin = out->size();
  uint64_t start = 0, n = size, m = index;
  while (n > 1) {
    const uint64_t k = SplitPoint(n);
    if (m < k) {
      out->push_back({start + k, n - k});
      n = k;
    } else {
      out->push_back({start, k});
      start += k;
      m -= k;
      n -= k;
    }
  }
  std::reverse(out->begin() + static_cast<ptrdiff_t>(begin), out->end());
}
}  // namespace

absl::StatusOr<std::vector<tlog::Hash>> EventStoreImpl::InclusionProof(uint64_t index,
                                                                       uint64_t size) {
  IHS_ASSIGN_OR_RETURN(std::vector<std::vector<tlog::Hash>> paths, InclusionProofs({index}, size));
  return std::move(paths[0]);
}

absl::StatusOr<std::vector<std::vector<tlog::Hash>>> EventStoreImpl::InclusionProofs(
    const std::vector<uint64_t>& indices, uint64_t size) {
  const uint64_t head = Head();
  std::vector<Range> ranges;
  std::vector<size_t> first;
  for (uint64_t index : indices) {
    if (index >= size || size > head) {
      return absl::OutOfRangeError(absl::StrCat("no inclusion proof of position ", index,
                                                " in a tree of ", size, " events (the log has ",
                                                head, ")"));
    }
    first.push_back(ranges.size());
    AuditPathRanges(index, size, &ranges);
  }
  first.push_back(ranges.size());
  IHS_ASSIGN_OR_RETURN(std::vector<tlog::Hash> hashes, RangeHashes(ranges));
  std::vector<std::vector<tlog::Hash>> paths(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    paths[i].assign(hashes.begin() + static_cast<ptrdiff_t>(first[i]),
                    hashes.begin() + static_cast<ptrdiff_t>(first[i + 1]));
  }
  return paths;
}

absl::StatusOr<std::vector<tlog::Hash>> EventStoreImpl::ConsistencyProof(uint64_t old_size,
                                                                         uint64_t new_size) {
  const uint64_t head = Head();
  if (old_size > new_size || new_size > head) {
    return absl::OutOfRangeError(absl::StrCat("no consistency proof from ", old_size, " to ",
                                              new_size, " events (the log has ", head, ")"));
  }
  if (old_size == 0 || old_size == new_size) return std::vector<tlog::Hash>();
  // RFC 9162 2.1.4.1 SUBPROOF, top down; the proof lists its nodes bottom up.
  std::vector<Range> nodes;
  uint64_t start = 0, n = new_size, m = old_size;
  bool whole = true;  // the old tree is D[0:m] itself, which the verifier has as its root
  while (m != n) {
    const uint64_t k = SplitPoint(n);
    if (m <= k) {
      nodes.push_back({start + k, n - k});
      n = k;
    } else {
      nodes.push_back({start, k});
      start += k;
      m -= k;
      n -= k;
      whole = false;
    }
  }
  if (!whole) nodes.push_back({start, m});
  std::reverse(nodes.begin(), nodes.end());
  return RangeHashes(nodes);
}

namespace {

absl::Status ValidateStateName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxStateFamilyName) {
    return absl::InvalidArgumentError(absl::StrCat("a state family's name has 1 to ",
                                                   kMaxStateFamilyName, " bytes: \"", name, "\""));
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' ||
          c == '-')) {
      return absl::InvalidArgumentError(
          absl::StrCat("a state family's name has only [a-z0-9_.@-]: \"", name, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

EventStoreImpl::StateHandle EventStoreImpl::AdoptStateHandle(rocksdb::ColumnFamilyHandle* h) {
  rocksdb::DB* db = db_.get();
  return StateHandle(h, [db](rocksdb::ColumnFamilyHandle* p) {
    db->DestroyColumnFamilyHandle(p).PermitUncheckedError();  // only frees memory
  });
}

absl::StatusOr<EventStoreImpl::StateHandle> EventStoreImpl::FindState(absl::string_view name) {
  IHS_RETURN_IF_ERROR(ValidateStateName(name));
  absl::MutexLock l(&state_mu_);
  auto it = states_.find(name);
  if (it == states_.end()) {
    return absl::NotFoundError(absl::StrCat("no state family \"", name, "\""));
  }
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// Backup.

absl::StatusOr<uint64_t> EventStoreImpl::Backup(const std::string& to, bool include_master_key) {
  const fs::path target(to);
  std::error_code ec;
  if (fs::exists(target, ec) && !fs::is_empty(target, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("backup target ", to, " exists and is not empty: give a new directory"));
  }
  fs::create_directories(target, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot create ", to, ": ", ec.message()));
  }
  const uint64_t head = Head();
  const fs::path dir(options_.path);
  // The keys first: a copy of the database without them would be of no use.
  auto copy_key = [&](const std::string& configured, const char* name) -> absl::Status {
    const fs::path from = configured.empty() ? dir / name : fs::path(configured);
    fs::copy_file(from, target / name, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::permissions(target / name, fs::perms::owner_read | fs::perms::owner_write, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot copy ", from.string(), " into ", to, ": ", ec.message()));
    }
    return absl::OkStatus();
  };
  if (signing_key_) IHS_RETURN_IF_ERROR(copy_key(options_.signing_key_path, "signing.key"));
  if (include_master_key) IHS_RETURN_IF_ERROR(copy_key(options_.master_key_path, "master.key"));

  rocksdb::Checkpoint* raw = nullptr;
  IHS_RETURN_IF_ERROR(
      FromRocksStatus(rocksdb::Checkpoint::Create(db_.get(), &raw), "start a checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // A store open for writing flushes first, so the copy needs no WAL; a read-only one cannot
  // flush, and copies the WAL files the writer still uses (RocksDB recovers the copy from them).
  const uint64_t log_size_for_flush = options_.read_only ? std::numeric_limits<uint64_t>::max() : 0;
  IHS_RETURN_IF_ERROR(
      FromRocksStatus(checkpoint->CreateCheckpoint((target / "db").string(), log_size_for_flush),
                      absl::StrCat("checkpoint into ", to)));
  int dir_fd = ::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return head;
}

// ---------------------------------------------------------------------------------------------
// Retention.

absl::StatusOr<RetentionReport> EventStoreImpl::RunRetention(const RetentionPolicy& policy,
                                                             absl::Time now,
                                                             absl::string_view requested_by,
                                                             bool dry_run) {
  if (options_.read_only && !dry_run) {
    return absl::FailedPreconditionError("store is open for reading only");
  }
  if (absl::StripAsciiWhitespace(requested_by).empty()) {
    return absl::InvalidArgumentError(
        "a retention run needs the name of who runs it, for the audit trail");
  }
  // The expired keys, by party, from one pass over content_keys.
  struct Expired {
    std::vector<internal::KeyClass> classes;
    std::set<std::string> rules;
  };
  std::map<std::string, Expired> by_party;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf_content_keys_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->value().empty() || it->value()[0] == internal::kExpiredKeyTag) continue;
      std::string stream;
      uint32_t version = 0;
      if (!internal::ParseContentKeyRow(ToView(it->key()), &stream, &version)) {
        return absl::DataLossError("content_keys holds a malformed row");
      }
      const std::optional<internal::KeyClass> c = internal::ClassOfKeyVersion(version);
      if (!c) continue;  // format 1's key of the whole party: only erasure removes it
      const RetentionRule* rule = policy.RuleFor(c->channel, c->type);
      if (rule == nullptr || RetentionPolicy::ExpiresAt(*rule, c->year) > now) continue;
      Expired& e = by_party[stream];
      e.classes.push_back(*c);
      e.rules.insert(rule->text);
    }
    IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), "read content_keys"));
  }
  RetentionReport report;
  for (const auto& entry : by_party) {
    // Named, not a structured binding: a lambda below captures them, which C++17 allows for
    // variables only (clang refuses the binding).
    const std::string& party = entry.first;
    const auto& expired = entry.second;
    if (dry_run) {
      ++report.parties;
      report.classes += expired.classes.size();
      continue;
    }
    absl::StatusOr<uint64_t> done = AppendControl(party, [&](schema::Event::Builder ev) {
      auto x = ev.initContentExpiry();
      auto list = x.initExpired(static_cast<unsigned>(expired.classes.size()));
      for (size_t i = 0; i < expired.classes.size(); ++i) {
        list[i].setChannel(static_cast<schema::Channel>(expired.classes[i].channel));
        list[i].setType(static_cast<schema::TouchpointType>(expired.classes[i].type));
        list[i].setYear(expired.classes[i].year);
      }
      x.setRules(absl::StrJoin(expired.rules, "\n"));
      x.setRequestedBy(std::string(requested_by));
    });
    if (done.status().code() == absl::StatusCode::kFailedPrecondition) {
      report.held.push_back(party);  // under hold (an erased party has no keys left)
      continue;
    }
    IHS_RETURN_IF_ERROR(done.status());
    ++report.parties;
    report.classes += expired.classes.size();
  }
  if (dry_run) return report;
  IHS_ASSIGN_OR_RETURN(report.run_position,
                       AppendControl(kRetentionStream, [&](schema::Event::Builder ev) {
                         auto r = ev.initRetentionRun();
                         r.setPolicy(policy.text());
                         r.setAsOf(absl::ToUnixMicros(now));
                         r.setParties(report.parties);
                         r.setClasses(report.classes);
                         auto held = r.initHeld(static_cast<unsigned>(report.held.size()));
                         for (size_t i = 0; i < report.held.size(); ++i)
                           held.set(i, report.held[i]);
                         r.setRequestedBy(std::string(requested_by));
                       }));
  if (report.classes > 0) {
    absl::Status purged = PurgeDeletedKeys();
    if (!purged.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "the retention run is recorded (position ", *report.run_position,
          "), but the compaction that removes the keys' bytes failed: ", purged.message()));
    }
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Erasure and legal holds.

absl::StatusOr<uint64_t> EventStoreImpl::AppendControl(
    absl::string_view party, const std::function<void(schema::Event::Builder)>& fill) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("store is open for reading only");
  }
  capnp::MallocMessageBuilder message;
  auto ev = message.initRoot<schema::Event>();
  const std::string id = internal::RandomBytes(16);
  ev.setId(kj::arrayPtr(reinterpret_cast<const kj::byte*>(id.data()), id.size()));
  ev.setStreamId(std::string(party));
  ev.setOccurredAt(absl::ToUnixMicros(clock_->Now()));
  ev.setSourceSystem("ihs");
  fill(ev);
  // Prepared appends point into `appends`: it must outlive the commit.
  const std::vector<StreamAppend> appends = {
      StreamAppend{std::string(party), ExpectedVersion::Any(), {ev.asReader()}}};
  IHS_ASSIGN_OR_RETURN(std::vector<PreparedAppend> prepared, Prepare(appends, /*control=*/true));
  IHS_ASSIGN_OR_RETURN(std::vector<AppendResult> result, Commit(prepared));
  return result[0].positions[0];
}

namespace {
absl::Status CheckTrail(absl::string_view what, absl::string_view reason,
                        absl::string_view requested_by) {
  if (absl::StripAsciiWhitespace(reason).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " needs a reason, for the audit trail"));
  }
  if (absl::StripAsciiWhitespace(requested_by).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " needs the name of who asked for it, for the audit trail"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<uint64_t> EventStoreImpl::Erase(absl::string_view party, absl::string_view reason,
                                               absl::string_view requested_by) {
  IHS_RETURN_IF_ERROR(CheckTrail("an erasure", reason, requested_by));
  IHS_ASSIGN_OR_RETURN(uint64_t position, AppendControl(party, [&](schema::Event::Builder ev) {
                         auto r = ev.initErasureRequest();
                         r.setReason(std::string(reason));
                         r.setRequestedBy(std::string(requested_by));
                       }));
  absl::Status purged = PurgeDeletedKeys();
  if (!purged.ok()) {
    return absl::UnavailableError(
        absl::StrCat("party ", party, " was erased (position ", position,
                     "), but the compaction that removes its key's bytes from the files failed: ",
                     purged.message(), "; they go with RocksDB's next compaction of them"));
  }
  return position;
}

absl::StatusOr<uint64_t> EventStoreImpl::SetLegalHold(absl::string_view party, bool lift,
                                                      absl::string_view reason,
                                                      absl::string_view requested_by) {
  IHS_RETURN_IF_ERROR(CheckTrail(lift ? "lifting a hold" : "a legal hold", reason, requested_by));
  return AppendControl(party, [&](schema::Event::Builder ev) {
    auto h = ev.initLegalHold();
    h.setLift(lift);
    h.setReason(std::string(reason));
    h.setRequestedBy(std::string(requested_by));
  });
}

absl::Status EventStoreImpl::PurgeDeletedKeys() {
  std::vector<StateHandle> states;  // kept alive while they are flushed
  std::vector<rocksdb::ColumnFamilyHandle*> all(handles_.begin(), handles_.end());
  {
    absl::MutexLock l(&state_mu_);
    for (auto& [name, h] : states_) {
      states.push_back(h);
      all.push_back(h.get());
    }
  }
  // Every family: a WAL file is deleted only once no family needs it, and the WAL that carried
  // a key's Put may be long obsolete or still live.
  rocksdb::FlushOptions flush;
  flush.allow_write_stall = true;
  IHS_RETURN_IF_ERROR(FromRocksStatus(db_->Flush(flush, all), "flush before purging keys"));
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return FromRocksStatus(db_->CompactRange(compact, cf_content_keys_, nullptr, nullptr),
                         "compact content_keys");
}

absl::Status EventStoreImpl::CreateStateFamily(absl::string_view name) {
  IHS_RETURN_IF_ERROR(ValidateStateName(name));
  if (options_.read_only) {
    return absl::FailedPreconditionError("the store is open read-only: cannot create state");
  }
  absl::MutexLock l(&state_mu_);
  if (states_.contains(name)) return absl::OkStatus();
  rocksdb::ColumnFamilyHandle* h = nullptr;
  IHS_RETURN_IF_ERROR(FromRocksStatus(
      db_->CreateColumnFamily(state_options_, absl::StrCat(internal::kCfStatePrefix, name), &h),
      absl::StrCat("create state family ", name)));
  states_[name] = AdoptStateHandle(h);
  return absl::OkStatus();
}

absl::Status EventStoreImpl::DropStateFamily(absl::string_view name) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("the store is open read-only: cannot drop state");
  }
  IHS_ASSIGN_OR_RETURN(StateHandle h, FindState(name));
  IHS_RETURN_IF_ERROR(
      FromRocksStatus(db_->DropColumnFamily(h.get()), absl::StrCat("drop state family ", name)));
  absl::MutexLock l(&state_mu_);
  states_.erase(name);
  return absl::OkStatus();
}

std::vector<std::string> EventStoreImpl::StateFamilies() {
  std::vector<std::string> out;
  {
    absl::MutexLock l(&state_mu_);
    for (const auto& [name, h] : states_) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status EventStoreImpl::WriteState(absl::string_view family, const StateBatch& batch) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("the store is open read-only: cannot write state");
  }
  IHS_ASSIGN_OR_RETURN(StateHandle h, FindState(family));
  rocksdb::WriteBatch wb;
  for (const StateBatch::Op& op : batch.ops()) {
    rocksdb::Status s = op.value ? wb.Put(h.get(), op.key, *op.value) : wb.Delete(h.get(), op.key);
    IHS_RETURN_IF_ERROR(FromRocksStatus(s, absl::StrCat("stage state of ", family)));
  }
  return FromRocksStatus(db_->Write(rocksdb::WriteOptions(), &wb),
                         absl::StrCat("write state of ", family));
}

absl::StatusOr<std::optional<std::string>> EventStoreImpl::GetState(absl::string_view family,
                                                                    absl::string_view key) {
  IHS_ASSIGN_OR_RETURN(StateHandle h, FindState(family));
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), h.get(), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::nullopt;
  IHS_RETURN_IF_ERROR(FromRocksStatus(s, absl::StrCat("read state of ", family)));
  return value;
}

absl::Status EventStoreImpl::ScanState(absl::string_view family, absl::string_view from,
                                       absl::string_view to, const StateVisitor& visit) {
  IHS_ASSIGN_OR_RETURN(StateHandle h, FindState(family));
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(to.data(), to.size());
  if (!to.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, h.get()));
  for (it->Seek(rocksdb::Slice(from.data(), from.size())); it->Valid(); it->Next()) {
    if (!visit(ToView(it->key()), ToView(it->value()))) break;
  }
  return FromRocksStatus(it->status(), absl::StrCat("scan state of ", family));
}

// ---------------------------------------------------------------------------------------------
// Bulk loads of state: SST files written beside the database and ingested.

namespace {

class RocksStateFile final : public StateFile {
 public:
  RocksStateFile(const rocksdb::Options& options, rocksdb::ColumnFamilyHandle* family,
                 std::string path)
      : writer_(rocksdb::EnvOptions(), options, family), path_(std::move(path)) {}
  ~RocksStateFile() override {
    std::error_code ec;
    std::filesystem::remove(path_, ec);  // ingested files were moved (linked) already
  }

  absl::Status Open() {
    return FromRocksStatus(writer_.Open(path_), absl::StrCat("create state file ", path_));
  }
  absl::Status Put(absl::string_view key, absl::string_view value) override {
    ++entries_;
    return FromRocksStatus(writer_.Put(rocksdb::Slice(key.data(), key.size()),
                                       rocksdb::Slice(value.data(), value.size())),
                           "write a state file");
  }
  absl::Status Delete(absl::string_view key) override {
    ++entries_;
    return FromRocksStatus(writer_.Delete(rocksdb::Slice(key.data(), key.size())),
                           "write a state file");
  }
  uint64_t entries() const override { return entries_; }
  // Completes and syncs the file.
  absl::Status Finish() { return FromRocksStatus(writer_.Finish(), "finish a state file"); }
  const std::string& path() const { return path_; }

 private:
  rocksdb::SstFileWriter writer_;
  const std::string path_;
  uint64_t entries_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<StateFile>> EventStoreImpl::NewStateFile(absl::string_view family) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("the store is open read-only: cannot write state");
  }
  IHS_ASSIGN_OR_RETURN(StateHandle h, FindState(family));
  const fs::path dir = fs::path(options_.path) / "ingest";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  }
  rocksdb::Options o(internal::StoreDbOptions(), state_options_);
  // A bulk-loaded file usually lands on the last level, whose files are ZSTD; LZ4 writes several
  // times faster, and a compaction that merges the file later rewrites it in ZSTD.
  o.bottommost_compression = rocksdb::kLZ4Compression;
  auto file = std::make_unique<RocksStateFile>(
      o, h.get(), (dir / absl::StrCat(next_state_file_.fetch_add(1), ".sst")).string());
  IHS_RETURN_IF_ERROR(file->Open());
  return file;
}

absl::Status EventStoreImpl::IngestState(absl::string_view family,
                                         std::vector<std::unique_ptr<StateFile>> files) {
  IHS_ASSIGN_OR_RETURN(StateHandle h, FindState(family));
  std::vector<std::string> paths;
  for (auto& f : files) {
    auto* file = dynamic_cast<RocksStateFile*>(f.get());
    if (file == nullptr) return absl::InvalidArgumentError("not a state file of this store");
    if (file->entries() == 0) continue;  // RocksDB refuses empty files
    IHS_RETURN_IF_ERROR(file->Finish());
    paths.push_back(file->path());
  }
  if (paths.empty()) return absl::OkStatus();
  rocksdb::IngestExternalFileOptions o;
  o.move_files = true;  // a hard link into the database: no copy
  return FromRocksStatus(db_->IngestExternalFile(h.get(), paths, o),
                         absl::StrCat("ingest state into ", family));
}

}  // namespace ihs::store
