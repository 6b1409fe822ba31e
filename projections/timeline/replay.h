// A party's timeline as it was known at an earlier moment of the log (`ihs audit replay`,
// docs/audit.md): what did we know about this customer on 3 March.
#ifndef IHS_PROJECTIONS_TIMELINE_REPLAY_H_
#define IHS_PROJECTIONS_TIMELINE_REPLAY_H_

#include <capnp/message.h>

#include <cstdint>

#include "absl/status/status.h"
#include "projections/timeline/timeline.h"
#include "store/event_store.h"

namespace ihs::projections::timeline {

// The summary (root TimelineSummary) and one page (root TimelinePage, `q`) of `q.party`'s
// timeline as the timeline projection had it when the log held its first `size` events.
//
// It applies the projection, in position order and in memory, to the events below `size` that
// the party's entries depend on, and to no others: the party's own events; the profile events
// of every counterpart they name (whether a public reply is the company's depends on the
// counterpart's kind); and the events their causationIds follow up on (a follow-up that came
// first is marked as a channel switch when its cause arrives). Everything else the projection
// reads, it reads from the log's prefix through Txn::FindEarlierEvent. So the result equals a
// rebuild of the whole prefix, read for this party; replay_test checks exactly that.
//
// kNotFound: the party had no event below `size`. kOutOfRange: `size` is past the log's end.
absl::Status ReplayTimeline(store::EventStore* store, uint64_t size, const Query& q,
                            capnp::MessageBuilder& summary, capnp::MessageBuilder& page);

}  // namespace ihs::projections::timeline

#endif  // IHS_PROJECTIONS_TIMELINE_REPLAY_H_
