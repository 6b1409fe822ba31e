// A timeline entry as the timeline's state family stores it (key "E", timeline.h): a plain
// struct and a byte form that is a pure function of its fields. Since state version 3 the
// entry is not a Cap'n Proto message: building, packing and copying one message per event was
// a fifth of a rebuild, and a copied message lays its parts out in another order than a built
// one, so two ways to the same entry gave different bytes. Reads turn it into
// schema::TimelineEntry (ToRecord). docs/format.md gives the layout.
#ifndef IHS_PROJECTIONS_TIMELINE_ENTRY_H_
#define IHS_PROJECTIONS_TIMELINE_ENTRY_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "schema/timeline.capnp.h"

namespace ihs::projections::timeline {

struct Entry {
  enum class Response : uint8_t { kNone = 0, kOpen = 1, kAnswered = 2 };
  struct Answer {
    uint64_t reply_position = 0;
    std::string reply_event_id;
    schema::Channel reply_channel = schema::Channel::UNSPECIFIED;
    int64_t replied_at = 0;
    int64_t wall_seconds = 0;
    int64_t service_seconds = 0;
  };
  struct Switch {
    std::string party;
    std::string event_id;
    schema::Channel channel = schema::Channel::UNSPECIFIED;
    int64_t occurred_at = 0;
    uint64_t position = 0;
  };

  uint64_t position = 0;
  std::string event_id;
  int64_t occurred_at = 0;
  int64_t recorded_at = 0;
  schema::Channel channel = schema::Channel::UNSPECIFIED;
  schema::Direction direction = schema::Direction::UNSPECIFIED;
  schema::TouchpointType type = schema::TouchpointType::UNSPECIFIED;
  float sentiment = std::nanf("");
  std::vector<std::string> topics;
  std::string thread;
  std::string in_reply_to;
  std::string counterpart;
  std::string campaign_id;
  uint64_t audience_size = 0;
  std::string source_system;
  bool company_reply = false;
  Response response = Response::kNone;
  Answer answer;  // when response == kAnswered
  bool has_switch = false;
  Switch switch_from;        // when has_switch
  std::string corrected_by;  // empty: never corrected
  std::string retracted_by;  // empty: not retracted
};

// The stored bytes of `e`, but for its occurred_at and position, which the entry's key holds.
std::string EncodeEntry(const Entry& e);
// The entry from its stored bytes and its key's occurred_at and position; kDataLoss when
// `bytes` is not an entry.
absl::StatusOr<Entry> DecodeEntry(absl::string_view bytes, int64_t occurred_at, uint64_t position);
// The entry as reads return it (waitingSeconds, subject and text are left to the reader).
void ToRecord(const Entry& e, schema::TimelineEntry::Builder out);

}  // namespace ihs::projections::timeline

#endif  // IHS_PROJECTIONS_TIMELINE_ENTRY_H_
