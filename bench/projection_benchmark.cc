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
//   BM_CommunityRebuild            Runner::Rebuild of community from position 0
//   BM_CommunityLag                8 durable writers sharing posts; a share's acknowledgement
//                                  to community having applied it; p50_ms/p99_ms
//   BM_CommunityAlertLag           as BM_CommunityLag, with a segment on `community reach >=
//                                  1000000` and ihsd's band appender: a new person's post to 2M,
//                                  from its acknowledgement to the person being in the segment
//   BM_CommunityPerEventDistinct/P 5,000 shares by distinct persons of a P-person graph, in one
//                                  batch
//   BM_CommunityPerEventAlone/P    2,000 such shares, each committed in a batch of its own
//   BM_CommunityTop100             community::ReadTop of 100 (by reach and by standing, in
//                                  turn); counters p50_us/p99_us
//   BM_CommunityCardOfTop100       community::ReadCard of those 100 in turn; p50_us/p99_us
//   BM_LongStream<P>/H             projection P (Timeline, Identity, Segments, Community) on a
//                                  stream with H earlier events: the next event's cost, applied
//                                  alone; H=0: each event to a new stream (issue 27's fourth goal)
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
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/dataset_benchmark.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "projections/community/bands.h"
#include "projections/community/community.h"
#include "projections/identity/identity.h"
#include "projections/identity/resolver.h"
#include "projections/registry.h"
#include "projections/runner.h"
#include "projections/segments/definitions.h"
#include "projections/segments/segments.h"
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
    projections::RunnerOptions ro;  // IHS_BENCH_REBUILD_SHARDS, _MIB: RunnerOptions::rebuild_*
    if (const char* n = std::getenv("IHS_BENCH_REBUILD_SHARDS")) ro.rebuild_shards = std::atoi(n);
    if (const char* mib = std::getenv("IHS_BENCH_REBUILD_MIB")) {  // rebuild_memory_bytes in MiB
      ro.rebuild_memory_bytes = size_t{static_cast<size_t>(std::atoll(mib))} << 20;
    }
    auto r = projections::Runner::Open(d.store.get(), projections::AllProjections(), ro);
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

void LagUnderWriters(benchmark::State& state, bool resolver, const LagStep& step,
                     const std::function<absl::Status(store::EventStore&)>& setup = nullptr,
                     bool bands = false) {
  for (auto _ : state) {
    ihs::testing::TempDir dir;
    store::Options so;
    so.path = dir.Sub("data");
    auto st = store::EventStore::Open(so);
    if (!st.ok()) return state.SkipWithError("open");
    if (setup) {
      absl::Status s = setup(**st);
      if (!s.ok()) return state.SkipWithError(std::string(s.message()).c_str());
    }
    projections::RunnerOptions ro;  // ihsd's (--projection-nice), or IHS_BENCH_WORKER_NICE
    if (const char* nice = std::getenv("IHS_BENCH_WORKER_NICE")) ro.worker_nice = std::atoi(nice);
    auto r = projections::Runner::Open(st->get(), projections::AllProjections(), ro);
    if (!r.ok()) return state.SkipWithError("runner");
    (*r)->Start();
    state.counters["worker_nice"] = ro.worker_nice;
    std::optional<projections::identity::Resolver> links;
    if (resolver) links.emplace(**st, **r).Start();
    std::optional<projections::community::BandAppender> published;
    if (bands) published.emplace(**st, **r).Start();
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
    if (published) published->Stop();
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

// --- segments ----------------------------------------------------------------------------------

void BM_SegmentsRebuild(benchmark::State& state) { Rebuild(state, projections::segments::kName); }
BENCHMARK(BM_SegmentsRebuild)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

absl::Status DefineSegment(store::EventStore& store, const std::string& name,
                           const std::string& rule) {
  projections::segments::DefineRequest r;
  r.name = name;
  r.rule = rule;
  r.requested_by = "bench";
  return projections::segments::AppendDefinition(store, r).status();
}

// The 50 segments (BenchSegments).
absl::Status Define50(store::EventStore& store) {
  for (const auto& [name, rule] : BenchSegments()) {
    IHS_RETURN_IF_ERROR(DefineSegment(store, name, rule));
  }
  return absl::OkStatus();
}

// 8 durable writers with every projection live and 50 segments defined; the probe writer's
// fax complaint makes a new party enter "probe"; from its acknowledgement to the transition in
// the feed that subscribers read (their push adds an event-loop turn).
void BM_SegmentsTransitionLag(benchmark::State& state) {
  ihs::testing::EventFactory events;
  std::atomic<uint64_t> next_id{1};
  LagUnderWriters(
      state, false,
      [&](LagRun& run, int w, uint64_t n) -> absl::StatusOr<std::optional<double>> {
        const uint64_t id = next_id.fetch_add(1);
        if (w != 0) {
          IHS_RETURN_IF_ERROR(run.store
                                  .Append({absl::StrCat("c-", id % 2000),
                                           store::ExpectedVersion::Any(),
                                           {events.Touchpoint(id, schema::Channel::EMAIL,
                                                              schema::TouchpointType::MESSAGE)}})
                                  .status());
          return std::nullopt;
        }
        IHS_ASSIGN_OR_RETURN(
            store::AppendResult res,
            run.store.Append({absl::StrCat("probe-", n),
                              store::ExpectedVersion::Any(),
                              {events.Touchpoint(id, schema::Channel::FAX,
                                                 schema::TouchpointType::COMPLAINT)}}));
        const absl::Time acked = absl::Now();
        run.runner.WaitFor(projections::segments::kName, res.positions[0] + 1,
                           acked + absl::Seconds(10));
        return absl::ToDoubleMilliseconds(absl::Now() - acked);
      },
      Define50);
}
BENCHMARK(BM_SegmentsTransitionLag)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// A clock transition: 40 parties' complaints leave a 1 s window at their moments, with no event
// after them; from each moment to its exit in the feed (polled every ms).
void BM_SegmentsClockLag(benchmark::State& state) {
  for (auto _ : state) {
    ihs::testing::TempDir dir;
    store::Options so;
    so.path = dir.Sub("data");
    auto st = store::EventStore::Open(so);
    if (!st.ok()) return state.SkipWithError("open");
    if (!DefineSegment(**st, "fresh", "any(type = complaint, last 1s)").ok()) {
      return state.SkipWithError("define");
    }
    auto r = projections::Runner::Open(st->get(), projections::AllProjections());
    if (!r.ok()) return state.SkipWithError("runner");
    (*r)->Start();
    ihs::testing::EventFactory events;
    for (int i = 0; i < 40; ++i) {
      auto e = events.New(100 + i);
      e.setOccurredAt(absl::ToUnixMicros(absl::Now()));
      auto tp = e.initTouchpoint();
      tp.setChannel(schema::Channel::EMAIL);
      tp.setDirection(schema::Direction::INBOUND);
      tp.setType(schema::TouchpointType::COMPLAINT);
      if (!(*st)
               ->Append({absl::StrCat("p-", i), store::ExpectedVersion::Any(), {e.asReader()}})
               .ok()) {
        return state.SkipWithError("append");
      }
      absl::SleepFor(absl::Milliseconds(25));
    }
    std::vector<double> lags_ms;
    uint64_t from = 0;
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (lags_ms.size() < 40 && absl::Now() < give_up) {
      auto view = (*r)->View(projections::segments::kName);
      if (view.ok()) {
        absl::Status s = projections::segments::ForEachTransition(
            *view, from, [&](schema::Transition::Reader t) {
              from = t.getSeq() + 1;
              if (!t.getEntered()) {
                lags_ms.push_back(
                    absl::ToDoubleMilliseconds(absl::Now() - absl::FromUnixMicros(t.getAt())));
              }
              return true;
            });
        if (!s.ok()) return state.SkipWithError("feed");
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    (*r)->Stop();
    if (lags_ms.size() < 40) return state.SkipWithError("not every exit came");
    std::sort(lags_ms.begin(), lags_ms.end());
    state.counters["p50_ms"] = lags_ms[lags_ms.size() / 2];
    state.counters["max_ms"] = lags_ms.back();
  }
}
BENCHMARK(BM_SegmentsClockLag)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// A store in `dir` for a per-event benchmark's setup, loaded without syncs (what is measured
// reads and applies; it does not append).
absl::StatusOr<std::unique_ptr<store::EventStore>> OpenScratch(ihs::testing::TempDir& dir) {
  store::Options so;
  so.path = dir.Sub("data");
  so.sync = false;
  return store::EventStore::Open(so);
}

// With timing paused: waits for the store's compactions to settle (SettleFiles) and reads the
// log from `before` to its head (the ceiling); then, timed, catches projection `name` up over
// those `count` events; counters events_per_s, us_per_event and `ratio` (reading over applying).
// False (and the benchmark skipped) on an error.
bool MeasureCatchUp(benchmark::State& state, store::EventStore& store, projections::Runner& runner,
                    const char* name, uint64_t before, uint64_t count) {
  if (absl::Status s = SettleFiles(store); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return false;
  }
  const absl::Time r0 = absl::Now();
  for (uint64_t p = before; p < store.Head();) {
    auto b = store.ReadAll(p, 16384, store::ReadOptions{false});
    if (!b.ok() || b->empty()) {
      state.SkipWithError("read");
      return false;
    }
    p += b->size();
  }
  const double read_s = absl::ToDoubleSeconds(absl::Now() - r0);
  state.ResumeTiming();
  const absl::Time t0 = absl::Now();
  if (!runner.CatchUp(name).ok()) {
    state.SkipWithError("apply");
    return false;
  }
  const double apply_s = absl::ToDoubleSeconds(absl::Now() - t0);
  state.counters["events_per_s"] = static_cast<double>(count) / apply_s;
  state.counters["us_per_event"] = apply_s * 1e6 / static_cast<double>(count);
  state.counters["ratio"] = read_s / apply_s;
  return true;
}

// A scratch store with the 50 benchmark segments defined.
absl::StatusOr<std::unique_ptr<store::EventStore>> OpenScratchWith50(ihs::testing::TempDir& dir) {
  IHS_ASSIGN_OR_RETURN(std::unique_ptr<store::EventStore> st, OpenScratch(dir));
  IHS_RETURN_IF_ERROR(Define50(*st));
  return st;
}

// Per-event cost against the number of parties: a store of P parties (one purchase each) with
// the 50 segments, caught up (and 100 events more, so that the worker holds its timers); then
// more events, applied by CatchUp; items/s, and `ratio` against reading the same events from the
// log. Two ways of choosing the parties of those events:
// - BM_SegmentsPerEvent: 20,000 events to random parties. With 10k parties most events find
//   their party's records in the projection's cache from an earlier event of the batch; with 1M
//   almost none do, so this measures the cache as much as the parties.
// - BM_SegmentsPerEventDistinct: 5,000 events, each to a party no other event of the batch
//   names, so that every size does the same work per event (records read from the store, not
//   from the cache) and only the number of parties differs.
void SegmentsPerEvent(benchmark::State& state, uint64_t count, bool distinct) {
  const uint64_t parties = static_cast<uint64_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    ihs::testing::TempDir dir;
    auto st = OpenScratchWith50(dir);
    if (!st.ok()) return state.SkipWithError(std::string(st.status().message()).c_str());
    ihs::testing::EventFactory events;
    uint64_t id = 1;
    // Distinct parties: a random order of all of them, taken from the front.
    std::vector<uint64_t> order;
    if (distinct) {
      order.resize(parties);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), std::mt19937_64(parties));
    }
    size_t next_distinct = 0;
    auto load = [&](uint64_t count, bool random) -> absl::Status {
      std::mt19937_64 rng(count);
      for (uint64_t done = 0; done < count;) {
        std::map<uint64_t, std::vector<schema::Event::Reader>> by_party;  // one append each
        for (uint64_t n = 0; done < count && n < 5000; ++done, ++n) {
          const uint64_t p = !random                               ? done
                             : distinct && next_distinct < parties ? order[next_distinct++]
                                                                   : rng() % parties;
          const auto type =
              random ? schema::TouchpointType::MESSAGE : schema::TouchpointType::PURCHASE;
          by_party[p].push_back(events.Touchpoint(id++, schema::Channel::EMAIL, type));
        }
        std::vector<store::StreamAppend> batch;
        for (auto& [p, evs] : by_party) {
          batch.push_back({absl::StrCat("c-", p), store::ExpectedVersion::Any(), evs});
        }
        absl::Status s = (*st)->AppendMulti(batch).status();
        if (!s.ok()) {
          std::fprintf(stderr, "load: %s\n", std::string(s.message()).c_str());
          return s;
        }
      }
      return absl::OkStatus();
    };
    if (!load(parties, false).ok()) return state.SkipWithError("load");
    auto r = projections::Runner::Open(st->get(), projections::AllProjections());
    if (!r.ok() || !(*r)->CatchUp(projections::segments::kName).ok()) {
      return state.SkipWithError("catch up");
    }
    // A first small batch: the worker loads its timers (one per person) once, not per event.
    // (Its parties are not among the measured ones when they are distinct.)
    if (!load(100, true).ok() || !(*r)->CatchUp(projections::segments::kName).ok()) {
      return state.SkipWithError("warm up");
    }
    const uint64_t before = (*st)->Head();
    if (!load(count, true).ok()) return state.SkipWithError("load");
    if (!MeasureCatchUp(state, **st, **r, projections::segments::kName, before, count)) return;
  }
}
void BM_SegmentsPerEvent(benchmark::State& state) { SegmentsPerEvent(state, 20000, false); }
void BM_SegmentsPerEventDistinct(benchmark::State& state) { SegmentsPerEvent(state, 5000, true); }
// 10k, 100k and 1M parties, once each.
void PartySizes(benchmark::internal::Benchmark* b) {
  b->Arg(10000)
      ->Arg(100000)
      ->Arg(1000000)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(1);
}
BENCHMARK(BM_SegmentsPerEvent)->Apply(PartySizes);
BENCHMARK(BM_SegmentsPerEventDistinct)->Apply(PartySizes);

// A page of 1,000 members of the dataset's largest segment (defined as "any()" if the dataset
// has none larger than 100k), from the caught-up state.
void BM_SegmentsMembersPage1000(benchmark::State& state) {
  Open& o = TheDataset();
  (void)DefineSegment(*o.store, "everyone", "any()");  // kAlreadyExists on later runs: fine
  if (!o.runner->CatchUp(projections::segments::kName).ok()) return state.SkipWithError("catch up");
  auto view = o.runner->View(projections::segments::kName);
  if (!view.ok()) return state.SkipWithError("view");
  std::vector<double> us;
  uint64_t count = 0;
  std::string after;
  for (auto _ : state) {
    const absl::Time t0 = absl::Now();
    capnp::MallocMessageBuilder m;
    absl::Status s = projections::segments::ReadMembers(*view, "everyone", 0, after, 1000, m);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    if (!s.ok()) return state.SkipWithError(std::string(s.message()).c_str());
    auto page = m.getRoot<schema::MemberPage>();
    count = page.getCount();
    after = page.getMore() ? page.getMembers()[999].getPerson().cStr() : "";
  }
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
  state.SetLabel(absl::StrCat(o.name, ", ", count, " members"));
}
BENCHMARK(BM_SegmentsMembersPage1000)->Unit(benchmark::kMicrosecond);

// --- a party's history against its next event --------------------------------------------------

// A stream with `history` earlier events (inbound emails, none answered, so every one stays open
// in the timeline and waits in the segments), caught up by projection `name`, with the 50
// segments defined; then single-event appends to it, each followed by the projection's catch-up
// (a batch of one event, as a worker that follows the log at the head applies it). history 0:
// each append goes to a new stream instead. The time is the catch-ups' alone; us_per_event the
// same per event. The goal: as fast on a stream of 1M events as on a new one.
void LongStream(benchmark::State& state, const char* name) {
  const uint64_t history = static_cast<uint64_t>(state.range(0));
  const int appends = history >= 1000000 ? 20 : 200;
  for (auto _ : state) {
    ihs::testing::TempDir dir;
    auto st = OpenScratchWith50(dir);
    if (!st.ok()) return state.SkipWithError(std::string(st.status().message()).c_str());
    ihs::testing::EventFactory events;
    uint64_t id = 1;
    auto message = [&] {
      return events.Touchpoint(id++, schema::Channel::EMAIL, schema::TouchpointType::MESSAGE);
    };
    for (uint64_t done = 0; done < history;) {
      std::vector<schema::Event::Reader> evs;
      for (int n = 0; n < 1000 && done < history; ++n, ++done) evs.push_back(message());
      if (!(*st)->Append({"long", store::ExpectedVersion::Any(), evs}).ok()) {
        return state.SkipWithError("load");
      }
    }
    auto r = projections::Runner::Open(st->get(), projections::AllProjections());
    if (!r.ok() || !(*r)->CatchUp(name).ok()) return state.SkipWithError("catch up");
    if (!SettleFiles(**st).ok()) return state.SkipWithError("settle");
    double seconds = 0;
    for (int i = 0; i < appends; ++i) {
      const std::string stream = history == 0 ? absl::StrCat("new-", i) : "long";
      if (!(*st)->Append({stream, store::ExpectedVersion::Any(), {message()}}).ok()) {
        return state.SkipWithError("append");
      }
      const absl::Time t0 = absl::Now();
      if (!(*r)->CatchUp(name).ok()) return state.SkipWithError("apply");
      seconds += absl::ToDoubleSeconds(absl::Now() - t0);
    }
    state.SetIterationTime(seconds);
    state.counters["us_per_event"] = seconds * 1e6 / appends;
  }
}
void BM_LongStreamTimeline(benchmark::State& s) { LongStream(s, projections::timeline::kName); }
void BM_LongStreamIdentity(benchmark::State& s) { LongStream(s, projections::identity::kName); }
void BM_LongStreamSegments(benchmark::State& s) { LongStream(s, projections::segments::kName); }
void BM_LongStreamCommunity(benchmark::State& s) { LongStream(s, projections::community::kName); }
// 0, 10k, 100k and 1M earlier events (until 2026-12-06 the segments stopped at 100k, where an
// event took 258 ms: bench/RESULTS.md).
void Histories(benchmark::internal::Benchmark* b) {
  b->Arg(0)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
  b->UseManualTime()->Iterations(1);
}
BENCHMARK(BM_LongStreamTimeline)->Apply(Histories);
BENCHMARK(BM_LongStreamIdentity)->Apply(Histories);
BENCHMARK(BM_LongStreamSegments)->Apply(Histories);
BENCHMARK(BM_LongStreamCommunity)->Apply(Histories);

// --- community -------------------------------------------------------------------------------

// A public post on Twitter: an original of `audience`, or (with `cause`) a share of that post.
schema::Event::Reader PublicPost(ihs::testing::EventFactory& events, uint64_t id, uint64_t audience,
                                 uint64_t cause) {
  schema::Event::Builder e = events.New(id);
  e.setOccurredAt(1700000000000000);
  if (cause != 0) {
    const std::string c = ihs::testing::EventId(cause);
    e.setCausationId(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(c.data()), c.size()));
  }
  auto t = e.initTouchpoint();
  t.setChannel(schema::Channel::TWITTER);
  t.setDirection(schema::Direction::PUBLIC);
  t.setType(cause != 0 ? schema::TouchpointType::SHARE : schema::TouchpointType::REVIEW);
  t.setAudienceSize(audience);
  return e.asReader();
}

// `n` originals (ids 1..n) by 500 authors, of audience 100 + id.
absl::Status PostOriginals(store::EventStore& store, ihs::testing::EventFactory& events,
                           uint64_t n) {
  for (uint64_t i = 1; i <= n; ++i) {
    IHS_RETURN_IF_ERROR(store
                            .Append({absl::StrCat("author-", i % 500),
                                     store::ExpectedVersion::Any(),
                                     {PublicPost(events, i, 100 + i, 0)}})
                            .status());
  }
  return absl::OkStatus();
}

// 8 durable writers with every projection live, 2,000 originals posted first; the writers share
// random ones of them; the probe writer's share, from its acknowledgement to the community
// projection having applied it: the sharer's carry, the author's reach, value and audience at
// risk, and the standing's pushes, all in the same batch.
void BM_CommunityLag(benchmark::State& state) {
  ihs::testing::EventFactory events;
  constexpr uint64_t kPosts = 2000;
  std::atomic<uint64_t> next_id{kPosts + 1};
  LagUnderWriters(
      state, false,
      [&](LagRun& run, int w, uint64_t n) -> absl::StatusOr<std::optional<double>> {
        const uint64_t id = next_id.fetch_add(1);
        IHS_ASSIGN_OR_RETURN(
            store::AppendResult res,
            run.store.Append({absl::StrCat(w == 0 ? "probe-" : "c-", id % 5000),
                              store::ExpectedVersion::Any(),
                              {PublicPost(events, id, 50, 1 + (id * 7919 + n) % kPosts)}}));
        if (w != 0) return std::nullopt;
        const absl::Time acked = absl::Now();
        run.runner.WaitFor(projections::community::kName, res.positions[0] + 1,
                           acked + absl::Seconds(10));
        return absl::ToDoubleMilliseconds(absl::Now() - acked);
      },
      [&](store::EventStore& store) { return PostOriginals(store, events, kPosts); });
}
BENCHMARK(BM_CommunityLag)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// The alert: a segment on a community figure (`community reach >= 1000000`), ihsd's band
// appender running, 8 durable writers sharing posts as in BM_CommunityLag; the probe writer posts
// as a new person to an audience of 2,000,000. From that post's acknowledgement to the segments
// projection having the person in the segment: community applies the post, the appender
// publishes the band (a durable append), segments applies it.
void BM_CommunityAlertLag(benchmark::State& state) {
  namespace sg = projections::segments;
  ihs::testing::EventFactory events;
  constexpr uint64_t kPosts = 2000;
  std::atomic<uint64_t> next_id{kPosts + 1};
  LagUnderWriters(
      state, false,
      [&](LagRun& run, int w, uint64_t n) -> absl::StatusOr<std::optional<double>> {
        const uint64_t id = next_id.fetch_add(1);
        const std::string stream = absl::StrCat(w == 0 ? "loud-" : "c-", w == 0 ? id : id % 5000);
        IHS_ASSIGN_OR_RETURN(
            store::AppendResult res,
            run.store.Append(
                {stream,
                 store::ExpectedVersion::Any(),
                 {w == 0 ? PublicPost(events, id, 2'000'000, 0)
                         : PublicPost(events, id, 50, 1 + (id * 7919 + n) % kPosts)}}));
        if (w != 0) return std::nullopt;
        const absl::Time acked = absl::Now();
        for (const absl::Time until = acked + absl::Seconds(10); absl::Now() < until;) {
          IHS_ASSIGN_OR_RETURN(projections::StateView view, run.runner.View(sg::kName));
          capnp::MallocMessageBuilder m;
          if (sg::ReadPartySegments(view, stream, 0, m).ok() &&
              m.getRoot<schema::PartySegments>().getSegments().size() > 0) {
            return absl::ToDoubleMilliseconds(absl::Now() - acked);
          }
          absl::SleepFor(absl::Microseconds(200));
        }
        return absl::DeadlineExceededError("the alert did not come");
      },
      [&](store::EventStore& store) -> absl::Status {
        sg::DefineRequest d;
        d.name = "loud";
        d.rule = "community reach >= 1000000";
        d.requested_by = "bench";
        IHS_RETURN_IF_ERROR(sg::AppendDefinition(store, d).status());
        return PostOriginals(store, events, kPosts);
      },
      /*bands=*/true);
}
BENCHMARK(BM_CommunityAlertLag)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// Per-event cost against the number of persons: a store of P persons, each with one original
// post, and each a carrier of one other's (a graph of P streams), caught up; then `count` shares
// by distinct persons of random posts, applied by CatchUp in batches of at most `batch` events;
// items/s, and `ratio` against reading the same events from the log.
// - BM_CommunityPerEventDistinct: 5,000 shares in one batch. A small graph's shares reach many
//   of the same records within the batch, which are read and written once for all of them.
// - BM_CommunityPerEventAlone: 2,000 shares, each applied and committed in a batch of its own,
//   as a live worker does when events come one at a time: each pays for all it reads and writes.
void CommunityPerEvent(benchmark::State& state, uint64_t count, size_t batch) {
  namespace cm = projections::community;
  const uint64_t persons = static_cast<uint64_t>(state.range(0));
  const uint64_t kCount = count;
  for (auto _ : state) {
    state.PauseTiming();
    ihs::testing::TempDir dir;
    auto st = OpenScratch(dir);
    if (!st.ok()) return state.SkipWithError("open");
    ihs::testing::EventFactory events;
    std::mt19937_64 rng(persons);
    // Posts 1..P (person p posts id p), then shares P+1..2P (person p shares a random post).
    auto load = [&](uint64_t from, uint64_t to, const std::function<uint64_t(uint64_t)>& person,
                    const std::function<uint64_t(uint64_t)>& cause) -> absl::Status {
      for (uint64_t id = from; id < to;) {
        std::vector<store::StreamAppend> batch;
        std::map<uint64_t, std::vector<schema::Event::Reader>> by_person;
        for (uint64_t n = 0; id < to && n < 5000; ++id, ++n) {
          by_person[person(id)].push_back(PublicPost(events, id, 100, cause(id)));
        }
        for (auto& [p, evs] : by_person) {
          batch.push_back({absl::StrCat("c-", p), store::ExpectedVersion::Any(), evs});
        }
        IHS_RETURN_IF_ERROR((*st)->AppendMulti(batch).status());
      }
      return absl::OkStatus();
    };
    if (!load(
             1, persons + 1, [](uint64_t id) { return id; }, [](uint64_t) { return 0; })
             .ok() ||
        !load(
             persons + 1, 2 * persons + 1, [&](uint64_t id) { return id - persons; },
             [&](uint64_t) { return 1 + rng() % persons; })
             .ok()) {
      return state.SkipWithError("load");
    }
    {
      auto caught = projections::Runner::Open(st->get(), projections::AllProjections());
      if (!caught.ok() || !(*caught)->CatchUp(cm::kName).ok()) {
        return state.SkipWithError("catch up");
      }
    }
    projections::RunnerOptions options;
    options.rebuild_batch_events = batch;
    auto r = projections::Runner::Open(st->get(), projections::AllProjections(), options);
    if (!r.ok()) return state.SkipWithError("open");
    std::vector<uint64_t> order(persons);
    std::iota(order.begin(), order.end(), 1);
    std::shuffle(order.begin(), order.end(), rng);
    const uint64_t before = (*st)->Head();
    if (!load(
             2 * persons + 1, 2 * persons + 1 + kCount,
             [&](uint64_t id) { return order[id - 2 * persons - 1]; },
             [&](uint64_t) { return 1 + rng() % persons; })
             .ok()) {
      return state.SkipWithError("load");
    }
    if (!MeasureCatchUp(state, **st, **r, cm::kName, before, kCount)) return;
  }
}

void BM_CommunityRebuild(benchmark::State& state) { Rebuild(state, projections::community::kName); }
BENCHMARK(BM_CommunityRebuild)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// `top 100` of the caught-up community state (by reach, and by standing); then a card of the
// persons it lists (their figures, ranks and evidence).
void CommunityRead(benchmark::State& state, bool cards) {
  namespace cm = projections::community;
  Open& o = TheDataset();
  if (!o.runner->CatchUp(cm::kName).ok()) return state.SkipWithError("catch up");
  auto view = o.runner->View(cm::kName);
  if (!view.ok()) return state.SkipWithError("view");
  std::vector<std::string> persons;
  {
    capnp::MallocMessageBuilder m;
    if (!cm::ReadTop(*view, 100, cm::TopBy::kReach, m).ok()) return state.SkipWithError("top");
    for (auto e : m.getRoot<schema::CommunityTop>().getEntries()) {
      persons.emplace_back(e.getPerson().cStr());
    }
  }
  if (persons.empty()) return state.SkipWithError("nobody has reach");
  std::vector<double> us;
  size_t i = 0;
  for (auto _ : state) {
    const absl::Time t0 = absl::Now();
    capnp::MallocMessageBuilder m;
    absl::Status s =
        cards ? cm::ReadCard(*view, persons[i++ % persons.size()], 0, m)
              : cm::ReadTop(*view, 100, i++ % 2 ? cm::TopBy::kStanding : cm::TopBy::kReach, m);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    if (!s.ok()) return state.SkipWithError(std::string(s.message()).c_str());
  }
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
  state.SetLabel(o.name);
}
void BM_CommunityTop100(benchmark::State& state) { CommunityRead(state, false); }
BENCHMARK(BM_CommunityTop100)->Unit(benchmark::kMicrosecond);
void BM_CommunityCardOfTop100(benchmark::State& state) { CommunityRead(state, true); }
BENCHMARK(BM_CommunityCardOfTop100)->Unit(benchmark::kMicrosecond);
void BM_CommunityPerEventDistinct(benchmark::State& state) { CommunityPerEvent(state, 5000, 5000); }
BENCHMARK(BM_CommunityPerEventDistinct)->Apply(PartySizes);
void BM_CommunityPerEventAlone(benchmark::State& state) { CommunityPerEvent(state, 2000, 1); }
BENCHMARK(BM_CommunityPerEventAlone)->Apply(PartySizes);

}  // namespace
}  // namespace ihs::bench

BENCHMARK_MAIN();
