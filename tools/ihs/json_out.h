// JSON for `ihs ... --json`: the forms of projections/views_json.h, shared with ihsd's console.
#ifndef IHS_TOOLS_IHS_JSON_OUT_H_
#define IHS_TOOLS_IHS_JSON_OUT_H_

#include "projections/views_json.h"

namespace ihs::tools {

using projections::CommunityCardJson;
using projections::HexJson;
using projections::JsonFloat;
using projections::JsonLine;
using projections::MembershipJson;
using projections::PairScoreJson;
using projections::PersonJson;
using projections::TimelineEntryJson;
using projections::TimelinePageJson;
using projections::TimelineSummaryJson;
using projections::TransitionJson;

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_JSON_OUT_H_
