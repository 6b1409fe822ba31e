#include "schema/json.h"

#include <capnp/compat/json.h>
#include <kj/exception.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace ihs::schema {
namespace {

constexpr char kRfc3339[] = "%Y-%m-%d%ET%H:%M:%E6SZ";

class TimestampHandler final : public capnp::JsonCodec::Handler<int64_t> {
 public:
  void encode(const capnp::JsonCodec&, int64_t input,
              capnp::JsonValue::Builder output) const override {
    output.setString(FormatMicros(input));
  }
  int64_t decode(const capnp::JsonCodec&, capnp::JsonValue::Reader input) const override {
    switch (input.which()) {
      case capnp::JsonValue::NUMBER: {
        double v = input.getNumber();
        KJ_REQUIRE(std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15,
                   "timestamp must be RFC 3339 text or whole microseconds since the epoch");
        return static_cast<int64_t>(v);
      }
      case capnp::JsonValue::STRING: {
        absl::Time t;
        std::string err;
        std::string text = input.getString();
        if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
          KJ_FAIL_REQUIRE("timestamp is not RFC 3339 (e.g. 2026-11-23T09:30:00Z)", text, err);
        }
        return absl::ToUnixMicros(t);
      }
      default:
        KJ_FAIL_REQUIRE("timestamp must be an RFC 3339 string");
    }
  }
};

class UInt64NumberHandler final : public capnp::JsonCodec::Handler<uint64_t> {
 public:
  void encode(const capnp::JsonCodec&, uint64_t input,
              capnp::JsonValue::Builder output) const override {
    output.setNumber(static_cast<double>(input));
  }
  uint64_t decode(const capnp::JsonCodec&, capnp::JsonValue::Reader input) const override {
    if (input.isString()) {
      uint64_t v = 0;
      KJ_REQUIRE(absl::SimpleAtoi(std::string(input.getString()), &v), "not an unsigned integer",
                 input.getString());
      return v;
    }
    KJ_REQUIRE(input.isNumber(), "expected an unsigned integer");
    double v = input.getNumber();
    KJ_REQUIRE(v >= 0 && v == std::floor(v) && v < 9.0e15, "expected an unsigned integer", v);
    return static_cast<uint64_t>(v);
  }
};

class SentimentHandler final : public capnp::JsonCodec::Handler<float> {
 public:
  void encode(const capnp::JsonCodec&, float input,
              capnp::JsonValue::Builder output) const override {
    if (std::isnan(input)) {
      output.setNull();
    } else {
      // Through 6 significant digits, so that -0.6f prints as -0.6, not -0.60000002384185791.
      output.setNumber(std::strtod(absl::StrCat(input).c_str(), nullptr));
    }
  }
  float decode(const capnp::JsonCodec&, capnp::JsonValue::Reader input) const override {
    if (input.isNull()) return std::numeric_limits<float>::quiet_NaN();
    KJ_REQUIRE(input.isNumber(), "sentiment must be a number in [-1, 1] or null");
    return static_cast<float>(input.getNumber());
  }
};

// Ids as lowercase hex; on input, anything but an even number of hex digits is an error
// (the codec's own $Json.hex decoder accepts "xyz").
class StrictHexHandler final : public capnp::JsonCodec::Handler<capnp::Data> {
 public:
  void encode(const capnp::JsonCodec&, capnp::Data::Reader input,
              capnp::JsonValue::Builder output) const override {
    output.setString(absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(input.begin()), input.size())));
  }
  capnp::Orphan<capnp::Data> decode(const capnp::JsonCodec&, capnp::JsonValue::Reader input,
                                    capnp::Orphanage orphanage) const override {
    KJ_REQUIRE(input.isString(), "an id must be a hex string");
    std::string text = input.getString();
    KJ_REQUIRE(text.size() % 2 == 0 &&
                   text.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos,
               "an id must be an even number of hex digits", text);
    std::string bytes = absl::HexStringToBytes(text);
    return orphanage.newOrphanCopy(
        capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
  }
};

capnp::StructSchema::Field FieldOf(capnp::StructSchema s, kj::StringPtr name) {
  return s.getFieldByName(name);
}

}  // namespace

struct EventJson::Impl {
  capnp::JsonCodec codec;
  TimestampHandler timestamps;
  UInt64NumberHandler numbers;
  SentimentHandler sentiment;
  StrictHexHandler hex;

  explicit Impl(Fields fields) {
    codec.setRejectUnknownFields(true);
    if (fields == Fields::kNonDefault) codec.setHasMode(capnp::HasMode::NON_DEFAULT);
    codec.handleByAnnotation<ExportRecord>();  // and so Event's, which it holds
    auto event = capnp::Schema::from<Event>();
    codec.addFieldHandler(FieldOf(event, "occurredAt"), timestamps);
    codec.addFieldHandler(FieldOf(event, "recordedAt"), timestamps);
    codec.addFieldHandler(FieldOf(event, "position"), numbers);
    codec.addFieldHandler(FieldOf(event, "streamVersion"), numbers);
    for (const char* f : {"id", "correlationId", "causationId"}) {
      codec.addFieldHandler(FieldOf(event, f), hex);
    }
    auto tp = capnp::Schema::from<Touchpoint>();
    codec.addFieldHandler(FieldOf(tp, "audienceSize"), numbers);
    codec.addFieldHandler(FieldOf(tp, "sentiment"), sentiment);
    codec.addFieldHandler(FieldOf(tp, "inReplyTo"), hex);
    codec.addFieldHandler(FieldOf(tp, "corrects"), hex);
  }
};

EventJson::EventJson(Fields fields) : impl_(std::make_unique<Impl>(fields)) {}
EventJson::~EventJson() = default;

namespace {
template <typename Builder>
absl::Status DecodeWith(const capnp::JsonCodec& codec, absl::string_view json, Builder out,
                        absl::string_view what) {
  if (json.empty()) return absl::InvalidArgumentError("empty JSON input");
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() {
                 codec.decode(kj::ArrayPtr<const char>(json.data(), json.size()), out);
               })) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed ", what, " JSON: ", e->getDescription().cStr()));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status EventJson::Decode(absl::string_view json, Event::Builder out) const {
  return DecodeWith(impl_->codec, json, out, "event");
}

std::string EventJson::Encode(Event::Reader event) const {
  kj::String s = impl_->codec.encode(event);
  return std::string(s.cStr(), s.size());
}

absl::Status EventJson::Decode(absl::string_view json, ExportRecord::Builder out) const {
  return DecodeWith(impl_->codec, json, out, "export record");
}

std::string EventJson::Encode(ExportRecord::Reader record) const {
  kj::String s = impl_->codec.encode(record);
  return std::string(s.cStr(), s.size());
}

std::string FormatMicros(int64_t micros) {
  return absl::FormatTime(kRfc3339, absl::FromUnixMicros(micros), absl::UTCTimeZone());
}

}  // namespace ihs::schema
