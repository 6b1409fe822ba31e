#include "tools/ihs/cli.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace ihs::tools {

namespace {
constexpr absl::string_view kUsagePayload = "ihs/usage";
}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kUsagePayload, absl::Cord("1"));
  return s;
}

int ExitCodeFor(const absl::Status& s) {
  if (s.GetPayload(kUsagePayload).has_value()) return kExitUsage;
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
      return kExitBadInput;
    case absl::StatusCode::kAborted:
      return kExitConflict;
    case absl::StatusCode::kDataLoss:
      return kExitIntegrity;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kExitRefused;
    case absl::StatusCode::kFailedPrecondition:  // stores that cannot open go through FailOpen
      return kExitPartyState;
    default:
      return kExitUnavailable;
  }
}

int Fail(const absl::Status& s) {
  std::cerr << "ihs: " << s.message() << "\n";
  return ExitCodeFor(s);
}

// A store that cannot be opened (missing, not a store, wrong key, locked, newer format) is
// "store unavailable", whatever the status code.
int FailOpen(const absl::Status& s) {
  std::cerr << "ihs: " << s.message() << "\n";
  return s.code() == absl::StatusCode::kDataLoss ? kExitIntegrity : kExitUnavailable;
}

store::Options StoreOptions(const Common& c, bool write, bool create, Clock* clock) {
  store::Options o;
  o.clock = clock;
  o.path = c.data;
  o.master_key_path = c.master_key;
  // Reading commands open read-only: they take no lock, so they work beside a running writer
  // (seeing the log as of their start), and never create a store.
  o.create_if_missing = write && create;
  o.read_only = !write;
  return o;
}

absl::StatusOr<std::unique_ptr<store::EventStore>> OpenStore(const Common& c, bool write,
                                                             bool create, Clock* clock) {
  return store::EventStore::Open(StoreOptions(c, write, create, clock));
}

absl::Status CheckWhere(const Common& c) {
  if (c.connect.empty() == c.data.empty()) {
    return UsageError("give exactly one of --data DIR and --connect ADDR");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<client::Client>> Connect(const Common& c) {
  client::ConnectOptions o;
  o.address = c.connect;
  o.token = c.token;
  o.tls_ca_file = c.tls_ca;
  o.tls_server_name = c.tls_name;
  if (o.token.empty()) {
    const char* env = std::getenv("IHS_TOKEN");
    if (env != nullptr) o.token = env;
  }
  absl::StatusOr<std::unique_ptr<client::Client>> client = client::Client::Connect(o);
  if (!client.ok() && o.token.empty() &&
      client.status().code() == absl::StatusCode::kUnauthenticated) {
    return absl::UnauthenticatedError(absl::StrCat(
        "no token was given (--token T, or the environment's IHS_TOKEN, is empty or unset); ihsd "
        "at ",
        c.connect, " lets in only the holders of its tokens (ihs token new makes one)"));
  }
  return client;
}

absl::Status OpenFailure(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kDataLoss) return s;
  if (s.code() == absl::StatusCode::kFailedPrecondition &&
      absl::StrContains(s.message(), "already open by another process")) {
    return absl::UnavailableError(absl::StrCat(
        s.message(), "; to write while ihsd serves it, go through ihsd: --connect HOST:PORT"));
  }
  return absl::UnavailableError(s.message());
}

std::string Counted(int64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

std::string WithArticle(absl::string_view word) {
  const bool vowel =
      !word.empty() && absl::string_view("aeiouAEIOU").find(word[0]) != absl::string_view::npos;
  return absl::StrCat(vowel ? "an " : "a ", word);
}

std::string LoginName() {
  const char* user = std::getenv("USER");
  if (user != nullptr && *user != '\0') return user;
  return absl::StrCat("uid ", ::geteuid());
}

absl::Status CheckOutputPath(const std::string& flag, const std::string& path, bool force) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, " is a directory; name a file"));
  }
  if (std::filesystem::exists(path, ec) && !force) {
    return absl::AlreadyExistsError(
        absl::StrCat(flag, " ", path, " exists; give --force to overwrite it"));
  }
  const std::string probe = path + ".tmp";
  FILE* f = std::fopen(probe.c_str(), "w");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", flag, " ", path, ": ", std::strerror(errno)));
  }
  std::fclose(f);
  std::remove(probe.c_str());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseTimeFlag(const std::string& flag, const std::string& value) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, value, &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": \"", value, "\" is not an RFC 3339 time (e.g. 2026-03-01T00:00:00Z)"));
  }
  return absl::ToUnixMicros(t);
}

const CLI::Validator kWholeNumber(
    [](std::string& text) -> std::string {
      uint64_t v = 0;
      if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
          !absl::SimpleAtoi(text, &v)) {
        return absl::StrCat("\"", text, "\" is not a whole number from 0 to 2^64-1");
      }
      return std::string();
    },
    "NUMBER");

CLI::App* Cli::Group(const std::string& name, const std::string& description) {
  auto [it, fresh] = groups_.emplace(name, nullptr);
  if (fresh) {
    it->second = app_.add_subcommand(name, description);
    it->second->require_subcommand(1);
  }
  return it->second;
}

void Cli::AddData(CLI::App* sub, bool json) {
  sub->add_option("--data", common_.data, "data directory of the store")->required();
  sub->add_option("--master-key", common_.master_key, "master key file (default: DATA/master.key)");
  if (json) sub->add_flag("--json", common_.json, "print JSON (one object per line)");
}

void Cli::AddWhere(CLI::App* sub) {
  sub->add_option("--data", common_.data, "data directory of the store");
  sub->add_option("--master-key", common_.master_key, "master key file (default: DATA/master.key)");
  sub->add_option("--connect", common_.connect, "a running ihsd instead: HOST:PORT or unix:PATH");
  sub->add_option("--token", common_.token, "with --connect: the token (default: $IHS_TOKEN)");
  sub->add_option("--tls-ca", common_.tls_ca,
                  "with --connect to a TLS listener: PEM certificate(s) to trust");
  sub->add_option("--tls-name", common_.tls_name,
                  "the name the server's certificate must carry (default: the host of ADDR)");
  sub->add_flag("--json", common_.json, "print JSON (one object per line)");
}

void Cli::OnRun(CLI::App* sub, std::function<int()> run) {
  commands_.emplace_back(sub, std::move(run));
}

int Cli::RunChosen() {
  for (auto& [sub, run] : commands_) {
    if (*sub) return run();
  }
  return kExitUsage;
}

}  // namespace ihs::tools
