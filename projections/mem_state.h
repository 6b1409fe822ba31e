// Projection state held in memory: a rebuild's bulk phase (runner.cc), and a replay of one
// party's timeline (projections/timeline/replay.h). Internal to projections/.
#ifndef IHS_PROJECTIONS_MEM_STATE_H_
#define IHS_PROJECTIONS_MEM_STATE_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
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
  // Copies `bytes` into the arena, for a value that another one is set to.
  Value Copy(absl::string_view bytes) {
    const absl::string_view stored = Store(bytes);
    return Value{stored.data() != nullptr ? stored.data() : "", bytes.size()};
  }

  // About what it holds: the arena and the index.
  size_t bytes() const { return arena_bytes_ + index_.capacity() * (sizeof(Index::value_type) + 1); }
  bool spilled() const { return spilled_; }
  void Reserve(size_t keys) { index_.reserve(keys); }
  Index& index() { return index_; }
  const Index& index() const { return index_; }

  // After a write-out: forgets everything, and later reads may find keys in the family.
  void Spill() {
    index_ = Index();
    blocks_.clear();
    next_ = nullptr;
    left_ = arena_bytes_ = 0;
    spilled_ = true;
  }

 private:
  static constexpr size_t kBlock = size_t{8} << 20;

  absl::string_view Store(absl::string_view bytes) {
    if (bytes.empty()) return absl::string_view();
    if (bytes.size() > left_) {
      const size_t size = std::max(kBlock, bytes.size());
      blocks_.emplace_back(new char[size]);  // not zeroed: every byte is written before read
      next_ = blocks_.back().get();
      left_ = size;
      arena_bytes_ += size;
    }
    char* at = next_;
    std::memcpy(at, bytes.data(), bytes.size());
    next_ += bytes.size();
    left_ -= bytes.size();
    return absl::string_view(at, bytes.size());
  }

  Index index_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;
  size_t left_ = 0;
  size_t arena_bytes_ = 0;
  bool spilled_ = false;
};

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_MEM_STATE_H_
