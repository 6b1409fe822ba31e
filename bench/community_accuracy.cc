// The community projection's accuracy against the generator's ground truth, and what it costs:
// for each seed and size, a history is generated into a fresh store at its simulated arrival
// times, the community projection is built from zero next to a raw ReadAll of the same log (the
// ceiling, in the same run), and its top 100 persons by reach are compared with the truth's
// `influential[]` (precision; the definition of reach is exact, so every one of the truth's
// persons must have the truth's reach). Prints a table (and JSON lines with --json); exit 3 if
// precision is below 0.95 or any reach differs. Bounded by the sizes given.
//
//   build/bin/community_accuracy [--seeds 1,2,3] [--parties 2000,20000] [--days 120] [--json]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "bench/accuracy_run.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "projections/community/community.h"
#include "schema/community.capnp.h"
#include "workload/rank_score.h"

namespace ihs::bench {
namespace {

namespace cm = projections::community;

struct Score {
  size_t truth = 0, both = 0, reach_equal = 0;
  size_t graph_persons = 0;
  uint64_t pushes = 0;  // the standing's, over the whole rebuild
  double spearman = 0, top_overlap = 0, standing_s = 0;
  // The audience at risk, backtested on the complaints and messages taken public.
  size_t went_public = 0;
  double risk_spearman = 0, per_post_spearman = 0, followers_spearman = 0, median_error = 0;
  double precision() const { return truth == 0 ? 1 : static_cast<double>(both) / truth; }
};

// The network standing against an exact power iteration over the projection's own graph, per
// person: Spearman over persons in the graph, and the overlap of the top 100.
absl::Status CompareStanding(const projections::StateView& view, Score& score) {
  std::vector<std::tuple<std::string, std::string, uint64_t>> edges;
  std::map<std::string, std::string> person;
  std::map<std::string, double> estimate, exact;
  IHS_RETURN_IF_ERROR(cm::ForEachGraphStream(view, [&](const cm::GraphStream& g) {
    person[g.stream] = g.person;
    estimate[g.person] += g.standing;
    for (const auto& [target, weight] : g.out) edges.emplace_back(g.stream, target, weight);
    return true;
  }));
  for (const auto& [stream, x] : workload::ExactStanding(edges, cm::kReset)) {
    exact[person.count(stream) ? person[stream] : stream] += x;
  }
  score.graph_persons = exact.size();
  score.spearman = workload::Spearman(exact, estimate);
  score.top_overlap = workload::TopOverlap(exact, estimate, 100);
  return absl::OkStatus();
}

// The audience at risk, backtested: for every message taken public (the truth's public channel
// switches), the person's figures predict what the public post reached. The follower count a
// CRM would know is the largest audience of the person's posts (this one's included: the
// generator's audiences are the followers); the audience at risk adds what others carried of the
// person's other originals, per original (leave one out); reach per post is the other originals'
// reach.
absl::Status Backtest(const GeneratedRun& run, const projections::StateView& view, Score& score) {
  std::map<std::string, double> actual, risk, per_post, followers;
  std::vector<double> errors;
  for (const auto& sw : run.truth["channel_switches"]) {
    if (!sw["public"].get<bool>()) continue;
    const std::string id = absl::HexStringToBytes(sw["to_event"].get<std::string>());
    IHS_ASSIGN_OR_RETURN(auto post, cm::ReadPost(view, id));
    if (!post || post->retracted) continue;
    capnp::MallocMessageBuilder m;
    IHS_RETURN_IF_ERROR(cm::ReadCard(view, sw["to_party"], absl::ToUnixMicros(run.end), m));
    auto card = m.getRoot<schema::CommunityCard>();
    uint64_t own = 0, carried = 0, reach = 0;
    uint32_t posts = 0;
    for (auto stream : card.getStreams()) {
      IHS_RETURN_IF_ERROR(cm::ForEachPostOf(
          view, stream.cStr(), [&](const std::string& other, const cm::PostFigures& p) {
            own = std::max(own, p.audience);
            if (other == id || p.depth != 0 || p.retracted) return;
            ++posts;
            carried += p.direct;
            reach += p.cascade;
          }));
    }
    if (posts == 0) continue;  // nothing else to learn from
    const std::string key = sw["to_event"];
    actual[key] = static_cast<double>(post->cascade);
    risk[key] = cm::AudienceAtRisk(own, carried, posts);
    per_post[key] = static_cast<double>(reach) / posts;
    followers[key] = static_cast<double>(own);
    errors.push_back(std::abs(risk[key] - actual[key]) / std::max(1.0, actual[key]));
  }
  score.went_public = actual.size();
  if (actual.empty()) return absl::OkStatus();
  score.risk_spearman = workload::Spearman(actual, risk);
  score.per_post_spearman = workload::Spearman(actual, per_post);
  score.followers_spearman = workload::Spearman(actual, followers);
  std::sort(errors.begin(), errors.end());
  score.median_error = errors[errors.size() / 2];
  return absl::OkStatus();
}

absl::StatusOr<Score> Compare(const GeneratedRun& run, const projections::StateView& view) {
  Score score;
  const auto& influential = run.truth["influential"];
  score.truth = influential.size();
  if (score.truth == 0) return score;
  capnp::MallocMessageBuilder m;
  if (absl::Status s = cm::ReadTop(view, score.truth, cm::TopBy::kReach, m); !s.ok()) return s;
  std::set<std::string> got;
  for (auto e : m.getRoot<schema::CommunityTop>().getEntries()) got.insert(e.getPerson().cStr());
  score.pushes = m.getRoot<schema::CommunityTop>().getCounters().getPushes();
  for (const auto& t : influential) {
    const std::string person = t["person"];
    score.both += got.count(person);
    capnp::MallocMessageBuilder card;
    if (absl::Status s = cm::ReadCard(view, person, absl::ToUnixMicros(run.end), card); !s.ok()) {
      return s;
    }
    score.reach_equal +=
        card.getRoot<schema::CommunityCard>().getReach() == t["reach"].get<uint64_t>();
  }
  const absl::Time t0 = absl::Now();
  if (absl::Status s = CompareStanding(view, score); !s.ok()) return s;
  if (absl::Status s = Backtest(run, view, score); !s.ok()) return s;
  score.standing_s = absl::ToDoubleSeconds(absl::Now() - t0);
  return score;
}

int Main(int argc, char** argv) {
  CLI::App app("the community projection against the generator's ground truth");
  AccuracyFlags flags;
  AddAccuracyFlags(app, flags);
  CLI11_PARSE(app, argc, argv);
  const bool json = flags.json;
  const int days = flags.days;
  if (!json) {
    std::printf("%-5s %-8s %-9s %6s %9s %12s %8s %9s %8s %8s %8s\n", "seed", "parties", "events",
                "truth", "precision", "reach equal", "graph", "spearman", "top100", "build/s",
                "read %");
  }
  return ForEachRun(
      "community_accuracy", flags.sizes, flags.seeds,
      [&](uint64_t parties, uint64_t seed, const std::string& dir) -> absl::StatusOr<int> {
        std::unique_ptr<projections::Runner> runner;
        absl::StatusOr<GeneratedRun> r = GenerateAndRebuild(
            seed, parties, days, dir, cm::kName, [] { return cm::NewCommunityProjection(); },
            &runner);
        if (!r.ok()) return r.status();
        auto view = runner->View(cm::kName);
        if (!view.ok()) return view.status();
        absl::StatusOr<Score> s = Compare(*r, *view);
        if (!s.ok()) return s.status();
        if (json) {
          nlohmann::json j = {{"seed", seed},
                              {"parties", parties},
                              {"events", r->events},
                              {"truth", s->truth},
                              {"precision", s->precision()},
                              {"reach_equal", s->reach_equal},
                              {"graph_persons", s->graph_persons},
                              {"pushes", s->pushes},
                              {"standing_spearman", s->spearman},
                              {"standing_top100_overlap", s->top_overlap},
                              {"backtest_public", s->went_public},
                              {"risk_spearman", s->risk_spearman},
                              {"reach_per_post_spearman", s->per_post_spearman},
                              {"followers_spearman", s->followers_spearman},
                              {"risk_median_error", s->median_error},
                              {"build_s", r->build_s},
                              {"read_s", r->read_s}};
          std::printf("%s\n", j.dump().c_str());
        } else {
          std::printf("%-5lu %-8lu %-9lu %6zu %9.4f %8zu/%-3zu %8zu %9.4f %8.2f %8.1f %7.0f%%\n",
                      seed, parties, r->events, s->truth, s->precision(), s->reach_equal, s->truth,
                      s->graph_persons, s->spearman, s->top_overlap, r->build_s,
                      100 * r->read_s / r->build_s);
          std::printf(
              "      backtest: %zu taken public; Spearman with what they reached: risk %.3f, "
              "reach per post %.3f, followers %.3f; the risk's median error %.0f%%\n",
              s->went_public, s->risk_spearman, s->per_post_spearman, s->followers_spearman,
              100 * s->median_error);
        }
        return s->precision() < 0.95 || s->reach_equal != s->truth || s->spearman < 0.95 ||
                       s->top_overlap < 0.9 || s->risk_spearman <= s->followers_spearman
                   ? 3
                   : 0;
      });
}

}  // namespace
}  // namespace ihs::bench

int main(int argc, char** argv) { return ihs::bench::Main(argc, argv); }
