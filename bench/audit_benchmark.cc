// Benchmarks of what auditors run (docs/audit.md; figures in bench/RESULTS.md):
//   BM_ReadAllSealed/<dataset>  the ceiling: the whole log read through the store, content
//                               sealed (bench/dataset.h, ReadWholeLog)
//   BM_Verify/<dataset>         EventStore::Verify (`ihs verify`): every leaf hash recomputed
//                               from the stored bytes, every stored subtree and index checked
//   BM_InclusionProof           the audit path of a random position in the tree of the whole
//                               log, as ihsd's inclusionProof serves it
//   BM_VerifyParty              store::VerifyParty (`ihs audit verify-party`) of the party whose
//                               event count is nearest above 1,000: every event read and proved
//                               (IHS_BENCH_PARTY=ID names another, and saves the pass that finds
//                               it)
// The dataset is gen4-seed42-1M, or gen4-seed42-10M with IHS_BENCH_DATASET=10M (bench/dataset.h).
// It is opened for writing once, so that a dataset made before signing keys gets one.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "bench/dataset_benchmark.h"
#include "store/audit.h"
#include "store/event_store.h"
#include "store/tlog.h"

namespace ihs::bench {
namespace {

using Open = OpenDataset;
Open& TheDataset() { return TheOpenDataset(); }

void BM_ReadAllSealed(benchmark::State& state) { ReadAllSealedCeiling(state); }
BENCHMARK(BM_ReadAllSealed)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

void BM_Verify(benchmark::State& state) {
  Open& o = TheDataset();
  uint64_t checked = 0;
  for (auto _ : state) {
    absl::StatusOr<store::VerifyReport> r = Verify(*o.store);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    checked += r.ok() ? r->events_checked : 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(checked));
  state.SetLabel(o.name);
}
BENCHMARK(BM_Verify)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

void BM_InclusionProof(benchmark::State& state) {
  Open& o = TheDataset();
  const uint64_t size = o.store->Head();
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    const uint64_t index = rng() % size;
    auto path = InclusionProof(*o.store, index, size);
    if (!path.ok()) state.SkipWithError(std::string(path.status().message()).c_str());
    benchmark::DoNotOptimize(path->data());
  }
  state.SetLabel(o.name);
}
BENCHMARK(BM_InclusionProof)->Unit(benchmark::kMicrosecond);

// The party whose event count is the smallest at or above 1,000 (the busiest if none has that
// many), found by one pass over the log.
std::string PartyNear1000(store::EventStore& store, uint64_t* count) {
  absl::flat_hash_map<std::string, uint64_t> counts;
  absl::StatusOr<uint64_t> n = ReadWholeLog(
      store, [&](const store::StoredEvent& e) { ++counts[e.event().getStreamId().cStr()]; });
  if (!n.ok()) return "";
  std::string best;
  uint64_t best_count = 0;
  for (const auto& [party, c] : counts) {
    const bool both_above = c >= 1000 && best_count >= 1000;
    if (best.empty() || (both_above ? c < best_count : c > best_count) ||
        (c == best_count && party < best)) {
      best = party;
      best_count = c;
    }
  }
  *count = best_count;
  return best;
}

void BM_VerifyParty(benchmark::State& state) {
  Open& o = TheDataset();
  static uint64_t count = 0;
  // IHS_BENCH_PARTY names the party and skips the pass that finds one.
  static const std::string party = [&] {
    const char* named = std::getenv("IHS_BENCH_PARTY");
    if (named == nullptr) return PartyNear1000(*o.store, &count);
    auto info = o.store->GetStreamInfo(named);
    count = info.ok() ? info->event_count : 0;
    return std::string(named);
  }();
  auto signed_head = SignedHead(*o.store);
  auto key = VerifierKey(*o.store);
  tlog::TreeHead head;
  std::string why;
  if (!signed_head.ok() || !key.ok() || !tlog::OpenHead(*signed_head, *key, &head, &why)) {
    state.SkipWithError("no usable head");
    return;
  }
  uint64_t verified = 0;
  for (auto _ : state) {
    auto audit = store::VerifyParty(*o.store, party, head);
    if (!audit.ok()) state.SkipWithError(std::string(audit.status().message()).c_str());
    verified += audit.ok() ? audit->verified : 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(verified));
  state.counters["events"] = static_cast<double>(count);
  state.SetLabel(o.name + " " + party);
}
BENCHMARK(BM_VerifyParty)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ihs::bench

BENCHMARK_MAIN();
