// What the command groups of `ihs` share (tools/ihs/main.cc lists them): the exit codes, the
// flags that say where a command works (a data directory or a running ihsd), opening a store or
// a connection, and the registration through which each group adds its subcommands. A command
// group is one file (tools/ihs/cmd_*.cc) with one Register function; adding one means that file,
// its line in main.cc and its docs.
#ifndef IHS_TOOLS_IHS_CLI_H_
#define IHS_TOOLS_IHS_CLI_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/client.h"
#include "store/event_store.h"

namespace ihs::tools {

// Events per page of reads; the server caps one read at 10,000 events.
inline constexpr size_t kReadPage = 1000;

// Exit codes (docs/cli.md).
enum ExitCode {
  kExitOk = 0,
  kExitUsage = 1,
  kExitBadInput = 2,
  kExitConflict = 3,
  kExitIntegrity = 4,
  kExitUnavailable = 5,
  kExitRefused = 6,
  kExitPartyState = 7,
};

// A command line that asks for something the command cannot do as given (two flags that exclude
// each other, a flag that needs another): exit 1, as CLI11's own usage errors.
absl::Status UsageError(absl::string_view message);

// The exit code of a status: its code, as docs/cli.md maps them (a UsageError: 1).
int ExitCodeFor(const absl::Status& s);
// Prints "ihs: MESSAGE" on stderr and returns ExitCodeFor(s).
int Fail(const absl::Status& s);
// A store that cannot be opened (missing, not a store, wrong key, locked, newer format) is
// "store unavailable", whatever the status code.
int FailOpen(const absl::Status& s);

struct Common {
  std::string data;
  std::string master_key;
  std::string connect;  // a running ihsd instead of --data
  std::string token;
  std::string tls_ca, tls_name;
  bool json = false;
};

// Only `create` makes a store where there is none: append and generate, which are meant to.
// Every other command needs one that exists, and says so when --data names a missing or empty
// directory, instead of leaving a new store (with a new master key) behind.
// `clock`: where recordedAt comes from (generate records at simulated times); nullptr: now.
absl::StatusOr<std::unique_ptr<store::EventStore>> OpenStore(const Common& c, bool write,
                                                             bool create = false,
                                                             Clock* clock = nullptr);
// The options OpenStore opens with, for a caller that sets more of them (import: bulk_load).
store::Options StoreOptions(const Common& c, bool write, bool create, Clock* clock = nullptr);
// --data or --connect, exactly one.
absl::Status CheckWhere(const Common& c);
// Connects to the ihsd of --connect with --token (default $IHS_TOKEN) and the TLS flags.
absl::StatusOr<std::unique_ptr<client::Client>> Connect(const Common& c);
// A store that cannot be opened is "unavailable", whatever the status code (as FailOpen).
absl::Status OpenFailure(const absl::Status& s);

// $USER, or "uid N": who runs a command, for the audit trail.
std::string LoginName();

// "1 touchpoint", "7 touchpoints": `n` and the noun in the number it takes.
std::string Counted(int64_t n, absl::string_view one, absl::string_view many);
// "a writer", "an admin".
std::string WithArticle(absl::string_view word);
// An output file that exists is kept unless --force; one that cannot be written is named.
absl::Status CheckOutputPath(const std::string& flag, const std::string& path, bool force);
// An RFC 3339 time given to `flag`, in µs since the epoch; kInvalidArgument naming the flag.
absl::StatusOr<int64_t> ParseTimeFlag(const std::string& flag, const std::string& value);

// Numbers on the command line are whole and in range, or refused: CLI11 would read "-1" into an
// unsigned option as 2^64-1, and clamp what does not fit.
extern const CLI::Validator kWholeNumber;

// The command line being built: the groups register their subcommands here, main parses, and
// the one chosen runs.
class Cli {
 public:
  explicit Cli(CLI::App& app) : app_(app) {}
  CLI::App& app() { return app_; }
  Common& common() { return common_; }

  // A parent of subcommands ("audit", "projections"), made by the first group that asks.
  CLI::App* Group(const std::string& name, const std::string& description);
  // --data and --master-key (and with `json`, --json): a command on a data directory.
  void AddData(CLI::App* sub, bool json);
  // --data or --connect (with --token and the TLS flags), and --json: a command on either.
  void AddWhere(CLI::App* sub);
  // `run` runs when `sub` is the command given; it returns the exit code.
  void OnRun(CLI::App* sub, std::function<int()> run);

  // The exit code of the command given (kExitUsage if none was).
  int RunChosen();

 private:
  CLI::App& app_;
  Common common_;
  std::map<std::string, CLI::App*> groups_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
};

// The command groups, in the order `ihs --help` lists them.
void RegisterLogCommands(Cli& cli);         // append, read, tail, verify, stats (cmd_log.cc)
void RegisterGenerateCommand(Cli& cli);     // generate (cmd_generate.cc)
void RegisterProjectionCommands(Cli& cli);  // projections status|rebuild (cmd_projections.cc)
void RegisterTimelineCommands(Cli& cli);    // timeline, audit replay (cmd_timeline.cc)
void RegisterCommunityCommands(Cli& cli);   // community PARTY|top (cmd_community.cc)
void RegisterIdentityCommands(
    Cli& cli);  // identity show|suggestions|stats|link|... (cmd_identity.cc)
void RegisterSegmentCommands(Cli& cli);  // segments define|change|retire|list (cmd_segments.cc)
void RegisterTokenCommands(Cli& cli);    // token new (cmd_token.cc)
void RegisterClusterCommands(Cli& cli);  // cluster status (cmd_cluster.cc)
void RegisterAuditCommands(Cli& cli);    // audit pubkey|head|prove-event|... (cmd_audit.cc)
void RegisterGovernanceCommands(
    Cli& cli);                             // backup, retention run, erase, hold (cmd_governance.cc)
void RegisterCompletionCommand(Cli& cli);  // completion bash (cmd_completion.cc)
void RegisterManCommand(Cli& cli);         // man (cmd_completion.cc)

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_CLI_H_
