#include "projections/identity/clues.h"

#include <sodium.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ihs::projections::identity {

using schema::HandleKind;

float ClueWeight(ClueKind kind) {
  switch (kind) {
    case ClueKind::EMAIL:
      return 0.8f;
    case ClueKind::ADDRESS:
      return 0.35f;
    case ClueKind::SOCIAL_HANDLE:
      return 0.9f;
    case ClueKind::APP_USER:
      return 0.9f;
    case ClueKind::ORDER_REFERENCE:
      return 0.6f;
    case ClueKind::FOLLOW_UP:
      return 0.5f;
    case ClueKind::NAME:
      return 0.5f;
    case ClueKind::SIMILAR_NAME:
      return 0.4f;
    default:
      return 0;
  }
}

ClueKind ClueKindOf(HandleKind kind) {
  switch (kind) {
    case HandleKind::EMAIL:
      return ClueKind::EMAIL;
    case HandleKind::PHONE:
    case HandleKind::POSTAL:
    case HandleKind::FAX:
      return ClueKind::ADDRESS;
    case HandleKind::FACEBOOK:
    case HandleKind::TWITTER:
    case HandleKind::YOUTUBE:
    case HandleKind::FORUM:
      return ClueKind::SOCIAL_HANDLE;
    case HandleKind::APP_USER:
      return ClueKind::APP_USER;
    default:
      return ClueKind::UNSPECIFIED;
  }
}

namespace {

bool IsSpaceOrPunct(char c) {
  return absl::ascii_isspace(static_cast<unsigned char>(c)) || c == ',' || c == '.' || c == ';';
}

// The name line of a postal address: its first part, up to a comma, if it holds no digit.
std::optional<absl::string_view> PostalNameLine(absl::string_view address) {
  const size_t comma = address.find(',');
  if (comma == absl::string_view::npos) return std::nullopt;
  const absl::string_view line = address.substr(0, comma);
  for (char c : line) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return line;
}

absl::StatusOr<std::string> NormalizePhone(absl::string_view address) {
  std::string out;
  absl::string_view a = absl::StripAsciiWhitespace(address);
  if (absl::ConsumePrefix(&a, "00")) {
    out = "+";
  } else if (absl::ConsumePrefix(&a, "+")) {
    out = "+";
  }
  for (char c : a) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      out += c;
    } else if (c != ' ' && c != '-' && c != '(' && c != ')' && c != '/' && c != '.') {
      return absl::InvalidArgumentError(absl::StrCat("phone number \"", address,
                                                     "\" has a character that is not a digit: '",
                                                     std::string(1, c), "'"));
    }
  }
  if (out.size() - (out[0] == '+' ? 1 : 0) < 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("phone number \"", address, "\" has fewer than 6 digits"));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> NormalizeHandle(HandleKind kind, absl::string_view address) {
  const absl::string_view a = absl::StripAsciiWhitespace(address);
  if (a.empty()) return absl::InvalidArgumentError("the handle is empty");
  switch (kind) {
    case HandleKind::EMAIL: {
      const size_t at = a.find('@');
      if (at == 0 || at == absl::string_view::npos || at + 1 == a.size() ||
          a.find('@', at + 1) != absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("email address \"", address, "\" is not of the form local@domain"));
      }
      return absl::AsciiStrToLower(a);
    }
    case HandleKind::PHONE:
    case HandleKind::FAX:
      return NormalizePhone(a);
    case HandleKind::POSTAL: {
      // Without the name line a letter may start with ("Greta Richter, Lindenstr. 5, ..."):
      // one household, one address.
      absl::string_view rest = a;
      if (PostalNameLine(a)) rest = absl::StripAsciiWhitespace(a.substr(a.find(',') + 1));
      std::string out;
      bool gap = false;
      for (char c : rest) {
        if (IsSpaceOrPunct(c)) {
          gap = true;
          continue;
        }
        if (gap && !out.empty()) out += ' ';
        gap = false;
        out += absl::ascii_tolower(static_cast<unsigned char>(c));
      }
      if (out.empty()) return absl::InvalidArgumentError("the postal address is empty");
      return out;
    }
    case HandleKind::TWITTER: {
      std::string out = absl::AsciiStrToLower(a);
      if (out[0] != '@') out.insert(0, "@");
      return out;
    }
    case HandleKind::FACEBOOK:
    case HandleKind::YOUTUBE:
    case HandleKind::FORUM:
    case HandleKind::APP_USER:
      return absl::AsciiStrToLower(a);
    default:
      return absl::InvalidArgumentError("the handle's kind is missing or unknown");
  }
}

std::optional<std::string> NameOf(HandleKind kind, absl::string_view address) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(address));
  absl::string_view s = lower;
  switch (kind) {
    case HandleKind::EMAIL:
      s = s.substr(0, s.find('@'));
      break;
    case HandleKind::TWITTER:
    case HandleKind::FACEBOOK:
    case HandleKind::YOUTUBE:
    case HandleKind::FORUM:
      if (size_t colon = s.find(':'); colon != absl::string_view::npos) s.remove_prefix(colon + 1);
      absl::ConsumePrefix(&s, "@");
      break;
    case HandleKind::POSTAL: {
      std::optional<absl::string_view> line = PostalNameLine(s);
      if (!line) return std::nullopt;
      s = *line;
      break;
    }
    default:
      return std::nullopt;
  }
  std::string words[2];
  int n = 0;
  for (size_t i = 0; i < s.size() && n < 2;) {
    if (!absl::ascii_isalpha(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && absl::ascii_isalpha(static_cast<unsigned char>(s[j]))) ++j;
    if (j - i >= 2) words[n++] = std::string(s.substr(i, j - i));
    i = j;
  }
  if (n < 2) return std::nullopt;
  return absl::StrCat(words[0], " ", words[1]);
}

std::vector<std::string> References(absl::string_view text) {
  std::vector<std::string> out;
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  auto word = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; };
  for (size_t i = 0; i < text.size(); ++i) {
    if (!upper(text[i]) || (i > 0 && word(text[i - 1]))) continue;
    size_t j = i;
    while (j < text.size() && upper(text[j])) ++j;
    if (j - i > 4 || j >= text.size() || text[j] != '-') continue;
    size_t k = j + 1;
    while (k < text.size() && digit(text[k])) ++k;
    if (k - j - 1 < 4 || k - j - 1 > 12 || (k < text.size() && word(text[k]))) continue;
    out.emplace_back(text.substr(i, k - i));
    i = k;
  }
  return out;
}

std::vector<std::string> OneLetterOut(absl::string_view name) {
  std::vector<std::string> out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == ' ') continue;
    std::string v(name.substr(0, i));
    absl::StrAppend(&v, name.substr(i + 1));
    if (out.empty() || out.back() != v) out.push_back(std::move(v));
  }
  return out;
}

std::string BlindIndex::ClueKey(ClueKind kind, absl::string_view normalized) const {
  std::string out(17, '\0');
  out[0] = static_cast<char>(kind);
  const std::string input = absl::StrCat(static_cast<int>(kind), ":", normalized);
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data() + 1), 16,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                     reinterpret_cast<const unsigned char*>(key_.data()), key_.size());
  return out;
}

uint64_t BlindIndex::NameHash(absl::string_view name) const {
  unsigned char h[8];
  const std::string input = absl::StrCat("name:", name);
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size(), reinterpret_cast<const unsigned char*>(key_.data()),
                     key_.size());
  uint64_t v = 0;
  for (unsigned char b : h) v = v << 8 | b;
  return v;
}

}  // namespace ihs::projections::identity
