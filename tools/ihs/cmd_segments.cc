// The segment commands (docs/segments.md): definitions as events on "$segments" (define,
// change, retire) and their list; membership from the segments projection (members, of, why),
// as of now or any earlier moment; on a data directory (--data) or a running ihsd (--connect).
#include <capnp/message.h>

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "projections/packed_record.h"
#include "projections/segments/definitions.h"
#include "projections/segments/segments.h"
#include "schema/json.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/projection_source.h"

namespace ihs::tools {
namespace {

namespace sg = projections::segments;

struct DefineArgs {
  std::string name, rule, description;
};

int Define(const Common& c, const DefineArgs& a, sg::Definitions::Op op) {
  if (absl::Status s = CheckWhere(c); !s.ok()) return Fail(s);
  uint64_t position = 0;
  if (!c.connect.empty()) {
    absl::StatusOr<std::unique_ptr<client::Client>> client = Connect(c);
    if (!client.ok()) return Fail(client.status());
    absl::StatusOr<uint64_t> p =
        (*client)->DefineSegment(sg::SchemaOp(op), a.name, a.rule, a.description);
    if (!p.ok()) return Fail(p.status());
    position = *p;
  } else {
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, /*write=*/true);
    if (!st.ok()) return FailOpen(st.status());
    sg::DefineRequest r;
    r.op = op;
    r.name = a.name;
    r.rule = a.rule;
    r.description = a.description;
    r.requested_by = LoginName();
    absl::StatusOr<sg::DefineResult> d = sg::AppendDefinition(**st, r);
    if (!d.ok()) return Fail(d.status());
    position = d->position;
  }
  if (c.json) {
    std::cout << JsonLine(
                     {{"name", a.name}, {"position", position}, {"stream", store::kSegmentsStream}})
              << "\n";
  } else {
    std::cout << "segment " << a.name << " recorded at position " << position << " on "
              << store::kSegmentsStream << "\n";
  }
  return kExitOk;
}

nlohmann::json VersionJson(schema::SegmentVersion::Reader v) {
  return {{"version", v.getVersion()},
          {"rule", v.getRule().cStr()},
          {"description", v.getDescription().cStr()},
          {"retired", v.getRetired()},
          {"requestedBy", v.getRequestedBy().cStr()},
          {"position", v.getPosition()},
          {"recordedAt", schema::FormatMicros(v.getRecordedAt())}};
}

int List(const Common& c, bool all) {
  if (absl::Status s = CheckWhere(c); !s.ok()) return Fail(s);
  std::unique_ptr<client::Client> client;
  std::unique_ptr<store::EventStore> store;
  absl::StatusOr<sg::Definitions> local;
  if (!c.connect.empty()) {
    absl::StatusOr<std::unique_ptr<client::Client>> cl = Connect(c);
    if (!cl.ok()) return Fail(cl.status());
    client = std::move(*cl);
  } else {
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, /*write=*/false);
    if (!st.ok()) return FailOpen(st.status());
    store = std::move(*st);
    local = sg::ReadDefinitions(*store);
    if (!local.ok()) return Fail(local.status());
  }
  constexpr uint32_t kPage = 1000;
  bool header = false;
  for (std::string after;;) {
    capnp::MallocMessageBuilder m;
    if (client) {
      if (absl::Status s = client->SegmentDefinitions(after, kPage, m); !s.ok()) return Fail(s);
    } else {
      sg::ToList(*local, after, kPage, m.initRoot<schema::SegmentList>());
    }
    auto page = m.getRoot<schema::SegmentList>().asReader();
    for (auto r : page.getRejected()) {
      std::cerr << "ihs: the definition of " << r.getName().cStr() << " at position "
                << r.getPosition() << " was refused and changes nothing: " << r.getReason().cStr()
                << "\n";
    }
    for (auto s : page.getSegments()) {
      auto current = s.getVersions()[s.getVersions().size() - 1];
      if (current.getRetired() && !all) continue;
      if (c.json) {
        nlohmann::json versions = nlohmann::json::array();
        for (auto v : s.getVersions()) versions.push_back(VersionJson(v));
        nlohmann::json j = VersionJson(current);
        j["name"] = s.getName().cStr();
        j["versions"] = versions;
        std::cout << JsonLine(j) << "\n";
        continue;
      }
      if (!header) {
        absl::PrintF("%-24s %-7s %-8s %s\n", "NAME", "VERSION", "STATE", "RULE");
        header = true;
      }
      absl::PrintF("%-24s %-7d %-8s %s\n", s.getName().cStr(), current.getVersion(),
                   current.getRetired() ? "retired" : "live",
                   current.getRetired() ? "-" : current.getRule().cStr());
      if (current.getDescription().size() > 0) {
        absl::PrintF("%-24s %-7s %-8s   %s\n", "", "", "", current.getDescription().cStr());
      }
    }
    if (page.getSegments().size() < kPage) break;
    after = page.getSegments()[page.getSegments().size() - 1].getName();
  }
  if (!header && !c.json) std::cout << (all ? "no segments defined\n" : "no live segments\n");
  return kExitOk;
}

// --- membership ------------------------------------------------------------------------------

struct MembershipArgs {
  std::string segment, party, as_of, after;
  uint32_t limit = 1000;
};

// The moment a membership command answers for: --as-of, or now (0). Not a moment to come:
// membership then depends on events not yet recorded, and a read would answer with today's.
absl::StatusOr<int64_t> AsOf(const MembershipArgs& a) {
  if (a.as_of.empty()) return 0;
  IHS_ASSIGN_OR_RETURN(const int64_t t, ParseTimeFlag("--as-of", a.as_of));
  if (absl::FromUnixMicros(t) > absl::Now()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--as-of ", a.as_of,
                     " is in the future: membership then is not known yet (leave --as-of out "
                     "for now)"));
  }
  return t;
}

std::string When(int64_t as_of) {
  return as_of == 0 ? "now" : absl::StrCat("as of ", schema::FormatMicros(as_of));
}

// Reads the segments projection where the flags say, as of --as-of (set into `as_of`): kExitOk,
// or the exit code of what failed.
int ReadSegments(const Common& c, const MembershipArgs& a, int64_t* as_of,
                 const std::function<absl::Status(const projections::StateView&)>& local,
                 const std::function<absl::Status(client::Client&, uint64_t)>& remote) {
  absl::StatusOr<int64_t> t = AsOf(a);
  if (!t.ok()) return Fail(t.status());
  *as_of = *t;
  absl::StatusOr<std::unique_ptr<ProjectionSource>> source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  absl::Status s = (*source)->Read(
      sg::kName,
      [&](const projections::StateView& view, store::EventStore*) { return local(view); }, remote);
  return s.ok() ? kExitOk : Fail(s);
}

int Members(const Common& c, const MembershipArgs& a) {
  int64_t as_of = 0;
  capnp::MallocMessageBuilder m;
  const int rc = ReadSegments(
      c, a, &as_of,
      [&](const projections::StateView& view) {
        return sg::ReadMembers(view, a.segment, as_of, a.after, a.limit, m);
      },
      [&](client::Client& client, uint64_t min) {
        return client.SegmentMembers(a.segment, as_of, a.after, a.limit, min, m);
      });
  if (rc != kExitOk) return rc;
  auto page = m.getRoot<schema::MemberPage>().asReader();
  const auto members = page.getMembers();
  const std::string next =
      page.getMore() && members.size() > 0 ? members[members.size() - 1].getPerson().cStr() : "";
  if (c.json) {
    nlohmann::json list = nlohmann::json::array();
    for (auto member : members) list.push_back(MembershipJson(member));
    nlohmann::json j = {{"segment", a.segment},
                        {"count", page.getCount()},
                        {"members", list},
                        {"next", next.empty() ? nlohmann::json() : nlohmann::json(next)}};
    if (as_of != 0) j["asOf"] = schema::FormatMicros(as_of);
    std::cout << JsonLine(j) << "\n";
    return kExitOk;
  }
  std::cout << "segment " << a.segment << ": " << page.getCount()
            << (page.getCount() == 1 ? " member " : " members ") << When(as_of) << "\n";
  for (auto member : members) {
    absl::PrintF("  %-32s since %s (version %d)\n", member.getPerson().cStr(),
                 schema::FormatMicros(member.getSince()), member.getVersion());
  }
  if (!next.empty()) std::cout << "more: --after " << next << "\n";
  return kExitOk;
}

int Of(const Common& c, const MembershipArgs& a) {
  int64_t as_of = 0;
  capnp::MallocMessageBuilder m;
  const int rc = ReadSegments(
      c, a, &as_of,
      [&](const projections::StateView& view) {
        return sg::ReadPartySegments(view, a.party, as_of, m);
      },
      [&](client::Client& client, uint64_t min) {
        return client.PartySegments(a.party, as_of, min, m);
      });
  if (rc != kExitOk) return rc;
  auto r = m.getRoot<schema::PartySegments>().asReader();
  if (c.json) {
    nlohmann::json streams = nlohmann::json::array(), list = nlohmann::json::array();
    for (auto s : r.getStreams()) streams.push_back(s.cStr());
    for (auto member : r.getSegments()) list.push_back(MembershipJson(member));
    nlohmann::json j = {{"party", a.party},
                        {"person", r.getPerson().cStr()},
                        {"streams", streams},
                        {"segments", list}};
    if (as_of != 0) j["asOf"] = schema::FormatMicros(as_of);
    std::cout << JsonLine(j) << "\n";
    return kExitOk;
  }
  std::cout << a.party;
  if (r.getStreams().size() > 1) {
    std::vector<std::string> streams;
    for (auto s : r.getStreams()) streams.emplace_back(s.cStr());
    std::cout << " (person " << r.getPerson().cStr() << ": " << absl::StrJoin(streams, ", ") << ")";
  }
  if (r.getSegments().size() == 0) {
    std::cout << " is in no segment " << When(as_of) << "\n";
    return kExitOk;
  }
  std::cout << " is in " << r.getSegments().size() << " segment"
            << (r.getSegments().size() == 1 ? " " : "s ") << When(as_of) << ":\n";
  for (auto member : r.getSegments()) {
    absl::PrintF("  %-32s since %s (version %d)\n", member.getSegment().cStr(),
                 schema::FormatMicros(member.getSince()), member.getVersion());
  }
  return kExitOk;
}

const char* CauseText(schema::TransitionCause cause) {
  switch (cause) {
    case schema::TransitionCause::EVENT:
      return "a touchpoint, profile or consent";
    case schema::TransitionCause::CLOCK:
      return "time passed";
    case schema::TransitionCause::DEFINITION:
      return "the segment's definition";
    case schema::TransitionCause::IDENTITY:
      return "streams linked or unlinked";
    case schema::TransitionCause::ERASURE:
      return "an erasure";
    default:
      return "?";
  }
}

int Why(const Common& c, const MembershipArgs& a) {
  int64_t as_of = 0;
  capnp::MallocMessageBuilder m;
  const int rc = ReadSegments(
      c, a, &as_of,
      [&](const projections::StateView& view) {
        return sg::ReadWhy(view, a.party, a.segment, as_of, m);
      },
      [&](client::Client& client, uint64_t min) {
        return client.SegmentWhy(a.party, a.segment, as_of, min, m);
      });
  if (rc != kExitOk) return rc;
  auto r = m.getRoot<schema::SegmentWhy>().asReader();
  if (c.json) {
    nlohmann::json list = nlohmann::json::array();
    for (auto t : r.getTransitions()) list.push_back(TransitionJson(t));
    nlohmann::json j = {{"party", a.party},
                        {"person", r.getPerson().cStr()},
                        {"segment", a.segment},
                        {"member", r.getMember()},
                        {"transitions", list}};
    if (as_of != 0) j["asOf"] = schema::FormatMicros(as_of);
    std::cout << JsonLine(j) << "\n";
    return kExitOk;
  }
  std::cout << a.party << (r.getMember() ? " is in " : " is not in ") << a.segment << " "
            << When(as_of);
  if (r.getPerson() != a.party) std::cout << " (person " << r.getPerson().cStr() << ")";
  std::cout << (r.getTransitions().size() == 0 ? "; it never was\n" : "\n");
  for (auto t : r.getTransitions()) {
    absl::PrintF("%s  %s (version %d): %s\n", schema::FormatMicros(t.getAt()),
                 t.getEntered() ? "entered" : "left", t.getVersion(), CauseText(t.getCause()));
    for (auto cl : t.getClauses()) {
      std::vector<std::string> events;
      for (auto e : cl.getEvents()) events.push_back(absl::BytesToHexString(projections::View(e)));
      absl::PrintF("    %s %s", cl.getHolds() ? "yes" : "no ", cl.getText().cStr());
      const std::string text = cl.getText().cStr();
      if (text.rfind("count(", 0) == 0 || text.rfind("sum(", 0) == 0 ||
          text.rfind("unanswered(", 0) == 0) {
        absl::PrintF(": %g", cl.getValue());
      }
      if (!events.empty()) absl::PrintF("  [%s]", absl::StrJoin(events, " "));
      std::cout << "\n";
    }
  }
  return kExitOk;
}

struct WatchArgs {
  std::vector<std::string> segments;
  int64_t from_seq = -1;  // -1: from now
  uint64_t limit = 0;     // 0: until interrupted
};

int Watch(const Common& c, const WatchArgs& a) {
  if (c.connect.empty()) {
    return Fail(UsageError("segments watch follows a running ihsd: give --connect (and --token)"));
  }
  absl::StatusOr<std::unique_ptr<client::Client>> client = Connect(c);
  if (!client.ok()) return Fail(client.status());
  uint64_t seen = 0;
  absl::Status s = (*client)->SubscribeSegments(
      a.segments, a.from_seq < 0 ? 0 : static_cast<uint64_t>(a.from_seq), a.from_seq < 0,
      [&](capnp::List<schema::Transition>::Reader transitions, uint64_t) {
        for (auto t : transitions) {
          if (c.json) {
            std::cout << JsonLine(TransitionJson(t)) << "\n";
          } else {
            absl::PrintF("%s  %-7s %-24s %-24s version %d: %s (seq %d)\n",
                         schema::FormatMicros(t.getAt()), t.getEntered() ? "entered" : "left",
                         t.getSegment().cStr(), t.getPerson().cStr(), t.getVersion(),
                         CauseText(t.getCause()), t.getSeq());
          }
          if (a.limit != 0 && ++seen >= a.limit) break;
        }
        std::cout.flush();
        return a.limit == 0 || seen < a.limit;
      });
  return s.ok() ? kExitOk : Fail(s);
}

}  // namespace

void RegisterSegmentCommands(Cli& cli) {
  Common& common = cli.common();
  CLI::App* group =
      cli.Group("segments", "behaviour segments: definitions as events (docs/segments.md)");

  static DefineArgs define, change, retire;
  struct Op {
    const char* name;
    const char* help;
    DefineArgs* args;
    sg::Definitions::Op op;
  };
  for (const Op& o :
       {Op{"define", "define a segment: NAME 'RULE'", &define, sg::Definitions::Op::kDefine},
        Op{"change", "a new version of a segment's rule: NAME 'RULE'", &change,
           sg::Definitions::Op::kChange},
        Op{"retire", "retire a segment: NAME", &retire, sg::Definitions::Op::kRetire}}) {
    CLI::App* sub = group->add_subcommand(o.name, o.help);
    sub->add_option("name", o.args->name, "the segment's name: [a-z0-9_]{1,64}")->required();
    if (o.op != sg::Definitions::Op::kRetire) {
      sub->add_option("rule", o.args->rule, "the rule (docs/segments.md \"Rules\")")->required();
      sub->add_option("--description", o.args->description, "what the segment is for");
    }
    cli.AddWhere(sub);
    DefineArgs* args = o.args;
    const sg::Definitions::Op op = o.op;
    cli.OnRun(sub, [&common, args, op] { return Define(common, *args, op); });
  }

  static bool all = false;
  CLI::App* l = group->add_subcommand("list", "the segments, their versions and rules");
  l->add_flag("--all", all, "retired segments too");
  cli.AddWhere(l);
  cli.OnRun(l, [&common] { return List(common, all); });

  static MembershipArgs members, of, why;
  auto as_of = [](CLI::App* sub, MembershipArgs& a) {
    sub->add_option("--as-of", a.as_of, "the moment to answer for, RFC 3339 (default: now)");
  };
  CLI::App* mem = group->add_subcommand("members", "a segment's members, paged, with the count");
  mem->add_option("segment", members.segment, "the segment's name")->required();
  as_of(mem, members);
  mem->add_option("--after", members.after, "the page after this person");
  mem->add_option("--limit", members.limit, "members per page (1 to 10000)")
      ->check(kWholeNumber)
      ->check(CLI::Range(1, 10000));
  cli.AddWhere(mem);
  cli.OnRun(mem, [&common] { return Members(common, members); });

  CLI::App* o = group->add_subcommand("of", "the segments a party's person is in");
  o->add_option("party", of.party, "a stream id (any of the person's)")->required();
  as_of(o, of);
  cli.AddWhere(o);
  cli.OnRun(o, [&common] { return Of(common, of); });

  CLI::App* w = group->add_subcommand(
      "why", "whether a party's person is in a segment, and every entry and exit with its reason");
  w->add_option("party", why.party, "a stream id (any of the person's)")->required();
  w->add_option("segment", why.segment, "the segment's name")->required();
  as_of(w, why);
  cli.AddWhere(w);
  cli.OnRun(w, [&common] { return Why(common, why); });

  static WatchArgs watch;
  CLI::App* wa = group->add_subcommand(
      "watch", "follow entries and exits of segments as they happen (over --connect)");
  wa->add_option("segments", watch.segments, "the segments' names")->required();
  wa->add_option("--from-seq", watch.from_seq,
                 "start at this transition (0: the whole history; default: from now)")
      ->check(kWholeNumber);
  wa->add_option("--limit", watch.limit, "stop after this many transitions (default: never)")
      ->check(kWholeNumber);
  cli.AddWhere(wa);
  cli.OnRun(wa, [&common] { return Watch(common, watch); });
}

}  // namespace ihs::tools
