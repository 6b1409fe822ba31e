// Who may log in to ihsd, and as what: the tokens file.
//
// A tokens file holds one line per token (docs/rpc.md):
//   line    := role SP name SP sha256-hex [SP "expires=" rfc3339] | "#" comment | empty
//   role    := "writer" | "reader" | "auditor" | "admin"
//   name    := [A-Za-z0-9._@-]+           (who holds the token; shown in logs and status)
//   sha256  := 64 lowercase hex digits: SHA-256 of the token's bytes, so `printf %s "$TOKEN" |
//              sha256sum` gives it
// A token with an expiry logs in until that moment, and ihsd closes its sessions then.
// Only hashes are stored: a copy of the file lets nobody log in. Tokens are 32 random bytes in
// hex (NewToken), so an unsalted hash is enough.
//
// A Tokens object is immutable after Load and safe for concurrent use.
#ifndef IHS_SERVER_TOKENS_H_
#define IHS_SERVER_TOKENS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "schema/rpc.capnp.h"

namespace ihs::server {

struct Identity {
  rpc::Role role = rpc::Role::UNSPECIFIED;
  std::string name;
  std::string token_hash;  // SHA-256 of the token it logged in with (32 bytes; empty when open)
  absl::Time expires = absl::InfiniteFuture();
};

class Tokens {
 public:
  // Parses a tokens file. kInvalidArgument names the line at fault; kNotFound if it is missing.
  static absl::StatusOr<Tokens> Load(const std::string& path);
  static absl::StatusOr<Tokens> Parse(absl::string_view text);
  // The text of a tokens file without the lines of `name`'s tokens (comments and other lines
  // kept as they are), and how many it removed. Errors as Parse.
  static absl::StatusOr<std::string> WithoutHolder(absl::string_view text, absl::string_view name,
                                                   size_t* removed);
  // No tokens file: every login is admin ("open"). ihsd allows this on loopback only.
  static Tokens Open();

  bool open() const { return open_; }
  size_t size() const { return entries_.size(); }
  // Who holds a token, in the file's order (never the hashes).
  std::vector<Identity> holders() const;
  // The identity of a token, or nullopt. Compares hashes in constant time, against every entry.
  // A token past its expiry at `now` is refused as well: nullopt, and `expired` says when.
  std::optional<Identity> Authenticate(absl::string_view token, absl::Time now = absl::Now(),
                                       std::optional<absl::Time>* expired = nullptr) const;
  // Whether a session that logged in as `who` may go on: its token is still in the file, with
  // the same role (after a reload, `ihs token revoke`).
  bool StillHolds(const Identity& who, absl::Time now = absl::Now()) const;

 private:
  // A line's token (its hash in token_hash), nullopt for a comment or an empty line;
  // kInvalidArgument names the line.
  static absl::StatusOr<std::optional<Identity>> ParseLine(absl::string_view line, size_t line_no);

  bool open_ = false;
  std::vector<Identity> entries_;
};

// A new token: 32 random bytes as 64 hex digits.
std::string NewToken();
// SHA-256 of a token, as 64 lowercase hex digits (the form the tokens file holds).
std::string HashTokenHex(absl::string_view token);
// "writer" -> Role::WRITER; nullopt for anything else.
std::optional<rpc::Role> ParseRole(absl::string_view name);
const char* RoleName(rpc::Role role);
// A tokens-file line for a new token.
std::string TokenLine(rpc::Role role, absl::string_view name, absl::string_view token,
                      absl::Time expires = absl::InfiniteFuture());
// Whether `name` is a valid holder name.
bool ValidTokenName(absl::string_view name);

}  // namespace ihs::server

#endif  // IHS_SERVER_TOKENS_H_
