// The log as a reader follows it: the seam between whoever keeps the log and whoever derives
// from it. The projection runner follows a LogReader; today the embedded EventStore is one, and
// a node of a cluster will follow a JetStream partition through another (issue 29), which is
// why this is all the runner asks of the log.
//
// A log is a sequence of events at positions 0, 1, 2, ...; Head() is its size. Only
// acknowledged events are visible, and a visible event never changes.
#ifndef IHS_STORE_LOG_READER_H_
#define IHS_STORE_LOG_READER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "store/stored_event.h"

namespace ihs::store {

class LogReader {
 public:
  virtual ~LogReader() = default;

  // The log's size: the position the next event will get. Only acknowledged events count.
  virtual uint64_t Head() = 0;

  // Blocks until the log's size exceeds `known_head`, the deadline passes or the log closes;
  // returns the size then. Costs nothing while idle.
  virtual uint64_t WaitForCommit(uint64_t known_head, absl::Time deadline) = 0;

  // Up to max_count events from from_position, in position order.
  virtual absl::StatusOr<std::vector<StoredEvent>> ReadAll(uint64_t from_position, size_t max_count,
                                                           const ReadOptions& options = {}) = 0;

  // A moment W (µs since the epoch) before which the log is complete: every event recorded
  // before W is at a position below Head() as read after this returns, and every event the
  // log will hold later is recorded at W or after. Projections with timers fire those due
  // before W (projections/projection.h). A log only read returns the last event's time.
  virtual absl::StatusOr<int64_t> Watermark() = 0;

  // The position of the acknowledged event with this id (16 bytes), or nullopt.
  virtual absl::StatusOr<std::optional<uint64_t>> FindEvent(absl::string_view event_id) = 0;

  // 32 secret bytes for blind indexes: keyed hashes of personal handles that projections match
  // on without keeping them in the clear (DESIGN.md decision 9). Derived from the key that
  // opens the log's content, so every reader of one log gets the same key and a rebuild the same
  // bytes. kUnimplemented where the reader holds no such key.
  virtual absl::StatusOr<std::string> BlindIndexKey() {
    return absl::UnimplementedError("this log reader keeps no key for blind indexes");
  }
};

}  // namespace ihs::store

#endif  // IHS_STORE_LOG_READER_H_
