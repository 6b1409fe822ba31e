#include "server/read_wire.h"

#include "server/wire.h"

namespace ihs::server {

void SetReadEvent(rpc::ReadEvent::Builder out, const store::StoredEvent& event) {
  out.setPosition(event.position());
  out.setEvent(event.event());
  out.setContentState(ToWire(event.content_state()));
  if (event.content_state() == store::ContentState::kOpen) out.setContent(event.content());
}

size_t WireBytes(const store::StoredEvent& event) {
  size_t n = event.bytes().size() + 32;
  if (event.content_state() == store::ContentState::kOpen) {
    n += event.content().totalSize().wordCount * 8;
  }
  return n;
}

}  // namespace ihs::server
