// The community projection: reach down a cascade to the original's author, retractions taken
// back, persons across linked streams, erasure, the bounds on hostile cascades, and the reach
// of a generated history equal to the generator's truth (docs/community.md).
#include "projections/community/community.h"

#include <capnp/message.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "nlohmann/json.hpp"
#include "projections/community/bands.h"
#include "projections/packed_record.h"
#include "projections/runner.h"
#include "projections/segments/segments.h"
#include "schema/community.capnp.h"
#include "store/governance.h"
#include "tests/testutil/store_fixture.h"
#include "workload/generator.h"
#include "workload/load.h"
#include "workload/model.h"
#include "workload/rank_score.h"

namespace ihs::projections::community {
namespace {

using schema::Channel;
using schema::Direction;
using schema::TouchpointType;

class CommunityTest : public ihs::testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    auto r = Runner::Open(store_.get(), {[] { return NewCommunityProjection(); },
                                         [] { return segments::NewSegmentsProjection(); }});
    ASSERT_TRUE(r.ok()) << r.status();
    runner_ = std::move(*r);
  }
  StateView View() {
    absl::Status s = runner_->CatchUp(kName);
    EXPECT_TRUE(s.ok()) << s;
    absl::StatusOr<StateView> v = runner_->View(kName);
    EXPECT_TRUE(v.ok()) << v.status();
    return *v;
  }
  int64_t Now() { return absl::ToUnixMicros(clock_.Now()); }

  // Appends a public touchpoint on Twitter; returns its id.
  std::string Post(const std::string& party, TouchpointType type, uint64_t audience,
                   const std::string& cause = "") {
    schema::Event::Builder e = events_.New(++next_id_);
    e.setOccurredAt(Now());
    if (!cause.empty()) e.setCausationId(AsData(cause));
    auto t = e.initTouchpoint();
    t.setChannel(Channel::TWITTER);
    t.setDirection(Direction::PUBLIC);
    t.setType(type);
    t.setAudienceSize(audience);
    auto r = store_->Append({party, store::ExpectedVersion::Any(), {e.asReader()}});
    EXPECT_TRUE(r.ok()) << r.status();
    clock_.Advance(absl::Seconds(1));
    return std::string(projections::View(e.getId()));
  }
  void Retract(const std::string& party, const std::string& post,
               Direction direction = Direction::PUBLIC) {
    schema::Event::Builder e = events_.New(++next_id_);
    e.setOccurredAt(Now());
    auto t = e.initTouchpoint();
    t.setChannel(Channel::TWITTER);
    t.setDirection(direction);
    t.setType(TouchpointType::RETRACTION);
    t.setCorrects(AsData(post));
    ASSERT_TRUE(store_->Append({party, store::ExpectedVersion::Any(), {e.asReader()}}).ok());
  }

  struct Card {
    capnp::MallocMessageBuilder m;
    schema::CommunityCard::Reader r;
  };
  std::unique_ptr<Card> CardOf(const std::string& party) {
    auto c = std::make_unique<Card>();
    absl::Status s = ReadCard(View(), party, Now(), c->m);
    EXPECT_TRUE(s.ok()) << s;
    c->r = c->m.getRoot<schema::CommunityCard>().asReader();
    return c;
  }
  std::vector<std::pair<std::string, uint64_t>> Top(size_t n = 10) {
    capnp::MallocMessageBuilder m;
    absl::Status s = ReadTop(View(), n, TopBy::kReach, m);
    EXPECT_TRUE(s.ok()) << s;
    std::vector<std::pair<std::string, uint64_t>> out;
    for (auto e : m.getRoot<schema::CommunityTop>().getEntries()) {
      out.emplace_back(e.getPerson().cStr(), e.getReach());
    }
    return out;
  }
  schema::CommunityCounters::Reader Counters(capnp::MallocMessageBuilder& m) {
    EXPECT_TRUE(ReadTop(View(), 1, TopBy::kReach, m).ok());
    return m.getRoot<schema::CommunityTop>().getCounters();
  }

  std::unique_ptr<Runner> runner_;
};

using ::testing::ElementsAre;
using ::testing::Pair;

TEST_F(CommunityTest, ACascadeReachCountsForTheOriginalsAuthor) {
  const std::string post = Post("twitter-ann", TouchpointType::COMPLAINT, 1000);
  const std::string share = Post("twitter-bob", TouchpointType::SHARE, 200, post);
  Post("twitter-cat", TouchpointType::MENTION, 50, share);
  Post("twitter-dan", TouchpointType::LIKE, 0, post);
  auto ann = CardOf("twitter-ann");
  EXPECT_EQ(ann->r.getReach(), 1250u);
  EXPECT_EQ(ann->r.getReach90d(), 1250u);
  EXPECT_EQ(ann->r.getPosts(), 1u);
  EXPECT_EQ(ann->r.getCarried(), 2u);  // bob's share and cat's mention of it
  EXPECT_EQ(ann->r.getReactions(), 1u);
  EXPECT_EQ(ann->r.getMaxDepth(), 2u);
  EXPECT_EQ(ann->r.getRank(), 1u);
  ASSERT_EQ(ann->r.getTopPosts().size(), 1u);
  EXPECT_EQ(projections::View(ann->r.getTopPosts()[0].getId()), post);
  EXPECT_EQ(ann->r.getTopPosts()[0].getCascade(), 1250u);
  EXPECT_EQ(ann->r.getTopPosts()[0].getCarries(), 1u);
  ASSERT_EQ(ann->r.getCarriers().size(), 2u);  // bob shared, dan liked; cat carried bob's
  EXPECT_EQ(std::string(ann->r.getCarriers()[0].getStream().cStr()), "twitter-bob");
  EXPECT_EQ(ann->r.getCarriers()[0].getShares(), 1u);
  EXPECT_EQ(std::string(ann->r.getCarriers()[1].getStream().cStr()), "twitter-dan");
  EXPECT_EQ(ann->r.getCarriers()[1].getLikes(), 1u);
  // Value: what her one post reached, times her standing.
  EXPECT_GT(ann->r.getStanding(), 1.5);
  EXPECT_NEAR(ann->r.getValue(), 1250 * ann->r.getStanding(), 1e-9);
  EXPECT_EQ(ann->r.getValueRank(), 1u);
  EXPECT_EQ(ann->r.getValuePersons(), 1u);
  // Carrying a post is not reach of one's own.
  auto bob = CardOf("twitter-bob");
  EXPECT_EQ(bob->r.getReach(), 0u);
  EXPECT_EQ(bob->r.getRank(), 0u);
  EXPECT_EQ(bob->r.getValue(), 0.0);
  EXPECT_EQ(bob->r.getValueRank(), 0u);
  EXPECT_THAT(Top(), ElementsAre(Pair("twitter-ann", 1250u)));
}

TEST_F(CommunityTest, TheNinetyDayReachCountsOriginalsOfTheLastNinetyDays) {
  Post("twitter-ann", TouchpointType::REVIEW, 300);
  clock_.Advance(absl::Hours(24 * 100));
  Post("twitter-ann", TouchpointType::REVIEW, 40);
  auto ann = CardOf("twitter-ann");
  EXPECT_EQ(ann->r.getReach(), 340u);
  EXPECT_EQ(ann->r.getReach90d(), 40u);
  EXPECT_EQ(ann->r.getPosts(), 2u);
}

TEST_F(CommunityTest, ARetractionTakesBackItsCascadeAndLaterCarriesCountForNobody) {
  const std::string kept = Post("twitter-ann", TouchpointType::REVIEW, 10);
  const std::string post = Post("twitter-ann", TouchpointType::COMPLAINT, 1000);
  const std::string share = Post("twitter-bob", TouchpointType::SHARE, 200, post);
  Retract("twitter-bob", post);  // not bob's to retract: ignored
  EXPECT_EQ(CardOf("twitter-ann")->r.getReach(), 1210u);
  Retract("twitter-ann", post, Direction::INBOUND);  // recorded as a request to the company
  EXPECT_EQ(CardOf("twitter-ann")->r.getReach(), 10u);
  Post("twitter-cat", TouchpointType::SHARE, 500, share);  // a share of the withdrawn cascade
  Post("twitter-dan", TouchpointType::SHARE, 500, post);
  auto ann = CardOf("twitter-ann");
  EXPECT_EQ(ann->r.getReach(), 10u);
  EXPECT_EQ(ann->r.getReach90d(), 10u);
  ASSERT_EQ(ann->r.getTopPosts().size(), 2u);
  EXPECT_EQ(projections::View(ann->r.getTopPosts()[0].getId()), kept);
  EXPECT_TRUE(ann->r.getTopPosts()[1].getRetracted());
  capnp::MallocMessageBuilder m;
  auto c = Counters(m);
  EXPECT_EQ(c.getDeadCarries(), 2u);
  EXPECT_EQ(c.getForeignRetractions(), 1u);

  // A retracted share takes back only its own part of the cascade.
  const std::string second = Post("twitter-ann", TouchpointType::MESSAGE, 100);
  const std::string s1 = Post("twitter-bob", TouchpointType::SHARE, 30, second);
  Post("twitter-cat", TouchpointType::SHARE, 7, s1);
  Post("twitter-dan", TouchpointType::SHARE, 5, second);
  EXPECT_EQ(CardOf("twitter-ann")->r.getReach(), 10u + 142u);
  Retract("twitter-bob", s1);
  EXPECT_EQ(CardOf("twitter-ann")->r.getReach(), 10u + 105u);
}

TEST_F(CommunityTest, LinkedStreamsAreOnePersonAndAnUnlinkSplitsThem) {
  Post("customer-ann", TouchpointType::REVIEW, 5);  // seen first: names the person
  Post("twitter-ann", TouchpointType::RECOMMENDATION, 500);
  Post("twitter-bob", TouchpointType::RECOMMENDATION, 300);
  EXPECT_THAT(Top(), ElementsAre(Pair("twitter-ann", 500u), Pair("twitter-bob", 300u),
                                 Pair("customer-ann", 5u)));
  ASSERT_TRUE(Link("twitter-ann", "customer-ann").ok());
  EXPECT_THAT(Top(), ElementsAre(Pair("customer-ann", 505u), Pair("twitter-bob", 300u)));
  auto card = CardOf("twitter-ann");
  EXPECT_EQ(std::string(card->r.getPerson().cStr()), "customer-ann");
  EXPECT_EQ(card->r.getStreams().size(), 2u);
  EXPECT_EQ(card->r.getPosts(), 2u);
  EXPECT_EQ(card->r.getPersons(), 2u);
  EXPECT_EQ(card->r.getPercentile(), 50.0);
  EXPECT_EQ(card->r.getValue(), 505.0 / 2);  // nobody carries her yet: standing 1
  EXPECT_EQ(card->r.getValuePersons(), 2u);
  // Reach that arrives after the link goes to the person too.
  Post("twitter-cat", TouchpointType::SHARE, 20,
       std::string(projections::View(card->r.getTopPosts()[0].getId())));
  EXPECT_THAT(Top(1), ElementsAre(Pair("customer-ann", 525u)));
  ASSERT_TRUE(Link("twitter-ann", "customer-ann", /*unlink=*/true).ok());
  EXPECT_THAT(Top(), ElementsAre(Pair("twitter-ann", 520u), Pair("twitter-bob", 300u),
                                 Pair("customer-ann", 5u)));
  EXPECT_EQ(CardOf("customer-ann")->r.getValue(), 5.0);
  EXPECT_EQ(CardOf("customer-ann")->r.getValuePersons(), 3u);
}

TEST_F(CommunityTest, AnErasureRemovesTheValuesAndKeepsTheEdgesOnlyAsCounts) {
  const std::string post = Post("twitter-ann", TouchpointType::COMPLAINT, 1000);
  const std::string share = Post("twitter-bob", TouchpointType::SHARE, 200, post);
  Post("twitter-ann", TouchpointType::LIKE, 0, share);
  const std::string bobs = Post("twitter-bob", TouchpointType::REVIEW, 70);
  ASSERT_TRUE(store::Erase(*store_, "twitter-bob", "asked", "dpo").ok());
  auto ann = CardOf("twitter-ann");
  EXPECT_EQ(ann->r.getReach(), 1200u);  // what ann's post reached stays ann's
  EXPECT_EQ(ann->r.getCarriers().size(), 0u);
  EXPECT_EQ(ann->r.getAnonymousIn(), 1u);
  auto bob = CardOf("twitter-bob");
  EXPECT_EQ(bob->r.getReach(), 0u);
  EXPECT_EQ(bob->r.getPosts(), 0u);
  EXPECT_EQ(bob->r.getErasedStreams(), 1u);
  EXPECT_EQ(bob->r.getValue(), 0.0);
  EXPECT_EQ(bob->r.getValueRank(), 0u);
  EXPECT_EQ(ann->r.getValuePersons(), 1u);
  EXPECT_EQ(bob->r.getTopPosts().size(), 0u);
  // Bob's post is kept in its cascade without his id: shares of it count for nobody.
  Post("twitter-cat", TouchpointType::SHARE, 40, bobs);
  EXPECT_THAT(Top(), ElementsAre(Pair("twitter-ann", 1200u)));
  capnp::MallocMessageBuilder m;
  auto c = Counters(m);
  EXPECT_EQ(c.getAnonymousEdges(), 1u);  // ann's like of bob's share
  EXPECT_EQ(c.getDeadCarries(), 1u);
  // No key of the state names bob but his own stream record.
  absl::Status s = View().Scan("", "", [](absl::string_view k, absl::string_view v) {
    if (k != "Stwitter-bob") {
      EXPECT_EQ(k.find("twitter-bob"), absl::string_view::npos) << k;
      EXPECT_EQ(v.find("twitter-bob"), absl::string_view::npos) << k;
    }
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
}

TEST_F(CommunityTest, HostileCascadesAreBoundedAndNamedPostsNeedNotExist) {
  // A share of a post the log does not hold is the sharer's own post.
  Post("twitter-eve", TouchpointType::SHARE, 9, std::string(16, '\x7f'));
  EXPECT_EQ(CardOf("twitter-eve")->r.getReach(), 9u);
  // A chain deeper than kMaxDepth: the carries beyond it count for nobody.
  std::string at = Post("twitter-ann", TouchpointType::MESSAGE, 1);
  for (uint32_t d = 1; d <= kMaxDepth + 1; ++d) {
    at = Post(d % 2 ? "twitter-bob" : "twitter-ann", TouchpointType::SHARE, 1, at);
  }
  auto ann = CardOf("twitter-ann");
  EXPECT_EQ(ann->r.getReach(), 1u + kMaxDepth);
  EXPECT_EQ(ann->r.getMaxDepth(), kMaxDepth);
  capnp::MallocMessageBuilder m;
  auto c = Counters(m);
  EXPECT_EQ(c.getTooDeep(), 1u);
  EXPECT_EQ(c.getUnknownTargets(), 1u);
  capnp::MallocMessageBuilder out;
  EXPECT_EQ(ReadTop(View(), 0, TopBy::kReach, out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTop(View(), kMaxTop + 1, TopBy::kReach, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadCard(View(), "nobody", Now(), out).code(), absl::StatusCode::kNotFound);
}

// The standing against the exact values of the same graph: within the bound the residuals give.
TEST_F(CommunityTest, TheStandingIsThePageRankOfTheCarryGraphWithinItsBound) {
  // ann is carried by bob and cat; bob is carried by cat; dan likes ann (a reaction, no edge).
  const std::string a1 = Post("twitter-ann", TouchpointType::COMPLAINT, 100);
  const std::string a2 = Post("twitter-ann", TouchpointType::REVIEW, 100);
  const std::string b1 = Post("twitter-bob", TouchpointType::SHARE, 10, a1);
  Post("twitter-cat", TouchpointType::SHARE, 10, a2);
  Post("twitter-cat", TouchpointType::MENTION, 10, b1);
  Post("twitter-dan", TouchpointType::LIKE, 0, a1);
  const auto exact = workload::ExactStanding({{"twitter-bob", "twitter-ann", 1},
                                              {"twitter-cat", "twitter-ann", 1},
                                              {"twitter-cat", "twitter-bob", 1}},
                                             kReset);
  // bob: 1 + 0.85 * 1/2 (cat's walk); ann: 1 + 0.85 * (bob + 1/2 cat).
  EXPECT_NEAR(exact.at("twitter-bob"), 1.425, 1e-9);
  EXPECT_NEAR(exact.at("twitter-ann"), 1 + 0.85 * (1.425 + 0.5), 1e-9);
  for (const auto& [stream, x] : exact) {
    auto card = CardOf(stream);
    // |x - p| sums to at most (sum of |residuals|) / kReset, each below the threshold.
    EXPECT_NEAR(card->r.getStanding(), x, 4 * kPushThreshold / kReset) << stream;
  }
  EXPECT_EQ(CardOf("twitter-ann")->r.getStandingRank(), 1u);
  EXPECT_EQ(CardOf("twitter-cat")->r.getStandingRank(), 3u);
  EXPECT_EQ(CardOf("twitter-dan")->r.getStandingRank(), 0u);  // a like is no carry
  EXPECT_EQ(CardOf("twitter-ann")->r.getGraphPersons(), 3u);

  // Erased, cat leaves the graph: ann and bob stand as if cat had never carried them.
  ASSERT_TRUE(store::Erase(*store_, "twitter-cat", "asked", "dpo").ok());
  const auto without = workload::ExactStanding({{"twitter-bob", "twitter-ann", 1}}, kReset);
  for (const auto& [stream, x] : without) {
    EXPECT_NEAR(CardOf(stream)->r.getStanding(), x, 3 * kPushThreshold / kReset) << stream;
  }
  EXPECT_EQ(CardOf("twitter-cat")->r.getStanding(), 0.0);
  EXPECT_EQ(CardOf("twitter-cat")->r.getStandingRank(), 0u);
  EXPECT_EQ(CardOf("twitter-ann")->r.getGraphPersons(), 2u);
}

// The audience at risk: the chance this person takes a waiting message public, from their own
// history, times what one of their posts reaches.
TEST_F(CommunityTest, TheAudienceAtRiskIsTheirOwnAudienceAndWhatOthersCarryOfThem) {
  auto inbound = [&](const std::string& party, TouchpointType type) {
    schema::Event::Builder e = events_.New(++next_id_);
    e.setOccurredAt(Now());
    auto t = e.initTouchpoint();
    t.setChannel(Channel::EMAIL);
    t.setDirection(Direction::INBOUND);
    t.setType(type);
    EXPECT_TRUE(store_->Append({party, store::ExpectedVersion::Any(), {e.asReader()}}).ok());
    clock_.Advance(absl::Seconds(1));
    return std::string(projections::View(e.getId()));
  };
  const std::string review = Post("twitter-ann", TouchpointType::REVIEW, 600);
  Post("twitter-bob", TouchpointType::REVIEW, 900);
  auto ann = CardOf("twitter-ann");
  EXPECT_DOUBLE_EQ(ann->r.getPublicChance(), 0.2);  // no history: the prior
  EXPECT_DOUBLE_EQ(ann->r.getRisk(), 600);          // her own audience; nobody carries her yet
  // cat carries her review to 5,000; dan carries cat's share to 100,000: her reach grows by both,
  // but only direct carries say who carries her.
  const std::string share = Post("twitter-cat", TouchpointType::SHARE, 5000, review);
  Post("twitter-dan", TouchpointType::SHARE, 100000, share);
  ann = CardOf("twitter-ann");
  EXPECT_EQ(ann->r.getReach(), 105600u);
  EXPECT_EQ(ann->r.getOwnAudience(), 600u);
  EXPECT_EQ(ann->r.getCarriedAudience(), 5000u);
  EXPECT_DOUBLE_EQ(ann->r.getRisk(), 600 + 5000);
  EXPECT_DOUBLE_EQ(CardOf("twitter-cat")->r.getRisk(), 0);  // no post of her own: nothing known
  // Another post of ann's, nobody carries it: per post, half as much carried.
  Post("twitter-ann", TouchpointType::REVIEW, 600);
  EXPECT_DOUBLE_EQ(CardOf("twitter-ann")->r.getRisk(), 600 + 5000 / 2.0);
  // Her share (of cat's share) shows a larger audience of hers: a share is her post too.
  Post("twitter-ann", TouchpointType::SHARE, 800, share);
  EXPECT_DOUBLE_EQ(CardOf("twitter-ann")->r.getRisk(), 800 + 5000 / 2.0);

  // ann's email waits, and she takes it public on her twitter stream once linked to it: the
  // chance of going public is a figure of its own, next to what is at risk.
  const std::string email = inbound("customer-ann", TouchpointType::COMPLAINT);
  inbound("customer-bob", TouchpointType::COMPLAINT);
  inbound("customer-bob", TouchpointType::PURCHASE);  // waits for nothing
  ASSERT_TRUE(Link("customer-ann", "twitter-ann").ok());
  ASSERT_TRUE(Link("customer-bob", "twitter-bob").ok());
  Post("twitter-ann", TouchpointType::COMPLAINT, 600, email);  // follows the email up, in public
  // Her own streams carrying each other count for nothing.
  Post("customer-ann", TouchpointType::SHARE, 10, review);
  ann = CardOf("twitter-ann");
  EXPECT_EQ(ann->r.getWaited(), 1u);
  EXPECT_EQ(ann->r.getWentPublic(), 1u);
  EXPECT_DOUBLE_EQ(ann->r.getPublicChance(), 2.0 / 6);
  EXPECT_EQ(ann->r.getCarriedAudience(), 5000u);
  EXPECT_DOUBLE_EQ(ann->r.getRisk(), 800 + 5000 / 3.0);
  EXPECT_EQ(ann->r.getRiskRank(), 1u);
  auto bob = CardOf("customer-bob");
  EXPECT_EQ(bob->r.getWaited(), 1u);
  EXPECT_DOUBLE_EQ(bob->r.getPublicChance(), 1.0 / 6);
  EXPECT_DOUBLE_EQ(bob->r.getRisk(), 900);
  EXPECT_EQ(bob->r.getRiskRank(), 2u);
  capnp::MallocMessageBuilder m;
  ASSERT_TRUE(ReadTop(View(), 10, TopBy::kRisk, m).ok());
  auto top = m.getRoot<schema::CommunityTop>().getEntries();
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(std::string(top[0].getPerson().cStr()), "twitter-ann");
}

TEST_F(CommunityTest, FollowsAreEdgesOfTheGraphWhereTheLogHasThem) {
  Post("twitter-ann", TouchpointType::REVIEW, 100);
  for (const char* followed : {"twitter-ann", "$identity", ""}) {
    schema::Event::Builder e = events_.New(++next_id_);
    e.setOccurredAt(Now());
    auto t = e.initTouchpoint();
    t.setChannel(Channel::TWITTER);
    t.setDirection(Direction::PUBLIC);
    t.setType(TouchpointType::FOLLOW);
    t.setCounterpart(followed);
    ASSERT_TRUE(
        store_->Append({"twitter-eve", store::ExpectedVersion::Any(), {e.asReader()}}).ok());
  }
  auto ann = CardOf("twitter-ann");
  ASSERT_EQ(ann->r.getCarriers().size(), 1u);
  EXPECT_EQ(std::string(ann->r.getCarriers()[0].getStream().cStr()), "twitter-eve");
  EXPECT_EQ(ann->r.getCarriers()[0].getFollows(), 1u);
  EXPECT_EQ(ann->r.getReach(), 100u);       // a follow reaches nobody
  EXPECT_EQ(ann->r.getStandingRank(), 0u);  // nor carries anything
}

TEST(RankScoreTest, SpearmanAndOverlapOfSmallLists) {
  const std::map<std::string, double> a = {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}};
  EXPECT_DOUBLE_EQ(workload::Spearman(a, a), 1);
  EXPECT_DOUBLE_EQ(workload::Spearman(a, {{"a", 4}, {"b", 3}, {"c", 2}, {"d", 1}}), -1);
  EXPECT_DOUBLE_EQ(workload::TopOverlap(a, {{"a", 4}, {"b", 3}, {"c", 2}, {"d", 1}}, 2), 0);
  EXPECT_DOUBLE_EQ(workload::TopOverlap(a, {{"a", 1}, {"b", 3}, {"c", 2}, {"d", 4}}, 2), 0.5);
}

// On a generated history, every person's reach is the truth's, and the top 100 is the truth's.
TEST_F(CommunityTest, OnAGeneratedHistoryTheReachIsTheTruths) {
  workload::Config c;
  c.parties = 2000;
  c.days = 60;
  c.seed = 11;
  workload::Generator g(c);
  clock_.Set(absl::FromUnixMicros(c.start));
  ASSERT_TRUE(workload::LoadIntoStore(g, *store_, nullptr, &clock_).ok());
  std::stringstream text;
  g.WriteTruth(text);
  const nlohmann::json truth = nlohmann::json::parse(text.str());
  const auto& influential = truth["influential"];
  ASSERT_EQ(influential.size(), static_cast<size_t>(workload::kTruthInfluential));
  const auto top = Top(influential.size());
  ASSERT_EQ(top.size(), influential.size());
  for (size_t i = 0; i < top.size(); ++i) {
    EXPECT_EQ(top[i].second, influential[i]["reach"].get<uint64_t>()) << "rank " << i;
    const std::string person = influential[i]["person"];
    EXPECT_EQ(CardOf(person)->r.getReach(), influential[i]["reach"].get<uint64_t>()) << person;
  }
  // The standing against an exact power iteration of the same graph, per person.
  std::vector<std::tuple<std::string, std::string, uint64_t>> edges;
  std::map<std::string, std::string> person;
  std::map<std::string, double> estimate, exact;
  ASSERT_TRUE(ForEachGraphStream(View(), [&](const GraphStream& g) {
                person[g.stream] = g.person;
                estimate[g.person] += g.standing;
                for (const auto& [target, weight] : g.out)
                  edges.emplace_back(g.stream, target, weight);
                return true;
              }).ok());
  for (const auto& [stream, x] : workload::ExactStanding(edges, kReset)) exact[person[stream]] += x;
  ASSERT_GT(exact.size(), 100u);
  EXPECT_GE(workload::Spearman(exact, estimate), 0.95);
  EXPECT_GE(workload::TopOverlap(exact, estimate, 100), 0.9);
}

// --- bands: community conditions in segment rules (docs/community.md "Bands") ----------------

class BandTest : public CommunityTest {
 protected:
  void Define(const std::string& name, const std::string& rule) {
    segments::DefineRequest d;
    d.name = name;
    d.rule = rule;
    d.requested_by = "test";
    absl::StatusOr<segments::DefineResult> r = segments::AppendDefinition(*store_, d);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  BandReport Settle(BandAppender& bands) {
    absl::StatusOr<BandReport> r = bands.RunUntilSettled();
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : BandReport{};
  }
  std::vector<std::string> Members(const std::string& segment) {
    EXPECT_TRUE(runner_->CatchUp(segments::kName).ok());
    absl::StatusOr<StateView> v = runner_->View(segments::kName);
    EXPECT_TRUE(v.ok()) << v.status();
    capnp::MallocMessageBuilder m;
    absl::Status s = segments::ReadMembers(*v, segment, 0, "", 100, m);
    EXPECT_TRUE(s.ok()) << s;
    std::vector<std::string> out;
    for (auto e : m.getRoot<schema::MemberPage>().getMembers()) out.push_back(e.getPerson().cStr());
    return out;
  }
  // The "$community" stream's events: party, clause, inside.
  std::vector<std::tuple<std::string, std::string, bool>> Published() {
    std::vector<std::tuple<std::string, std::string, bool>> out;
    auto read = store_->ReadStream(store::kCommunityStream, 0, 1000, store::ReadDirection::kForward,
                                   store::ReadOptions());
    if (!read.ok()) return out;
    for (const store::StoredEvent& e : *read) {
      auto b = e.event().getCommunityBand();
      out.emplace_back(b.getParty().cStr(), b.getClause().cStr(), b.getInside());
    }
    return out;
  }
};

using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

TEST_F(BandTest, ASegmentOnACommunityConditionFollowsWhoIsInside) {
  Define("loud", "community reach in top 50%");
  Define("heard", "community reach >= 1000");
  BandAppender bands(*store_, *runner_);
  EXPECT_EQ(Settle(bands).appended, 0u);  // nobody has any reach yet
  Post("twitter-ann", TouchpointType::MESSAGE, 1000);
  Post("twitter-bob", TouchpointType::MESSAGE, 200);
  Post("twitter-cat", TouchpointType::MESSAGE, 50);
  Post("twitter-dan", TouchpointType::MESSAGE, 10);
  // 4 persons ranked: the top 50% are the first 2; 1000 or more: ann alone.
  const BandReport first = Settle(bands);
  EXPECT_EQ(first.appended, 3u);
  EXPECT_EQ(first.clauses, 2u);
  EXPECT_THAT(Members("loud"), UnorderedElementsAre("twitter-ann", "twitter-bob"));
  EXPECT_THAT(Members("heard"), ElementsAre("twitter-ann"));
  // Settled: another pass, or another appender (ihsd started again), appends nothing.
  EXPECT_EQ(Settle(bands).appended, 0u);
  BandAppender again(*store_, *runner_);
  EXPECT_EQ(Settle(again).appended, 0u);

  // cat's post is shared widely: cat comes inside both, bob goes outside the top half.
  const std::string post = Post("twitter-cat", TouchpointType::MESSAGE, 5);
  Post("twitter-eve", TouchpointType::SHARE, 4000, post);
  const BandReport second = Settle(bands);
  EXPECT_EQ(second.appended, 3u);  // cat enters both; bob leaves loud (eve has no reach: a carry)
  EXPECT_THAT(Members("loud"), UnorderedElementsAre("twitter-ann", "twitter-cat"));
  EXPECT_THAT(Members("heard"), UnorderedElementsAre("twitter-ann", "twitter-cat"));
  EXPECT_THAT(
      Published(),
      UnorderedElementsAre(std::make_tuple("twitter-ann", "community reach in top 50%", true),
                           std::make_tuple("twitter-bob", "community reach in top 50%", true),
                           std::make_tuple("twitter-ann", "community reach >= 1000", true),
                           std::make_tuple("twitter-cat", "community reach in top 50%", true),
                           std::make_tuple("twitter-cat", "community reach >= 1000", true),
                           std::make_tuple("twitter-bob", "community reach in top 50%", false)));
}

TEST_F(BandTest, ABandFollowsThePersonAcrossLinkedStreams) {
  Define("heard", "community reach > 500 and any(type = complaint)");
  BandAppender bands(*store_, *runner_);
  Post("twitter-ann", TouchpointType::MESSAGE, 600);
  Post("ann", TouchpointType::COMPLAINT, 10);  // another stream, not linked yet
  Settle(bands);
  EXPECT_THAT(Members("heard"), IsEmpty());  // the loud stream has no complaint
  ASSERT_TRUE(Link("ann", "twitter-ann").ok());
  Settle(bands);
  // One person now: inside the band (their reach is 610) and with a complaint.
  const std::vector<std::string> members = Members("heard");
  ASSERT_EQ(members.size(), 1u);
  EXPECT_TRUE(members[0] == "ann" || members[0] == "twitter-ann") << members[0];
}

TEST_F(BandTest, OnlyTheAppenderWritesBandsAndOnlyOnCommunity) {
  schema::Event::Builder e = events_.New(++next_id_);
  e.setOccurredAt(Now());
  auto b = e.initCommunityBand();
  b.setParty("twitter-ann");
  b.setClause("community reach >= 1");
  b.setInside(true);
  absl::StatusOr<store::AppendResult> r =
      store_->Append({"twitter-ann", store::ExpectedVersion::Any(), {e.asReader()}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("$community"));
  b.setClause("");
  r = store_->Append({store::kCommunityStream, store::ExpectedVersion::Any(), {e.asReader()}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("a party and a clause"));
}

TEST_F(BandTest, BandEventIdsAreAFunctionOfClausePartyAndCount) {
  EXPECT_EQ(BandEventId("community reach >= 1", "ann", 0),
            BandEventId("community reach >= 1", "ann", 0));
  EXPECT_NE(BandEventId("community reach >= 1", "ann", 0),
            BandEventId("community reach >= 1", "ann", 1));
  EXPECT_NE(BandEventId("community reach >= 1", "ann", 0),
            BandEventId("community reach >= 1", "bob", 0));
  EXPECT_EQ(BandEventId("a", "b", 0).size(), 16u);
}

}  // namespace
}  // namespace ihs::projections::community
