#include "store/cluster/cluster_store.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace ihs::cluster {

absl::Status NotInACluster(absl::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat(what,
                   " is not served by a node of a cluster yet: each partition is a log of "
                   "its own (docs/scale.md, \"ihsd in a cluster\")"));
}

absl::StatusOr<store::AppendResult> ClusterStore::Append(const store::StreamAppend& append) {
  return node_->Append(append);
}

absl::StatusOr<std::vector<store::AppendResult>> ClusterStore::AppendMulti(
    const std::vector<store::StreamAppend>& appends) {
  if (appends.size() != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "an append to ", appends.size(),
        " streams at once is refused in a cluster: its streams may be in different partitions, "
        "and each partition is a log of its own; append to each stream by itself"));
  }
  IHS_ASSIGN_OR_RETURN(store::AppendResult r, node_->Append(appends[0]));
  return std::vector<store::AppendResult>{std::move(r)};
}

absl::StatusOr<std::unique_ptr<store::PreparedAppends>> ClusterStore::PrepareAppends(
    const std::vector<store::StreamAppend>&) {
  return NotInACluster("a prepared append (ihs import)");
}

absl::StatusOr<std::vector<store::AppendResult>> ClusterStore::AppendPrepared(
    store::PreparedAppends&) {
  return NotInACluster("a prepared append (ihs import)");
}

absl::StatusOr<std::vector<store::StoredEvent>> ClusterStore::ReadStream(
    absl::string_view stream, uint64_t from_version, size_t max_count,
    store::ReadDirection direction, const store::ReadOptions&) {
  // A cluster's events hold no personal content (docs/scale.md): there is nothing to open.
  return node_->ReadStream(stream, from_version, max_count, direction);
}

absl::StatusOr<store::StreamInfo> ClusterStore::GetStreamInfo(absl::string_view stream) {
  return node_->GetStreamInfo(stream);
}

absl::StatusOr<store::StoreStats> ClusterStore::Stats() {
  store::StoreStats out;
  for (uint32_t p : node_->held()) {
    std::shared_ptr<PartitionReplica> r = node_->replica(p);
    if (r == nullptr) continue;  // moved meanwhile
    IHS_ASSIGN_OR_RETURN(store::StoreStats s, r->store().Stats());
    out.event_count += s.event_count;
    out.stream_count += s.stream_count;
    out.key_count += s.key_count;
    out.disk_bytes += s.disk_bytes;
    out.format_version = s.format_version;
    out.appends += s.appends;
    out.syncs += s.syncs;
    out.largest_group = std::max(out.largest_group, s.largest_group);
  }
  return out;
}

store::StoreMetrics ClusterStore::Metrics() {
  store::StoreMetrics out;
  for (uint32_t p : node_->held()) {
    std::shared_ptr<PartitionReplica> r = node_->replica(p);
    if (r == nullptr) continue;
    store::StoreMetrics m = r->store().Metrics();
    out.events += m.events;
    out.streams += m.streams;
    out.disk_bytes += m.disk_bytes;
    out.appends += m.appends;
    out.appended_events += m.appended_events;
    out.groups += m.groups;
    for (size_t i = 0; i < out.group_buckets.size(); ++i)
      out.group_buckets[i] += m.group_buckets[i];
    for (size_t i = 0; i < out.write_buckets.size(); ++i)
      out.write_buckets[i] += m.write_buckets[i];
    out.write_seconds += m.write_seconds;
  }
  return out;
}

absl::Status ClusterStore::Flush() {
  for (uint32_t p : node_->held()) {
    std::shared_ptr<PartitionReplica> r = node_->replica(p);
    if (r != nullptr) IHS_RETURN_IF_ERROR(r->store().Flush());
  }
  return absl::OkStatus();
}

uint64_t ClusterStore::WaitForCommit(uint64_t known_head, absl::Time deadline) {
  // No single log grows here: the wait lasts until the deadline (bounded, so that a caller that
  // waits without one still comes back to look at its own state).
  absl::SleepFor(std::min(deadline - absl::Now(), absl::Seconds(1)));
  return known_head;
}

absl::StatusOr<std::vector<store::StoredEvent>> ClusterStore::ReadAll(uint64_t, size_t,
                                                                      const store::ReadOptions&) {
  return NotInACluster("a read of the whole log");
}

absl::StatusOr<int64_t> ClusterStore::Watermark() { return NotInACluster("the log's watermark"); }

absl::StatusOr<std::optional<uint64_t>> ClusterStore::FindEvent(absl::string_view) {
  return NotInACluster("finding an event by its id");
}

}  // namespace ihs::cluster
