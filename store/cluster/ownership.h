// Which node holds which partition of a cluster (docs/scale.md, "Ownership").
//
// Each partition has a lease: the key `p.N` of the owners' bucket (Cluster::ReadLeases), whose
// value is the holder's node name (empty: free). The holder renews it by writing it again,
// checked on the revision it wrote last. Another node that sees a lease's revision stand still
// for a whole lease time, by its own clock (clocks of different machines are never compared),
// may take it with a write checked on that revision. Each node also keeps a presence, the key
// `node.NAME`, renewed the same way, by which the nodes count each other and share the
// partitions evenly: at most ceil(P / live nodes) each. A node that holds more gives the rest
// up; a free lease is taken at once.
//
// Holding a partition decides who serves it, never what it holds: every node that materialises
// a partition writes the same bytes (PartitionReplica). So a moment in which two nodes both
// believe they hold one costs work, not correctness. Such a moment can happen: nats-server 2.9
// checks a write's expected revision before replication, so two writes on one revision can both
// pass (nats-server issue 4320, as for appends); the one that is not the bucket's latest fails
// its next renewal and lets go.
//
//   IHS_ASSIGN_OR_RETURN(auto own, Ownership::Join(cluster.get(), {}));
//   while (running) {
//     IHS_ASSIGN_OR_RETURN(OwnershipRound r, own->Round());   // at least every lease / 3
//     ... open replicas of r.taken, close those of r.released and r.lost ...
//   }
//   own->Leave();   // hands every lease on at once
//
// Not thread-safe: one thread runs the rounds.
#ifndef IHS_STORE_CLUSTER_OWNERSHIP_H_
#define IHS_STORE_CLUSTER_OWNERSHIP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "store/cluster/cluster.h"

namespace ihs::cluster {

struct OwnershipOptions {
  // How long a lease or a presence may stand still before others count its holder gone.
  // Round() must run at least every lease / 3.
  absl::Duration lease = absl::Seconds(10);
  Clock* clock = nullptr;  // measures how long a lease stood still; default RealClock()
};

struct OwnershipRound {
  std::set<uint32_t> held;         // after the round
  std::vector<uint32_t> taken;     // new this round (free, given up, or left to expire)
  std::vector<uint32_t> released;  // given up, to share with nodes that came
  // Taken by another node, or not renewed within a lease: (partition, why).
  std::vector<std::pair<uint32_t, std::string>> lost;
  size_t live_nodes = 0;  // this one included
  size_t share = 0;       // the most this node holds: ceil(P / live_nodes)
};

class Ownership {
 public:
  // Enters this node's presence (the cluster's node name). A name a running node uses is
  // refused with kFailedPrecondition: an existing presence is watched for half a lease, and one
  // renewed meanwhile is a running node's. A node that restarts under its name keeps its
  // partitions: its earlier leases are its own.
  static absl::StatusOr<std::unique_ptr<Ownership>> Join(Cluster* cluster,
                                                         OwnershipOptions options);

  // Renews this node's presence and leases, gives up what is above its share, takes free and
  // expired leases up to it. An error leaves what is held as it was, except kFailedPrecondition:
  // another node took this node's name, and this one holds nothing any more.
  absl::StatusOr<OwnershipRound> Round();

  // Frees one lease this node holds (one it cannot serve), for another node to take.
  absl::Status Release(uint32_t partition);

  // Frees every lease and the presence, so that other nodes take the partitions at their next
  // round instead of after a lease.
  absl::Status Leave();

  const std::set<uint32_t>& held() const { return held_; }

 private:
  Ownership(Cluster* cluster, OwnershipOptions options);
  absl::Status Renew(const std::string& key, absl::string_view value, uint64_t* revision);

  struct Seen {
    uint64_t revision = 0;
    absl::Time since;  // when this node first saw that revision
  };

  Cluster* const cluster_;
  const OwnershipOptions options_;
  const std::string node_;
  std::string incarnation_;  // the presence's value: which start of the node holds the name
  uint64_t presence_revision_ = 0;
  std::set<uint32_t> held_;
  std::map<uint32_t, uint64_t> lease_revision_;  // of each held partition
  std::map<uint32_t, absl::Time> renewed_at_;    // by this node's clock
  std::map<std::string, Seen> seen_;             // every key, as last read
  absl::Status failed_;
};

// What the owners' bucket says now, for `ihs cluster status`.
struct PartitionOwner {
  uint32_t partition = 0;
  std::string node;       // empty: free
  absl::Time renewed_at;  // by the server's clock; InfinitePast when never held
};
struct NodePresence {
  std::string node;
  absl::Time renewed_at;  // by the server's clock
};
struct Owners {
  std::vector<PartitionOwner> partitions;  // one per partition, in order
  std::vector<NodePresence> nodes;         // present (not left), by name
};
absl::StatusOr<Owners> ReadOwners(Cluster& cluster);

// The keys of the owners' bucket.
std::string LeaseKey(uint32_t partition);         // "p.7"
std::string PresenceKey(absl::string_view node);  // "node.NAME"

}  // namespace ihs::cluster

#endif  // IHS_STORE_CLUSTER_OWNERSHIP_H_
