// One ihs node of a cluster (docs/scale.md): it takes part in the ownership of partitions
// (ownership.h), keeps a replica of each partition it holds, following its log as it grows
// (replica.h), and answers appends and reads for any partition: itself for those it holds, and
// by asking the holder for the others ("Forwarding" in docs/scale.md), over core NATS requests
// on `ihs.serve.pN`, to which only the holder of partition N subscribes.
//
//   NodeOptions o;
//   o.cluster.servers = {"nats://127.0.0.1:4222"};
//   o.cluster.node = "node-a";
//   o.dir = "/var/lib/ihs";                       // a replica per partition held: DIR/p0007/
//   IHS_ASSIGN_OR_RETURN(auto node, ClusterNode::Start(o));
//   IHS_ASSIGN_OR_RETURN(store::AppendResult r, node->Append(append));
//
// An append is published by the node that takes it, and answered with the verdict of the
// partition's holder on that message, so any node's answer is the cluster's. Thread-safe.
#ifndef IHS_STORE_CLUSTER_NODE_H_
#define IHS_STORE_CLUSTER_NODE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "store/cluster/cluster.h"
#include "store/cluster/ownership.h"
#include "store/cluster/replica.h"
#include "store/stored_event.h"
#include "store/types.h"

namespace ihs::cluster {

struct NodeOptions {
  ClusterOptions cluster;  // the servers, the node's name, P when creating the cluster
  std::string dir;         // holds a replica per partition held here: DIR/p0007/
  absl::Duration lease = absl::Seconds(10);  // OwnershipOptions::lease
  LogSink* log = nullptr;                    // what an operator should know; default stderr
};

class ClusterNode {
 public:
  // Connects, joins the ownership of partitions, takes its share, and serves the partitions it
  // holds. Errors as Cluster::Connect and Ownership::Join, and kInvalidArgument for a `dir` it
  // cannot make.
  static absl::StatusOr<std::unique_ptr<ClusterNode>> Start(NodeOptions options);
  ~ClusterNode();  // Stop()

  // Stops serving and following. `leave` frees this node's leases at once, so other nodes take
  // its partitions at their next round; without it they wait a lease, as after a crash.
  void Stop(bool leave = true);

  // An append to a stream of any partition: published, then answered with the verdict of the
  // partition's holder (docs/scale.md, "Appends"). Errors as Cluster::Publish and the store's
  // append (a wrong expected version is kAborted, with the current version); kUnavailable when
  // no node held the partition within the timeout.
  absl::StatusOr<store::AppendResult> Append(const store::StreamAppend& append);

  // Reads and stream information, from the holder of the stream's partition. Positions are the
  // partition's.
  absl::StatusOr<std::vector<store::StoredEvent>> ReadStream(absl::string_view stream,
                                                             uint64_t from_version,
                                                             size_t max_count,
                                                             store::ReadDirection direction);
  absl::StatusOr<store::StreamInfo> GetStreamInfo(absl::string_view stream);

  Cluster& cluster() { return *cluster_; }
  std::set<uint32_t> held() const;
  // The replica of a partition held here; nullptr when it is not held here.
  std::shared_ptr<PartitionReplica> replica(uint32_t partition) const;

  static std::string ServeSubject(uint32_t partition);  // "ihs.serve.p7"

 private:
  struct Held {
    std::shared_ptr<PartitionReplica> replica;
    std::unique_ptr<Service> service;
  };

  ClusterNode(NodeOptions options, std::unique_ptr<Cluster> cluster);
  void RunRounds();
  void ApplyRound(const OwnershipRound& round);
  absl::Status Hold(uint32_t partition);
  void Drop(uint32_t partition, absl::string_view why);
  // The answer to a forwarded request about `partition` (a ForwardReply).
  std::string Answer(uint32_t partition, absl::string_view request);
  // Asks the holder of `partition`, or this node when it holds it; retried while the partition
  // moves, within the timeout. The reply's bytes.
  absl::StatusOr<std::string> Ask(uint32_t partition, const std::string& request);

  const NodeOptions options_;
  LogSink* const log_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Ownership> ownership_;  // used by the rounds' thread only, after Start
  mutable absl::Mutex mu_;
  std::map<uint32_t, Held> held_ ABSL_GUARDED_BY(mu_);
  // Every replica opened, while anything still uses it: a partition dropped and taken again
  // while a call still waited on its replica gets that replica back (its store is open, and
  // locked, until the last user lets go).
  std::map<uint32_t, std::weak_ptr<PartitionReplica>> opened_ ABSL_GUARDED_BY(mu_);
  absl::Notification stopping_;
  std::atomic<bool> stopped_{false};
  std::thread rounds_;
};

}  // namespace ihs::cluster

#endif  // IHS_STORE_CLUSTER_NODE_H_
