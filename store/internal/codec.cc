#include "store/internal/codec.h"

#include <kj/exception.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace ihs::store {

absl::StatusOr<std::unique_ptr<CanonicalMessage>> CanonicalMessage::ParseImpl(
    absl::string_view words, absl::string_view what,
    const std::function<void(capnp::MessageReader&)>& walk) {
  if (words.empty() || words.size() % sizeof(capnp::word) != 0) {
    return absl::DataLossError(absl::StrCat(what, ": ", words.size(),
                                            " bytes is not a whole number of words"));
  }
  std::unique_ptr<CanonicalMessage> m(new CanonicalMessage());
  m->words_ = kj::heapArray<capnp::word>(words.size() / sizeof(capnp::word));
  std::memcpy(m->words_.begin(), words.data(), words.size());
  m->segments_[0] = m->words_.asPtr();
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                m->reader_.emplace(kj::arrayPtr(m->segments_, 1));
                walk(*m->reader_);
              })) {
    return absl::DataLossError(
        absl::StrCat(what, " does not decode: ", e->getDescription().cStr()));
  }
  return m;
}

namespace internal {

std::string EncodeRecord(schema::Event::Reader event) {
  std::string out(1, kRecordTagCapnpV1);
  out += CanonicalBytes(event);
  return out;
}

absl::StatusOr<std::unique_ptr<StoredEvent::Rep>> DecodeRecord(uint64_t position,
                                                               std::string bytes) {
  std::string what = absl::StrCat("event at position ", position);
  if (bytes.empty() || bytes[0] != kRecordTagCapnpV1) {
    return absl::DataLossError(absl::StrCat(what, " has an unknown record tag"));
  }
  auto rep = std::make_unique<StoredEvent::Rep>();
  rep->position = position;
  rep->bytes = std::move(bytes);
  auto msg = CanonicalMessage::Parse<schema::Event>(absl::string_view(rep->bytes).substr(1), what);
  if (!msg.ok()) return msg.status();
  rep->event = std::move(*msg);
  auto ev = rep->event->root<schema::Event>();
  if (ev.getPosition() != position) {
    return absl::DataLossError(
        absl::StrCat(what, " says it is at position ", ev.getPosition()));
  }
  rep->content_state = ev.hasSealedContent() ? ContentState::kSealed : ContentState::kNone;
  return rep;
}

}  // namespace internal
}  // namespace ihs::store
