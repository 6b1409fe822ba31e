// `ihs timeline PARTY --html FILE`: one self-contained HTML page (no network fetches: inline CSS,
// inline SVG, a few lines of inline script) that draws a timeline page as lanes per channel on a
// time axis, threads connected, open messages and channel switches highlighted.
#ifndef IHS_TOOLS_IHS_TIMELINE_HTML_H_
#define IHS_TOOLS_IHS_TIMELINE_HTML_H_

#include <string>

#include "absl/status/status.h"
#include "schema/timeline.capnp.h"

namespace ihs::tools {

// What the community projection says is at risk if the party's person takes an open message
// public (docs/community.md "Audience at risk"), shown next to the open messages.
struct AtRisk {
  double risk = 0, chance = 0, reach_per_post = 0;
};

// The page as a string. Elements a test (or a stylesheet) can find: one
// <g class="lane" data-channel="NAME"> per channel, one <circle class="item ..."> per entry
// (classes "open", "switch", "reply", "retracted"; data-event = event id in hex), one
// <path class="thread"> per link between two messages of a thread. After the script has run,
// <body> carries data-ready="1", data-lanes and data-items.
// With `at_risk`, the facts and each open message say what is at risk.
std::string TimelineHtml(schema::TimelineSummary::Reader summary, schema::TimelinePage::Reader page,
                         const AtRisk* at_risk = nullptr);

// Writes it to `path` (through path.tmp, renamed into place).
absl::Status WriteTimelineHtml(const std::string& path, schema::TimelineSummary::Reader summary,
                               schema::TimelinePage::Reader page, const AtRisk* at_risk = nullptr);

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_TIMELINE_HTML_H_
