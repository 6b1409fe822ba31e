#include "server/wire.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

namespace ihs::server {
namespace {

absl::Status RoundTrip(const absl::Status& s) {
  capnp::MallocMessageBuilder mb;
  auto e = mb.initRoot<rpc::Error>();
  SetError(e, s);
  return FromError(e.asReader());
}

TEST(Wire, EveryStatusCodeAClientHandlesSurvivesTheWire) {
  for (auto code : {absl::StatusCode::kInvalidArgument, absl::StatusCode::kUnauthenticated,
                    absl::StatusCode::kPermissionDenied, absl::StatusCode::kResourceExhausted,
                    absl::StatusCode::kNotFound, absl::StatusCode::kAlreadyExists,
                    absl::StatusCode::kOutOfRange, absl::StatusCode::kUnavailable,
                    absl::StatusCode::kDataLoss, absl::StatusCode::kInternal}) {
    absl::Status back = RoundTrip(absl::Status(code, "why"));
    EXPECT_EQ(back.code(), code);
    EXPECT_EQ(back.message(), "why");
  }
  // Codes with no kind of their own become what the client should do: retry later.
  EXPECT_EQ(RoundTrip(absl::CancelledError("x")).code(), absl::StatusCode::kUnavailable);
}

TEST(Wire, ConflictKeepsTheCurrentVersionAndBadInputTheField) {
  absl::Status c = RoundTrip(store::VersionConflictError("stale", 41));
  EXPECT_EQ(c.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store::ConflictCurrentVersion(c), 41);
  EXPECT_EQ(store::ConflictCurrentVersion(RoundTrip(store::VersionConflictError("x", -1))), -1);
  absl::Status b = RoundTrip(BadField("limit", "limit 0 is out of range"));
  EXPECT_EQ(b.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorField(b), "limit");
}

TEST(Wire, ExpectedVersionRoundTripsAndUnspecifiedIsRefused) {
  capnp::MallocMessageBuilder mb;
  auto e = mb.initRoot<rpc::Expected>();
  for (auto v : {store::ExpectedVersion::Any(), store::ExpectedVersion::NoStream(),
                 store::ExpectedVersion::StreamExists(), store::ExpectedVersion::Exact(7)}) {
    SetExpected(e, v);
    auto back = FromWire(e.asReader());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->ToString(), v.ToString());
  }
  e.setKind(rpc::ExpectedKind::UNSPECIFIED);
  auto bad = FromWire(e.asReader());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorField(bad.status()), "expected.kind");
}

TEST(Wire, TransportExceptionsMapToWhatTheClientShouldDo) {
  auto of = [](kj::Exception::Type t) {
    return FromKj(kj::Exception(t, __FILE__, __LINE__, kj::str("x"))).code();
  };
  EXPECT_EQ(of(kj::Exception::Type::DISCONNECTED), absl::StatusCode::kUnavailable);
  EXPECT_EQ(of(kj::Exception::Type::OVERLOADED), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(of(kj::Exception::Type::UNIMPLEMENTED), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(of(kj::Exception::Type::FAILED), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ihs::server
