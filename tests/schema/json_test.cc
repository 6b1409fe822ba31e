// Tests of schema/json.h: the JSON form of events that `ihs` reads and prints.
#include "schema/json.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/testutil/testutil.h"

namespace ihs::schema {
namespace {

constexpr char kComplaint[] =
    R"({"id":"5a3e0000000000000000000000000011","streamId":"customer-ada",)"
    R"("occurredAt":"2026-10-10T19:47:00Z","touchpoint":{"channel":"twitter",)"
    R"("direction":"public","type":"complaint","sentiment":-0.9,"topics":["router"],)"
    R"("inReplyTo":"5a3e0000000000000000000000000010","audienceSize":4200},)"
    R"("content":{"text":"two days and not a word"}})";

TEST(EventJson, DecodesTheDocumentedForm) {
  EventJson json;
  capnp::MallocMessageBuilder mb;
  auto ev = mb.initRoot<Event>();
  IHS_ASSERT_OK(json.Decode(kComplaint, ev));
  EXPECT_EQ(ev.getId().size(), 16u);
  EXPECT_EQ(ev.getId()[15], 0x11);
  EXPECT_EQ(ev.getOccurredAt(), 1791661620000000);  // 2026-10-10T19:47:00Z in µs
  ASSERT_EQ(ev.which(), Event::TOUCHPOINT);
  auto tp = ev.getTouchpoint();
  EXPECT_EQ(tp.getChannel(), Channel::TWITTER);
  EXPECT_EQ(tp.getDirection(), Direction::PUBLIC);
  EXPECT_EQ(tp.getType(), TouchpointType::COMPLAINT);
  EXPECT_FLOAT_EQ(tp.getSentiment(), -0.9f);
  EXPECT_EQ(tp.getAudienceSize(), 4200u);
  EXPECT_EQ(std::string(ev.getContent().getText().cStr()), "two days and not a word");
}

TEST(EventJson, RoundTripsThroughEncode) {
  EventJson json;
  capnp::MallocMessageBuilder a, b;
  IHS_ASSERT_OK(json.Decode(kComplaint, a.initRoot<Event>()));
  std::string text = json.Encode(a.getRoot<Event>().asReader());
  EXPECT_NE(text.find(R"("occurredAt":"2026-10-10T19:47:00.000000Z")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("sentiment":-0.9)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("id":"5a3e0000000000000000000000000011")"), std::string::npos) << text;
  IHS_ASSERT_OK(json.Decode(text, b.initRoot<Event>()));
  EXPECT_EQ(json.Encode(b.getRoot<Event>().asReader()), text);
}

TEST(EventJson, UnknownSentimentIsNullAndNaN) {
  EventJson json;
  capnp::MallocMessageBuilder mb;
  auto ev = mb.initRoot<Event>();
  IHS_ASSERT_OK(json.Decode(R"({"touchpoint":{"channel":"email"}})", ev));
  EXPECT_TRUE(std::isnan(ev.getTouchpoint().getSentiment()));
  EXPECT_NE(json.Encode(ev.asReader()).find(R"("sentiment":null)"), std::string::npos);
}

TEST(EventJson, AcceptsMicrosecondsForTimestamps) {
  EventJson json;
  capnp::MallocMessageBuilder mb;
  auto ev = mb.initRoot<Event>();
  IHS_ASSERT_OK(json.Decode(R"({"occurredAt":1791661620000001})", ev));
  EXPECT_EQ(ev.getOccurredAt(), 1791661620000001);
}

TEST(EventJson, BadInputIsAnErrorThatNamesTheProblem) {
  EventJson json;
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {R"({"streamId": "x",)", "malformed"},
      {R"({"touchpoint":{"channel":"carrierPigeon"}})", "carrierPigeon"},
      {R"({"streamld":"typo"})", "streamld"},
      {R"({"occurredAt":"yesterday"})", "RFC 3339"},
      {R"({"id":"xyz"})", "hex digits"},
      {R"({"id":42})", "hex string"},
      {R"({"touchpoint":{"sentiment":"very"}})", "sentiment"},
      {"", "empty"},
  };
  for (const auto& c : cases) {
    capnp::MallocMessageBuilder mb;
    absl::Status s = json.Decode(c.json, mb.initRoot<Event>());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.json << " -> " << s;
  }
}

}  // namespace
}  // namespace ihs::schema
