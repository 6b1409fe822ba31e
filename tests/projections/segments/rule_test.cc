// The segment rule language: what parses, what it means, its canonical text, and the errors a
// person who mistypes a rule reads (docs/segments.md "Rules").
#include "projections/segments/rule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

namespace ihs::projections::segments {
namespace {

using ::testing::HasSubstr;

Rule Parse(const std::string& text) {
  absl::StatusOr<Rule> r = ParseRule(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status();
  return r.ok() ? *r : Rule{};
}

std::string Error(const std::string& text) {
  absl::StatusOr<Rule> r = ParseRule(text);
  EXPECT_FALSE(r.ok()) << text << " parsed as " << (r.ok() ? Format(*r) : "");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

// The five segments of the generator's truth (docs/workload.md), as docs/segments.md defines them.
TEST(RuleTest, TheTruthsSegmentsParseAndPrintAsWritten) {
  for (const std::string text : {
           "count(type = campaignOpened, last 30d) >= 3",
           "count(type = complaint and direction in [inbound, public], last 30d) >= 2",
           "count(direction = public and original and (type = recommendation or type = review "
           "and sentiment > 0.5)) >= 2",
           "any(type = purchase) and none(type = purchase or direction = inbound, last 60d)",
           "unanswered(type = complaint)",
       }) {
    EXPECT_EQ(Format(Parse(text)), text);
  }
}

TEST(RuleTest, AConditionMeansWhatItSays) {
  Rule r = Parse("count(channel in [twitter, email] and topic = \"late delivery\", last 2w) > 4");
  ASSERT_EQ(r.op, Rule::Op::kCondition);
  const Condition& c = r.condition;
  EXPECT_EQ(c.kind, Condition::Kind::kCount);
  EXPECT_EQ(c.window.seconds, 14 * 86400);
  EXPECT_EQ(c.cmp, Cmp::kGt);
  EXPECT_EQ(c.number, 4);
  ASSERT_EQ(c.filter.op, Filter::Op::kAnd);
  ASSERT_EQ(c.filter.children.size(), 2u);
  EXPECT_EQ(c.filter.children[0].field, Field::kChannel);
  EXPECT_EQ(c.filter.children[0].values, (std::vector<std::string>{"email", "twitter"}));
  EXPECT_EQ(c.filter.children[1].field, Field::kTopic);
  EXPECT_EQ(c.filter.children[1].values, (std::vector<std::string>{"late delivery"}));

  Rule u = Parse("unanswered(channel = email, over 48 service hours)");
  EXPECT_EQ(u.condition.kind, Condition::Kind::kUnanswered);
  EXPECT_EQ(u.condition.over_seconds, 48 * 3600);
  EXPECT_TRUE(u.condition.service_hours);
  EXPECT_FALSE(Parse("unanswered(over 90m)").condition.service_hours);
  EXPECT_EQ(Parse("unanswered(over 90m)").condition.over_seconds, 90 * 60);

  Rule p = Parse("kind = customer and cohort in [1990s, 2000s] and consent(newsletter)");
  ASSERT_EQ(p.op, Rule::Op::kAnd);
  EXPECT_EQ(p.children[0].condition.kind, Condition::Kind::kKind);
  EXPECT_EQ(p.children[1].condition.values, (std::vector<std::string>{"1990s", "2000s"}));
  EXPECT_EQ(p.children[2].condition.values, (std::vector<std::string>{"newsletter"}));

  Rule s = Parse("sum(audience, direction = public, last 90d) >= 10000");
  EXPECT_EQ(s.condition.kind, Condition::Kind::kSum);
  EXPECT_EQ(s.condition.sum, Condition::Sum::kAudience);
  EXPECT_EQ(s.condition.number, 10000);
}

TEST(RuleTest, AndBindsTighterThanOrAndParenthesesWin) {
  Rule r = Parse("segment(a) or segment(b) and segment(c)");
  ASSERT_EQ(r.op, Rule::Op::kOr);
  EXPECT_EQ(r.children[1].op, Rule::Op::kAnd);
  Rule q = Parse("(segment(a) or segment(b)) and not segment(c)");
  ASSERT_EQ(q.op, Rule::Op::kAnd);
  EXPECT_EQ(q.children[0].op, Rule::Op::kOr);
  EXPECT_EQ(q.children[1].op, Rule::Op::kNot);
  EXPECT_EQ(Format(q), "(segment(a) or segment(b)) and not segment(c)");
  EXPECT_EQ(SegmentsNamed(q), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(SegmentsNamed(Parse("segment(b) and not segment(b)")), (std::vector<std::string>{"b"}));
}

TEST(RuleTest, TheCanonicalTextReadsBackAsTheSameRule) {
  for (const std::string text : {
           "count() >= 0",
           "  count( last 90m )>=1 ",
           "not not any(channel != email)",
           "any(not (channel = email or channel = sms) and sentiment <= -0.25)",
           "none(campaign not in [nl-1, \"nl 2\", \"say \\\"hi\\\"\"])",
           "sum(sentiment) < -1.5 or sum(sentiment, last 1w) >= 0.1",
           "kind != employee and cohort != \"\\\\\"",
           "count(source = crm, last 3650d) = 1",
           "unanswered(type in [complaint, request], over 2d)",
       }) {
    absl::StatusOr<Rule> r = ParseRule(text);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status();
    const std::string canonical = Format(*r);
    absl::StatusOr<Rule> again = ParseRule(canonical);
    ASSERT_TRUE(again.ok()) << canonical << ": " << again.status();
    EXPECT_EQ(Format(*again), canonical) << text;
  }
  EXPECT_EQ(Format(Parse("count(channel in [sms, email, sms]) >= 1")),
            "count(channel in [email, sms]) >= 1");
  EXPECT_EQ(Format(Parse("sum(sentiment) > 0.1")), "sum(sentiment) > 0.1");
  EXPECT_EQ(Format(Parse("count(last 168h) >= 1")), "count(last 1w) >= 1");
  EXPECT_EQ(Format(Parse("cohort = \"a b\"")), "cohort = \"a b\"");
}

// A person who mistypes a rule is told where and what was expected.
TEST(RuleTest, ARuleThatDoesNotParseSaysWhereAndWhatWasExpected) {
  EXPECT_THAT(Error(""), HasSubstr("empty"));
  EXPECT_THAT(Error("count(type = complaint, last30d) >= 2"), HasSubstr("at 25:"));
  EXPECT_THAT(Error("count(type = complaint, last30d) >= 2"), HasSubstr("last30d"));
  EXPECT_THAT(Error("count(type = complaint) >="), HasSubstr("found the end of the rule"));
  EXPECT_THAT(Error("count(type = complaint) 2"), HasSubstr("expected a comparison"));
  EXPECT_THAT(Error("count(type = complant) >= 2"),
              HasSubstr("at 14: unknown type \"complant\": expected one of message, reply"));
  EXPECT_THAT(Error("count(chanel = email) >= 2"), HasSubstr("expected a touchpoint field"));
  EXPECT_THAT(Error("any(channel = tweeter)"), HasSubstr("unknown channel \"tweeter\""));
  EXPECT_THAT(Error("kind = alien"), HasSubstr("unknown kind \"alien\""));
  EXPECT_THAT(Error("consent(carrier_pigeon)"), HasSubstr("unknown channel"));
  EXPECT_THAT(Error("segment(Churn-Risk)"), HasSubstr("a segment's name"));
  EXPECT_THAT(Error("frobnicate(x)"), HasSubstr("unknown condition \"frobnicate\""));
  EXPECT_THAT(Error("count() >= 1 and"), HasSubstr("expected a condition"));
  EXPECT_THAT(Error("(segment(a)"), HasSubstr("to close \"(\""));
  EXPECT_THAT(Error("segment(a) segment(b)"), HasSubstr("\"and\", \"or\" or the end"));
  EXPECT_THAT(Error("count() >= 1.5"), HasSubstr("a whole number"));
  EXPECT_THAT(Error("count() >= -1"), HasSubstr("a whole number"));
  EXPECT_THAT(Error("any(topic = \"unclosed)"), HasSubstr("no closing quote"));
  EXPECT_THAT(Error("any(topic = x) ; drop"), HasSubstr("unexpected character \";\""));
  EXPECT_THAT(Error("any(sentiment ! 1)"), HasSubstr("expected \"!=\""));
  EXPECT_THAT(Error("unanswered(over 48)"), HasSubstr("\"service hours\""));
  EXPECT_THAT(Error("sum(weight) > 1"), HasSubstr("what to sum"));
}

TEST(RuleTest, AWindowIsMoreThanZeroAndAtMostTenYears) {
  EXPECT_THAT(Error("count(last 0d) >= 1"), HasSubstr("out of range"));
  EXPECT_THAT(Error("count(last 3661d) >= 1"), HasSubstr("out of range"));
  EXPECT_THAT(Error("count(last 9999999999999w) >= 1"), HasSubstr("out of range"));
  EXPECT_THAT(Error("count(last 30y) >= 1"), HasSubstr("a duration such as"));
  EXPECT_EQ(Parse("count(last 3660d) >= 1").condition.window.seconds, 3660LL * 86400);
  EXPECT_THAT(Error("unanswered(over 0 service hours)"), HasSubstr("a duration"));
  EXPECT_THAT(Error("unanswered(over 9999999999999999 service hours)"), HasSubstr("out of range"));
  EXPECT_THAT(Error("unanswered(over 87841 service hours)"), HasSubstr("out of range"));
  EXPECT_EQ(Parse("unanswered(over 87840 service hours)").condition.over_seconds, 87840LL * 3600);
}

// Hostile text: deep nesting, long rules, every byte. It is refused or parsed, never a crash.
TEST(RuleTest, HostileTextIsRefusedNotACrash) {
  EXPECT_THAT(Error(std::string(10000, '(')), HasSubstr("longer than the limit"));
  EXPECT_THAT(Error(std::string(100, '(') + "segment(a)" + std::string(100, ')')),
              HasSubstr("nests deeper than"));
  std::string nots;
  for (int i = 0; i < 100; ++i) nots += "not ";
  EXPECT_THAT(Error(nots + "segment(a)"), HasSubstr("nests deeper than"));
  std::string deep_filter = "any(";
  for (int i = 0; i < 100; ++i) deep_filter += "not ";
  EXPECT_THAT(Error(deep_filter + "original)"), HasSubstr("nests deeper than"));
  std::mt19937 rng(7);
  const std::string alphabet = "()[],=<>!\" \\abcdefgnotrsuy0123456789-.dwhm";
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) text.push_back(alphabet[rng() % alphabet.size()]);
    absl::StatusOr<Rule> r = ParseRule(text);
    if (r.ok()) {
      absl::StatusOr<Rule> again = ParseRule(Format(*r));
      ASSERT_TRUE(again.ok()) << text;
      EXPECT_EQ(Format(*again), Format(*r));
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

// Random rules, made as trees: their text parses back to the same tree (compared through the
// canonical text, which names every field of a condition).
Filter RandomFilter(std::mt19937& rng, int depth) {
  Filter f;
  switch (depth > 2 ? rng() % 3 : rng() % 6) {
    case 0:
      f.op = Filter::Op::kIn;
      f.field = static_cast<Field>(rng() % 6);
      if (f.field == Field::kChannel) {
        f.values = rng() % 2 ? std::vector<std::string>{"email"}
                             : std::vector<std::string>{"sms", "twitter"};
      } else if (f.field == Field::kDirection) {
        f.values = {"public"};
      } else if (f.field == Field::kType) {
        f.values = {"complaint", "review"};
      } else {
        f.values = rng() % 2 ? std::vector<std::string>{"late delivery"}
                             : std::vector<std::string>{"a-1", "nl_2"};
      }
      break;
    case 1:
      f.op = Filter::Op::kSentiment;
      f.cmp = static_cast<Cmp>(rng() % 6);
      f.number = (static_cast<int>(rng() % 201) - 100) / 100.0;
      break;
    case 2:
      f.op = Filter::Op::kOriginal;
      break;
    case 3:
      f.op = Filter::Op::kNot;
      f.children.push_back(RandomFilter(rng, depth + 1));
      if (f.children[0].op == Filter::Op::kNot) return f.children[0];  // not not: printed once
      break;
    default:
      f.op = rng() % 2 ? Filter::Op::kAnd : Filter::Op::kOr;
      for (int i = 0; i < 2; ++i) {
        Filter c = RandomFilter(rng, depth + 1);
        if (c.op == f.op) return c;  // a and (b and c) prints as a and b and c
        f.children.push_back(std::move(c));
      }
  }
  return f;
}

Rule RandomRule(std::mt19937& rng, int depth) {
  Rule r;
  const unsigned pick = depth > 2 ? rng() % 10 : rng() % 13;
  if (pick >= 10) {
    r.op = pick == 10 ? Rule::Op::kNot : pick == 11 ? Rule::Op::kAnd : Rule::Op::kOr;
    const int n = r.op == Rule::Op::kNot ? 1 : 2;
    for (int i = 0; i < n; ++i) r.children.push_back(RandomRule(rng, depth + 1));
    return r;
  }
  Condition& c = r.condition;
  c.kind = static_cast<Condition::Kind>(pick);
  if (rng() % 2) c.filter = RandomFilter(rng, 0);
  if (c.kind <= Condition::Kind::kNone && rng() % 2) c.window.seconds = (1 + rng() % 90) * 86400;
  c.cmp = static_cast<Cmp>(rng() % 6);
  c.number = c.kind == Condition::Kind::kSum ? -2.5 : static_cast<double>(rng() % 10);
  c.sum = rng() % 2 ? Condition::Sum::kAudience : Condition::Sum::kSentiment;
  if (c.kind == Condition::Kind::kUnanswered && rng() % 2) {
    c.over_seconds = (1 + rng() % 72) * 3600;
    c.service_hours = rng() % 2;
  }
  c.negate = rng() % 2;
  switch (c.kind) {
    case Condition::Kind::kKind:
      c.values = {"customer"};
      break;
    case Condition::Kind::kCohort:
      c.values = {"1990s", "2000s"};
      break;
    case Condition::Kind::kConsent:
      c.values = {"newsletter"};
      break;
    case Condition::Kind::kSegment:
      c.values = {"churn_risk"};
      break;
    case Condition::Kind::kCommunity:
      c.values = {rng() % 2 ? "value" : "risk"};
      c.top = rng() % 2;
      c.cmp = rng() % 2 ? Cmp::kGt : Cmp::kGe;
      c.number = c.top ? 0.5 + rng() % 100 : static_cast<double>(rng() % 100000);
      break;
    default:
      break;
  }
  return r;
}

TEST(RuleTest, CommunityConditionsNameAFigureAndAPlaceOrAFloor) {
  absl::StatusOr<Rule> r = ParseRule("community value in top 5 %");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->condition.kind, Condition::Kind::kCommunity);
  EXPECT_TRUE(r->condition.top);
  EXPECT_EQ(r->condition.number, 5);
  EXPECT_EQ(Format(*r), "community value in top 5%");
  r = ParseRule("community risk>10000 and unanswered(type = complaint)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Format(*r), "community risk > 10000 and unanswered(type = complaint)");
  EXPECT_EQ(r->children[0].condition.values[0], "risk");
  EXPECT_EQ(r->children[0].condition.cmp, Cmp::kGt);

  const std::pair<const char*, const char*> bad[] = {
      {"community fame > 3", "at 11: unknown community figure \"fame\""},
      {"community risk < 3", "at 16: expected \"in top N%\", \">\" or \">=\""},
      {"community value in top 0%", "at 24: the percentage 0 is out of range"},
      {"community value in top 101%", "the percentage 101 is out of range"},
      {"community value in top 5", "at 25: expected \"%\" after the percentage"},
      {"community reach > -1", "at 19: a community figure is never below 0"},
      {"community value in 5%", "expected \"top\" after \"in\""},
  };
  for (const auto& [text, message] : bad) {
    absl::StatusOr<Rule> b = ParseRule(text);
    ASSERT_FALSE(b.ok()) << text;
    EXPECT_THAT(std::string(b.status().message()), HasSubstr(message)) << text;
  }
}

TEST(RuleTest, RandomRulesReadBackAsTheSameRule) {
  std::mt19937 rng(2026);
  for (int i = 0; i < 5000; ++i) {
    const std::string text = Format(RandomRule(rng, 0));
    absl::StatusOr<Rule> r = ParseRule(text);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status();
    EXPECT_EQ(Format(*r), text);
  }
}

TEST(RuleTest, SegmentNamesAreLowerCaseDigitsAndUnderscores) {
  EXPECT_TRUE(ValidSegmentName("churn_risk"));
  EXPECT_TRUE(ValidSegmentName(std::string(64, 'a')));
  EXPECT_FALSE(ValidSegmentName(std::string(65, 'a')));
  EXPECT_FALSE(ValidSegmentName(""));
  EXPECT_FALSE(ValidSegmentName("Churn"));
  EXPECT_FALSE(ValidSegmentName("churn-risk"));
}

}  // namespace
}  // namespace ihs::projections::segments
