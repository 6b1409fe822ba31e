// The customer timeline: for each party, every touchpoint across all channels in order of
// occurred_at, with threads, response times (wall clock and service hours), channel switches,
// corrections and a per-party summary. docs/projections.md gives the rules; the records are in
// schema/timeline.capnp.
//
// Keys of its state family (party := length: fixed16 BE | stream id bytes):
//   "S" party                          -> TimelinePartyState (packed capnp)
//   "E" party | occurred_at | position -> the entry (entry.h; read as TimelineEntry); occurred_at
//                                         is fixed64 BE with the sign bit flipped, so byte order
//                                         is time order
//   "T" party | thread                 -> the thread's messages and replies (timeline.cc)
//   "K" party                          -> the party's kind: u8 (from its profile events)
//   "P" event id                       -> (party | occurred_at | position | channel)*: the
//                                         follow-ups whose message has a later position
//
// Reads (ReadPage, ReadSummary) work on a StateView and are safe from any thread.
#ifndef IHS_PROJECTIONS_TIMELINE_TIMELINE_H_
#define IHS_PROJECTIONS_TIMELINE_TIMELINE_H_

#include <capnp/message.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "projections/projection.h"
#include "projections/runner.h"
#include "projections/timeline/query.h"
#include "schema/timeline.capnp.h"
#include "store/event_store.h"

namespace ihs::projections::timeline {

inline constexpr char kName[] = "timeline";

// `max_cached_threads`: how many conversation threads an instance keeps decoded between the
// writes of its state (tests set few, to see the bound change no byte of the state).
std::unique_ptr<Projection> NewTimelineProjection(size_t max_cached_threads = 500'000);

// Checks a query: kInvalidArgument naming the problem.
absl::Status Validate(const Query& q);

// One page of a party's timeline into `out` (root TimelinePage). kNotFound: no such party.
// With `store`, the entries' subject and text are opened from the log (not for erased parties).
absl::Status ReadPage(const StateView& view, const Query& q, capnp::MessageBuilder& out,
                      store::EventStore* store = nullptr);

// The party's summary into `out` (root TimelineSummary). kNotFound: no such party.
absl::Status ReadSummary(const StateView& view, const std::string& party, absl::Time as_of,
                         capnp::MessageBuilder& out);

}  // namespace ihs::projections::timeline

#endif  // IHS_PROJECTIONS_TIMELINE_TIMELINE_H_
