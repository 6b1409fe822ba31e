// JSON in and out for ihs events, through capnp::JsonCodec over schema/event.capnp, so there is
// one definition of an event (DESIGN.md decision 3). Text is parsed by nlohmann::json, strictly
// (RFC 8259: UTF-8 checked, every escape and surrogate pair decoded, a lone surrogate, a member
// named twice or a byte after the value refused), not by Cap'n Proto 0.9.2's parser, which
// mangles `\u` escapes; the codec maps the parsed value onto the schema. Output is valid JSON for
// any stored bytes. On top of the codec's defaults:
// - ids (16 bytes) are lowercase hex strings ($Json.hex in the schema);
// - occurredAt and recordedAt are RFC 3339 strings in UTC with microseconds
//   ("2026-11-23T09:30:00.000000Z"); on input an integer (µs since epoch) is accepted too;
// - position, streamVersion and audienceSize are JSON numbers (exact below 2^53);
// - sentiment is a number, or null when unknown (NaN in the schema);
// - unknown field names are an error, so that a typo is not silently dropped;
// - two members of one union (`touchpoint` and `partyProfile`) are an error naming both;
// - an enum is its name, or a whole number naming an enumerant; integers are whole and in range.
// kj exceptions from the codec are caught here and become absl::Status (kInvalidArgument).
//
// An EventJson is immutable after construction and safe for concurrent use.
#ifndef IHS_SCHEMA_JSON_H_
#define IHS_SCHEMA_JSON_H_

#include <capnp/schema.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "schema/event.capnp.h"
#include "schema/export.capnp.h"

namespace ihs::schema {

class EventJson {
 public:
  // Which fields Encode writes: all (what `ihs read` shows), or only those that differ from their
  // defaults (input for `ihs append`, without store-set zeros).
  enum class Fields { kAll, kNonDefault };
  explicit EventJson(Fields fields = Fields::kAll);
  ~EventJson();
  EventJson(const EventJson&) = delete;
  EventJson& operator=(const EventJson&) = delete;

  // Parses one JSON object into `out`. The error names what is wrong (field, value).
  absl::Status Decode(absl::string_view json, Event::Builder out) const;
  // The same through Cap'n Proto's JsonCodec for every value, the reference that Decode's own
  // mapping onto the schema must agree with (tests hold the two to each other).
  absl::Status DecodeThroughCodec(absl::string_view json, Event::Builder out) const;
  // Whether Decode maps this input onto the schema itself, without the codec (for tests).
  bool DecodesDirectly(absl::string_view json) const;

  // One line of JSON, no trailing newline.
  std::string Encode(Event::Reader event) const;

  // The same for an audit export's records (schema/export.capnp), whose events are written as
  // above.
  absl::Status Decode(absl::string_view json, ExportRecord::Builder out) const;
  std::string Encode(ExportRecord::Reader record) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The schema's name of an enumerant ("callCentre"), as JSON shows it; "?" for a number newer
// than this build's schema.
template <typename E>
const char* EnumName(E e) {
  // Looked up once per type: the schema's reflection costs a fifth of a segments rebuild when
  // it runs per call. The names live in the compiled schema, for the whole process.
  static const std::vector<const char*> names = [] {
    std::vector<const char*> v;
    for (auto en : capnp::Schema::from<E>().getEnumerants()) {
      v.push_back(en.getProto().getName().cStr());
    }
    return v;
  }();
  const auto i = static_cast<uint16_t>(e);
  return i < names.size() ? names[i] : "?";
}

// `text` as a JSON string literal, quotes included. Bytes that are not UTF-8 become U+FFFD, so the
// result is valid JSON whatever `text` holds.
std::string JsonQuote(absl::string_view text);

// Formats µs since the Unix epoch as RFC 3339 UTC with microseconds.
std::string FormatMicros(int64_t micros);

}  // namespace ihs::schema

#endif  // IHS_SCHEMA_JSON_H_
