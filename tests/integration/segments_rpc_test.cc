// Segments over RPC, on a real ihsd: writers define, change and retire with the same checks as
// on a data directory, recorded with their token's name; readers list them and cannot define;
// readers ask who is in a segment, what a party's person is in and why, and follow transitions
// as they happen, with no gap and no duplicate; careless and hostile requests get clear errors
// and append nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

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

  // Community bands are ihsd's own: no client appends one, on "$community" or elsewhere.
  for (const char* stream : {"$community", "customer-ada"}) {
    schema::Event::Builder band = events_.New(900);
    band.setOccurredAt(1);
    auto b = band.initCommunityBand();
    b.setParty("customer-ada");
    b.setClause("community reach >= 1");
    b.setInside(true);
    absl::StatusOr<store::AppendResult> r = writer->Append(One(stream, band.asReader()));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << stream;
    EXPECT_NE(r.status().message().find("a client cannot append them"), absl::string_view::npos)
        << r.status();
  }

  ASSERT_TRUE(writer->DefineSegment(SegmentOp::RETIRE, "loyal", "", "").ok());
  capnp::MallocMessageBuilder after;
  ASSERT_TRUE(reader->SegmentDefinitions("", 1000, after).ok());
  auto loyal = after.getRoot<schema::SegmentList>().getSegments()[1];
  EXPECT_TRUE(loyal.getVersions()[loyal.getVersions().size() - 1].getRetired());
}

// Entries and exits reach a subscriber as they happen; one resumed from where it stopped gets the
// rest, none twice.
TEST_F(RpcTest, SegmentMembershipAndTransitionsOverRpc) {
  StartServer();
  auto writer = MustConnect("writer");
  auto reader = MustConnect("reader");
  ASSERT_TRUE(writer && reader);
  ASSERT_TRUE(writer
                  ->DefineSegment(schema::SegmentOp::DEFINE, "complained",
                                  "count(type = complaint) >= 2", "")
                  .ok());
  ASSERT_TRUE(
      writer->DefineSegment(schema::SegmentOp::DEFINE, "bought", "any(type = purchase)", "").ok());
  uint64_t id = 7000;
  auto add = [&](const std::string& party, schema::TouchpointType type) {
    auto r = writer->Append(One(party, events_.Touchpoint(++id, schema::Channel::EMAIL, type)));
    ASSERT_TRUE(r.ok()) << r.status();
  };

  // A subscriber from the start of the feed, on its own connection and thread.
  std::vector<std::pair<std::string, bool>> seen;  // person, entered
  uint64_t scanned = 0;
  std::atomic<bool> got_two{false};
  std::thread follower([&] {
    auto sub = MustConnect("reader");
    ASSERT_TRUE(sub);
    absl::Status s = sub->SubscribeSegments(
        {"complained"}, 0, false,
        [&](capnp::List<schema::Transition>::Reader ts, uint64_t scanned_to) {
          for (auto t : ts) {
            EXPECT_EQ(std::string(t.getSegment().cStr()), "complained");
            seen.emplace_back(t.getPerson().cStr(), t.getEntered());
          }
          scanned = scanned_to;
          got_two = seen.size() >= 2;
          return !got_two;
        });
    EXPECT_TRUE(s.ok()) << s;
  });
  add("p-1", schema::TouchpointType::PURCHASE);  // "bought": filtered out
  add("p-1", schema::TouchpointType::COMPLAINT);
  add("p-1", schema::TouchpointType::COMPLAINT);
  add("p-2", schema::TouchpointType::COMPLAINT);
  add("p-2", schema::TouchpointType::COMPLAINT);
  follower.join();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(std::string("p-1"), true));
  EXPECT_EQ(seen[1], std::make_pair(std::string("p-2"), true));

  // Resumed where it stopped: the next one, once.
  std::vector<std::string> resumed;
  std::thread again([&] {
    auto sub = MustConnect("reader");
    ASSERT_TRUE(sub);
    absl::Status s = sub->SubscribeSegments(
        {"complained", "bought"}, scanned, false,
        [&](capnp::List<schema::Transition>::Reader ts, uint64_t) {
          for (auto t : ts) resumed.emplace_back(t.getPerson().cStr());
          return std::find(resumed.begin(), resumed.end(), "p-3") == resumed.end();
        });
    EXPECT_TRUE(s.ok()) << s;
  });
  add("p-3", schema::TouchpointType::COMPLAINT);
  add("p-3", schema::TouchpointType::COMPLAINT);
  again.join();
  EXPECT_EQ(std::count(resumed.begin(), resumed.end(), "p-1"), 0) << "a transition came twice";
  EXPECT_EQ(std::count(resumed.begin(), resumed.end(), "p-3"), 1);

  // Who is in it, a party's segments, and why.
  capnp::MallocMessageBuilder members;
  ASSERT_TRUE(reader->SegmentMembers("complained", 0, "", 10, 0, members).ok());
  EXPECT_EQ(members.getRoot<schema::MemberPage>().getCount(), 3u);
  capnp::MallocMessageBuilder of;
  ASSERT_TRUE(reader->PartySegments("p-1", 0, 0, of).ok());
  EXPECT_EQ(of.getRoot<schema::PartySegments>().getSegments().size(), 2u);
  capnp::MallocMessageBuilder why;
  ASSERT_TRUE(reader->SegmentWhy("p-1", "complained", 0, 0, why).ok());
  EXPECT_TRUE(why.getRoot<schema::SegmentWhy>().getMember());

  // Careless and hostile requests.
  auto never = [](capnp::List<schema::Transition>::Reader, uint64_t) { return false; };
  EXPECT_EQ(reader->SubscribeSegments({"nobody"}, 0, false, never).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(reader->SubscribeSegments({}, 0, false, never).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->SubscribeSegments(std::vector<std::string>(101, "complained"), 0, false, never)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->SubscribeSegments({"Bad Name"}, 0, false, never).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->SubscribeSegments({"complained"}, 1u << 30, false, never).code(),
            absl::StatusCode::kOutOfRange);
  capnp::MallocMessageBuilder bad;
  EXPECT_EQ(reader->SegmentMembers("complained", 0, "", 0, 0, bad).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->SegmentMembers("complained", -5, "", 10, 0, bad).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->SegmentMembers("nobody", 0, "", 10, 0, bad).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(reader->PartySegments("nobody", 0, 0, bad).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ihs
