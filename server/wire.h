// Conversions between the store's types and the RPC schema (schema/rpc.capnp), shared by ihsd and
// the client library, so that the two ends agree in one place.
//
// Errors: an absl::Status becomes an rpc::Error and back with the same code, message, the field
// at fault (status payload kFieldPayloadUrl) and a conflict's current version (the store's
// kConflictPayloadUrl). A client therefore sees the same statuses over the wire as in process.
#ifndef IHS_SERVER_WIRE_H_
#define IHS_SERVER_WIRE_H_

#include <kj/async-io.h>
#include <kj/exception.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/field_error.h"
#include "projections/status.h"
#include "schema/rpc.capnp.h"
#include "store/types.h"

namespace ihs::server {

// The request field a kInvalidArgument status is about (e.g. "limit"): common/field_error.h.
using ihs::BadField;
using ihs::ErrorField;
using ihs::kFieldPayloadUrl;

void SetError(rpc::Error::Builder out, const absl::Status& status);
absl::Status FromError(rpc::Error::Reader error);
// A transport exception (disconnect, overload, a method the capability lacks) as a status:
// DISCONNECTED -> kUnavailable, OVERLOADED -> kResourceExhausted, UNIMPLEMENTED ->
// kPermissionDenied (a capability of another role), FAILED -> kInternal.
absl::Status FromKj(const kj::Exception& e);

// Turns off Nagle's algorithm on a TCP stream (no-op on a unix socket): a request or reply is one
// small write, and waiting to coalesce it with the next costs up to a delayed-ACK period.
void SetNoDelay(kj::AsyncIoStream& stream);

void SetExpected(rpc::Expected::Builder out, const store::ExpectedVersion& expected);
absl::StatusOr<store::ExpectedVersion> FromWire(rpc::Expected::Reader expected);

void SetAppended(rpc::Appended::Builder out, const store::AppendResult& result);
store::AppendResult FromWire(rpc::Appended::Reader appended);

rpc::ContentState ToWire(store::ContentState state);
store::ContentState FromWire(rpc::ContentState state);

void SetStreamInfo(rpc::StreamInfo::Builder out, const store::StreamInfo& info);
store::StreamInfo FromWire(rpc::StreamInfo::Reader info);

void SetProjectionStatus(rpc::ProjectionStatus::Builder out,
                         const projections::ProjectionStatus& status);
projections::ProjectionStatus FromWire(rpc::ProjectionStatus::Reader status);

}  // namespace ihs::server

#endif  // IHS_SERVER_WIRE_H_
