#include "projections/segments/evaluate.h"

#include <algorithm>
#include <cmath>

#include "common/service_hours.h"
#include "common/time_math.h"
#include "schema/json.h"
#include "schema/touchpoint.h"

namespace ihs::projections::segments {
namespace {

bool Compare(Cmp cmp, double a, double b) {
  switch (cmp) {
    case Cmp::kGe:
      return a >= b;
    case Cmp::kGt:
      return a > b;
    case Cmp::kLe:
      return a <= b;
    case Cmp::kLt:
      return a < b;
    case Cmp::kEq:
      return a == b;
    case Cmp::kNe:
      return a != b;
  }
  return false;
}

bool In(const std::vector<std::string>& values, const std::string& v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// Calls `visit` with every touchpoint the condition's filter picks (`and_waits`: that also waits
// for an answer).
template <typename Visit>
void ForEachMatch(const Condition& c, const Facts& facts, bool and_waits, Visit visit) {
  for (const Touch& t : facts.touches) {
    if ((!and_waits || Waits(t)) && Matches(c.filter, t)) visit(t);
  }
}

// count, sum, any, none: the touchpoints in the window, and when the window's content changes.
Verdict Windowed(const Condition& c, const Facts& facts, int64_t now, Evidence* evidence) {
  const int64_t window = c.window.seconds * 1'000'000;
  const int64_t gone = SaturatingSub(now, window);  // at or before it: slid out
  Moments m;
  double n = 0, sum = 0;
  ForEachMatch(c, facts, false, [&](const Touch& t) {
    if (t.occurred > now) {  // recorded ahead of its time: it enters when it occurs
      m.entries.push_back(t.occurred);
      return;
    }
    if (window > 0) {
      if (t.occurred <= gone) return;  // slid out already
      m.exits.push_back(SaturatingAdd(t.occurred, window));
    }
    ++n;
    if (evidence != nullptr) evidence->touches.emplace_back(t.occurred, t.event_id);
    if (c.kind == Condition::Kind::kSum) sum += SumValue(c, t);
  });
  if (evidence != nullptr) evidence->value = c.kind == Condition::Kind::kSum ? sum : n;
  Verdict v;
  v.member = Holds(c, n, sum);
  v.next_change = WindowedNext(c, v.member, n, m);
  return v;
}

// unanswered: an inbound message that matches, unanswered at `now`, waiting since its `due`.
Verdict Unanswered(const Condition& c, const Facts& facts, int64_t now, Evidence* evidence) {
  Verdict v;
  Moments m;
  ForEachMatch(c, facts, true, [&](const Touch& t) {
    const int64_t due = AnswerDue(c, t.occurred);
    // Answered by now, or before it was due: it never makes the person a member (again).
    if (t.answered <= now || t.answered <= due) return;
    if (due <= now) {
      v.member = true;
      m.last_answer = std::max(m.last_answer, t.answered);
      if (evidence != nullptr) {
        ++evidence->value;
        evidence->touches.emplace_back(t.occurred, t.event_id);
      }
    } else {
      m.first_due = std::min(m.first_due, due);
    }
  });
  v.next_change = UnansweredNext(v.member, m);
  return v;
}

}  // namespace

void Conditions(const Rule& rule, std::vector<const Condition*>* out) {
  if (rule.op == Rule::Op::kCondition) {
    out->push_back(&rule.condition);
    return;
  }
  for (const Rule& child : rule.children) Conditions(child, out);
}

bool HasFilter(const Condition& c) {
  switch (c.kind) {
    case Condition::Kind::kCount:
    case Condition::Kind::kSum:
    case Condition::Kind::kAny:
    case Condition::Kind::kNone:
    case Condition::Kind::kUnanswered:
      return true;
    default:
      return false;
  }
}

bool Matches(const Filter& f, const Touch& t) {
  switch (f.op) {
    case Filter::Op::kAll:
      return true;
    case Filter::Op::kAnd:
      return std::all_of(f.children.begin(), f.children.end(),
                         [&t](const Filter& c) { return Matches(c, t); });
    case Filter::Op::kOr:
      return std::any_of(f.children.begin(), f.children.end(),
                         [&t](const Filter& c) { return Matches(c, t); });
    case Filter::Op::kNot:
      return !Matches(f.children[0], t);
    case Filter::Op::kIn:
      switch (f.field) {
        case Field::kChannel:
          return In(f.values, t.channel);
        case Field::kDirection:
          return In(f.values, t.direction);
        case Field::kType:
          return In(f.values, t.type);
        case Field::kTopic:
          return std::any_of(t.topics.begin(), t.topics.end(),
                             [&f](const std::string& topic) { return In(f.values, topic); });
        case Field::kCampaign:
          return In(f.values, t.campaign);
        case Field::kSource:
          return In(f.values, t.source);
      }
      return false;
    case Filter::Op::kSentiment:
      return !std::isnan(t.sentiment) && Compare(f.cmp, t.sentiment, f.number);
    case Filter::Op::kOriginal:
      return t.original;
  }
  return false;
}

bool Waits(const Touch& t) {
  // The shared rule (schema/touchpoint.h), over the schema's names this form holds.
  using schema::Direction;
  using schema::TouchpointType;
  for (Direction d : {Direction::INBOUND, Direction::PUBLIC}) {
    if (t.direction != schema::EnumName(d)) continue;
    for (TouchpointType y :
         {TouchpointType::MESSAGE, TouchpointType::REQUEST, TouchpointType::COMPLAINT}) {
      if (t.type == schema::EnumName(y)) return schema::WaitsForAnswer(d, y);
    }
  }
  return false;
}

double SumValue(const Condition& c, const Touch& t) {
  if (c.sum == Condition::Sum::kAudience) return t.audience;
  return std::isnan(t.sentiment) ? 0 : t.sentiment;
}

int64_t AnswerDue(const Condition& c, int64_t occurred) {
  const int64_t over = c.over_seconds * 1'000'000;
  if (over == 0) return occurred;
  return c.service_hours ? ServiceHours::Default().Add(occurred, over)
                         : SaturatingAdd(occurred, over);
}

bool Holds(const Condition& c, double n, double sum) {
  switch (c.kind) {
    case Condition::Kind::kCount:
      return Compare(c.cmp, n, c.number);
    case Condition::Kind::kSum:
      return Compare(c.cmp, sum, c.number);
    case Condition::Kind::kAny:
      return n > 0;
    case Condition::Kind::kNone:
      return n == 0;
    default:
      return false;
  }
}

namespace {

// The k-th earliest of `moments` (k from 1), kNever if there are fewer.
int64_t Kth(std::vector<int64_t>& moments, double k) {
  if (k < 1) k = 1;
  if (k > static_cast<double>(moments.size())) return kNever;
  const auto at = moments.begin() + static_cast<std::ptrdiff_t>(k) - 1;
  std::nth_element(moments.begin(), at, moments.end());
  return *at;
}

int64_t First(const std::vector<int64_t>& moments) {
  return moments.empty() ? kNever : *std::min_element(moments.begin(), moments.end());
}

}  // namespace

int64_t WindowedNext(const Condition& c, bool member, double n, Moments& m) {
  // As a count: member while lo <= n (at least), or while n <= hi (at most).
  Cmp cmp = c.cmp;
  double number = c.number;
  if (c.kind == Condition::Kind::kAny) cmp = Cmp::kGe, number = 1;
  if (c.kind == Condition::Kind::kNone) cmp = Cmp::kLe, number = 0;
  if (c.kind == Condition::Kind::kSum || cmp == Cmp::kEq || cmp == Cmp::kNe) {
    return std::min(First(m.exits), First(m.entries));  // either way may turn it
  }
  if (cmp == Cmp::kGe || cmp == Cmp::kGt) {
    const double lo = cmp == Cmp::kGe ? std::ceil(number) : std::floor(number) + 1;
    // A member leaves once enough have left; another enters once enough have entered.
    return member ? Kth(m.exits, n - lo + 1) : Kth(m.entries, lo - n);
  }
  const double hi = cmp == Cmp::kLe ? std::floor(number) : std::ceil(number) - 1;
  return member ? Kth(m.entries, hi - n + 1) : Kth(m.exits, n - hi);
}

int64_t UnansweredNext(bool member, const Moments& m) {
  // A member leaves once every message due is answered; another enters when one falls due.
  return member ? m.last_answer : m.first_due;
}

Verdict ProfileVerdict(const Condition& c, const Profile& profile,
                       const std::function<bool(const std::string&)>& member_of) {
  Verdict v;
  switch (c.kind) {
    case Condition::Kind::kKind:
      v.member = In(c.values, profile.kind) != c.negate;
      break;
    case Condition::Kind::kCohort:
      v.member = In(c.values, profile.cohort) != c.negate;
      break;
    case Condition::Kind::kConsent: {
      auto it = profile.consent.find(c.values[0]);
      v.member = it != profile.consent.end() && it->second;
      break;
    }
    case Condition::Kind::kSegment:
      v.member = member_of(c.values[0]);
      break;
    case Condition::Kind::kCommunity:
      v.member = profile.community.count(Format(c)) > 0;
      break;
    default:
      break;
  }
  return v;
}

Verdict Combine(const Rule& rule, const ConditionFn& condition) {
  if (rule.op == Rule::Op::kCondition) return condition(rule.condition, nullptr);
  if (rule.op == Rule::Op::kNot) {
    Verdict v = Combine(rule.children[0], condition);
    v.member = !v.member;
    return v;
  }
  // and: a true one turns false when any part turns; a false one turns true only once every
  // false part has turned. or: the same with true and false exchanged.
  const bool decisive = rule.op == Rule::Op::kOr;  // the value that decides alone
  int64_t any_part = kNever, decisive_last = 0;
  bool decided = false;
  for (const Rule& child : rule.children) {
    const Verdict c = Combine(child, condition);
    any_part = std::min(any_part, c.next_change);
    if (c.member == decisive) {
      decided = true;
      decisive_last = std::max(decisive_last, c.next_change);
    }
  }
  Verdict v;
  v.member = decided == decisive;
  v.next_change = decided ? decisive_last : any_part;
  return v;
}

Clauses ClausesOf(const Rule& rule) {
  std::vector<const Condition*> conditions;
  Conditions(rule, &conditions);
  Clauses out;
  for (const Condition* c : conditions) {
    std::string clause = Format(*c);
    if (std::find(out.texts.begin(), out.texts.end(), clause) != out.texts.end()) continue;
    out.conditions.push_back(c);
    out.texts.push_back(std::move(clause));
  }
  return out;
}

std::vector<Account> ExplainWith(const Rule& rule, const ConditionFn& condition) {
  return ExplainWith(ClausesOf(rule), condition);
}

std::vector<Account> ExplainWith(const Clauses& clauses, const ConditionFn& condition) {
  std::vector<Account> out;
  out.reserve(clauses.conditions.size());
  for (size_t i = 0; i < clauses.conditions.size(); ++i) {
    Evidence evidence;
    Account a;
    a.clause = clauses.texts[i];
    a.holds = condition(*clauses.conditions[i], &evidence).member;
    a.value = evidence.value;
    std::sort(evidence.touches.begin(), evidence.touches.end(),
              [](const auto& x, const auto& y) { return x > y; });
    for (const auto& [occurred, id] : evidence.touches) {
      if (a.events.size() == kMaxAccountEvents) break;
      a.events.emplace_back(id);
    }
    out.push_back(std::move(a));
  }
  return out;
}

namespace {

ConditionFn OverFacts(const Facts& facts, int64_t now,
                      const std::function<bool(const std::string&)>& member_of) {
  return [&facts, now, &member_of](const Condition& c, Evidence* evidence) {
    switch (c.kind) {
      case Condition::Kind::kCount:
      case Condition::Kind::kSum:
      case Condition::Kind::kAny:
      case Condition::Kind::kNone:
        return Windowed(c, facts, now, evidence);
      case Condition::Kind::kUnanswered:
        return Unanswered(c, facts, now, evidence);
      default:
        return ProfileVerdict(c, facts, member_of);
    }
  };
}

}  // namespace

Verdict Evaluate(const Rule& rule, const Facts& facts, int64_t now,
                 const std::function<bool(const std::string&)>& member_of) {
  return Combine(rule, OverFacts(facts, now, member_of));
}

std::vector<Account> Explain(const Rule& rule, const Facts& facts, int64_t now,
                             const std::function<bool(const std::string&)>& member_of) {
  return ExplainWith(rule, OverFacts(facts, now, member_of));
}

}  // namespace ihs::projections::segments
