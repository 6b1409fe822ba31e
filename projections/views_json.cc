#include "projections/views_json.h"

#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "schema/json.h"

namespace ihs::projections {
namespace {

nlohmann::json IdentityClueJson(schema::IdentityClue::Reader c) {
  nlohmann::json events = nlohmann::json::array();
  for (auto e : c.getEvents()) events.push_back(HexJson(e));
  return {{"kind", schema::EnumName(c.getKind())},
          {"weight", JsonFloat(c.getWeight())},
          {"events", events}};
}

template <typename List>
nlohmann::json IdentityCluesJson(List clues) {
  nlohmann::json out = nlohmann::json::array();
  for (auto c : clues) out.push_back(IdentityClueJson(c));
  return out;
}

}  // namespace

std::string HexJson(capnp::Data::Reader d) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size()));
}

nlohmann::json TimelineEntryJson(schema::TimelineEntry::Reader e) {
  nlohmann::json j = {{"position", e.getPosition()},
                      {"eventId", HexJson(e.getEventId())},
                      {"occurredAt", schema::FormatMicros(e.getOccurredAt())},
                      {"recordedAt", schema::FormatMicros(e.getRecordedAt())},
                      {"channel", schema::EnumName(e.getChannel())},
                      {"direction", schema::EnumName(e.getDirection())},
                      {"type", schema::EnumName(e.getType())}};
  if (e.getParty().size() > 0) j["party"] = e.getParty().cStr();
  if (!std::isnan(e.getSentiment())) j["sentiment"] = JsonFloat(e.getSentiment());
  if (e.getTopics().size() > 0) {
    j["topics"] = nlohmann::json::array();
    for (auto t : e.getTopics()) j["topics"].push_back(t.cStr());
  }
  if (e.getThread().size() > 0) j["thread"] = e.getThread().cStr();
  if (e.getInReplyTo().size() > 0) j["inReplyTo"] = HexJson(e.getInReplyTo());
  if (e.getCounterpart().size() > 0) j["counterpart"] = e.getCounterpart().cStr();
  if (e.getCampaignId().size() > 0) j["campaignId"] = e.getCampaignId().cStr();
  if (e.getAudienceSize() > 0) j["audienceSize"] = e.getAudienceSize();
  if (e.getCompanyReply()) j["companyReply"] = true;
  auto r = e.getResponse();
  if (r.isOpen()) j["response"] = {{"open", true}, {"waitingSeconds", e.getWaitingSeconds()}};
  if (r.isAnswered()) {
    auto a = r.getAnswered();
    j["response"] = {{"replyEventId", HexJson(a.getReplyEventId())},
                     {"replyPosition", a.getReplyPosition()},
                     {"replyChannel", schema::EnumName(a.getReplyChannel())},
                     {"repliedAt", schema::FormatMicros(a.getRepliedAt())},
                     {"wallSeconds", a.getWallSeconds()},
                     {"serviceSeconds", a.getServiceSeconds()}};
  }
  if (e.hasSwitchFrom()) {
    auto sw = e.getSwitchFrom();
    j["switchFrom"] = {{"party", sw.getParty().cStr()},
                       {"eventId", HexJson(sw.getEventId())},
                       {"channel", schema::EnumName(sw.getChannel())},
                       {"occurredAt", schema::FormatMicros(sw.getOccurredAt())}};
  }
  if (e.getCorrectedBy().size() > 0) j["correctedBy"] = HexJson(e.getCorrectedBy());
  if (e.getRetractedBy().size() > 0) j["retractedBy"] = HexJson(e.getRetractedBy());
  if (e.getSubject().size() > 0) j["subject"] = e.getSubject().cStr();
  if (e.getText().size() > 0) j["text"] = e.getText().cStr();
  return j;
}

nlohmann::json TimelineSummaryJson(schema::TimelineSummary::Reader s) {
  nlohmann::json j = {{"party", s.getParty().cStr()},
                      {"kind", schema::EnumName(s.getKind())},
                      {"entries", s.getEntries()},
                      {"answered", s.getAnswered()},
                      {"medianResponseSeconds", s.getMedianResponseSeconds()},
                      {"medianResponseServiceSeconds", s.getMedianResponseServiceSeconds()},
                      {"channelSwitches", s.getChannelSwitches()},
                      {"sentimentCount90d", s.getSentimentCount90d()},
                      {"asOf", schema::FormatMicros(s.getAsOf())}};
  if (!std::isnan(s.getSentiment90d())) j["sentiment90d"] = JsonFloat(s.getSentiment90d());
  j["channels"] = nlohmann::json::array();
  for (auto c : s.getChannels()) {
    j["channels"].push_back({{"channel", schema::EnumName(c.getChannel())},
                             {"firstAt", schema::FormatMicros(c.getFirstAt())},
                             {"lastAt", schema::FormatMicros(c.getLastAt())},
                             {"inbound", c.getInbound()},
                             {"outbound", c.getOutbound()},
                             {"public", c.getPublic()}});
  }
  j["open"] = nlohmann::json::array();
  for (auto o : s.getOpen()) {
    j["open"].push_back({{"eventId", HexJson(o.getEventId())},
                         {"position", o.getPosition()},
                         {"channel", schema::EnumName(o.getChannel())},
                         {"type", schema::EnumName(o.getType())},
                         {"occurredAt", schema::FormatMicros(o.getOccurredAt())},
                         {"waitingSeconds", o.getWaitingSeconds()}});
  }
  return j;
}

nlohmann::json TimelinePageJson(schema::TimelineSummary::Reader summary,
                                schema::TimelinePage::Reader page) {
  nlohmann::json j = {{"summary", TimelineSummaryJson(summary)},
                      {"entries", nlohmann::json::array()}};
  for (auto e : page.getEntries()) j["entries"].push_back(TimelineEntryJson(e));
  if (page.getNextCursor().size() > 0) j["nextCursor"] = page.getNextCursor().cStr();
  j["checkpoint"] = page.getCheckpoint();
  if (page.hasStreams()) {
    j["streams"] = nlohmann::json::array();
    for (auto s : page.getStreams()) j["streams"].push_back(s.cStr());
  }
  return j;
}

nlohmann::json CommunityTopEntryJson(schema::CommunityTopEntry::Reader e, uint64_t rank) {
  return {{"rank", rank},
          {"person", e.getPerson().cStr()},
          {"reach", e.getReach()},
          {"posts", e.getPosts()},
          {"carried", e.getCarried()},
          {"maxDepth", e.getMaxDepth()},
          {"standing", e.getStanding()},
          {"value", e.getValue()},
          {"risk", e.getRisk()}};
}

nlohmann::json CommunityCardJson(schema::CommunityCard::Reader r) {
  nlohmann::json streams = nlohmann::json::array(), posts = nlohmann::json::array(),
                 carriers = nlohmann::json::array();
  for (auto s : r.getStreams()) streams.push_back(s.cStr());
  for (auto p : r.getTopPosts()) {
    posts.push_back({{"event", HexJson(p.getId())},
                     {"stream", p.getStream().cStr()},
                     {"occurredAt", schema::FormatMicros(p.getOccurredAt())},
                     {"type", schema::EnumName(p.getType())},
                     {"channel", schema::EnumName(p.getChannel())},
                     {"audience", p.getAudience()},
                     {"cascade", p.getCascade()},
                     {"carries", p.getCarries()},
                     {"retracted", p.getRetracted()}});
  }
  for (auto k : r.getCarriers()) {
    carriers.push_back({{"stream", k.getStream().cStr()},
                        {"shares", k.getShares()},
                        {"mentions", k.getMentions()},
                        {"likes", k.getLikes()},
                        {"other", k.getOther()},
                        {"follows", k.getFollows()}});
  }
  nlohmann::json j = {{"person", r.getPerson().cStr()},
                      {"streams", streams},
                      {"asOf", schema::FormatMicros(r.getAsOf())},
                      {"reach", r.getReach()},
                      {"reach90d", r.getReach90d()},
                      {"posts", r.getPosts()},
                      {"carried", r.getCarried()},
                      {"reactions", r.getReactions()},
                      {"maxDepth", r.getMaxDepth()},
                      {"persons", r.getPersons()},
                      {"topPosts", posts},
                      {"carriers", carriers},
                      {"erasedStreams", r.getErasedStreams()},
                      {"anonymousIn", r.getAnonymousIn()}};
  if (r.getRank() != 0) {
    j["rank"] = r.getRank();
    j["percentile"] = r.getPercentile();
  }
  j["standing"] = r.getStanding();
  j["value"] = r.getValue();
  j["risk"] = r.getRisk();
  j["riskPersons"] = r.getRiskPersons();
  j["waited"] = r.getWaited();
  j["wentPublic"] = r.getWentPublic();
  j["publicChance"] = r.getPublicChance();
  j["ownAudience"] = r.getOwnAudience();
  j["carriedAudience"] = r.getCarriedAudience();
  if (r.getRiskRank() != 0) {
    j["riskRank"] = r.getRiskRank();
    j["riskPercentile"] = r.getRiskPercentile();
  }
  j["valuePersons"] = r.getValuePersons();
  if (r.getValueRank() != 0) {
    j["valueRank"] = r.getValueRank();
    j["valuePercentile"] = r.getValuePercentile();
  }
  j["graphPersons"] = r.getGraphPersons();
  if (r.getStandingRank() != 0) {
    j["standingRank"] = r.getStandingRank();
    j["standingPercentile"] = r.getStandingPercentile();
  }
  return j;
}

nlohmann::json PersonJson(schema::Person::Reader p) {
  nlohmann::json streams = nlohmann::json::array(), links = nlohmann::json::array();
  for (auto s : p.getStreams()) streams.push_back(s.cStr());
  for (auto l : p.getLinks()) {
    nlohmann::json j = {{"a", l.getA().cStr()},
                        {"b", l.getB().cStr()},
                        {"eventId", HexJson(l.getEventId())},
                        {"position", l.getPosition()},
                        {"inferred", l.getInferred()},
                        {"confidence", JsonFloat(l.getConfidence())},
                        {"clues", IdentityCluesJson(l.getClues())}};
    if (l.getReason().size() > 0) j["reason"] = l.getReason().cStr();
    links.push_back(std::move(j));
  }
  return {{"id", p.getId().cStr()}, {"streams", streams}, {"links", links}};
}

nlohmann::json PairScoreJson(schema::PairScore::Reader p) {
  return {{"a", p.getA().cStr()},
          {"b", p.getB().cStr()},
          {"score", JsonFloat(p.getScore())},
          {"state", schema::EnumName(p.getState())},
          {"suggestionId", p.getSuggestionId().cStr()},
          {"clues", IdentityCluesJson(p.getClues())}};
}

nlohmann::json MembershipJson(schema::Membership::Reader m) {
  return {{"segment", m.getSegment().cStr()},
          {"person", m.getPerson().cStr()},
          {"since", schema::FormatMicros(m.getSince())},
          {"version", m.getVersion()}};
}

nlohmann::json TransitionJson(schema::Transition::Reader t) {
  nlohmann::json clauses = nlohmann::json::array();
  for (auto cl : t.getClauses()) {
    nlohmann::json events = nlohmann::json::array();
    for (auto e : cl.getEvents()) events.push_back(HexJson(e));
    clauses.push_back({{"clause", cl.getText().cStr()},
                       {"holds", cl.getHolds()},
                       {"value", cl.getValue()},
                       {"events", events}});
  }
  return {{"seq", t.getSeq()},
          {"segment", t.getSegment().cStr()},
          {"person", t.getPerson().cStr()},
          {"at", schema::FormatMicros(t.getAt())},
          {"entered", t.getEntered()},
          {"version", t.getVersion()},
          {"cause", schema::EnumName(t.getCause())},
          {"position", t.getPosition()},
          {"clauses", clauses}};
}

}  // namespace ihs::projections
