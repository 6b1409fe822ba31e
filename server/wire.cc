#include "server/wire.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "absl/strings/str_cat.h"

namespace ihs::server {
namespace {

struct KindCode {
  rpc::ErrorKind kind;
  absl::StatusCode code;
};
// One table for both directions.
constexpr KindCode kKinds[] = {
    {rpc::ErrorKind::VERSION_CONFLICT, absl::StatusCode::kAborted},
    {rpc::ErrorKind::BAD_INPUT, absl::StatusCode::kInvalidArgument},
    {rpc::ErrorKind::UNAUTHENTICATED, absl::StatusCode::kUnauthenticated},
    {rpc::ErrorKind::PERMISSION_DENIED, absl::StatusCode::kPermissionDenied},
    {rpc::ErrorKind::OVERLOADED, absl::StatusCode::kResourceExhausted},
    {rpc::ErrorKind::NOT_FOUND, absl::StatusCode::kNotFound},
    {rpc::ErrorKind::ALREADY_EXISTS, absl::StatusCode::kAlreadyExists},
    {rpc::ErrorKind::OUT_OF_RANGE, absl::StatusCode::kOutOfRange},
    {rpc::ErrorKind::UNAVAILABLE, absl::StatusCode::kUnavailable},
    {rpc::ErrorKind::DATA_LOSS, absl::StatusCode::kDataLoss},
    {rpc::ErrorKind::INTERNAL, absl::StatusCode::kInternal},
    {rpc::ErrorKind::FAILED_PRECONDITION, absl::StatusCode::kFailedPrecondition},
    {rpc::ErrorKind::UNIMPLEMENTED, absl::StatusCode::kUnimplemented},
};

}  // namespace

void SetError(rpc::Error::Builder out, const absl::Status& status) {
  rpc::ErrorKind kind = rpc::ErrorKind::INTERNAL;
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
      kind = rpc::ErrorKind::UNAVAILABLE;
      break;
    default:
      for (const KindCode& kc : kKinds) {
        if (kc.code == status.code()) kind = kc.kind;
      }
  }
  out.setKind(kind);
  out.setMessage(std::string(status.message()));
  out.setField(ErrorField(status));
  out.setCurrentVersion(store::ConflictCurrentVersion(status).value_or(-1));
}

absl::Status FromError(rpc::Error::Reader error) {
  absl::StatusCode code = absl::StatusCode::kInternal;
  for (const KindCode& kc : kKinds) {
    if (kc.kind == error.getKind()) code = kc.code;
  }
  std::string message = error.getMessage();
  if (code == absl::StatusCode::kAborted) {
    return store::VersionConflictError(message, error.getCurrentVersion());
  }
  absl::Status s(code, message);
  if (error.hasField() && error.getField().size() > 0) {
    s.SetPayload(kFieldPayloadUrl, absl::Cord(std::string(error.getField())));
  }
  return s;
}

absl::Status FromKj(const kj::Exception& e) {
  std::string what = e.getDescription().cStr();
  switch (e.getType()) {
    case kj::Exception::Type::DISCONNECTED:
      return absl::UnavailableError(absl::StrCat("disconnected from ihsd: ", what));
    case kj::Exception::Type::OVERLOADED:
      return absl::ResourceExhaustedError(absl::StrCat("ihsd is overloaded: ", what));
    case kj::Exception::Type::UNIMPLEMENTED:
      return absl::PermissionDeniedError(
          absl::StrCat("this role's capability has no such method: ", what));
    default:
      return absl::InternalError(absl::StrCat("RPC failed: ", what));
  }
}

void SetNoDelay(kj::AsyncIoStream& stream) {
  int one = 1;
  kj::runCatchingExceptions([&] { stream.setsockopt(IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); });
}

void SetExpected(rpc::Expected::Builder out, const store::ExpectedVersion& expected) {
  using K = store::ExpectedVersion::Kind;
  switch (expected.kind()) {
    case K::kAny:
      out.setKind(rpc::ExpectedKind::ANY);
      break;
    case K::kNoStream:
      out.setKind(rpc::ExpectedKind::NO_STREAM);
      break;
    case K::kStreamExists:
      out.setKind(rpc::ExpectedKind::STREAM_EXISTS);
      break;
    case K::kExact:
      out.setKind(rpc::ExpectedKind::EXACT);
      out.setVersion(expected.version());
      break;
  }
}

absl::StatusOr<store::ExpectedVersion> FromWire(rpc::Expected::Reader expected) {
  switch (expected.getKind()) {
    case rpc::ExpectedKind::ANY:
      return store::ExpectedVersion::Any();
    case rpc::ExpectedKind::NO_STREAM:
      return store::ExpectedVersion::NoStream();
    case rpc::ExpectedKind::STREAM_EXISTS:
      return store::ExpectedVersion::StreamExists();
    case rpc::ExpectedKind::EXACT:
      return store::ExpectedVersion::Exact(expected.getVersion());
    default:
      return BadField("expected.kind",
                      absl::StrCat("expected.kind ", static_cast<int>(expected.getKind()),
                                   " is not one of any, noStream, streamExists, exact"));
  }
}

void SetAppended(rpc::Appended::Builder out, const store::AppendResult& result) {
  auto p = out.initPositions(result.positions.size());
  auto v = out.initVersions(result.versions.size());
  for (size_t i = 0; i < result.positions.size(); ++i) p.set(i, result.positions[i]);
  for (size_t i = 0; i < result.versions.size(); ++i) v.set(i, result.versions[i]);
  out.setDuplicate(result.duplicate);
}

store::AppendResult FromWire(rpc::Appended::Reader appended) {
  store::AppendResult r;
  for (uint64_t p : appended.getPositions()) r.positions.push_back(p);
  for (uint64_t v : appended.getVersions()) r.versions.push_back(v);
  r.duplicate = appended.getDuplicate();
  return r;
}

rpc::ContentState ToWire(store::ContentState state) {
  switch (state) {
    case store::ContentState::kNone:
      return rpc::ContentState::NONE;
    case store::ContentState::kSealed:
      return rpc::ContentState::SEALED;
    case store::ContentState::kOpen:
      return rpc::ContentState::OPEN;
    case store::ContentState::kErased:
      return rpc::ContentState::ERASED;
  }
  return rpc::ContentState::UNSPECIFIED;
}

store::ContentState FromWire(rpc::ContentState state) {
  switch (state) {
    case rpc::ContentState::SEALED:
      return store::ContentState::kSealed;
    case rpc::ContentState::OPEN:
      return store::ContentState::kOpen;
    case rpc::ContentState::ERASED:
      return store::ContentState::kErased;
    default:
      return store::ContentState::kNone;
  }
}

void SetStreamInfo(rpc::StreamInfo::Builder out, const store::StreamInfo& info) {
  out.setStream(info.stream);
  out.setEventCount(info.event_count);
  out.setCurrentVersion(info.current_version);
  out.setFirstPosition(info.first_position);
  out.setLastPosition(info.last_position);
  out.setFirstOccurredAt(info.first_occurred_at);
  out.setLastOccurredAt(info.last_occurred_at);
  out.setHeld(info.hold_position.has_value());
  out.setHeldSince(info.hold_position.value_or(0));
  out.setErased(info.erased_position.has_value());
  out.setErasedAt(info.erased_position.value_or(0));
}

store::StreamInfo FromWire(rpc::StreamInfo::Reader info) {
  store::StreamInfo s;
  s.stream = info.getStream();
  s.event_count = info.getEventCount();
  s.current_version = info.getCurrentVersion();
  s.first_position = info.getFirstPosition();
  s.last_position = info.getLastPosition();
  s.first_occurred_at = info.getFirstOccurredAt();
  s.last_occurred_at = info.getLastOccurredAt();
  if (info.getHeld()) s.hold_position = info.getHeldSince();
  if (info.getErased()) s.erased_position = info.getErasedAt();
  return s;
}

void SetProjectionStatus(rpc::ProjectionStatus::Builder out,
                         const projections::ProjectionStatus& status) {
  out.setName(status.name);
  out.setVersion(status.version);
  out.setFamily(status.family);
  out.setCheckpoint(status.checkpoint);
  out.setHead(status.head);
  out.setLagEvents(status.lag_events);
  out.setLagSeconds(status.lag_seconds);
  out.setEventsPerSecond(status.events_per_second);
  out.setState(status.state);
  out.setError(status.error);
  out.setRebuilding(status.rebuild_checkpoint.has_value());
  out.setRebuildCheckpoint(status.rebuild_checkpoint.value_or(0));
}

projections::ProjectionStatus FromWire(rpc::ProjectionStatus::Reader status) {
  projections::ProjectionStatus s;
  s.name = status.getName();
  s.version = status.getVersion();
  s.family = status.getFamily();
  s.checkpoint = status.getCheckpoint();
  s.head = status.getHead();
  s.lag_events = status.getLagEvents();
  s.lag_seconds = status.getLagSeconds();
  s.events_per_second = status.getEventsPerSecond();
  s.state = status.getState();
  s.error = status.getError();
  if (status.getRebuilding()) s.rebuild_checkpoint = status.getRebuildCheckpoint();
  return s;
}

}  // namespace ihs::server
