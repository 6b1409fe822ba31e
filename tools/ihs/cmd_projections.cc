// ihs projections status|rebuild: every projection's checkpoint, lag and state, and a rebuild
// from position 0 beside the live generation.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"
#include "tools/ihs/projection_source.h"

namespace ihs::tools {
namespace {

int ProjectionsStatus(const Common& c) {
  absl::StatusOr<std::unique_ptr<ProjectionSource>> source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  absl::StatusOr<std::vector<projections::ProjectionStatus>> all = (*source)->Status();
  if (!all.ok()) return Fail(all.status());
  for (const projections::ProjectionStatus& st : *all) {
    if (c.json) {
      std::cout << JsonLine(ProjectionStatusJson(st)) << "\n";
    } else {
      absl::PrintF("%-12s %-12s checkpoint %d of %d  lag %d events (%.1f s)  %s%s\n", st.name,
                   st.state, st.checkpoint, st.head, st.lag_events, st.lag_seconds, st.family,
                   st.error.empty() ? "" : absl::StrCat("  (", st.error, ")"));
    }
  }
  return kExitOk;
}

int ProjectionsRebuild(const Common& c, const std::string& name) {
  absl::StatusOr<std::unique_ptr<ProjectionSource>> source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  Progress progress(absl::StrCat("rebuild ", name));
  if (c.json) progress.Disable();
  const absl::Time start = absl::Now();
  absl::Status s = (*source)->Rebuild(
      name, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!s.ok()) return Fail(s);
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  absl::StatusOr<std::vector<projections::ProjectionStatus>> all = (*source)->Status();
  if (!all.ok()) return Fail(all.status());
  for (const projections::ProjectionStatus& st : *all) {
    if (st.name != name) continue;
    if (c.json) {
      nlohmann::json j = ProjectionStatusJson(st);
      j["seconds"] = secs;
      std::cout << JsonLine(j) << "\n";
    } else {
      absl::PrintF("rebuilt %s: %d events in %.1f s; now %s\n", name, st.checkpoint, secs,
                   st.family);
    }
  }
  return kExitOk;
}

}  // namespace

void RegisterProjectionCommands(Cli& cli) {
  Common& common = cli.common();
  auto* proj = cli.Group("projections", "projection workers: status and rebuild");
  auto* proj_status = proj->add_subcommand(
      "status", "each projection's checkpoint, lag and state (--data opens the store for writing)");
  cli.AddWhere(proj_status);
  cli.OnRun(proj_status, [&common] { return ProjectionsStatus(common); });
  auto rebuild_name = std::make_shared<std::string>();
  auto* proj_rebuild = proj->add_subcommand(
      "rebuild", "rebuild a projection from position 0 into a fresh generation, then swap it in");
  cli.AddWhere(proj_rebuild);
  proj_rebuild->add_option("name", *rebuild_name, "the projection, e.g. timeline")->required();
  cli.OnRun(proj_rebuild,
            [&common, rebuild_name] { return ProjectionsRebuild(common, *rebuild_name); });
}

}  // namespace ihs::tools
