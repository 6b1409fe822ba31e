#include "projections/segments/evaluate.h"

#include <algorithm>
#include <tuple>

#include "common/service_hours.h"

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

bool Waits(const Touch& t) {
  return t.direction == "inbound" &&
         (t.type == "message" || t.type == "request" || t.type == "complaint");
}

// Calls `visit` with every touchpoint the condition's filter picks (`and_waits`: that also waits
// for an answer), through the facts' index when it holds the condition.
template <typename Visit>
void ForEachMatch(const Condition& c, const Facts& facts, bool and_waits, Visit visit) {
  if (facts.index != nullptr) {
    auto it = facts.index->find(&c);
    if (it != facts.index->end()) {
      for (uint32_t i : it->second) {
        const Touch& t = facts.touches[i];
        if (!and_waits || Waits(t)) visit(t);
      }
      return;
    }
  }
  for (const Touch& t : facts.touches) {
    if ((!and_waits || Waits(t)) && Matches(c.filter, t)) visit(t);
  }
}

// Collects what an account names: the touchpoints that count, latest first.
struct Evidence {
  double value = 0;
  std::vector<const Touch*> touches;
  void Add(const Touch& t) { touches.push_back(&t); }
};

// count, sum, any, none: the touchpoints in the window, and when the window's content changes.
Verdict Windowed(const Condition& c, const Facts& facts, int64_t now, Evidence* evidence) {
  const int64_t window = c.window.seconds * 1'000'000;
  Verdict v;
  double n = 0, sum = 0;
  ForEachMatch(c, facts, false, [&](const Touch& t) {
    if (t.occurred > now) {  // recorded ahead of its time: it enters when it occurs
      v.next_change = std::min(v.next_change, t.occurred);
      return;
    }
    if (window > 0) {
      if (t.occurred <= now - window) return;  // slid out already
      v.next_change = std::min(v.next_change, t.occurred + window);
    }
    ++n;
    if (evidence != nullptr) evidence->Add(t);
    if (c.kind == Condition::Kind::kSum) {
      sum += c.sum == Condition::Sum::kAudience ? t.audience
                                                : (std::isnan(t.sentiment) ? 0 : t.sentiment);
    }
  });
  if (evidence != nullptr) evidence->value = c.kind == Condition::Kind::kSum ? sum : n;
  switch (c.kind) {
    case Condition::Kind::kCount:
      v.member = Compare(c.cmp, n, c.number);
      break;
    case Condition::Kind::kSum:
      v.member = Compare(c.cmp, sum, c.number);
      break;
    case Condition::Kind::kAny:
      v.member = n > 0;
      break;
    default:  // kNone
      v.member = n == 0;
      break;
  }
  return v;
}

// unanswered: an inbound message that matches, unanswered at `now`, waiting since its `due`.
Verdict Unanswered(const Condition& c, const Facts& facts, int64_t now, Evidence* evidence) {
  const int64_t over = c.over_seconds * 1'000'000;
  Verdict v;
  ForEachMatch(c, facts, true, [&](const Touch& t) {
    const int64_t due = over == 0         ? t.occurred
                        : c.service_hours ? ServiceHours::Default().Add(t.occurred, over)
                                          : t.occurred + over;
    // Answered by now, or before it was due: it never makes the person a member (again).
    if (t.answered <= now || t.answered <= due) return;
    if (due <= now) {
      v.member = true;
      if (evidence != nullptr) {
        ++evidence->value;
        evidence->Add(t);
      }
    } else {
      v.next_change = std::min(v.next_change, due);
    }
    if (t.answered != kNever) v.next_change = std::min(v.next_change, t.answered);
  });
  return v;
}

Verdict Evaluate(const Condition& c, const Facts& facts, int64_t now,
                 const std::function<bool(const std::string&)>& member_of,
                 Evidence* evidence = nullptr) {
  Verdict v;
  switch (c.kind) {
    case Condition::Kind::kCount:
    case Condition::Kind::kSum:
    case Condition::Kind::kAny:
    case Condition::Kind::kNone:
      return Windowed(c, facts, now, evidence);
    case Condition::Kind::kUnanswered:
      return Unanswered(c, facts, now, evidence);
    case Condition::Kind::kKind:
      v.member = In(c.values, facts.kind) != c.negate;
      return v;
    case Condition::Kind::kCohort:
      v.member = In(c.values, facts.cohort) != c.negate;
      return v;
    case Condition::Kind::kConsent: {
      auto it = facts.consent.find(c.values[0]);
      v.member = it != facts.consent.end() && it->second;
      return v;
    }
    case Condition::Kind::kSegment:
      v.member = member_of(c.values[0]);
      return v;
  }
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

Verdict Evaluate(const Rule& rule, const Facts& facts, int64_t now,
                 const std::function<bool(const std::string&)>& member_of) {
  if (rule.op == Rule::Op::kCondition) return Evaluate(rule.condition, facts, now, member_of);
  Verdict v;
  v.member = rule.op == Rule::Op::kAnd;
  for (const Rule& child : rule.children) {
    const Verdict c = Evaluate(child, facts, now, member_of);
    v.next_change = std::min(v.next_change, c.next_change);
    if (rule.op == Rule::Op::kAnd) v.member = v.member && c.member;
    if (rule.op == Rule::Op::kOr) v.member = v.member || c.member;
    if (rule.op == Rule::Op::kNot) v.member = !c.member;
  }
  return v;
}

bool Concerns(const Rule& rule, const Touch& touch) {
  if (rule.op != Rule::Op::kCondition) {
    return std::any_of(rule.children.begin(), rule.children.end(),
                       [&](const Rule& child) { return Concerns(child, touch); });
  }
  return HasFilter(rule.condition) && Matches(rule.condition.filter, touch);
}

std::vector<Account> Explain(const Rule& rule, const Facts& facts, int64_t now,
                             const std::function<bool(const std::string&)>& member_of) {
  std::vector<const Condition*> conditions;
  Conditions(rule, &conditions);
  std::vector<Account> out;
  for (const Condition* c : conditions) {
    std::string clause = Format(*c);
    if (std::any_of(out.begin(), out.end(), [&](const Account& a) { return a.clause == clause; })) {
      continue;
    }
    Evidence evidence;
    Account a;
    a.clause = std::move(clause);
    a.holds = Evaluate(*c, facts, now, member_of, &evidence).member;
    a.value = evidence.value;
    std::sort(evidence.touches.begin(), evidence.touches.end(), [](const Touch* x, const Touch* y) {
      return std::tie(x->occurred, x->event_id) > std::tie(y->occurred, y->event_id);
    });
    for (const Touch* t : evidence.touches) {
      if (a.events.size() == kMaxAccountEvents) break;
      a.events.push_back(t->event_id);
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace ihs::projections::segments
