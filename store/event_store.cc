// StoredEvent, EventStore::Open, and the calls of the store's other faces (store/audit.h,
// store/governance.h, store/backup.h, store/state_store.h) on an embedded store.
#include "store/event_store.h"

#include "absl/strings/str_cat.h"
#include "common/prefetch.h"
#include "common/status_macros.h"
#include "store/backup.h"
#include "store/event_store_impl.h"
#include "store/internal/codec.h"

namespace ihs::store {

StoredEvent::StoredEvent(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
StoredEvent::StoredEvent(StoredEvent&&) noexcept = default;
StoredEvent& StoredEvent::operator=(StoredEvent&&) noexcept = default;
StoredEvent::~StoredEvent() = default;

uint64_t StoredEvent::position() const { return rep_->position; }
schema::Event::Reader StoredEvent::event() const { return rep_->root; }
absl::string_view StoredEvent::bytes() const { return rep_->event->prefixed(); }
ContentState StoredEvent::content_state() const { return rep_->content_state; }
void PrefetchEventHandle(const StoredEvent& event) {
  PrefetchBytes(&internal::StoredEventAccess::Of(event), sizeof(internal::StoredEventRep));
}
void PrefetchEventRecord(const StoredEvent& event) {
  const internal::StoredEventRep& rep = internal::StoredEventAccess::Of(event);
  // The reader, whose arena a field read checks bounds against, and the record's first 512
  // bytes: an event takes about 400 on the 10M dataset, and only those with long sealed
  // content, which a projection does not open, take many more.
  constexpr size_t kRecordBytes = 512;
  PrefetchBytes(rep.event.get(), sizeof(CanonicalMessage));
  PrefetchBytes(rep.record.data(), std::min(rep.record.size(), kRecordBytes));
}
schema::Content::Reader StoredEvent::content() const {
  return rep_->content ? rep_->content->root<schema::Content>() : schema::Content::Reader();
}

absl::StatusOr<std::unique_ptr<EventStore>> EventStore::Open(const Options& options) {
  return EventStoreImpl::Open(options);
}

absl::StatusOr<EventStoreImpl*> Embedded(EventStore& store, absl::string_view what) {
  auto* impl = dynamic_cast<EventStoreImpl*>(&store);
  if (impl == nullptr) {
    return absl::UnimplementedError(absl::StrCat("this store keeps no ", what, " of its own"));
  }
  return impl;
}

StateStore* StateStoreOf(EventStore& store) { return dynamic_cast<StateStore*>(&store); }

// --- store/audit.h ----------------------------------------------------------------------------

absl::StatusOr<std::string> Root(EventStore& store, uint64_t size) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "Merkle tree"));
  return impl->Root(size);
}

absl::StatusOr<tlog::VerifierKey> VerifierKey(EventStore& store) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "signing key"));
  return impl->VerifierKey();
}

absl::StatusOr<std::string> SignedHead(EventStore& store) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "signing key"));
  return impl->SignedHead();
}

absl::StatusOr<std::vector<tlog::Hash>> InclusionProof(EventStore& store, uint64_t index,
                                                       uint64_t size) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "Merkle tree"));
  return impl->InclusionProof(index, size);
}

absl::StatusOr<std::vector<std::vector<tlog::Hash>>> InclusionProofs(
    EventStore& store, const std::vector<uint64_t>& indices, uint64_t size) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "Merkle tree"));
  return impl->InclusionProofs(indices, size);
}

absl::StatusOr<std::vector<tlog::Hash>> ConsistencyProof(EventStore& store, uint64_t old_size,
                                                         uint64_t new_size) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "Merkle tree"));
  return impl->ConsistencyProof(old_size, new_size);
}

absl::StatusOr<VerifyReport> Verify(EventStore& store, const ProgressFn& progress) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "stored bytes to verify"));
  return impl->Verify(progress);
}

// --- store/governance.h and store/backup.h ----------------------------------------------------

absl::StatusOr<uint64_t> Erase(EventStore& store, absl::string_view party, absl::string_view reason,
                               absl::string_view requested_by) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "data keys"));
  return impl->Erase(party, reason, requested_by);
}

absl::StatusOr<std::vector<uint64_t>> EraseAll(EventStore& store,
                                               const std::vector<std::string>& parties,
                                               absl::string_view reason,
                                               absl::string_view requested_by) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "data keys"));
  return impl->EraseAll(parties, reason, requested_by);
}

absl::StatusOr<uint64_t> SetLegalHold(EventStore& store, absl::string_view party, bool lift,
                                      absl::string_view reason, absl::string_view requested_by) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "legal holds"));
  return impl->SetLegalHold(party, lift, reason, requested_by);
}

absl::StatusOr<RetentionReport> RunRetention(EventStore& store, const RetentionPolicy& policy,
                                             absl::Time now, absl::string_view requested_by,
                                             bool dry_run) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "data keys"));
  return impl->RunRetention(policy, now, requested_by, dry_run);
}

absl::StatusOr<uint64_t> Backup(EventStore& store, const std::string& to, bool include_master_key) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "files to copy"));
  return impl->Backup(to, include_master_key);
}

absl::StatusOr<uint64_t> BackgroundWork(EventStore& store) {
  IHS_ASSIGN_OR_RETURN(EventStoreImpl * impl, Embedded(store, "files of its own"));
  return impl->BackgroundWork();
}

}  // namespace ihs::store
