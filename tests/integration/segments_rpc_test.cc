// Segment definitions over RPC, on a real ihsd: writers define, change and retire with the same
// checks as on a data directory, recorded with their token's name; readers list them and cannot
// define; careless and hostile requests get clear errors and append nothing.
#include <gtest/gtest.h>

#include "tests/integration/rpc_fixture.h"

namespace ihs {
namespace {

TEST_F(RpcTest, SegmentDefinitionsOverRpc) {
  StartServer();
  auto writer = MustConnect("writer");
  auto reader = MustConnect("reader");
  ASSERT_TRUE(writer && reader);
  using schema::SegmentOp;
  absl::StatusOr<uint64_t> p =
      writer->DefineSegment(SegmentOp::DEFINE, "churn_risk", "count(type=complaint, last 30d) >= 2",
                            "two complaints in a month");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(writer
                  ->DefineSegment(SegmentOp::CHANGE, "churn_risk",
                                  "count(type = complaint, last 60d) >= 2", "")
                  .ok());
  ASSERT_TRUE(
      writer->DefineSegment(SegmentOp::DEFINE, "loyal", "count(type = purchase) >= 5", "").ok());

  capnp::MallocMessageBuilder m;
  ASSERT_TRUE(reader->SegmentDefinitions("", 1000, m).ok());
  auto list = m.getRoot<schema::SegmentList>().asReader();
  ASSERT_EQ(list.getSegments().size(), 2u);
  auto churn = list.getSegments()[0];
  EXPECT_EQ(std::string(churn.getName().cStr()), "churn_risk");
  ASSERT_EQ(churn.getVersions().size(), 2u);
  EXPECT_EQ(std::string(churn.getVersions()[0].getRule().cStr()),
            "count(type = complaint, last 30d) >= 2");
  EXPECT_EQ(churn.getVersions()[0].getPosition(), *p);
  EXPECT_EQ(std::string(churn.getVersions()[1].getDescription().cStr()),
            "two complaints in a month");
  EXPECT_EQ(std::string(churn.getVersions()[1].getRequestedBy().cStr()), "test-writer");
  EXPECT_EQ(list.getStreamVersion(), 2);

  // Pages by name.
  capnp::MallocMessageBuilder page;
  ASSERT_TRUE(reader->SegmentDefinitions("churn_risk", 1, page).ok());
  ASSERT_EQ(page.getRoot<schema::SegmentList>().getSegments().size(), 1u);
  EXPECT_EQ(std::string(page.getRoot<schema::SegmentList>().getSegments()[0].getName().cStr()),
            "loyal");

  // Careless and hostile requests: clear errors, nothing appended.
  const uint64_t before = list.getStreamVersion();
  auto refused = [&](absl::StatusOr<uint64_t> r, absl::StatusCode code, const std::string& text) {
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_NE(r.status().message().find(text), absl::string_view::npos) << r.status();
  };
  refused(writer->DefineSegment(SegmentOp::DEFINE, "x", "count(type = complant) >= 1", ""),
          absl::StatusCode::kInvalidArgument, "at 14: unknown type \"complant\"");
  refused(writer->DefineSegment(SegmentOp::DEFINE, "loyal", "any()", ""),
          absl::StatusCode::kAlreadyExists, "defined already");
  refused(writer->DefineSegment(SegmentOp::UNSPECIFIED, "x", "any()", ""),
          absl::StatusCode::kInvalidArgument, "op must be");
  refused(writer->DefineSegment(static_cast<SegmentOp>(77), "x", "any()", ""),
          absl::StatusCode::kInvalidArgument, "op must be");
  refused(writer->DefineSegment(SegmentOp::DEFINE, std::string(100000, 'a'), "any()", ""),
          absl::StatusCode::kInvalidArgument, "[a-z0-9_]{1,64}");
  refused(writer->DefineSegment(SegmentOp::DEFINE, "x", std::string(100000, '('), ""),
          absl::StatusCode::kInvalidArgument, "longer than the limit");
  refused(writer->DefineSegment(SegmentOp::CHANGE, "loyal", "segment(loyal)", ""),
          absl::StatusCode::kInvalidArgument, "itself");
  refused(writer->DefineSegment(SegmentOp::RETIRE, "nobody", "", ""), absl::StatusCode::kNotFound,
          "no segment nobody");
  refused(writer->DefineSegment(SegmentOp::DEFINE, "x", "any()", "bad \xff\xfe bytes"),
          absl::StatusCode::kInvalidArgument, "UTF-8");
  refused(writer->DefineSegment(SegmentOp::DEFINE, "x", "any(topic = \"\xc3\")", ""),
          absl::StatusCode::kInvalidArgument, "");
  refused(writer->DefineSegment(SegmentOp::DEFINE, "x\xff", "any()", ""),
          absl::StatusCode::kInvalidArgument, "[a-z0-9_]{1,64}");
  refused(reader->DefineSegment(SegmentOp::DEFINE, "x", "any()", ""),
          absl::StatusCode::kPermissionDenied, "");
  for (uint32_t limit : {0u, 1001u, 4000000000u}) {
    capnp::MallocMessageBuilder bad;
    absl::Status s = reader->SegmentDefinitions("", limit, bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << limit << ": " << s;
  }
  capnp::MallocMessageBuilder again;
  ASSERT_TRUE(reader->SegmentDefinitions("", 1000, again).ok());
  EXPECT_EQ(again.getRoot<schema::SegmentList>().getStreamVersion(), before);

  ASSERT_TRUE(writer->DefineSegment(SegmentOp::RETIRE, "loyal", "", "").ok());
  capnp::MallocMessageBuilder after;
  ASSERT_TRUE(reader->SegmentDefinitions("", 1000, after).ok());
  auto loyal = after.getRoot<schema::SegmentList>().getSegments()[1];
  EXPECT_TRUE(loyal.getVersions()[loyal.getVersions().size() - 1].getRetired());
}

}  // namespace
}  // namespace ihs
