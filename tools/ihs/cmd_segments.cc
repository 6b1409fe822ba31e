// The segment commands (docs/segments.md): definitions as events on "$segments" (define,
// change, retire) and their list, on a data directory (--data) or a running ihsd (--connect).
// Membership, why and watch come with the segments projection.
#include <capnp/message.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "projections/segments/definitions.h"
#include "schema/json.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"

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
}

}  // namespace ihs::tools
