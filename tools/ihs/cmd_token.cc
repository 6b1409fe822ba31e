// ihs token new: a token for ihsd, its hash added to the tokens file.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "schema/json.h"
#include "server/tokens.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"

namespace ihs::tools {
namespace {

struct TokenArgs {
  std::string file, role, name, expires;
};

// --expires: an RFC 3339 moment, or a span from now ("90d", "12h", "30m").
absl::StatusOr<absl::Time> ParseExpiry(const std::string& text, absl::Time now) {
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &error)) return t;
  absl::Duration d;
  int64_t days = 0;
  absl::string_view days_text = text;
  if (absl::ConsumeSuffix(&days_text, "d") && absl::SimpleAtoi(days_text, &days) && days > 0 &&
      days <= 36500) {
    return now + absl::Hours(24 * days);
  }
  if (absl::ParseDuration(text, &d) && d > absl::ZeroDuration()) return now + d;
  return absl::InvalidArgumentError(absl::StrCat(
      "--expires \"", text, "\": give a moment (2027-01-31T00:00:00Z) or a span (90d, 12h, 30m)"));
}

std::string ExpiryText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

int TokenNew(const Common& c, const TokenArgs& a) {
  std::optional<rpc::Role> role = server::ParseRole(a.role);
  if (!role) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--role ", a.role, ": give writer, reader, auditor or admin")));
  }
  if (!server::ValidTokenName(a.name)) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--name \"", a.name, "\": use 1 to 128 letters, digits and . _ @ -")));
  }
  absl::Time expires = absl::InfiniteFuture();
  if (!a.expires.empty()) {
    absl::StatusOr<absl::Time> t = ParseExpiry(a.expires, absl::Now());
    if (!t.ok()) return Fail(t.status());
    if (*t <= absl::Now()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--expires ", a.expires, " is in the past: the token could never log in")));
    }
    expires = *t;
  }
  // The file must stay a valid tokens file: check what is there before adding to it.
  std::error_code ec;
  if (std::filesystem::exists(a.file, ec)) {
    absl::StatusOr<server::Tokens> existing = server::Tokens::Load(a.file);
    if (!existing.ok()) return Fail(existing.status());
  }
  const std::string token = server::NewToken();
  {
    std::ofstream out(a.file, std::ios::app);
    out << server::TokenLine(*role, a.name, token, expires);
    out.close();
    if (!out) {
      return Fail(absl::UnavailableError(absl::StrCat("cannot write tokens file ", a.file)));
    }
  }
  std::filesystem::permissions(
      a.file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  if (c.json) {
    absl::PrintF("{\"role\":\"%s\",\"name\":%s,\"token\":\"%s\"%s}\n", a.role,
                 schema::JsonQuote(a.name), token,
                 expires == absl::InfiniteFuture()
                     ? ""
                     : absl::StrCat(",\"expires\":\"", ExpiryText(expires), "\""));
  } else {
    absl::PrintF("%s\n", token);
    std::cerr << "ihs: added " << WithArticle(a.role) << " token for " << a.name << " to " << a.file
              << " (only its hash is stored: keep the token now, it is not shown again)\n";
  }
  return kExitOk;
}

// The holders of the tokens in the file: role and name, never the hashes.
int TokenList(const Common& c, const TokenArgs& a) {
  absl::StatusOr<server::Tokens> tokens = server::Tokens::Load(a.file);
  if (!tokens.ok()) return Fail(tokens.status());
  const absl::Time now = absl::Now();
  for (const server::Identity& who : tokens->holders()) {
    const bool expiring = who.expires != absl::InfiniteFuture();
    if (c.json) {
      absl::PrintF("{\"role\":\"%s\",\"name\":%s%s}\n", server::RoleName(who.role),
                   schema::JsonQuote(who.name),
                   expiring ? absl::StrCat(",\"expires\":\"", ExpiryText(who.expires), "\"",
                                           ",\"expired\":", now >= who.expires ? "true" : "false")
                            : "");
    } else {
      absl::PrintF("%-8s %s%s\n", server::RoleName(who.role), who.name,
                   !expiring            ? ""
                   : now >= who.expires ? absl::StrCat("  expired ", ExpiryText(who.expires))
                                        : absl::StrCat("  expires ", ExpiryText(who.expires)));
    }
  }
  return kExitOk;
}

// Removes every token of `name` from the file (written anew beside it, then renamed over it).
int TokenRevoke(const Common& c, const TokenArgs& a) {
  std::stringstream text;
  if (std::ifstream in(a.file); in) {
    text << in.rdbuf();
  } else {
    return Fail(absl::NotFoundError(absl::StrCat("cannot read tokens file ", a.file)));
  }
  size_t removed = 0;
  absl::StatusOr<std::string> kept = server::Tokens::WithoutHolder(text.str(), a.name, &removed);
  if (!kept.ok()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(a.file, ": ", kept.status().message())));
  }
  if (removed == 0) {
    return Fail(absl::NotFoundError(absl::StrCat("no token of \"", a.name, "\" in ", a.file,
                                                 " (ihs token list --tokens ", a.file,
                                                 " names the holders)")));
  }
  const std::string tmp = a.file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << *kept;
    out.close();
    std::error_code ec;
    std::filesystem::permissions(
        tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
    if (!out || ec) return Fail(absl::UnavailableError(absl::StrCat("cannot write ", tmp)));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, a.file, ec);
  if (ec) {
    return Fail(
        absl::UnavailableError(absl::StrCat("cannot replace ", a.file, ": ", ec.message())));
  }
  if (c.json) {
    absl::PrintF("{\"name\":%s,\"revoked\":%d}\n", schema::JsonQuote(a.name), removed);
  } else {
    std::cerr << "ihs: revoked " << removed << (removed == 1 ? " token" : " tokens") << " of "
              << a.name << " in " << a.file << " (a running ihsd reads the file again on SIGHUP)\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterTokenCommands(Cli& cli) {
  Common& common = cli.common();
  auto token_args = std::make_shared<TokenArgs>();
  auto* token = cli.Group("token", "manage ihsd's tokens file");
  auto* token_new = token->add_subcommand(
      "new", "make a token, add its hash to the tokens file, print the token once");
  token_new->add_option("--tokens", token_args->file, "the tokens file (created if missing)")
      ->required();
  token_new->add_option("--role", token_args->role, "writer, reader, auditor or admin")->required();
  token_new->add_option("--name", token_args->name, "who holds it (letters, digits, . _ @ -)")
      ->required();
  token_new->add_option("--expires", token_args->expires,
                        "the token logs in until then, and ihsd ends its sessions then: a moment "
                        "(RFC 3339) or a span from now (90d, 12h)");
  token_new->add_flag("--json", common.json, "print {role, name, token[, expires]} as JSON");
  cli.OnRun(token_new, [&common, token_args] { return TokenNew(common, *token_args); });

  auto* token_list = token->add_subcommand("list", "the holders of the tokens: role and name");
  token_list->add_option("--tokens", token_args->file, "the tokens file")->required();
  token_list->add_flag("--json", common.json, "one {role, name} per line");
  cli.OnRun(token_list, [&common, token_args] { return TokenList(common, *token_args); });

  auto* token_revoke =
      token->add_subcommand("revoke", "remove every token of a holder from the tokens file");
  token_revoke->add_option("name", token_args->name, "the holder's name")->required();
  token_revoke->add_option("--tokens", token_args->file, "the tokens file")->required();
  token_revoke->add_flag("--json", common.json, "print {name, revoked}");
  cli.OnRun(token_revoke, [&common, token_args] { return TokenRevoke(common, *token_args); });
}

}  // namespace ihs::tools
