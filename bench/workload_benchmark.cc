// Benchmarks of the workload generator and of reading the benchmark datasets (bench/dataset.h).
//   BM_Generate                 the generator alone: events materialised, not written
//   BM_GenerateAndAppend        generator + durable AppendMulti batches into a fresh store, the
//                               same pipeline as `ihs generate --data`
//   BM_AppendPrebuilt           the same events appended, generated beforehand: the store's
//                               share of the pipeline (ceiling for BM_GenerateAndAppend)
//   BM_ReadAll/<dataset>        the global log read from position 0 through EventStore::ReadAll
// Run in a release build; the 1M dataset is built on first use and cached (IHS_BENCH_CACHE).
#include <benchmark/benchmark.h>
#include <capnp/message.h>
#include <capnp/orphan.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/dataset.h"
#include "store/event_store.h"
#include "workload/generator.h"
#include "workload/load.h"

namespace ihs::bench {
namespace {

workload::Config GeneratorConfig(uint64_t events) {
  workload::Config c = DescribeDataset(DatasetSize::k1M).config;
  c.max_events = events;
  return c;
}

std::string FreshDir(const std::string& name) {
  const std::string dir = absl::StrCat(std::filesystem::temp_directory_path().string(),
                                       "/ihs-bench-", name, "-", ::getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

void BM_Generate(benchmark::State& state) {
  const uint64_t events = static_cast<uint64_t>(state.range(0));
  for (auto _ : state) {
    workload::Generator g(GeneratorConfig(events));
    uint64_t n = 0;
    for (;;) {
      capnp::MallocMessageBuilder m(256);
      if (!g.Next(m.initRoot<schema::Event>())) break;
      ++n;
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * events);
  state.SetLabel(DescribeDataset(DatasetSize::k1M).name + " parameters");
}
BENCHMARK(BM_Generate)->Arg(300'000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_GenerateAndAppend(benchmark::State& state) {
  const uint64_t events = static_cast<uint64_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    const std::string dir = FreshDir("gen");
    store::Options o;
    o.path = dir;
    auto st = store::EventStore::Open(o);
    workload::Generator g(GeneratorConfig(events));
    state.ResumeTiming();
    auto report = workload::LoadIntoStore(g, **st);
    if (!report.ok()) state.SkipWithError(std::string(report.status().message()).c_str());
    state.PauseTiming();
    st->reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * events);
}
BENCHMARK(BM_GenerateAndAppend)
    ->Arg(300'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

// The same batches, generated before the clock starts: what the store alone takes.
struct Prebuilt {
  std::unique_ptr<capnp::MallocMessageBuilder> arena =
      std::make_unique<capnp::MallocMessageBuilder>(8192);
  std::vector<capnp::Orphan<schema::Event>> events;  // keep the readers below alive
  std::vector<store::StreamAppend> appends;
};

void BM_AppendPrebuilt(benchmark::State& state) {
  const uint64_t events = static_cast<uint64_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    const std::string dir = FreshDir("pre");
    store::Options o;
    o.path = dir;
    auto st = store::EventStore::Open(o);
    workload::Generator g(GeneratorConfig(events));
    std::vector<Prebuilt> batches;
    for (bool more = true; more;) {
      Prebuilt& b = batches.emplace_back();
      auto orphanage = b.arena->getOrphanage();
      std::vector<schema::Event::Reader> readers;
      while (readers.size() < workload::kLoadBatch) {
        auto orphan = orphanage.newOrphan<schema::Event>();
        if (!g.Next(orphan.get())) {
          more = false;
          break;
        }
        readers.push_back(orphan.getReader());
        b.events.push_back(std::move(orphan));
      }
      b.appends = workload::GroupByStream(readers);
    }
    state.ResumeTiming();
    for (const auto& b : batches) {
      if (b.appends.empty()) continue;
      auto r = (*st)->AppendMulti(b.appends);
      if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    }
    state.PauseTiming();
    st->reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * events);
}
BENCHMARK(BM_AppendPrebuilt)
    ->Arg(300'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

void BM_ReadAll(benchmark::State& state) {
  auto dataset = EnsureDataset(DatasetSize::k1M);
  if (!dataset.ok()) {
    state.SkipWithError(std::string(dataset.status().message()).c_str());
    return;
  }
  store::Options o;
  o.path = dataset->path;
  o.read_only = true;
  auto st = store::EventStore::Open(o);
  if (!st.ok()) {
    state.SkipWithError(std::string(st.status().message()).c_str());
    return;
  }
  store::ReadOptions ro;
  ro.open_content = state.range(0) != 0;
  uint64_t n = 0;
  for (auto _ : state) {
    for (uint64_t pos = 0;;) {
      auto batch = (*st)->ReadAll(pos, 10000, ro);
      if (!batch.ok() || batch->empty()) break;
      pos += batch->size();
      n += batch->size();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.SetLabel(dataset->name);
}
BENCHMARK(BM_ReadAll)
    ->ArgName("open_content")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

}  // namespace
}  // namespace ihs::bench

BENCHMARK_MAIN();
