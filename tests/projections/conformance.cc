#include "tests/projections/conformance.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "projections/bulk.h"
#include "projections/runner.h"
#include "store/event_store.h"
#include "store/state_store.h"
#include "tests/testutil/store_fixture.h"
#include "tests/testutil/testutil.h"
#include "workload/generator.h"
#include "workload/load.h"

namespace ihs::projections {
namespace {

using State = std::vector<std::pair<std::string, std::string>>;

// Where two states first differ, for a failure's message.
std::string FirstDifference(const State& a, const State& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i].first != b[i].first) {
      return absl::StrCat("keys differ at ", i, ": ", absl::CHexEscape(a[i].first), " and ",
                          absl::CHexEscape(b[i].first));
    }
    if (a[i].second != b[i].second) {
      return absl::StrCat("values differ at key ", absl::CHexEscape(a[i].first));
    }
  }
  return absl::StrCat("sizes differ: ", a.size(), " and ", b.size());
}

// Every key and value of a projection's active generation, in order.
State Dump(store::EventStore& store, Runner& runner, const std::string& name) {
  std::string family;
  for (const ProjectionStatus& st : runner.Status()) {
    if (st.name == name) family = st.family;
  }
  EXPECT_FALSE(family.empty()) << "no projection " << name;
  return ihs::testing::DumpState(store, family);
}

std::unique_ptr<store::EventStore> OpenStore(const std::string& path) {
  store::Options o;
  o.path = path;
  o.sync = false;  // a SIGKILL loses nothing the kernel has; a power cut is not these tests
  auto s = store::EventStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

workload::Config History(uint64_t seed, uint64_t parties, int days) {
  workload::Config c;
  c.parties = parties;
  c.days = days;
  c.seed = seed;
  return c;
}

// Appends the history in appends of `batch` events, so that live batches end at many positions.
void Append(store::EventStore& store, const workload::Config& c, size_t batch) {
  workload::Generator g(c);
  for (;;) {
    auto b = workload::NextBatch(g, batch);
    if (b->events.empty()) break;
    IHS_ASSERT_OK(store.AppendMulti(workload::GroupByStream(b->Readers())));
  }
}

// Fails Apply once, at one position of a live batch, after the projection has applied (and
// cached) the events before it in the batch: a corrupt event or a full disk would.
class FailOnce final : public Projection {
 public:
  FailOnce(std::unique_ptr<Projection> inner, uint64_t at, std::atomic<bool>* failed)
      : inner_(std::move(inner)), at_(at), failed_(failed) {}
  absl::string_view name() const override { return inner_->name(); }
  uint32_t version() const override { return inner_->version(); }
  absl::Status Apply(const store::StoredEvent& e, Txn& txn) override {
    if (e.position() == at_ && txn.bulk() == nullptr && !failed_->exchange(true)) {
      return absl::UnavailableError("a transient failure");
    }
    return inner_->Apply(e, txn);
  }
  absl::Status Flush(Txn& txn) override { return inner_->Flush(txn); }
  absl::StatusOr<int64_t> NextTimer(Txn& txn) override { return inner_->NextTimer(txn); }
  absl::Status AdvanceClock(int64_t until, Txn& txn) override {
    return inner_->AdvanceClock(until, txn);
  }
  void Discard() override { inner_->Discard(); }
  bool reads_content() const override { return inner_->reads_content(); }
  ShardedRebuild* sharded_rebuild() override { return inner_->sharded_rebuild(); }

 private:
  std::unique_ptr<Projection> inner_;
  const uint64_t at_;
  std::atomic<bool>* failed_;
};

// The state of a rebuild from position 0 by a runner with these options.
State Rebuilt(store::EventStore& store, const ConformanceCase& c, const RunnerOptions& o) {
  auto runner = Runner::Open(&store, {c.factory}, o);
  EXPECT_TRUE(runner.ok()) << runner.status();
  if (!runner.ok()) return {};
  absl::Status s = (*runner)->Rebuild(c.name);
  EXPECT_TRUE(s.ok()) << s;
  return Dump(store, **runner, c.name);
}

TEST_P(ProjectionConformance, LiveStateEqualsARebuildFromZeroByteForByte) {
  ihs::testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  auto runner = Runner::Open(store.get(), {GetParam().factory});
  IHS_ASSERT_OK(runner);
  (*runner)->Start();
  Append(*store, History(5, 800, 30), 37);  // events arrive while the worker follows
  const std::string& name = GetParam().name;
  ASSERT_TRUE((*runner)->WaitFor(name, store->Head(), absl::Now() + absl::Seconds(60)));
  const State live = Dump(*store, **runner, name);
  ASSERT_GT(live.size(), 1u) << "the projection wrote nothing: this proves nothing";
  IHS_ASSERT_OK((*runner)->Rebuild(name));
  EXPECT_TRUE(Dump(*store, **runner, name) == live) << "live and rebuilt state differ";
}

TEST_P(ProjectionConformance, ShardedUnshardedAndCaughtUpStatesAreTheSameBytes) {
  ihs::testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  Append(*store, History(8, 1200, 60), 500);
  const std::string& name = GetParam().name;
  State caught_up;
  {
    RunnerOptions batches;
    batches.rebuild_memory_bytes = 0;  // no bulk phase: the state grows batch by batch
    auto runner = Runner::Open(store.get(), {GetParam().factory}, batches);
    IHS_ASSERT_OK(runner);
    IHS_ASSERT_OK((*runner)->CatchUp(name));
    caught_up = Dump(*store, **runner, name);
  }
  for (size_t shards : {1, 4}) {
    RunnerOptions o;
    o.rebuild_shards = shards;
    EXPECT_TRUE(Rebuilt(*store, GetParam(), o) == caught_up)
        << "a rebuild of " << shards << " shard(s) differs from the caught-up state";
  }
}

TEST_P(ProjectionConformance, ATinyMemoryBoundChangesNoByte) {
  ihs::testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  // Over three of the rebuild's read chunks (16,384 events), so that the state is written out
  // several times and later parts read and change what earlier parts wrote.
  workload::Config c = History(21, 800, 300);
  c.max_events = 60000;
  Append(*store, c, 2000);
  ASSERT_GT(store->Head(), 3u * 16384);
  const State roomy = Rebuilt(*store, GetParam(), RunnerOptions{});
  ASSERT_GT(roomy.size(), 1u);
  RunnerOptions tight;
  tight.rebuild_memory_bytes = 1;  // a write-out after every chunk
  EXPECT_TRUE(Rebuilt(*store, GetParam(), tight) == roomy)
      << "a rebuild written out in parts differs";
}

TEST_P(ProjectionConformance, AFailedBatchLeavesNoTrace) {
  ihs::testing::TempDir dir;
  auto store = OpenStore(dir.Sub("data"));
  Append(*store, History(14, 400, 30), 500);
  ASSERT_GT(store->Head(), 1500u);
  std::atomic<bool> failed{false};
  const ProjectionFactory inner = GetParam().factory;
  auto runner = Runner::Open(store.get(), {[&failed, inner] {
                               return std::make_unique<FailOnce>(inner(), 1500, &failed);
                             }});
  IHS_ASSERT_OK(runner);
  (*runner)->Start();  // batches of 1,000: the failure is half-way through the second
  const std::string& name = GetParam().name;
  ASSERT_TRUE((*runner)->WaitFor(name, store->Head(), absl::Now() + absl::Seconds(60)));
  (*runner)->Stop();
  ASSERT_TRUE(failed.load());
  const State live = Dump(*store, **runner, name);
  IHS_ASSERT_OK((*runner)->Rebuild(name));
  const State rebuilt = Dump(*store, **runner, name);
  EXPECT_TRUE(rebuilt == live) << "the failed batch left a trace: "
                               << FirstDifference(live, rebuilt);
}

// The child of the next test, which runs it as this same test with IHS_CONFORMANCE_CHILD set:
// appends a history (resuming what an earlier, killed child left) while the worker follows,
// and waits until the projection has applied the whole log.
void RunKilledChild(const std::string& path, const ConformanceCase& c) {
  auto store = OpenStore(path);
  ASSERT_NE(store, nullptr);
  auto runner = Runner::Open(store.get(), {c.factory});
  IHS_ASSERT_OK(runner);
  (*runner)->Start();
  workload::Generator g(History(21, 3000, 90));  // about 90k events: kills land while it runs
  IHS_ASSERT_OK(workload::LoadIntoStore(g, *store));
  ASSERT_TRUE((*runner)->WaitFor(c.name, store->Head(), absl::Now() + absl::Seconds(120)));
}

pid_t SpawnChild(const std::string& path) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string filter =
      std::string("--gtest_filter=") + info->test_suite_name() + "." + info->name();
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    setenv("IHS_CONFORMANCE_CHILD", path.c_str(), 1);
    execl("/proc/self/exe", "conformance-child", filter.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

TEST_P(ProjectionConformance, AProcessKilledAtRandomResumesToTheRebuiltState) {
  if (const char* child = std::getenv("IHS_CONFORMANCE_CHILD")) {
    RunKilledChild(child, GetParam());
    return;
  }
  ihs::testing::TempDir dir;
  const std::string data = dir.Sub("data");
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (int round = 0; round < 6; ++round) {
    pid_t pid = SpawnChild(data);
    ASSERT_GT(pid, 0);
    usleep(std::uniform_int_distribution<int>(150'000, 900'000)(rng));
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    kills += WIFSIGNALED(status);
  }
  EXPECT_GT(kills, 0) << "the child always finished before it was killed";
  pid_t pid = SpawnChild(data);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  auto store = OpenStore(data);
  auto runner = Runner::Open(store.get(), {GetParam().factory});
  IHS_ASSERT_OK(runner);
  const std::string& name = GetParam().name;
  const std::vector<ProjectionStatus> st = (*runner)->Status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].checkpoint, store->Head());
  const State resumed = Dump(*store, **runner, name);
  IHS_ASSERT_OK((*runner)->Rebuild(name));
  EXPECT_TRUE(Dump(*store, **runner, name) == resumed) << "the resumed state differs";
}

}  // namespace
}  // namespace ihs::projections
