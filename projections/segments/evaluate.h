// What a segment rule means (docs/segments.md "Meaning"): whether a person is a member at a
// moment, given the facts the log held about them then, and the next moment the answer can
// change with no new event (a window slides past a touchpoint, a message has waited long
// enough). The segments projection keeps this true per event and per timer; this evaluator is
// its definition, computed from the facts alone, so tests compare the two at any moment.
//
// Times are µs since the epoch. A windowed condition `last D` at moment `now` counts the
// touchpoints that occurred in (now - D, now]. Thread-compatible; Evaluate is a pure function.
#ifndef IHS_PROJECTIONS_SEGMENTS_EVALUATE_H_
#define IHS_PROJECTIONS_SEGMENTS_EVALUATE_H_

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "projections/segments/rule.h"

namespace ihs::projections::segments {

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// One touchpoint of the person, as the log held it at the moment evaluated.
struct Touch {
  int64_t occurred = 0;
  std::string channel, direction, type;  // the schema's names ("email", "inbound", "complaint")
  std::vector<std::string> topics;
  std::string campaign, source;
  double sentiment = NAN;  // NaN: unknown
  double audience = 0;
  bool original = true;  // no causationId
  // For inbound messages, requests and complaints: when the answer occurred (the timeline's
  // rule), kNever while unanswered.
  int64_t answered = kNever;
  std::string event_id;  // for `why`
};

// The person's profile as the log held it at the moment evaluated.
struct Profile {
  std::string kind, cohort;             // the profile ("customer", "1980s"); empty: none
  std::map<std::string, bool> consent;  // channel -> given and not revoked since
  // The community conditions (canonical text) the person is inside, as the latest communityBand
  // event of "$community" for each of their streams says (docs/segments.md "Community").
  std::set<std::string> community;
};

// What the log held about the person at the moment evaluated.
struct Facts : Profile {
  std::vector<Touch> touches;  // any order
};

struct Verdict {
  bool member = false;
  // The earliest moment after `now` at which the answer may change if no event arrives
  // (kNever: only an event can change it). Conservative: at that moment the answer may also
  // stay the same. A combination says only what can turn it: an `and` that is false waits for
  // the last of its false parts to turn (not the first part to move), an `or` that is true for
  // the last of its true parts.
  int64_t next_change = kNever;
};

// One condition of a rule as it stood at a moment: what `why` prints.
struct Account {
  std::string clause;               // the condition's canonical text
  bool holds = false;               // the condition alone
  double value = 0;                 // count, sum: the aggregate; unanswered: messages waiting
  std::vector<std::string> events;  // the touchpoints that made it what it is, at most
                                    // kMaxAccountEvents, latest first
};
inline constexpr size_t kMaxAccountEvents = 8;

// Whether the filter picks the touchpoint.
bool Matches(const Filter& filter, const Touch& touch);

// Evaluates `rule` for the person at `now`. `member_of(name)` answers segment(NAME) for the same
// person at the same moment (the caller evaluates segments in an order where the named ones come
// first; definitions have no cycles).
Verdict Evaluate(const Rule& rule, const Facts& facts, int64_t now,
                 const std::function<bool(const std::string&)>& member_of);

// The conditions of `rule`, in its order, appended to `out`.
void Conditions(const Rule& rule, std::vector<const Condition*>* out);
// Whether the condition has a filter over touchpoints (count, sum, any, none, unanswered).
bool HasFilter(const Condition& c);

// Whether the touchpoint waits for an answer: an inbound message, request or complaint.
bool Waits(const Touch& t);

// What a touchpoint adds to a sum condition (an unknown sentiment: 0).
double SumValue(const Condition& c, const Touch& t);

// unanswered: when a message that occurred then has waited long enough to count.
int64_t AnswerDue(const Condition& c, int64_t occurred);

// Whether a count, sum, any or none condition holds with `n` touchpoints in its window, summing
// to `sum`.
bool Holds(const Condition& c, double n, double sum);

// When a condition over touchpoints may next change its answer with no new event, from the
// moments its touchpoints move (collected while they are visited, at the moment evaluated).
struct Moments {
  std::vector<int64_t> exits;    // count, sum, any, none: when a counted one leaves the window
  std::vector<int64_t> entries;  // ... when one recorded ahead of its time occurs
  int64_t first_due = kNever;    // unanswered: the earliest moment one not yet due becomes due
  int64_t last_answer = 0;       // ... the latest answer of those due (kNever: one is not
                                 // answered yet)
  void Clear() {
    exits.clear();
    entries.clear();
    first_due = kNever;
    last_answer = 0;
  }
};
// Only moments that can turn the answer count: a count that must reach 2 and holds 1 waits for
// entries, not for exits. `n`: touchpoints counted now.
int64_t WindowedNext(const Condition& c, bool member, double n, Moments& m);
int64_t UnansweredNext(bool member, const Moments& m);

// kind, cohort, consent and segment conditions.
Verdict ProfileVerdict(const Condition& c, const Profile& profile,
                       const std::function<bool(const std::string&)>& member_of);

// What a condition's answer rests on: its aggregate, and the touchpoints that made it.
struct Evidence {
  double value = 0;
  std::vector<std::pair<int64_t, absl::string_view>> touches;  // occurred, event id; any order
};

// Evaluates one condition at the moment meant; `evidence` (nullptr: not wanted) collects what
// the answer rests on. Evaluate and Explain for another form of the facts (the projection
// keeps aggregates per condition, projections/segments/kept.h).
using ConditionFn = std::function<Verdict(const Condition&, Evidence*)>;
Verdict Combine(const Rule& rule, const ConditionFn& condition);
std::vector<Account> ExplainWith(const Rule& rule, const ConditionFn& condition);

// A rule's conditions as Explain lists them (in the rule's order, a clause written twice once),
// with their canonical text: made once per rule by a caller that explains it often.
struct Clauses {
  std::vector<const Condition*> conditions;
  std::vector<std::string> texts;
};
Clauses ClausesOf(const Rule& rule);
std::vector<Account> ExplainWith(const Clauses& clauses, const ConditionFn& condition);

// Every condition of `rule` at `now`, in the rule's order (a condition written twice, once).
std::vector<Account> Explain(const Rule& rule, const Facts& facts, int64_t now,
                             const std::function<bool(const std::string&)>& member_of);

}  // namespace ihs::projections::segments

#endif  // IHS_PROJECTIONS_SEGMENTS_EVALUATE_H_
