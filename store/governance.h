// What governs the content of the log rather than its order: erasure, legal holds and retention
// (docs/audit.md). Each is admin's, and each leaves an event on the log, so that the trail shows
// who did what and why; the events, their hashes and the tree stay.
#ifndef IHS_STORE_GOVERNANCE_H_
#define IHS_STORE_GOVERNANCE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ihs::store {

class EventStore;
class RetentionPolicy;  // store/retention.h

// Erases the party's personal content without rewriting history: appends an erasureRequest
// event (an event a plain Append refuses to carry) and deletes the party's data key in the same
// atomic write; then flushes and compacts so that the key's bytes leave RocksDB's files. Reads
// return the content as kErased; the party's later events may not carry content. Returns the
// erasure event's position. Errors, with nothing changed:
//   kInvalidArgument    an empty reason or requested_by
//   kNotFound           no such party
//   kFailedPrecondition the party is under legal hold, or was erased already (the message names
//                       the position)
// If the write landed but the compaction failed, kUnavailable says so: the erasure stands, and
// the key's bytes leave the files with RocksDB's next compaction of them.
absl::StatusOr<uint64_t> Erase(EventStore& store, absl::string_view party, absl::string_view reason,
                               absl::string_view requested_by);

// Erases several parties at once, the streams of one person (docs/identity.md): one erasureRequest
// per party, all in one atomic append, and their data keys deleted in the same write. Either all
// are erased or none: one party unknown, held or erased already refuses them all, with the errors
// of Erase (the message names the party). The parties must differ. Returns the positions, in the
// order given.
absl::StatusOr<std::vector<uint64_t>> EraseAll(EventStore& store,
                                               const std::vector<std::string>& parties,
                                               absl::string_view reason,
                                               absl::string_view requested_by);

// Places a legal hold on the party (or with `lift`, lifts the one in force): a legalHold event.
// While held, Erase (and retention) refuse the party. Returns the event's position.
//   kInvalidArgument an empty reason or requested_by; kNotFound no such party;
//   kFailedPrecondition already held, not held (lift), or erased.
absl::StatusOr<uint64_t> SetLegalHold(EventStore& store, absl::string_view party, bool lift,
                                      absl::string_view reason, absl::string_view requested_by);

// The system stream of retention runs' events.
inline constexpr char kRetentionStream[] = "$retention";

struct RetentionReport {
  uint64_t parties = 0;                  // whose content expired
  uint64_t classes = 0;                  // data keys deleted (or, in a dry run, to delete)
  std::vector<std::string> held;         // parties with expired content, left alone: under hold
  std::optional<uint64_t> run_position;  // the retentionRun event (none in a dry run)
};

// Applies a retention policy (store/retention.h) as of `now`: for every party, the data keys of
// the classes and years whose content has expired are deleted, with a contentExpiry event on the
// party's stream in the same write; parties under legal hold are left alone and named. Then a
// retentionRun event on "$retention" records the run, and a compaction removes the keys' bytes.
// `dry_run` reports what would expire and changes nothing. Content of an expired class and year
// cannot be appended again (kFailedPrecondition), so no key is ever reused.
absl::StatusOr<RetentionReport> RunRetention(EventStore& store, const RetentionPolicy& policy,
                                             absl::Time now, absl::string_view requested_by,
                                             bool dry_run);

}  // namespace ihs::store

#endif  // IHS_STORE_GOVERNANCE_H_
