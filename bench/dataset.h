// The benchmark datasets: stores of 1M and 10M generated events, built once and cached between
// runs, keyed by generator version, seed and size, so that every benchmark measures the same
// data and each figure in bench/RESULTS.md can name it.
//
// Cache: $IHS_BENCH_CACHE, else $HOME/.cache/ihs-bench. A dataset is complete when its
// directory holds the file COMPLETE; an interrupted build resumes (LoadIntoStore).
#ifndef IHS_BENCH_DATASET_H_
#define IHS_BENCH_DATASET_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/event_store.h"
#include "workload/generator.h"

namespace ihs::bench {

struct Dataset {
  std::string name;  // "gen4-seed42-1M": what RESULTS.md names
  std::string path;  // the data directory
  workload::Config config;
};

// The 50 segments the benchmarks define (name, rule), of the kinds marketing writes: windows,
// absences, unanswered messages, profile, consent, and segments of segments. The last, "probe",
// takes a party at its first fax complaint.
std::vector<std::pair<std::string, std::string>> BenchSegments();

// k1M and k10M: a year of 10k and 100k parties, capped at 1M and 10M events. kStreams1M: a
// week of 1.7M parties, about 1M of them seen (1M streams, about 4.6M events), for what grows
// with the people.
enum class DatasetSize { k1M, k10M, kStreams1M };

// The dataset's config (parties, days, seed, event cap, BenchSegments defined at the start) and
// name. Events are recorded at the simulated moments they arrive (workload::LoadIntoStore), so
// that windows slide through the history as they would have.
Dataset DescribeDataset(DatasetSize size);

// Returns the dataset, building it first if the cache does not hold it (progress on stderr).
absl::StatusOr<Dataset> EnsureDataset(DatasetSize size);

// EnsureDataset of the size IHS_BENCH_DATASET names: 1M (the default), 10M or 1Mstreams;
// kInvalidArgument for anything else.
absl::StatusOr<Dataset> EnsureDatasetFromEnv();

// The ceiling of the benchmarks that walk the log: every event read through the store from
// position 0, content sealed, in batches of 16,384, as the projection runner and the
// verification read it. `each` (optional) sees every event. Returns how many were read.
absl::StatusOr<uint64_t> ReadWholeLog(
    store::EventStore& store, const std::function<void(const store::StoredEvent&)>& each = nullptr);

// Waits until RocksDB's flushes and compactions of the store are done (store::BackgroundWork),
// at most `limit`: a benchmark that has just loaded a store measures after this, not beside the
// load's compactions. kDeadlineExceeded past the limit.
absl::Status SettleFiles(store::EventStore& store, absl::Duration limit = absl::Minutes(5));

}  // namespace ihs::bench

#endif  // IHS_BENCH_DATASET_H_
