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
#include "projections/bulk.h"
#include "projections/packed_record.h"
#include "projections/runner.h"
#include "projections/segments/evaluate.h"
#include "projections/segments/state.h"
#include "schema/json.h"
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

// A large person record stays readable past capnp's default traversal limit (64 MiB of words,
// read twice by a decode that checks the record first): a window that holds half a million
// touchpoints (a burst of one party inside 90 days). Before, a stream record of about 300k
// touchpoints stopped decoding, and the exception ended ihsd.
TEST(SegmentsStateTest, APersonRecordOfHalfAMillionKeptTouchpointsDecodes) {
  PersonRec rec;
  rec.streams = {"p-long"};
  Kept k;
  k.index = 3;
  constexpr size_t kTouches = 500000;
  k.touches.resize(kTouches);
  for (size_t i = 0; i < kTouches; ++i) {
    k.touches[i].occurred = 1767600000000000 + static_cast<int64_t>(i);
    k.touches[i].id[15] = static_cast<char>(i);
  }
  k.touches.back().value = 0.5;
  rec.kept.push_back(std::move(k));
  auto back = DecodePerson(EncodePerson(rec));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->kept.size(), 1u);
  ASSERT_EQ(back->kept[0].touches.size(), kTouches);
  EXPECT_EQ(back->kept[0].touches.back().occurred, 1767600000000000 + int64_t{kTouches} - 1);
  EXPECT_EQ(back->kept[0].touches.back().value, 0.5);
  EXPECT_EQ(back->kept[0].index, 3u);
}

// A sharded rebuild holds each transition packed with seq 0 and gives it its seq when every
// shard's are ordered: the bytes must be those of the message built with that seq, whichever
// way (the patch of the packed bytes, or decoding and encoding again).
TEST(SegmentsStateTest, ATransitionHeldWithSeqZeroGetsTheBytesOfItsSeq) {
  std::mt19937_64 rng(20261207);
  auto build = [&](uint64_t seq, uint64_t shape) {
    // As Record builds it: the root first, in a first segment that holds it (8 words: the rest
    // goes to more segments).
    capnp::MallocMessageBuilder m(shape % 2 == 0 ? 256 : 8);
    auto t = m.initRoot<schema::Transition>();
    t.setSeq(seq);
    t.setSegment(std::string(1 + shape % 40, 's'));
    t.setPerson(absl::StrCat("p-", shape));
    t.setAt(shape % 3 == 0 ? 0 : 1767225600000000 + static_cast<int64_t>(shape));
    t.setEntered(shape % 5 == 0);
    t.setVersion(static_cast<uint32_t>(shape % 4));
    t.setPosition(shape % 7 == 0 ? 0 : shape);
    auto clauses = t.initClauses(static_cast<unsigned>(shape % 4));
    for (unsigned i = 0; i < clauses.size(); ++i) {
      clauses[i].setText(absl::StrCat("count(type = complaint, last ", i + 1, "h) >= 2"));
      clauses[i].setValue(static_cast<double>(i));
      auto events = clauses[i].initEvents(i);
      for (unsigned j = 0; j < i; ++j) events.set(j, kj::heapArray<kj::byte>(16).asPtr());
    }
    return Encode(m);
  };
  int patched = 0;
  for (int i = 0; i < 2000; ++i) {
    const uint64_t shape = rng();
    uint64_t seq = i < 5 ? static_cast<uint64_t>(i) : rng() >> (rng() % 64);
    if (i == 5) seq = uint64_t{1} << 63;
    if (i == 6) seq = 0x0101010101010101;  // no zero byte
    const std::string held = build(0, shape), want = build(seq, shape);
    const std::optional<std::string> p = PatchPackedSeq(held, seq);
    // Below 2^56 a seq has a zero byte: the patch is the way for any seq a store reaches.
    if (seq < (uint64_t{1} << 56)) {
      ASSERT_TRUE(p.has_value()) << "seq " << seq;
    }
    if (p.has_value()) {
      ++patched;
      ASSERT_EQ(*p, want) << "seq " << seq << " shape " << shape;
    }
    ASSERT_EQ(ReencodeWithSeq(held, seq), want) << "seq " << seq << " shape " << shape;
    ASSERT_EQ(WithSeq(held, seq), want) << "seq " << seq << " shape " << shape;
  }
  EXPECT_GT(patched, 1000);
  EXPECT_FALSE(PatchPackedSeq("", 1).has_value());
}

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
    if (store_->Head() == 0) {
      absl::Status s = workload::LoadIntoStore(g, *store_, nullptr, &clock_).status();
      EXPECT_TRUE(s.ok()) << s;
    } else {  // after other events: LoadIntoStore takes only a store of its own history
      for (;;) {
        std::unique_ptr<workload::EventBatch> batch = workload::NextBatch(g, 500);
        if (batch->events.empty()) break;
        clock_.Set(absl::FromUnixMicros(batch->arrived));
        for (const auto& appends : workload::CausalAppends(batch->Readers())) {
          absl::Status s = store_->AppendMulti(appends).status();
          EXPECT_TRUE(s.ok()) << s;
        }
      }
    }
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

// Many waiting messages: all but the latest few are spilled to keys of their own (kept.h
// SpillStore), and the person still counts, explains and leaves exactly; a link joins two
// persons with spills, answers reach spilled messages, and nothing spilled outlives its message.
TEST_F(SegmentsTest, ManyWaitingMessagesCountExplainAndLeaveExactlyWhenSpilled) {
  Define("waiting", "unanswered(type = complaint, over 1h)");
  Define("buyer_waiting", "unanswered(type = complaint, over 1h) and any(type = purchase)");
  OpenRunner();
  std::map<std::string, std::string> ids;  // thread -> the complaint's event id
  auto complain = [&](const std::string& party, const std::string& thread) {
    ids[thread] =
        Touch(party, TouchpointType::COMPLAINT, Direction::INBOUND, Channel::EMAIL, thread);
    clock_.Advance(absl::Seconds(1));
  };
  auto reply = [&](const std::string& party, const std::string& thread) {
    Touch(party, TouchpointType::REPLY, Direction::OUTBOUND, Channel::EMAIL, thread);
    clock_.Advance(absl::Seconds(1));
  };
  for (int i = 0; i < 40; ++i) complain("q", absl::StrCat("q", i));
  for (int i = 0; i < 100; ++i) complain("p", absl::StrCat("t", i));
  clock_.Advance(absl::Hours(2));
  EXPECT_THAT(Members("waiting"), ElementsAre("p", "q"));
  auto keys_with = [&](char tag) {
    size_t n = 0;
    for (const auto& [k, v] : Dump()) n += k[0] == tag;
    return n;
  };

  schema::Event::Builder link = events_.New(++next_id_);
  auto parties = link.initIdentityLink().initParties(2);
  parties.set(0, "p");
  parties.set(1, "q");
  ASSERT_TRUE(store_->Append({"$identity", store::ExpectedVersion::Any(), {link.asReader()}}).ok());
  // Made again for the joined person at the link, the kept state spills.
  EXPECT_GT(keys_with('K'), 100u) << "the messages were not spilled";
  for (int i = 95; i < 100; ++i) reply("p", absl::StrCat("t", i));  // the latest, inline
  for (int i = 0; i < 20; ++i) reply("p", absl::StrCat("t", i));    // early ones, spilled
  for (int i = 0; i < 10; ++i) reply("q", absl::StrCat("q", i));
  Touch("p", TouchpointType::PURCHASE);
  EXPECT_THAT(Members("buyer_waiting"), ElementsAre("q"));  // seen first: the person's id

  capnp::MallocMessageBuilder m;
  ASSERT_TRUE(ReadWhy(View(), "p", "buyer_waiting", 0, m).ok());
  auto why = m.getRoot<schema::SegmentWhy>();
  ASSERT_TRUE(why.getMember());
  ASSERT_EQ(why.getTransitions().size(), 1u);
  auto clause = why.getTransitions()[0].getClauses()[0];
  EXPECT_EQ(std::string(clause.getText().cStr()), "unanswered(type = complaint, over 1h)");
  EXPECT_EQ(clause.getValue(), 75 + 30);
  std::vector<std::string> shown, want;
  for (auto e : clause.getEvents()) shown.emplace_back(View(e));
  for (int i = 94; i > 86; --i) want.push_back(ids[absl::StrCat("t", i)]);
  EXPECT_EQ(shown, want) << "the latest eight waiting, latest first";

  for (int i = 20; i < 95; ++i) reply("p", absl::StrCat("t", i));
  EXPECT_THAT(Members("waiting"), ElementsAre("q"));
  for (int i = 10; i < 40; ++i) reply("q", absl::StrCat("q", i));
  EXPECT_THAT(Members("waiting"), ElementsAre());
  EXPECT_THAT(Members("buyer_waiting"), ElementsAre());
  EXPECT_EQ(keys_with('K'), 0u);
  EXPECT_EQ(keys_with('V'), 0u);

  const auto live = Dump();
  ASSERT_TRUE(runner_->Rebuild(kName).ok());
  EXPECT_EQ(Dump(), live);
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
  for (size_t i = 0; i < std::max(live.size(), rebuilt.size()); ++i) {
    ASSERT_LT(i, live.size()) << "only the rebuild has " << absl::CHexEscape(rebuilt[i].first);
    ASSERT_LT(i, rebuilt.size()) << "only the live state has " << absl::CHexEscape(live[i].first);
    ASSERT_EQ(live[i].first, rebuilt[i].first) << "a key of one and not the other";
    ASSERT_EQ(live[i].second, rebuilt[i].second) << "key " << absl::CHexEscape(live[i].first);
  }
  size_t transitions = 0;
  ASSERT_TRUE(ForEachTransition(View(), 0, [&](schema::Transition::Reader) {
                ++transitions;
                return true;
              }).ok());
  EXPECT_GT(transitions, 50u);
}

// A rebuild on several shards (one per group of linked streams) writes, byte for byte, what one
// instance writes: the transitions numbered in the same order, the counts summed, the timers of
// every shard's persons, over a history with links and unlinks, definitions defined, changed and
// retired in its middle, public replies by employees of other streams, and write-outs in the
// middle of the bulk phase (a small memory bound).
TEST_F(SegmentsTest, ARebuildOnShardsWritesWhatOneInstanceWrites) {
  Define("hourly", "count(type in [message, complaint], last 1h) >= 2");
  Define("quiet", "any(direction = inbound) and none(direction = inbound, last 2d)");
  Define("waiting", "unanswered(type in [complaint, request], over 4h)");
  Define("either", "segment(hourly) or segment(waiting)");
  LoadHistory(2500, 45, 5);
  clock_.Advance(absl::Hours(1));
  Define("quiet", "any(direction = inbound) and none(direction = inbound, last 7d)",
         Definitions::Op::kChange);
  Define("either", "segment(waiting) or segment(quiet)", Definitions::Op::kChange);
  Define("hourly", "", Definitions::Op::kRetire);
  Define("twice", "count(type = complaint) >= 2");
  for (int i = 0; i < 40; ++i) {
    const std::string a = absl::StrCat("shard-a", i), b = absl::StrCat("shard-b", i);
    Touch(a, TouchpointType::COMPLAINT);
    Touch(b, TouchpointType::COMPLAINT, Direction::PUBLIC, Channel::TWITTER);
    ASSERT_TRUE(Link(a, b).ok());
    clock_.Advance(absl::Minutes(7));
    if (i % 3 == 0) {
      ASSERT_TRUE(Link(b, a, /*unlink=*/true).ok());
    }
    if (i % 4 == 0) Touch(a, TouchpointType::REPLY, Direction::OUTBOUND);
  }
  clock_.Advance(absl::Hours(9 * 24));
  Touch("shard-a0", TouchpointType::MESSAGE);  // the clock moves past every window

  auto rebuilt = [&](size_t shards, size_t memory) {
    RunnerOptions o;
    o.rebuild_shards = shards;
    o.rebuild_memory_bytes = memory;
    OpenRunner(o);
    EXPECT_TRUE(runner_->Rebuild(kName).ok());
    return Dump();
  };
  const auto one = rebuilt(1, RunnerOptions().rebuild_memory_bytes);
  size_t transitions = 0;
  for (const auto& [key, value] : one) transitions += key[0] == 'F' ? 1 : 0;
  EXPECT_GT(transitions, 500u) << "the history tests little";
  // Shards the projection takes (min_shards): 5, and 4 with write-outs in the middle.
  ASSERT_LE(NewSegmentsProjection()->sharded_rebuild()->min_shards(), 4u);
  for (const auto& [shards, memory] : std::vector<std::pair<size_t, size_t>>{
           {5, RunnerOptions().rebuild_memory_bytes}, {4, size_t{256} << 10}}) {
    const auto many = rebuilt(shards, memory);
    ASSERT_EQ(many.size(), one.size()) << shards << " shards";
    for (size_t i = 0; i < one.size(); ++i) {
      ASSERT_EQ(one[i].first, many[i].first) << shards << " shards: a key of one and not the other";
      ASSERT_EQ(one[i].second, many[i].second)
          << shards << " shards, key " << absl::CHexEscape(one[i].first);
    }
  }
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

// --- membership at any moment against a recomputation from the log --------------------------

// The facts of every person as the log up to `at` (recordedAt) shows them, computed directly from
// the rules docs/segments.md states, without the projection: the reference it is checked against.
std::map<std::string, Facts> FactsAt(const std::vector<store::StoredEvent>& log, int64_t at) {
  struct T {
    Touch touch;
    std::string stream, thread;
    bool waits = false, company = false, retracted = false;
  };
  std::map<std::string, uint64_t> first;                // stream -> first position
  std::set<std::pair<std::string, std::string>> links;  // direct links in force
  std::map<std::string, std::pair<uint64_t, schema::PartyKind>> kinds;
  std::map<std::string, std::pair<uint64_t, std::string>> cohorts;
  std::map<std::string, std::map<std::string, std::pair<uint64_t, bool>>> consents;
  std::vector<T> touches;
  for (const store::StoredEvent& stored : log) {
    const schema::Event::Reader ev = stored.event();
    if (ev.getRecordedAt() > at) break;
    const uint64_t pos = stored.position();
    const std::string stream = ev.getStreamId().cStr();
    if (!store::IsSystemStream(stream)) first.emplace(stream, pos);
    if (ev.isIdentityLink()) {
      std::vector<std::string> parties;
      for (auto p : ev.getIdentityLink().getParties()) {
        if (p.size() > 0 && p.cStr()[0] != '$') parties.emplace_back(p.cStr());
      }
      for (const std::string& p : parties) first.emplace(p, pos);
      for (size_t i = 0; i < parties.size(); ++i) {
        for (size_t j = i + 1; j < parties.size(); ++j) {
          auto key = std::minmax(parties[i], parties[j]);
          if (ev.getIdentityLink().getUnlink()) {
            links.erase({key.first, key.second});
          } else if (i == 0 && key.first != key.second) {
            links.insert({key.first, key.second});
          }
        }
      }
    } else if (ev.isPartyProfile()) {
      kinds[stream] = {pos, ev.getPartyProfile().getKind()};
      cohorts[stream] = {pos, ev.getPartyProfile().getCohort().cStr()};
    } else if (ev.isErasureRequest()) {
      for (T& t : touches) {
        if (t.stream != stream) continue;
        t.touch.topics.clear();
        t.touch.sentiment = NAN;
      }
    } else if (ev.isTouchpoint()) {
      const auto tp = ev.getTouchpoint();
      const std::string id(projections::View(ev.getId()));
      if (tp.getType() == TouchpointType::CORRECTION ||
          tp.getType() == TouchpointType::RETRACTION) {
        for (T& t : touches) {
          if (t.stream != stream || t.touch.event_id != projections::View(tp.getCorrects()) ||
              t.retracted) {
            continue;
          }
          if (tp.getType() == TouchpointType::RETRACTION) {
            t.retracted = true;
          } else {
            t.touch.sentiment = tp.getSentiment();
            t.touch.topics.clear();
            for (auto topic : tp.getTopics()) t.touch.topics.emplace_back(topic.cStr());
          }
        }
        continue;
      }
      T t;
      t.stream = stream;
      t.touch.occurred = ev.getOccurredAt();
      t.touch.channel = schema::EnumName(tp.getChannel());
      t.touch.direction = schema::EnumName(tp.getDirection());
      t.touch.type = schema::EnumName(tp.getType());
      for (auto topic : tp.getTopics()) t.touch.topics.emplace_back(topic.cStr());
      t.touch.campaign = tp.getCampaignId().cStr();
      t.touch.source = ev.getSourceSystem().cStr();
      t.touch.sentiment = tp.getSentiment();
      t.touch.audience = static_cast<double>(tp.getAudienceSize());
      t.touch.original = ev.getCausationId().size() == 0;
      t.touch.event_id = id;
      t.waits =
          tp.getDirection() == Direction::INBOUND &&
          (tp.getType() == TouchpointType::MESSAGE || tp.getType() == TouchpointType::REQUEST ||
           tp.getType() == TouchpointType::COMPLAINT);
      auto kind = kinds.find(tp.getCounterpart().cStr());
      t.company = tp.getType() == TouchpointType::REPLY &&
                  (tp.getDirection() == Direction::OUTBOUND ||
                   (tp.getDirection() == Direction::PUBLIC && kind != kinds.end() &&
                    kind->second.second == schema::PartyKind::EMPLOYEE));
      if (tp.getThreadId().size() > 0) {
        t.thread = tp.getThreadId().cStr();
      } else if (tp.getInReplyTo().size() == 16) {
        const std::string target(projections::View(tp.getInReplyTo()));
        t.thread = "event:" + absl::BytesToHexString(target);
        for (const store::StoredEvent& e : log) {  // the timeline's rule: an earlier event of
          if (e.position() >= pos) break;          // the stream, and its own thread id
          if (projections::View(e.event().getId()) == target && e.event().isTouchpoint() &&
              std::string(e.event().getStreamId().cStr()) == stream &&
              e.event().getTouchpoint().getThreadId().size() > 0) {
            t.thread = e.event().getTouchpoint().getThreadId().cStr();
          }
        }
      } else if (t.waits) {
        t.thread = "event:" + absl::BytesToHexString(id);
      }
      if (tp.getType() == TouchpointType::CONSENT_GIVEN ||
          tp.getType() == TouchpointType::CONSENT_REVOKED ||
          tp.getType() == TouchpointType::UNSUBSCRIBE) {
        consents[stream][t.touch.channel] = {pos, tp.getType() == TouchpointType::CONSENT_GIVEN};
      }
      touches.push_back(std::move(t));
    }
  }
  // Answers: the company's earliest reply in the thread, in the same stream, at or after it.
  for (T& m : touches) {
    if (!m.waits || m.thread.empty()) continue;
    for (const T& r : touches) {
      if (r.company && r.stream == m.stream && r.thread == m.thread &&
          r.touch.occurred >= m.touch.occurred && r.touch.occurred < m.touch.answered) {
        m.touch.answered = r.touch.occurred;
      }
    }
  }
  // Persons: the streams the links in force join, named by the one the log named first.
  std::map<std::string, std::string> parent;
  std::function<std::string(const std::string&)> find = [&](const std::string& s) {
    auto it = parent.find(s);
    return it == parent.end() || it->second == s ? s : find(it->second);
  };
  for (const auto& [s, pos] : first) parent[s] = s;
  for (const auto& [a, b] : links) parent[find(a)] = find(b);
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& [s, pos] : first) groups[find(s)].push_back(s);
  std::map<std::string, Facts> out;
  for (const auto& [root, streams] : groups) {
    std::string id = streams[0];
    for (const std::string& s : streams) {
      if (first[s] < first[id]) id = s;
    }
    Facts& f = out[id];
    uint64_t profile_at = 0;
    std::map<std::string, uint64_t> consent_at;
    for (const std::string& s : streams) {
      for (const T& t : touches) {
        if (t.stream == s && !t.retracted) f.touches.push_back(t.touch);
      }
      if (auto k = kinds.find(s); k != kinds.end() && k->second.first >= profile_at) {
        profile_at = k->second.first;
        f.kind = k->second.second == schema::PartyKind::UNSPECIFIED
                     ? ""
                     : schema::EnumName(k->second.second);
        f.cohort = cohorts[s].second;
      }
      for (const auto& [channel, c] : consents[s]) {
        if (c.first >= consent_at[channel]) {
          consent_at[channel] = c.first;
          f.consent[channel] = c.second;
        }
      }
    }
  }
  return out;
}

// A random rule of the conditions the generated histories exercise.
std::string RandomRule(std::mt19937_64& rng, int depth = 0) {
  auto pick = [&rng](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  const std::string filter =
      pick({"type = complaint", "type in [message, request]", "direction = public and original",
            "channel in [email, twitter]", "type = purchase", "sentiment > 0.3",
            "type = campaignOpened", "topic in [billing, delivery]", ""});
  const std::string window = pick({"1h", "2d", "7d", "30d", "90d"});
  const std::string sep = filter.empty() ? "" : ", ";
  if (depth < 2 && rng() % 3 == 0) {
    const std::string op = rng() % 2 ? " and " : " or ";
    return "(" + RandomRule(rng, depth + 1) + op + RandomRule(rng, depth + 1) + ")";
  }
  if (depth < 2 && rng() % 8 == 0) return "not " + RandomRule(rng, depth + 1);
  switch (rng() % 8) {
    case 0:
      return "count(" + filter + sep + "last " + window + ") >= " + std::to_string(1 + rng() % 3);
    case 1:
      return "any(" + filter + ")";
    case 2:
      return "none(" + filter + sep + "last " + window + ")";
    case 3:
      return "sum(sentiment" + sep + filter + ", last " + window + ") < 0";
    case 4:
      return "unanswered(" + filter + sep + "over " + pick({"2h", "1d", "3d"}) + ")";
    case 5:
      return "unanswered(" + filter + sep + "over " + pick({"4", "16"}) + " service hours)";
    case 6:
      return pick({"kind = customer", "kind in [prospect, customer]", "cohort != 1980s"});
    default:
      return pick({"consent(newsletter)", "consent(push)"});
  }
}

TEST_F(SegmentsTest, MembershipAtAnyMomentIsTheRuleOverTheLogUpToThatMoment) {
  std::mt19937_64 rng(20261205);
  workload::Config c;  // for its start
  clock_.Set(absl::FromUnixMicros(c.start) - absl::Hours(1));
  std::vector<std::pair<std::string, Rule>> rules;
  for (int i = 0; i < 12; ++i) {
    const std::string name = absl::StrCat("r", i), text = RandomRule(rng);
    absl::StatusOr<Rule> rule = ParseRule(text);
    ASSERT_TRUE(rule.ok()) << text << ": " << rule.status();
    Define(name, text);
    rules.emplace_back(name, *rule);
  }
  const nlohmann::json truth = LoadHistory(250, 45, 9);
  OpenRunner();
  View();
  store::ReadOptions ro;
  ro.open_content = false;
  auto log = store_->ReadAll(0, store_->Head(), ro);
  ASSERT_TRUE(log.ok()) << log.status();
  const int64_t start = c.start, end = AsOf(truth) + 10 * kDay;
  int members_seen = 0;
  for (int k = 0; k < 10; ++k) {
    const int64_t at = start + static_cast<int64_t>(rng() % static_cast<uint64_t>(end - start));
    const std::map<std::string, Facts> facts = FactsAt(*log, at);
    for (const auto& [name, rule] : rules) {
      std::vector<std::string> want;
      for (const auto& [person, f] : facts) {
        if (Evaluate(rule, f, at, [](const std::string&) { return false; }).member) {
          want.push_back(person);
        }
      }
      EXPECT_EQ(Members(name, at), want) << name << " = " << Format(rule) << " at " << at;
      members_seen += static_cast<int>(want.size());
    }
  }
  EXPECT_GT(members_seen, 100) << "the rules and moments chosen test little";
}

}  // namespace
}  // namespace ihs::projections::segments
