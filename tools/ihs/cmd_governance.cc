// ihs backup, retention run, erase and hold: copies of the store, and an admin's changes to what
// the log may hold, each recorded as an event (docs/audit.md, docs/operations.md).
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "projections/identity/identity.h"
#include "projections/identity/links.h"
#include "projections/registry.h"
#include "projections/runner.h"
#include "store/audit.h"
#include "store/backup.h"
#include "store/governance.h"
#include "store/retention.h"
#include "tools/ihs/audit.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"

namespace ihs::tools {
namespace {

// ihs backup: a consistent copy of the store (EventStore::Backup), then the copy verified.
struct BackupArgs {
  std::string to;
  bool with_master_key = false;
};

int Backup(const Common& c, const BackupArgs& a) {
  if (absl::Status s = CheckWhere(c); !s.ok()) return Fail(s);
  absl::StatusOr<uint64_t> size;
  if (!c.connect.empty()) {
    absl::StatusOr<std::unique_ptr<client::Client>> client = Connect(c);
    if (!client.ok()) return Fail(client.status());
    size = (*client)->Backup(a.to, a.with_master_key);
  } else {
    // Read-only: no lock, so this works beside a running ihsd.
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
    if (!st.ok()) return FailOpen(st.status());
    size = Backup(**st, a.to, a.with_master_key);
  }
  if (!size.ok()) return Fail(size.status());
  // The copy must open and verify on its own, with its own master key, the one given, or (from
  // a data directory) the original's; over RPC without either, there is no key to open it with.
  Common copy = c;
  copy.connect.clear();
  copy.data = a.to;
  if (a.with_master_key) {
    copy.master_key.clear();  // the copy's own
  } else if (c.master_key.empty() && c.connect.empty()) {
    copy.master_key = (std::filesystem::path(c.data) / "master.key").string();
  }
  nlohmann::json j = {{"to", a.to}, {"sizeAtStart", *size}};
  if (!a.with_master_key && copy.master_key.empty()) {
    if (c.json) {
      j["verified"] = false;
      std::cout << JsonLine(j) << "\n";
    } else {
      absl::PrintF(
          "copied %s (%d events when it began); not verified here: run ihs verify "
          "--data %s --master-key FILE\n",
          a.to, *size, a.to);
    }
    return kExitOk;
  }
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened = OpenStore(copy, false);
  if (!opened.ok()) return FailOpen(opened.status());
  Progress progress("verify the copy");
  if (c.json) progress.Disable();
  auto report =
      Verify(**opened, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!report.ok()) return Fail(report.status());
  const std::string root = absl::BytesToHexString(report->root_hash);
  if (c.json) {
    j["verified"] = true;
    j["events"] = report->events_checked;
    j["root"] = root;
    std::cout << JsonLine(j) << "\n";
  } else {
    absl::PrintF("copied %s: %d events, verified; Merkle root %s\n", a.to, report->events_checked,
                 root);
  }
  return kExitOk;
}

// ihs erase and ihs hold: an admin's change to a party, recorded as an event (docs/audit.md).
struct PartyControlArgs {
  std::string party;
  std::string reason;
  std::string by;  // --data only: who asks (default: the login name)
  bool lift = false;
  bool person = false;  // erase: every stream of the party's person
};

// The streams of the party's person erased in one append, on a data directory.
absl::StatusOr<uint64_t> ErasePersonLocally(store::EventStore& store, const PartyControlArgs& a,
                                            const std::string& by) {
  IHS_ASSIGN_OR_RETURN(auto runner,
                       projections::Runner::Open(&store, projections::AllProjections()));
  IHS_RETURN_IF_ERROR(runner->CatchUp(projections::identity::kName));
  IHS_ASSIGN_OR_RETURN(projections::StateView view, runner->View(projections::identity::kName));
  IHS_ASSIGN_OR_RETURN(auto erased,
                       projections::identity::ErasePerson(store, view, a.party, a.reason, by));
  std::cerr << "ihs: erased the person's streams " << absl::StrJoin(erased.second, ", ")
            << " at positions " << absl::StrJoin(erased.first, ", ") << "\n";
  return erased.first.at(0);
}

int PartyControl(const Common& c, const PartyControlArgs& a, bool erase) {
  if (absl::Status s = CheckWhere(c); !s.ok()) return Fail(s);
  if (!c.connect.empty() && !a.by.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--by is for --data only: over RPC, ihsd records the token's holder"));
  }
  absl::StatusOr<uint64_t> position;
  std::string by = a.by.empty() ? LoginName() : a.by;
  if (!c.connect.empty()) {
    absl::StatusOr<std::unique_ptr<client::Client>> client = Connect(c);
    if (!client.ok()) return Fail(client.status());
    by = (*client)->name();
    position = erase ? (*client)->Erase(a.party, a.reason, a.person)
                     : (*client)->SetLegalHold(a.party, a.lift, a.reason);
  } else {
    absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, true);
    if (!st.ok()) return FailOpen(st.status());
    position = !erase     ? SetLegalHold(**st, a.party, a.lift, a.reason, by)
               : a.person ? ErasePersonLocally(**st, a, by)
                          : Erase(**st, a.party, a.reason, by);
  }
  if (!position.ok()) return Fail(position.status());
  const char* what = erase ? "erased" : (a.lift ? "hold lifted" : "held");
  if (c.json) {
    nlohmann::json j = {{"party", a.party},
                        {"action", what},
                        {"position", *position},
                        {"reason", a.reason},
                        {"requestedBy", by}};
    std::cout << JsonLine(j) << "\n";
  } else if (erase) {
    absl::PrintF(
        "erased %s: erasure recorded at position %d; its data key is deleted and "
        "compacted out of the store's files\n",
        a.party, *position);
  } else {
    absl::PrintF("%s %s: recorded at position %d\n",
                 a.lift ? "lifted the legal hold on" : "placed a legal hold on", a.party,
                 *position);
  }
  return kExitOk;
}

// ihs retention run: the retention policy applied as of now (EventStore::RunRetention).
struct RetentionArgs {
  std::string policy_file;
  std::string now;  // RFC 3339; default: now
  std::string by;
  bool dry_run = false;
};

int RetentionRun(const Common& c, const RetentionArgs& a) {
  absl::StatusOr<std::string> text = ReadFile(a.policy_file, "retention policy");
  if (!text.ok()) return Fail(text.status());
  absl::StatusOr<store::RetentionPolicy> policy = store::RetentionPolicy::Parse(*text);
  if (!policy.ok()) return Fail(policy.status());
  absl::Time now = absl::Now();
  if (!a.now.empty()) {
    absl::StatusOr<int64_t> t = ParseTimeFlag("--now", a.now);
    if (!t.ok()) return Fail(t.status());
    now = absl::FromUnixMicros(*t);
  }
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, !a.dry_run);
  if (!st.ok()) return FailOpen(st.status());
  const std::string by = a.by.empty() ? LoginName() : a.by;
  absl::StatusOr<store::RetentionReport> report = RunRetention(**st, *policy, now, by, a.dry_run);
  if (!report.ok()) return Fail(report.status());
  if (c.json) {
    nlohmann::json j = {{"dryRun", a.dry_run},
                        {"parties", report->parties},
                        {"keys", report->classes},
                        {"held", report->held},
                        {"requestedBy", by}};
    if (report->run_position) j["position"] = *report->run_position;
    std::cout << JsonLine(j) << "\n";
    return kExitOk;
  }
  absl::PrintF("%s%d data keys of %d parties %s; %d parties under legal hold left alone%s\n",
               a.dry_run ? "dry run: " : "", report->classes, report->parties,
               a.dry_run ? "would expire" : "expired", report->held.size(),
               report->run_position ? absl::StrCat("; recorded at position ", *report->run_position)
                                    : std::string());
  for (const std::string& p : report->held) absl::PrintF("  held: %s\n", p);
  return kExitOk;
}

}  // namespace

void RegisterGovernanceCommands(Cli& cli) {
  Common& common = cli.common();
  auto backup_args = std::make_shared<BackupArgs>();
  auto* backup = cli.app().add_subcommand(
      "backup", "a consistent copy of the store, taken while it serves, then verified");
  cli.AddWhere(backup);
  backup->add_option("--to", backup_args->to, "a new directory for the copy")->required();
  backup->add_flag("--with-master-key", backup_args->with_master_key,
                   "copy the master key into it too (then the copy alone opens everything)");
  cli.OnRun(backup, [&common, backup_args] { return Backup(common, *backup_args); });

  auto retention_args = std::make_shared<RetentionArgs>();
  auto* retention = cli.Group("retention", "content retention by channel and type");
  auto* retention_run = retention->add_subcommand(
      "run", "erase the content whose retention has passed (parties under legal hold excepted)");
  cli.AddData(retention_run, true);
  retention_run
      ->add_option("--policy", retention_args->policy_file,
                   "the policy file: lines such as `channel=chat 2y` (docs/audit.md)")
      ->required();
  retention_run->add_option("--now", retention_args->now,
                            "judge expiry as of this moment (RFC 3339; default: now)");
  retention_run->add_option("--by", retention_args->by,
                            "who runs it, for the trail (default: $USER)");
  retention_run->add_flag("--dry-run", retention_args->dry_run,
                          "report what would expire; change nothing");
  cli.OnRun(retention_run,
            [&common, retention_args] { return RetentionRun(common, *retention_args); });

  auto control_args = std::make_shared<PartyControlArgs>();
  auto add_control = [&](CLI::App* sub) {
    cli.AddWhere(sub);
    sub->add_option("party", control_args->party, "party id (stream id)")->required();
    sub->add_option("--reason", control_args->reason, "why, for the audit trail")->required();
    sub->add_option("--by", control_args->by,
                    "with --data: who asks, for the trail (default: $USER); over RPC ihsd "
                    "records the token's holder");
  };
  auto* erase = cli.app().add_subcommand(
      "erase", "erase a party's personal content: an erasure event, and its data key deleted");
  add_control(erase);
  erase->add_flag("--person", control_args->person,
                  "every stream of the party's person (docs/identity.md), in one atomic append");
  cli.OnRun(erase, [&common, control_args] {
    return PartyControl(common, *control_args, /*erase=*/true);
  });
  auto* hold = cli.app().add_subcommand(
      "hold", "place a legal hold on a party (it cannot be erased while held), or --lift it");
  add_control(hold);
  hold->add_flag("--lift", control_args->lift, "lift the hold in force");
  cli.OnRun(hold, [&common, control_args] {
    return PartyControl(common, *control_args, /*erase=*/false);
  });
}

}  // namespace ihs::tools
