// ihs generate: a realistic touchpoint history (docs/workload.md) into a store or a file.
#include <sys/resource.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "schema/json.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"
#include "workload/generator.h"
#include "workload/load.h"
#include "workload/model.h"

namespace ihs::tools {
namespace {

struct GenerateArgs {
  int64_t parties = 0, days = 0, events = 0;
  uint64_t seed = 1;
  std::string out, truth, ends;
  bool force = false;
};

// --ends: a date (YYYY-MM-DD) or "today" (UTC); the history covers the days before its midnight.
absl::StatusOr<int64_t> HistoryStart(const std::string& ends, int64_t days) {
  absl::CivilDay day;
  if (ends == "today") {
    day = absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  } else if (!absl::ParseCivilTime(ends, &day)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--ends \"", ends, "\" is not a date: give YYYY-MM-DD or today"));
  }
  const absl::Time end = absl::FromCivil(day, absl::UTCTimeZone());
  if (end - absl::Hours(24 * days) < absl::UnixEpoch()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--ends ", ends, " with --days ", days, " starts before 1970"));
  }
  return absl::ToUnixMicros(end - absl::Hours(24 * days));
}

uint64_t PeakRssBytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

int Generate(const Common& c, const GenerateArgs& a) {
  // Values are read as signed so that a negative one is named, not wrapped.
  if (a.parties <= 0 || a.days <= 0 || a.events < 0) {
    return Fail(absl::InvalidArgumentError(
        a.parties <= 0 ? absl::StrCat("--parties ", a.parties, " is out of range: give 10 to ",
                                      workload::kMaxParties)
        : a.days <= 0
            ? absl::StrCat("--days ", a.days, " is out of range: give 1 to ", workload::kMaxDays)
            : absl::StrCat("--events ", a.events, " is out of range: give 1 to ",
                           workload::kMaxEvents)));
  }
  workload::Config config;
  config.parties = static_cast<uint64_t>(a.parties);
  config.days = static_cast<uint32_t>(std::min<int64_t>(a.days, UINT32_MAX));
  config.seed = a.seed;
  config.max_events = static_cast<uint64_t>(a.events);
  if (!a.ends.empty()) {
    absl::StatusOr<int64_t> start = HistoryStart(a.ends, a.days);
    if (!start.ok()) return Fail(start.status());
    config.start = *start;
  }
  if (absl::Status s = workload::Validate(config); !s.ok()) return Fail(s);
  if (c.data.empty() == a.out.empty()) {
    return Fail(UsageError("give exactly one of --data DIR and --out FILE"));
  }
  if (!a.out.empty()) {
    if (absl::Status s = CheckOutputPath("--out", a.out, a.force); !s.ok()) return Fail(s);
  }
  if (!a.truth.empty()) {
    if (absl::Status s = CheckOutputPath("--truth", a.truth, a.force); !s.ok()) return Fail(s);
  }

  auto generator = std::make_unique<workload::Generator>(config);
  Progress progress(c.data.empty() ? "generating" : "generating and appending");
  if (c.json) progress.Disable();
  auto on_progress = [&](uint64_t events, double fraction) {
    uint64_t total = config.max_events;
    if (total == 0) {
      total = fraction > 0.01 ? static_cast<uint64_t>(events / fraction) : events + 1;
    }
    progress.Update(events, std::max(total, events));
  };
  absl::StatusOr<workload::LoadReport> report;
  if (!a.out.empty()) {
    report = workload::WriteJsonLines(*generator, a.out, on_progress);
  } else {
    // Recorded at the simulated moments the events arrive: `ihs audit replay --as-of` and the
    // segments' history see the history as it unfolded (docs/workload.md).
    FakeClock arrival(absl::FromUnixMicros(config.start));
    absl::StatusOr<std::unique_ptr<store::EventStore>> st =
        OpenStore(c, true, /*create=*/true, &arrival);
    if (!st.ok()) return FailOpen(st.status());
    report = workload::LoadIntoStore(*generator, **st, on_progress, &arrival);
    if (!report.ok() && report.status().code() == absl::StatusCode::kAlreadyExists && a.force) {
      // --force: the directory held another history; replace the store, its default master key
      // and its signing key (heads of the old history must not verify as the new store's).
      st->reset();
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::path(c.data) / "db", ec);
      if (c.master_key.empty())
        std::filesystem::remove(std::filesystem::path(c.data) / "master.key", ec);
      if (!ec) std::filesystem::remove(std::filesystem::path(c.data) / "signing.key", ec);
      if (ec) {
        return Fail(absl::UnavailableError(
            absl::StrCat("cannot remove the old store in ", c.data, ": ", ec.message())));
      }
      std::cerr << "ihs: --force: replaced the store in " << c.data << "\n";
      st = OpenStore(c, true, /*create=*/true, &arrival);
      if (!st.ok()) return FailOpen(st.status());
      generator = std::make_unique<workload::Generator>(config);
      report = workload::LoadIntoStore(*generator, **st, on_progress, &arrival);
    }
  }
  if (!report.ok()) return Fail(report.status());
  progress.Finish();

  if (!a.truth.empty()) {
    const std::string tmp = a.truth + ".tmp";
    std::ofstream f(tmp, std::ios::trunc);
    generator->WriteTruth(f);
    f.close();
    if (!f || std::rename(tmp.c_str(), a.truth.c_str()) != 0) {
      std::remove(tmp.c_str());
      return Fail(absl::UnavailableError(absl::StrCat("cannot write --truth ", a.truth)));
    }
  }
  const double seconds = absl::ToDoubleSeconds(report->elapsed);
  const double rate = seconds > 0 ? report->appended / seconds : 0;
  const std::string where = a.out.empty() ? c.data : a.out;
  if (c.json) {
    absl::PrintF(
        "{\"events\":%d,\"written\":%d,\"alreadyPresent\":%d,\"seconds\":%.3f,"
        "\"eventsPerSecond\":%.0f,\"peakRssBytes\":%d,\"fingerprint\":\"%016x\",\"to\":%s}\n",
        generator->emitted(), report->appended, report->present, seconds, rate, PeakRssBytes(),
        generator->fingerprint(), schema::JsonQuote(where));
  } else {
    if (report->present > 0 && report->appended == 0) {
      absl::PrintF("%d events of this history were already in %s: all of it, nothing to write\n",
                   report->present, where);
    } else if (report->present > 0) {
      absl::PrintF("%d events of this history were already in %s; resumed after them\n",
                   report->present, where);
    }
    absl::PrintF("generated %d events (seed %d, %d parties, %d days) into %s\n",
                 generator->emitted(), config.seed, config.parties, config.days, where);
    absl::PrintF("wrote %d in %.1f s: %.0f events/s; peak memory %.0f MiB\n", report->appended,
                 seconds, rate, PeakRssBytes() / 1048576.0);
    if (!a.truth.empty()) absl::PrintF("ground truth: %s\n", a.truth);
  }
  return kExitOk;
}

}  // namespace

void RegisterGenerateCommand(Cli& cli) {
  Common& common = cli.common();
  auto gen_args = std::make_shared<GenerateArgs>();
  auto* generate = cli.app().add_subcommand(
      "generate",
      "generate a realistic touchpoint history (docs/workload.md) into a store or file");
  generate->add_option("--data", common.data, "append to the store in this data directory");
  generate->add_option("--master-key", common.master_key,
                       "master key file (default: DATA/master.key)");
  generate->add_option("--out", gen_args->out, "write JSON lines to this file instead");
  generate->add_option("--parties", gen_args->parties, "parties of all kinds (10 to 5,000,000)")
      ->required();
  generate->add_option("--days", gen_args->days, "length of the history (1 to 3650)")->required();
  generate->add_option("--seed", gen_args->seed, "random seed (default 1): same seed, same history")
      ->check(kWholeNumber);
  generate->add_option("--events", gen_args->events, "stop after this many events (default: none)");
  generate->add_option("--ends", gen_args->ends,
                       "the history ends at this date's midnight (UTC): YYYY-MM-DD or today "
                       "(default: it starts 2026-01-05)");
  generate->add_option("--truth", gen_args->truth, "write the ground truth (JSON) to this file");
  generate->add_flag("--force", gen_args->force,
                     "overwrite existing output files, or replace a store holding another history");
  generate->add_flag("--json", common.json, "print the summary as JSON");
  cli.OnRun(generate, [&common, gen_args] { return Generate(common, *gen_args); });
}

}  // namespace ihs::tools
