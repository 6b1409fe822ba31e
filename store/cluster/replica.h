// A node's copy of one partition: the partition's log (cluster.h) applied in sequence order to
// an EventStore of its own, in the single-node format (docs/format.md), so that positions, the
// Merkle tree and signed heads are per partition. Every node that holds the partition applies the
// same messages in the same order through the store's own write path, and nothing it writes
// depends on the node: recordedAt is the message's acceptedAt (raised to the last one's, as the
// store does), content comes sealed in the message, and whether an append is applied or refused
// (expected version, idempotency, the store's checks) is decided by what was applied before. So
// two replicas of a partition hold the same bytes and the same root at every size
// (docs/scale.md, "Materialisation").
//
// The verdict on a message is what an accepting node answers its client with: the append's
// positions, or why it was refused. Of two appends that expect one version, the one JetStream
// ordered first is applied and the other refused, on every node alike, whatever nats-server's
// own check let through.
//
// Thread-safe. The replica's store must not be written by anything else; it serves reads.
#ifndef IHS_STORE_CLUSTER_REPLICA_H_
#define IHS_STORE_CLUSTER_REPLICA_H_

#include <capnp/serialize.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "store/cluster/cluster.h"
#include "store/event_store.h"

namespace ihs::cluster {

// What became of one message of a partition's log.
struct Verdict {
  uint64_t sequence = 0;
  // OK: applied, or the exact repeat of an applied append (result.duplicate). Otherwise why it
  // was refused: kAborted for a wrong expected version (store::ConflictCurrentVersion reads the
  // stream's version from it), kAlreadyExists, kInvalidArgument, kFailedPrecondition as the
  // store's append says.
  absl::Status status;
  store::AppendResult result;
};

class PartitionReplica {
 public:
  // Opens (creating) the store of `partition` in `dir` and reads how far it has applied.
  // `cluster` must outlive the replica.
  static absl::StatusOr<std::unique_ptr<PartitionReplica>> Open(Cluster* cluster,
                                                                uint32_t partition,
                                                                const std::string& dir);
  ~PartitionReplica();

  // Applies the partition's messages after the last applied, up to `through` (0: as many as the
  // log holds now), waiting up to 10 s for each batch to arrive. Returns the last sequence
  // applied. A store failure that is not a verdict
  // (I/O, corruption) stops here with that error; the message is applied again next time.
  absl::StatusOr<uint64_t> CatchUp(uint64_t through = 0);

  // The verdict on message `sequence`, applying the log up to it first. kNotFound when the log
  // does not hold it (yet). The verdicts of the last kVerdictsKept messages this replica applied
  // are kept as they were given; an older one (or one applied before the replica was opened:
  // after a restart, or by a node that held the partition before) is recomputed from the log
  // and the store: the positions and versions of its events for an applied append (or for a
  // refused one whose events a later append stored, as the store answers a repeat); for a refused
  // one the same refusal when the message's own checks fail, else a version conflict if the
  // expectation does not hold now, else kFailedPrecondition saying that why is not known.
  absl::StatusOr<Verdict> VerdictOf(uint64_t sequence);

  // Applies the log as it grows, on a thread of the replica's, until the replica is destroyed.
  // From then on CatchUp and VerdictOf wait (up to 10 s) for that thread instead of reading the
  // log themselves. A failure to read the log is retried; a store failure that is not a verdict
  // stops the replica (CatchUp and VerdictOf return it).
  void StartFollowing();

  uint64_t applied() const;
  uint32_t partition() const { return partition_; }
  store::EventStore& store() { return *store_; }

  static constexpr size_t kVerdictsKept = 1 << 16;

 private:
  PartitionReplica(Cluster* cluster, uint32_t partition, std::string dir);
  // A message decoded into the append it asks for; its bytes and reader, which the append
  // points into.
  struct Decoded {
    kj::Array<capnp::word> words;
    std::unique_ptr<capnp::FlatArrayMessageReader> reader;
    store::EventStore::OrderedAppend append;
  };
  // The refusal of a message that cannot be an append of this partition (kInvalidArgument), or
  // OK with `out` filled.
  absl::Status Decode(const PartitionMessage& m, Decoded* out) const;
  // The verdict on a message applied before this replica was opened, from the log and the
  // store: the positions and versions of its events if they are stored; else the refusal as the
  // checks that do not depend on the log's state give it, or a version conflict if the
  // expectation does not hold now, or kFailedPrecondition (refused, why no longer known).
  absl::StatusOr<Verdict> RecomputedVerdict(uint64_t sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a batch of consecutive messages in one write; their verdicts in order.
  absl::StatusOr<std::vector<Verdict>> ApplyBatch(const std::vector<PartitionMessage>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveApplied() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<uint64_t> CatchUpLocked(uint64_t through) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a batch that follows applied_, keeps its verdicts, syncs and saves how far it got.
  absl::Status ApplyAndKeepLocked(const std::vector<PartitionMessage>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for the follower to apply `sequence` (or fail); false when 10 s passed first.
  bool AwaitApplied(uint64_t sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Follow();

  Cluster* const cluster_;
  const uint32_t partition_;
  const std::string dir_;
  std::unique_ptr<store::EventStore> store_;
  mutable absl::Mutex mu_;
  // Follows the log from applied_ + 1; reset when that no longer holds (a failed apply).
  std::unique_ptr<PartitionReader> reader_ ABSL_GUARDED_BY(mu_);
  // Set when the store failed in a way a retry cannot mend: the replica takes no more messages.
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, Verdict> verdicts_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> verdict_order_ ABSL_GUARDED_BY(mu_);
  bool following_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_{false};
  std::thread follower_;
};

// An append as a node of the cluster makes it: published to the partition's log, then answered
// with the verdict of `replica`, which must be of the append's partition. What the client gets
// is what every node decides: the positions, or the refusal (a wrong expected version is
// kAborted). A publish that JetStream did not acknowledge is its error (docs/scale.md).
absl::StatusOr<store::AppendResult> AppendThrough(Cluster& cluster, PartitionReplica& replica,
                                                  const store::StreamAppend& append);

}  // namespace ihs::cluster

#endif  // IHS_STORE_CLUSTER_REPLICA_H_
