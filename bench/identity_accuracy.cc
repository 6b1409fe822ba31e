// Identity resolution's accuracy against the generator's ground truth, and what it costs: for
// each seed and size, a history is generated into a fresh store, the identity projection is
// built from zero next to a raw ReadAll of the same log (the ceiling, in the same run), the
// resolver runs until nothing is pending, and the persons are scored against the truth
// (workload/identity_score.h). Prints a table (and JSON lines with --json). Bounded by the sizes
// given.
//
//   build/bin/identity_accuracy [--seeds 1,2,3] [--parties 2000,50000] [--days 180] [--json]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "projections/identity/identity.h"
#include "projections/identity/resolver.h"
#include "projections/runner.h"
#include "store/event_store.h"
#include "workload/generator.h"
#include "workload/identity_score.h"
#include "workload/load.h"

namespace ihs::bench {
namespace {

struct Run {
  uint64_t seed = 0, parties = 0;
  uint64_t events = 0;
  double read_s = 0, build_s = 0, resolve_s = 0;
  projections::identity::ResolverReport resolver;
  workload::IdentityScore score;
  uint64_t suggestions = 0;
};

absl::StatusOr<Run> Measure(uint64_t seed, uint64_t parties, int days, const std::string& dir,
                            bool explain) {
  std::filesystem::remove_all(dir);
  Run run;
  run.seed = seed;
  run.parties = parties;
  workload::Config c;
  c.seed = seed;
  c.parties = parties;
  c.days = days;
  workload::Generator g(c);
  store::Options o;
  o.path = dir;
  o.sync = false;
  auto store = store::EventStore::Open(o);
  if (!store.ok()) return store.status();
  auto load = workload::LoadIntoStore(g, **store);
  if (!load.ok()) return load.status();
  std::stringstream truth_text;
  g.WriteTruth(truth_text);
  const nlohmann::json truth = nlohmann::json::parse(truth_text.str());
  run.events = (*store)->Head();

  // The ceiling: the whole log read with content opened, as the projection reads it.
  absl::Time t0 = absl::Now();
  for (uint64_t pos = 0; pos < run.events;) {
    auto events = (*store)->ReadAll(pos, 4096);
    if (!events.ok()) return events.status();
    pos += events->size();
  }
  run.read_s = absl::ToDoubleSeconds(absl::Now() - t0);

  auto runner = projections::Runner::Open(
      store->get(), {[] { return projections::identity::NewIdentityProjection(); }});
  if (!runner.ok()) return runner.status();
  t0 = absl::Now();
  if (absl::Status s = (*runner)->Rebuild(projections::identity::kName); !s.ok()) return s;
  run.build_s = absl::ToDoubleSeconds(absl::Now() - t0);

  projections::identity::Resolver resolver(**store, **runner);
  t0 = absl::Now();
  auto report = resolver.RunUntilSettled();
  if (!report.ok()) return report.status();
  run.resolve_s = absl::ToDoubleSeconds(absl::Now() - t0);
  run.resolver = *report;

  auto view = (*runner)->View(projections::identity::kName);
  if (!view.ok()) return view.status();
  std::vector<std::vector<std::string>> persons;
  absl::Status s = projections::identity::ForEachPerson(*view, [&](schema::Person::Reader p) {
    std::vector<std::string> streams;
    for (auto x : p.getStreams()) streams.emplace_back(x.cStr(), x.size());
    persons.push_back(std::move(streams));
    return true;
  });
  if (!s.ok()) return s;
  run.score = workload::ScoreIdentity(truth, persons);
  if (explain) {
    for (const auto& [a, b] : run.score.missed) {
      capnp::MallocMessageBuilder m;
      std::string clues = "no evidence";
      if (projections::identity::ReadPair(*view, a, b, m).ok()) {
        auto p = m.getRoot<schema::PairScore>();
        clues = absl::StrFormat("score %.2f state %d clues", p.getScore(),
                                static_cast<int>(p.getState()));
        for (auto c : p.getClues()) {
          absl::StrAppend(&clues, " ", static_cast<int>(c.getKind()), "=", c.getWeight());
        }
      }
      std::fprintf(stderr, "missed: %s %s %s\n", a.c_str(), b.c_str(), clues.c_str());
    }
    for (const auto& [a, b] : run.score.wrong) {
      capnp::MallocMessageBuilder m;
      if (projections::identity::ReadPair(*view, a, b, m).ok()) {
        auto p = m.getRoot<schema::PairScore>();
        std::string clues;
        for (auto c : p.getClues()) {
          absl::StrAppend(&clues, " ", static_cast<int>(c.getKind()), "=", c.getWeight());
        }
        std::fprintf(stderr, "wrongly joined: %s %s score %.2f clues%s\n", a.c_str(), b.c_str(),
                     p.getScore(), clues.c_str());
      } else {
        std::fprintf(stderr, "wrongly joined: %s %s (through other links)\n", a.c_str(), b.c_str());
      }
    }
  }
  capnp::MallocMessageBuilder stats;
  if (absl::Status st = projections::identity::ReadStats(*view, stats); !st.ok()) return st;
  run.suggestions = stats.getRoot<schema::IdentityStats>().getSuggestions();
  runner->reset();
  store->reset();
  std::filesystem::remove_all(dir);
  return run;
}

int Main(int argc, char** argv) {
  CLI::App app("identity resolution against the generator's ground truth");
  std::string seeds = "1,2,3", sizes = "2000,50000";
  int days = 180;
  bool json = false, explain = false;
  std::string dir = (std::filesystem::temp_directory_path() / "ihs-identity-accuracy").string();
  app.add_option("--seeds", seeds, "comma-separated seeds");
  app.add_option("--parties", sizes, "comma-separated history sizes");
  app.add_option("--days", days, "days of history")->check(CLI::Range(1, 3650));
  app.add_option("--dir", dir, "scratch directory (deleted)");
  app.add_flag("--json", json, "one JSON object per run");
  app.add_flag("--explain", explain,
               "print the wrongly joined and the missed pairs with their clues (stderr)");
  CLI11_PARSE(app, argc, argv);
  if (!json) {
    std::printf("%-5s %-7s %-9s %-9s %-7s %-7s %-8s %-6s %-6s %-6s %-9s %-8s %-8s %s\n", "seed",
                "parties", "events", "precision", "recall", "ceiling", "rec.evid", "TP", "FP", "FN",
                "traps hit", "build/s", "vs read", "resolve s");
  }
  for (absl::string_view p : absl::StrSplit(sizes, ',')) {
    for (absl::string_view sd : absl::StrSplit(seeds, ',')) {
      uint64_t parties = 0, seed = 0;
      if (!absl::SimpleAtoi(p, &parties) || !absl::SimpleAtoi(sd, &seed)) {
        std::fprintf(stderr, "identity_accuracy: bad number in --seeds or --parties\n");
        return 2;
      }
      absl::StatusOr<Run> r = Measure(seed, parties, days, dir, explain);
      if (!r.ok()) {
        std::fprintf(stderr, "identity_accuracy: %s\n", r.status().ToString().c_str());
        return 1;
      }
      uint64_t trapped = 0, traps = 0;
      for (const auto& [why, n] : r->score.traps_joined) trapped += n;
      for (const auto& [why, n] : r->score.traps) traps += n;
      const double ratio = r->read_s / r->build_s;
      if (json) {
        nlohmann::json j = r->score.ToJson();
        j["seed"] = seed;
        j["parties"] = parties;
        j["days"] = days;
        j["events"] = r->events;
        j["readSeconds"] = r->read_s;
        j["buildSeconds"] = r->build_s;
        j["buildVsRead"] = ratio;
        j["resolveSeconds"] = r->resolve_s;
        j["linksAppended"] = r->resolver.appended;
        j["passes"] = r->resolver.passes;
        j["suggestions"] = r->suggestions;
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf(
            "%-5lu %-7lu %-9lu %-9.4f %-7.4f %-7.4f %-8.4f %-6lu %-6lu %-6lu %4lu/%-4lu %-8.2f "
            "%-8.2f %.2f\n",
            seed, parties, r->events, r->score.precision(), r->score.recall(),
            r->score.recall_ceiling(), r->score.recall_with_evidence(), r->score.true_positives,
            r->score.false_positives, r->score.false_negatives, trapped, traps, r->build_s, ratio,
            r->resolve_s);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) { return ihs::bench::Main(argc, argv); }
