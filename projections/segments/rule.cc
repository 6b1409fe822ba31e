#include "projections/segments/rule.h"

#include <capnp/schema.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "schema/event.capnp.h"
#include "schema/json.h"

namespace ihs::projections::segments {
namespace {

struct Token {
  enum Kind { kWord, kString, kPunct, kCmp, kEnd };
  Kind kind = kEnd;
  std::string text;
  size_t column = 0;  // from 1
};

bool WordChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' ||
         c == '-';
}

absl::Status Bad(size_t column, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("rule: at ", column, ": ", what));
}

absl::StatusOr<std::vector<Token>> Tokens(absl::string_view text) {
  std::vector<Token> out;
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    Token t;
    t.column = i + 1;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    if (WordChar(c)) {
      size_t j = i;
      while (j < text.size() && WordChar(text[j])) ++j;
      t.kind = Token::kWord;
      t.text = std::string(text.substr(i, j - i));
      i = j;
    } else if (c == '"') {
      t.kind = Token::kString;
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size()) ++j;
        t.text.push_back(text[j]);
      }
      if (j >= text.size()) return Bad(i + 1, "a quoted value has no closing quote");
      i = j + 1;
    } else if (c == '(' || c == ')' || c == '[' || c == ']' || c == ',' || c == '%') {
      t.kind = Token::kPunct;
      t.text = std::string(1, c);
      ++i;
    } else if (c == '>' || c == '<' || c == '=' || c == '!') {
      t.kind = Token::kCmp;
      const bool two = i + 1 < text.size() && text[i + 1] == '=' && c != '=';
      t.text = std::string(text.substr(i, two ? 2 : 1));
      if (t.text == "!") return Bad(i + 1, "expected \"!=\"");
      i += two ? 2 : 1;
    } else {
      return Bad(i + 1, absl::StrCat("unexpected character \"", text.substr(i, 1), "\""));
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.column = text.size() + 1;
  out.push_back(end);
  return out;
}

const char* CmpText(Cmp c) {
  switch (c) {
    case Cmp::kGe:
      return ">=";
    case Cmp::kGt:
      return ">";
    case Cmp::kLe:
      return "<=";
    case Cmp::kLt:
      return "<";
    case Cmp::kEq:
      return "=";
    case Cmp::kNe:
      return "!=";
  }
  return "?";
}

const char* FieldText(Field f) {
  switch (f) {
    case Field::kChannel:
      return "channel";
    case Field::kDirection:
      return "direction";
    case Field::kType:
      return "type";
    case Field::kTopic:
      return "topic";
    case Field::kCampaign:
      return "campaign";
    case Field::kSource:
      return "source";
  }
  return "?";
}

// The schema's names of an enum, without "unspecified".
template <typename E>
std::vector<std::string> EnumNames() {
  std::vector<std::string> out;
  for (auto e : capnp::Schema::from<E>().getEnumerants()) {
    if (e.getOrdinal() != 0) out.emplace_back(e.getProto().getName().cStr());
  }
  return out;
}

// The allowed values of an enum field, or empty for a text field.
std::vector<std::string> AllowedValues(Field f) {
  switch (f) {
    case Field::kChannel:
      return EnumNames<schema::Channel>();
    case Field::kDirection:
      return EnumNames<schema::Direction>();
    case Field::kType:
      return EnumNames<schema::TouchpointType>();
    default:
      return {};
  }
}

// A value as the rule text writes it: a word, or quoted when it is not one.
std::string Quote(const std::string& v) {
  const bool word = !v.empty() && std::all_of(v.begin(), v.end(), WordChar);
  if (word) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string FormatList(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  for (const std::string& v : values) quoted.push_back(Quote(v));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

// The shortest text that reads back as `n` exactly.
std::string FormatNumber(double n) {
  if (n == std::floor(n) && std::fabs(n) < 1e15) return absl::StrCat(static_cast<int64_t>(n));
  for (int precision = 1; precision < 17; ++precision) {
    std::string s = absl::StrFormat("%.*g", precision, n);
    double back = 0;
    if (absl::SimpleAtod(s, &back) && back == n) return s;
  }
  return absl::StrFormat("%.17g", n);
}

std::string FormatDuration(int64_t seconds) {
  if (seconds % (7 * 86400) == 0) return absl::StrCat(seconds / (7 * 86400), "w");
  if (seconds % 86400 == 0) return absl::StrCat(seconds / 86400, "d");
  if (seconds % 3600 == 0) return absl::StrCat(seconds / 3600, "h");
  if (seconds % 60 == 0) return absl::StrCat(seconds / 60, "m");
  return absl::StrCat(seconds, "s");
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  absl::StatusOr<Rule> Whole() {
    IHS_ASSIGN_OR_RETURN(Rule r, Or());
    if (Peek().kind != Token::kEnd) {
      return Expected("\"and\", \"or\" or the end of the rule");
    }
    return r;
  }

 private:
  const Token& Peek() const { return t_[i_]; }
  const Token& Next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
  bool IsWord(absl::string_view w) const { return Peek().kind == Token::kWord && Peek().text == w; }
  bool IsPunct(char c) const { return Peek().kind == Token::kPunct && Peek().text[0] == c; }
  bool Accept(absl::string_view word) {
    if (!IsWord(word)) return false;
    Next();
    return true;
  }
  bool AcceptPunct(char c) {
    if (!IsPunct(c)) return false;
    Next();
    return true;
  }
  std::string Found() const {
    return Peek().kind == Token::kEnd ? "the end of the rule"
                                      : absl::StrCat("\"", Peek().text, "\"");
  }
  absl::Status Expected(absl::string_view what) const {
    return Bad(Peek().column, absl::StrCat("expected ", what, ", found ", Found()));
  }
  absl::Status ExpectPunct(char c, absl::string_view where) {
    if (AcceptPunct(c)) return absl::OkStatus();
    return Expected(absl::StrCat("\"", std::string(1, c), "\" ", where));
  }
  absl::Status Deeper() {
    if (++depth_ > kMaxRuleDepth) {
      return Bad(Peek().column, absl::StrCat("the rule nests deeper than ", kMaxRuleDepth));
    }
    return absl::OkStatus();
  }

  // --- the rule ---

  // `sub { word sub }`: the one node, or a node of `op` over them all.
  template <typename Node, typename Sub>
  absl::StatusOr<Node> Joined(absl::string_view word, typename Node::Op op, Sub sub) {
    IHS_ASSIGN_OR_RETURN(Node first, sub());
    if (!IsWord(word)) return first;
    Node n;
    n.op = op;
    n.children.push_back(std::move(first));
    while (Accept(word)) {
      IHS_ASSIGN_OR_RETURN(Node next, sub());
      n.children.push_back(std::move(next));
    }
    return n;
  }

  absl::StatusOr<Rule> Or() {
    return Joined<Rule>("or", Rule::Op::kOr, [this] { return And(); });
  }
  absl::StatusOr<Rule> And() {
    return Joined<Rule>("and", Rule::Op::kAnd, [this] { return Not(); });
  }

  absl::StatusOr<Rule> Not() {
    IHS_RETURN_IF_ERROR(Deeper());
    absl::StatusOr<Rule> out;
    if (Accept("not")) {
      IHS_ASSIGN_OR_RETURN(Rule inner, Not());
      Rule r;
      r.op = Rule::Op::kNot;
      r.children.push_back(std::move(inner));
      out = std::move(r);
    } else if (AcceptPunct('(')) {
      out = Or();
      if (out.ok()) {
        if (absl::Status s = ExpectPunct(')', "to close \"(\""); !s.ok()) out = s;
      }
    } else {
      IHS_ASSIGN_OR_RETURN(Condition c, ParseCondition());
      Rule r;
      r.condition = std::move(c);
      out = std::move(r);
    }
    --depth_;
    return out;
  }

  absl::StatusOr<Condition> ParseCondition() {
    Condition c;
    if (Peek().kind != Token::kWord) {
      return Expected(
          "a condition (count, sum, any, none, unanswered, kind, cohort, consent, segment, "
          "community), \"not\" or \"(\"");
    }
    const std::string word = Peek().text;
    if (word == "count" || word == "any" || word == "none") {
      Next();
      c.kind = word == "count" ? Condition::Kind::kCount
               : word == "any" ? Condition::Kind::kAny
                               : Condition::Kind::kNone;
      IHS_RETURN_IF_ERROR(ExpectPunct('(', absl::StrCat("after ", word)));
      IHS_RETURN_IF_ERROR(FilterAndWindow(c));
      if (c.kind == Condition::Kind::kCount) {
        IHS_ASSIGN_OR_RETURN(c.cmp, ParseCmp());
        IHS_ASSIGN_OR_RETURN(c.number, Number("a whole number of touchpoints", true));
      }
      return c;
    }
    if (word == "sum") {
      Next();
      c.kind = Condition::Kind::kSum;
      IHS_RETURN_IF_ERROR(ExpectPunct('(', "after sum"));
      if (Accept("sentiment")) {
        c.sum = Condition::Sum::kSentiment;
      } else if (Accept("audience")) {
        c.sum = Condition::Sum::kAudience;
      } else {
        return Expected("what to sum: sentiment or audience");
      }
      if (AcceptPunct(')')) {
        // the sum of every touchpoint
      } else {
        IHS_RETURN_IF_ERROR(ExpectPunct(',', "or \")\" after what to sum"));
        IHS_RETURN_IF_ERROR(FilterAndWindow(c));
      }
      IHS_ASSIGN_OR_RETURN(c.cmp, ParseCmp());
      IHS_ASSIGN_OR_RETURN(c.number, Number("a number", false));
      return c;
    }
    if (word == "unanswered") {
      Next();
      c.kind = Condition::Kind::kUnanswered;
      IHS_RETURN_IF_ERROR(ExpectPunct('(', "after unanswered"));
      if (!IsWord("over") && !IsPunct(')')) {
        IHS_ASSIGN_OR_RETURN(c.filter, ParseFilter());
        if (!IsPunct(')')) IHS_RETURN_IF_ERROR(ExpectPunct(',', "or \")\" after the filter"));
      }
      if (Accept("over")) {
        IHS_RETURN_IF_ERROR(Duration(c.over_seconds, &c.service_hours));
      }
      IHS_RETURN_IF_ERROR(ExpectPunct(')', "to close unanswered("));
      return c;
    }
    if (word == "kind" || word == "cohort") {
      Next();
      c.kind = word == "kind" ? Condition::Kind::kKind : Condition::Kind::kCohort;
      const std::vector<std::string> allowed =
          word == "kind" ? EnumNames<schema::PartyKind>() : std::vector<std::string>{};
      IHS_RETURN_IF_ERROR(Membership(word, allowed, c.negate, c.values));
      return c;
    }
    if (word == "consent") {
      Next();
      c.kind = Condition::Kind::kConsent;
      IHS_RETURN_IF_ERROR(ExpectPunct('(', "after consent"));
      IHS_ASSIGN_OR_RETURN(std::string channel, Value("channel", EnumNames<schema::Channel>()));
      c.values.push_back(std::move(channel));
      IHS_RETURN_IF_ERROR(ExpectPunct(')', "after the channel"));
      return c;
    }
    if (word == "segment") {
      Next();
      c.kind = Condition::Kind::kSegment;
      IHS_RETURN_IF_ERROR(ExpectPunct('(', "after segment"));
      if (Peek().kind != Token::kWord || !ValidSegmentName(Peek().text)) {
        return Expected("a segment's name ([a-z0-9_]{1,64})");
      }
      c.values.push_back(Next().text);
      IHS_RETURN_IF_ERROR(ExpectPunct(')', "after the segment's name"));
      return c;
    }
    if (word == "community") {
      Next();
      c.kind = Condition::Kind::kCommunity;
      IHS_ASSIGN_OR_RETURN(std::string measure,
                           Value("community figure", {"reach", "standing", "value", "risk"}));
      c.values.push_back(std::move(measure));
      if (Accept("in")) {
        if (!Accept("top")) return Expected("\"top\" after \"in\"");
        const Token& t = Peek();
        IHS_ASSIGN_OR_RETURN(c.number, Number("a percentage", false));
        if (!(c.number > 0 && c.number <= 100)) {
          return Bad(t.column, absl::StrCat("the percentage ", t.text,
                                            " is out of range: more than 0 and at most 100"));
        }
        IHS_RETURN_IF_ERROR(ExpectPunct('%', "after the percentage"));
        c.top = true;
        return c;
      }
      // Only "over": the appender publishes who is inside (docs/segments.md "Community").
      if (Peek().kind != Token::kCmp || (Peek().text != ">" && Peek().text != ">=")) {
        return Expected("\"in top N%\", \">\" or \">=\" after the community figure");
      }
      IHS_ASSIGN_OR_RETURN(c.cmp, ParseCmp());
      const Token& t = Peek();
      IHS_ASSIGN_OR_RETURN(c.number, Number("a number", false));
      if (c.number < 0) return Bad(t.column, "a community figure is never below 0");
      return c;
    }
    return Bad(Peek().column,
               absl::StrCat("unknown condition \"", word,
                            "\": expected count, sum, any, none, unanswered, kind, cohort, "
                            "consent, segment or community"));
  }

  // "[filter] [, window] )" of count, sum, any, none.
  absl::Status FilterAndWindow(Condition& c) {
    if (!IsWord("last") && !IsPunct(')')) {
      IHS_ASSIGN_OR_RETURN(c.filter, ParseFilter());
      if (!IsPunct(')')) IHS_RETURN_IF_ERROR(ExpectPunct(',', "or \")\" after the filter"));
    }
    if (Accept("last")) {
      IHS_RETURN_IF_ERROR(Duration(c.window.seconds, nullptr));
    }
    return ExpectPunct(')', "to close the condition");
  }

  // INT unit, or (when `service` is given) INT "service" "hours".
  absl::Status Duration(int64_t& seconds, bool* service) {
    const Token& t = Peek();
    if (t.kind != Token::kWord) return Expected("a duration such as 30d, 48h or 90m");
    std::string digits = t.text;
    int64_t n = 0;
    if (service != nullptr && absl::SimpleAtoi(digits, &n) && n > 0) {
      Next();
      if (!Accept("service") || !Accept("hours")) {
        return Expected("\"service hours\" after a bare number");
      }
      *service = true;
      if (n > kMaxWindowSeconds / 3600) {
        return Bad(t.column, absl::StrCat(n, " service hours is out of range: at most 10 years"));
      }
      seconds = n * 3600;
    } else {
      const char unit = digits.empty() ? '?' : digits.back();
      digits.pop_back();
      const int64_t scale = unit == 's'   ? 1
                            : unit == 'm' ? 60
                            : unit == 'h' ? 3600
                            : unit == 'd' ? 86400
                            : unit == 'w' ? 7 * 86400
                                          : 0;
      if (scale == 0 || !absl::SimpleAtoi(digits, &n)) {
        return Expected("a duration such as 30d, 48h or 90m (s, m, h, d, w)");
      }
      if (n <= 0 || n > kMaxWindowSeconds / scale) {
        return Bad(t.column, absl::StrCat("the duration ", t.text,
                                          " is out of range: give more than 0 and at most 10 "
                                          "years"));
      }
      Next();
      seconds = n * scale;
    }
    if (seconds > kMaxWindowSeconds) {
      return Bad(t.column, "the duration is out of range: at most 10 years");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Cmp> ParseCmp() {
    if (Peek().kind != Token::kCmp) return Expected("a comparison (>=, >, <=, <, =, !=)");
    const std::string op = Next().text;
    if (op == ">=") return Cmp::kGe;
    if (op == ">") return Cmp::kGt;
    if (op == "<=") return Cmp::kLe;
    if (op == "<") return Cmp::kLt;
    if (op == "=") return Cmp::kEq;
    return Cmp::kNe;
  }

  absl::StatusOr<double> Number(absl::string_view what, bool whole) {
    const Token& t = Peek();
    double d = 0;
    int64_t n = 0;
    const bool ok = whole ? absl::SimpleAtoi(t.text, &n) && n >= 0 && n <= 1'000'000'000
                          : absl::SimpleAtod(t.text, &d) && std::isfinite(d);
    if (t.kind != Token::kWord || !ok) return Expected(what);
    Next();
    return whole ? static_cast<double>(n) : d;
  }

  // A value of `what`: one of `allowed` when that is not empty.
  absl::StatusOr<std::string> Value(absl::string_view what,
                                    const std::vector<std::string>& allowed) {
    const Token& t = Peek();
    if (t.kind != Token::kWord && t.kind != Token::kString) {
      return Expected(absl::StrCat("a ", what));
    }
    if (t.text.empty()) return Bad(t.column, absl::StrCat("a ", what, " is empty"));
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), t.text) == allowed.end()) {
      return Bad(t.column, absl::StrCat("unknown ", what, " \"", t.text, "\": expected one of ",
                                        absl::StrJoin(allowed, ", ")));
    }
    return Next().text;
  }

  // ("=" | "!=") VALUE, or ["not"] "in" list, of `what`.
  absl::Status Membership(absl::string_view what, const std::vector<std::string>& allowed,
                          bool& negate, std::vector<std::string>& values) {
    if (Peek().kind == Token::kCmp && (Peek().text == "=" || Peek().text == "!=")) {
      negate = Next().text == "!=";
      IHS_ASSIGN_OR_RETURN(std::string v, Value(what, allowed));
      values.push_back(std::move(v));
      return absl::OkStatus();
    }
    negate = Accept("not");
    if (!Accept("in")) return Expected(absl::StrCat("=, != or in after ", what));
    IHS_RETURN_IF_ERROR(ExpectPunct('[', "to open the list"));
    do {
      IHS_ASSIGN_OR_RETURN(std::string v, Value(what, allowed));
      values.push_back(std::move(v));
    } while (AcceptPunct(','));
    IHS_RETURN_IF_ERROR(ExpectPunct(']', "or \",\" in the list"));
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return absl::OkStatus();
  }

  // --- filters ---

  absl::StatusOr<Filter> ParseFilter() {
    return Joined<Filter>("or", Filter::Op::kOr, [this] { return FilterAnd(); });
  }
  absl::StatusOr<Filter> FilterAnd() {
    return Joined<Filter>("and", Filter::Op::kAnd, [this] { return FilterNot(); });
  }

  absl::StatusOr<Filter> FilterNot() {
    IHS_RETURN_IF_ERROR(Deeper());
    absl::StatusOr<Filter> out = FilterAtom();
    --depth_;
    return out;
  }

  absl::StatusOr<Filter> FilterAtom() {
    Filter f;
    if (Accept("not")) {
      IHS_ASSIGN_OR_RETURN(Filter inner, FilterNot());
      f.op = Filter::Op::kNot;
      f.children.push_back(std::move(inner));
      return f;
    }
    if (AcceptPunct('(')) {
      IHS_ASSIGN_OR_RETURN(f, ParseFilter());
      IHS_RETURN_IF_ERROR(ExpectPunct(')', "to close \"(\""));
      return f;
    }
    if (Accept("original")) {
      f.op = Filter::Op::kOriginal;
      return f;
    }
    if (Accept("sentiment")) {
      f.op = Filter::Op::kSentiment;
      IHS_ASSIGN_OR_RETURN(f.cmp, ParseCmp());
      IHS_ASSIGN_OR_RETURN(f.number, Number("a sentiment from -1 to 1", false));
      return f;
    }
    static const std::pair<const char*, Field> kFields[] = {
        {"channel", Field::kChannel}, {"direction", Field::kDirection}, {"type", Field::kType},
        {"topic", Field::kTopic},     {"campaign", Field::kCampaign},   {"source", Field::kSource}};
    for (const auto& [name, field] : kFields) {
      if (!IsWord(name)) continue;
      Next();
      f.op = Filter::Op::kIn;
      f.field = field;
      bool negate = false;
      IHS_RETURN_IF_ERROR(Membership(name, AllowedValues(field), negate, f.values));
      if (!negate) return f;
      Filter n;
      n.op = Filter::Op::kNot;
      n.children.push_back(std::move(f));
      return n;
    }
    return Expected(
        "a touchpoint field (channel, direction, type, topic, campaign, source, sentiment), "
        "\"original\", \"not\" or \"(\"");
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
};

void CollectSegments(const Rule& r, std::vector<std::string>& out) {
  if (r.op == Rule::Op::kCondition) {
    if (r.condition.kind == Condition::Kind::kSegment) out.push_back(r.condition.values[0]);
    return;
  }
  for (const Rule& c : r.children) CollectSegments(c, out);
}

// The children of an `and` or `or`, joined; an `or` inside an `and` in parentheses.
template <typename Node>
std::string FormatJoined(const Node& n) {
  const bool is_and = n.op == Node::Op::kAnd;
  std::vector<std::string> parts;
  for (const Node& c : n.children) {
    const bool parens = is_and && c.op == Node::Op::kOr;
    parts.push_back(parens ? absl::StrCat("(", Format(c), ")") : Format(c));
  }
  return absl::StrJoin(parts, is_and ? " and " : " or ");
}

}  // namespace

absl::StatusOr<Rule> ParseRule(absl::string_view text) {
  if (text.size() > kMaxRuleBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("rule: ", text.size(), " bytes is longer than the limit of ", kMaxRuleBytes));
  }
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("rule: the rule is empty");
  }
  IHS_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokens(text));
  return Parser(std::move(tokens)).Whole();
}

std::string Format(const Filter& f) {
  switch (f.op) {
    case Filter::Op::kAll:
      return "";
    case Filter::Op::kAnd:
    case Filter::Op::kOr:
      return FormatJoined(f);
    case Filter::Op::kNot: {
      const Filter& c = f.children[0];
      if (c.op == Filter::Op::kIn) {
        if (c.values.size() == 1) {
          return absl::StrCat(FieldText(c.field), " != ", Quote(c.values[0]));
        }
        return absl::StrCat(FieldText(c.field), " not in ", FormatList(c.values));
      }
      const bool parens = c.op == Filter::Op::kAnd || c.op == Filter::Op::kOr;
      return absl::StrCat("not ", parens ? absl::StrCat("(", Format(c), ")") : Format(c));
    }
    case Filter::Op::kIn:
      if (f.values.size() == 1) return absl::StrCat(FieldText(f.field), " = ", Quote(f.values[0]));
      return absl::StrCat(FieldText(f.field), " in ", FormatList(f.values));
    case Filter::Op::kSentiment:
      return absl::StrCat("sentiment ", CmpText(f.cmp), " ", FormatNumber(f.number));
    case Filter::Op::kOriginal:
      return "original";
  }
  return "";
}

std::string Format(const Condition& c) {
  auto filter_and_window = [&c] {
    std::vector<std::string> args;
    if (c.filter.op != Filter::Op::kAll) args.push_back(Format(c.filter));
    if (c.window.seconds > 0)
      args.push_back(absl::StrCat("last ", FormatDuration(c.window.seconds)));
    return absl::StrJoin(args, ", ");
  };
  switch (c.kind) {
    case Condition::Kind::kCount:
      return absl::StrCat("count(", filter_and_window(), ") ", CmpText(c.cmp), " ",
                          FormatNumber(c.number));
    case Condition::Kind::kSum: {
      std::string args = c.sum == Condition::Sum::kSentiment ? "sentiment" : "audience";
      const std::string rest = filter_and_window();
      if (!rest.empty()) absl::StrAppend(&args, ", ", rest);
      return absl::StrCat("sum(", args, ") ", CmpText(c.cmp), " ", FormatNumber(c.number));
    }
    case Condition::Kind::kAny:
      return absl::StrCat("any(", filter_and_window(), ")");
    case Condition::Kind::kNone:
      return absl::StrCat("none(", filter_and_window(), ")");
    case Condition::Kind::kUnanswered: {
      std::vector<std::string> args;
      if (c.filter.op != Filter::Op::kAll) args.push_back(Format(c.filter));
      if (c.over_seconds > 0) {
        args.push_back(c.service_hours
                           ? absl::StrCat("over ", c.over_seconds / 3600, " service hours")
                           : absl::StrCat("over ", FormatDuration(c.over_seconds)));
      }
      return absl::StrCat("unanswered(", absl::StrJoin(args, ", "), ")");
    }
    case Condition::Kind::kKind:
    case Condition::Kind::kCohort: {
      const char* what = c.kind == Condition::Kind::kKind ? "kind" : "cohort";
      if (c.values.size() == 1) {
        return absl::StrCat(what, c.negate ? " != " : " = ", Quote(c.values[0]));
      }
      return absl::StrCat(what, c.negate ? " not in " : " in ", FormatList(c.values));
    }
    case Condition::Kind::kConsent:
      return absl::StrCat("consent(", c.values[0], ")");
    case Condition::Kind::kSegment:
      return absl::StrCat("segment(", c.values[0], ")");
    case Condition::Kind::kCommunity:
      if (c.top)
        return absl::StrCat("community ", c.values[0], " in top ", FormatNumber(c.number), "%");
      return absl::StrCat("community ", c.values[0], " ", CmpText(c.cmp), " ",
                          FormatNumber(c.number));
  }
  return "";
}

std::string Format(const Rule& r) {
  switch (r.op) {
    case Rule::Op::kCondition:
      return Format(r.condition);
    case Rule::Op::kAnd:
    case Rule::Op::kOr:
      return FormatJoined(r);
    case Rule::Op::kNot: {
      const Rule& c = r.children[0];
      const bool parens = c.op == Rule::Op::kAnd || c.op == Rule::Op::kOr;
      return absl::StrCat("not ", parens ? absl::StrCat("(", Format(c), ")") : Format(c));
    }
  }
  return "";
}

std::vector<std::string> SegmentsNamed(const Rule& rule) {
  std::vector<std::string> out;
  CollectSegments(rule, out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool ValidSegmentName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace ihs::projections::segments
