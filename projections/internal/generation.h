// What the projection runner's files share (projections/runner.cc, projections/state.cc,
// projections/internal/bulk_build.cc): a generation of a projection's state, sealing values with
// their checksums, and the size of a read of the log. Not API.
#ifndef IHS_PROJECTIONS_INTERNAL_GENERATION_H_
#define IHS_PROJECTIONS_INTERNAL_GENERATION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "projections/runner.h"

namespace ihs::projections {

// Events per read of the log inside a batch, and per chunk of a rebuild.
inline constexpr size_t kReadChunk = 16384;

inline constexpr absl::string_view CheckpointKey() {
  return absl::string_view(kCheckpointKey, sizeof(kCheckpointKey) - 1);
}

// payload | checksum into `out`, whose buffer is reused: a write-out seals millions of values.
void SealInto(absl::string_view key, absl::string_view payload, std::string* out);

// One generation of a projection's state: its state family "NAME@G" and its checkpoint.
class StateView::Generation {
 public:
  Generation(LogAndState store, std::string family, uint64_t checkpoint)
      : store_(store), family_(std::move(family)), checkpoint_(checkpoint) {}
  // The last reference to a generation that a swap retired drops its family.
  ~Generation() {
    if (retired_.load()) {
      store_.state->DropStateFamily(family_)
          .IgnoreError();  // a leftover is dropped at the next Open
    }
  }
  LogAndState store() const { return store_; }
  const std::string& family() const { return family_; }
  uint64_t checkpoint() const { return checkpoint_.load(); }
  void set_checkpoint(uint64_t c) { checkpoint_.store(c); }
  // A retired generation's family is dropped with its last reference.
  void set_retired(bool retired) { retired_.store(retired); }

 private:
  const LogAndState store_;
  const std::string family_;
  std::atomic<uint64_t> checkpoint_;
  std::atomic<bool> retired_{false};
};

using Generation = StateView::Generation;

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_INTERNAL_GENERATION_H_
