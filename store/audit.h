// What an auditor runs against a store with a head it kept (docs/audit.md). The head's signature
// and root are the caller's to check first (tlog::OpenHead, EventStore::Root); these functions
// then prove the store's contents against it.
#ifndef IHS_STORE_AUDIT_H_
#define IHS_STORE_AUDIT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/event_store.h"
#include "store/tlog.h"

namespace ihs::store {

struct PartyAudit {
  uint64_t verified = 0;    // events proved to be in the head's tree
  uint64_t after_head = 0;  // events appended after the head: not covered by it
};

// Proves every event of `party` below head.size to be in the head's tree: the leaf hash of its
// stored bytes and its RFC 9162 audit path give head.root. Reads only the party's events and the
// tree nodes on their paths, never the rest of the log. kNotFound: no such party; kDataLoss
// names the first position that does not verify.
absl::StatusOr<PartyAudit> VerifyParty(EventStore& store, absl::string_view party,
                                       const tlog::TreeHead& head,
                                       const ProgressFn& progress = nullptr);

// The log's size as of a moment: how many events were recorded at or before `micros` (µs since
// the epoch). recordedAt never decreases along the log, so these are the first events, and the
// answer is found by a binary search of O(log N) reads.
absl::StatusOr<uint64_t> LogSizeAt(EventStore& store, int64_t micros);

}  // namespace ihs::store

#endif  // IHS_STORE_AUDIT_H_
