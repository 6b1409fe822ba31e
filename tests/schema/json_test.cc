// Tests of schema/json.h: the JSON form of events that `ihs` reads and prints.
#include "schema/json.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/time_math.h"
#include "nlohmann/json.hpp"
#include "tests/testutil/testutil.h"
#include "workload/generator.h"

namespace ihs::schema {
namespace {

constexpr char kComplaint[] =
    R"({"id":"5a3e0000000000000000000000000011","streamId":"customer-ada",)"
    R"("occurredAt":"2026-10-10T19:47:00Z","touchpoint":{"channel":"twitter",)"
    R"("direction":"public","type":"complaint","sentiment":-0.9,"topics":["router"],)"
    R"("inReplyTo":"5a3e0000000000000000000000000010","audienceSize":4200},)"
    R"("content":{"text":"two days and not a word"}})";

// A value of every kind JSON has, for the mutations below.
nlohmann::ordered_json RandomValue(std::mt19937_64& rng) {
  switch (rng() % 14) {
    case 0:
      return nullptr;
    case 1:
      return 0;
    case 2:
      return 1.5;
    case 3:
      return -3;
    case 4:
      return "x";
    case 5:
      return "2026-01-01T00:00:00Z";
    case 6:
      return "00ff";
    case 7:
      return true;
    case 8:
      return nlohmann::ordered_json::array();
    case 9:
      return nlohmann::ordered_json::array({"a", "b"});
    case 10:
      return nlohmann::ordered_json::object();
    case 11:
      return nlohmann::ordered_json({{"kind", "email"}, {"address", "a@b.c"}});
    case 12:
      return "email";
    default:
      return 18446744073709551615.0;
  }
}

// The line with one value replaced by a random one, or one member dropped.
std::string Mutate(const std::string& line, std::mt19937_64& rng) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
  std::vector<nlohmann::ordered_json*> all;
  std::vector<std::pair<nlohmann::ordered_json*, std::string>> members;
  std::function<void(nlohmann::ordered_json&)> walk = [&](nlohmann::ordered_json& v) {
    if (v.is_object()) {
      for (auto& [k, m] : v.items()) {
        members.emplace_back(&v, k);
        all.push_back(&m);
        walk(m);
      }
    } else if (v.is_array()) {
      for (auto& e : v) {
        all.push_back(&e);
        walk(e);
      }
    }
  };
  walk(j);
  if (rng() % 5 == 0 && !members.empty()) {
    auto& [object, key] = members[rng() % members.size()];
    object->erase(key);
  } else if (!all.empty()) {
    *all[rng() % all.size()] = RandomValue(rng);
  }
  return j.dump();
}

std::string CanonicalBytes(Event::Reader e) {
  kj::Array<capnp::word> words = capnp::canonicalize(e);
  return std::string(reinterpret_cast<const char*>(words.begin()), words.size() * 8);
}

// Decode maps what it can onto the schema itself and leaves the rest to Cap'n Proto's codec
// (schema/json.cc, Write): both ways must give the same event, or the same error, for every
// input. A generated history (every kind of event the generator makes, each decoded directly),
// each line also mutated at random (a value replaced by null, a number, text, a boolean, an array
// or an object; a member dropped), and lines for the fields the generator leaves out.
TEST(EventJson, DecodingDirectlyAgreesWithTheCodecOnEveryInput) {
  EventJson json(EventJson::Fields::kNonDefault);
  std::vector<std::string> lines = {
      kComplaint,
      R"({"id":"01","streamId":"a","occurredAt":"2026-01-01T00:00:00.5+02:00","touchpoint":)"
      R"({"channel":"email","direction":"inbound","type":"message","sentiment":null,"topics":[]},)"
      R"("content":{"subject":"s","to":[{"kind":"email","address":"x@y.z"},{"kind":"phone",)"
      R"("address":"+1"}],"from":{"kind":"email","address":"q@r.s"}}})",
      R"({"id":"02","streamId":"a","occurredAt":1767225600000000,"touchpoint":{"channel":"sms",)"
      R"("direction":"outbound","type":"reply","sentiment":1,"audienceSize":"12"}})",
      R"({"id":"03","streamId":"$segments","occurredAt":"2026-01-01T00:00:00Z",)"
      R"("segmentDefinition":{"name":"n","rule":"","retired":true,"description":"d"}})",
      R"({"id":"04","streamId":"$identity","occurredAt":"2026-01-01T00:00:00Z","identityLink":)"
      R"({"parties":["a","b"],"confidence":0.75,"clues":[{"weight":2,"events":[[1,2]]}]}})",
      R"({"id":"05","streamId":"a","occurredAt":"2026-01-01T00:00:00Z","legalHold":)"
      R"({"lift":false,"reason":"r","requestedBy":"q"}})",
      R"({"id":"06","streamId":"a","occurredAt":"2026-01-01T00:00:00Z","position":3,)"
      R"("streamVersion":4,"correlationId":"ABCDEF","partyProfile":{"kind":"employee"}})",
  };
  workload::Config config;
  config.parties = 600;
  config.days = 40;
  config.seed = 11;
  workload::Generator generator(config);
  size_t generated = 0;
  for (;;) {
    capnp::MallocMessageBuilder mb;
    auto ev = mb.initRoot<Event>();
    if (!generator.Next(ev)) break;
    lines.push_back(json.Encode(ev.asReader()));
    EXPECT_TRUE(json.DecodesDirectly(lines.back())) << lines.back();
    ++generated;
  }
  ASSERT_GT(generated, 5000u);
  std::mt19937_64 rng(7);
  size_t same_event = 0, same_error = 0;
  auto both_ways = [&](const std::string& line) {
    capnp::MallocMessageBuilder a, b;
    const absl::Status direct = json.Decode(line, a.initRoot<Event>());
    const absl::Status codec = json.DecodeThroughCodec(line, b.initRoot<Event>());
    ASSERT_EQ(direct.ok(), codec.ok()) << line << "\n" << direct << "\n" << codec;
    if (!direct.ok()) {
      EXPECT_EQ(direct, codec) << line;
      ++same_error;
      return;
    }
    EXPECT_EQ(CanonicalBytes(a.getRoot<Event>()), CanonicalBytes(b.getRoot<Event>())) << line;
    ++same_event;
  };
  for (const std::string& line : lines) {
    both_ways(line);
    for (int k = 0; k < 3; ++k) both_ways(Mutate(line, rng));
  }
  // Both outcomes were met many times, so the comparison compared something.
  EXPECT_GT(same_event, 10000u);
  EXPECT_GT(same_error, 5000u);
}

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

// The first and last moments the store takes are written as RFC 3339 (four-digit years) and read
// back to the microsecond, so that an export of any history imports again.
TEST(EventJson, TheEndsOfTheYears1To9999RoundTrip) {
  EventJson json;
  for (auto [micros, text] :
       {std::pair<int64_t, std::string>{kEarliestTime, "0001-01-01T00:00:00.000000Z"},
        {kLatestTime, "9999-12-31T23:59:59.999999Z"},
        {-61'000'000'000'000'000, "0036-12-26T11:33:20.000000Z"}}) {
    capnp::MallocMessageBuilder a, b;
    a.initRoot<Event>().setOccurredAt(micros);
    const std::string encoded = json.Encode(a.getRoot<Event>().asReader());
    EXPECT_NE(encoded.find(absl::StrCat("\"occurredAt\":\"", text, "\"")), std::string::npos)
        << encoded;
    IHS_ASSERT_OK(json.Decode(encoded, b.initRoot<Event>()));
    EXPECT_EQ(b.getRoot<Event>().getOccurredAt(), micros) << text;
  }
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

// A JSON number is a double: whole microseconds are exact only within ±2^53. Beyond ±9e15 the
// error says so and points to RFC 3339 text, which reaches the years 1 to 9999.
TEST(EventJson, TimestampNumbersOutsideTheExactRangeSayWhereItEnds) {
  EventJson json;
  for (const char* edge : {"8999999999999999", "-8999999999999999"}) {
    capnp::MallocMessageBuilder mb;
    auto ev = mb.initRoot<Event>();
    IHS_ASSERT_OK(json.Decode(absl::StrCat(R"({"occurredAt":)", edge, "}"), ev));
    EXPECT_EQ(absl::StrCat(ev.getOccurredAt()), edge);
  }
  struct Case {
    const char* number;
    const char* message;
  } cases[] = {
      {"9000000000000000", "within ±9000000000000000 µs of the epoch (1684-10-19 to 2255-03-14)"},
      {"-9000000000000000", "within ±9000000000000000 µs"},
      {"1e17", "write other times as RFC 3339 text"},
      {"1.5", "must be whole microseconds since the epoch, got 1.5"},
  };
  for (const auto& c : cases) {
    capnp::MallocMessageBuilder mb;
    absl::Status s =
        json.Decode(absl::StrCat(R"({"occurredAt":)", c.number, "}"), mb.initRoot<Event>());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.number;
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.number << " -> " << s;
    // The message is for the user, not the code's own words.
    EXPECT_EQ(s.message().find("TimestampFromNumber"), std::string::npos) << s;
  }
  // The same moment as text is taken.
  capnp::MallocMessageBuilder mb;
  auto ev = mb.initRoot<Event>();
  IHS_ASSERT_OK(json.Decode(R"({"occurredAt":"2286-11-20T17:46:40Z"})", ev));
  EXPECT_EQ(ev.getOccurredAt(), 10000000000000000);
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

// The text field of an event decoded from `escaped`, a JSON string literal's inside.
absl::StatusOr<std::string> DecodeText(const EventJson& json, const std::string& escaped) {
  capnp::MallocMessageBuilder mb;
  auto ev = mb.initRoot<Event>();
  absl::Status s = json.Decode(absl::StrCat(R"({"content":{"text":")", escaped, R"("}})"), ev);
  if (!s.ok()) return s;
  auto text = ev.getContent().getText();
  return std::string(text.cStr(), text.size());
}

// Code point -> UTF-8, written out here by the definition (RFC 3629), as the reference.
std::string Utf8(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return out;
}

// Cap'n Proto 0.9.2's decoder read the hex letters a-f as 0-5: "Zo\u00eb" came back as "ZoA".
TEST(EventJson, UnicodeEscapesWithHexLettersAreDecodedAsWritten) {
  EventJson json;
  struct Case {
    const char* escaped;
    std::string text;
  } cases[] = {
      {R"(Zo\u00eb caf\u00e9)", "Zo\xc3\xab caf\xc3\xa9"},
      {R"(\u00E9\u00e9)", "\xc3\xa9\xc3\xa9"},  // either case of hex letter
      {R"(\uabcd)", Utf8(0xabcd)},              // a letter in every position
      {R"(\ufedc)", Utf8(0xfedc)},
      {R"(\u0a0b\u00c0\u000f)", Utf8(0x0a0b) + Utf8(0xc0) + Utf8(0x0f)},
      {R"(\u001b[0m)", "\x1b[0m"},  // was stored as 0x11
      {R"(\u0000)", std::string(1, '\0')},
      {R"(\ud83d\ude00 \uD83D\uDE00)", Utf8(0x1f600) + " " + Utf8(0x1f600)},  // surrogate pairs
      {R"(\udbff\udfff)", Utf8(0x10ffff)},
      {R"(a\/b\\c\"d\b\f\n\r\t)", "a/b\\c\"d\b\f\n\r\t"},
      {"Zo\xc3\xab \xf0\x9f\x98\x80", "Zo\xc3\xab \xf0\x9f\x98\x80"},  // UTF-8 as it is
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::string> text = DecodeText(json, c.escaped);
    ASSERT_TRUE(text.ok()) << c.escaped << ": " << text.status();
    EXPECT_EQ(*text, c.text) << c.escaped;
  }
}

TEST(EventJson, InvalidEscapesLoneSurrogatesAndInvalidUtf8AreRefused) {
  EventJson json;
  const char* cases[] = {
      R"(\ud83d)",        // a high surrogate alone
      R"(\ud83dx)",       // ... followed by something else
      R"(\ud83d\u0041)",  // ... followed by a non-surrogate escape
      R"(\ude00)",        // a low surrogate alone
      R"(\u00g0)",        // not hex
      R"(\u00e)",         // too short
      R"(\x41)",          // not a JSON escape
      "\xc3",             // a truncated UTF-8 sequence
      "\xff",             // never UTF-8
      "\xc0\xaf",         // overlong
      "\xed\xa0\x80",     // a surrogate encoded in UTF-8
      "tab\there",        // a raw control character
  };
  for (const char* c : cases) {
    absl::StatusOr<std::string> text = DecodeText(json, c);
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument) << absl::CHexEscape(c);
    EXPECT_NE(text.status().message().find("malformed event JSON"), std::string::npos)
        << text.status();
  }
}

// A parse error names the field whose value was being read.
TEST(EventJson, ParseErrorsNameTheField) {
  EventJson json;
  struct Case {
    std::string json;
    const char* field;
  } cases[] = {
      {R"({"content":{"text":"\ud83d"}})", "content.text: "},
      {R"({"content":{"to":[{"address":"a"},{"address":"b\x"}]}})", "content.to[1].address: "},
      {R"({"touchpoint":{"topics":["a","\u00g0"]}})", "touchpoint.topics[1]: "},
      {"{\"sourceSystem\":\"crm\xff\"}", "sourceSystem: "},
      {R"({"streamId":"a","streamId":"b"})", "streamId: "},
  };
  for (const auto& c : cases) {
    capnp::MallocMessageBuilder mb;
    absl::Status s = json.Decode(c.json, mb.initRoot<Event>());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << c.json << " -> " << s;
  }
}

// A property test: random Unicode text, written as JSON with every escape form chosen at random
// (raw UTF-8, \uXXXX in either case, surrogate pairs, short escapes), reads back as the code
// points it was written from.
TEST(EventJson, RandomUnicodeTextReadsBackAsWritten) {
  EventJson json;
  std::mt19937_64 rng(20261204);
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  for (int round = 0; round < testing::Rounds("IHS_FUZZ_ROUNDS", 2000); ++round) {
    std::string expected, escaped;
    const size_t n = pick(24);
    for (size_t i = 0; i < n; ++i) {
      char32_t cp;
      switch (pick(5)) {
        case 0:
          cp = static_cast<char32_t>(pick(0x80));
          break;  // ASCII, controls too
        case 1:
          cp = static_cast<char32_t>(0x80 + pick(0x800 - 0x80));
          break;
        case 2:
          cp = static_cast<char32_t>(0x800 + pick(0xd800 - 0x800));
          break;
        case 3:
          cp = static_cast<char32_t>(0xe000 + pick(0x10000 - 0xe000));
          break;
        default:
          cp = static_cast<char32_t>(0x10000 + pick(0x110000 - 0x10000));
          break;
      }
      expected += Utf8(cp);
      const bool must_escape = cp < 0x20 || cp == '"' || cp == '\\';
      const bool upper = pick(2) == 1;  // hex letters in either case
      auto hex = [upper](uint32_t v) {
        return upper ? absl::StrFormat("\\u%04X", v) : absl::StrFormat("\\u%04x", v);
      };
      if (!must_escape && pick(2)) {
        escaped += Utf8(cp);
      } else if (cp == '"') {
        escaped += "\\\"";
      } else if (cp == '\\') {
        escaped += "\\\\";
      } else if (cp == '\n' && pick(2)) {
        escaped += "\\n";
      } else if (cp >= 0x10000) {
        const char32_t v = cp - 0x10000;
        escaped += hex(0xd800 + (v >> 10));
        escaped += hex(0xdc00 + (v & 0x3ff));
      } else {
        escaped += hex(static_cast<uint32_t>(cp));
      }
    }
    absl::StatusOr<std::string> text = DecodeText(json, escaped);
    ASSERT_TRUE(text.ok()) << escaped << ": " << text.status();
    ASSERT_EQ(*text, expected) << escaped;
  }
}

TEST(EventJson, TwoEventTypesAreRefusedNamingBoth) {
  EventJson json;
  struct Case {
    const char* json;
    const char* first;
    const char* second;
  } cases[] = {
      {R"({"touchpoint":{"channel":"email"},"partyProfile":{"kind":"customer"}})", "touchpoint",
       "partyProfile"},
      {R"({"identityLink":{"parties":["a","b"]},"touchpoint":{}})", "identityLink", "touchpoint"},
  };
  for (const auto& c : cases) {
    capnp::MallocMessageBuilder mb;
    absl::Status s = json.Decode(c.json, mb.initRoot<Event>());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_NE(s.message().find(c.first), std::string::npos) << s;
    EXPECT_NE(s.message().find(c.second), std::string::npos) << s;
  }
}

TEST(EventJson, NumbersMustBeWholeAndNameAnEnumerant) {
  EventJson json;
  {
    capnp::MallocMessageBuilder mb;
    auto ev = mb.initRoot<Event>();
    IHS_ASSERT_OK(json.Decode(R"({"touchpoint":{"direction":2}})", ev));
    EXPECT_EQ(ev.getTouchpoint().getDirection(), Direction::OUTBOUND);
  }
  const char* bad[] = {
      R"({"touchpoint":{"direction":1.5}})",  // was stored as inbound
      R"({"touchpoint":{"direction":-1}})",
      R"({"touchpoint":{"direction":99}})",
      R"({"touchpoint":{"channel":1e300}})",
      R"({"partyProfile":{"kind":"customer"},"sealedContent":{"keyVersion":1.25}})",
      R"({"retentionRun":{"asOf":0.5}})",
      R"({"sealedContent":{"keyVersion":4294967296}})",
  };
  for (const char* b : bad) {
    capnp::MallocMessageBuilder mb;
    absl::Status s = json.Decode(b, mb.initRoot<Event>());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << b;
  }
  capnp::MallocMessageBuilder mb;
  absl::Status s = json.Decode(R"({"touchpoint":{"direction":1.5}})", mb.initRoot<Event>());
  EXPECT_NE(s.message().find("touchpoint.direction"), std::string::npos) << s;
  // A name that is not one: the field and the names there are, in the schema's words.
  capnp::MallocMessageBuilder named;
  s = json.Decode(R"({"touchpoint":{"channel":"whatsapp"}})", named.initRoot<Event>());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(R"(touchpoint.channel: "whatsapp" is not one of unspecified, letter)"),
            std::string::npos)
      << s;
}

TEST(EventJson, AnythingAfterTheObjectIsRefused) {
  EventJson json;
  const std::string cases[] = {
      std::string(R"({"streamId":"a"})") + '\0',
      R"({"streamId":"a"} x)",
      R"({"streamId":"a"}{"streamId":"b"})",
      R"({"streamId":"a","streamId":"b"})",  // a member twice: the first would be lost
      R"(["streamId"])",
      std::string(200, '[') + std::string(200, ']'),
  };
  for (const std::string& c : cases) {
    capnp::MallocMessageBuilder mb;
    absl::Status s = json.Decode(c, mb.initRoot<Event>());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << absl::CHexEscape(c);
  }
}

// Output is strict JSON for any bytes a stored event may hold (stores written before text was
// checked on input can hold invalid UTF-8), and valid text reads back unchanged.
TEST(EventJson, EncodedEventsAreStrictJsonForAnyBytes) {
  EventJson json;
  std::mt19937_64 rng(7);
  for (int round = 0; round < testing::Rounds("IHS_FUZZ_ROUNDS", 2000); ++round) {
    std::string bytes(rng() % 40, '\0');
    for (char& b : bytes) b = static_cast<char>(rng() % 256);
    if (round % 2 == 0) {
      for (char& b : bytes) b = static_cast<char>(0x20 + (static_cast<unsigned char>(b) % 0x5f));
    }
    capnp::MallocMessageBuilder mb;
    auto ev = mb.initRoot<Event>();
    ev.setStreamId(capnp::Text::Reader(bytes.data(), bytes.size()));
    ev.initContent().setText(capnp::Text::Reader(bytes.data(), bytes.size()));
    ev.initIdentityLink().setConfidence(round % 3 == 0 ? NAN : INFINITY);
    const std::string line = json.Encode(ev.asReader());
    nlohmann::json parsed;
    ASSERT_NO_THROW(parsed = nlohmann::json::parse(line)) << absl::CHexEscape(line);
    if (round % 2 == 0) {
      EXPECT_EQ(parsed["streamId"], bytes);
      EXPECT_EQ(parsed["content"]["text"], bytes);
    }
    const std::string quoted = JsonQuote(bytes);
    ASSERT_NO_THROW(parsed = nlohmann::json::parse(quoted)) << absl::CHexEscape(quoted);
    if (round % 2 == 0) {
      EXPECT_EQ(parsed, bytes);
    }
  }
}

}  // namespace
}  // namespace ihs::schema
