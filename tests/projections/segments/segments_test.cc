// The segments projection: membership kept true per event and by the clock, its history with
// the why, reads as of any moment, and a rebuild that writes the same bytes (docs/segments.md
// "Membership").
#include "projections/segments/segments.h"

#include <capnp/message.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "projections/packed_record.h"
#include "projections/runner.h"
#include "store/governance.h"
#include "tests/testutil/store_fixture.h"
#include "workload/generator.h"
#include "workload/load.h"
#include "workload/model.h"

namespace ihs::projections::segments {
namespace {

using schema::Channel;
using schema::Direction;
using schema::TouchpointType;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kSecond = 1000000;
constexpr int64_t kDay = 86400 * kSecond;

class SegmentsTest : public ihs::testing::StoreTest {
 protected:
  void OpenRunner(RunnerOptions options = {}) {
    runner_.reset();
    auto r = Runner::Open(store_.get(), {[] { return NewSegmentsProjection(); }}, options);
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

  void Define(const std::string& name, const std::string& rule,
              Definitions::Op op = Definitions::Op::kDefine) {
    DefineRequest r;
    r.op = op;
    r.name = name;
    r.rule = rule;
    r.requested_by = "ops@example.org";
    absl::StatusOr<DefineResult> d = AppendDefinition(*store_, r);
    ASSERT_TRUE(d.ok()) << d.status();
  }

  // Appends a touchpoint that occurred now (the fake clock); returns its id.
  std::string Touch(const std::string& party, TouchpointType type,
                    Direction direction = Direction::INBOUND, Channel channel = Channel::EMAIL,
                    const std::string& thread = "", float sentiment = std::nanf("")) {
    schema::Event::Builder e = events_.New(++next_id_);
    e.setOccurredAt(Now());
    auto t = e.initTouchpoint();
    t.setChannel(channel);
    t.setDirection(direction);
    t.setType(type);
    t.setSentiment(sentiment);
    if (!thread.empty()) t.setThreadId(thread);
    auto r = store_->Append({party, store::ExpectedVersion::Any(), {e.asReader()}});
    EXPECT_TRUE(r.ok()) << r.status();
    return std::string(View(e.getId()));
  }
  static absl::string_view View(capnp::Data::Reader d) { return projections::View(d); }

  std::vector<std::string> Members(const std::string& segment, int64_t as_of = 0) {
    capnp::MallocMessageBuilder m;
    absl::Status s = ReadMembers(View(), segment, as_of, "", kMaxMembersPage, m);
    EXPECT_TRUE(s.ok()) << s;
    std::vector<std::string> out;
    if (!s.ok()) return out;
    auto page = m.getRoot<schema::MemberPage>();
    for (auto member : page.getMembers()) out.emplace_back(member.getPerson().cStr());
    EXPECT_EQ(page.getCount(), out.size());
    return out;
  }

  // Every key and value of the active generation, but the tag that changes with each batch.
  std::vector<std::pair<std::string, std::string>> Dump() {
    std::vector<std::pair<std::string, std::string>> out;
    absl::Status s = View().Scan("", "", [&](absl::string_view k, absl::string_view v) {
      if (k != "g") out.emplace_back(k, v);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  // Appends a generated history, each event recorded when it arrives in the simulation; returns
  // its truth.
  nlohmann::json LoadHistory(uint64_t parties, uint32_t days, uint64_t seed) {
    workload::Config c;
    c.parties = parties;
    c.days = days;
    c.seed = seed;
    workload::Generator g(c);
    clock_.Set(std::max(clock_.Now(), absl::FromUnixMicros(c.start)));
    absl::Status s = workload::LoadIntoStore(g, *store_, nullptr, &clock_).status();
    EXPECT_TRUE(s.ok()) << s;
    std::stringstream truth;
    g.WriteTruth(truth);
    return nlohmann::json::parse(truth.str());
  }

  std::unique_ptr<Runner> runner_;
};

int64_t AsOf(const nlohmann::json& truth) {
  absl::Time end;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, truth["as_of"].get<std::string>(), &end, &error))
      << error;
  return absl::ToUnixMicros(end);
}

TEST_F(SegmentsTest, AWindowEntersWithAnEventAndLeavesByTheClockToTheSecond) {
  Define("churn", "count(type = complaint, last 30d) >= 2");
  OpenRunner();
  const int64_t t0 = Now();
  const std::string first = Touch("p", TouchpointType::COMPLAINT);
  clock_.Advance(absl::Hours(24));
  const std::string second = Touch("p", TouchpointType::COMPLAINT);
  Touch("q", TouchpointType::COMPLAINT);
  EXPECT_THAT(Members("churn"), ElementsAre("p"));

  // Thirty days after the first complaint it slides out, whenever the worker looks.
  clock_.Advance(absl::Hours(24 * 40));
  EXPECT_THAT(Members("churn"), ElementsAre());
  EXPECT_THAT(Members("churn", t0 + 15 * kDay), ElementsAre("p"));
  EXPECT_THAT(Members("churn", t0 + 30 * kDay - 1), ElementsAre("p"));
  EXPECT_THAT(Members("churn", t0 + 30 * kDay), ElementsAre());

  capnp::MallocMessageBuilder m;
  ASSERT_TRUE(ReadWhy(View(), "p", "churn", 0, m).ok());
  auto why = m.getRoot<schema::SegmentWhy>();
  EXPECT_FALSE(why.getMember());
  ASSERT_EQ(why.getTransitions().size(), 2u);
  auto in = why.getTransitions()[0];
  EXPECT_TRUE(in.getEntered());
  EXPECT_EQ(in.getAt(), t0 + kDay);
  EXPECT_EQ(in.getCause(), schema::TransitionCause::EVENT);
  EXPECT_EQ(in.getVersion(), 1u);
  ASSERT_EQ(in.getClauses().size(), 1u);
  EXPECT_EQ(std::string(in.getClauses()[0].getText().cStr()),
            "count(type = complaint, last 30d) >= 2");
  EXPECT_EQ(in.getClauses()[0].getValue(), 2);
  ASSERT_EQ(in.getClauses()[0].getEvents().size(), 2u);
  EXPECT_EQ(View(in.getClauses()[0].getEvents()[0]), second);  // latest first
  EXPECT_EQ(View(in.getClauses()[0].getEvents()[1]), first);
  auto out = why.getTransitions()[1];
  EXPECT_FALSE(out.getEntered());
  EXPECT_EQ(out.getAt(), t0 + 30 * kDay);
  EXPECT_EQ(out.getCause(), schema::TransitionCause::CLOCK);
  EXPECT_EQ(out.getClauses()[0].getValue(), 1);
}

TEST_F(SegmentsTest, AnUnansweredComplaintEntersWhenItHasWaitedAndLeavesWithTheAnswer) {
  Define("waiting", "unanswered(type = complaint, over 2d)");
  OpenRunner();
  const int64_t t0 = Now();
  Touch("p", TouchpointType::COMPLAINT, Direction::INBOUND, Channel::EMAIL, "t1");
  clock_.Advance(absl::Hours(24 * 3));
  EXPECT_THAT(Members("waiting"), ElementsAre("p"));
  EXPECT_THAT(Members("waiting", t0 + 2 * kDay - 1), ElementsAre());
  EXPECT_THAT(Members("waiting", t0 + 2 * kDay), ElementsAre("p"));
  // The company's reply in the thread, on another channel, answers it.
  Touch("p", TouchpointType::REPLY, Direction::OUTBOUND, Channel::PHONE, "t1");
  EXPECT_THAT(Members("waiting"), ElementsAre());
}

TEST_F(SegmentsTest, ARetiredSegmentsMembersLeaveAndANewOneTakesItsMembersAtOnce) {
  Touch("p", TouchpointType::PURCHASE);
  Touch("q", TouchpointType::COMPLAINT);
  clock_.Advance(absl::Hours(1));
  const int64_t defined = Now();
  Define("buyers", "any(type = purchase)");
  OpenRunner();
  EXPECT_THAT(Members("buyers"), ElementsAre("p"));
  capnp::MallocMessageBuilder m;
  absl::Status before = ReadMembers(View(), "buyers", defined - 1, "", 10, m);
  EXPECT_EQ(before.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(before.message()), HasSubstr("first defined at"));
  EXPECT_EQ(ReadMembers(View(), "sellers", 0, "", 10, m).code(), absl::StatusCode::kNotFound);

  clock_.Advance(absl::Hours(1));
  Define("buyers", "any(type = purchase) or any(type = complaint)", Definitions::Op::kChange);
  EXPECT_THAT(Members("buyers"), ElementsAre("p", "q"));
  clock_.Advance(absl::Hours(1));
  Define("buyers", "", Definitions::Op::kRetire);
  EXPECT_THAT(Members("buyers"), ElementsAre());
  EXPECT_THAT(Members("buyers", defined), ElementsAre("p"));

  capnp::MallocMessageBuilder w;
  ASSERT_TRUE(ReadWhy(View(), "q", "buyers", 0, w).ok());
  auto t = w.getRoot<schema::SegmentWhy>().getTransitions();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].getVersion(), 2u);
  EXPECT_EQ(t[0].getCause(), schema::TransitionCause::DEFINITION);
  EXPECT_EQ(t[1].getVersion(), 3u);
  EXPECT_FALSE(t[1].getEntered());
}

TEST_F(SegmentsTest, LinkedStreamsCountAsOnePerson) {
  Define("two_complaints", "count(type = complaint) >= 2");
  Touch("customer-a", TouchpointType::COMPLAINT);
  clock_.Advance(absl::Seconds(1));
  Touch("twitter-a", TouchpointType::COMPLAINT, Direction::PUBLIC, Channel::TWITTER);
  OpenRunner();
  EXPECT_THAT(Members("two_complaints"), ElementsAre());

  schema::Event::Builder link = events_.New(++next_id_);
  auto l = link.initIdentityLink();
  auto parties = l.initParties(2);
  parties.set(0, "twitter-a");
  parties.set(1, "customer-a");
  l.setReason("the same person");
  ASSERT_TRUE(store_->Append({"$identity", store::ExpectedVersion::Any(), {link.asReader()}}).ok());
  EXPECT_THAT(Members("two_complaints"), ElementsAre("customer-a"));  // seen first: the id

  capnp::MallocMessageBuilder m;
  ASSERT_TRUE(ReadPartySegments(View(), "twitter-a", 0, m).ok());
  auto of = m.getRoot<schema::PartySegments>();
  EXPECT_EQ(std::string(of.getPerson().cStr()), "customer-a");
  EXPECT_EQ(of.getStreams().size(), 2u);
  ASSERT_EQ(of.getSegments().size(), 1u);
  EXPECT_EQ(std::string(of.getSegments()[0].getSegment().cStr()), "two_complaints");

  // Unlinked, each is a person of one complaint again.
  schema::Event::Builder unlink = events_.New(++next_id_);
  auto u = unlink.initIdentityLink();
  auto up = u.initParties(2);
  up.set(0, "customer-a");
  up.set(1, "twitter-a");
  u.setUnlink(true);
  u.setReason("not the same after all");
  ASSERT_TRUE(
      store_->Append({"$identity", store::ExpectedVersion::Any(), {unlink.asReader()}}).ok());
  EXPECT_THAT(Members("two_complaints"), ElementsAre());
}

TEST_F(SegmentsTest, AnErasureTakesTheTopicsAndSentimentAndTheMembershipTheyMade) {
  Define("unhappy", "any(sentiment < -0.5)");
  Touch("p", TouchpointType::MESSAGE, Direction::INBOUND, Channel::EMAIL, "", -0.9f);
  OpenRunner();
  EXPECT_THAT(Members("unhappy"), ElementsAre("p"));
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(store::Erase(*store_, "p", "asked", "dpo").ok());
  EXPECT_THAT(Members("unhappy"), ElementsAre());
  capnp::MallocMessageBuilder m;
  ASSERT_TRUE(ReadWhy(View(), "p", "unhappy", 0, m).ok());
  auto t = m.getRoot<schema::SegmentWhy>().getTransitions();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[1].getCause(), schema::TransitionCause::ERASURE);
}

// The worker follows the log while a generated history is appended at its simulated times; a
// rebuild of the same log afterwards writes the same state, byte for byte.
TEST_F(SegmentsTest, ARebuildWritesTheSameHistoryAsTheLiveWorker) {
  RunnerOptions o;
  o.batch_events = 50;
  OpenRunner(o);
  runner_->Start();
  LoadHistory(300, 90, 7);
  runner_->Stop();
  const auto live = Dump();
  ASSERT_TRUE(runner_->Rebuild(kName).ok());
  const auto rebuilt = Dump();
  ASSERT_EQ(live.size(), rebuilt.size());
  for (size_t i = 0; i < live.size(); ++i) {
    ASSERT_EQ(live[i], rebuilt[i]) << "key " << absl::CHexEscape(live[i].first);
  }
  size_t transitions = 0;
  ASSERT_TRUE(ForEachTransition(View(), 0, [&](schema::Transition::Reader) {
                ++transitions;
                return true;
              }).ok());
  EXPECT_GT(transitions, 50u);
}

// As of the history's end, the truth's five segments have exactly the truth's members.
TEST_F(SegmentsTest, TheTruthsSegmentsHaveTheTruthsMembers) {
  const nlohmann::json truth = LoadHistory(400, 120, 3);
  const int64_t as_of = AsOf(truth);
  OpenRunner();
  for (const workload::TruthSegment& s : workload::kTruthSegments) {
    std::set<std::string> want;
    for (const auto& id : truth["segments"][s.name]) want.insert(id.get<std::string>());
    const std::vector<std::string> got_list = Members(s.name, as_of);
    const std::set<std::string> got(got_list.begin(), got_list.end());
    std::vector<std::string> extra, missing;
    std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                        std::back_inserter(extra));
    std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                        std::back_inserter(missing));
    EXPECT_TRUE(extra.empty() && missing.empty())
        << s.name << ": " << extra.size() << " not in the truth (" << absl::StrJoin(extra, " ")
        << "), " << missing.size() << " missed (" << absl::StrJoin(missing, " ") << ")";
  }
}

}  // namespace
}  // namespace ihs::projections::segments
