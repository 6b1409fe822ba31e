// What the benchmarks over a cached dataset share (bench/dataset.h): the dataset the environment
// names, opened once per process, and the ceiling they are measured against.
#ifndef IHS_BENCH_DATASET_BENCHMARK_H_
#define IHS_BENCH_DATASET_BENCHMARK_H_

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench/dataset.h"
#include "store/event_store.h"

namespace ihs::bench {

struct OpenDataset {
  std::unique_ptr<store::EventStore> store;  // open for writing (a signing key if it had none)
  std::string name;                          // for RESULTS.md, e.g. "gen2-seed42-10M"
};

// The dataset of IHS_BENCH_DATASET, built if the cache lacks it, opened on first use; exits
// with a message if it cannot be.
inline OpenDataset& TheOpenDataset() {
  static OpenDataset* o = [] {
    auto fail = [](const absl::Status& status) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      std::exit(2);
    };
    absl::StatusOr<Dataset> d = EnsureDatasetFromEnv();
    if (!d.ok()) fail(d.status());
    store::Options so;
    so.path = d->path;
    absl::StatusOr<std::unique_ptr<store::EventStore>> s = store::EventStore::Open(so);
    if (!s.ok()) fail(s.status());
    return new OpenDataset{std::move(*s), d->name};
  }();
  return *o;
}

// The ceiling: the whole log read through the store, content sealed (ReadWholeLog).
inline void ReadAllSealedCeiling(benchmark::State& state) {
  OpenDataset& o = TheOpenDataset();
  uint64_t read = 0;
  for (auto _ : state) {
    absl::StatusOr<uint64_t> n = ReadWholeLog(*o.store);
    if (!n.ok()) state.SkipWithError(std::string(n.status().message()).c_str());
    read += n.value_or(0);
  }
  state.SetItemsProcessed(static_cast<int64_t>(read));
  state.SetLabel(o.name);
}

}  // namespace ihs::bench

#endif  // IHS_BENCH_DATASET_BENCHMARK_H_
