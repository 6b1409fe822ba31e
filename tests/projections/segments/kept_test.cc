// What the projection keeps per condition answers as the rule over all the facts does
// (projections/segments/kept.h): the same membership, next change and `why`, at every moment.
#include "projections/segments/kept.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"

namespace ihs::projections::segments {
namespace {

constexpr int64_t kHour = 3600LL * 1'000'000;
constexpr int64_t kStart = 1767607200LL * 1'000'000;  // Monday 2026-01-05 10:00 UTC

const char* const kRules[] = {
    "count(type = complaint, last 2d) >= 2",
    "count(channel in [email, twitter]) >= 3",
    "sum(sentiment, last 1d) < -1",
    "sum(audience, type = share) >= 1000",
    "any(type = purchase) and none(type = purchase, last 3d)",
    "none(direction = inbound, last 12h)",
    "unanswered(type = complaint, over 4h)",
    "unanswered(over 8 service hours)",
    "unanswered()",
};

struct Ref {
  Facts facts;
  std::map<const Condition*, Kept> kept;
};

// A spill in memory that spills early, so that a few dozen waiting messages exercise it.
class MapSpill : public SpillStore {
 public:
  MapSpill() { inline_limit = 9; }
  void Put(uint64_t slot, const KeptTouch& t) override {
    EXPECT_EQ(slots.count(slot), 0u) << "slot " << slot << " written twice";
    slots[slot] = t;
    ids[std::string(t.event_id())] = slot;
    ++spills;
  }
  std::optional<KeptTouch> Get(uint64_t slot) override {
    auto it = slots.find(slot);
    if (it == slots.end()) return std::nullopt;
    return it->second;
  }
  std::optional<uint64_t> Find(absl::string_view event_id) override {
    auto it = ids.find(std::string(event_id));
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  void Remove(uint64_t slot, absl::string_view event_id) override {
    EXPECT_EQ(slots.erase(slot), 1u);
    EXPECT_EQ(ids.erase(std::string(event_id)), 1u);
  }
  std::map<uint64_t, KeptTouch> slots;
  std::map<std::string, uint64_t> ids;
  int spills = 0;
};

// Touchpoints, answers and moments at random; at each moment every rule is evaluated over the
// kept states and over all the facts. `spill`: unanswered conditions spill (MapSpill).
void CompareAtEveryMoment(bool spill) {
  const char* types[] = {"complaint", "message", "request", "purchase", "share", "reply"};
  const char* channels[] = {"email", "twitter", "phone"};
  const char* directions[] = {"inbound", "outbound", "public"};
  int compared = 0, members = 0, spilled = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<Rule> rules;
    for (const char* text : kRules) rules.push_back(*ParseRule(text));
    std::map<const Condition*, Kept> kept;
    std::map<const Condition*, MapSpill> spills;
    auto spill_of = [&](const Condition* c) -> SpillStore* { return spill ? &spills[c] : nullptr; };
    std::vector<const Condition*> conditions;
    for (const Rule& r : rules) Conditions(r, &conditions);
    Facts facts;
    int64_t now = kStart;
    for (int step = 0; step < 300; ++step) {
      now += static_cast<int64_t>(rng() % (6 * kHour));
      const int op = static_cast<int>(rng() % 10);
      if (op < 6) {  // a touchpoint, some recorded late, a few ahead of their time
        Touch t;
        t.occurred = now - static_cast<int64_t>(rng() % (30 * kHour)) + (op == 0 ? 20 * kHour : 0);
        t.type = types[rng() % 6];
        t.channel = channels[rng() % 3];
        t.direction = directions[rng() % 3];
        t.sentiment = static_cast<double>(static_cast<int>(rng() % 17) - 8) / 8;
        t.audience = static_cast<double>(rng() % 800);
        t.event_id = std::string(16, '\0');
        for (char& c : t.event_id) c = static_cast<char>(rng());
        if (rng() % 4 == 0) t.answered = t.occurred + static_cast<int64_t>(rng() % (10 * kHour));
        for (const Condition* c : conditions) {
          if (Matches(c->filter, t)) Keep(*c, t, now, kept[c], spill_of(c));
        }
        facts.touches.push_back(t);
      } else if (op < 8 && !facts.touches.empty()) {  // an answer, perhaps earlier than one known
        Touch& m = facts.touches[rng() % facts.touches.size()];
        const int64_t at = m.occurred + static_cast<int64_t>(rng() % (12 * kHour));
        if (at < m.answered) {
          m.answered = at;
          for (auto& [c, k] : kept) Answer(m.event_id, at, k, spill_of(c));
        }
      }
      const auto none = [](const std::string&) { return false; };
      const ConditionFn over_kept = [&](const Condition& c, Evidence* evidence) {
        return EvaluateKept(c, now, kept[&c], evidence, spill_of(&c));
      };
      for (const Rule& rule : rules) {
        const Verdict want = Evaluate(rule, facts, now, none);
        const Verdict got = Combine(rule, over_kept);
        const std::string where = absl::StrCat("seed ", seed, " step ", step, ": ", Format(rule));
        ASSERT_EQ(got.member, want.member) << where;
        ASSERT_EQ(got.next_change, want.next_change) << where;
        const std::vector<Account> a = Explain(rule, facts, now, none);
        const std::vector<Account> b = ExplainWith(rule, over_kept);
        ASSERT_EQ(a.size(), b.size()) << where;
        for (size_t i = 0; i < a.size(); ++i) {
          EXPECT_EQ(b[i].holds, a[i].holds) << where;
          EXPECT_EQ(b[i].value, a[i].value) << where << " " << a[i].clause;
          EXPECT_EQ(b[i].events, a[i].events) << where << " " << a[i].clause;
        }
        ++compared;
        members += want.member;
      }
      for (auto& [c, k] : kept) {  // the spill holds what the kept state says it holds
        const size_t held = spill ? spills[c].slots.size() : 0;
        ASSERT_EQ(k.spilled, held) << "seed " << seed << " step " << step;
      }
    }
    for (const auto& [c, sp] : spills) spilled += sp.spills;
  }
  // Both answers occur often enough for the comparison to mean something.
  EXPECT_GT(members, compared / 10);
  EXPECT_LT(members, compared * 9 / 10);
  if (spill) {
    EXPECT_GT(spilled, 100) << "too few messages spilled to test the spill";
  }
}

TEST(KeptTest, AnswersAsTheRuleOverAllTheFactsAtEveryMoment) { CompareAtEveryMoment(false); }

TEST(KeptTest, AnswersAsTheRuleWithWaitingMessagesSpilled) { CompareAtEveryMoment(true); }

TEST(KeptTest, KeepsOnlyWhatCanStillCount) {
  const Rule rule = *ParseRule("count(type = complaint, last 1d) >= 1");
  const Condition& c = rule.condition;
  Kept k;
  Touch t;
  t.type = "complaint";
  t.direction = "inbound";
  t.event_id = std::string(16, 'a');
  t.occurred = kStart;
  Keep(c, t, kStart + 2 * 24 * kHour, k);  // slid out before it was recorded
  EXPECT_TRUE(k.touches.empty());
  Keep(c, t, kStart, k);
  EXPECT_EQ(k.touches.size(), 1u);
  EXPECT_TRUE(EvaluateKept(c, kStart + kHour, k, nullptr).member);
  EXPECT_FALSE(EvaluateKept(c, kStart + 24 * kHour, k, nullptr).member);
  EXPECT_TRUE(k.touches.empty());  // dropped once the window passed it
}

}  // namespace
}  // namespace ihs::projections::segments
