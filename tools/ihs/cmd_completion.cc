// ihs completion bash: a bash completion script made from the command definitions themselves, so
// that it names every command and flag there is and nothing else.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "tools/ihs/cli.h"

namespace ihs::tools {
namespace {

// For every command path ("ihs", "ihs segments", "ihs segments members"): its subcommands and its
// flags. (bash refuses an empty key in an associative array.)
void Walk(CLI::App* app, const std::string& path, std::map<std::string, std::string>* subs,
          std::map<std::string, std::string>* flags) {
  std::vector<std::string> names, options;
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
    Walk(sub, absl::StrCat(path, " ", sub->get_name()), subs, flags);
  }
  for (const CLI::Option* o : app->get_options()) {
    for (const std::string& l : o->get_lnames()) options.push_back(absl::StrCat("--", l));
  }
  (*subs)[path] = absl::StrJoin(names, " ");
  (*flags)[path] = absl::StrJoin(options, " ");
}

int Completion(CLI::App& root, const std::string& shell) {
  if (shell != "bash") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("no completion for shell \"", shell, "\": ihs writes it for bash")));
  }
  std::map<std::string, std::string> subs, flags;
  Walk(&root, "ihs", &subs, &flags);
  std::string script =
      "# bash completion for ihs, made by `ihs completion bash`:\n"
      "#   source <(ihs completion bash)\n"
      "declare -gA _ihs_subs=(\n";
  for (const auto& [path, names] : subs)
    absl::StrAppend(&script, "  [\"", path, "\"]=\"", names, "\"\n");
  script += ")\ndeclare -gA _ihs_flags=(\n";
  for (const auto& [path, names] : flags)
    absl::StrAppend(&script, "  [\"", path, "\"]=\"", names, "\"\n");
  script +=
      ")\n"
      "_ihs() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} path=ihs i w s\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    w=${COMP_WORDS[i]}\n"
      "    for s in ${_ihs_subs[$path]}; do\n"
      "      if [[ $s == \"$w\" ]]; then path=\"$path $w\"; break; fi\n"
      "    done\n"
      "  done\n"
      "  if [[ $cur == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"${_ihs_flags[$path]}\" -- \"$cur\"))\n"
      "  else\n"
      "    COMPREPLY=($(compgen -W \"${_ihs_subs[$path]}\" -- \"$cur\"))\n"
      "  fi\n"
      "}\n"
      "complete -o default -F _ihs ihs\n";
  std::cout << script;
  return kExitOk;
}

// Text for roff: a backslash written as \e, a hyphen as \- (so that flags copy as typed), and a
// line that would start with a dot or quote kept from being read as a request.
std::string Roff(absl::string_view text) {
  std::string out;
  for (char ch : text) {
    if (ch == '\\') {
      out += "\\e";
    } else if (ch == '-') {
      out += "\\-";
    } else {
      out += ch;
      if (ch == '\n') out += "\\&";
    }
  }
  return (!out.empty() && (out[0] == '.' || out[0] == '\'')) ? "\\&" + out : out;
}

// One section per command, depth first, from the definitions `--help` prints.
void ManCommands(CLI::App* app, const std::string& path, std::string* page) {
  std::vector<CLI::App*> subs = app->get_subcommands([](CLI::App*) { return true; });
  if (path != "ihs") {
    absl::StrAppend(page, ".SS \"", Roff(path), "\"\n", Roff(app->get_description()), "\n");
    for (const CLI::Option* o : app->get_options()) {
      if (o->get_name() == "--help" || o->get_name() == "-h,--help") continue;
      std::string name = o->get_name();
      if (o->get_positional()) name = absl::StrCat(o->get_name(), " (positional)");
      absl::StrAppend(page, ".TP\n.B ", Roff(name), "\n", Roff(o->get_description()), "\n");
    }
    if (!subs.empty()) {
      std::vector<std::string> names;
      for (CLI::App* sub : subs) names.push_back(sub->get_name());
      absl::StrAppend(page, ".PP\nCommands: ", Roff(absl::StrJoin(names, ", ")), ".\n");
    }
  }
  for (CLI::App* sub : subs) ManCommands(sub, absl::StrCat(path, " ", sub->get_name()), page);
}

int Man(CLI::App& root) {
  std::string page = absl::StrCat(
      ".\\\" made by `ihs man` from the command definitions that --help prints\n",
      ".TH IHS 1 \"\" \"ihs ", IHS_VERSION, "\" \"ihs manual\"\n", ".SH NAME\nihs \\- ",
      Roff(absl::StripPrefix(root.get_description(), "ihs: ")), "\n",
      ".SH SYNOPSIS\n.B ihs\n.I command\n[\n.I options\n]\n",
      ".SH DESCRIPTION\nEvery command below works on a data directory (\\-\\-data) or, where it "
      "says so, on a running ihsd (\\-\\-connect). Data is printed as text, or as JSON lines "
      "with \\-\\-json. docs/cli.md says more.\n",
      ".SH COMMANDS\n");
  ManCommands(&root, "ihs", &page);
  absl::StrAppend(
      &page, ".SH EXIT STATUS\n", Roff(root.get_footer()), "\n",
      ".SH SEE ALSO\nihsd \\-\\-help (the server); docs/cli.md, docs/rpc.md, docs/operations.md\n");
  std::cout << page;
  return kExitOk;
}

}  // namespace

void RegisterManCommand(Cli& cli) {
  CLI::App* sub = cli.app().add_subcommand(
      "man",
      "print the manual page of every command, made from their definitions: "
      "ihs man > ihs.1; man ./ihs.1");
  CLI::App& root = cli.app();
  cli.OnRun(sub, [&root] { return Man(root); });
}

void RegisterCompletionCommand(Cli& cli) {
  auto shell = std::make_shared<std::string>();
  CLI::App* sub = cli.app().add_subcommand(
      "completion", "print a completion script for a shell: source <(ihs completion bash)");
  sub->add_option("shell", *shell, "the shell (bash)")->required();
  CLI::App& root = cli.app();
  cli.OnRun(sub, [&root, shell] { return Completion(root, *shell); });
}

}  // namespace ihs::tools
