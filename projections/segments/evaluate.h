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
#include <string>
#include <vector>

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

// What the log held about the person at the moment evaluated.
// For conditions (by address), the indices into Facts::touches of the touchpoints their filter
// picks, in any order: a caller that evaluates the same person often keeps it as touchpoints are
// added, so that each is matched against each filter once, not at every evaluation.
using MatchIndex = std::map<const Condition*, std::vector<uint32_t>>;

struct Facts {
  std::vector<Touch> touches;           // any order
  std::string kind, cohort;             // the profile ("customer", "1980s"); empty: none
  std::map<std::string, bool> consent;  // channel -> given and not revoked since
  // Optional; a condition it holds is evaluated over those touchpoints only (their filter is
  // not checked again), any other over all of them.
  const MatchIndex* index = nullptr;
};

struct Verdict {
  bool member = false;
  // The earliest moment after `now` at which the answer may change if no event arrives
  // (kNever: only an event can change it). Conservative: at that moment the answer may also
  // stay the same.
  int64_t next_change = kNever;
};

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

// Whether a touchpoint can change what `rule` answers, now or later: it matches the filter of one
// of its count, sum, any, none or unanswered conditions. (Profile, consent and other segments
// change only with their own events.)
bool Concerns(const Rule& rule, const Touch& touch);

// One condition of a rule as it stood at a moment: what `why` prints.
struct Account {
  std::string clause;               // the condition's canonical text
  bool holds = false;               // the condition alone
  double value = 0;                 // count, sum: the aggregate; unanswered: messages waiting
  std::vector<std::string> events;  // the touchpoints that made it what it is, at most
                                    // kMaxAccountEvents, latest first
};
inline constexpr size_t kMaxAccountEvents = 8;

// Every condition of `rule` at `now`, in the rule's order (a condition written twice, once).
std::vector<Account> Explain(const Rule& rule, const Facts& facts, int64_t now,
                             const std::function<bool(const std::string&)>& member_of);

}  // namespace ihs::projections::segments

#endif  // IHS_PROJECTIONS_SEGMENTS_EVALUATE_H_
