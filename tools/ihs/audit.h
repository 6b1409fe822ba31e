// ihs audit: signed tree heads and proofs for auditors (docs/audit.md). Each command prints what
// it found, text or --json, and returns a status whose code main.cc maps to an exit code:
// kInvalidArgument (2) for an input that cannot be read, kDataLoss (4) for anything that does
// not verify.
#ifndef IHS_TOOLS_IHS_AUDIT_H_
#define IHS_TOOLS_IHS_AUDIT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/event_store.h"
#include "store/tlog.h"

namespace ihs::tools {

// A file the user named, whole; kInvalidArgument (naming `what` and the path) if unreadable.
absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what);
// A head file in either form `ihs audit head` writes: the signed note itself, or the JSON line
// whose "note" holds it. kInvalidArgument for a JSON line without a note.
absl::StatusOr<std::string> ReadHead(const std::string& path);
// A hash as 64 lowercase hex digits.
std::string HashHex(const tlog::Hash& h);

// The verifier key: NAME+KEYID+KEY (golang.org/x/mod/sumdb/note's format).
absl::Status AuditPubkey(store::EventStore& store, bool json);
// A signed tree head of the log as it is now; with `out`, also written to that file.
absl::Status AuditHead(store::EventStore& store, const std::string& out, bool json);
// The inclusion proof of one event against a head the auditor kept; with `out`, the proof file
// (store/tlog.h) that tools/ihs-verify checks without the store.
absl::Status AuditProveEvent(store::EventStore& store, uint64_t position,
                             const std::string& head_file, const std::string& out, bool json);
// Whether the log of `new_file`'s head extends `old_file`'s unchanged.
absl::Status AuditVerifyHead(store::EventStore& store, const std::string& old_file,
                             const std::string& new_file, const std::string& out, bool json);
// Proves every event of one party against a head, reading only that party's events.
absl::Status AuditVerifyParty(store::EventStore& store, const std::string& party,
                              const std::string& head_file, bool json);

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_AUDIT_H_
