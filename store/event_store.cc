// StoredEvent, and EventStore::Open.
#include "store/event_store.h"

#include "common/prefetch.h"
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
void StoredEvent::PrefetchHandle() const { PrefetchBytes(rep_.get(), sizeof(Rep)); }
void StoredEvent::PrefetchRecord() const {
  // The reader, whose arena a field read checks bounds against, and the record's first 512
  // bytes: an event takes about 400 on the 10M dataset, and only those with long sealed
  // content, which a projection does not open, take many more.
  constexpr size_t kRecordBytes = 512;
  PrefetchBytes(rep_->event.get(), sizeof(CanonicalMessage));
  PrefetchBytes(rep_->record.data(), std::min(rep_->record.size(), kRecordBytes));
}
schema::Content::Reader StoredEvent::content() const {
  return rep_->content ? rep_->content->root<schema::Content>() : schema::Content::Reader();
}

absl::StatusOr<std::unique_ptr<EventStore>> EventStore::Open(const Options& options) {
  return EventStoreImpl::Open(options);
}

}  // namespace ihs::store
