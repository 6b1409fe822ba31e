// Tests of projections/runner.h: live state equals a rebuild from zero byte for byte, corrupt
// state is reported and rebuilt instead of served, a changed version rebuilds, a crash resumes
// from the checkpoint, and status reports checkpoint and lag.
#include "projections/runner.h"

#include <capnp/message.h>
#include <gtest/gtest.h>
#include <kj/debug.h>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/big_endian.h"
#include "common/mutex.h"
#include "projections/bulk.h"
#include "projections/registry.h"
#include "projections/timeline/timeline.h"
#include "store/state_store.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"
#include "workload/generator.h"
#include "workload/load.h"

namespace ihs::projections {
namespace {

using ihs::testing::DumpState;

std::string ActiveFamily(Runner& r) { return r.Status()[0].family; }

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::Options o;
    o.path = dir_.Sub("data");
    o.sync = false;
    auto s = store::EventStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  // Appends a generated history (800 parties) in batches of `batch` events.
  void AppendHistory(uint64_t seed, size_t batch, uint64_t max_events = 0, int days = 30) {
    workload::Config c;
    c.parties = 800;
    c.days = days;
    c.seed = seed;
    c.max_events = max_events;
    workload::Generator g(c);
    for (;;) {
      auto b = workload::NextBatch(g, batch);
      if (b->events.empty()) break;
      IHS_ASSERT_OK(store_->AppendMulti(workload::GroupByStream(b->Readers())));
    }
  }

  absl::StatusOr<std::unique_ptr<Runner>> OpenRunner() {
    return Runner::Open(store_.get(), AllProjections());
  }

  ihs::testing::TempDir dir_;
  std::unique_ptr<store::EventStore> store_;
};

// The timeline keeps at most so many threads decoded, and writes the rest to its Txn in the
// middle of a batch or a bulk phase: with a bound of 20 threads (the history has thousands) the
// live state and a sharded rebuild's are the bytes that the default bound gives.
TEST_F(RunnerTest, TheBoundOnDecodedThreadsChangesNoByteOfTheState) {
  std::vector<ProjectionFactory> tiny{[] { return timeline::NewTimelineProjection(20); }};
  auto runner = Runner::Open(store_.get(), tiny);
  IHS_ASSERT_OK(runner);
  (*runner)->Start();
  AppendHistory(8, 211);
  ASSERT_TRUE((*runner)->WaitFor(timeline::kName, store_->Head(), absl::Now() + absl::Seconds(60)));
  const auto live = DumpState(*store_, ActiveFamily(**runner));
  size_t threads = 0;
  for (const auto& [key, value] : live) threads += key[0] == 'T' ? 1 : 0;
  ASSERT_GT(threads, 200u);
  IHS_ASSERT_OK((*runner)->Rebuild(timeline::kName));
  EXPECT_TRUE(DumpState(*store_, ActiveFamily(**runner)) == live)
      << "a rebuild with 20 threads differs";
  (*runner)->Stop();
  auto roomy = OpenRunner();
  IHS_ASSERT_OK(roomy);
  IHS_ASSERT_OK((*roomy)->Rebuild(timeline::kName));
  EXPECT_TRUE(DumpState(*store_, ActiveFamily(**roomy)) == live) << "the default bound differs";
}

// A follow-up whose message comes later in the log (a letter scanned after the complaint that
// followed it): the live worker marks it when the message comes; a sharded rebuild settles it
// when it applies the follow-up, or keeps it pending if the message is not in the log. Every
// follow-up of a message is marked, also when several parties' shards wait for one message.
TEST_F(RunnerTest, AShardedRebuildSettlesFollowUpsOfLaterMessagesAsTheWorkerDoes) {
  ihs::testing::EventFactory events;
  auto message = [&](uint64_t id, schema::Channel channel, uint64_t cause) {
    auto ev = events.New(id);
    ev.setOccurredAt(1700000000000000 + static_cast<int64_t>(id) * 1000000);
    auto tp = ev.initTouchpoint();
    tp.setChannel(channel);
    tp.setDirection(schema::Direction::INBOUND);
    tp.setType(cause == 0 ? schema::TouchpointType::MESSAGE : schema::TouchpointType::COMPLAINT);
    if (cause != 0) {
      const std::string c = ihs::testing::EventId(cause);
      ev.setCausationId(kj::arrayPtr(reinterpret_cast<const kj::byte*>(c.data()), c.size()));
    }
    return ev.asReader();
  };
  auto append = [&](const std::string& party, std::vector<schema::Event::Reader> evs) {
    IHS_ASSERT_OK(store_->Append({party, store::ExpectedVersion::Any(), std::move(evs)}));
  };
  constexpr uint64_t kParties = 12, kShared = 500, kMissing = 900;
  RunnerOptions sharded;
  sharded.rebuild_shards = 3;
  auto runner = Runner::Open(store_.get(), AllProjections(), sharded);
  IHS_ASSERT_OK(runner);
  (*runner)->Start();
  for (uint64_t i = 0; i < kParties; ++i) {
    // Party i follows up on its own e-mail 1000 + i, on another channel; parties 0 to 5 also on
    // party "s"'s message 500; all of them on message 900, which is not in the log yet.
    std::vector<schema::Event::Reader> evs{message(100 + i, schema::Channel::TWITTER, 1000 + i),
                                           message(300 + i, schema::Channel::CHAT, kMissing)};
    if (i < 6) evs.push_back(message(200 + i, schema::Channel::TWITTER, kShared));
    append(absl::StrCat("c-", i), evs);
  }
  append("s", {message(kShared, schema::Channel::EMAIL, 0)});
  for (uint64_t i = 0; i < kParties; ++i) {
    append(absl::StrCat("c-", i), {message(1000 + i, schema::Channel::EMAIL, 0)});
  }
  // Which event each entry of party i names as the message it switched from.
  auto switches = [&](uint64_t i) {
    auto view = (*runner)->View(timeline::kName);
    EXPECT_TRUE(view.ok()) << view.status();
    timeline::Query q;
    q.party = absl::StrCat("c-", i);
    q.limit = 100;
    capnp::MallocMessageBuilder m;
    absl::Status s = timeline::ReadPage(*view, q, m);
    EXPECT_TRUE(s.ok()) << s;
    std::map<std::string, std::string> out;
    for (auto e : m.getRoot<schema::TimelinePage>().getEntries()) {
      if (!e.hasSwitchFrom()) continue;
      auto id = e.getEventId(), from = e.getSwitchFrom().getEventId();
      out[std::string(id.asChars().begin(), id.size())] =
          std::string(from.asChars().begin(), from.size());
    }
    return out;
  };
  using ihs::testing::EventId;
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(
        (*runner)->WaitFor(timeline::kName, store_->Head(), absl::Now() + absl::Seconds(60)));
    for (uint64_t i = 0; i < kParties; ++i) {
      std::map<std::string, std::string> want{{EventId(100 + i), EventId(1000 + i)}};
      if (i < 6) want[EventId(200 + i)] = EventId(kShared);
      if (round == 1) want[EventId(300 + i)] = EventId(kMissing);
      EXPECT_EQ(switches(i), want) << "party c-" << i << ", round " << round;
    }
    const auto live = DumpState(*store_, ActiveFamily(**runner));
    IHS_ASSERT_OK((*runner)->Rebuild(timeline::kName));
    EXPECT_TRUE(DumpState(*store_, ActiveFamily(**runner)) == live)
        << "round " << round << ": live and rebuilt state differ";
    // The message the twelve parties' follow-ups wait for (three shards kept them pending).
    if (round == 0) append("late", {message(kMissing, schema::Channel::EMAIL, 0)});
  }
  (*runner)->Stop();
}

TEST_F(RunnerTest, RebuildWhileAppendsContinueSwapsInAtTheHead) {
  AppendHistory(6, 500, 20000);
  auto runner = OpenRunner();
  IHS_ASSERT_OK(runner);
  (*runner)->Start();
  std::thread writer([&] { AppendHistory(7, 50, 5000); });
  size_t reported = 0;
  IHS_ASSERT_OK((*runner)->Rebuild(timeline::kName, [&](uint64_t, uint64_t) {
    // While it runs, the status says so.
    EXPECT_EQ((*runner)->Status()[0].state, "rebuilding");
    EXPECT_TRUE((*runner)->Status()[0].rebuild_checkpoint.has_value());
    ++reported;
  }));
  EXPECT_GT(reported, 0u);
  writer.join();
  ASSERT_TRUE((*runner)->WaitFor(timeline::kName, store_->Head(), absl::Now() + absl::Seconds(60)));
  (*runner)->Stop();
  const auto live = DumpState(*store_, ActiveFamily(**runner));
  IHS_ASSERT_OK((*runner)->Rebuild(timeline::kName));
  EXPECT_TRUE(DumpState(*store_, ActiveFamily(**runner)) == live);
}

// The threads of this process named "p:...", each with its nice value (/proc/self/task).
std::map<std::string, int> ProjectionThreads() {
  std::map<std::string, int> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string comm, stat;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    std::getline(std::ifstream(task.path() / "stat"), stat);
    if (comm.rfind("p:", 0) != 0) continue;
    // After "(comm) " come the fields from the third (the state) on; the nice value is the 19th.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::vector<std::string> fields{std::istream_iterator<std::string>(rest),
                                    std::istream_iterator<std::string>()};
    int nice = 0;
    out[comm] = fields.size() > 16 && absl::SimpleAtoi(fields[16], &nice) ? nice : -100;
  }
  return out;
}

TEST_F(RunnerTest, WorkersRunNamedAndAsMuchLowerInPriorityAsTheyAreTold) {
  const int base = getpriority(PRIO_PROCESS, 0);
  RunnerOptions o;
  o.worker_nice = 7;
  auto runner = Runner::Open(store_.get(), AllProjections(), o);
  IHS_ASSERT_OK(runner);
  (*runner)->Start();
  std::map<std::string, int> threads;
  for (absl::Time end = absl::Now() + absl::Seconds(10);
       absl::Now() < end && (threads.size() < 4 || threads.begin()->second == base);
       absl::SleepFor(absl::Milliseconds(10))) {
    threads = ProjectionThreads();
  }
  const std::map<std::string, int> want = {{"p:community", std::min(19, base + 7)},
                                           {"p:identity", std::min(19, base + 7)},
                                           {"p:segments", std::min(19, base + 7)},
                                           {"p:timeline", std::min(19, base + 7)}};
  EXPECT_EQ(threads, want);
  EXPECT_EQ(getpriority(PRIO_PROCESS, 0), base);  // the rest of the process as it was
  (*runner)->Stop();
  EXPECT_TRUE(ProjectionThreads().empty());
  // By default the workers run as the process does.
  auto plain = OpenRunner();
  IHS_ASSERT_OK(plain);
  (*plain)->Start();
  std::map<std::string, int> plain_threads;
  for (absl::Time end = absl::Now() + absl::Seconds(10);
       absl::Now() < end && plain_threads.size() < 4; absl::SleepFor(absl::Milliseconds(10))) {
    plain_threads = ProjectionThreads();
  }
  EXPECT_EQ(plain_threads.size(), 4u);
  for (const auto& [name, nice] : plain_threads) EXPECT_EQ(nice, base) << name;
  (*plain)->Stop();
  for (int bad : {-1, 20}) {
    RunnerOptions b;
    b.worker_nice = bad;
    auto refused = Runner::Open(store_.get(), AllProjections(), b);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(refused.status().message().find("worker_nice"), std::string::npos)
        << refused.status();
  }
}

TEST_F(RunnerTest, BackgroundRebuildIsReportedFromStartToSwap) {
  AppendHistory(12, 500, 40000);
  auto runner = OpenRunner();
  IHS_ASSERT_OK(runner);
  IHS_ASSERT_OK((*runner)->CatchUp(""));
  const std::string before = ActiveFamily(**runner);
  IHS_ASSERT_OK((*runner)->StartRebuild(timeline::kName));
  // Reported as soon as StartRebuild returns (ihs projections rebuild --connect relies on it),
  // and a second one is refused.
  EXPECT_EQ((*runner)->Status()[0].state, "rebuilding");
  EXPECT_EQ((*runner)->StartRebuild(timeline::kName).code(), absl::StatusCode::kFailedPrecondition);
  for (int i = 0; i < 1200; ++i) {
    const ProjectionStatus st = (*runner)->Status()[0];
    if (st.family != before) break;
    ASSERT_EQ(st.state, "rebuilding") << "ended without a swap: " << st.error;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_NE(ActiveFamily(**runner), before);
  EXPECT_EQ((*runner)->Status()[0].state, "live");
}

// Counts each stream's events, keeping the counts cached across batches as the timeline does,
// and fails once, in the middle of a batch, with an error the worker retries.
class FlakyCounter final : public Projection {
 public:
  static constexpr uint64_t kFailAt = 1500;
  // `throws`: the failure is an exception (as a Cap'n Proto limit throws) instead of a status.
  explicit FlakyCounter(std::atomic<bool>* failed, bool throws = false)
      : failed_(failed), throws_(throws) {}
  absl::string_view name() const override { return "counter"; }
  uint32_t version() const override { return 1; }
  absl::Status Apply(const store::StoredEvent& e, Txn& txn) override {
    if (e.position() == kFailAt && !failed_->exchange(true)) {
      if (throws_) KJ_FAIL_REQUIRE("a thrown failure");
      return absl::UnavailableError("a transient failure");
    }
    const std::string key(e.event().getStreamId().cStr());
    auto it = counts_.find(key);
    if (it == counts_.end()) {
      absl::StatusOr<std::optional<std::string>> v = txn.Get(key);
      if (!v.ok()) return v.status();
      uint64_t n = 0;
      if (*v && !absl::SimpleAtoi(**v, &n)) return absl::DataLossError("bad count");
      it = counts_.emplace(key, n).first;
    }
    ++it->second;
    dirty_.insert(key);
    return absl::OkStatus();
  }
  absl::Status Flush(Txn& txn) override {
    for (const std::string& key : dirty_) txn.Put(key, absl::StrCat(counts_.at(key)));
    dirty_.clear();
    return absl::OkStatus();
  }
  void Discard() override {
    counts_.clear();
    dirty_.clear();
  }

 private:
  std::atomic<bool>* failed_;
  const bool throws_;
  absl::flat_hash_map<std::string, uint64_t> counts_;
  absl::flat_hash_set<std::string> dirty_;
};

// The counts of a FlakyCounter's state, added up (each value: the count, then 8 bytes).
template <typename State>
uint64_t SumOfCounts(const State& state) {
  uint64_t total = 0;
  for (const auto& [key, value] : state) {
    uint64_t n = 0;
    if (key[0] != '\0' && absl::SimpleAtoi(value.substr(0, value.size() - 8), &n)) total += n;
  }
  return total;
}

TEST_F(RunnerTest, AFailedBatchLeavesNoTraceInCachesCarriedAcrossBatches) {
  AppendHistory(14, 500, 4000);
  std::atomic<bool> failed{false};
  auto runner =
      Runner::Open(store_.get(), {[&] { return std::make_unique<FlakyCounter>(&failed); }});
  IHS_ASSERT_OK(runner);
  (*runner)->Start();  // batches of 1,000: the failure is half-way through the second
  ASSERT_TRUE((*runner)->WaitFor("counter", store_->Head(), absl::Now() + absl::Seconds(60)));
  (*runner)->Stop();
  ASSERT_TRUE(failed.load());
  const auto live = DumpState(*store_, ActiveFamily(**runner));
  // The counts add up to the log: nothing of the failed attempt was counted twice.
  EXPECT_EQ(SumOfCounts(live), store_->Head());
  IHS_ASSERT_OK((*runner)->Rebuild("counter"));
  EXPECT_TRUE(DumpState(*store_, ActiveFamily(**runner)) == live);
}

// An exception thrown inside a projection (before, it ended ihsd: a capnp limit on a long
// stream's record) fails the batch as an error does: the worker retries it, nothing of the
// attempt stays, and a rebuild that meets it fails with the error and keeps the old state.
TEST_F(RunnerTest, AnExceptionInAProjectionFailsTheBatchAndDoesNotEndTheProcess) {
  AppendHistory(15, 500, 4000);
  std::atomic<bool> failed{false};
  auto runner =
      Runner::Open(store_.get(), {[&] { return std::make_unique<FlakyCounter>(&failed, true); }});
  IHS_ASSERT_OK(runner);
  (*runner)->Start();
  ASSERT_TRUE((*runner)->WaitFor("counter", store_->Head(), absl::Now() + absl::Seconds(60)));
  (*runner)->Stop();
  ASSERT_TRUE(failed.load());
  const auto live = DumpState(*store_, ActiveFamily(**runner));
  EXPECT_EQ(SumOfCounts(live), store_->Head());
  const std::string family = ActiveFamily(**runner);
  failed = false;  // the rebuild meets the exception too
  absl::Status rebuild = (*runner)->Rebuild("counter");
  EXPECT_EQ(rebuild.code(), absl::StatusCode::kInternal) << rebuild;
  EXPECT_NE(rebuild.message().find("a thrown failure"), absl::string_view::npos) << rebuild;
  EXPECT_EQ(ActiveFamily(**runner), family);
  EXPECT_TRUE(DumpState(*store_, family) == live);
  IHS_ASSERT_OK((*runner)->Rebuild("counter"));
  EXPECT_TRUE(DumpState(*store_, ActiveFamily(**runner)) == live);
}

// A count of events per stream that may be sharded, and that fails once at a position in a
// rebuild's bulk phase (Txn::bulk()), as a corrupt event or a full disk would.
class ShardedCounter final : public Projection, public ShardedRebuild {
 public:
  ShardedCounter(std::atomic<int>* failures, uint64_t fail_at)
      : failures_(failures), fail_at_(fail_at) {}
  absl::string_view name() const override { return "counter"; }
  uint32_t version() const override { return 1; }
  ShardedRebuild* sharded_rebuild() override { return this; }
  absl::Status Apply(const store::StoredEvent& e, Txn& txn) override {
    if (txn.bulk() != nullptr && e.position() == fail_at_ && failures_->fetch_sub(1) > 0) {
      // Late, when the other shards have gone as far ahead as the reader lets them.
      absl::SleepFor(absl::Milliseconds(500));
      return absl::UnavailableError("the disk is full");
    }
    const std::string key(e.event().getStreamId().cStr());
    absl::StatusOr<std::optional<std::string>> v = txn.Get(key);
    if (!v.ok()) return v.status();
    uint64_t n = 0;
    if (*v && !absl::SimpleAtoi(**v, &n)) return absl::DataLossError("bad count");
    txn.Put(key, absl::StrCat(n + 1));
    return absl::OkStatus();
  }

 private:
  std::atomic<int>* failures_;
  const uint64_t fail_at_;
};

TEST_F(RunnerTest, AShardThatFailsEndsTheRebuildWithItsErrorAndTheOldStateStays) {
  // More of the log than the reader reads ahead (a few chunks of 16,384 events), so that the
  // reader waits for the shard that failed, and 30 streams over three shards.
  ihs::testing::EventFactory events;
  uint64_t id = 1;
  for (int round = 0; round < 30; ++round) {
    for (int stream = 0; stream < 30; ++stream) {
      std::vector<schema::Event::Reader> evs;
      for (int i = 0; i < 100; ++i) {
        evs.push_back(
            events.Touchpoint(id++, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE));
      }
      IHS_ASSERT_OK(store_->Append(
          {absl::StrCat("s-", stream), store::ExpectedVersion::Any(), std::move(evs)}));
    }
  }
  ASSERT_EQ(store_->Head(), 90000u);
  std::atomic<int> failures{0};
  RunnerOptions sharded;
  sharded.rebuild_shards = 3;
  auto runner = Runner::Open(
      store_.get(), {[&] { return std::make_unique<ShardedCounter>(&failures, 1500); }}, sharded);
  IHS_ASSERT_OK(runner);
  IHS_ASSERT_OK((*runner)->CatchUp("counter"));
  const std::string family = ActiveFamily(**runner);
  const auto live = DumpState(*store_, family);
  ASSERT_EQ(live.size(), 31u);  // 30 counts and the checkpoint
  failures = 1;
  absl::Status failed = (*runner)->Rebuild("counter");
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  EXPECT_NE(failed.message().find("the disk is full"), std::string::npos) << failed;
  EXPECT_EQ(ActiveFamily(**runner), family);
  EXPECT_TRUE(DumpState(*store_, family) == live);
  // Once the cause is gone, a rebuild gets the same counts.
  IHS_ASSERT_OK((*runner)->Rebuild("counter"));
  EXPECT_NE(ActiveFamily(**runner), family);
  EXPECT_TRUE(DumpState(*store_, ActiveFamily(**runner)) == live);
}

// One key per event, "stream/position". In a bulk phase it holds the values (BulkPhase::Keep) and
// hands them to PutInOrder at Flush: sorted, or (kArrival) in the order they came, which across
// streams is not key order, or (kAlsoPut) sorted but with one key also written by Put.
class InOrderPositions final : public Projection, public ShardedRebuild {
 public:
  enum Mode { kSorted, kArrival, kAlsoPut };
  explicit InOrderPositions(Mode mode) : mode_(mode) {}
  absl::string_view name() const override { return "positions"; }
  uint32_t version() const override { return 1; }
  ShardedRebuild* sharded_rebuild() override { return this; }
  absl::Status Apply(const store::StoredEvent& e, Txn& txn) override {
    std::string key = absl::StrCat(e.event().getStreamId().cStr(), "/");
    PutBigEndian64(&key, e.position());
    const std::string value = absl::StrCat("event ", e.position());
    if (!txn.bulk()) {
      txn.Put(key, value);
      return absl::OkStatus();
    }
    if (mode_ == kAlsoPut && held_.empty()) txn.Put(key, value);
    held_.emplace_back(key, txn.bulk()->Keep(value));
    return absl::OkStatus();
  }
  absl::Status Flush(Txn& txn) override {
    if (mode_ != kArrival) std::sort(held_.begin(), held_.end());
    for (const auto& [key, value] : held_) txn.bulk()->PutInOrder(key, value);  // held: bulk
    held_.clear();
    return absl::OkStatus();
  }
  void Discard() override { held_.clear(); }

 private:
  const Mode mode_;
  std::vector<std::pair<std::string, absl::string_view>> held_;
};

TEST_F(RunnerTest, KeysPutInOrderGiveTheStateThatPutsGiveAndMisuseIsRefused) {
  AppendHistory(13, 500, 40000, 200);
  ASSERT_GT(store_->Head(), 2u * 16384);
  auto open = [&](InOrderPositions::Mode mode, size_t memory_bytes) {
    RunnerOptions o;
    o.rebuild_shards = 2;
    o.rebuild_memory_bytes = memory_bytes;
    return Runner::Open(store_.get(), {[mode] { return std::make_unique<InOrderPositions>(mode); }},
                        o);
  };
  auto runner = open(InOrderPositions::kSorted, RunnerOptions().rebuild_memory_bytes);
  IHS_ASSERT_OK(runner);
  IHS_ASSERT_OK((*runner)->CatchUp("positions"));  // batches of Puts, no bulk phase
  const std::string family = ActiveFamily(**runner);
  const auto live = DumpState(*store_, family);
  ASSERT_EQ(live.size(), store_->Head() + 1);  // and the checkpoint
  IHS_ASSERT_OK((*runner)->Rebuild("positions"));
  EXPECT_TRUE(DumpState(*store_, ActiveFamily(**runner)) == live) << "one write-out differs";
  (*runner)->Stop();
  // Written out after every chunk: each write-out has a run of its own.
  auto parts = open(InOrderPositions::kSorted, 1);
  IHS_ASSERT_OK(parts);
  IHS_ASSERT_OK((*parts)->Rebuild("positions"));
  const std::string rebuilt = ActiveFamily(**parts);
  EXPECT_TRUE(DumpState(*store_, rebuilt) == live) << "write-outs in parts differ";
  (*parts)->Stop();
  for (auto [mode, problem] :
       {std::make_pair(InOrderPositions::kArrival, "not in order"),
        std::make_pair(InOrderPositions::kAlsoPut, "both in order and not")}) {
    auto bad = open(mode, RunnerOptions().rebuild_memory_bytes);
    IHS_ASSERT_OK(bad);
    absl::Status s = (*bad)->Rebuild("positions");
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_NE(s.message().find(problem), std::string::npos) << s;
    EXPECT_EQ(ActiveFamily(**bad), rebuilt) << "a refused rebuild took over";
    EXPECT_TRUE(DumpState(*store_, rebuilt) == live);
    (*bad)->Stop();
  }
}

// A LogSink that keeps the lines, for tests that check what an operator is told.
class CapturedLog final : public LogSink {
 public:
  void Log(absl::string_view line) override {
    MutexLock l(&mu_);
    lines_.emplace_back(line);
  }
  std::vector<std::string> lines() {
    MutexLock l(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

TEST_F(RunnerTest, CorruptStateIsReportedAndRebuiltNotServed) {
  AppendHistory(8, 1000, 5000);
  CapturedLog log;
  RunnerOptions o;
  o.log = &log;
  auto runner = Runner::Open(store_.get(), AllProjections(), o);
  IHS_ASSERT_OK(runner);
  IHS_ASSERT_OK((*runner)->CatchUp(""));
  const std::string family = ActiveFamily(**runner);
  const auto good = DumpState(*store_, family);
  // Damage one byte of one summary record, as a bad disk would.
  std::string key, value;
  for (const auto& [k, v] : good) {
    if (k[0] == 'S') {
      key = k, value = v;
      break;
    }
  }
  ASSERT_FALSE(key.empty());
  value[value.size() / 2] ^= 0x20;
  store::StateBatch damage;
  damage.Put(key, value);
  IHS_ASSERT_OK(StateStoreOf(*store_)->WriteState(family, damage));

  auto view = (*runner)->View(timeline::kName);
  IHS_ASSERT_OK(view);
  capnp::MallocMessageBuilder m;
  const std::string party = key.substr(3);
  absl::Status s = timeline::ReadSummary(*view, party, absl::Now(), m);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s;
  // Reported, and not served while it is rebuilt.
  EXPECT_EQ((*runner)->Status()[0].state, "corrupt");
  EXPECT_EQ((*runner)->View(timeline::kName).status().code(), absl::StatusCode::kUnavailable);
  // The operator is told, once, through the runner's log.
  const std::vector<std::string> told = log.lines();
  ASSERT_EQ(told.size(), 1u) << absl::StrJoin(told, "\n");
  EXPECT_NE(told[0].find("projection timeline: "), std::string::npos) << told[0];
  EXPECT_NE(told[0].find("checksum"), std::string::npos) << told[0];
  EXPECT_NE(told[0].find("rebuilding it"), std::string::npos) << told[0];
  (*runner)->Start();  // the worker rebuilds it
  absl::StatusOr<StateView> healed = absl::UnavailableError("");
  for (int i = 0; i < 600 && !healed.ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    healed = (*runner)->View(timeline::kName);
  }
  IHS_ASSERT_OK(healed);
  capnp::MallocMessageBuilder again;
  IHS_EXPECT_OK(timeline::ReadSummary(*healed, party, absl::Now(), again));
  EXPECT_TRUE(DumpState(*store_, ActiveFamily(**runner)) == good);
}

// A projection whose version can be chosen: stands for a new build of the timeline.
class Versioned final : public Projection {
 public:
  explicit Versioned(uint32_t v) : v_(v) {}
  absl::string_view name() const override { return "counter"; }
  uint32_t version() const override { return v_; }
  absl::Status Apply(const store::StoredEvent& e, Txn& txn) override {
    txn.Put("last", std::to_string(e.position() * v_));
    return absl::OkStatus();
  }

 private:
  uint32_t v_;
};

// One shard's keys are cut in two runs to sort on two threads: with one key or none to cut,
// neither run may take a key twice.
TEST_F(RunnerTest, AnUnshardedRebuildOfAnEmptyOrOneEventLogWritesEachKeyOnce) {
  auto runner = Runner::Open(store_.get(), {[] { return std::make_unique<Versioned>(3); }});
  IHS_ASSERT_OK(runner);
  IHS_ASSERT_OK((*runner)->Rebuild("counter"));  // the checkpoint alone
  EXPECT_EQ(DumpState(*store_, ActiveFamily(**runner)).size(), 1u);
  ihs::testing::EventFactory events;
  IHS_ASSERT_OK(store_->Append(
      {"s",
       store::ExpectedVersion::Any(),
       {events.Touchpoint(1, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE)}}));
  IHS_ASSERT_OK((*runner)->Rebuild("counter"));
  const auto state = DumpState(*store_, ActiveFamily(**runner));
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[1].first, "last");
}

TEST_F(RunnerTest, StateOfAnotherVersionIsRebuilt) {
  AppendHistory(9, 1000, 3000);
  {
    auto r = Runner::Open(store_.get(), {[] { return std::make_unique<Versioned>(1); }});
    IHS_ASSERT_OK(r);
    IHS_ASSERT_OK((*r)->CatchUp("counter"));
    EXPECT_EQ(ActiveFamily(**r), "counter@1");
  }
  auto r = Runner::Open(store_.get(), {[] { return std::make_unique<Versioned>(2); }});
  IHS_ASSERT_OK(r);
  EXPECT_NE((*r)->Status()[0].error.find("version 1"), std::string::npos);
  IHS_ASSERT_OK((*r)->CatchUp("counter"));
  EXPECT_EQ(ActiveFamily(**r), "counter@2");
  auto view = (*r)->View("counter");
  IHS_ASSERT_OK(view);
  auto last = view->Get("last");
  IHS_ASSERT_OK(last);
  EXPECT_EQ(**last, std::to_string((store_->Head() - 1) * 2));
}

TEST_F(RunnerTest, StatusReportsCheckpointAndLag) {
  AppendHistory(10, 1000, 3000);
  auto runner = OpenRunner();
  IHS_ASSERT_OK(runner);
  auto st = (*runner)->Status();
  ASSERT_EQ(st.size(), 4u);  // in the registry's order
  EXPECT_EQ(st[0].name, "timeline");
  EXPECT_EQ(st[1].name, "identity");
  EXPECT_EQ(st[2].name, "segments");
  EXPECT_EQ(st[3].name, "community");
  EXPECT_EQ(st[0].checkpoint, 0u);
  EXPECT_EQ(st[0].lag_events, store_->Head());
  EXPECT_GT(st[0].lag_seconds, 0.0);
  IHS_ASSERT_OK((*runner)->CatchUp("timeline"));
  st = (*runner)->Status();
  EXPECT_EQ(st[0].checkpoint, store_->Head());
  EXPECT_EQ(st[0].lag_events, 0u);
  EXPECT_EQ(st[0].state, "live");
  EXPECT_EQ((*runner)->CatchUp("nope").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*runner)->Rebuild("nope").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ihs::projections
