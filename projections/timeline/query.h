// A query for one page of a party's timeline: a plain value, shared by the timeline projection
// (timeline.h: Validate, ReadPage), ihsd and the client library, which use it without linking
// projections/.
#ifndef IHS_PROJECTIONS_TIMELINE_QUERY_H_
#define IHS_PROJECTIONS_TIMELINE_QUERY_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "schema/event.capnp.h"

namespace ihs::projections::timeline {

inline constexpr uint32_t kMaxPageEntries = 1000;

struct Query {
  std::string party;
  int64_t from = std::numeric_limits<int64_t>::min();  // occurred_at, µs, inclusive
  int64_t to = std::numeric_limits<int64_t>::max();    // exclusive
  std::vector<schema::Channel> channels;               // empty: all
  std::string cursor;                                  // from a previous page's nextCursor
  uint32_t limit = 100;                                // 1..kMaxPageEntries
  absl::Time as_of = absl::Now();                      // waiting times are counted to here
  // The other streams of the party's person (the identity projection's answer): their entries
  // are merged in, in the same order, each marked with its stream. Empty: the party alone.
  std::vector<std::string> also;
};

}  // namespace ihs::projections::timeline

#endif  // IHS_PROJECTIONS_TIMELINE_QUERY_H_
