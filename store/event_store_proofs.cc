// EventStoreImpl's RFC 9162 tree: roots, signed heads, inclusion and consistency proofs.

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "store/event_store_impl.h"
#include "store/internal/impl_parts.h"
#include "store/internal/rocks_status.h"

namespace ihs::store {

using internal::Hash;
using internal::ToView;

absl::StatusOr<std::string> EventStoreImpl::Root(uint64_t size) {
  const uint64_t head = Head();
  if (size > head) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", size, " is larger than the log (", head, " events)"));
  }
  std::vector<internal::SubtreeId> ids = internal::SubtreesOf(size);
  std::vector<std::string> keys;
  for (const auto& id : ids) keys.push_back(internal::MerkleKey(id.level, id.index));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), cf_merkle_, keys.size(), slices.data(), values.data(),
                statuses.data());
  std::vector<Hash> hashes(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!statuses[i].ok() || !internal::HashFromBytes(ToView(values[i]), &hashes[i])) {
      return absl::DataLossError(absl::StrCat(
          "Merkle subtree (level ", ids[i].level, ", index ", ids[i].index,
          ") is missing or malformed: ",
          statuses[i].ok() ? absl::StrCat(values[i].size(), " bytes") : statuses[i].ToString()));
    }
  }
  Hash root = internal::FoldSubtrees(hashes);
  return std::string(internal::HashBytes(root));
}

// ---------------------------------------------------------------------------------------------
// Audit: signed tree heads and proofs.

namespace {

// The largest power of two below n (n > 1): where RFC 9162 splits a tree of n leaves.
uint64_t SplitPoint(uint64_t n) { return uint64_t{1} << (63 - __builtin_clzll(n - 1)); }

}  // namespace

absl::StatusOr<tlog::VerifierKey> EventStoreImpl::VerifierKey() {
  if (!signing_key_) return signing_key_error_;
  tlog::PublicKey pub;
  std::memcpy(pub.data(), signing_key_->data() + 32, pub.size());
  return tlog::VerifierKeyFor(pub);
}

absl::StatusOr<std::string> EventStoreImpl::SignedHead() {
  IHS_ASSIGN_OR_RETURN(tlog::VerifierKey key, VerifierKey());
  tlog::TreeHead head;
  head.origin = key.name;
  head.size = Head();
  IHS_ASSIGN_OR_RETURN(std::string root, Root(head.size));
  tlog::HashFromBytes(root, &head.root);
  head.time_micros = absl::ToUnixMicros(clock_->Now());
  return tlog::SignHead(head, *signing_key_);
}

absl::StatusOr<std::vector<tlog::Hash>> EventStoreImpl::RangeHashes(
    const std::vector<Range>& ranges) {
  // The stored subtrees that make up each range; ranges of many proofs share many of them, so
  // each distinct one is read once, and in key order (MultiGet then walks each block once).
  // A subtree is packed as level << 58 | index while they are sorted: the order of its key.
  std::vector<uint64_t> subtrees;
  std::vector<size_t> first;  // of each range, in subtrees
  for (const Range& r : ranges) {
    first.push_back(subtrees.size());
    for (const internal::SubtreeId& id : internal::SubtreesOf(r.size)) {
      if ((r.start & ((uint64_t{1} << id.level) - 1)) != 0) {
        return absl::InternalError(absl::StrCat("range [", r.start, ", +", r.size,
                                                ") is not a subtree of the RFC 9162 tree"));
      }
      subtrees.push_back(uint64_t{id.level} << 58 | ((r.start >> id.level) + id.index));
    }
  }
  first.push_back(subtrees.size());
  std::vector<uint64_t> distinct = subtrees;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<std::string> keys;
  keys.reserve(distinct.size());
  for (uint64_t d : distinct) {
    keys.push_back(
        internal::MerkleKey(static_cast<uint8_t>(d >> 58), d & ((uint64_t{1} << 58) - 1)));
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  // A big batch (verify-party's) is mostly lookups that miss the block cache: its second half
  // is read on another thread, the machine having at least two cores.
  constexpr size_t kSplitBatch = 4096;
  const size_t half = keys.size() >= kSplitBatch ? keys.size() / 2 : keys.size();
  auto read = [&](size_t from, size_t to) {
    if (from == to) return;
    db_->MultiGet(rocksdb::ReadOptions(), cf_merkle_, to - from, slices.data() + from,
                  values.data() + from, statuses.data() + from, /*sorted_input=*/true);
  };
  if (half < keys.size()) {
    std::thread second(read, half, keys.size());
    read(0, half);
    second.join();
  } else {
    read(0, keys.size());
  }
  std::vector<tlog::Hash> out;
  out.reserve(ranges.size());
  std::vector<Hash> hashes;
  for (size_t i = 0; i < ranges.size(); ++i) {
    hashes.assign(first[i + 1] - first[i], Hash{});
    for (size_t j = first[i]; j < first[i + 1]; ++j) {
      const size_t d =
          std::lower_bound(distinct.begin(), distinct.end(), subtrees[j]) - distinct.begin();
      if (!statuses[d].ok() || !internal::HashFromBytes(ToView(values[d]), &hashes[j - first[i]])) {
        return absl::DataLossError(absl::StrCat("a Merkle subtree of positions [", ranges[i].start,
                                                ", ", ranges[i].start + ranges[i].size,
                                                ") is missing or malformed"));
      }
    }
    out.push_back(internal::FoldSubtrees(hashes));
  }
  return out;
}

namespace {
// RFC 9162 2.1.3.1, top down: the ranges of the siblings on the audit path of leaf `index` in
// the tree of `size` leaves, bottom up.
void AuditPathRanges(uint64_t index, uint64_t size, std::vector<EventStoreImpl::Range>* out) {
  const size_t begin = out->size();
  uint64_t start = 0, n = size, m = index;
  while (n > 1) {
    const uint64_t k = SplitPoint(n);
    if (m < k) {
      out->push_back({start + k, n - k});
      n = k;
    } else {
      out->push_back({start, k});
      start += k;
      m -= k;
      n -= k;
    }
  }
  std::reverse(out->begin() + static_cast<ptrdiff_t>(begin), out->end());
}
}  // namespace

absl::StatusOr<std::vector<tlog::Hash>> EventStoreImpl::InclusionProof(uint64_t index,
                                                                       uint64_t size) {
  IHS_ASSIGN_OR_RETURN(std::vector<std::vector<tlog::Hash>> paths, InclusionProofs({index}, size));
  return std::move(paths[0]);
}

absl::StatusOr<std::vector<std::vector<tlog::Hash>>> EventStoreImpl::InclusionProofs(
    const std::vector<uint64_t>& indices, uint64_t size) {
  const uint64_t head = Head();
  std::vector<Range> ranges;
  std::vector<size_t> first;
  for (uint64_t index : indices) {
    if (index >= size || size > head) {
      return absl::OutOfRangeError(absl::StrCat("no inclusion proof of position ", index,
                                                " in a tree of ", size, " events (the log has ",
                                                head, ")"));
    }
    first.push_back(ranges.size());
    AuditPathRanges(index, size, &ranges);
  }
  first.push_back(ranges.size());
  IHS_ASSIGN_OR_RETURN(std::vector<tlog::Hash> hashes, RangeHashes(ranges));
  std::vector<std::vector<tlog::Hash>> paths(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    paths[i].assign(hashes.begin() + static_cast<ptrdiff_t>(first[i]),
                    hashes.begin() + static_cast<ptrdiff_t>(first[i + 1]));
  }
  return paths;
}

absl::StatusOr<std::vector<tlog::Hash>> EventStoreImpl::ConsistencyProof(uint64_t old_size,
                                                                         uint64_t new_size) {
  const uint64_t head = Head();
  if (old_size > new_size || new_size > head) {
    return absl::OutOfRangeError(absl::StrCat("no consistency proof from ", old_size, " to ",
                                              new_size, " events (the log has ", head, ")"));
  }
  if (old_size == 0 || old_size == new_size) return std::vector<tlog::Hash>();
  // RFC 9162 2.1.4.1 SUBPROOF, top down; the proof lists its nodes bottom up.
  std::vector<Range> nodes;
  uint64_t start = 0, n = new_size, m = old_size;
  bool whole = true;  // the old tree is D[0:m] itself, which the verifier has as its root
  while (m != n) {
    const uint64_t k = SplitPoint(n);
    if (m <= k) {
      nodes.push_back({start + k, n - k});
      n = k;
    } else {
      nodes.push_back({start, k});
      start += k;
      m -= k;
      n -= k;
      whole = false;
    }
  }
  if (!whole) nodes.push_back({start, m});
  std::reverse(nodes.begin(), nodes.end());
  return RangeHashes(nodes);
}

}  // namespace ihs::store
