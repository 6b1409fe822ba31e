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
#include "bench/accuracy_run.h"
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

// The members of the truth's five segments as of the history's end against the truth's.
absl::StatusOr<std::vector<Score>> Compare(const GeneratedRun& run,
                                           const projections::StateView& view) {
  std::vector<Score> scores;
  for (const workload::TruthSegment& t : workload::kTruthSegments) {
    Score score;
    score.segment = t.name;
    std::set<std::string> want;
    for (const auto& id : run.truth["segments"][t.name]) want.insert(id.get<std::string>());
    score.truth = want.size();
    for (std::string after;;) {
      capnp::MallocMessageBuilder m;
      absl::Status s = projections::segments::ReadMembers(view, t.name, absl::ToUnixMicros(run.end),
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
    scores.push_back(score);
  }
  return scores;
}

int Main(int argc, char** argv) {
  CLI::App app("the segments against the generator's ground truth");
  AccuracyFlags flags;
  AddAccuracyFlags(app, flags);
  CLI11_PARSE(app, argc, argv);
  const bool json = flags.json;
  const int days = flags.days;
  if (!json) {
    std::printf("%-5s %-8s %-9s %-18s %8s %8s %9s %7s %8s %8s\n", "seed", "parties", "events",
                "segment", "truth", "members", "precision", "recall", "build/s", "read %");
  }
  return ForEachRun(
      "segments_accuracy", flags.sizes, flags.seeds,
      [&](uint64_t parties, uint64_t seed, const std::string& dir) -> absl::StatusOr<int> {
        std::unique_ptr<projections::Runner> runner;
        absl::StatusOr<GeneratedRun> r = GenerateAndRebuild(
            seed, parties, days, dir, projections::segments::kName,
            [] { return projections::segments::NewSegmentsProjection(); }, &runner);
        if (!r.ok()) return r.status();
        auto view = runner->View(projections::segments::kName);
        if (!view.ok()) return view.status();
        absl::StatusOr<std::vector<Score>> scores = Compare(*r, *view);
        if (!scores.ok()) return scores.status();
        int rc = 0;
        for (const Score& s : *scores) {
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
        return rc;
      });
}

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) { return ihs::bench::Main(argc, argv); }
