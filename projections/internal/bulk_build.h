// A rebuild's bulk phase (docs/projections.md "Rebuilds"): the log read on a thread of its own,
// applied by one instance or by shards (projections/bulk.h) with the state in memory
// (MemState), and written out as sorted files that are ingested into the generation's family.
// Not API: the runner calls it.
#ifndef IHS_PROJECTIONS_INTERNAL_BULK_BUILD_H_
#define IHS_PROJECTIONS_INTERNAL_BULK_BUILD_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "projections/internal/generation.h"
#include "projections/projection.h"

namespace ihs::projections {

// The bulk phase of a rebuild: from the generation's checkpoint (0) to the head as it was when
// the phase began (the horizon), with the state in memory (MemState), written out as sorted
// files when it passes `memory_bytes` and at the end. Nothing goes through the memtable or the
// WAL, and no read of the state misses memory until a first write-out. The log is read on a
// thread of its own (ChunkReader). With more than one instance in `shards` (a projection that is
// a ShardedRebuild), each applies the events of the streams that hash to it, on a thread of
// its own, and the shards meet only every kRoundChunks chunks, to see whether to write out.
// `reached` hears the position and head after each chunk that every shard has applied.
absl::Status BulkBuild(LogAndState store, const std::vector<Projection*>& shards, Generation& gen,
                       size_t memory_bytes, const std::function<bool()>& stopping,
                       const std::function<void(uint64_t, uint64_t)>& reached);

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_INTERNAL_BULK_BUILD_H_
