// `ihs timeline PARTY --html FILE`: one self-contained HTML page (no network fetches: inline CSS,
// inline SVG, a few lines of inline script) that draws a timeline page as lanes per channel on a
// time axis, threads connected, open messages and channel switches highlighted.
#ifndef IHS_TOOLS_IHS_TIMELINE_HTML_H_
#define IHS_TOOLS_IHS_TIMELINE_HTML_H_

#include <string>

#include "absl/status/status.h"
#include "schema/timeline.capnp.h"

namespace ihs::tools {

// The page as a string. Elements a test (or a stylesheet) can find: one
// <g class="lane" data-channel="NAME"> per channel, one <circle class="item ..."> per entry
// (classes "open", "switch", "reply", "retracted"; data-event = event id in hex), one
// <path class="thread"> per link between two messages of a thread. After the script has run,
// <body> carries data-ready="1", data-lanes and data-items.
std::string TimelineHtml(schema::TimelineSummary::Reader summary,
                         schema::TimelinePage::Reader page);

// Writes it to `path` (through path.tmp, renamed into place).
absl::Status WriteTimelineHtml(const std::string& path, schema::TimelineSummary::Reader summary,
                               schema::TimelinePage::Reader page);

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_TIMELINE_HTML_H_
