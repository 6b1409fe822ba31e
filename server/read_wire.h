// Stored events onto the wire: what only ihsd does, so that server/wire.h (shared with the
// client library) needs nothing of the store but its plain values.
#ifndef IHS_SERVER_READ_WIRE_H_
#define IHS_SERVER_READ_WIRE_H_

#include <cstddef>

#include "schema/rpc.capnp.h"
#include "store/event_store.h"

namespace ihs::server {

// The event as stored, and its opened content when there is one.
void SetReadEvent(rpc::ReadEvent::Builder out, const store::StoredEvent& event);
// Bytes a ReadEvent of this event takes on the wire, roughly (for reply size limits).
size_t WireBytes(const store::StoredEvent& event);

}  // namespace ihs::server

#endif  // IHS_SERVER_READ_WIRE_H_
