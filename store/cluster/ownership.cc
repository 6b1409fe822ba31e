#include "store/cluster/ownership.h"

#include <sodium.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ihs::cluster {
namespace {

constexpr char kLeasePrefix[] = "p.";
constexpr char kPresencePrefix[] = "node.";

std::map<std::string, LeaseEntry> ByKey(std::vector<LeaseEntry> entries) {
  std::map<std::string, LeaseEntry> out;
  for (LeaseEntry& e : entries) out[e.key] = std::move(e);
  return out;
}

std::string NewIncarnation() {
  uint8_t bytes[8];
  randombytes_buf(bytes, sizeof(bytes));
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

}  // namespace

std::string LeaseKey(uint32_t partition) { return absl::StrCat(kLeasePrefix, partition); }

std::string PresenceKey(absl::string_view node) { return absl::StrCat(kPresencePrefix, node); }

Ownership::Ownership(Cluster* cluster, OwnershipOptions options)
    : cluster_(cluster), options_(options), node_(cluster->node()) {}

absl::StatusOr<std::unique_ptr<Ownership>> Ownership::Join(Cluster* cluster,
                                                           OwnershipOptions options) {
  if (options.clock == nullptr) options.clock = RealClock();
  if (options.lease < absl::Milliseconds(300)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a lease of ", absl::FormatDuration(options.lease),
                     " is too short: at least 300ms (a round renews it every third)"));
  }
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  std::unique_ptr<Ownership> o(new Ownership(cluster, options));
  const std::string key = PresenceKey(o->node_);
  auto presence = [&]() -> absl::StatusOr<std::optional<LeaseEntry>> {
    IHS_ASSIGN_OR_RETURN(std::vector<LeaseEntry> entries, cluster->ReadLeases());
    for (LeaseEntry& e : entries) {
      if (e.key == key) return std::optional<LeaseEntry>(std::move(e));
    }
    return std::optional<LeaseEntry>();
  };
  IHS_ASSIGN_OR_RETURN(std::optional<LeaseEntry> first, presence());
  if (first.has_value()) {
    o->presence_revision_ = first->revision;
    if (!first->value.empty()) {
      // Present and not left: a running node renews it within a third of a lease; one that
      // stopped without leaving does not.
      const absl::Time until = options.clock->Now() + options.lease / 2;
      while (options.clock->Now() < until) {
        absl::SleepFor(absl::Milliseconds(50));
        IHS_ASSIGN_OR_RETURN(std::optional<LeaseEntry> now, presence());
        if (now.has_value() && now->revision != first->revision && !now->value.empty()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "a running node is named ", o->node_,
              " already (it renewed its presence while this one waited): give each node a name "
              "of its own"));
        }
        if (!now.has_value() || now->value.empty()) break;  // it left meanwhile
        o->presence_revision_ = now->revision;
      }
    }
  }
  o->incarnation_ = NewIncarnation();
  absl::Status s = o->Renew(key, o->incarnation_, &o->presence_revision_);
  if (absl::IsAborted(s)) {
    return absl::FailedPreconditionError(
        absl::StrCat("another node named ", o->node_,
                     " joined at the same moment: give each node a name of "
                     "its own"));
  }
  IHS_RETURN_IF_ERROR(s);
  return o;
}

absl::Status Ownership::Renew(const std::string& key, absl::string_view value, uint64_t* revision) {
  IHS_ASSIGN_OR_RETURN(*revision, cluster_->WriteLease(key, value, *revision));
  return absl::OkStatus();
}

absl::StatusOr<OwnershipRound> Ownership::Round() {
  IHS_RETURN_IF_ERROR(failed_);
  OwnershipRound round;
  const uint32_t partitions = cluster_->config().partitions;
  IHS_ASSIGN_OR_RETURN(std::vector<LeaseEntry> read, cluster_->ReadLeases());
  const absl::Time now = options_.clock->Now();
  std::map<std::string, LeaseEntry> entries = ByKey(std::move(read));
  for (const auto& [key, e] : entries) {
    Seen& seen = seen_[key];
    if (seen.revision != e.revision) seen = Seen{e.revision, now};
  }
  auto stood_still = [&](const std::string& key) {
    auto it = seen_.find(key);
    return it != seen_.end() && now - it->second.since >= options_.lease;
  };

  // The presence first: if another node has taken the name, this one holds nothing.
  absl::Status s = Renew(PresenceKey(node_), incarnation_, &presence_revision_);
  if (absl::IsAborted(s)) {
    auto it = entries.find(PresenceKey(node_));
    const std::string by = it != entries.end() ? it->second.value : "";
    failed_ = absl::FailedPreconditionError(
        absl::StrCat("another node took the name ", node_, (by.empty() ? "" : " (its start "), by,
                     (by.empty() ? "" : ")"), ": this node holds no partition any more"));
    for (uint32_t p : held_) round.lost.emplace_back(p, "another node took this node's name");
    held_.clear();
    return failed_;
  }
  IHS_RETURN_IF_ERROR(s);

  round.live_nodes = 1;
  for (const auto& [key, e] : entries) {
    if (absl::StartsWith(key, kPresencePrefix) && key != PresenceKey(node_) && !e.value.empty() &&
        !stood_still(key)) {
      ++round.live_nodes;
    }
  }
  round.share = (partitions + round.live_nodes - 1) / round.live_nodes;

  // Renew what is held; what another node wrote since is lost.
  for (auto it = held_.begin(); it != held_.end();) {
    const uint32_t p = *it;
    const std::string key = LeaseKey(p);
    auto e = entries.find(key);
    std::string lost;
    if (e == entries.end() || e->second.revision != lease_revision_[p]) {
      lost = absl::StrCat("taken by ", e == entries.end() || e->second.value.empty()
                                           ? "nobody (freed)"
                                           : e->second.value);
    } else {
      absl::Status r = Renew(key, node_, &lease_revision_[p]);
      if (r.ok()) {
        renewed_at_[p] = now;
      } else if (absl::IsAborted(r)) {
        lost = "taken by another node";
      } else if (now - renewed_at_[p] >= options_.lease) {
        lost = absl::StrCat("not renewed within the lease: ", r.message());
      }
    }
    if (lost.empty()) {
      ++it;
      continue;
    }
    round.lost.emplace_back(p, std::move(lost));
    lease_revision_.erase(p);
    renewed_at_.erase(p);
    it = held_.erase(it);
  }

  // Above the share: the highest partitions go, so that moves are few and predictable.
  while (held_.size() > round.share) {
    const uint32_t p = *held_.rbegin();
    // A failed write frees nothing: the lease then expires by itself.
    (void)cluster_->WriteLease(LeaseKey(p), "", lease_revision_[p]);
    round.released.push_back(p);
    lease_revision_.erase(p);
    renewed_at_.erase(p);
    held_.erase(p);
  }

  // Below it: free leases first, then those left to stand still, then (after a restart) this
  // node's own. Each node starts its search at a place of its own, so that nodes that take at
  // the same moment rarely want the same lease.
  if (held_.size() < round.share) {
    std::vector<uint32_t> free, expired;
    const uint32_t start = PartitionOf(node_, partitions);
    for (uint32_t i = 0; i < partitions; ++i) {
      const uint32_t p = (start + i) % partitions;
      if (held_.count(p)) continue;
      auto e = entries.find(LeaseKey(p));
      if (e == entries.end() || e->second.value.empty()) {
        free.push_back(p);
      } else if (e->second.value == node_ || stood_still(e->first)) {
        expired.push_back(p);
      }
    }
    for (const std::vector<uint32_t>* list : {&free, &expired}) {
      for (uint32_t p : *list) {
        if (held_.size() >= round.share) break;
        auto e = entries.find(LeaseKey(p));
        uint64_t revision = e == entries.end() ? 0 : e->second.revision;
        absl::Status t = Renew(LeaseKey(p), node_, &revision);
        if (!t.ok()) continue;  // another node was quicker, or the cluster is busy: next round
        held_.insert(p);
        lease_revision_[p] = revision;
        renewed_at_[p] = now;
        round.taken.push_back(p);
      }
    }
  }
  round.held = held_;
  return round;
}

absl::Status Ownership::Release(uint32_t partition) {
  if (!held_.count(partition)) {
    return absl::FailedPreconditionError(
        absl::StrCat("partition ", partition, " is not held by node ", node_));
  }
  absl::StatusOr<uint64_t> w =
      cluster_->WriteLease(LeaseKey(partition), "", lease_revision_[partition]);
  held_.erase(partition);
  lease_revision_.erase(partition);
  renewed_at_.erase(partition);
  return w.status();
}

absl::Status Ownership::Leave() {
  absl::Status first;
  for (uint32_t p : held_) {
    absl::StatusOr<uint64_t> w = cluster_->WriteLease(LeaseKey(p), "", lease_revision_[p]);
    if (!w.ok() && first.ok()) first = w.status();
  }
  held_.clear();
  lease_revision_.clear();
  renewed_at_.clear();
  if (failed_.ok()) {
    absl::StatusOr<uint64_t> w = cluster_->WriteLease(PresenceKey(node_), "", presence_revision_);
    if (!w.ok() && first.ok()) first = w.status();
  }
  failed_ = absl::FailedPreconditionError(absl::StrCat("node ", node_, " has left"));
  return first;
}

absl::StatusOr<Owners> ReadOwners(Cluster& cluster) {
  IHS_ASSIGN_OR_RETURN(std::vector<LeaseEntry> entries, cluster.ReadLeases());
  Owners out;
  const uint32_t partitions = cluster.config().partitions;
  for (uint32_t p = 0; p < partitions; ++p) {
    out.partitions.push_back(PartitionOwner{p, "", absl::InfinitePast()});
  }
  for (LeaseEntry& e : entries) {
    uint32_t p = 0;
    if (absl::StartsWith(e.key, kLeasePrefix) &&
        absl::SimpleAtoi(absl::string_view(e.key).substr(sizeof(kLeasePrefix) - 1), &p) &&
        p < partitions) {
      out.partitions[p].node = std::move(e.value);
      out.partitions[p].renewed_at = e.written_at;
    } else if (absl::StartsWith(e.key, kPresencePrefix) && !e.value.empty()) {
      out.nodes.push_back(NodePresence{e.key.substr(sizeof(kPresencePrefix) - 1), e.written_at});
    }
  }
  std::sort(out.nodes.begin(), out.nodes.end(),
            [](const NodePresence& a, const NodePresence& b) { return a.node < b.node; });
  return out;
}

}  // namespace ihs::cluster
