// A projection worker's status, as the runner reports it (Runner::Status) and ihsd sends it
// (rpc.ProjectionStatus): a plain value with nothing of the runner or the store behind it, so
// that the RPC wire and the client library use it without linking projections/.
#ifndef IHS_PROJECTIONS_STATUS_H_
#define IHS_PROJECTIONS_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>

namespace ihs::projections {

struct ProjectionStatus {
  std::string name;
  uint32_t version = 0;
  std::string family;       // the active generation's state family
  uint64_t checkpoint = 0;  // events applied: the next position to apply
  uint64_t head = 0;        // the log's size
  uint64_t lag_events = 0;
  double lag_seconds = 0;        // since the oldest event not yet applied was recorded
  double events_per_second = 0;  // applied, over the last few seconds
  std::string state;             // "live", "catching up", "rebuilding", "corrupt", "failed"
  std::string error;             // why it failed or is rebuilding
  // While a rebuild runs: its progress.
  std::optional<uint64_t> rebuild_checkpoint;
};

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_STATUS_H_
