// Segment definitions as events on "$segments": versions, retirement, the checks every way in
// shares, and the fold that refuses what a plain append let through (docs/segments.md
// "Definitions").
#include "projections/segments/definitions.h"

#include <capnp/message.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "projections/packed_record.h"
#include "tests/testutil/store_fixture.h"
#include "workload/generator.h"
#include "workload/load.h"
#include "workload/model.h"

namespace ihs::projections::segments {
namespace {

using ::testing::HasSubstr;
using Op = Definitions::Op;

class DefinitionsTest : public ihs::testing::StoreTest {
 protected:
  absl::StatusOr<DefineResult> Do(Op op, const std::string& name, const std::string& rule = "",
                                  const std::string& description = "") {
    DefineRequest r;
    r.op = op;
    r.name = name;
    r.rule = rule;
    r.description = description;
    r.requested_by = "ops@example.org";
    return AppendDefinition(*store_, r);
  }
  Definitions Read() {
    absl::StatusOr<Definitions> d = ReadDefinitions(*store_);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : Definitions{};
  }
  // A segmentDefinition appended as any client could, without the checks.
  absl::Status RawAppend(const std::string& name, const std::string& rule, bool retired = false) {
    capnp::MallocMessageBuilder m;
    auto e = m.initRoot<schema::Event>();
    const std::string id = absl::StrCat("raw-definition-", ++raw_);
    e.setId(AsData(id.substr(0, 16)));
    e.setOccurredAt(1700000000000000);
    auto d = e.initSegmentDefinition();
    d.setName(name);
    d.setRule(rule);
    d.setRetired(retired);
    return store_->Append({store::kSegmentsStream, store::ExpectedVersion::Any(), {e.asReader()}})
        .status();
  }
  int raw_ = 0;
};

TEST_F(DefinitionsTest, ADefinitionIsAnEventWithVersions) {
  absl::StatusOr<DefineResult> a =
      Do(Op::kDefine, "churn_risk", "count(type=complaint,last 30d)>=2", "two complaints");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->version, 1u);
  EXPECT_EQ(a->rule, "count(type = complaint, last 30d) >= 2");
  absl::StatusOr<DefineResult> b =
      Do(Op::kChange, "churn_risk", "count(type = complaint, last 60d) >= 3");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->version, 2u);
  ASSERT_TRUE(Do(Op::kRetire, "churn_risk").ok());

  Definitions d = Read();
  const Segment* s = d.Find("churn_risk");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->versions.size(), 3u);
  EXPECT_EQ(s->versions[0].rule, "count(type = complaint, last 30d) >= 2");
  EXPECT_EQ(s->versions[0].description, "two complaints");
  EXPECT_EQ(s->versions[0].requested_by, "ops@example.org");
  EXPECT_EQ(s->versions[0].position, a->position);
  EXPECT_EQ(s->versions[1].version, 2u);
  EXPECT_EQ(s->versions[1].description, "two complaints");  // a change keeps it
  EXPECT_TRUE(s->versions[2].retired);
  EXPECT_FALSE(s->live());
  // A retired name can be defined again: its history goes on.
  absl::StatusOr<DefineResult> again = Do(Op::kDefine, "churn_risk", "any(type = complaint)");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version, 4u);
  EXPECT_EQ(Read().stream_version(), 3);
}

TEST_F(DefinitionsTest, BadDefinitionsAreRefusedAndNothingIsAppended) {
  ASSERT_TRUE(Do(Op::kDefine, "a", "any(type = purchase)").ok());
  ASSERT_TRUE(Do(Op::kDefine, "b", "segment(a) and any(channel = email)").ok());
  const uint64_t head = store_->Head();
  auto refused = [&](absl::StatusOr<DefineResult> r, absl::StatusCode code, const char* text) {
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(text));
  };
  refused(Do(Op::kDefine, "c", "count(type = complant) >= 1"), absl::StatusCode::kInvalidArgument,
          "unknown type \"complant\"");
  refused(Do(Op::kDefine, "a", "any()"), absl::StatusCode::kAlreadyExists, "defined already");
  refused(Do(Op::kDefine, "Bad-Name", "any()"), absl::StatusCode::kInvalidArgument,
          "[a-z0-9_]{1,64}");
  refused(Do(Op::kDefine, std::string(65, 'x'), "any()"), absl::StatusCode::kInvalidArgument,
          "[a-z0-9_]{1,64}");
  refused(Do(Op::kDefine, "c", "segment(nobody)"), absl::StatusCode::kInvalidArgument,
          "segment nobody, which does not exist");
  refused(Do(Op::kDefine, "c", "segment(c)"), absl::StatusCode::kInvalidArgument, "itself");
  refused(Do(Op::kChange, "a", "segment(b)"), absl::StatusCode::kInvalidArgument,
          "cycle: a -> b -> a");
  refused(Do(Op::kChange, "nobody", "any()"), absl::StatusCode::kNotFound, "no segment nobody");
  refused(Do(Op::kRetire, "nobody"), absl::StatusCode::kNotFound, "no segment nobody");
  refused(Do(Op::kRetire, "a"), absl::StatusCode::kInvalidArgument, "named by b");
  refused(Do(Op::kDefine, "c", "count(last 0d) >= 1"), absl::StatusCode::kInvalidArgument,
          "out of range");
  DefineRequest anonymous;
  anonymous.name = "c";
  anonymous.rule = "any()";
  refused(AppendDefinition(*store_, anonymous), absl::StatusCode::kInvalidArgument, "requestedBy");
  EXPECT_EQ(store_->Head(), head);

  ASSERT_TRUE(Do(Op::kRetire, "b").ok());
  refused(Do(Op::kDefine, "c", "segment(b)"), absl::StatusCode::kInvalidArgument, "was retired");
  refused(Do(Op::kChange, "b", "any()"), absl::StatusCode::kNotFound, "was retired");
  EXPECT_TRUE(Do(Op::kRetire, "a").ok());  // nothing names it now
}

// The store takes only what it can check itself; the fold refuses the rest, with the reason.
TEST_F(DefinitionsTest, TheStoreChecksWhereADefinitionGoesAndItsName) {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<schema::Event>();
  e.setId(AsData("elsewhere-defn-1"));
  e.setOccurredAt(1700000000000000);
  e.initSegmentDefinition().setName("x");
  e.getSegmentDefinition().setRule("any()");
  absl::Status s = store_->Append({"c-1", store::ExpectedVersion::Any(), {e.asReader()}}).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("goes on the stream \"$segments\""));
  EXPECT_THAT(std::string(RawAppend("No", "any()").message()), HasSubstr("[a-z0-9_]{1,64}"));
  EXPECT_THAT(std::string(RawAppend("x", "", false).message()), HasSubstr("has a rule"));
  EXPECT_THAT(std::string(RawAppend("x", "any()", true).message()), HasSubstr("has a rule"));
  EXPECT_THAT(std::string(RawAppend("x", std::string(5000, ' ')).message()),
              HasSubstr("at most 4096"));
  EXPECT_EQ(store_->Head(), 0u);
}

TEST_F(DefinitionsTest, TheFoldRefusesWhatAPlainAppendLetThrough) {
  ASSERT_TRUE(RawAppend("a", "any(type = purchase)").ok());
  ASSERT_TRUE(RawAppend("b", "count(type = complant) >= 1").ok());  // does not parse
  ASSERT_TRUE(RawAppend("c", "segment(a) and segment(zzz)").ok());  // names an unknown segment
  ASSERT_TRUE(RawAppend("d", "", true).ok());                       // retires what is not there
  ASSERT_TRUE(RawAppend("a", "segment(a)").ok());                   // a change into a cycle
  ASSERT_TRUE(RawAppend("a", "none(type = purchase)").ok());        // a change that is fine
  Definitions d = Read();
  ASSERT_NE(d.Find("a"), nullptr);
  EXPECT_EQ(d.Find("a")->versions.size(), 2u);
  EXPECT_EQ(d.Find("a")->current().rule, "none(type = purchase)");
  EXPECT_EQ(d.Find("b"), nullptr);
  EXPECT_EQ(d.Find("c"), nullptr);
  EXPECT_EQ(d.Find("d"), nullptr);
  ASSERT_EQ(d.rejected().size(), 4u);
  EXPECT_EQ(d.rejected()[0].name, "b");
  EXPECT_THAT(d.rejected()[0].reason, HasSubstr("complant"));
  EXPECT_THAT(d.rejected()[1].reason, HasSubstr("zzz"));
  EXPECT_THAT(d.rejected()[2].reason, HasSubstr("no segment d"));
  EXPECT_THAT(d.rejected()[3].reason, HasSubstr("itself"));
}

// A writer cannot make the definitions grow without bound: names beyond kMaxSegments are refused,
// by the checks and by the fold.
TEST_F(DefinitionsTest, NamesBeyondTheLimitAreRefused) {
  capnp::MallocMessageBuilder m;
  auto list = m.initRoot<capnp::List<schema::Event>>(kMaxSegments + 1);
  std::vector<schema::Event::Reader> events;
  for (size_t i = 0; i <= kMaxSegments; ++i) {
    auto e = list[static_cast<unsigned>(i)];
    std::string id(16, 'd');
    std::memcpy(id.data(), &i, sizeof i);
    e.setId(AsData(id));
    e.setOccurredAt(1700000000000000);
    e.initSegmentDefinition().setName(absl::StrCat("s", i));
    e.getSegmentDefinition().setRule("any()");
    events.push_back(e.asReader());
  }
  std::vector<schema::Event::Reader> first(events.begin(), events.begin() + 10000);
  ASSERT_TRUE(store_->Append({store::kSegmentsStream, store::ExpectedVersion::Any(), first}).ok());
  for (size_t i = 10000; i < events.size(); ++i) {
    ASSERT_TRUE(
        store_->Append({store::kSegmentsStream, store::ExpectedVersion::Any(), {events[i]}}).ok());
  }
  Definitions d = Read();
  EXPECT_EQ(d.all().size(), kMaxSegments);
  ASSERT_EQ(d.rejected().size(), 1u);
  EXPECT_THAT(d.rejected()[0].reason, HasSubstr("the most there can be"));
  absl::StatusOr<DefineResult> more = Do(Op::kDefine, "one_more", "any()");
  EXPECT_EQ(more.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Do(Op::kChange, "s1", "none()").ok());  // a change is not a new name
}

// Two operators define at once: each checks against what the other appended (the append
// expects the version it checked), so two defines of one name make one segment, not two.
TEST_F(DefinitionsTest, ConcurrentDefinitionsOfOneNameMakeOneSegment) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, exists{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<DefineResult> r =
          Do(Op::kDefine, "same", absl::StrCat("count(type = purchase) >= ", i));
      if (r.ok()) ++ok;
      if (absl::IsAlreadyExists(r.status())) ++exists;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), 7);
  Definitions d = Read();
  ASSERT_NE(d.Find("same"), nullptr);
  EXPECT_EQ(d.Find("same")->versions.size(), 1u);
  EXPECT_TRUE(d.rejected().empty());
}

// Every generated history defines the truth's five segments first, as docs/segments.md writes
// them, with the numbers the generator's truth uses.
TEST_F(DefinitionsTest, AGeneratedStoreHasTheTruthsSegmentsDefined) {
  workload::Config c;
  c.parties = 200;
  c.days = 20;
  workload::Generator g(c);
  ASSERT_TRUE(workload::LoadIntoStore(g, *store_).ok());
  Definitions d = Read();
  EXPECT_TRUE(d.rejected().empty());
  ASSERT_EQ(d.all().size(), std::size(workload::kTruthSegments));
  for (const workload::TruthSegment& t : workload::kTruthSegments) {
    const Segment* s = d.Find(t.name);
    ASSERT_NE(s, nullptr) << t.name;
    EXPECT_EQ(s->current().rule, t.rule) << "not in canonical text";
    EXPECT_LT(s->current().position, std::size(workload::kTruthSegments));
  }
  auto count = [&](const char* name) { return ParseRule(d.Find(name)->current().rule)->condition; };
  EXPECT_EQ(count("campaign_engaged").number, workload::kEngagedOpens);
  EXPECT_EQ(count("campaign_engaged").window.seconds, workload::kEngagedWindowDays * 86400LL);
  EXPECT_EQ(count("churn_risk").number, workload::kChurnComplaints);
  EXPECT_EQ(count("churn_risk").window.seconds, workload::kChurnWindowDays * 86400LL);
  EXPECT_EQ(count("social_advocates").number, workload::kAdvocatePosts);
  Rule dormant = *ParseRule(d.Find("dormant_buyers")->current().rule);
  EXPECT_EQ(dormant.children[1].condition.window.seconds, workload::kDormantDays * 86400LL);
}

}  // namespace
}  // namespace ihs::projections::segments
