// The plain values of the event log's API: limits, expected versions, appends and their results,
// stream info, read directions and content states. No RocksDB behind them, so that the RPC wire
// and the client library (server/wire.h, server/client.h) use the store's types without linking
// the store; store/event_store.h includes this header.
//
// Values only: copyable (StreamAppend holds readers its caller keeps valid), no shared state.
#ifndef IHS_STORE_TYPES_H_
#define IHS_STORE_TYPES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "schema/event.capnp.h"

namespace ihs::store {

// Limits on what one append may carry (documented in docs/format.md).
inline constexpr size_t kMaxEventBytes = 64 * 1024;   // one event, canonical encoding
inline constexpr size_t kMaxEventsPerAppend = 10000;  // one Append or AppendMulti call
inline constexpr size_t kMaxStreamIdBytes = 256;
// Streams whose ids start with '$' are the system's ("$identity", "$segments", "$retention"),
// not a party's.
inline bool IsSystemStream(absl::string_view stream) { return !stream.empty() && stream[0] == '$'; }
// The system stream of segment definitions: the store takes segmentDefinition events on it only.
inline constexpr char kSegmentsStream[] = "$segments";
inline constexpr size_t kMaxSegmentRuleBytes = 4096;
// The system stream of community bands (schema CommunityBand): the store takes communityBand
// events on it only.
inline constexpr char kCommunityStream[] = "$community";
// The system stream of content accesses (schema ContentAccess): the store takes contentAccess
// events on it only.
inline constexpr char kAccessStream[] = "$access";
inline constexpr uint32_t kFormatVersion = 2;  // of the data directory (docs/format.md)

// The optimistic-concurrency check of an append.
class ExpectedVersion {
 public:
  enum class Kind { kAny, kNoStream, kStreamExists, kExact };

  static ExpectedVersion Any() { return ExpectedVersion(Kind::kAny, 0); }
  static ExpectedVersion NoStream() { return ExpectedVersion(Kind::kNoStream, 0); }
  static ExpectedVersion StreamExists() { return ExpectedVersion(Kind::kStreamExists, 0); }
  // The version of the stream's last event (so 0 after one event).
  static ExpectedVersion Exact(uint64_t version) { return ExpectedVersion(Kind::kExact, version); }

  Kind kind() const { return kind_; }
  uint64_t version() const { return version_; }
  std::string ToString() const;

 private:
  ExpectedVersion(Kind kind, uint64_t version) : kind_(kind), version_(version) {}
  Kind kind_;
  uint64_t version_;
};

// The events of one stream for one append. Each event's streamId must be empty or equal to
// `stream`. The readers must stay valid until the call returns.
struct StreamAppend {
  std::string stream;
  ExpectedVersion expected = ExpectedVersion::Any();
  std::vector<schema::Event::Reader> events;
};

struct AppendResult {
  // Position and stream version of each event, in request order.
  std::vector<uint64_t> positions;
  std::vector<uint64_t> versions;
  // True when every event id was already stored with the same content: nothing was written and
  // the positions are those of the original append.
  bool duplicate = false;
};

// A wrong expected version is kAborted; this reads the stream's current version from such a
// status (-1: the stream does not exist). nullopt for any other status.
std::optional<int64_t> ConflictCurrentVersion(const absl::Status& status);
// The status payload that carries it (decimal text).
inline constexpr char kConflictPayloadUrl[] = "type.ihs/current-version";
// A kAborted status with that payload (the store's, and the RPC client's for a remote conflict).
absl::Status VersionConflictError(absl::string_view message, int64_t current_version);

enum class ReadDirection { kForward, kBackward };

// What became of an event's personal content on read.
enum class ContentState {
  kNone,    // the event carries no content
  kSealed,  // not opened (ReadOptions::open_content was false)
  kOpen,    // opened: StoredEvent::content() holds it
  kErased,  // the data key is gone (the party was erased, or retention expired the content)
};

// Progress of a long operation: done out of total (total may grow).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct StreamInfo {
  std::string stream;
  uint64_t event_count = 0;
  uint64_t current_version = 0;  // event_count - 1
  uint64_t first_position = 0;
  uint64_t last_position = 0;
  int64_t first_occurred_at = 0;            // µs since epoch, smallest seen
  int64_t last_occurred_at = 0;             // µs since epoch, largest seen
  std::optional<uint64_t> hold_position;    // a legal hold is in force, placed at this position
  std::optional<uint64_t> erased_position;  // the party was erased at this position
};

}  // namespace ihs::store

#endif  // IHS_STORE_TYPES_H_
