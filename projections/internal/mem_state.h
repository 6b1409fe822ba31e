// Projection state held in memory: a rebuild's bulk phase (runner.cc), and a replay of one
// party's timeline (projections/timeline/replay.h). Internal to projections/.
#ifndef IHS_PROJECTIONS_INTERNAL_MEM_STATE_H_
#define IHS_PROJECTIONS_INTERNAL_MEM_STATE_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace ihs::projections {

// A rebuild's state in memory: every key it has written since it started or since its last
// write-out. After a write-out (Spill), a key not here may be in the family.
//
// Keys and values live in an arena of large blocks, and the index maps a key to its latest
// value: a rebuild writes some ten million keys, and two heap strings per key cost allocations,
// a slot three times as wide, and gigabytes of pages that the kernel zeroes one by one. A value
// written again takes new arena space; the old bytes stay until the write-out frees everything.
class MemState {
 public:
  // A value's bytes, or (data == nullptr) a deletion after a write-out: the files carry it.
  struct Value {
    const char* data = nullptr;
    size_t size = 0;
    bool deleted() const { return data == nullptr; }
    absl::string_view view() const { return absl::string_view(data, size); }
  };
  using Index = absl::flat_hash_map<absl::string_view, Value>;

  // nullptr: not written here since the last write-out.
  const Value* Find(absl::string_view key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second;
  }
  void Put(absl::string_view key, absl::string_view value) {
    auto it = index_.find(key);
    if (it == index_.end()) it = index_.emplace(Store(key), Value{}).first;
    it->second = Value{Store(value).data(), value.size()};
    if (it->second.data == nullptr) it->second.data = "";  // an empty value is not a deletion
  }
  void Delete(absl::string_view key) {
    auto it = index_.find(key);
    if (!spilled_) {
      if (it != index_.end()) index_.erase(it);
      return;
    }
    if (it == index_.end()) it = index_.emplace(Store(key), Value{}).first;
    it->second = Value{};
  }
  // Copies `bytes` into the arena, for a value that another one is set to, or that a
  // projection holds until it hands it to PutInOrder.
  Value Copy(absl::string_view bytes) {
    const absl::string_view stored = Store(bytes);
    return Value{stored.data() != nullptr ? stored.data() : "", bytes.size()};
  }

  // Keys that come in ascending order, each once, and that no Put or Delete names: the
  // write-out takes them as a sorted run of their own, and they are neither indexed nor sorted.
  // Find does not see them. `value` is the arena's already (Copy) and is not copied again.
  using Entry = Index::value_type;
  void PutInOrder(absl::string_view key, Value value) {
    if (!ordered_.empty() && !(ordered_.back()->first < key)) out_of_order_ = true;
    const absl::string_view stored = Store(key);
    void* at = Allocate(sizeof(Entry), alignof(Entry));
    ordered_.push_back(new (at) Entry(stored, value));
  }
  const std::vector<Entry*>& ordered() const { return ordered_; }
  // A key came to PutInOrder that was not greater than the one before.
  bool out_of_order() const { return out_of_order_; }

  // About what it holds: the arena and the index.
  size_t bytes() const {
    return arena_bytes_ + index_.capacity() * (sizeof(Index::value_type) + 1) +
           ordered_.capacity() * sizeof(Entry*);
  }
  bool spilled() const { return spilled_; }
  Index& index() { return index_; }
  const Index& index() const { return index_; }

  // After a write-out: forgets everything, and later reads may find keys in the family.
  void Spill() {
    index_ = Index();
    ordered_ = std::vector<Entry*>();
    out_of_order_ = false;
    blocks_.clear();
    next_ = nullptr;
    left_ = arena_bytes_ = 0;
    spilled_ = true;
  }

 private:
  static constexpr size_t kBlock = size_t{8} << 20;

  absl::string_view Store(absl::string_view bytes) {
    if (bytes.empty()) return absl::string_view();
    char* at = static_cast<char*>(Allocate(bytes.size(), 1));
    std::memcpy(at, bytes.data(), bytes.size());
    return absl::string_view(at, bytes.size());
  }

  // `size` bytes of the arena at a multiple of `align` (a power of two, at most 16).
  void* Allocate(size_t size, size_t align) {
    size_t pad = (align - reinterpret_cast<uintptr_t>(next_) % align) % align;
    if (size + pad > left_) {
      const size_t block = std::max(kBlock, size);
      blocks_.emplace_back(new char[block]);  // not zeroed: every byte is written before read
      next_ = blocks_.back().get();           // operator new[] aligns to 16
      left_ = block;
      arena_bytes_ += block;
      pad = 0;
    }
    char* at = next_ + pad;
    next_ += pad + size;
    left_ -= pad + size;
    return at;
  }

  Index index_;
  std::vector<Entry*> ordered_;  // PutInOrder's, in the arena
  bool out_of_order_ = false;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;
  size_t left_ = 0;
  size_t arena_bytes_ = 0;
  bool spilled_ = false;
};

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_INTERNAL_MEM_STATE_H_
