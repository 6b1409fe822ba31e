// projections/timeline/replay.h: a party's timeline replayed as of an earlier log size equals,
// byte for byte, what the timeline projection served when the log had that size.
#include "projections/timeline/replay.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "projections/registry.h"
#include "projections/runner.h"
#include "tests/testutil/testutil.h"
#include "workload/generator.h"
#include "workload/load.h"

namespace ihs::projections::timeline {
namespace {

// The canonical bytes of a message's root, so that two pages compare exactly.
template <typename T>
std::string Canonical(capnp::MessageBuilder& m) {
  auto words = capnp::canonicalize(m.getRoot<T>().asReader());
  return std::string(reinterpret_cast<const char*>(words.begin()),
                     words.size() * sizeof(capnp::word));
}

struct Snapshot {
  std::string summary, page;
};

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::Options o;
    o.path = dir_.Sub("data");
    o.sync = false;  // a test fixture; nothing here is about durability
    auto s = store::EventStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    workload::Config c;
    c.parties = 400;
    c.days = 45;
    c.seed = 23;
    workload::Generator g(c);
    for (;;) {
      std::unique_ptr<workload::EventBatch> b = workload::NextBatch(g, 1000);
      if (b->events.empty()) break;
      batches_.push_back(std::move(b));
    }
    ASSERT_GE(batches_.size(), 4u);
    auto r = Runner::Open(store_.get(), AllProjections());
    ASSERT_TRUE(r.ok()) << r.status();
    runner_ = std::move(*r);
  }

  void AppendBatches(size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      std::vector<schema::Event::Reader> events = batches_[i]->Readers();
      IHS_ASSERT_OK(store_->AppendMulti(workload::GroupByStream(events)));
    }
  }

  Query QueryFor(const std::string& party) {
    Query q;
    q.party = party;
    q.limit = kMaxPageEntries;
    q.as_of = as_of_;
    return q;
  }

  // What the live timeline serves now for each party.
  std::map<std::string, Snapshot> Live(const std::set<std::string>& parties) {
    std::map<std::string, Snapshot> out;
    EXPECT_TRUE(runner_->CatchUp(kName).ok());
    auto view = runner_->View(kName);
    EXPECT_TRUE(view.ok()) << view.status();
    for (const std::string& party : parties) {
      capnp::MallocMessageBuilder summary, page;
      EXPECT_TRUE(ReadSummary(*view, party, as_of_, summary).ok()) << party;
      EXPECT_TRUE(ReadPage(*view, QueryFor(party), page, store_.get()).ok()) << party;
      out[party] = {Canonical<schema::TimelineSummary>(summary),
                    Canonical<schema::TimelinePage>(page)};
    }
    return out;
  }

  std::set<std::string> PartiesOf(size_t batches) {
    std::set<std::string> parties;
    for (size_t i = 0; i < batches; ++i) {
      for (auto e : batches_[i]->Readers()) {
        if (e.getStreamId()[0] != '$') parties.insert(e.getStreamId().cStr());  // not "$identity"
      }
    }
    return parties;
  }

  ihs::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
  std::unique_ptr<Runner> runner_;
  std::vector<std::unique_ptr<workload::EventBatch>> batches_;
  absl::Time as_of_ = absl::FromUnixSeconds(1800000000);
};

TEST_F(ReplayTest, EveryPartysReplayEqualsTheTimelineServedAtThatSize) {
  const size_t half = batches_.size() / 2;
  AppendBatches(0, half);
  const uint64_t size = store_->Head();
  const std::set<std::string> parties = PartiesOf(half);
  const std::map<std::string, Snapshot> then = Live(parties);
  AppendBatches(half, batches_.size());
  ASSERT_GT(store_->Head(), size);

  // The history crosses parties where the timeline does: switches and answered messages.
  size_t switches = 0, answered = 0, changed_since = 0;
  const std::map<std::string, Snapshot> now = Live(parties);
  for (const std::string& party : parties) {
    capnp::MallocMessageBuilder summary, page;
    absl::Status s = ReplayTimeline(store_.get(), size, QueryFor(party), summary, page);
    ASSERT_TRUE(s.ok()) << party << ": " << s;
    EXPECT_EQ(Canonical<schema::TimelineSummary>(summary), then.at(party).summary) << party;
    ASSERT_EQ(Canonical<schema::TimelinePage>(page), then.at(party).page) << party;
    switches += summary.getRoot<schema::TimelineSummary>().getChannelSwitches();
    answered += summary.getRoot<schema::TimelineSummary>().getAnswered();
    if (now.at(party).page != then.at(party).page) ++changed_since;
  }
  EXPECT_GT(switches, 0u);
  EXPECT_GT(answered, 0u);
  EXPECT_GT(changed_since, parties.size() / 2) << "the later half must change most timelines";
}

TEST_F(ReplayTest, AtTheHeadItIsTheLiveTimelineAndBadInputIsRefused) {
  AppendBatches(0, batches_.size());
  const std::set<std::string> parties = PartiesOf(1);
  const std::map<std::string, Snapshot> live = Live(parties);
  for (const std::string& party : parties) {
    capnp::MallocMessageBuilder summary, page;
    IHS_ASSERT_OK(ReplayTimeline(store_.get(), store_->Head(), QueryFor(party), summary, page));
    EXPECT_EQ(Canonical<schema::TimelinePage>(page), live.at(party).page) << party;
  }
  capnp::MallocMessageBuilder summary, page;
  EXPECT_EQ(
      ReplayTimeline(store_.get(), store_->Head() + 1, QueryFor(*parties.begin()), summary, page)
          .code(),
      absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ReplayTimeline(store_.get(), store_->Head(), QueryFor("nobody"), summary, page).code(),
            absl::StatusCode::kNotFound);
  // Before its first event, a party did not exist yet.
  auto info = store_->GetStreamInfo(*parties.begin());
  IHS_ASSERT_OK(info);
  EXPECT_EQ(
      ReplayTimeline(store_.get(), info->first_position, QueryFor(*parties.begin()), summary, page)
          .code(),
      absl::StatusCode::kNotFound);
  Query zero = QueryFor(*parties.begin());
  zero.limit = 0;
  EXPECT_EQ(ReplayTimeline(store_.get(), store_->Head(), zero, summary, page).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ihs::projections::timeline
