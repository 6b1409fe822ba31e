#include "store/retention.h"

#include <capnp/schema.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "schema/event.capnp.h"

namespace ihs::store {
namespace {

// The enumerant of `name` in E ("chat" -> 8), or nullopt; `names` gets the valid ones.
template <typename E>
std::optional<uint16_t> Enumerant(absl::string_view name, std::string* names) {
  const auto enumerants = capnp::Schema::from<E>().getEnumerants();
  std::vector<std::string> all;
  for (uint16_t i = 1; i < enumerants.size(); ++i) {
    const std::string n = enumerants[i].getProto().getName().cStr();
    if (n == name) return i;
    all.push_back(n);
  }
  *names = absl::StrJoin(all, ", ");
  return std::nullopt;
}

}  // namespace

absl::StatusOr<RetentionPolicy> RetentionPolicy::Parse(absl::string_view text) {
  RetentionPolicy policy;
  policy.text_ = std::string(text);
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("retention policy, line ", line_no, " (\"", line, "\"): ", why));
    };
    RetentionRule rule;
    rule.text = std::string(line);
    bool has_duration = false;
    for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
      std::string names;
      if (absl::ConsumePrefix(&word, "channel=")) {
        rule.channel = Enumerant<schema::Channel>(word, &names);
        if (!rule.channel) return bad(absl::StrCat("unknown channel \"", word, "\" (one of: ", names, ")"));
      } else if (absl::ConsumePrefix(&word, "type=")) {
        rule.type = Enumerant<schema::TouchpointType>(word, &names);
        if (!rule.type) return bad(absl::StrCat("unknown type \"", word, "\" (one of: ", names, ")"));
      } else if (!has_duration && word.size() >= 2 &&
                 (word.back() == 'y' || word.back() == 'd')) {
        int n = 0;
        if (!absl::SimpleAtoi(word.substr(0, word.size() - 1), &n) || n < 0 || n > 1000 * 365) {
          return bad(absl::StrCat("\"", word, "\" is not a duration such as 2y or 90d"));
        }
        (word.back() == 'y' ? rule.years : rule.days) = n;
        has_duration = true;
      } else {
        return bad(absl::StrCat("\"", word,
                                "\" is not channel=NAME, type=NAME or a duration (2y, 90d)"));
      }
    }
    if (!rule.channel && !rule.type) return bad("name a channel=, a type= or both");
    if (!has_duration) return bad("give how long to keep it (2y, 90d)");
    for (const RetentionRule& r : policy.rules_) {
      if (r.channel == rule.channel && r.type == rule.type) {
        return bad(absl::StrCat("the same content as \"", r.text, "\""));
      }
    }
    policy.rules_.push_back(std::move(rule));
  }
  return policy;
}

const RetentionRule* RetentionPolicy::RuleFor(uint16_t channel, uint16_t type) const {
  const RetentionRule* best = nullptr;
  int best_rank = 0;
  for (const RetentionRule& r : rules_) {
    if ((r.channel && *r.channel != channel) || (r.type && *r.type != type)) continue;
    const int rank = (r.channel && r.type) ? 3 : r.type ? 2 : 1;
    if (rank > best_rank) {
      best = &r;
      best_rank = rank;
    }
  }
  return best;
}

absl::Time RetentionPolicy::ExpiresAt(const RetentionRule& rule, int32_t year) {
  const absl::Time end_of_year =
      absl::FromCivil(absl::CivilYear(int64_t{year} + 1 + rule.years), absl::UTCTimeZone());
  return end_of_year + absl::Hours(24) * rule.days;
}

}  // namespace ihs::store
