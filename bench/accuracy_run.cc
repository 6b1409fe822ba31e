#include "bench/accuracy_run.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "workload/generator.h"
#include "workload/load.h"

namespace ihs::bench {

void AddAccuracyFlags(CLI::App& app, AccuracyFlags& flags) {
  app.add_option("--seeds", flags.seeds, "comma-separated seeds");
  app.add_option("--parties", flags.sizes, "comma-separated history sizes");
  app.add_option("--days", flags.days, "days of history")->check(CLI::Range(1, 3650));
  app.add_flag("--json", flags.json, "one JSON object per result");
}

absl::StatusOr<GeneratedRun> GenerateAndRebuild(uint64_t seed, uint64_t parties, int days,
                                                const std::string& dir, const std::string& name,
                                                projections::ProjectionFactory factory,
                                                std::unique_ptr<projections::Runner>* runner) {
  std::filesystem::remove_all(dir);
  GeneratedRun run;
  run.seed = seed;
  run.parties = parties;
  workload::Config c;
  c.seed = seed;
  c.parties = parties;
  c.days = days;
  workload::Generator g(c);
  run.clock = std::make_unique<FakeClock>(absl::FromUnixMicros(c.start));
  store::Options o;
  o.path = dir;
  o.sync = false;
  o.clock = run.clock.get();
  auto store = store::EventStore::Open(o);
  if (!store.ok()) return store.status();
  run.store = std::move(*store);
  if (auto load = workload::LoadIntoStore(g, *run.store, nullptr, run.clock.get()); !load.ok()) {
    return load.status();
  }
  std::stringstream truth_text;
  g.WriteTruth(truth_text);
  run.truth = nlohmann::json::parse(truth_text.str());
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, run.truth["as_of"].get<std::string>(), &run.end,
                       &error)) {
    return absl::InternalError(error);
  }
  run.events = run.store->Head();
  // The truth is as of the history's end, which may lie past the last arrival: the log's clock
  // reads that moment, so that a rebuild fires every timer due before it (a window sliding
  // past, a deadline passing) as a live ihsd would by then.
  if (run.end > run.clock->Now()) run.clock->Set(run.end);

  // The ceiling: the whole log read with content sealed, as the projections read it.
  absl::Time t0 = absl::Now();
  store::ReadOptions ro;
  ro.open_content = false;
  for (uint64_t pos = 0; pos < run.events;) {
    auto events = run.store->ReadAll(pos, 16384, ro);
    if (!events.ok()) return events.status();
    pos += events->size();
  }
  run.read_s = absl::ToDoubleSeconds(absl::Now() - t0);

  auto r = projections::Runner::Open(run.store.get(), {std::move(factory)});
  if (!r.ok()) return r.status();
  t0 = absl::Now();
  if (absl::Status s = (*r)->Rebuild(name); !s.ok()) return s;
  run.build_s = absl::ToDoubleSeconds(absl::Now() - t0);
  *runner = std::move(*r);
  return run;
}

int ForEachRun(const std::string& what, const std::string& sizes, const std::string& seeds,
               const std::function<absl::StatusOr<int>(uint64_t parties, uint64_t seed,
                                                       const std::string& dir)>& measure) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat(what, "-", getpid())).string();
  int rc = 0;
  for (absl::string_view p : absl::StrSplit(sizes, ',')) {
    for (absl::string_view sd : absl::StrSplit(seeds, ',')) {
      uint64_t parties = 0, seed = 0;
      if (!absl::SimpleAtoi(p, &parties) || !absl::SimpleAtoi(sd, &seed)) {
        std::fprintf(stderr, "%s: bad number in --seeds or --parties\n", what.c_str());
        return 2;
      }
      absl::StatusOr<int> r = measure(parties, seed, dir);
      std::filesystem::remove_all(dir);
      if (!r.ok()) {
        std::fprintf(stderr, "%s: %s\n", what.c_str(), std::string(r.status().message()).c_str());
        return 1;
      }
      rc = std::max(rc, *r);
      std::fflush(stdout);
    }
  }
  return rc;
}

}  // namespace ihs::bench
