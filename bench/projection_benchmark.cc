// Benchmarks of the projection runner and the timeline (bench/RESULTS.md):
//   BM_ReadAllSealed/<dataset>     the ceiling: the log read from position 0 as the runner reads
//                                  it (content sealed), in batches of 16,384
//   BM_TimelineRebuild/<dataset>   Runner::Rebuild of the timeline from position 0 (a fresh
//                                  generation each iteration; the old one is dropped)
//   BM_TimelinePage500             one party's 500-entry timeline page (ReadPage), from the
//                                  rebuilt state
//   BM_LiveLag                     8 writers append durably to a fresh store while the worker
//                                  follows; counters p50_ms/p99_ms: from an append's
//                                  acknowledgement to the timeline having applied it
//   BM_ReadAllOpened/<dataset>     identity's ceiling: the log read with content opened
//   BM_IdentityRebuild/<dataset>   Runner::Rebuild of identity from position 0
//   BM_IdentityResolve             identity::Resolve of random streams of the rebuilt state;
//                                  counters p50_us/p99_us
//   BM_IdentityResolveLag          8 durable writers; the probe appends a second stream with the
//                                  email and name of a first one, which makes the pair
//                                  inferable; p50_ms/p99_ms: from that append's acknowledgement
//                                  to the two being one person (projection, resolver's link,
//                                  projection again), with ihsd's resolver running
// The dataset is gen4-seed42-1M, or gen4-seed42-10M with IHS_BENCH_DATASET=10M (1Mstreams: a
// week of 1.7M parties, 1M of them seen, for BM_IdentityResolve); it is built on
// first use and cached (bench/dataset.h). The rebuild adds state families to the cached store,
// which later runs drop and rebuild.
#include <benchmark/benchmark.h>
#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/dataset_benchmark.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "projections/identity/identity.h"
#include "projections/identity/resolver.h"
#include "projections/registry.h"
#include "projections/runner.h"
#include "projections/timeline/timeline.h"
#include "tests/testutil/testutil.h"

namespace ihs::bench {
namespace {

struct Open {
  store::EventStore* store;
  std::unique_ptr<projections::Runner> runner;
  std::string name;
};

Open& TheDataset() {
  static Open* o = [] {
    OpenDataset& d = TheOpenDataset();
    auto r = projections::Runner::Open(d.store.get(), projections::AllProjections());
    if (!r.ok()) std::abort();
    return new Open{d.store.get(), std::move(*r), d.name};
  }();
  return *o;
}

void BM_ReadAllSealed(benchmark::State& state) { ReadAllSealedCeiling(state); }
BENCHMARK(BM_ReadAllSealed)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

// Rebuilds projection `name` of the dataset from position 0, once per iteration.
void Rebuild(benchmark::State& state, const char* name) {
  Open& o = TheDataset();
  for (auto _ : state) {
    absl::Status s = o.runner->Rebuild(name);
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * o.store->Head()));
  state.SetLabel(o.name);
}

void BM_TimelineRebuild(benchmark::State& state) { Rebuild(state, projections::timeline::kName); }
BENCHMARK(BM_TimelineRebuild)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// The party with the most timeline entries (at least 500).
std::string BusiestParty(const projections::StateView& view) {
  std::string best;
  uint64_t most = 0;
  absl::Status s = view.Scan("S", "T", [&](absl::string_view key, absl::string_view value) {
    kj::ArrayInputStream in(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(value.data()), value.size()));
    capnp::PackedMessageReader r(in);  // the timeline's records are packed
    const uint64_t n = r.getRoot<schema::TimelinePartyState>().getEntries();
    if (n > most) most = n, best = std::string(key.substr(3));
    return true;
  });
  return s.ok() && most >= 500 ? best : std::string();
}

void BM_TimelinePage500(benchmark::State& state) {
  Open& o = TheDataset();
  if (!o.runner->CatchUp(projections::timeline::kName).ok()) state.SkipWithError("catch up");
  auto view = o.runner->View(projections::timeline::kName);
  if (!view.ok()) return state.SkipWithError("view");
  projections::timeline::Query q;
  q.party = BusiestParty(*view);
  if (q.party.empty()) return state.SkipWithError("no party has 500 entries");
  q.limit = 500;
  for (auto _ : state) {
    capnp::MallocMessageBuilder m;
    absl::Status s = projections::timeline::ReadPage(*view, q, m);
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    benchmark::DoNotOptimize(m.getRoot<schema::TimelinePage>().getEntries().size());
  }
  state.SetLabel(absl::StrCat(o.name, " party ", q.party));
}
BENCHMARK(BM_TimelinePage500)->Unit(benchmark::kMicrosecond);

// One run under load, on a fresh durable store with every projection live (and identity's
// resolver, if asked) for 5 s: 8 writers call `step(w, n)` for their n-th write; a step returns
// its lag in ms when it is a probe, nullopt when it is load, an error to stop that writer.
struct LagRun {
  store::EventStore& store;
  projections::Runner& runner;
  const std::atomic<bool>& stop;
};
using LagStep = std::function<absl::StatusOr<std::optional<double>>(LagRun&, int, uint64_t)>;

void LagUnderWriters(benchmark::State& state, bool resolver, const LagStep& step) {
  for (auto _ : state) {
    ihs::testing::TempDir dir;
    store::Options so;
    so.path = dir.Sub("data");
    auto st = store::EventStore::Open(so);
    if (!st.ok()) return state.SkipWithError("open");
    auto r = projections::Runner::Open(st->get(), projections::AllProjections());
    if (!r.ok()) return state.SkipWithError("runner");
    (*r)->Start();
    std::optional<projections::identity::Resolver> links;
    if (resolver) links.emplace(**st, **r).Start();
    std::atomic<bool> stop{false};
    LagRun run{**st, **r, stop};
    absl::Mutex mu;
    std::vector<double> lags_ms;
    std::vector<std::thread> writers;
    for (int w = 0; w < 8; ++w) {
      writers.emplace_back([&, w] {
        for (uint64_t n = 0; !stop.load(); ++n) {
          absl::StatusOr<std::optional<double>> lag = step(run, w, n);
          if (!lag.ok()) break;
          if (!*lag) continue;
          MutexLock l(&mu);
          lags_ms.push_back(**lag);
        }
      });
    }
    absl::SleepFor(absl::Seconds(5));
    stop = true;
    for (auto& t : writers) t.join();
    if (links) links->Stop();
    (*r)->Stop();
    std::sort(lags_ms.begin(), lags_ms.end());
    if (lags_ms.empty()) return state.SkipWithError("no samples");
    state.counters["p50_ms"] = lags_ms[lags_ms.size() / 2];
    state.counters["p99_ms"] = lags_ms[lags_ms.size() * 99 / 100];
    state.counters["samples"] = static_cast<double>(lags_ms.size());
    state.counters["events"] = static_cast<double>((*st)->Head());
  }
}

void BM_LiveLag(benchmark::State& state) {
  ihs::testing::EventFactory events;
  std::atomic<uint64_t> next_id{1};
  LagUnderWriters(state, false,
                  [&](LagRun& run, int w, uint64_t) -> absl::StatusOr<std::optional<double>> {
                    const uint64_t id = next_id.fetch_add(1);
                    IHS_ASSIGN_OR_RETURN(
                        store::AppendResult res,
                        run.store.Append({absl::StrCat("c-", id % 2000),
                                          store::ExpectedVersion::Any(),
                                          {events.Touchpoint(id, schema::Channel::EMAIL,
                                                             schema::TouchpointType::MESSAGE)}}));
                    if (w != 0) return std::nullopt;  // one writer probes; the others are load
                    const absl::Time acked = absl::Now();
                    run.runner.WaitFor(projections::timeline::kName, res.positions[0] + 1,
                                       acked + absl::Seconds(10));
                    return absl::ToDoubleMilliseconds(absl::Now() - acked);
                  });
}
BENCHMARK(BM_LiveLag)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_ReadAllOpened(benchmark::State& state) {
  Open& o = TheDataset();
  uint64_t read = 0;
  store::ReadOptions ro;  // content opened, as the identity projection reads it
  for (auto _ : state) {
    for (uint64_t p = 0, head = o.store->Head(); p < head;) {
      auto batch = o.store->ReadAll(p, 16384, ro);
      if (!batch.ok() || batch->empty()) return state.SkipWithError("read");
      p += batch->size();
      read += batch->size();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(read));
  state.SetLabel(o.name);
}
BENCHMARK(BM_ReadAllOpened)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

void BM_IdentityRebuild(benchmark::State& state) { Rebuild(state, projections::identity::kName); }
BENCHMARK(BM_IdentityRebuild)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_IdentityResolve(benchmark::State& state) {
  Open& o = TheDataset();
  if (!o.runner->CatchUp(projections::identity::kName).ok()) return state.SkipWithError("catch up");
  auto view = o.runner->View(projections::identity::kName);
  if (!view.ok()) return state.SkipWithError("view");
  std::vector<std::string> streams;
  absl::Status s = view->Scan("S", "T", [&](absl::string_view key, absl::string_view) {
    streams.emplace_back(key.substr(1));
    return true;
  });
  if (!s.ok() || streams.empty()) return state.SkipWithError("no streams");
  std::vector<double> us;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& stream = streams[(i++ * 7919) % streams.size()];
    const absl::Time t0 = absl::Now();
    capnp::MallocMessageBuilder m;
    absl::Status r = projections::identity::Resolve(*view, stream, m);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    if (!r.ok()) state.SkipWithError(std::string(r.message()).c_str());
  }
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
  state.SetLabel(absl::StrCat(o.name, ", ", streams.size(), " streams"));
}
BENCHMARK(BM_IdentityResolve)->Unit(benchmark::kMicrosecond);

void BM_IdentityResolveLag(benchmark::State& state) {
  ihs::testing::EventFactory events;
  std::atomic<uint64_t> next_id{1};
  auto say = [&](store::EventStore& store, const std::string& stream, const std::string& email) {
    auto e = events.New(next_id.fetch_add(1));
    e.setStreamId(stream);
    e.setOccurredAt(1700000000000000);
    auto tp = e.initTouchpoint();
    tp.setChannel(schema::Channel::EMAIL);
    tp.setDirection(schema::Direction::INBOUND);
    tp.setType(schema::TouchpointType::MESSAGE);
    auto from = e.initContent().initFrom();
    from.setKind(schema::HandleKind::EMAIL);
    from.setAddress(email);
    return store.Append({stream, store::ExpectedVersion::Any(), {e.asReader()}});
  };
  LagUnderWriters(
      state, true, [&](LagRun& run, int w, uint64_t n) -> absl::StatusOr<std::optional<double>> {
        if (w != 0) {  // load: touchpoints of 2,000 parties, each with its own address
          const uint64_t p = next_id.load() % 2000;
          IHS_RETURN_IF_ERROR(
              say(run.store, absl::StrCat("c-", p), absl::StrCat("load.", p, "@example.net"))
                  .status());
          return std::nullopt;
        }
        const std::string email = absl::StrCat("greta.richter.", n, "@example.net");
        const std::string a = absl::StrCat("a-", n), b = absl::StrCat("b-", n);
        IHS_RETURN_IF_ERROR(say(run.store, a, email).status());
        // Now the pair is inferable (email 0.8 + name 0.5).
        IHS_RETURN_IF_ERROR(say(run.store, b, email).status());
        const absl::Time acked = absl::Now();
        for (;;) {
          auto view = run.runner.View(projections::identity::kName);
          capnp::MallocMessageBuilder m;
          if (view.ok() && projections::identity::ReadPerson(*view, b, m).ok() &&
              m.getRoot<schema::Person>().getStreams().size() == 2) {
            break;
          }
          if (absl::Now() - acked > absl::Seconds(10) || run.stop.load()) break;
          absl::SleepFor(absl::Microseconds(100));
        }
        return absl::ToDoubleMilliseconds(absl::Now() - acked);
      });
}
BENCHMARK(BM_IdentityResolveLag)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
}  // namespace ihs::bench

BENCHMARK_MAIN();
