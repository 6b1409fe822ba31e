// ihs: the command line of the interaction history store, for engineers, auditors and operators.
//
//   ihs append WHERE [--stream S] [--expected-version N|any|none|exists] [--json] < in.jsonl
//   ihs read   WHERE STREAM [--from V] [--backward] [--limit N] [--sealed] [--json]
//   ihs tail   WHERE [--from POS] [--limit N] [-f] [--json]
//   ihs verify --data DIR [--json]
//   ihs stats  --data DIR [--json]
//   ihs generate --parties N --days D [--seed S] [--events N] (--data DIR | --out FILE.jsonl)
//                [--truth FILE.json] [--force] [--json]
//   ihs token new --tokens FILE --role ROLE --name NAME [--json]
//   ihs audit pubkey|head|prove-event|verify-head|verify-party|replay|export --data DIR ...
//   ihs audit verify-export FILE [--key KEYFILE]                         (docs/audit.md)
//   ihs backup WHERE --to DIR [--with-master-key] [--json]
//   ihs retention run --policy FILE --data DIR [--now TIME] [--by NAME] [--dry-run] [--json]
//   ihs erase PARTY --reason TEXT [--by NAME] WHERE [--json]
//   ihs hold  PARTY --reason TEXT [--lift] [--by NAME] WHERE [--json]
//   ihs timeline PARTY WHERE [--from T] [--to T] [--channel C]... [--limit N] [--cursor C]
//                [--html FILE] [--json]
//   ihs projections status WHERE [--json] | ihs projections rebuild NAME WHERE
//
// WHERE is a data directory (--data DIR) or a running ihsd (--connect ADDR --token T, or the
// token in $IHS_TOKEN); the output is the same. Only append and generate create a store.
//
// Events are JSON in and out through capnp::JsonCodec over schema/event.capnp (schema/json.h).
// Exit codes (docs/cli.md): 0 ok, 1 usage, 2 bad input, 3 version conflict, 4 integrity failure,
// 5 store or server unavailable, 6 refused by the server (no such token, or not the role's),
// 7 refused by the party's state (under legal hold, already erased, not held; content for an
// erased party or of an expired class).
//
// Each command group is a file of its own (tools/ihs/cmd_*.cc) that registers its subcommands
// (tools/ihs/cli.h); this file puts them together.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "tools/ihs/cli.h"

namespace ihs::tools {
namespace {

// A command word that names no command: "ihs frobnicate", "ihs segments frob". CLI11 alone would
// say only that a subcommand is required, or that an argument was not expected. Names the word,
// where it was looked for and the commands there; false if every command word is known.
bool UnknownCommand(CLI::App& app, int argc, char** argv) {
  CLI::App* at = &app;
  std::string path = "ihs";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-') return false;  // options: CLI11 checks them
    const std::vector<CLI::App*> subs = at->get_subcommands([](CLI::App*) { return true; });
    // A command's own arguments; a command with positionals of its own besides its subcommands
    // (`ihs community PARTY`, `ihs community top`) takes any word.
    if (subs.empty() ||
        !at->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) {
      return false;
    }
    CLI::App* next = nullptr;
    std::string names;
    for (CLI::App* sub : subs) {
      if (sub->check_name(word)) next = sub;
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (next == nullptr) {
      std::cerr << "ihs: " << path << " has no command \"" << word << "\"; its commands: " << names
                << " (" << path << " --help says what each does)\n";
      return true;
    }
    at = next;
    path += " " + word;
  }
  return false;
}

int Main(int argc, char** argv) {
  CLI::App app{"ihs: the interaction history store's command line"};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 usage, 2 bad input, 3 version conflict, 4 integrity failure, "
      "5 store or server unavailable, 6 refused by the server (token or role), 7 refused by the "
      "party's state (legal hold, already erased).");
  Cli cli(app);
  RegisterLogCommands(cli);
  RegisterGenerateCommand(cli);
  RegisterProjectionCommands(cli);
  RegisterTimelineCommands(cli);
  RegisterIdentityCommands(cli);
  RegisterSegmentCommands(cli);
  RegisterCommunityCommands(cli);
  RegisterTokenCommands(cli);
  RegisterClusterCommands(cli);
  RegisterAuditCommands(cli);
  RegisterGovernanceCommands(cli);
  RegisterCompletionCommand(cli);
  RegisterManCommand(cli);
  app.set_version_flag("--version", std::string("ihs ") + IHS_VERSION);
  if (UnknownCommand(app, argc, argv)) return kExitUsage;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return cli.RunChosen();
}

}  // namespace
}  // namespace ihs::tools

int main(int argc, char** argv) { return ihs::tools::Main(argc, argv); }
