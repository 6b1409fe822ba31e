// What the accuracy benchmarks (segments_accuracy, community_accuracy) share: a generated history
// in a fresh store at its simulated arrival times, its ground truth, and the ceiling a rebuild is
// measured against in the same run (a raw ReadAll of the log, content sealed).
#ifndef IHS_BENCH_ACCURACY_RUN_H_
#define IHS_BENCH_ACCURACY_RUN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"
#include "projections/runner.h"
#include "store/event_store.h"

namespace CLI {
class App;
}

namespace ihs::bench {

// The flags every accuracy benchmark takes.
struct AccuracyFlags {
  std::string seeds = "1,2,3", sizes = "2000,20000";
  int days = 120;
  bool json = false;
};
void AddAccuracyFlags(CLI::App& app, AccuracyFlags& flags);

struct GeneratedRun {
  uint64_t seed = 0, parties = 0, events = 0;
  std::unique_ptr<FakeClock> clock;  // the store's: at the truth's end once loaded
  std::unique_ptr<store::EventStore> store;
  nlohmann::json truth;
  absl::Time end;      // the truth's as_of
  double read_s = 0;   // the whole log read with ReadAll
  double build_s = 0;  // the projection rebuilt (Rebuild)
};

// Generates the history of `seed`, `parties` and `days` into a fresh store at `dir` (removed
// first), reads it whole once (read_s), and rebuilds projection `name` of `factory` (build_s);
// `runner` gets the runner, for reads.
absl::StatusOr<GeneratedRun> GenerateAndRebuild(uint64_t seed, uint64_t parties, int days,
                                                const std::string& dir, const std::string& name,
                                                projections::ProjectionFactory factory,
                                                std::unique_ptr<projections::Runner>* runner);

// Runs `measure` for every size and seed of the comma-separated lists (sizes outer), with a
// fresh directory each time; 2 on a bad number, 1 on an error (printed with `what`), else the
// largest code `measure` returned.
int ForEachRun(const std::string& what, const std::string& sizes, const std::string& seeds,
               const std::function<absl::StatusOr<int>(uint64_t parties, uint64_t seed,
                                                       const std::string& dir)>& measure);

}  // namespace ihs::bench

#endif  // IHS_BENCH_ACCURACY_RUN_H_
