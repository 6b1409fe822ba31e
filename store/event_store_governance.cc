// EventStoreImpl's backup, retention, erasure and legal holds.
#include <capnp/message.h>
#include <fcntl.h>
#include <rocksdb/utilities/checkpoint.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "store/event_store_impl.h"
#include "store/internal/impl_parts.h"
#include "store/internal/rocks_status.h"
#include "store/retention.h"

namespace ihs::store {

using internal::FromRocksStatus;
using internal::ToView;

namespace fs = std::filesystem;

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

absl::StatusOr<uint64_t> EventStoreImpl::BackgroundWork() {
  uint64_t work = 0;
  auto add = [&](rocksdb::ColumnFamilyHandle* h, const std::string& property) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, property, &v)) work += v;
  };
  add(db_->DefaultColumnFamily(), rocksdb::DB::Properties::kNumRunningFlushes);
  add(db_->DefaultColumnFamily(), rocksdb::DB::Properties::kNumRunningCompactions);
  std::vector<rocksdb::ColumnFamilyHandle*> families(handles_.begin(), handles_.end());
  {
    MutexLock l(&state_mu_);
    for (const auto& [name, h] : states_) families.push_back(h.get());
  }
  for (rocksdb::ColumnFamilyHandle* h : families) {
    add(h, rocksdb::DB::Properties::kMemTableFlushPending);
    add(h, rocksdb::DB::Properties::kCompactionPending);
  }
  return work;
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
  IHS_ASSIGN_OR_RETURN(std::vector<uint64_t> positions, AppendControls({std::string(party)}, fill));
  return positions[0];
}

absl::StatusOr<std::vector<uint64_t>> EventStoreImpl::AppendControls(
    const std::vector<std::string>& parties,
    const std::function<void(schema::Event::Builder)>& fill) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("store is open for reading only");
  }
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> messages;
  // Prepared appends point into `appends`: it must outlive the commit.
  std::vector<StreamAppend> appends;
  for (const std::string& party : parties) {
    auto& message = messages.emplace_back(std::make_unique<capnp::MallocMessageBuilder>());
    auto ev = message->initRoot<schema::Event>();
    const std::string id = internal::RandomBytes(16);
    ev.setId(kj::arrayPtr(reinterpret_cast<const kj::byte*>(id.data()), id.size()));
    ev.setStreamId(party);
    ev.setOccurredAt(absl::ToUnixMicros(clock_->Now()));
    ev.setSourceSystem("ihs");
    fill(ev);
    appends.push_back(StreamAppend{party, ExpectedVersion::Any(), {ev.asReader()}});
  }
  IHS_ASSIGN_OR_RETURN(std::vector<PreparedAppend> prepared, Prepare(appends, /*control=*/true));
  IHS_ASSIGN_OR_RETURN(std::vector<AppendResult> result, Commit(prepared));
  std::vector<uint64_t> positions;
  for (const AppendResult& r : result) positions.push_back(r.positions[0]);
  return positions;
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
  IHS_ASSIGN_OR_RETURN(std::vector<uint64_t> positions,
                       EraseAll({std::string(party)}, reason, requested_by));
  return positions[0];
}

absl::StatusOr<std::vector<uint64_t>> EventStoreImpl::EraseAll(
    const std::vector<std::string>& parties, absl::string_view reason,
    absl::string_view requested_by) {
  IHS_RETURN_IF_ERROR(CheckTrail("an erasure", reason, requested_by));
  if (parties.empty()) return absl::InvalidArgumentError("an erasure needs a party");
  IHS_ASSIGN_OR_RETURN(std::vector<uint64_t> positions,
                       AppendControls(parties, [&](schema::Event::Builder ev) {
                         auto r = ev.initErasureRequest();
                         r.setReason(std::string(reason));
                         r.setRequestedBy(std::string(requested_by));
                       }));
  absl::Status purged = PurgeDeletedKeys();
  if (!purged.ok()) {
    return absl::UnavailableError(absl::StrCat(
        absl::StrJoin(parties, ", "), parties.size() == 1 ? " was" : " were", " erased (position ",
        positions[0], "), but the compaction that removes the keys' bytes from the files failed: ",
        purged.message(), "; they go with RocksDB's next compaction of them"));
  }
  return positions;
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
  IHS_RETURN_IF_ERROR(Flush());
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return FromRocksStatus(db_->CompactRange(compact, cf_content_keys_, nullptr, nullptr),
                         "compact content_keys");
}

absl::Status EventStoreImpl::Flush() {
  if (options_.read_only) return absl::OkStatus();
  std::vector<StateHandle> states;  // kept alive while they are flushed
  std::vector<rocksdb::ColumnFamilyHandle*> all(handles_.begin(), handles_.end());
  {
    MutexLock l(&state_mu_);
    for (auto& [name, h] : states_) {
      states.push_back(h);
      all.push_back(h.get());
    }
  }
  // Every family: a WAL file is deleted only once no family needs it (PurgeDeletedKeys: the WAL
  // that carried a key's Put may be long obsolete or still live).
  rocksdb::FlushOptions flush;
  flush.allow_write_stall = true;
  return FromRocksStatus(db_->Flush(flush, all), "flush");
}

}  // namespace ihs::store
