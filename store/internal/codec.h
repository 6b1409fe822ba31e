// Stored event records: the bytes of the events column family, and what a StoredEvent holds.
//   record := tag: u8 (0x01) | canonical Cap'n Proto message of schema::Event
//             (one segment, no segment table, capnp::canonicalize)
// Canonical encoding makes the bytes, and so the Merkle leaf hash, a function of the event's
// content alone. A reader meets an unknown tag as kDataLoss (written by a newer format).
// Decoding walks the whole message once inside kj::runCatchingExceptions, because capnp
// validates lazily on access: a malformed record is kDataLoss here, never an exception later.
#ifndef IHS_STORE_INTERNAL_CODEC_H_
#define IHS_STORE_INTERNAL_CODEC_H_

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/pointer-helpers.h>
#include <capnp/serialize.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/event_store.h"

namespace ihs::store {

// A canonical single-segment message and a reader over it, owned together.
class CanonicalMessage {
 public:
  // Copies `words` (a multiple of 8 bytes) into aligned memory and walks the message.
  // kDataLoss names `what` if it does not decode.
  // `check` returns a problem (empty: none) after the message is walked.
  template <typename T>
  static absl::StatusOr<std::unique_ptr<CanonicalMessage>> Parse(absl::string_view words,
                                                                 absl::string_view what);
  // The same for a message that follows `prefix_bytes` (at most 8) of header: one copy, into
  // memory that keeps the header just before the aligned words, so prefixed() returns header
  // and message together.
  template <typename T>
  static absl::StatusOr<std::unique_ptr<CanonicalMessage>> ParsePrefixed(absl::string_view record,
                                                                         size_t prefix_bytes,
                                                                         absl::string_view what);
  absl::string_view prefixed() const { return prefixed_; }
  template <typename T>
  typename T::Reader root() const {
    return reader_->getRoot<T>();
  }

 private:
  CanonicalMessage() = default;
  static absl::StatusOr<std::unique_ptr<CanonicalMessage>> ParseImpl(
      absl::string_view record, size_t prefix_bytes, absl::string_view what,
      const std::function<void(capnp::MessageReader&)>& walk);

  kj::Array<capnp::word> words_;  // one word of header room, then the message
  absl::string_view prefixed_;
  kj::ArrayPtr<const capnp::word> segments_[1];
  // getRoot() is not const in capnp, though reading is.
  mutable std::optional<capnp::SegmentArrayMessageReader> reader_;
};

template <typename T>
absl::StatusOr<std::unique_ptr<CanonicalMessage>> CanonicalMessage::Parse(absl::string_view words,
                                                                          absl::string_view what) {
  return ParseImpl(words, 0, what, [](capnp::MessageReader& r) { r.getRoot<T>().totalSize(); });
}

template <typename T>
absl::StatusOr<std::unique_ptr<CanonicalMessage>> CanonicalMessage::ParsePrefixed(
    absl::string_view record, size_t prefix_bytes, absl::string_view what) {
  return ParseImpl(record, prefix_bytes, what,
                   [](capnp::MessageReader& r) { r.getRoot<T>().totalSize(); });
}

struct StoredEvent::Rep {  // private to StoredEvent: the store reaches it through the below
  uint64_t position = 0;
  std::unique_ptr<CanonicalMessage> event;  // event->prefixed(): the record as stored
  // event's root, read once: a rebuild asks for it several times per event, and each getRoot()
  // checks the segment again.
  schema::Event::Reader root;
  absl::string_view record;  // event->prefixed(), held here for PrefetchRecord
  ContentState content_state = ContentState::kNone;
  std::unique_ptr<CanonicalMessage> content;  // when kOpen
};

namespace internal {

// The store's way into a StoredEvent, which no other folder has.
struct StoredEventAccess {
  using Rep = StoredEvent::Rep;
  static StoredEvent Make(std::unique_ptr<Rep> rep) { return StoredEvent(std::move(rep)); }
  static const Rep& Of(const StoredEvent& e) { return *e.rep_; }
};
using StoredEventRep = StoredEventAccess::Rep;

inline constexpr char kRecordTagCapnpV1 = '\x01';

// Appends the canonical bytes of `reader` (what capnp::canonicalize returns) to `out`. The same
// canonical copy as capnp::canonicalize, built in a scratch buffer of the thread's and copied
// once: without canonicalize's second walk of the result (an assertion that it is canonical,
// which the canonical copy makes it by construction) and its two allocations and extra copy.
// They were an eighth of an append's CPU (docs/impl.md, "Where an append's time goes").
void AppendCanonical(const capnp::_::StructReader& reader, std::string* out);

// Canonical bytes of any struct reader.
template <typename Reader>
std::string CanonicalBytes(Reader reader) {
  std::string out;
  AppendCanonical(capnp::_::PointerHelpers<capnp::FromReader<Reader>>::getInternalReader(reader),
                  &out);
  return out;
}

std::string EncodeRecord(schema::Event::Reader event);

// Reads every pointer field of an event (or content) through its typed accessor, inside
// kj::runCatchingExceptions. totalSize() walks a message but does not check that a Text field
// holds a list, a struct field a struct: damaged or hostile bytes would otherwise throw later,
// wherever the field is first read. Returns the problem as text; empty when the shape is right.
// Keep in step with schema/event.capnp: a new pointer field is read here too.
std::string EventShapeProblem(schema::Event::Reader event);
std::string ContentShapeProblem(schema::Content::Reader content);

// Checks every Text field of an event: UTF-8 (Cap'n Proto Text is UTF-8 by contract, and
// `ihs read --json` must print what was stored) and no NUL byte inside (readers of C strings would
// cut it there). Returns the problem naming the field ("content.text: ..."); empty when none.
// Through the generated accessors, on the append path: keep in step with schema/event.capnp (a
// test walks the schema and fails for a Text field this does not check).
std::string EventTextProblem(schema::Event::Reader event);

// Decodes a record read at `position`; checks that the event says the same position.
absl::StatusOr<std::unique_ptr<StoredEventRep>> DecodeRecord(uint64_t position,
                                                             absl::string_view bytes);

}  // namespace internal
}  // namespace ihs::store

#endif  // IHS_STORE_INTERNAL_CODEC_H_
