// Identity: which streams are one person. Persons are made only by identityLink events of the
// log (from the company's systems, from operators, and from identity resolution, whose links
// the resolver appends); the projection also scores pairs of streams by what their content
// shows, through a blind index, so that the resolver knows what to link and operators what to
// decide. docs/identity.md gives the model, the clues and their weights.
//
// Keys of its state family (stream ids never hold a 0 byte):
//   "S" stream        -> StreamNode: first position, person, clues (keyed hashes), partners
//   "X" clue key      -> ClueMembers: the streams that showed the clue
//   "Q" a 0 b         -> PairRecord (a < b): follow-ups, what link events decided, the score
//   "P" person        -> Person, for persons of two streams or more
//   "R" a 0 b         -> "" while the pair is above the threshold and not linked (pending)
//   "G" a 0 b         -> "" while the pair is a suggestion
//   "N"               -> counters: IdentityStats (links by kind)
#ifndef IHS_PROJECTIONS_IDENTITY_IDENTITY_H_
#define IHS_PROJECTIONS_IDENTITY_IDENTITY_H_

#include <capnp/message.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "projections/projection.h"
#include "projections/runner.h"
#include "schema/event.capnp.h"
#include "schema/identity.capnp.h"

namespace ihs::projections::identity {

inline constexpr char kName[] = "identity";
inline constexpr char kIdentityStream[] = "$identity";
inline constexpr char kResolverSource[] = "ihs-resolver";

std::unique_ptr<Projection> NewIdentityProjection();

// The person of `stream` (a singleton person if no link names it) into `out` (root Resolution),
// with the stream's scored pairs. kNotFound: the log has no such stream.
absl::Status Resolve(const StateView& view, const std::string& stream, capnp::MessageBuilder& out);

// The person with this id into `out` (root Person). kNotFound: no such stream; a stream that is
// not a person's id answers with the person it belongs to.
absl::Status ReadPerson(const StateView& view, const std::string& id, capnp::MessageBuilder& out);

// Pairs in state `state` (pending or suggested), at most `limit`, in key order after `after`
// ("" from the start; else the last pair's "a\0b").
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListPairs(
    const StateView& view, schema::PairState state, size_t limit, const std::string& after = "");

// One pair's record into `out` (root PairScore). kNotFound: no evidence joins the two.
absl::Status ReadPair(const StateView& view, const std::string& a, const std::string& b,
                      capnp::MessageBuilder& out);

// The pair a suggestion id names, among the suggestions. kNotFound: none.
absl::StatusOr<std::pair<std::string, std::string>> FindSuggestion(const StateView& view,
                                                                   const std::string& id);

// The streams whose content showed this handle, through the blind index (`blind_key`:
// store::LogReader::BlindIndexKey), in log order; empty if none. kInvalidArgument: the handle
// does not parse (the message says why).
absl::StatusOr<std::vector<std::string>> FindHandle(const StateView& view,
                                                    const std::string& blind_key,
                                                    schema::HandleKind kind,
                                                    const std::string& address);

// The kind of a handle as people write them: "@name" Twitter, "fb:" Facebook, "yt:" YouTube,
// "forum:", "app:", "x@y" email, a number phone, text with a comma postal; nullopt if it looks
// like none.
std::optional<schema::HandleKind> GuessHandleKind(absl::string_view h);

// Visits every person of two streams or more, in id order, until `visit` returns false.
absl::Status ForEachPerson(const StateView& view,
                           const std::function<bool(schema::Person::Reader)>& visit);

// Counts over the whole state into `out` (root IdentityStats).
absl::Status ReadStats(const StateView& view, capnp::MessageBuilder& out);

// The streams an identityLink names, in its order, without empty names and system streams: what
// every projection that folds links (identity, segments) takes from one.
std::vector<std::string> LinkedParties(schema::IdentityLink::Reader link);

// 12 hex digits naming a pair (a < b): what `ihs identity accept|reject` take.
std::string SuggestionId(const std::string& a, const std::string& b);

// The deterministic id of the resolver's link of a pair: it appends once across crashes.
std::string ResolverEventId(const std::string& a, const std::string& b);

}  // namespace ihs::projections::identity

#endif  // IHS_PROJECTIONS_IDENTITY_IDENTITY_H_
