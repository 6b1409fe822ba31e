// The log's Merkle tree, hashed as RFC 9162 section 2.1 (Certificate Transparency v2):
//   MTH({})      = SHA-256()
//   leaf hash    = SHA-256(0x00 || stored event bytes)
//   node hash    = SHA-256(0x01 || left || right)
//   MTH(D[0:n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n.
// The store persists the hash of every complete subtree: (level L, index i) covers leaves
// [i * 2^L, (i + 1) * 2^L). The tree over the first n leaves is then the complete subtrees of n's
// set bits, largest first, folded from the right: popcount(n) reads (see RootFromSubtrees).
#ifndef IHS_STORE_INTERNAL_MERKLE_H_
#define IHS_STORE_INTERNAL_MERKLE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ihs::store::internal {

using Hash = std::array<uint8_t, 32>;

Hash EmptyTreeHash();
Hash LeafHash(absl::string_view data);
Hash NodeHash(const Hash& left, const Hash& right);

inline absl::string_view HashBytes(const Hash& h) {
  return absl::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}
// false if `bytes` is not 32 bytes long.
bool HashFromBytes(absl::string_view bytes, Hash* out);

// A complete subtree: level L, index i.
struct SubtreeId {
  uint8_t level;
  uint64_t index;
};

// The complete subtrees that make up the tree over the first n leaves, largest first.
std::vector<SubtreeId> SubtreesOf(uint64_t n);

// Folds the subtree hashes of SubtreesOf(n), in that order, into the tree hash.
Hash FoldSubtrees(const std::vector<Hash>& hashes);

// The right edge of a growing tree: one hash per complete subtree of the current size.
// Not thread-safe: owned by the store's writer.
class Frontier {
 public:
  Frontier() = default;

  // Rebuilds the frontier for a log of `size` leaves from stored subtrees.
  static absl::StatusOr<Frontier> Load(
      uint64_t size, const std::function<absl::StatusOr<Hash>(SubtreeId)>& lookup);

  uint64_t size() const { return size_; }

  // Adds the next leaf; calls emit for the leaf itself (level 0) and for every subtree it
  // completes, lowest first.
  void Push(const Hash& leaf, const std::function<void(SubtreeId, const Hash&)>& emit);

  Hash Root() const;

 private:
  struct Entry {
    uint8_t level;
    Hash hash;
  };
  uint64_t size_ = 0;
  std::vector<Entry> entries_;  // levels strictly decreasing
};

}  // namespace ihs::store::internal

#endif  // IHS_STORE_INTERNAL_MERKLE_H_
