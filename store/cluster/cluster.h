// The log of a cluster of ihs nodes, partitioned by party, on NATS JetStream (DESIGN.md decision
// 8, docs/scale.md). This is the part every node shares: the cluster's configuration, fixed when
// the cluster is created and kept in the cluster itself; which partition a stream belongs to; the
// publication of an append to its partition's log (one JetStream message, replicated before it
// is acknowledged); and reading a partition's log in order, which is what a node materialises
// into its RocksDB.
//
//   ClusterOptions o;
//   o.servers = {"nats://127.0.0.1:4222"};
//   o.partitions = 16;                       // 0: join a cluster that exists
//   IHS_ASSIGN_OR_RETURN(auto cluster, Cluster::Connect(o));
//   IHS_ASSIGN_OR_RETURN(Published p, cluster->Publish(append));
//
// Thread-safe: one connection, shared by every caller (nats.c serialises on it).
#ifndef IHS_STORE_CLUSTER_CLUSTER_H_
#define IHS_STORE_CLUSTER_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "schema/cluster.capnp.h"
#include "store/types.h"

namespace ihs::cluster {

// The partition of a stream among `partitions`: the first 8 bytes of SHA-256(stream id), read
// big-endian, modulo `partitions`. Fixed for ever (docs/scale.md): every node and every version
// must agree, so it depends on nothing but the id's bytes.
uint32_t PartitionOf(absl::string_view stream, uint32_t partitions);

inline constexpr uint32_t kMaxPartitions = 4096;

struct ClusterOptions {
  std::vector<std::string> servers;  // nats://HOST:PORT, any of the cluster's servers
  // The partition count to create the cluster with; 0 joins a cluster that exists. A count that
  // differs from the cluster's is refused.
  uint32_t partitions = 0;
  int replicas = 3;  // JetStream replicas of each partition's log, when creating (1-5)
  std::string node;  // this node's name ([A-Za-z0-9_-]{1,64})
  absl::Duration timeout = absl::Seconds(5);  // to connect, and for each JetStream request
  Clock* clock = nullptr;                     // acceptedAt comes from here; default RealClock()
};

struct Config {
  uint32_t partitions = 0;
  int replicas = 0;
  int64_t created_at = 0;  // µs since the epoch
  std::string created_by;
};

// What the partition's log acknowledged for one append.
struct Published {
  uint32_t partition = 0;
  uint64_t sequence = 0;   // the message's sequence in the partition's log (1, 2, ...)
  bool duplicate = false;  // JetStream had it already (the same append retried in its window)
};

// A partition's log as JetStream reports it (`ihs cluster status`).
struct PartitionStatus {
  uint32_t partition = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t last_sequence = 0;
  std::string leader;  // the server that orders its messages; empty while none is elected
  struct Replica {
    std::string server;
    bool current = false;  // has every message the leader has
    bool offline = false;
    uint64_t lag = 0;  // messages behind the leader
  };
  std::vector<Replica> replicas;  // the others (the leader is not listed)
};

// A key of the owners' bucket (`IHS_OWNERS`, docs/scale.md "Ownership") as it is now.
struct LeaseEntry {
  std::string key;
  std::string value;
  uint64_t revision = 0;  // changes with every write
  absl::Time written_at;  // by the clock of the server that stored it
};

// One message of a partition's log.
struct PartitionMessage {
  uint64_t sequence = 0;
  std::string subject;
  std::string data;  // a schema::PartitionAppend, unpacked Cap'n Proto with its segment table
};

// Follows one partition's log in order from a sequence, through a JetStream ordered consumer
// (pushed in batches, flow-controlled, re-created by the client on a gap), so that reading costs
// no request per message. Not thread-safe: one reader per follower.
class PartitionReader {
 public:
  virtual ~PartitionReader() = default;
  // Up to max_count messages in order, the first at the sequence after the last returned; waits
  // up to `wait` for the first, and returns none when none came.
  virtual absl::StatusOr<std::vector<PartitionMessage>> Next(size_t max_count,
                                                             absl::Duration wait) = 0;
};

// Answers requests on a subject until it is destroyed (Cluster::Serve).
class Service {
 public:
  virtual ~Service() = default;  // stops taking requests, and waits for the one being answered
};
using RequestHandler = std::function<std::string(absl::string_view request)>;

class Cluster {
 public:
  // Connects to the servers, then creates the cluster (options.partitions > 0 and none exists)
  // or joins it. Errors: kUnavailable when no server answers within the timeout or JetStream is
  // not enabled; kFailedPrecondition when the partition count differs from the cluster's, or
  // there is no cluster to join; kInvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<Cluster>> Connect(const ClusterOptions& options);
  virtual ~Cluster() = default;

  virtual const Config& config() const = 0;
  virtual const std::string& node() const = 0;  // this node's name (ClusterOptions::node)

  // The name of a partition's JetStream stream ("IHS_P0007") and a stream's subject in it.
  static std::string PartitionStreamName(uint32_t partition);
  static std::string SubjectOf(absl::string_view stream, uint32_t partition);

  // Publishes an append to the log of its stream's partition, as one message, and returns once
  // JetStream has acknowledged it (a quorum of the replicas has it). `last_subject_sequence`,
  // when set, asks JetStream to refuse the message unless the last message of this stream in
  // the partition is that one (0: none); a refusal is kAborted. This is only a first check:
  // nats-server 2.9 does it before replication, so two concurrent publishes may both pass
  // (nats-server issue 4320); the materialising node decides (docs/scale.md, "Expected
  // versions"). The message id is derived from the append's events, so a retry within
  // JetStream's de-duplication window is not stored twice (`duplicate`).
  //
  // Personal content is refused for now (schema/cluster.capnp): kFailedPrecondition.
  virtual absl::StatusOr<Published> Publish(const store::StreamAppend& append,
                                            std::optional<uint64_t> last_subject_sequence = {}) = 0;

  // Up to max_count messages of a partition's log from `from_sequence` (1 is the first), in
  // order; fewer at the end of the log.
  virtual absl::StatusOr<std::vector<PartitionMessage>> Read(uint32_t partition,
                                                             uint64_t from_sequence,
                                                             size_t max_count) = 0;

  // A reader of a partition's log from `from_sequence` (1 is the first).
  virtual absl::StatusOr<std::unique_ptr<PartitionReader>> Follow(uint32_t partition,
                                                                  uint64_t from_sequence) = 0;

  virtual absl::StatusOr<PartitionStatus> Describe(uint32_t partition) = 0;

  // The sequence of the last message in a partition's log (0: empty).
  virtual absl::StatusOr<uint64_t> LastSequence(uint32_t partition) = 0;

  // The owners' bucket (`IHS_OWNERS`): every key with what it holds now (read through a watcher
  // kept open, up to the bucket's last revision when the call began). Ownership
  // (store/cluster/ownership.h) keeps its leases there.
  virtual absl::StatusOr<std::vector<LeaseEntry>> ReadLeases() = 0;
  // Writes `value` to `key` if the key's revision is still `revision` (0: the key must not
  // exist); returns the new revision. kAborted when another write came first.
  virtual absl::StatusOr<uint64_t> WriteLease(const std::string& key, absl::string_view value,
                                              uint64_t revision) = 0;

  // Requests between nodes, over core NATS (nothing is stored). Serve answers requests on
  // `subject` with `handler`, one at a time, on a thread of the client's, until the Service is
  // destroyed. Request sends one and waits for the answer: kUnavailable when nobody serves the
  // subject for `timeout` (asked again meanwhile: a partition may be moving between nodes),
  // kDeadlineExceeded when nobody answered in time.
  virtual absl::StatusOr<std::unique_ptr<Service>> Serve(const std::string& subject,
                                                         RequestHandler handler) = 0;
  virtual absl::StatusOr<std::string> Request(const std::string& subject, absl::string_view request,
                                              absl::Duration timeout) = 0;
};

}  // namespace ihs::cluster

#endif  // IHS_STORE_CLUSTER_CLUSTER_H_
