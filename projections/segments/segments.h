// The segments projection: which persons are in which segment, kept true per event and by the
// clock, with every entry and exit recorded with its moment, the definition's version and why
// (docs/segments.md "Membership"). A person is all the streams identity links join (it folds the
// identityLink events itself, as the identity projection does, and names a person by the stream
// of theirs the log saw first); definitions are the segmentDefinition events of "$segments".
//
// Time: the projection evaluates a person at the recordedAt of each event of theirs, and at
// each timer (the evaluator's next_change), which fires before the first event recorded after
// it, or from the runner's clock (Projection::AdvanceClock). So membership at a moment T is the
// evaluator's answer over the events recorded up to T, and a rebuild writes the same history.
//
// Keys of its state family (names and stream ids never hold a 0 byte):
//   "S" stream               -> SegStream: the stream's profile, consents, person, touch count
//   "T" stream 0 seq (8)     -> SegTouch: one of its touchpoints
//   "E" stream 0 event id    -> seq (8): the touchpoint with that id
//   "Y" stream 0 thread      -> SegThread: the company's replies and the waiting messages
//   "K" person 0 index (4) slot (8) -> a waiting message an unanswered condition spilled
//   "V" person 0 index (4) event id -> slot (8)
//   "P" person               -> SegPerson: streams, links, current memberships, next timer
//   "M" segment 0 person     -> since (8) | version (4), while a member
//   "C" segment              -> members now (8 bytes)
//   "F" seq (8)              -> Transition (packed): the feed subscribers follow
//   "H" segment 0 person 0 seq (8) -> "": a person's transitions in a segment
//   "W" due (8, sign flipped) person -> "": timers
//   "D" index (8)            -> a definition event (packed), in log order; "d": how many
//   "n"                      -> the next transition's seq
//   "g"                      -> position (8) | clock (8): where the last batch ended and the
//                               projection's time then; a worker keeps its definitions and
//                               timers in memory while this says they are current
#ifndef IHS_PROJECTIONS_SEGMENTS_SEGMENTS_H_
#define IHS_PROJECTIONS_SEGMENTS_SEGMENTS_H_

#include <capnp/message.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "projections/projection.h"
#include "projections/runner.h"
#include "projections/segments/definitions.h"
#include "schema/segments.capnp.h"

namespace ihs::projections::segments {

inline constexpr char kName[] = "segments";
inline constexpr size_t kMaxMembersPage = 10000;

std::unique_ptr<Projection> NewSegmentsProjection();

// The definitions as the projection has applied them.
absl::StatusOr<Definitions> ReadAppliedDefinitions(const StateView& view);

// Members of `segment` at `as_of` (µs; 0: now) into `out` (root MemberPage): by person id after
// `after`, at most `limit` (<= kMaxMembersPage), with the count. kNotFound: no such segment;
// kInvalidArgument: `as_of` before the segment was first defined (the message says when).
absl::Status ReadMembers(const StateView& view, const std::string& segment, int64_t as_of,
                         const std::string& after, size_t limit, capnp::MessageBuilder& out);

// The segments the person of `party` is in at `as_of` into `out` (root PartySegments).
// kNotFound: the log has no such stream.
absl::Status ReadPartySegments(const StateView& view, const std::string& party, int64_t as_of,
                               capnp::MessageBuilder& out);

// Whether the person of `party` is in `segment` at `as_of`, and the transitions that made it so
// (with their clauses) into `out` (root SegmentWhy). Errors as ReadMembers, and kNotFound for
// an unknown party.
absl::Status ReadWhy(const StateView& view, const std::string& party, const std::string& segment,
                     int64_t as_of, capnp::MessageBuilder& out);

// The transitions of `segments` (all when empty) from `from_seq` on, in seq order, into `out`
// (root TransitionPage): at most `max` of them and about `max_bytes`, and how far it looked.
absl::Status ReadTransitions(const StateView& view, uint64_t from_seq,
                             const std::set<std::string>& segments, size_t max, size_t max_bytes,
                             capnp::MessageBuilder& out);

// The seq the next transition will have.
absl::StatusOr<uint64_t> NextSeq(const StateView& view);

// Transitions from `from_seq` on, in seq order, until `visit` returns false.
absl::Status ForEachTransition(const StateView& view, uint64_t from_seq,
                               const std::function<bool(schema::Transition::Reader)>& visit);

}  // namespace ihs::projections::segments

#endif  // IHS_PROJECTIONS_SEGMENTS_SEGMENTS_H_
