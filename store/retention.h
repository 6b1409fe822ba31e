// Retention: how long the content of each class of touchpoint is kept (docs/audit.md
// "Retention"). A policy is text, one rule per line, '#' starting a comment:
//   channel=chat 2y                  chat content: two years
//   type=complaint 6y                complaints on any channel: six years
//   channel=letter type=message 10y  business letters
//   channel=sms 90d
// A duration is N years ("y") or N days ("d"). For content of one channel and type the most
// specific rule applies (channel and type, then type, then channel); content no rule names is
// kept. Content of a year expires as a whole, counted from the end of that year: chat of 2024
// under "2y" expires on 1 January 2027.
#ifndef IHS_STORE_RETENTION_H_
#define IHS_STORE_RETENTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ihs::store {

struct RetentionRule {
  std::optional<uint16_t> channel;  // schema::Channel
  std::optional<uint16_t> type;     // schema::TouchpointType
  int years = 0;
  int days = 0;
  std::string text;  // the rule as written
};

class RetentionPolicy {
 public:
  // kInvalidArgument names the line and what is wrong with it.
  static absl::StatusOr<RetentionPolicy> Parse(absl::string_view text);

  // The rule for content of this channel and type, or nullptr: kept.
  const RetentionRule* RuleFor(uint16_t channel, uint16_t type) const;
  // When content of `year` (UTC) expires under `rule`.
  static absl::Time ExpiresAt(const RetentionRule& rule, int32_t year);

  const std::vector<RetentionRule>& rules() const { return rules_; }
  const std::string& text() const { return text_; }

 private:
  std::vector<RetentionRule> rules_;
  std::string text_;
};

}  // namespace ihs::store

#endif  // IHS_STORE_RETENTION_H_
