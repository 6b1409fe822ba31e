// The community commands (docs/community.md): a person's reach, amplification and rank with the
// evidence behind them, and the persons of most reach; on a data directory (--data) or a running
// ihsd (--connect).
#include <capnp/message.h>

#include <iostream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "projections/community/bands.h"
#include "projections/community/community.h"
#include "projections/packed_record.h"
#include "schema/community.capnp.h"
#include "schema/json.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/projection_source.h"

namespace ihs::tools {
namespace {

namespace cm = projections::community;

// Reads the community projection into `m` with `local` or `remote`.
int ReadCommunity(const Common& c, const ProjectionSource::LocalRead& local,
                  const ProjectionSource::RemoteRead& remote) {
  absl::StatusOr<std::unique_ptr<ProjectionSource>> source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  absl::Status s = (*source)->Read(cm::kName, local, remote);
  return s.ok() ? kExitOk : Fail(s);
}

std::string Hex(capnp::Data::Reader d) { return absl::BytesToHexString(projections::View(d)); }

int Card(const Common& c, const std::string& party) {
  const int64_t as_of = absl::ToUnixMicros(absl::Now());
  capnp::MallocMessageBuilder m;
  const int rc = ReadCommunity(
      c,
      [&](const projections::StateView& view, store::EventStore*) {
        return cm::ReadCard(view, party, as_of, m);
      },
      [&](client::Client& client, uint64_t min) { return client.Community(party, as_of, min, m); });
  if (rc != kExitOk) return rc;
  auto r = m.getRoot<schema::CommunityCard>().asReader();
  if (c.json) {
    std::cout << JsonLine(CommunityCardJson(r)) << "\n";
    return kExitOk;
  }
  std::cout << party;
  if (r.getStreams().size() > 1) {
    std::vector<std::string> streams;
    for (auto s : r.getStreams()) streams.emplace_back(s.cStr());
    std::cout << " (person " << r.getPerson().cStr() << ": " << absl::StrJoin(streams, ", ") << ")";
  }
  std::cout << "\n";
  absl::PrintF("  reach        %d (last 90 days: %d)\n", r.getReach(), r.getReach90d());
  if (r.getRank() != 0) {
    absl::PrintF("  rank         %d of %d persons with reach (above %.1f%% of them)\n", r.getRank(),
                 r.getPersons(), r.getPercentile());
  } else {
    absl::PrintF("  rank         none: no reach (%d persons have some)\n", r.getPersons());
  }
  if (r.getStandingRank() != 0) {
    absl::PrintF("  standing     %.2f: rank %d of %d persons in the graph (above %.1f%% of them)\n",
                 r.getStanding(), r.getStandingRank(), r.getGraphPersons(),
                 r.getStandingPercentile());
  } else {
    absl::PrintF("  standing     none: nobody carried their posts, nor they anyone's\n");
  }
  if (r.getValueRank() != 0) {
    absl::PrintF(
        "  value        %.0f (audience per post x standing): rank %d of %d (above %.1f%% of "
        "them)\n",
        r.getValue(), r.getValueRank(), r.getValuePersons(), r.getValuePercentile());
  } else {
    absl::PrintF("  value        none: no public posts\n");
  }
  absl::PrintF(
      "  at risk      %.0f: the audience if they take a message public (their own %d, and %.0f "
      "carried per post); the chance they do: %.2f (%d of %d taken public)",
      r.getRisk(), r.getOwnAudience(),
      r.getPosts() == 0 ? 0.0 : static_cast<double>(r.getCarriedAudience()) / r.getPosts(),
      r.getPublicChance(), r.getWentPublic(), r.getWaited());
  if (r.getRiskRank() != 0) {
    absl::PrintF(", rank %d of %d (above %.1f%% of them)", r.getRiskRank(), r.getRiskPersons(),
                 r.getRiskPercentile());
  }
  std::cout << "\n";
  absl::PrintF("  posts        %d original public posts\n", r.getPosts());
  absl::PrintF("  carried      %d shares and mentions by others (%.2f per post), %d reactions\n",
               r.getCarried(),
               r.getPosts() == 0 ? 0.0 : static_cast<double>(r.getCarried()) / r.getPosts(),
               r.getReactions());
  absl::PrintF("  deepest      %d hops\n", r.getMaxDepth());
  if (r.getErasedStreams() != 0 || r.getAnonymousIn() != 0) {
    absl::PrintF("  erased       %d of its streams; %d carries and reactions by erased streams\n",
                 r.getErasedStreams(), r.getAnonymousIn());
  }
  if (r.getTopPosts().size() > 0) {
    std::cout << "  posts that reached most:\n";
    for (auto p : r.getTopPosts()) {
      absl::PrintF("    %s %s %-14s %-8s audience %d, with carries %d (%d carried it)%s\n",
                   Hex(p.getId()), schema::FormatMicros(p.getOccurredAt()),
                   schema::EnumName(p.getType()), schema::EnumName(p.getChannel()), p.getAudience(),
                   p.getCascade(), p.getCarries(),
                   p.getRetracted() ? " RETRACTED: counts no more" : "");
    }
  }
  if (r.getCarriers().size() > 0) {
    std::cout << "  carried most by:\n";
    for (auto k : r.getCarriers()) {
      absl::PrintF("    %-32s %d shares, %d mentions, %d likes, %d other%s\n", k.getStream().cStr(),
                   k.getShares(), k.getMentions(), k.getLikes(), k.getOther(),
                   k.getFollows() > 0 ? ", follows" : "");
    }
  }
  return kExitOk;
}

struct TopArgs {
  uint32_t n = 100;
  std::string by = "reach";
};

int Top(const Common& c, const TopArgs& a) {
  struct By {
    const char* name;
    schema::CommunityRank rank;
    const char* title;
  };
  static constexpr By kBy[] = {
      {"reach", schema::CommunityRank::REACH, "reach"},
      {"standing", schema::CommunityRank::STANDING, "network standing"},
      {"value", schema::CommunityRank::VALUE, "community value"},
      {"risk", schema::CommunityRank::RISK, "audience at risk"},
  };
  const By* by = nullptr;
  for (const By& b : kBy) {
    if (a.by == b.name) by = &b;
  }
  if (by == nullptr) {
    return Fail(UsageError(absl::StrCat("--by ", a.by,
                                        " is not one the community projection ranks by: reach, "
                                        "standing, value, risk")));
  }
  capnp::MallocMessageBuilder m;
  const int rc = ReadCommunity(
      c,
      [&](const projections::StateView& view, store::EventStore*) {
        return cm::ReadTop(view, a.n, cm::TopByOf(by->rank), m);
      },
      [&](client::Client& client, uint64_t min) {
        return client.CommunityTop(a.n, by->rank, min, m);
      });
  if (rc != kExitOk) return rc;
  auto r = m.getRoot<schema::CommunityTop>().asReader();
  const auto k = r.getCounters();
  if (c.json) {
    nlohmann::json list = nlohmann::json::array();
    uint64_t rank = 0;
    for (auto e : r.getEntries()) list.push_back(projections::CommunityTopEntryJson(e, ++rank));
    std::cout << JsonLine({{"by", a.by},
                           {"persons", r.getPersons()},
                           {"standingPersons", r.getStandingPersons()},
                           {"valuePersons", r.getValuePersons()},
                           {"riskPersons", r.getRiskPersons()},
                           {"entries", list},
                           {"met",
                            {{"unknownTargets", k.getUnknownTargets()},
                             {"tooDeep", k.getTooDeep()},
                             {"deadCarries", k.getDeadCarries()},
                             {"anonymousEdges", k.getAnonymousEdges()},
                             {"foreignRetractions", k.getForeignRetractions()},
                             {"graphStreams", k.getNodes()},
                             {"pushes", k.getPushes()},
                             {"cappedEvents", k.getCappedEvents()}}}})
              << "\n";
    return kExitOk;
  }
  const uint64_t of = by->rank == schema::CommunityRank::STANDING ? r.getStandingPersons()
                      : by->rank == schema::CommunityRank::VALUE  ? r.getValuePersons()
                      : by->rank == schema::CommunityRank::RISK   ? r.getRiskPersons()
                                                                  : r.getPersons();
  absl::PrintF("the %d persons of most %s, of %d with any\n", r.getEntries().size(), by->title, of);
  absl::PrintF("  %5s  %-32s %12s %9s %12s %10s %6s %8s %5s\n", "rank", "person", "reach",
               "standing", "value", "at risk", "posts", "carried", "depth");
  uint64_t rank = 0;
  for (auto e : r.getEntries()) {
    absl::PrintF("  %5d  %-32s %12d %9.2f %12.0f %10.0f %6d %8d %5d\n", ++rank,
                 e.getPerson().cStr(), e.getReach(), e.getStanding(), e.getValue(), e.getRisk(),
                 e.getPosts(), e.getCarried(), e.getMaxDepth());
  }
  return kExitOk;
}

int Publish(const Common& c) {
  return RunAppender(
      c, cm::kName,
      "ihsd publishes the bands itself; `ihs community publish` is for a data directory (--data)",
      "band events",
      [](store::EventStore& store, projections::Runner& runner) -> absl::StatusOr<AppenderReport> {
        cm::BandAppender bands(store, runner);
        IHS_ASSIGN_OR_RETURN(cm::BandReport r, bands.RunUntilSettled());
        return AppenderReport{r.appended, r.present, r.passes};
      });
}

}  // namespace

void RegisterCommunityCommands(Cli& cli) {
  Common& common = cli.common();
  CLI::App* community = cli.app().add_subcommand(
      "community",
      "whose voice carries: a party's person, their reach down share cascades, amplification and "
      "rank, with the posts and carriers behind them; or `top` (docs/community.md)");

  // `top` first: `ihs community top` is the subcommand, not a party named "top".
  static TopArgs top;
  CLI::App* t = community->add_subcommand("top", "the persons of most reach");
  t->add_option("--n", top.n, "how many (1 to 10000)")
      ->check(kWholeNumber)
      ->check(CLI::Range(1, 10000));
  t->add_option("--by", top.by, "what to rank by: reach (default), standing, value or risk");
  cli.AddWhere(t);
  cli.OnRun(t, [&common] { return Top(common, top); });

  CLI::App* p = community->add_subcommand(
      "publish",
      "append the bands of the community conditions segments name (ihsd does it as it runs)");
  cli.AddWhere(p);
  cli.OnRun(p, [&common] { return Publish(common); });

  static std::string party;
  community->add_option("party", party, "a stream id (any of the person's)");
  cli.AddWhere(community);
  cli.OnRun(community, [&common] {
    if (party.empty()) return Fail(UsageError("give a PARTY, or `top`"));
    return Card(common, party);
  });
}

}  // namespace ihs::tools
