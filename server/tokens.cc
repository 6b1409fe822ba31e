#include "server/tokens.h"

#include <sodium.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace ihs::server {
namespace {

std::string Sha256(absl::string_view token) {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return out;
}

}  // namespace

std::optional<rpc::Role> ParseRole(absl::string_view name) {
  if (name == "writer") return rpc::Role::WRITER;
  if (name == "reader") return rpc::Role::READER;
  if (name == "auditor") return rpc::Role::AUDITOR;
  if (name == "admin") return rpc::Role::ADMIN;
  return std::nullopt;
}

const char* RoleName(rpc::Role role) {
  switch (role) {
    case rpc::Role::WRITER:
      return "writer";
    case rpc::Role::READER:
      return "reader";
    case rpc::Role::AUDITOR:
      return "auditor";
    case rpc::Role::ADMIN:
      return "admin";
    default:
      return "unspecified";
  }
}

bool ValidTokenName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::optional<Identity>> Tokens::ParseLine(absl::string_view line, size_t line_no) {
  line = absl::StripAsciiWhitespace(line);
  if (line.empty() || line[0] == '#') return std::nullopt;
  std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("tokens file line ", line_no, ": ", why));
  };
  if (f.size() != 3 && f.size() != 4) {
    return bad("want three fields and an optional fourth: role name sha256-hex [expires=TIME]");
  }
  std::optional<rpc::Role> role = ParseRole(f[0]);
  if (!role) {
    return bad(absl::StrCat("unknown role \"", f[0], "\": give writer, reader, auditor or admin"));
  }
  if (!ValidTokenName(f[1])) {
    return bad(absl::StrCat("bad name \"", f[1], "\": use letters, digits and . _ @ -"));
  }
  if (f[2].size() != 64 || f[2].find_first_not_of("0123456789abcdef") != absl::string_view::npos) {
    return bad("the hash must be 64 lowercase hex digits (the SHA-256 of the token)");
  }
  const std::string hash = absl::HexStringToBytes(f[2]);
  absl::Time expires = absl::InfiniteFuture();
  if (f.size() == 4) {
    absl::string_view when = f[3];
    std::string error;
    if (!absl::ConsumePrefix(&when, "expires=") ||
        !absl::ParseTime(absl::RFC3339_full, when, &expires, &error)) {
      return bad(absl::StrCat("the fourth field \"", f[3],
                              "\" is not expires=TIME (RFC 3339, as 2027-01-31T00:00:00Z)"));
    }
  }
  return Identity{*role, std::string(f[1]), hash, expires};
}

absl::StatusOr<Tokens> Tokens::Parse(absl::string_view text) {
  Tokens tokens;
  size_t line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    IHS_ASSIGN_OR_RETURN(std::optional<Identity> entry, ParseLine(line, ++line_no));
    if (entry) tokens.entries_.push_back(*std::move(entry));
  }
  return tokens;
}

absl::StatusOr<std::string> Tokens::WithoutHolder(absl::string_view text, absl::string_view name,
                                                  size_t* removed) {
  std::string kept;
  size_t line_no = 0;
  *removed = 0;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the last line's newline
  for (absl::string_view line : lines) {
    IHS_ASSIGN_OR_RETURN(std::optional<Identity> entry, ParseLine(line, ++line_no));
    if (entry && entry->name == name) {
      ++*removed;
      continue;
    }
    absl::StrAppend(&kept, line, "\n");
  }
  return kept;
}

absl::StatusOr<Tokens> Tokens::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read tokens file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<Tokens> t = Parse(ss.str());
  if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", t.status().message()));
  return t;
}

Tokens Tokens::Open() {
  Tokens t;
  t.open_ = true;
  return t;
}

std::optional<Identity> Tokens::Authenticate(absl::string_view token, absl::Time now,
                                             std::optional<absl::Time>* expired) const {
  if (open_) return Identity{rpc::Role::ADMIN, "open", "", absl::InfiniteFuture()};
  const std::string hash = Sha256(token);
  std::optional<Identity> found;
  for (const Identity& e : entries_) {  // every entry, so timing does not tell which matched
    if (sodium_memcmp(e.token_hash.data(), hash.data(), hash.size()) == 0 && !found) found = e;
  }
  if (found && now >= found->expires) {
    if (expired != nullptr) *expired = found->expires;
    return std::nullopt;
  }
  return found;
}

bool Tokens::StillHolds(const Identity& who, absl::Time now) const {
  if (open_) return true;
  for (const Identity& e : entries_) {
    if (e.token_hash == who.token_hash && e.role == who.role && now < e.expires) {
      return true;
    }
  }
  return false;
}

std::string NewToken() {
  if (sodium_init() < 0) std::abort();  // libsodium cannot work at all
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

std::string HashTokenHex(absl::string_view token) { return absl::BytesToHexString(Sha256(token)); }

std::vector<Identity> Tokens::holders() const {
  std::vector<Identity> out;
  out.reserve(entries_.size());
  for (const Identity& e : entries_) {
    out.push_back(e);
    out.back().token_hash.clear();  // never the hashes
  }
  return out;
}

std::string TokenLine(rpc::Role role, absl::string_view name, absl::string_view token,
                      absl::Time expires) {
  std::string line = absl::StrCat(RoleName(role), " ", name, " ", HashTokenHex(token));
  if (expires != absl::InfiniteFuture()) {
    absl::StrAppend(
        &line, " expires=", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", expires, absl::UTCTimeZone()));
  }
  return line + "\n";
}

}  // namespace ihs::server
