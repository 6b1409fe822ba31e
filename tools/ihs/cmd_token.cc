// ihs token new: a token for ihsd, its hash added to the tokens file.
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "schema/json.h"
#include "server/tokens.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"

namespace ihs::tools {
namespace {

struct TokenArgs {
  std::string file, role, name;
};

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
  // The file must stay a valid tokens file: check what is there before adding to it.
  std::error_code ec;
  if (std::filesystem::exists(a.file, ec)) {
    absl::StatusOr<server::Tokens> existing = server::Tokens::Load(a.file);
    if (!existing.ok()) return Fail(existing.status());
  }
  const std::string token = server::NewToken();
  {
    std::ofstream out(a.file, std::ios::app);
    out << server::TokenLine(*role, a.name, token);
    out.close();
    if (!out) {
      return Fail(absl::UnavailableError(absl::StrCat("cannot write tokens file ", a.file)));
    }
  }
  std::filesystem::permissions(
      a.file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  if (c.json) {
    absl::PrintF("{\"role\":\"%s\",\"name\":%s,\"token\":\"%s\"}\n", a.role,
                 schema::JsonQuote(a.name), token);
  } else {
    absl::PrintF("%s\n", token);
    std::cerr << "ihs: added a " << a.role << " token for " << a.name << " to " << a.file
              << " (only its hash is stored: keep the token now, it is not shown again)\n";
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
  token_new->add_flag("--json", common.json, "print {role, name, token} as JSON");
  cli.OnRun(token_new, [&common, token_args] { return TokenNew(common, *token_args); });
}

}  // namespace ihs::tools
