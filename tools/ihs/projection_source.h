// Where the projection commands work (docs/projections.md): a data directory, where the runner
// runs in this process, or a running ihsd. One mechanism for every projection's reads: a
// projection's command file gives a read of its state (local) and the same read over RPC
// (remote), and Read runs the one that applies, as of the log's head when the command started.
#ifndef IHS_TOOLS_IHS_PROJECTION_SOURCE_H_
#define IHS_TOOLS_IHS_PROJECTION_SOURCE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "projections/runner.h"
#include "server/client.h"
#include "store/event_store.h"
#include "tools/ihs/cli.h"

namespace ihs::tools {

class ProjectionSource {
 public:
  // A read of a projection's state in this process; `store` opens content where a read needs it.
  using LocalRead =
      std::function<absl::Status(const projections::StateView& view, store::EventStore* store)>;
  // The same read over RPC, answered once ihsd's projection has applied `min_position`.
  using RemoteRead = std::function<absl::Status(client::Client& client, uint64_t min_position)>;

  virtual ~ProjectionSource() = default;
  virtual absl::StatusOr<std::vector<projections::ProjectionStatus>> Status() = 0;
  // Rebuilds `name` and returns once the new generation serves.
  virtual absl::Status Rebuild(const std::string& name, const store::ProgressFn& progress) = 0;
  // Reads projection `name` as of the log's head. Locally: caught up first, and corrupt state
  // reported, rebuilt, and only then read. Remotely: as of the head when asked; if ihsd's
  // projection has not reached it within ihsd's wait, read as it is, with a warning.
  virtual absl::Status Read(const std::string& name, const LocalRead& local,
                            const RemoteRead& remote) = 0;
};

// The source that the flags name (--data or --connect).
absl::StatusOr<std::unique_ptr<ProjectionSource>> OpenProjections(const Common& c);

nlohmann::json ProjectionStatusJson(const projections::ProjectionStatus& st);

// The person a stream belongs to (docs/identity.md): its id and streams (the stream alone when
// no link names it); nullopt for a stream the log does not hold.
struct PersonOfStream {
  std::string id;
  std::vector<std::string> streams;
};
absl::StatusOr<std::optional<PersonOfStream>> PersonOf(ProjectionSource& source,
                                                       const std::string& stream);

// What an appender of derived events did (`ihs identity resolve`, `ihs community publish`).
struct AppenderReport {
  uint64_t appended = 0, present = 0, passes = 0;
};

// Runs an appender of derived events on a data directory: catches `projection` up (with
// progress), runs `settle` until it appends nothing, and prints what it appended, `noun` naming
// the events ("links", "band events"). With --connect, refused: `refusal` says that ihsd does it.
int RunAppender(const Common& c, const std::string& projection, const std::string& refusal,
                const std::string& noun,
                const std::function<absl::StatusOr<AppenderReport>(store::EventStore&,
                                                                   projections::Runner&)>& settle);

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_PROJECTION_SOURCE_H_
