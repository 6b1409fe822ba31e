// ihs audit export and verify-export: a self-describing archive of a party's events, or of the
// whole log, with the signed head and the proofs that verify it offline (schema/export.capnp,
// docs/audit.md "Export"). Statuses as in audit.h: kInvalidArgument (2) for an input that cannot
// be used, kDataLoss (4) for an archive that does not verify.
#ifndef IHS_TOOLS_IHS_EXPORT_H_
#define IHS_TOOLS_IHS_EXPORT_H_

#include <string>

#include "absl/status/status.h"
#include "store/event_store.h"

namespace ihs::tools {

// Writes `out` (a Cap'n Proto packed stream of ExportRecord) and `out`.jsonl (the same records
// as JSON Lines), each through a temporary file renamed into place. `party` empty: the whole
// log. Progress on a terminal unless `json`; then one JSON object with what was written.
absl::Status AuditExport(store::EventStore& store, const std::string& party, const std::string& out,
                         bool json);

// Verifies an archive in either form, without the store. `key_file` holds the verifier key
// (`ihs audit pubkey`); empty: the key the archive names, which proves the archive is intact
// and consistent, but not who made it (the output says so).
absl::Status AuditVerifyExport(const std::string& file, const std::string& key_file, bool json);

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_EXPORT_H_
