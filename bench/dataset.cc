#include "bench/dataset.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "store/backup.h"
#include "store/event_store.h"
#include "workload/load.h"
#include "workload/model.h"

namespace ihs::bench {

std::vector<std::pair<std::string, std::string>> BenchSegments() {
  const char* filters[] = {"type = complaint",
                           "type in [message, request]",
                           "direction = public and original",
                           "channel in [email, twitter]",
                           "type = purchase",
                           "sentiment > 0.3",
                           "type = campaignOpened",
                           "topic in [billing, delivery]",
                           "channel = fax and type = complaint",
                           "not direction = outbound"};
  const char* windows[] = {"1h", "2d", "7d", "30d", "90d"};
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* f : filters) {
    for (const char* w : windows) {
      const size_t n = out.size();
      if (n == 45) break;
      std::string rule;
      switch (n % 3) {
        case 0:
          rule = absl::StrCat("count(", f, ", last ", w, ") >= 2");
          break;
        case 1:
          rule = absl::StrCat("any(", f, ") and none(", f, ", last ", w, ")");
          break;
        default:
          rule = absl::StrCat("unanswered(", f, ", over ", w, ") or consent(newsletter)");
      }
      out.emplace_back(absl::StrCat("s", n), rule);
    }
  }
  out.emplace_back("s45", "kind = customer and segment(s0)");
  out.emplace_back("s46", "segment(s1) or segment(s2)");
  out.emplace_back("s47", "cohort in [1980s, 1990s] and not segment(s3)");
  out.emplace_back("s48", "sum(sentiment, last 30d) < -1");
  out.emplace_back("probe", "any(channel = fax and type = complaint)");
  return out;
}

Dataset DescribeDataset(DatasetSize size) {
  Dataset d;
  d.config.seed = 42;
  d.config.days = 365;
  d.config.extra_segments = BenchSegments();
  const char* suffix = "1M";
  switch (size) {
    // About 108 events per party-year: enough parties that the cap is reached near the end.
    case DatasetSize::k1M:
      d.config.parties = 10'000;
      d.config.max_events = 1'000'000;
      break;
    case DatasetSize::k10M:
      d.config.parties = 100'000;
      d.config.max_events = 10'000'000;
      suffix = "10M";
      break;
    case DatasetSize::kStreams1M:
      d.config.parties = 1'700'000;  // a week sees about 60% of them
      d.config.days = 7;
      suffix = "1Mstreams";
      break;
  }
  d.name = absl::StrCat("gen", workload::kGeneratorVersion, "-seed", d.config.seed, "-", suffix,
                        "-arrival-seg50");
  const char* cache = std::getenv("IHS_BENCH_CACHE");
  const char* home = std::getenv("HOME");
  const std::string root = cache != nullptr  ? cache
                           : home != nullptr ? absl::StrCat(home, "/.cache/ihs-bench")
                                             : "/tmp/ihs-bench";
  d.path = absl::StrCat(root, "/", d.name);
  return d;
}

absl::StatusOr<Dataset> EnsureDataset(DatasetSize size) {
  Dataset d = DescribeDataset(size);
  const std::string complete = d.path + "/COMPLETE";
  if (std::filesystem::exists(complete)) return d;
  std::error_code ec;
  std::filesystem::create_directories(d.path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", d.path, ": ", ec.message()));
  std::fprintf(stderr, "building dataset %s in %s (once; cached)\n", d.name.c_str(),
               d.path.c_str());
  FakeClock arrival(absl::FromUnixMicros(d.config.start));
  store::Options o;
  o.path = d.path;
  o.clock = &arrival;
  auto st = store::EventStore::Open(o);
  if (!st.ok()) return st.status();
  workload::Generator generator(d.config);
  uint64_t next_report = 0;
  auto report = workload::LoadIntoStore(
      generator, **st,
      [&](uint64_t events, double) {
        if (events >= next_report) {
          std::fprintf(stderr, "  %llu events\n", static_cast<unsigned long long>(events));
          next_report += 1'000'000;
        }
      },
      &arrival);
  if (!report.ok()) return report.status();
  std::fprintf(stderr, "  built %llu events in %.1f s\n",
               static_cast<unsigned long long>(report->present + report->appended),
               absl::ToDoubleSeconds(report->elapsed));
  std::ofstream(complete) << d.name << "\n";
  return d;
}

absl::StatusOr<Dataset> EnsureDatasetFromEnv() {
  const char* choice = std::getenv("IHS_BENCH_DATASET");
  const std::string name = choice == nullptr ? "1M" : choice;
  if (name == "1M") return EnsureDataset(DatasetSize::k1M);
  if (name == "10M") return EnsureDataset(DatasetSize::k10M);
  if (name == "1Mstreams") return EnsureDataset(DatasetSize::kStreams1M);
  return absl::InvalidArgumentError(
      absl::StrCat("IHS_BENCH_DATASET must be 1M, 10M or 1Mstreams, not ", name));
}

absl::StatusOr<uint64_t> ReadWholeLog(store::EventStore& store,
                                      const std::function<void(const store::StoredEvent&)>& each) {
  const uint64_t head = store.Head();
  store::ReadOptions ro;
  ro.open_content = false;
  uint64_t p = 0;
  while (p < head) {
    absl::StatusOr<std::vector<store::StoredEvent>> batch = store.ReadAll(p, 16384, ro);
    if (!batch.ok()) return batch.status();
    if (batch->empty()) break;
    if (each) {
      for (const store::StoredEvent& e : *batch) each(e);
    }
    p += batch->size();
  }
  return p;
}

absl::Status SettleFiles(store::EventStore& store, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (true) {
    IHS_ASSIGN_OR_RETURN(uint64_t work, store::BackgroundWork(store));
    if (work == 0) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the store's compactions did not settle in ", absl::FormatDuration(limit)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace ihs::bench
