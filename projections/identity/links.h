// An operator's decisions about identity, checked against the store and the identity projection
// and appended as identityLink events on "$identity": link and unlink two streams, accept or
// reject a suggestion. Used by `ihs identity` on a data directory and by ihsd's Writer.link and
// Writer.decideSuggestion, so both check the same things. Nothing is appended when a check fails.
#ifndef IHS_PROJECTIONS_IDENTITY_LINKS_H_
#define IHS_PROJECTIONS_IDENTITY_LINKS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "projections/runner.h"
#include "store/event_store.h"

namespace ihs::projections::identity {

struct LinkRequest {
  std::string a, b;
  bool unlink = false;
  std::string reason;        // required
  std::string requested_by;  // required: the operator, or the RPC token's name
  std::string source_system = "operator";
};

// Appends the link (or unlink). `view` is the identity projection caught up with the log.
// Errors:
//   kInvalidArgument    a or b empty, the same stream, no such stream, a system stream, no
//                       reason; an unlink of streams that no link joins directly (the message
//                       names the links that do join them)
//   kFailedPrecondition a link to an erased party
// Returns the event's position.
absl::StatusOr<uint64_t> AppendLink(store::EventStore& store, const StateView& view,
                                    const LinkRequest& request);

// Accepts (a link carrying the suggestion's score and clues) or rejects (an unlink: the pair is
// never suggested or linked by inference again) the suggestion `id`. kInvalidArgument: no
// current suggestion has that id; otherwise as AppendLink.
absl::StatusOr<uint64_t> DecideSuggestion(store::EventStore& store, const StateView& view,
                                          const std::string& id, bool accept,
                                          const std::string& reason,
                                          const std::string& requested_by);

// The streams of the person `stream` belongs to (the stream alone if no link names it), sorted.
absl::StatusOr<std::vector<std::string>> PersonStreams(const StateView& view,
                                                       const std::string& stream);

// Erases every stream of the person `party` belongs to, in one atomic append
// (store::EraseAll): the erasure of a person reaches all of them or none. Returns the positions
// and the streams, in the same order.
absl::StatusOr<std::pair<std::vector<uint64_t>, std::vector<std::string>>> ErasePerson(
    store::EventStore& store, const StateView& view, const std::string& party,
    const std::string& reason, const std::string& requested_by);

}  // namespace ihs::projections::identity

#endif  // IHS_PROJECTIONS_IDENTITY_LINKS_H_
