// A cluster node seen as an EventStore, so that ihsd serves it over Cap'n Proto RPC as it serves
// its embedded store (`ihsd --cluster`, docs/scale.md "ihsd in a cluster"). What a cluster
// answers per stream is here: appends to one stream, stream reads and stream information, each
// from the holder of the stream's partition (node.h). What needs the single log of one node (a
// read or subscription of the whole log, its Merkle tree and proofs, projections, governance) is
// not, yet: those calls answer kUnimplemented and say so; Head() is 0, the size of a log this
// node does not have. Positions in results are the stream's partition's.
#ifndef IHS_STORE_CLUSTER_CLUSTER_STORE_H_
#define IHS_STORE_CLUSTER_CLUSTER_STORE_H_

#include <memory>
#include <vector>

#include "store/cluster/node.h"
#include "store/event_store.h"

namespace ihs::cluster {

class ClusterStore final : public store::EventStore {
 public:
  explicit ClusterStore(std::unique_ptr<ClusterNode> node) : node_(std::move(node)) {}

  ClusterNode& node() { return *node_; }

  absl::StatusOr<store::AppendResult> Append(const store::StreamAppend& append) override;
  // One append only: an atomic append across streams would span partitions (docs/scale.md).
  absl::StatusOr<std::vector<store::AppendResult>> AppendMulti(
      const std::vector<store::StreamAppend>& appends) override;
  absl::StatusOr<std::unique_ptr<store::PreparedAppends>> PrepareAppends(
      const std::vector<store::StreamAppend>& appends) override;
  absl::StatusOr<std::vector<store::AppendResult>> AppendPrepared(
      store::PreparedAppends& prepared) override;
  absl::StatusOr<std::vector<store::StoredEvent>> ReadStream(
      absl::string_view stream, uint64_t from_version, size_t max_count,
      store::ReadDirection direction, const store::ReadOptions& options) override;
  absl::StatusOr<store::StreamInfo> GetStreamInfo(absl::string_view stream) override;
  // Over the partitions held here.
  absl::StatusOr<store::StoreStats> Stats() override;
  store::StoreMetrics Metrics() override;
  absl::Status Flush() override;

  uint64_t Head() override { return 0; }
  uint64_t WaitForCommit(uint64_t known_head, absl::Time deadline) override;
  absl::StatusOr<std::vector<store::StoredEvent>> ReadAll(
      uint64_t from_position, size_t max_count, const store::ReadOptions& options) override;
  absl::StatusOr<int64_t> Watermark() override;
  absl::StatusOr<std::optional<uint64_t>> FindEvent(absl::string_view event_id) override;

 private:
  std::unique_ptr<ClusterNode> node_;
};

// The error of what a cluster does not do yet: kUnimplemented, naming it.
absl::Status NotInACluster(absl::string_view what);

}  // namespace ihs::cluster

#endif  // IHS_STORE_CLUSTER_CLUSTER_STORE_H_
