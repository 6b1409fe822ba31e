// The segment rule language (docs/segments.md "Rules"): a rule is parsed once, when a definition
// is appended, into the tree below, and printed back in one canonical form (Format), which is
// what the definition stores and what `why` quotes clause by clause.
//
//   rule      := or
//   or        := and { "or" and }
//   and       := not { "and" not }
//   not       := "not" not | "(" or ")" | condition
//   condition := "count" "(" [filter] ["," window] ")" cmp INT
//              | "sum" "(" ("sentiment" | "audience") ["," filter] ["," window] ")" cmp NUMBER
//              | ("any" | "none") "(" [filter] ["," window] ")"
//              | "unanswered" "(" [filter] ["," "over" duration ["service" "hours"]] ")"
//              | "kind" ("=" | "!=") KIND | "kind" ["not"] "in" list
//              | "cohort" ("=" | "!=") VALUE | "cohort" ["not"] "in" list
//              | "consent" "(" CHANNEL ")"
//              | "segment" "(" NAME ")"
//              | "community" MEASURE ("in" "top" NUMBER "%" | (">" | ">=") NUMBER)
//   MEASURE   := "reach" | "standing" | "value" | "risk"
//   filter    := fand { "or" fand }
//   fand      := fnot { "and" fnot }
//   fnot      := "not" fnot | "(" filter ")" | "original"
//              | FIELD ("=" | "!=") VALUE | FIELD ["not"] "in" list | "sentiment" cmp NUMBER
//   FIELD     := "channel" | "direction" | "type" | "topic" | "campaign" | "source"
//   list      := "[" VALUE { "," VALUE } "]"
//   window    := "last" duration
//   duration  := INT ("s" | "m" | "h" | "d" | "w"), written together ("30d"), or INT "service"
//                "hours" (for unanswered only)
//   cmp       := ">=" | ">" | "<=" | "<" | "=" | "!="
//
// Words are [A-Za-z0-9_.+-]+; a VALUE may also be a "quoted string". Channel, direction, type and
// kind values are the schema's names (schema/event.capnp), checked here. Thread-compatible.
#ifndef IHS_PROJECTIONS_SEGMENTS_RULE_H_
#define IHS_PROJECTIONS_SEGMENTS_RULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/types.h"

namespace ihs::projections::segments {

inline constexpr size_t kMaxRuleBytes = store::kMaxSegmentRuleBytes;
inline constexpr int kMaxRuleDepth = 32;                          // nested parentheses and nots
inline constexpr int64_t kMaxWindowSeconds = 10LL * 366 * 86400;  // 10 years

enum class Cmp { kGe, kGt, kLe, kLt, kEq, kNe };

// The touchpoint fields a filter can name.
enum class Field { kChannel, kDirection, kType, kTopic, kCampaign, kSource };

// A condition on one touchpoint.
struct Filter {
  enum class Op { kAll, kAnd, kOr, kNot, kIn, kSentiment, kOriginal };
  Op op = Op::kAll;
  std::vector<Filter> children;     // kAnd, kOr (two or more), kNot (one)
  Field field = Field::kChannel;    // kIn: the field is one of `values`
  std::vector<std::string> values;  // the schema's names for enum fields, else the text
  Cmp cmp = Cmp::kGe;               // kSentiment: sentiment `cmp` number
  double number = 0;
};

struct Window {
  int64_t seconds = 0;  // 0: the whole history
};

struct Condition {
  enum class Kind {
    kCount,
    kSum,
    kAny,
    kNone,
    kUnanswered,
    kKind,
    kCohort,
    kConsent,
    kSegment,
    kCommunity
  };
  enum class Sum { kSentiment, kAudience };
  Kind kind = Kind::kCount;
  Filter filter;  // count, sum, any, none, unanswered
  Window window;  // count, sum, any, none
  Sum sum = Sum::kSentiment;
  Cmp cmp = Cmp::kGe;          // count, sum and community: the aggregate or figure `cmp` number
  double number = 0;           // community: the percentage when `top`
  bool top = false;            // community: "in top NUMBER%"
  int64_t over_seconds = 0;    // unanswered: for more than this long (0: at all)
  bool service_hours = false;  // ... counted in service hours
  bool negate = false;         // kind, cohort: "!=" or "not in"
  std::vector<std::string> values;  // kind, cohort: the values; consent: the channel;
                                    // segment: the name; community: the measure
};

struct Rule {
  enum class Op { kCondition, kAnd, kOr, kNot };
  Op op = Op::kCondition;
  std::vector<Rule> children;  // kAnd, kOr (two or more), kNot (one)
  Condition condition;
};

// Parses `text`. A rule that does not parse is kInvalidArgument with the column (from 1) and what
// was expected: `at 17: expected ")" after the filter, found "last30d"`.
absl::StatusOr<Rule> ParseRule(absl::string_view text);

// The canonical text of a rule: parsing it gives the same rule, and it is what a definition
// stores.
std::string Format(const Rule& rule);
std::string Format(const Condition& condition);
std::string Format(const Filter& filter);

// The segments a rule names (segment(NAME)), sorted, each once.
std::vector<std::string> SegmentsNamed(const Rule& rule);

// Whether `name` may name a segment: [a-z0-9_]{1,64}.
bool ValidSegmentName(absl::string_view name);

}  // namespace ihs::projections::segments

#endif  // IHS_PROJECTIONS_SEGMENTS_RULE_H_
