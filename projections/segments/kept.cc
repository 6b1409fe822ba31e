#include "projections/segments/kept.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/time_math.h"

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

// unanswered: whether the message counts at `now`.
bool DueAt(const KeptTouch& t, int64_t now) { return t.due <= now && t.answered > now; }

// The inline messages due at `now` that come after every spilled one.
size_t AfterTop(const Kept& k, int64_t now) {
  size_t n = 0;
  for (const KeptTouch& t : k.touches) n += DueAt(t, now) && (k.spilled == 0 || Later(t, k.top));
  return n;
}

// After the top slot was emptied: the slots below it that are holes go too, and the latest
// spilled message becomes the top.
void SettleTop(Kept& k, SpillStore& spill) {
  while (k.spilled > 0 && k.slots > 0) {
    if (std::optional<KeptTouch> t = spill.Get(k.slots - 1)) {
      k.top = *t;
      return;
    }
    --k.slots;
  }
  k.spilled = k.slots = 0;  // holes have no keys
  k.top = KeptTouch();
}

// Spills the earliest inline messages due and never answered that come after the top, while
// more than the limit come after it and enough stay. Sorts once: when many messages fall due at
// one moment, they spill in one pass.
void SpillExcess(Kept& k, int64_t now, SpillStore& spill) {
  if (AfterTop(k, now) <= spill.inline_limit) return;
  std::vector<size_t> after;  // the inline messages due after the top, earliest first
  for (size_t i = 0; i < k.touches.size(); ++i) {
    const KeptTouch& t = k.touches[i];
    if (DueAt(t, now) && (k.spilled == 0 || Later(t, k.top))) after.push_back(i);
  }
  std::sort(after.begin(), after.end(),
            [&k](size_t a, size_t b) { return Later(k.touches[b], k.touches[a]); });
  std::vector<bool> spilled(k.touches.size(), false);
  size_t left = after.size();  // due after the top
  for (size_t j = 0; j < after.size() && left > spill.inline_limit; ++j) {
    const KeptTouch& t = k.touches[after[j]];
    if (t.answered != kNever) continue;  // answered later than now: stays inline
    if (after.size() - j - 1 < kMaxAccountEvents) break;
    spill.Put(k.slots++, t);
    ++k.spilled;
    k.top = t;
    spilled[after[j]] = true;
    left = after.size() - j - 1;
  }
  size_t out = 0;
  for (size_t i = 0; i < k.touches.size(); ++i) {
    if (!spilled[i]) k.touches[out++] = k.touches[i];
  }
  k.touches.resize(out);
}

// Takes spilled messages back, latest first, until enough inline ones come after the top.
void Refill(Kept& k, int64_t now, SpillStore& spill) {
  while (k.spilled > 0 && AfterTop(k, now) < kMaxAccountEvents) {
    const KeptTouch t = k.top;
    spill.Remove(k.slots - 1, t.event_id());
    --k.spilled;
    --k.slots;
    k.touches.push_back(t);
    SettleTop(k, spill);
  }
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
         touches == o.touches && latest == o.latest && spilled == o.spilled && slots == o.slots &&
         top == o.top;
}

void Keep(const Condition& c, const Touch& t, int64_t now, Kept& k, SpillStore* spill) {
  KeptTouch kt;
  kt.occurred = t.occurred;
  std::memcpy(kt.id.data(), t.event_id.data(), std::min(t.event_id.size(), kt.id.size()));
  if (c.kind == Condition::Kind::kUnanswered) {
    if (!Waits(t)) return;
    kt.due = AnswerDue(c, t.occurred);
    kt.answered = t.answered;
    if (kt.answered <= now || kt.answered <= kt.due) return;  // can never count
    k.touches.push_back(kt);
    if (spill != nullptr) SpillExcess(k, now, *spill);
    return;
  }
  if (!IsWindowed(c)) return;
  if (c.kind == Condition::Kind::kSum) kt.value = SumValue(c, t);
  const int64_t window = c.window.seconds * 1'000'000;
  if (window > 0 && t.occurred <= now - window) return;  // slid out already
  k.touches.push_back(kt);
  if (window == 0 && t.occurred <= now) Settle(c, now, k);
}

bool Answer(absl::string_view event_id, int64_t answered, Kept& k, SpillStore* spill) {
  for (KeptTouch& t : k.touches) {
    if (t.event_id() != event_id) continue;
    if (answered >= t.answered) return false;
    t.answered = answered;
    return true;
  }
  if (spill == nullptr || k.spilled == 0) return false;
  const std::optional<uint64_t> slot = spill->Find(event_id);
  if (!slot) return false;
  std::optional<KeptTouch> t = spill->Get(*slot);
  if (!t) return false;
  spill->Remove(*slot, event_id);
  --k.spilled;
  t->answered = answered;  // earlier: a spilled message was never answered
  k.touches.push_back(*t);
  if (*slot + 1 == k.slots) {
    --k.slots;
    SettleTop(k, *spill);
  } else if (k.spilled == 0) {
    SettleTop(k, *spill);
  }
  return true;
}

void DropSpill(Kept& k, SpillStore& spill) {
  for (uint64_t slot = 0; slot < k.slots; ++slot) {
    if (std::optional<KeptTouch> t = spill.Get(slot)) spill.Remove(slot, t->event_id());
  }
  k.spilled = k.slots = 0;
  k.top = KeptTouch();
}

Verdict EvaluateKept(const Condition& c, int64_t now, Kept& k, Evidence* evidence,
                     SpillStore* spill) {
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
    if (spill != nullptr) {  // messages fell due, or spilled ones are needed back
      SpillExcess(k, now, *spill);
      Refill(k, now, *spill);
    }
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
    if (k.spilled > 0) {  // due, never answered, and earlier than the latest inline ones
      v.member = true;
      m.last_answer = kNever;
      if (evidence != nullptr) evidence->value += static_cast<double>(k.spilled);
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
    const int64_t gone = SaturatingSub(now, window);  // at or before it: slid out
    k.touches.erase(std::remove_if(k.touches.begin(), k.touches.end(),
                                   [&](const KeptTouch& t) { return t.occurred <= gone; }),
                    k.touches.end());
    for (const KeptTouch& t : k.touches) {
      if (t.occurred > now) {  // recorded ahead of its time: it enters when it occurs
        m.entries.push_back(t.occurred);
        continue;
      }
      m.exits.push_back(SaturatingAdd(t.occurred, window));
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
