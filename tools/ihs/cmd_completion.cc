// ihs completion bash: a bash completion script made from the command definitions themselves, so
// that it names every command and flag there is and nothing else.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

}  // namespace

void RegisterCompletionCommand(Cli& cli) {
  auto shell = std::make_shared<std::string>();
  CLI::App* sub = cli.app().add_subcommand(
      "completion", "print a completion script for a shell: source <(ihs completion bash)");
  sub->add_option("shell", *shell, "the shell (bash)")->required();
  CLI::App& root = cli.app();
  cli.OnRun(sub, [&root, shell] { return Completion(root, *shell); });
}

}  // namespace ihs::tools
