// One event as the log holds it, and how a read opens it. No RocksDB behind this header: a log
// reader of another kind (a JetStream partition, issue 29) hands out the same values.
#ifndef IHS_STORE_STORED_EVENT_H_
#define IHS_STORE_STORED_EVENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "schema/event.capnp.h"
#include "store/types.h"

namespace ihs::store {

namespace internal {
struct StoredEventAccess;  // the store's way in (store/internal/stored_event_rep.h)
}

// Owns its bytes and the reader over them together, so a reader can never dangle. Movable, not
// copyable.
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

 private:
  friend struct internal::StoredEventAccess;
  struct Rep;
  explicit StoredEvent(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

struct ReadOptions {
  bool open_content = true;  // decrypt personal content with the stream's data key
  // ReadAll stops after the event that brings the stored bytes read to this many (0: no bound),
  // so that a reader can bound what one read holds in memory; at least one event is read.
  size_t max_bytes = 0;
};

// Hints for a reader that walks many events in turn (the projection runner's rebuild), given
// some events before it reads this one: each event lies in memory of its own, and reading one
// that is not in the cache waits for memory several times over. PrefetchEventHandle starts to
// fetch the event's handle; PrefetchEventRecord, given once the handle has arrived (a few events
// later), its record and the reader over it. Neither changes anything.
void PrefetchEventHandle(const StoredEvent& event);
void PrefetchEventRecord(const StoredEvent& event);

}  // namespace ihs::store

#endif  // IHS_STORE_STORED_EVENT_H_
