// What a rule means at a moment, and when it can next change by the clock alone
// (docs/segments.md "Meaning").
#include "projections/segments/evaluate.h"

#include <gtest/gtest.h>

#include <random>

#include "absl/time/time.h"
#include "common/service_hours.h"

namespace ihs::projections::segments {
namespace {

constexpr int64_t kDay = 86400LL * 1'000'000;
constexpr int64_t kHour = 3600LL * 1'000'000;
// Monday 2026-01-05 10:00 UTC.
const int64_t kMonday10 =
    absl::ToUnixMicros(absl::FromCivil(absl::CivilHour(2026, 1, 5, 10), absl::UTCTimeZone()));

Rule R(const std::string& text) {
  absl::StatusOr<Rule> r = ParseRule(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status();
  return r.ok() ? *r : Rule{};
}

Touch T(int64_t occurred, const std::string& type, const std::string& direction = "inbound",
        const std::string& channel = "email") {
  Touch t;
  t.occurred = occurred;
  t.type = type;
  t.direction = direction;
  t.channel = channel;
  return t;
}

Verdict At(const std::string& rule, const Facts& f, int64_t now) {
  return Evaluate(R(rule), f, now, [](const std::string& name) { return name == "vip"; });
}

TEST(EvaluateTest, AWindowCountsWhatOccurredInItAndSaysWhenTheOldestLeaves) {
  Facts f;
  f.touches = {T(kMonday10, "complaint"), T(kMonday10 + kDay, "complaint", "public", "twitter"),
               T(kMonday10 + 2 * kDay, "complaint", "outbound")};
  const std::string rule =
      "count(type = complaint and direction in [inbound, public], last 30d) >= 2";
  Verdict one = At(rule, f, kMonday10 + kHour);
  EXPECT_FALSE(one.member);
  Verdict two = At(rule, f, kMonday10 + kDay);
  EXPECT_TRUE(two.member);
  EXPECT_EQ(two.next_change, kMonday10 + 30 * kDay);  // the first complaint leaves then
  EXPECT_TRUE(At(rule, f, kMonday10 + 30 * kDay - 1).member);
  EXPECT_FALSE(At(rule, f, kMonday10 + 30 * kDay).member);  // (now - 30d, now]: it is out
  // One left in the window: the next leaving cannot make it two again, so no timer.
  EXPECT_EQ(At(rule, f, kMonday10 + 30 * kDay + kHour).next_change, kNever);
  EXPECT_EQ(At(rule, f, kMonday10 + 40 * kDay).next_change, kNever);
  // At most one: a member until the second enters (recorded ahead of its time).
  Facts ahead;
  ahead.touches = {T(kMonday10, "complaint"), T(kMonday10 + 5 * kDay, "complaint")};
  const Verdict most = At("count(type = complaint, last 30d) <= 1", ahead, kMonday10 + kDay);
  EXPECT_TRUE(most.member);
  EXPECT_EQ(most.next_change, kMonday10 + 5 * kDay);
}

TEST(EvaluateTest, AbsenceTurnsTrueByTheClock) {
  Facts f;
  f.touches = {T(kMonday10, "purchase")};
  const std::string rule =
      "any(type = purchase) and none(type = purchase or direction = inbound, last 60d)";
  Verdict early = At(rule, f, kMonday10 + 10 * kDay);
  EXPECT_FALSE(early.member);
  EXPECT_EQ(early.next_change, kMonday10 + 60 * kDay);
  Verdict late = At(rule, f, kMonday10 + 60 * kDay);
  EXPECT_TRUE(late.member);
  EXPECT_EQ(late.next_change, kNever);
  EXPECT_FALSE(At(rule, Facts{}, kMonday10).member);  // never bought: not a dormant buyer
}

TEST(EvaluateTest, AMessageUnansweredForServiceHoursCountsOnlyOpenHours) {
  Facts f;
  f.touches = {T(kMonday10, "complaint")};
  const std::string rule = "unanswered(type = complaint, over 48 service hours)";
  // Mon 10-22 (12 h), Tue and Wed 06-22 (16 h each): 44 h; 4 more on Thursday from 06:00.
  const int64_t due = kMonday10 + 3 * kDay;  // Thursday 10:00
  EXPECT_EQ(ServiceHours::Default().Add(kMonday10, 48 * kHour), due);
  Verdict waiting = At(rule, f, kMonday10 + kDay);
  EXPECT_FALSE(waiting.member);
  EXPECT_EQ(waiting.next_change, due);
  EXPECT_TRUE(At(rule, f, due).member);
  EXPECT_FALSE(At("unanswered(type = complaint, over 48h)", f, kMonday10 + 2 * kDay - 1).member);
  EXPECT_TRUE(At("unanswered(type = complaint, over 48h)", f, kMonday10 + 2 * kDay).member);
  EXPECT_TRUE(At("unanswered(type = complaint)", f, kMonday10).member);
  // Answered before it was due: never a member; answered later: a member until then.
  f.touches[0].answered = kMonday10 + 5 * kHour;
  EXPECT_FALSE(At(rule, f, due).member);
  EXPECT_EQ(At(rule, f, kMonday10 + kHour).next_change, kNever);  // it can never count now
  f.touches[0].answered = due + kDay;
  EXPECT_TRUE(At(rule, f, due).member);
  EXPECT_EQ(At(rule, f, due).next_change, due + kDay);
  EXPECT_FALSE(At(rule, f, due + kDay).member);
  // Inbound messages, requests and complaints wait, and public requests and complaints (a tweet
  // at the company); a public message is a post to the world and waits for nothing.
  Facts post;
  post.touches = {T(kMonday10, "complaint", "public", "twitter")};
  EXPECT_TRUE(At("unanswered()", post, kMonday10 + 9 * kDay).member);
  post.touches = {T(kMonday10, "message", "public", "twitter")};
  EXPECT_FALSE(At("unanswered()", post, kMonday10 + 9 * kDay).member);
  post.touches = {T(kMonday10, "review", "inbound", "webForm")};
  EXPECT_FALSE(At("unanswered()", post, kMonday10 + 9 * kDay).member);
}

TEST(EvaluateTest, FiltersPickByEveryField) {
  Touch t = T(kMonday10, "review", "public", "facebook");
  t.topics = {"delivery", "price"};
  t.campaign = "nl-3";
  t.source = "social-listening";
  t.sentiment = 0.75;
  t.original = false;
  EXPECT_TRUE(Matches(R("any(topic = price)").condition.filter, t));
  EXPECT_FALSE(Matches(R("any(topic = store)").condition.filter, t));
  EXPECT_TRUE(Matches(R("any(campaign = nl-3 and source = social-listening)").condition.filter, t));
  EXPECT_TRUE(Matches(R("any(sentiment > 0.5 and channel != email)").condition.filter, t));
  EXPECT_FALSE(Matches(R("any(original)").condition.filter, t));
  EXPECT_TRUE(Matches(R("any(not original and type in [review, like])").condition.filter, t));
  t.sentiment = NAN;  // unknown sentiment matches no comparison, either way
  EXPECT_FALSE(Matches(R("any(sentiment > 0.5)").condition.filter, t));
  EXPECT_FALSE(Matches(R("any(sentiment <= 0.5)").condition.filter, t));
  EXPECT_TRUE(Matches(R("any(not sentiment > 0.5)").condition.filter, t));
}

TEST(EvaluateTest, SumsProfileConsentAndOtherSegments) {
  Facts f;
  f.kind = "customer";
  f.cohort = "1990s";
  f.consent = {{"newsletter", true}, {"push", false}};
  Touch a = T(kMonday10, "message", "public", "twitter");
  a.audience = 6000;
  a.sentiment = -0.5;
  Touch b = a;
  b.occurred += kDay;
  f.touches = {a, b};
  const int64_t now = kMonday10 + 2 * kDay;
  EXPECT_TRUE(At("sum(audience, direction = public, last 90d) >= 10000", f, now).member);
  EXPECT_TRUE(At("sum(sentiment) <= -1", f, now).member);
  EXPECT_TRUE(At("kind = customer and cohort in [1990s, 2000s]", f, now).member);
  EXPECT_FALSE(At("kind != customer", f, now).member);
  EXPECT_TRUE(At("consent(newsletter) and not consent(push) and not consent(sms)", f, now).member);
  EXPECT_TRUE(At("segment(vip) or segment(other)", f, now).member);
  EXPECT_FALSE(At("segment(other)", f, now).member);
  // A touchpoint recorded ahead of the moment it occurred counts from then.
  Touch future = T(now + kHour, "purchase");
  f.touches.push_back(future);
  Verdict v = At("any(type = purchase)", f, now);
  EXPECT_FALSE(v.member);
  EXPECT_EQ(v.next_change, now + kHour);
  EXPECT_TRUE(At("any(type = purchase)", f, now + kHour).member);
}

// The promise the projection's timers rest on: between `now` and `next_change` the answer does
// not change unless an event arrives. Random histories, rules and moments.
TEST(EvaluateTest, NothingChangesBeforeTheNextChange) {
  const std::vector<std::string> rules = {
      "count(type = complaint, last 30d) >= 2",
      "any(type = purchase) and none(type = purchase or direction = inbound, last 7d)",
      "unanswered(over 8 service hours) or count(channel = twitter, last 2d) > 1",
      "not unanswered(type = complaint, over 36h) and sum(sentiment, last 5d) < -0.5",
      "count(last 1d) = 0 or count(direction = public, last 3d) >= 3",
      "count(type = complaint, last 3d) <= 1 and (any(channel = twitter, last 2d) or "
      "not none(type = purchase, last 4d))",
  };
  std::mt19937_64 rng(99);
  const char* types[] = {"complaint", "purchase", "message", "request", "like"};
  const char* directions[] = {"inbound", "outbound", "public"};
  const char* channels[] = {"email", "twitter", "phone"};
  int checked = 0, changes_seen = 0;
  for (int round = 0; round < 300; ++round) {
    Facts f;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      Touch t = T(kMonday10 + static_cast<int64_t>(rng() % (20 * kDay)), types[rng() % 5],
                  directions[rng() % 3], channels[rng() % 3]);
      t.sentiment = (static_cast<int>(rng() % 21) - 10) / 10.0;
      if (rng() % 2) t.answered = t.occurred + static_cast<int64_t>(rng() % (3 * kDay));
      f.touches.push_back(t);
    }
    const std::string& rule = rules[rng() % rules.size()];
    int64_t now = kMonday10 + static_cast<int64_t>(rng() % (25 * kDay));
    for (int step = 0; step < 6; ++step) {
      const Verdict v = At(rule, f, now);
      const int64_t horizon = std::min(v.next_change, now + 40 * kDay);
      for (int probe = 0; probe < 5; ++probe) {
        const int64_t t = now + static_cast<int64_t>(rng() % static_cast<uint64_t>(horizon - now));
        ASSERT_EQ(At(rule, f, t).member, v.member)
            << rule << " changed at " << t << " before its next change " << v.next_change;
        ++checked;
      }
      if (v.next_change == kNever) break;
      changes_seen += At(rule, f, v.next_change).member != v.member;
      now = v.next_change;
    }
  }
  EXPECT_GT(checked, 3000);
  EXPECT_GT(changes_seen, 100);  // the clock does change memberships, and at those moments
}

}  // namespace
}  // namespace ihs::projections::segments
