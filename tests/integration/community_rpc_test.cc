// Community over RPC, on a real ihsd: readers get a party's card and the top lists with the
// errors the in-process reads give; careless and hostile requests are bad input; and a segment
// on a community figure ("influential customer with an open complaint") alerts a subscriber once
// ihsd's band appender has published the band (docs/community.md "Bands").
#include <gtest/gtest.h>

#include <thread>
#include <utility>
#include <vector>

#include "schema/community.capnp.h"
#include "tests/integration/rpc_fixture.h"

namespace ihs {
namespace {

class CommunityRpcTest : public RpcTest {
 protected:
  // A public review on Twitter to `audience`, or an inbound complaint by email (audience 0).
  void Say(client::Client& writer, const std::string& party, uint64_t audience) {
    schema::Event::Builder e = events_.New(++id_);
    e.setOccurredAt(1700000000000000 + static_cast<int64_t>(id_));
    auto t = e.initTouchpoint();
    t.setChannel(audience > 0 ? schema::Channel::TWITTER : schema::Channel::EMAIL);
    t.setDirection(audience > 0 ? schema::Direction::PUBLIC : schema::Direction::INBOUND);
    t.setType(audience > 0 ? schema::TouchpointType::REVIEW : schema::TouchpointType::COMPLAINT);
    t.setAudienceSize(audience);
    auto r = writer.Append(One(party, e.asReader()));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  uint64_t id_ = 9000;
};

TEST_F(CommunityRpcTest, ReadsAndTheirErrors) {
  StartServer();
  auto writer = MustConnect("writer");
  auto reader = MustConnect("reader");
  ASSERT_TRUE(writer && reader);
  Say(*writer, "ann", 700);
  Say(*writer, "bob", 300);

  capnp::MallocMessageBuilder card;
  ASSERT_TRUE(reader->Community("ann", 0, 2, card).ok());
  EXPECT_EQ(card.getRoot<schema::CommunityCard>().getReach(), 700u);
  EXPECT_EQ(card.getRoot<schema::CommunityCard>().getRank(), 1u);
  capnp::MallocMessageBuilder top;
  ASSERT_TRUE(reader->CommunityTop(10, schema::CommunityRank::RISK, 2, top).ok());
  auto entries = top.getRoot<schema::CommunityTop>().getEntries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(std::string(entries[0].getPerson().cStr()), "ann");
  EXPECT_EQ(entries[0].getRisk(), 700);

  auto refused = [](absl::Status s, absl::StatusCode code, const std::string& text) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_NE(s.message().find(text), absl::string_view::npos) << s;
  };
  capnp::MallocMessageBuilder m;
  refused(reader->CommunityTop(0, schema::CommunityRank::REACH, 0, m),
          absl::StatusCode::kInvalidArgument, "n must be 1 to 10000");
  refused(reader->CommunityTop(4000000000u, schema::CommunityRank::REACH, 0, m),
          absl::StatusCode::kInvalidArgument, "n must be 1 to 10000");
  refused(reader->CommunityTop(10, static_cast<schema::CommunityRank>(77), 0, m),
          absl::StatusCode::kInvalidArgument, "by 77 is not one the community projection ranks by");
  refused(reader->Community("", 0, 0, m), absl::StatusCode::kInvalidArgument, "party is empty");
  refused(reader->Community("nobody", 0, 0, m), absl::StatusCode::kNotFound, "nobody");
  refused(reader->Community(std::string(100000, 'x'), 0, 0, m), absl::StatusCode::kNotFound, "");
  refused(writer->CommunityTop(10, schema::CommunityRank::REACH, 0, m),
          absl::StatusCode::kPermissionDenied, "");
  // Still serving.
  capnp::MallocMessageBuilder again;
  EXPECT_TRUE(reader->Community("bob", 0, 0, again).ok());
}

// "Influential customer with an open complaint": the subscriber hears of ann's entry once her
// audience at risk crosses the floor, with no event of the segment's own.
TEST_F(CommunityRpcTest, ASegmentOnTheAudienceAtRiskAlertsASubscriber) {
  StartServer();
  auto writer = MustConnect("writer");
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer
                  ->DefineSegment(schema::SegmentOp::DEFINE, "influential_open",
                                  "community risk >= 10000 and unanswered(type = complaint)", "")
                  .ok());
  std::vector<std::pair<std::string, bool>> seen;
  std::thread subscriber([&] {
    auto sub = MustConnect("reader");
    ASSERT_TRUE(sub);
    absl::Status s = sub->SubscribeSegments(
        {"influential_open"}, 0, false, [&](capnp::List<schema::Transition>::Reader ts, uint64_t) {
          for (auto t : ts) seen.emplace_back(t.getPerson().cStr(), t.getEntered());
          return seen.empty();
        });
    EXPECT_TRUE(s.ok()) << s;
  });
  Say(*writer, "ann", 0);      // an open complaint; nobody knows her audience yet
  Say(*writer, "bob", 50000);  // heard, but nothing open
  Say(*writer, "ann", 20000);  // now her audience at risk is 20,000
  subscriber.join();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], std::make_pair(std::string("ann"), true));

  auto reader = MustConnect("reader");
  ASSERT_TRUE(reader);
  capnp::MallocMessageBuilder why;
  ASSERT_TRUE(reader->SegmentWhy("ann", "influential_open", 0, 0, why).ok());
  auto w = why.getRoot<schema::SegmentWhy>();
  EXPECT_TRUE(w.getMember());
  ASSERT_GT(w.getTransitions().size(), 0u);
  bool named = false;
  for (auto c : w.getTransitions()[0].getClauses()) {
    named |= std::string(c.getText().cStr()) == "community risk >= 10000" && c.getHolds();
  }
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace ihs
