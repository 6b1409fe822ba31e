// ihs cluster status: a NATS JetStream cluster of ihs (docs/scale.md) as JetStream sees it, and
// which node holds which partition.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "store/cluster/cluster.h"
#include "store/cluster/ownership.h"
#include "tools/ihs/cli.h"

namespace ihs::tools {
namespace {

struct ClusterArgs {
  std::string nats;
  int timeout_seconds = 5;
};

int ClusterStatus(const Common& c, const ClusterArgs& a) {
  cluster::ClusterOptions o;
  o.servers = absl::StrSplit(a.nats, ',', absl::SkipEmpty());
  o.node = "ihs-cli";
  o.timeout = absl::Seconds(a.timeout_seconds);
  absl::StatusOr<std::unique_ptr<cluster::Cluster>> cl = cluster::Cluster::Connect(o);
  if (!cl.ok()) {
    // No server, or no cluster of ihs there: nothing to show (exit 5); bad addresses: exit 2.
    if (cl.status().code() == absl::StatusCode::kInvalidArgument) return Fail(cl.status());
    return Fail(absl::UnavailableError(cl.status().message()));
  }
  const cluster::Config& config = (*cl)->config();
  std::vector<cluster::PartitionStatus> parts;
  for (uint32_t p = 0; p < config.partitions; ++p) {
    absl::StatusOr<cluster::PartitionStatus> st = (*cl)->Describe(p);
    if (!st.ok()) return Fail(absl::UnavailableError(st.status().message()));
    parts.push_back(*std::move(st));
  }
  absl::StatusOr<cluster::Owners> owners = cluster::ReadOwners(**cl);
  if (!owners.ok()) return Fail(absl::UnavailableError(owners.status().message()));
  auto rfc3339 = [](absl::Time t) {
    return t == absl::InfinitePast()
               ? std::string()
               : absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
  };
  const std::string created = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(config.created_at), absl::UTCTimeZone());
  if (c.json) {
    nlohmann::json j = {{"partitions", config.partitions},
                        {"replicas", config.replicas},
                        {"createdAt", created},
                        {"createdBy", config.created_by},
                        {"nodes", nlohmann::json::array()},
                        {"logs", nlohmann::json::array()}};
    for (const auto& n : owners->nodes) {
      j["nodes"].push_back({{"node", n.node}, {"renewedAt", rfc3339(n.renewed_at)}});
    }
    for (const auto& p : parts) {
      nlohmann::json peers = nlohmann::json::array();
      for (const auto& r : p.replicas) {
        peers.push_back(
            {{"server", r.server}, {"current", r.current}, {"offline", r.offline}, {"lag", r.lag}});
      }
      j["logs"].push_back(
          {{"partition", p.partition},
           {"stream", cluster::Cluster::PartitionStreamName(p.partition)},
           {"messages", p.messages},
           {"bytes", p.bytes},
           {"lastSequence", p.last_sequence},
           {"leader", p.leader},
           {"replicas", peers},
           {"owner", owners->partitions[p.partition].node},
           {"ownerRenewedAt", rfc3339(owners->partitions[p.partition].renewed_at)}});
    }
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  absl::PrintF("cluster of %d partitions, %d replicas each, created %s by %s\n", config.partitions,
               config.replicas, created, config.created_by);
  std::vector<std::string> nodes;
  for (const auto& n : owners->nodes) nodes.push_back(n.node);
  absl::PrintF("nodes: %s\n", nodes.empty() ? "(none)" : absl::StrJoin(nodes, ", "));
  absl::PrintF("%-9s %-10s %-12s %12s %14s  %-10s %s\n", "partition", "log", "owner", "messages",
               "bytes", "leader", "replicas (lag)");
  for (const auto& p : parts) {
    std::vector<std::string> peers;
    for (const auto& r : p.replicas) {
      peers.push_back(r.offline   ? absl::StrCat(r.server, " offline")
                      : r.current ? absl::StrCat(r.server, " current")
                                  : absl::StrCat(r.server, " (", r.lag, ")"));
    }
    const std::string& owner = owners->partitions[p.partition].node;
    absl::PrintF("%-9d %-10s %-12s %12d %14d  %-10s %s\n", p.partition,
                 cluster::Cluster::PartitionStreamName(p.partition),
                 owner.empty() ? "(none)" : owner, p.messages, p.bytes,
                 p.leader.empty() ? "(none)" : p.leader, absl::StrJoin(peers, ", "));
  }
  return kExitOk;
}

}  // namespace

void RegisterClusterCommands(Cli& cli) {
  Common& common = cli.common();
  auto args = std::make_shared<ClusterArgs>();
  auto* group = cli.Group("cluster", "a cluster of ihs nodes on NATS JetStream (docs/scale.md)");
  auto* status = group->add_subcommand(
      "status",
      "the cluster's nodes and partitions: owner, messages, bytes, leader and replicas of each "
      "log");
  status->add_option("--nats", args->nats, "NATS servers of the cluster, nats://HOST:PORT[,...]")
      ->required();
  status->add_option("--timeout", args->timeout_seconds, "seconds to wait for the servers")
      ->check(CLI::Range(1, 600));
  status->add_flag("--json", common.json, "print one JSON object");
  cli.OnRun(status, [&common, args] { return ClusterStatus(common, *args); });
}

}  // namespace ihs::tools
