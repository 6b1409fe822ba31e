// What an auditor asks of a store (docs/audit.md): the RFC 9162 tree over its log (roots, signed
// heads, inclusion and consistency proofs), a check of every stored byte, and proofs of one
// party's events or of the log's size at a moment against a head the auditor kept. The head's
// signature and root are the caller's to check first (tlog::OpenHead, Root).
//
// The tree functions are kFailedPrecondition when the store has no signing key (a read-only open
// of a store never opened for writing by a version that makes one) and kUnimplemented for a log
// that keeps no tree of its own.
#ifndef IHS_STORE_AUDIT_H_
#define IHS_STORE_AUDIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/event_store.h"
#include "store/tlog.h"

namespace ihs::store {

// The RFC 9162 Merkle tree hash over the first `size` events (32 bytes); O(log size) reads.
// kOutOfRange if size > Head().
absl::StatusOr<std::string> Root(EventStore& store, uint64_t size);

// The key that checks this store's heads.
absl::StatusOr<tlog::VerifierKey> VerifierKey(EventStore& store);
// A signed tree head (tlog::SignHead) of the log as it is now, timed by Options::clock.
absl::StatusOr<std::string> SignedHead(EventStore& store);

// The RFC 9162 audit path of leaf `index` in the tree of the first `size` events, leaf to root:
// O(log size) hashes, read in one batch. kOutOfRange unless index < size <= Head().
absl::StatusOr<std::vector<tlog::Hash>> InclusionProof(EventStore& store, uint64_t index,
                                                       uint64_t size);
// The audit paths of several leaves in the same tree, in the order of `indices`: the nodes they
// share are read once, all in one batch (what VerifyParty needs).
absl::StatusOr<std::vector<std::vector<tlog::Hash>>> InclusionProofs(
    EventStore& store, const std::vector<uint64_t>& indices, uint64_t size);
// The RFC 9162 proof that the tree of `new_size` events extends the tree of `old_size`.
// kOutOfRange unless old_size <= new_size <= Head().
absl::StatusOr<std::vector<tlog::Hash>> ConsistencyProof(EventStore& store, uint64_t old_size,
                                                         uint64_t new_size);

struct VerifyReport {
  uint64_t events_checked = 0;
  std::string root_hash;  // recomputed root over the events checked
};

// Recomputes every leaf hash from the stored bytes and every stored subtree, and checks the
// stream index. kDataLoss names the first position whose bytes no longer match.
absl::StatusOr<VerifyReport> Verify(EventStore& store, const ProgressFn& progress = nullptr);

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
