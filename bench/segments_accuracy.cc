// The segments' accuracy against the generator's ground truth, and what the projection costs:
// for each seed and size, a history is generated into a fresh store at its simulated arrival
// times, the segments projection is built from zero next to a raw ReadAll of the same log (the
// ceiling, in the same run), and the members of the truth's five segments as of the history's
// end are compared with the truth's (precision and recall per segment). Prints a table (and
// JSON lines with --json). Bounded by the sizes given.
//
//   build/bin/segments_accuracy [--seeds 1,2,3] [--parties 2000,20000] [--days 120] [--json]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "projections/runner.h"
#include "projections/segments/segments.h"
#include "store/event_store.h"
#include "workload/generator.h"
#include "workload/load.h"
#include "workload/model.h"

namespace ihs::bench {
namespace {

struct Score {
  std::string segment;
  uint64_t truth = 0, got = 0, both = 0;
  double precision() const { return got == 0 ? 1 : static_cast<double>(both) / got; }
  double recall() const { return truth == 0 ? 1 : static_cast<double>(both) / truth; }
};

struct Run {
  uint64_t seed = 0, parties = 0, events = 0;
  double read_s = 0, build_s = 0;
  std::vector<Score> scores;
};

absl::StatusOr<Run> Measure(uint64_t seed, uint64_t parties, int days, const std::string& dir) {
  std::filesystem::remove_all(dir);
  Run run;
  run.seed = seed;
  run.parties = parties;
  workload::Config c;
  c.seed = seed;
  c.parties = parties;
  c.days = days;
  workload::Generator g(c);
  FakeClock arrival(absl::FromUnixMicros(c.start));
  store::Options o;
  o.path = dir;
  o.sync = false;
  o.clock = &arrival;
  auto store = store::EventStore::Open(o);
  if (!store.ok()) return store.status();
  if (auto load = workload::LoadIntoStore(g, **store, nullptr, &arrival); !load.ok()) {
    return load.status();
  }
  std::stringstream truth_text;
  g.WriteTruth(truth_text);
  const nlohmann::json truth = nlohmann::json::parse(truth_text.str());
  absl::Time end;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, truth["as_of"].get<std::string>(), &end, &error)) {
    return absl::InternalError(error);
  }
  run.events = (*store)->Head();
  // The truth is as of the history's end, which may lie past the last arrival: the log's clock
  // reads that moment, so that the rebuild fires every timer due before it (a window sliding
  // past, a deadline passing) as a live ihsd would by then.
  if (end > arrival.Now()) arrival.Set(end);

  // The ceiling: the whole log read with content sealed, as the projection reads it.
  absl::Time t0 = absl::Now();
  store::ReadOptions ro;
  ro.open_content = false;
  for (uint64_t pos = 0; pos < run.events;) {
    auto events = (*store)->ReadAll(pos, 16384, ro);
    if (!events.ok()) return events.status();
    pos += events->size();
  }
  run.read_s = absl::ToDoubleSeconds(absl::Now() - t0);

  auto runner = projections::Runner::Open(
      store->get(), {[] { return projections::segments::NewSegmentsProjection(); }});
  if (!runner.ok()) return runner.status();
  t0 = absl::Now();
  if (absl::Status s = (*runner)->Rebuild(projections::segments::kName); !s.ok()) return s;
  run.build_s = absl::ToDoubleSeconds(absl::Now() - t0);
  auto view = (*runner)->View(projections::segments::kName);
  if (!view.ok()) return view.status();

  for (const workload::TruthSegment& t : workload::kTruthSegments) {
    Score score;
    score.segment = t.name;
    std::set<std::string> want;
    for (const auto& id : truth["segments"][t.name]) want.insert(id.get<std::string>());
    score.truth = want.size();
    for (std::string after;;) {
      capnp::MallocMessageBuilder m;
      absl::Status s = projections::segments::ReadMembers(*view, t.name, absl::ToUnixMicros(end),
                                                          after, 10000, m);
      if (!s.ok()) return s;
      auto page = m.getRoot<schema::MemberPage>();
      for (auto member : page.getMembers()) {
        ++score.got;
        score.both += want.count(member.getPerson().cStr());
        after = member.getPerson().cStr();
      }
      if (!page.getMore()) break;
    }
    run.scores.push_back(score);
  }
  return run;
}

int Main(int argc, char** argv) {
  CLI::App app("the segments against the generator's ground truth");
  std::string seeds = "1,2,3", sizes = "2000,20000";
  int days = 120;
  bool json = false;
  app.add_option("--seeds", seeds, "comma-separated seeds");
  app.add_option("--parties", sizes, "comma-separated history sizes");
  app.add_option("--days", days, "days of history")->check(CLI::Range(1, 3650));
  app.add_flag("--json", json, "one JSON object per run and segment");
  CLI11_PARSE(app, argc, argv);
  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("segments-accuracy-", getpid()))
          .string();
  if (!json) {
    std::printf("%-5s %-8s %-9s %-18s %8s %8s %9s %7s %8s %8s\n", "seed", "parties", "events",
                "segment", "truth", "members", "precision", "recall", "build/s", "read %");
  }
  int rc = 0;
  for (absl::string_view p : absl::StrSplit(sizes, ',')) {
    for (absl::string_view sd : absl::StrSplit(seeds, ',')) {
      uint64_t parties = 0, seed = 0;
      if (!absl::SimpleAtoi(p, &parties) || !absl::SimpleAtoi(sd, &seed)) {
        std::fprintf(stderr, "segments_accuracy: bad number in --seeds or --parties\n");
        return 2;
      }
      absl::StatusOr<Run> r = Measure(seed, parties, days, dir);
      std::filesystem::remove_all(dir);
      if (!r.ok()) {
        std::fprintf(stderr, "segments_accuracy: %s\n", std::string(r.status().message()).c_str());
        return 1;
      }
      for (const Score& s : r->scores) {
        if (s.precision() < 1 || s.recall() < 1) rc = 3;
        if (json) {
          nlohmann::json j = {{"seed", seed},
                              {"parties", parties},
                              {"events", r->events},
                              {"segment", s.segment},
                              {"truth", s.truth},
                              {"members", s.got},
                              {"precision", s.precision()},
                              {"recall", s.recall()},
                              {"build_s", r->build_s},
                              {"read_s", r->read_s}};
          std::printf("%s\n", j.dump().c_str());
        } else {
          std::printf("%-5lu %-8lu %-9lu %-18s %8lu %8lu %9.4f %7.4f %8.1f %7.0f%%\n", seed,
                      parties, r->events, s.segment.c_str(), s.truth, s.got, s.precision(),
                      s.recall(), r->build_s, 100 * r->read_s / r->build_s);
        }
      }
      std::fflush(stdout);
    }
  }
  return rc;
}

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) { return ihs::bench::Main(argc, argv); }
