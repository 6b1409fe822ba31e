// ihs audit: signed tree heads and proofs for auditors (docs/audit.md); the work is in
// tools/ihs/audit.cc and export.cc, and `audit replay` is the timeline's (cmd_timeline.cc).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tools/ihs/audit.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/export.h"

namespace ihs::tools {
namespace {

// Runs an audit command on the store of --data, opened for reading.
int OnStore(const Common& c, const std::function<absl::Status(store::EventStore&)>& run) {
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, false);
  if (!st.ok()) return FailOpen(st.status());
  absl::Status r = run(**st);
  if (r.code() == absl::StatusCode::kFailedPrecondition) return FailOpen(r);  // no signing key
  return r.ok() ? kExitOk : Fail(r);
}

struct AuditArgs {
  std::string out, head_file, old_head, new_head, party, key;
  uint64_t position = 0;
  bool all = false;
};

}  // namespace

void RegisterAuditCommands(Cli& cli) {
  Common& c = cli.common();
  auto a = std::make_shared<AuditArgs>();
  auto* audit =
      cli.Group("audit", "signed tree heads and proofs: hold the store to what it published");
  auto* pubkey = audit->add_subcommand("pubkey", "the key that checks this store's heads");
  cli.AddData(pubkey, true);
  cli.OnRun(pubkey, [&c] {
    return OnStore(c, [&c](store::EventStore& s) { return AuditPubkey(s, c.json); });
  });

  auto* head = audit->add_subcommand("head", "a signed tree head of the log as it is now");
  cli.AddData(head, true);
  head->add_option("--out", a->out, "also write the head to this file");
  cli.OnRun(head, [&c, a] {
    return OnStore(c, [&c, a](store::EventStore& s) { return AuditHead(s, a->out, c.json); });
  });

  auto* prove = audit->add_subcommand("prove-event",
                                      "prove that one event is in the tree of a head you kept");
  cli.AddData(prove, true);
  prove->add_option("position", a->position, "the event's position")
      ->required()
      ->check(kWholeNumber);
  prove->add_option("--head", a->head_file, "a head from `ihs audit head`")->required();
  prove->add_option("--out", a->out, "write the proof file for ihs-verify here");
  cli.OnRun(prove, [&c, a] {
    return OnStore(c, [&c, a](store::EventStore& s) {
      return AuditProveEvent(s, a->position, a->head_file, a->out, c.json);
    });
  });

  auto* verify_head = audit->add_subcommand(
      "verify-head", "prove that the log of NEW extends the log of OLD unchanged");
  cli.AddData(verify_head, true);
  verify_head->add_option("old", a->old_head, "the earlier head")->required();
  verify_head->add_option("new", a->new_head, "the later head")->required();
  verify_head->add_option("--out", a->out, "write the proof file for ihs-verify here");
  cli.OnRun(verify_head, [&c, a] {
    return OnStore(c, [&c, a](store::EventStore& s) {
      return AuditVerifyHead(s, a->old_head, a->new_head, a->out, c.json);
    });
  });

  auto* exp = audit->add_subcommand(
      "export", "an archive of a party's events (or --all) with the head and proofs");
  cli.AddData(exp, true);
  exp->add_option("party", a->party, "party id (stream id)");
  exp->add_flag("--all", a->all, "the whole log instead of one party");
  exp->add_option("--out", a->out, "the archive; FILE.jsonl is written beside it")->required();
  cli.OnRun(exp, [&c, a] {
    if (a->all == !a->party.empty()) {
      return Fail(UsageError("give a PARTY or --all, not both and not neither"));
    }
    return OnStore(
        c, [&c, a](store::EventStore& s) { return AuditExport(s, a->party, a->out, c.json); });
  });

  auto* verify_export = audit->add_subcommand(
      "verify-export", "verify an archive of `ihs audit export`, without the store");
  verify_export->add_option("file", a->head_file, "the archive (packed or .jsonl)")->required();
  verify_export->add_option("--key", a->key, "the verifier key (`ihs audit pubkey`) you trust");
  verify_export->add_flag("--json", c.json, "print JSON");
  cli.OnRun(verify_export, [&c, a] {
    absl::Status r = AuditVerifyExport(a->head_file, a->key, c.json);  // needs no store
    return r.ok() ? kExitOk : Fail(r);
  });

  auto* verify_party =
      audit->add_subcommand("verify-party", "prove every event of one party against a head");
  cli.AddData(verify_party, true);
  verify_party->add_option("party", a->party, "party id (stream id)")->required();
  verify_party->add_option("--head", a->head_file, "a head from `ihs audit head`")->required();
  cli.OnRun(verify_party, [&c, a] {
    return OnStore(c, [&c, a](store::EventStore& s) {
      return AuditVerifyParty(s, a->party, a->head_file, c.json);
    });
  });
}

}  // namespace ihs::tools
