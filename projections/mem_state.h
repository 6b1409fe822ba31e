// Projection state held in memory: a rebuild's bulk phase (runner.cc), and a replay of one
// party's timeline (projections/timeline/replay.h). Internal to projections/.
#ifndef IHS_PROJECTIONS_MEM_STATE_H_
#define IHS_PROJECTIONS_MEM_STATE_H_

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace ihs::projections {

// A rebuild's state in memory: every key it has written since it started or since its last
// write-out. After a write-out (`spilled`), a key not here may be in the family.
class MemState {
 public:
  // nullopt: deleted after a write-out (the files carry the deletion).
  absl::flat_hash_map<std::string, std::optional<std::string>> kv;
  size_t bytes = 0;  // about what kv holds, allocations included
  bool spilled = false;

  static constexpr size_t kOverhead = 96;  // per key: the slot, two allocations' headers

  void Put(absl::string_view key, std::string value) {
    auto [it, inserted] = kv.try_emplace(std::string(key));
    if (inserted) {
      bytes += key.size() + kOverhead;
    } else if (it->second) {
      bytes -= it->second->size();
    }
    bytes += value.size();
    it->second = std::move(value);
  }
  void Delete(absl::string_view key) {
    auto it = kv.find(key);
    if (!spilled) {
      if (it == kv.end()) return;
      bytes -= it->first.size() + kOverhead + (it->second ? it->second->size() : 0);
      kv.erase(it);
      return;
    }
    if (it == kv.end()) {
      kv.emplace(std::string(key), std::nullopt);
      bytes += key.size() + kOverhead;
    } else if (it->second) {
      bytes -= it->second->size();
      it->second.reset();
    }
  }
};

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_MEM_STATE_H_
