// The JSON form of what the projections answer (a timeline page and summary, a person, a community
// card, segment memberships and transitions): what `ihs ... --json` prints and what ihsd's console
// API serves (docs/console.md), one definition for both. Ids are lowercase hex, times RFC 3339
// UTC with microseconds (schema/json.h), enums their schema names.
#ifndef IHS_PROJECTIONS_VIEWS_JSON_H_
#define IHS_PROJECTIONS_VIEWS_JSON_H_

#include <capnp/common.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "nlohmann/json.hpp"
#include "schema/community.capnp.h"
#include "schema/identity.capnp.h"
#include "schema/segments.capnp.h"
#include "schema/timeline.capnp.h"

namespace ihs::projections {

// One line of JSON. nlohmann's plain dump() throws on text that is not UTF-8 (only stores
// written before ihs checked text on input can hold such bytes); JsonLine prints them as U+FFFD
// instead, so that every line is valid JSON whatever the store holds.
inline std::string JsonLine(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A stored 32-bit float as JSON prints it: the double nearest the float's shortest decimal form,
// so that -0.6f prints as -0.6 (as `ihs read --json` prints it), not -0.6000000238418579.
inline double JsonFloat(float f) {
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, f);
  return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

// Bytes (an event id) as lowercase hex.
std::string HexJson(capnp::Data::Reader d);

nlohmann::json TimelineEntryJson(schema::TimelineEntry::Reader e);
nlohmann::json TimelineSummaryJson(schema::TimelineSummary::Reader s);
// {"summary", "entries", "nextCursor"?, "checkpoint", "streams"?}
nlohmann::json TimelinePageJson(schema::TimelineSummary::Reader summary,
                                schema::TimelinePage::Reader page);
nlohmann::json CommunityCardJson(schema::CommunityCard::Reader r);
// One person of a top list, at `rank` (1 for the first).
nlohmann::json CommunityTopEntryJson(schema::CommunityTopEntry::Reader e, uint64_t rank);
nlohmann::json PersonJson(schema::Person::Reader p);
nlohmann::json PairScoreJson(schema::PairScore::Reader p);
nlohmann::json MembershipJson(schema::Membership::Reader m);
nlohmann::json TransitionJson(schema::Transition::Reader t);

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_VIEWS_JSON_H_
