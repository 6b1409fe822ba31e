// A cache of where a node map keeps its keys' nodes, for lookups that a prefetch can start
// ahead. Internal to projections/.
#ifndef IHS_PROJECTIONS_INTERNAL_HINT_TABLE_H_
#define IHS_PROJECTIONS_INTERNAL_HINT_TABLE_H_

#include <algorithm>
#include <cstddef>
#include <vector>

namespace ihs::projections {

// A table in front of a node map, by the key's hash: a fixed number of buckets of two ways, each
// way a hash and the node it was last found at. A rebuild looks a party's record up for every
// event; a node map's lookup waits for memory twice, for its control bytes and then for the
// node, and cannot be prefetched. Here the bucket's place follows from the hash alone, so a
// prefetch can fetch it events ahead, and then the node it names. A hint may name another key
// of the same hash: the caller compares keys. Nodes must stay where they are until Clear (a
// node map's do).
template <typename Node>
class HintTable {
 public:
  static constexpr size_t kBuckets = size_t{1} << 17;  // 4 MiB, for some 100,000 keys

  // Holds no memory until Enable.
  bool enabled() const { return !ways_.empty(); }
  void Enable() {
    if (ways_.empty()) ways_.resize(2 * kBuckets);
  }
  void Clear() { std::fill(ways_.begin(), ways_.end(), Way{}); }
  // Clears and gives the memory back: not enabled until the next Enable.
  void Release() { std::vector<Way>().swap(ways_); }
  void PrefetchBucket(size_t hash) const {
    if (enabled()) __builtin_prefetch(&ways_[First(hash)]);
  }
  // The node last put with `hash` and not pushed out since, or nullptr.
  Node* Find(size_t hash) const {
    if (!enabled()) return nullptr;
    const Way* w = &ways_[First(hash)];
    if (w[0].node != nullptr && w[0].hash == hash) return w[0].node;
    if (w[1].node != nullptr && w[1].hash == hash) return w[1].node;
    return nullptr;
  }
  // The bucket's older way gives its place to `node`. Enabled only.
  void Put(size_t hash, Node* node) {
    Way* w = &ways_[First(hash)];
    w[1] = w[0];
    w[0] = Way{hash, node};
  }

 private:
  struct Way {
    size_t hash = 0;
    Node* node = nullptr;
  };
  static size_t First(size_t hash) { return 2 * (hash % kBuckets); }
  std::vector<Way> ways_;  // empty until Enable
};

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_INTERNAL_HINT_TABLE_H_
