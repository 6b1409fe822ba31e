#include "projections/segments/kept.h"

#include <algorithm>
#include <cstring>

namespace ihs::projections::segments {
namespace {

// The order `why` lists touchpoints in (ExplainWith's): latest first, then by id as bytes.
bool Later(const KeptTouch& a, const KeptTouch& b) {
  if (a.occurred != b.occurred) return a.occurred > b.occurred;
  return a.event_id() > b.event_id();
}

void AddLatest(const KeptTouch& t, std::vector<KeptTouch>& latest) {
  auto at = std::lower_bound(latest.begin(), latest.end(), t, Later);
  if (at - latest.begin() >= static_cast<std::ptrdiff_t>(kMaxAccountEvents)) return;
  latest.insert(at, t);
  if (latest.size() > kMaxAccountEvents) latest.pop_back();
}

// Whole history: what occurred by `now` moves into the count.
void Settle(const Condition& c, int64_t now, Kept& k) {
  auto ahead = std::stable_partition(k.touches.begin(), k.touches.end(),
                                     [now](const KeptTouch& t) { return t.occurred > now; });
  for (auto it = ahead; it != k.touches.end(); ++it) {
    ++k.count;
    if (c.kind == Condition::Kind::kSum) k.sum += it->value;
    AddLatest(*it, k.latest);
  }
  k.touches.erase(ahead, k.touches.end());
}

bool IsWindowed(const Condition& c) {
  return c.kind == Condition::Kind::kCount || c.kind == Condition::Kind::kSum ||
         c.kind == Condition::Kind::kAny || c.kind == Condition::Kind::kNone;
}

}  // namespace

bool KeptTouch::operator==(const KeptTouch& o) const {
  return occurred == o.occurred && due == o.due && answered == o.answered &&
         std::memcmp(&value, &o.value, sizeof value) == 0 && id == o.id;
}

bool Kept::operator==(const Kept& o) const {
  return index == o.index && count == o.count && std::memcmp(&sum, &o.sum, sizeof sum) == 0 &&
         touches == o.touches && latest == o.latest;
}

void Keep(const Condition& c, const Touch& t, int64_t now, Kept& k) {
  KeptTouch kt;
  kt.occurred = t.occurred;
  std::memcpy(kt.id.data(), t.event_id.data(), std::min(t.event_id.size(), kt.id.size()));
  if (c.kind == Condition::Kind::kUnanswered) {
    if (!Waits(t)) return;
    kt.due = AnswerDue(c, t.occurred);
    kt.answered = t.answered;
    if (kt.answered <= now || kt.answered <= kt.due) return;  // can never count
    k.touches.push_back(kt);
    return;
  }
  if (!IsWindowed(c)) return;
  if (c.kind == Condition::Kind::kSum) kt.value = SumValue(c, t);
  const int64_t window = c.window.seconds * 1'000'000;
  if (window > 0 && t.occurred <= now - window) return;  // slid out already
  k.touches.push_back(kt);
  if (window == 0 && t.occurred <= now) Settle(c, now, k);
}

bool Answer(absl::string_view event_id, int64_t answered, Kept& k) {
  bool found = false;
  for (KeptTouch& t : k.touches) {
    if (t.event_id() == event_id && answered < t.answered) {
      t.answered = answered;
      found = true;
    }
  }
  return found;
}

Verdict EvaluateKept(const Condition& c, int64_t now, Kept& k, Evidence* evidence) {
  thread_local Moments m;  // reused: an evaluation allocates nothing once warm
  m.Clear();
  Verdict v;
  if (c.kind == Condition::Kind::kUnanswered) {
    // Answered by now, or before it was due: it never counts again (an answer only moves earlier).
    k.touches.erase(std::remove_if(k.touches.begin(), k.touches.end(),
                                   [now](const KeptTouch& t) {
                                     return t.answered <= now || t.answered <= t.due;
                                   }),
                    k.touches.end());
    for (const KeptTouch& t : k.touches) {
      if (t.due <= now) {
        v.member = true;
        m.last_answer = std::max(m.last_answer, t.answered);
        if (evidence != nullptr) {
          ++evidence->value;
          evidence->touches.emplace_back(t.occurred, t.event_id());
        }
      } else {
        m.first_due = std::min(m.first_due, t.due);
      }
    }
    v.next_change = UnansweredNext(v.member, m);
    return v;
  }
  const int64_t window = c.window.seconds * 1'000'000;
  double n = 0, sum = 0;
  if (window == 0) {
    Settle(c, now, k);
    n = static_cast<double>(k.count);
    sum = k.sum;
    for (const KeptTouch& t : k.touches) m.entries.push_back(t.occurred);
    if (evidence != nullptr) {
      for (const KeptTouch& t : k.latest) evidence->touches.emplace_back(t.occurred, t.event_id());
    }
  } else {
    k.touches.erase(std::remove_if(k.touches.begin(), k.touches.end(),
                                   [&](const KeptTouch& t) { return t.occurred <= now - window; }),
                    k.touches.end());
    for (const KeptTouch& t : k.touches) {
      if (t.occurred > now) {  // recorded ahead of its time: it enters when it occurs
        m.entries.push_back(t.occurred);
        continue;
      }
      m.exits.push_back(t.occurred + window);
      ++n;
      sum += t.value;
      if (evidence != nullptr) evidence->touches.emplace_back(t.occurred, t.event_id());
    }
  }
  if (evidence != nullptr) evidence->value = c.kind == Condition::Kind::kSum ? sum : n;
  v.member = Holds(c, n, sum);
  v.next_change = WindowedNext(c, v.member, n, m);
  return v;
}

}  // namespace ihs::projections::segments
