// What the segments projection keeps of a person between events, so that an event costs what the
// rules it concerns cost, not what the person's history is long (docs/segments.md "Cost"): per
// condition over touchpoints, an aggregate and the touchpoints its answer can still depend on.
//   - count, sum, any, none over a window: the touchpoints in the window or ahead of it; the
//     window slides them out as the moment evaluated moves on.
//   - the same over the whole history: the count and sum of those that occurred, the latest few
//     of them (for `why`), and those recorded ahead of their time.
//   - unanswered: the messages still waiting, with the moment each has waited long enough; of
//     those due and never answered, all but the latest few go to a SpillStore once there are
//     many, so that a person with a million unanswered messages costs an event what one with ten
//     does.
// Evaluating at a moment answers exactly as evaluate.h's Evaluate over all the facts (tests
// compare the two at random moments); moments evaluated must not go back. Thread-compatible.
#ifndef IHS_PROJECTIONS_SEGMENTS_KEPT_H_
#define IHS_PROJECTIONS_SEGMENTS_KEPT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "projections/segments/evaluate.h"
#include "projections/segments/rule.h"

namespace ihs::projections::segments {

// One touchpoint as a condition keeps it.
struct KeptTouch {
  int64_t occurred = 0;
  int64_t due = 0;            // unanswered: when it has waited long enough
  int64_t answered = kNever;  // unanswered: when it was answered
  double value = 0;           // sum: what it adds
  std::array<char, 16> id{};  // the event id

  absl::string_view event_id() const { return absl::string_view(id.data(), id.size()); }
  bool operator==(const KeptTouch& o) const;
};

// Waiting messages due and never answered, kept inline before the earliest of them spill.
inline constexpr size_t kKeptInline = 32;

// Where an unanswered condition puts the waiting messages beyond the latest few (the projection:
// keys of its state, per person and condition). A stack of slots: a message spilled is later
// (occurred, then event id) than every one below it; an answered one leaves a hole. What is
// inline stays exact for `why`: at least kMaxAccountEvents messages due are later than any
// spilled.
class SpillStore {
 public:
  virtual ~SpillStore() = default;
  virtual void Put(uint64_t slot, const KeptTouch& t) = 0;
  // nullopt: a hole.
  virtual std::optional<KeptTouch> Get(uint64_t slot) = 0;
  // The slot of the spilled message with this event id, if it is spilled.
  virtual std::optional<uint64_t> Find(absl::string_view event_id) = 0;
  virtual void Remove(uint64_t slot, absl::string_view event_id) = 0;
  // How many messages due and never answered may be inline before one spills.
  size_t inline_limit = kKeptInline;
};

// One condition's state for one person.
struct Kept {
  uint32_t index = 0;  // which condition: the caller's numbering
  uint64_t count = 0;  // whole history: touchpoints that occurred by the last moment evaluated
  double sum = 0;      // ... and their sum
  std::vector<KeptTouch> touches;  // in the window or ahead of it; whole history: ahead of the
                                   // last moment; unanswered: waiting
  std::vector<KeptTouch> latest;   // whole history: the latest kMaxAccountEvents counted, latest
                                   // first
  // unanswered: the messages spilled (SpillStore), the slots used, and the latest spilled.
  uint64_t spilled = 0, slots = 0;
  KeptTouch top;
  bool operator==(const Kept& o) const;
};

// `spill` (unanswered conditions; nullptr: everything inline) is the person's and condition's,
// the same at every call for one Kept.

// Takes a touchpoint the condition's filter picks, at moment `now`.
void Keep(const Condition& c, const Touch& t, int64_t now, Kept& kept, SpillStore* spill = nullptr);

// An inbound message kept by an unanswered condition was answered at `answered`. Whether the
// condition kept it.
bool Answer(absl::string_view event_id, int64_t answered, Kept& kept, SpillStore* spill = nullptr);

// The condition's answer at `now` (>= every moment before), dropping what can no longer count.
// `evidence`: as Evaluate's.
Verdict EvaluateKept(const Condition& c, int64_t now, Kept& kept, Evidence* evidence,
                     SpillStore* spill = nullptr);

// Empties the spill of `kept` (before the kept state is dropped or made again).
void DropSpill(Kept& kept, SpillStore& spill);

}  // namespace ihs::projections::segments

#endif  // IHS_PROJECTIONS_SEGMENTS_KEPT_H_
