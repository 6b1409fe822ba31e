// EventStoreImpl's state families: the derived state of projections/, and its bulk loads.
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "store/event_store_impl.h"
#include "store/internal/db_options.h"
#include "store/internal/impl_parts.h"
#include "store/internal/rocks_status.h"

namespace ihs::store {

using internal::FromRocksStatus;
using internal::ToView;

namespace fs = std::filesystem;

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
  MutexLock l(&state_mu_);
  auto it = states_.find(name);
  if (it == states_.end()) {
    return absl::NotFoundError(absl::StrCat("no state family \"", name, "\""));
  }
  return it->second;
}

absl::Status EventStoreImpl::CreateStateFamily(absl::string_view name) {
  IHS_RETURN_IF_ERROR(ValidateStateName(name));
  MutexLock l(&state_mu_);
  if (states_.contains(name)) return absl::OkStatus();
  if (options_.read_only) {
    return absl::FailedPreconditionError(
        absl::StrCat("the store is open read-only: cannot create state family ", name));
  }
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
  MutexLock l(&state_mu_);
  states_.erase(name);
  return absl::OkStatus();
}

std::vector<std::string> EventStoreImpl::StateFamilies() {
  std::vector<std::string> out;
  {
    MutexLock l(&state_mu_);
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
  // A bulk-loaded file usually lands on the last level: LZ4, as state files are on every level.
  rocksdb::Options o(internal::StoreDbOptions(), state_options_);
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
