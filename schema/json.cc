#include "schema/json.h"

#include <capnp/compat/json.h>
#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <kj/exception.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"

namespace ihs::schema {
namespace {

// Parsed JSON with the members of an object in the order they came (so that errors and
// re-encoded output keep the writer's order).
using Dom = nlohmann::ordered_json;

constexpr char kRfc3339[] = "%E4Y-%m-%d%ET%H:%M:%E6SZ";  // %E4Y: 0001, not 1

// Deeper input is refused: the schema nests a handful of levels, and the walks below recurse.
constexpr size_t kMaxDepth = 64;

// The rules of the handlers below, on plain values: the handlers and the direct decoding
// (EventJson::Impl::Write) both follow them.
bool TimestampFromNumber(double v, int64_t* micros) {
  if (!(std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15)) return false;
  *micros = static_cast<int64_t>(v);
  return true;
}
// Why TimestampFromNumber refused `v`. A JSON number is a double: whole microseconds are exact
// only within ±2^53, so a time outside about 1684..2255 must be RFC 3339 text.
std::string TimestampNumberError(double v) {
  if (std::isfinite(v) && v == std::floor(v)) {
    return absl::StrCat("a timestamp given as a number must be within ±9000000000000000 µs of ",
                        "the epoch (1684-10-19 to 2255-03-14), got ", v,
                        "; write other times as RFC 3339 text (e.g. 2026-11-23T09:30:00Z)");
  }
  return absl::StrCat("a timestamp given as a number must be whole microseconds since the epoch, ",
                      "got ", v, "; or write RFC 3339 text (e.g. 2026-11-23T09:30:00Z)");
}
// Refuses a value with `why` as the whole description (KJ_FAIL_REQUIRE would print the
// expression's text too).
[[noreturn]] void Refuse(const std::string& why) {
  kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::heapString(why)));
}
bool TimestampFromText(const std::string& text, int64_t* micros, std::string* err) {
  absl::Time t;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, err)) return false;
  *micros = absl::ToUnixMicros(t);
  return true;
}
bool UInt64FromNumber(double v, uint64_t* out) {
  if (!(v >= 0 && v == std::floor(v) && v < 9.0e15)) return false;
  *out = static_cast<uint64_t>(v);
  return true;
}
bool IdFromHex(const std::string& text, std::string* bytes) {
  if (text.size() % 2 != 0 ||
      text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return false;
  }
  *bytes = absl::HexStringToBytes(text);
  return true;
}

class TimestampHandler final : public capnp::JsonCodec::Handler<int64_t> {
 public:
  void encode(const capnp::JsonCodec&, int64_t input,
              capnp::JsonValue::Builder output) const override {
    output.setString(FormatMicros(input));
  }
  int64_t decode(const capnp::JsonCodec&, capnp::JsonValue::Reader input) const override {
    switch (input.which()) {
      case capnp::JsonValue::NUMBER: {
        int64_t micros = 0;
        const double v = input.getNumber();
        if (!TimestampFromNumber(v, &micros)) Refuse(TimestampNumberError(v));
        return micros;
      }
      case capnp::JsonValue::STRING: {
        int64_t micros = 0;
        std::string err;
        std::string text = input.getString();
        if (!TimestampFromText(text, &micros, &err)) {
          KJ_FAIL_REQUIRE("timestamp is not RFC 3339 (e.g. 2026-11-23T09:30:00Z)", text, err);
        }
        return micros;
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
    uint64_t out = 0;
    if (!UInt64FromNumber(v, &out)) {
      Refuse(
          absl::StrCat("expected an unsigned integer below 9000000000000000 (larger ones as "
                       "text, e.g. \"18446744073709551615\"), got ",
                       v));
    }
    return out;
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
    std::string bytes;
    KJ_REQUIRE(IdFromHex(text, &bytes), "an id must be an even number of hex digits", text);
    return orphanage.newOrphanCopy(
        capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
  }
};

capnp::StructSchema::Field FieldOf(capnp::StructSchema s, kj::StringPtr name) {
  return s.getFieldByName(name);
}

// ---------------------------------------------------------------------------------------------
// Reading JSON. Debian 12's Cap'n Proto 0.9.2 decodes `\u` escapes wrongly (hex letters a-f count
// as 0-5, so "\u00e9" becomes "I"; surrogate pairs become invalid UTF-8) and stops at a NUL byte,
// so its text parser is not used: nlohmann::json parses (RFC 8259 to the letter: UTF-8 checked,
// escapes and surrogate pairs decoded, lone surrogates and trailing bytes refused), the result is
// handed to the codec as a capnp::JsonValue, which the codec maps onto the schema with no text
// parsing of its own.

// A SAX handler that builds a Dom and refuses what nlohmann's own DOM builder lets through: a
// member name twice in one object (the later one would silently win) and deep nesting.
class StrictDomBuilder final : public nlohmann::json_sax<Dom> {
 public:
  bool null() override { return Put(nullptr); }
  bool boolean(bool v) override { return Put(v); }
  bool number_integer(number_integer_t v) override { return Put(v); }
  bool number_unsigned(number_unsigned_t v) override { return Put(v); }
  bool number_float(number_float_t v, const string_t&) override { return Put(v); }
  bool string(string_t& v) override { return Put(std::move(v)); }
  bool binary(binary_t&) override { return Fail("binary values are not JSON"); }
  bool start_object(std::size_t) override { return Open(Dom::object()); }
  bool start_array(std::size_t) override { return Open(Dom::array()); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& name) override {
    if (open_.back()->contains(name)) {
      return Fail(absl::StrCat(Path(name), ": the member appears twice in one object"));
    }
    key_ = std::move(name);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    // nlohmann's text: "[json.exception.parse_error.101] parse error at line 1, column 9:
    // syntax error while parsing value - invalid string: ill-formed UTF-8 byte; ..."; the path
    // names the field whose value it was reading ("content.text: ...").
    std::string what = e.what();
    const size_t at = what.find("] ");
    if (at != std::string::npos) what = what.substr(at + 2);
    const std::string path = open_.empty() ? std::string() : Path(key_);
    return Fail(path.empty() ? what : absl::StrCat(path, ": ", what));
  }

  Dom& root() { return root_; }
  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  // Places a value where the parser is: the root, the next element of an array or the member
  // named by the last key. Returns where it went.
  Dom* Place(Dom&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Dom& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    Dom& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }
  template <typename T>
  bool Put(T&& v) {
    Place(Dom(std::forward<T>(v)));
    return true;
  }
  // A container stays where it was placed while it is open: its parent grows only after it
  // closes, so the pointers in open_ stay valid.
  bool Open(Dom&& container) {
    if (open_.size() >= kMaxDepth) {
      return Fail(absl::StrCat("nested more than ", kMaxDepth, " levels deep"));
    }
    names_.push_back(open_.empty() || open_.back()->is_array() ? std::string() : key_);
    open_.push_back(Place(std::move(container)));
    return true;
  }
  bool Close() {
    open_.pop_back();
    names_.pop_back();
    return true;
  }
  // Where the parser is, as a path of member names and indexes ("content.to[1].address"),
  // ending with `last` inside an object.
  std::string Path(const std::string& last) const {
    std::string out;
    for (size_t i = 0; i < open_.size(); ++i) {
      const bool innermost = i + 1 == open_.size();
      if (open_[i]->is_array()) {
        // The element being read: the one after those already there.
        absl::StrAppend(&out, "[", open_[i]->size() - (innermost ? 0 : 1), "]");
      } else {
        const std::string& name = innermost ? last : names_[i + 1];
        absl::StrAppend(&out, out.empty() ? "" : ".", name);
      }
    }
    return out;
  }

  Dom root_;
  std::vector<Dom*> open_;
  std::vector<std::string> names_;  // per open container: the member name it has in its parent
  std::string key_;
  std::string error_;
};

void ToJsonValue(const Dom& j, capnp::JsonValue::Builder out) {
  switch (j.type()) {
    case Dom::value_t::null:
    case Dom::value_t::discarded:
      out.setNull();
      return;
    case Dom::value_t::boolean:
      out.setBoolean(j.get<bool>());
      return;
    case Dom::value_t::number_integer:
    case Dom::value_t::number_unsigned:
    case Dom::value_t::number_float:
      out.setNumber(j.get<double>());
      return;
    case Dom::value_t::string: {
      const std::string& s = j.get_ref<const std::string&>();
      out.setString(capnp::Text::Reader(s.data(), s.size()));
      return;
    }
    case Dom::value_t::array: {
      auto list = out.initArray(j.size());
      for (size_t i = 0; i < j.size(); ++i) ToJsonValue(j[i], list[i]);
      return;
    }
    case Dom::value_t::object: {
      auto fields = out.initObject(j.size());
      size_t i = 0;
      for (const auto& [name, value] : j.items()) {
        fields[i].setName(capnp::Text::Reader(name.data(), name.size()));
        ToJsonValue(value, fields[i].initValue());
        ++i;
      }
      return;
    }
    case Dom::value_t::binary:
      break;
  }
  out.setNull();  // not reached: the builder refuses binary values
}

// The integer range of a capnp integer type, for the checks below.
bool IntegerRange(capnp::schema::Type::Which t, double* lo, double* hi) {
  switch (t) {
    case capnp::schema::Type::INT8:
      *lo = INT8_MIN;
      *hi = INT8_MAX;
      return true;
    case capnp::schema::Type::INT16:
      *lo = INT16_MIN;
      *hi = INT16_MAX;
      return true;
    case capnp::schema::Type::INT32:
      *lo = INT32_MIN;
      *hi = INT32_MAX;
      return true;
    case capnp::schema::Type::INT64:
      *lo = -9223372036854775808.0;
      *hi = 9223372036854775807.0;
      return true;
    case capnp::schema::Type::UINT8:
      *lo = 0;
      *hi = UINT8_MAX;
      return true;
    case capnp::schema::Type::UINT16:
      *lo = 0;
      *hi = UINT16_MAX;
      return true;
    case capnp::schema::Type::UINT32:
      *lo = 0;
      *hi = UINT32_MAX;
      return true;
    case capnp::schema::Type::UINT64:
      *lo = 0;
      *hi = 18446744073709551615.0;
      return true;
    default:
      return false;
  }
}

}  // namespace

struct EventJson::Impl {
  capnp::JsonCodec codec;
  TimestampHandler timestamps;
  UInt64NumberHandler numbers;
  SentimentHandler sentiment;
  StrictHexHandler hex;
  // Fields with a handler above, as (struct id, field index): the handler checks their values.
  enum class Handled { kTimestamp, kNumber, kSentiment, kHex };
  std::map<std::pair<uint64_t, uint32_t>, Handled> handled;

  // Of each struct and enum that Event and ExportRecord reach, what Check and Write ask per
  // member, looked up once here: the schema's reflection reads its encoded nodes on every call,
  // which cost a third of decoding when asked per member.
  struct FieldInfo {
    capnp::StructSchema::Field field;
    capnp::Type type;
    bool in_union = false;
    std::optional<Handled> handled;
  };
  struct StructInfo {
    capnp::StructSchema schema;
    absl::flat_hash_map<std::string, FieldInfo> fields;  // by name
  };
  struct EnumInfo {
    capnp::EnumSchema schema;
    absl::flat_hash_map<std::string, capnp::EnumSchema::Enumerant> enumerants;  // by name
  };
  std::unordered_map<uint, std::vector<StructInfo>> structs;  // by Schema::hashCode()
  std::unordered_map<uint, std::vector<EnumInfo>> enums;

  void Learn(capnp::Type type) {
    if (type.isList()) return Learn(type.asList().getElementType());
    if (type.isEnum()) {
      const capnp::EnumSchema e = type.asEnum();
      std::vector<EnumInfo>& known = enums[e.hashCode()];
      for (const EnumInfo& i : known) {
        if (i.schema == e) return;
      }
      EnumInfo info{e, {}};
      for (auto en : e.getEnumerants()) info.enumerants.emplace(en.getProto().getName(), en);
      known.push_back(std::move(info));
      return;
    }
    if (!type.isStruct()) return;
    const capnp::StructSchema s = type.asStruct();
    std::vector<StructInfo>& known = structs[s.hashCode()];
    for (const StructInfo& i : known) {
      if (i.schema == s) return;
    }
    StructInfo info{s, {}};
    const uint64_t id = s.getProto().getId();
    for (auto f : s.getFields()) {
      FieldInfo fi{f, f.getType(),
                   f.getProto().getDiscriminantValue() != capnp::schema::Field::NO_DISCRIMINANT,
                   std::nullopt};
      if (auto h = handled.find({id, f.getIndex()}); h != handled.end()) fi.handled = h->second;
      info.fields.emplace(f.getProto().getName(), fi);
    }
    known.push_back(std::move(info));
    for (auto f : s.getFields()) Learn(f.getType());
  }

  const StructInfo& InfoOf(capnp::StructSchema s) const { return Known(structs, s); }
  const EnumInfo& InfoOf(capnp::EnumSchema e) const { return Known(enums, e); }
  template <typename Info, typename Schema>
  static const Info& Known(const std::unordered_map<uint, std::vector<Info>>& table, Schema s) {
    if (auto it = table.find(s.hashCode()); it != table.end()) {
      for (const Info& i : it->second) {
        if (i.schema == s) return i;
      }
    }
    KJ_FAIL_ASSERT("a type that Event and ExportRecord do not reach",
                   s.getProto().getDisplayName());
  }

  explicit Impl(Fields fields) {
    codec.setRejectUnknownFields(true);
    if (fields == Fields::kNonDefault) codec.setHasMode(capnp::HasMode::NON_DEFAULT);
    codec.handleByAnnotation<ExportRecord>();  // and so Event's, which it holds
    auto event = capnp::Schema::from<Event>();
    Handle(FieldOf(event, "occurredAt"), timestamps, Handled::kTimestamp);
    Handle(FieldOf(event, "recordedAt"), timestamps, Handled::kTimestamp);
    Handle(FieldOf(event, "position"), numbers, Handled::kNumber);
    Handle(FieldOf(event, "streamVersion"), numbers, Handled::kNumber);
    for (const char* f : {"id", "correlationId", "causationId"}) {
      Handle(FieldOf(event, f), hex, Handled::kHex);
    }
    auto tp = capnp::Schema::from<Touchpoint>();
    Handle(FieldOf(tp, "audienceSize"), numbers, Handled::kNumber);
    Handle(FieldOf(tp, "sentiment"), sentiment, Handled::kSentiment);
    Handle(FieldOf(tp, "inReplyTo"), hex, Handled::kHex);
    Handle(FieldOf(tp, "corrects"), hex, Handled::kHex);
    Learn(capnp::Schema::from<ExportRecord>());  // and Event, which it holds
  }

  template <typename T>
  void Handle(capnp::StructSchema::Field field, capnp::JsonCodec::Handler<T>& handler,
              Handled kind) {
    codec.addFieldHandler(field, handler);
    handled.emplace(
        std::make_pair(field.getContainingStruct().getProto().getId(), field.getIndex()), kind);
  }

  // What the codec lets through and must not: two members of one union (the codec keeps the
  // last and drops the other without a word), an enum given as a number that is not a whole
  // number naming an enumerant (1.5 was taken as 1), an integer field given a fraction or a value
  // out of its range. Returns the problem, naming the field by its path; "" when there is none.
  // Clears `*direct` where the value is one Write does not decode itself (the codec does).
  std::string Check(const Dom& j, capnp::Type type, const std::string& path, bool* direct) const {
    switch (type.which()) {
      case capnp::schema::Type::STRUCT:
        if (!j.is_object()) *direct = false;
        return j.is_object() ? CheckStruct(j, type.asStruct(), path, direct) : "";
      case capnp::schema::Type::LIST: {
        const capnp::Type element = type.asList().getElementType();
        if (!j.is_array() || (!element.isText() && !element.isStruct())) *direct = false;
        if (!j.is_array()) return "";
        for (size_t i = 0; i < j.size(); ++i) {
          std::string p = Check(j[i], element, absl::StrCat(path, "[", i, "]"), direct);
          if (!p.empty()) return p;
        }
        return "";
      }
      case capnp::schema::Type::TEXT:
        if (!j.is_string()) *direct = false;
        return "";
      case capnp::schema::Type::BOOL:
        if (!j.is_boolean()) *direct = false;
        return "";
      case capnp::schema::Type::FLOAT32:
      case capnp::schema::Type::FLOAT64:
        if (!j.is_number()) *direct = false;
        return "";
      case capnp::schema::Type::ENUM: {
        const EnumInfo& info = InfoOf(type.asEnum());
        auto enumerants = info.schema.getEnumerants();
        if (!j.is_string()) *direct = false;
        if (j.is_string()) {  // a name: one of the schema's, named with the field and the list
          if (info.enumerants.contains(j.get_ref<const std::string&>())) return "";
        } else if (j.is_number()) {
          const double v = j.get<double>();
          if (v == std::floor(v) && v >= 0 && v < enumerants.size()) return "";
        } else {
          return "";  // the codec says what it expected
        }
        std::vector<std::string> names;
        for (auto e : enumerants) names.push_back(e.getProto().getName());
        return absl::StrCat(path, ": ", j.dump(), " is not one of ", absl::StrJoin(names, ", "));
      }
      default: {
        *direct = false;  // integers, data and the rest: the codec decodes them
        double lo = 0, hi = 0;
        if (!j.is_number() || !IntegerRange(type.which(), &lo, &hi)) return "";
        const double v = j.get<double>();
        if (v == std::floor(v) && v >= lo && v <= hi) return "";
        return absl::StrCat(path, ": ", j.dump(), " is not an integer in [", lo, ", ", hi, "]");
      }
    }
  }

  // Parses `json` strictly and decodes it into `out`; the error names what is wrong. `direct`:
  // whether values Write can decode are decoded by it, not by the codec; `*wrote`, if given, is
  // set to whether Write did.
  absl::Status Decode(absl::string_view json, capnp::DynamicStruct::Builder out,
                      absl::string_view what, bool direct = true, bool* wrote = nullptr) const {
    if (json.empty()) return absl::InvalidArgumentError("empty JSON input");
    auto malformed = [&](absl::string_view why) {
      // The parser quotes what it read last, which may be the bytes that are not UTF-8.
      const bool utf8 = FindInvalidUtf8(why) == absl::string_view::npos;
      return absl::InvalidArgumentError(
          absl::StrCat("malformed ", what, " JSON: ", utf8 ? why : absl::CHexEscape(why)));
    };
    // nlohmann's lexer takes a NUL byte for the end of the input, and would ignore what follows;
    // JSON text has no place for one (inside a string it must be escaped).
    if (const size_t nul = json.find('\0'); nul != absl::string_view::npos) {
      return malformed(absl::StrCat("a NUL byte at offset ", nul));
    }
    StrictDomBuilder dom;
    if (!Dom::sax_parse(json.begin(), json.end(), &dom, nlohmann::detail::input_format_t::json,
                        /*strict=*/true)) {
      return malformed(dom.error().empty() ? "not JSON" : dom.error());
    }
    if (!dom.root().is_object()) return malformed("expected an object");
    std::string problem = Check(dom.root(), out.getSchema(), "", &direct);
    if (!problem.empty()) return malformed(problem);
    if (!direct) return CodecDecode(dom.root(), out, malformed);
    // The common case: every value is one Write decodes itself, in one walk, without the
    // codec's JsonValue copy and its lookups (40% of the time of decoding). It fails only on a
    // value a handler refuses (an id that is not hex, a time that is not RFC 3339); the codec,
    // decoding into a scratch message, then names the problem in its own words.
    bool written = false;
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { written = WriteStruct(dom.root(), out); })) {
      written = false;
    }
    if (written) {
      if (wrote != nullptr) *wrote = true;
      return absl::OkStatus();
    }
    capnp::MallocMessageBuilder scratch;
    absl::Status s =
        CodecDecode(dom.root(), scratch.initRoot<capnp::DynamicStruct>(out.getSchema()), malformed);
    if (s.ok()) {
      return absl::InternalError(
          absl::StrCat("the ", what, " JSON decoders disagree (a bug of ihs; the codec took it)"));
    }
    return s;
  }

  template <typename Malformed>
  absl::Status CodecDecode(const Dom& root, capnp::DynamicStruct::Builder out,
                           const Malformed& malformed) const {
    capnp::MallocMessageBuilder value_message;
    auto value = value_message.initRoot<capnp::JsonValue>();
    ToJsonValue(root, value);
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { codec.decode(value.asReader(), out); })) {
      return malformed(e->getDescription().cStr());
    }
    return absl::OkStatus();
  }

  // Whether Write decodes a handled field's value itself: the shapes the handler takes that are
  // not errors (a time as text, an unsigned number, a sentiment or null, an id as text).
  static bool DirectHandled(Handled kind, const Dom& j) {
    switch (kind) {
      case Handled::kTimestamp:
      case Handled::kHex:
        return j.is_string();
      case Handled::kNumber:
        return j.is_number();
      case Handled::kSentiment:
        return j.is_number() || j.is_null();
    }
    return false;
  }

  // Decodes a checked object (Check found every member a field, and cleared nothing) into `out`,
  // as the codec with the handlers above would. False on a value a handler refuses.
  bool WriteStruct(const Dom& j, capnp::DynamicStruct::Builder out) const {
    const StructInfo& info = InfoOf(out.getSchema());
    for (const auto& [name, value] : j.items()) {
      const FieldInfo& f = info.fields.at(name);  // Check found every member a field
      const capnp::StructSchema::Field field = f.field;
      if (f.handled) {
        if (!WriteHandled(*f.handled, value, field, out)) return false;
        continue;
      }
      const capnp::Type type = f.type;
      switch (type.which()) {
        case capnp::schema::Type::STRUCT:
          if (!WriteStruct(value, out.init(field).as<capnp::DynamicStruct>())) return false;
          break;
        case capnp::schema::Type::LIST: {
          auto list = out.init(field, static_cast<uint>(value.size())).as<capnp::DynamicList>();
          for (size_t i = 0; i < value.size(); ++i) {
            if (type.asList().getElementType().isText()) {
              const std::string& s = value[i].get_ref<const std::string&>();
              list.set(static_cast<uint>(i), capnp::Text::Reader(s.data(), s.size()));
            } else if (!WriteStruct(value[i],
                                    list[static_cast<uint>(i)].as<capnp::DynamicStruct>())) {
              return false;
            }
          }
          break;
        }
        case capnp::schema::Type::TEXT: {
          const std::string& s = value.get_ref<const std::string&>();
          out.set(field, capnp::Text::Reader(s.data(), s.size()));
          break;
        }
        case capnp::schema::Type::BOOL:
          out.set(field, value.get<bool>());
          break;
        case capnp::schema::Type::FLOAT32:
        case capnp::schema::Type::FLOAT64:
          out.set(field, value.get<double>());
          break;
        case capnp::schema::Type::ENUM: {
          const EnumInfo& e = InfoOf(type.asEnum());
          auto it = e.enumerants.find(value.get_ref<const std::string&>());
          if (it == e.enumerants.end()) return false;  // not reached: Check named the problem
          out.set(field, capnp::DynamicEnum(it->second));
          break;
        }
        default:
          return false;  // not reached: Check cleared `direct`
      }
    }
    return true;
  }

  static bool WriteHandled(Handled kind, const Dom& j, capnp::StructSchema::Field field,
                           capnp::DynamicStruct::Builder out) {
    switch (kind) {
      case Handled::kTimestamp: {
        int64_t micros = 0;
        std::string err;
        if (!TimestampFromText(j.get_ref<const std::string&>(), &micros, &err)) return false;
        out.set(field, micros);
        return true;
      }
      case Handled::kNumber: {
        uint64_t v = 0;
        if (!UInt64FromNumber(j.get<double>(), &v)) return false;
        out.set(field, v);
        return true;
      }
      case Handled::kSentiment:
        out.set(field, j.is_null() ? std::numeric_limits<float>::quiet_NaN()
                                   : static_cast<float>(j.get<double>()));
        return true;
      case Handled::kHex: {
        std::string bytes;
        if (!IdFromHex(j.get_ref<const std::string&>(), &bytes)) return false;
        out.set(field,
                capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
        return true;
      }
    }
    return false;
  }

  std::string CheckStruct(const Dom& j, capnp::StructSchema schema, const std::string& path,
                          bool* direct) const {
    const StructInfo& info = InfoOf(schema);
    std::string union_member;
    for (const auto& [name, value] : j.items()) {
      auto it = info.fields.find(name);
      if (it == info.fields.end()) return UnknownField(schema, path, name);
      const FieldInfo& field = it->second;
      if (field.in_union) {
        if (!union_member.empty()) {
          return absl::StrCat(path.empty() ? "" : absl::StrCat(path, ": "), "\"", union_member,
                              "\" and \"", name, "\" are both given; they are one union: give one");
        }
        union_member = name;
      }
      if (field.handled) {
        if (!DirectHandled(*field.handled, value)) *direct = false;
        continue;
      }
      std::string p =
          Check(value, field.type, path.empty() ? name : absl::StrCat(path, ".", name), direct);
      if (!p.empty()) return p;
    }
    return "";
  }

  // A name the struct has no field for: the fields it has, and where that name is a field one
  // level down ("sentiment" is touchpoint.sentiment).
  static std::string UnknownField(capnp::StructSchema schema, const std::string& path,
                                  const std::string& name) {
    std::vector<std::string> names, below;
    for (auto f : schema.getFields()) {
      const std::string field = f.getProto().getName();
      names.push_back(field);
      if (f.getType().isStruct()) {
        KJ_IF_MAYBE (inner, f.getType().asStruct().findFieldByName(name)) {
          (void)inner;
          below.push_back(
              absl::StrCat(path.empty() ? "" : absl::StrCat(path, "."), field, ".", name));
        }
      }
    }
    std::string out =
        absl::StrCat(path.empty() ? "" : absl::StrCat(path, ": "), "unknown field \"", name, "\"");
    if (!below.empty())
      absl::StrAppend(&out, " here (did you mean ", absl::StrJoin(below, " or "), "?)");
    absl::StrAppend(&out, "; the fields here are ", absl::StrJoin(names, ", "));
    return out;
  }
};

EventJson::EventJson(Fields fields) : impl_(std::make_unique<Impl>(fields)) {}
EventJson::~EventJson() = default;

namespace {

// A JsonValue as nlohmann's Dom, for printing. Numbers that are whole and within ±2^53 print as
// integers ("1234", not "1234.0"); NaN and infinities, which JSON has no form for, print as null.
Dom FromJsonValue(capnp::JsonValue::Reader v) {
  switch (v.which()) {
    case capnp::JsonValue::BOOLEAN:
      return v.getBoolean();
    case capnp::JsonValue::NUMBER: {
      const double d = v.getNumber();
      if (!std::isfinite(d)) return nullptr;
      if (d == std::floor(d) && std::fabs(d) <= 9007199254740992.0) {
        return static_cast<int64_t>(d);
      }
      return d;
    }
    case capnp::JsonValue::STRING: {
      auto s = v.getString();
      return std::string(s.cStr(), s.size());
    }
    case capnp::JsonValue::ARRAY: {
      Dom out = Dom::array();
      for (auto e : v.getArray()) out.push_back(FromJsonValue(e));
      return out;
    }
    case capnp::JsonValue::OBJECT: {
      Dom out = Dom::object();
      for (auto f : v.getObject()) {
        out[std::string(f.getName().cStr(), f.getName().size())] = FromJsonValue(f.getValue());
      }
      return out;
    }
    default:
      return nullptr;  // null, and the codec's CALL, which no handler here makes
  }
}

// Through the codec to a JsonValue, then printed by nlohmann: Cap'n Proto 0.9.2's own printer
// copies text bytes as they are (invalid UTF-8 stays invalid) and prints NaN as `nan`. Bytes that
// are not UTF-8 (only stores written before ihs checked text on input can hold them) print as
// U+FFFD, so every line is valid JSON.
template <typename Reader>
std::string EncodeWith(const capnp::JsonCodec& codec, Reader reader) {
  capnp::MallocMessageBuilder mb;
  auto value = mb.initRoot<capnp::JsonValue>();
  codec.encode(reader, value);
  return FromJsonValue(value.asReader()).dump(-1, ' ', false, Dom::error_handler_t::replace);
}

}  // namespace

absl::Status EventJson::Decode(absl::string_view json, Event::Builder out) const {
  return impl_->Decode(json, capnp::toDynamic(out), "event");
}

bool EventJson::DecodesDirectly(absl::string_view json) const {
  capnp::MallocMessageBuilder scratch;
  bool wrote = false;
  return impl_->Decode(json, capnp::toDynamic(scratch.initRoot<Event>()), "event", true, &wrote)
             .ok() &&
         wrote;
}

absl::Status EventJson::DecodeThroughCodec(absl::string_view json, Event::Builder out) const {
  return impl_->Decode(json, capnp::toDynamic(out), "event", /*direct=*/false);
}

std::string EventJson::Encode(Event::Reader event) const { return EncodeWith(impl_->codec, event); }

absl::Status EventJson::Decode(absl::string_view json, ExportRecord::Builder out) const {
  return impl_->Decode(json, capnp::toDynamic(out), "export record");
}

std::string EventJson::Encode(ExportRecord::Reader record) const {
  return EncodeWith(impl_->codec, record);
}

std::string JsonQuote(absl::string_view text) {
  return Dom(std::string(text)).dump(-1, ' ', false, Dom::error_handler_t::replace);
}

std::string FormatMicros(int64_t micros) {
  return absl::FormatTime(kRfc3339, absl::FromUnixMicros(micros), absl::UTCTimeZone());
}

}  // namespace ihs::schema
