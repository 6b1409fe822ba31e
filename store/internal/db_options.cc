#include "store/internal/db_options.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <memory>

#include "store/internal/keys.h"

namespace ihs::store::internal {

rocksdb::DBOptions StoreDbOptions() {
  rocksdb::DBOptions o;
  o.IncreaseParallelism(2);
  o.max_open_files = 512;
  o.keep_log_file_num = 4;
  // Synced WALs are recorded in the MANIFEST, and an open that finds one of them missing fails
  // instead of recovering without its writes. A read-only open beside the writer can read the
  // MANIFEST just before a flush and then find a WAL that the flush made obsolete deleted: without
  // this it would silently show a log with a gap; with it, the open fails and is tried again
  // (EventStoreImpl::Open).
  o.track_and_verify_wals_in_manifest = true;
  o.enable_pipelined_write = true;
  return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> StoreColumnFamilies() {
  auto cache = rocksdb::NewLRUCache(256 << 20);  // shared by all families
  // Every family gets a Bloom filter: all of them serve point lookups (events by position from
  // the stream index, Merkle nodes for roots and Verify), and after a crash the L0 files of
  // several recoveries may wait for compaction.
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  t.block_size = 16 << 10;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  o.compression = rocksdb::kLZ4Compression;
  o.bottommost_compression = rocksdb::kZSTD;
  o.write_buffer_size = 64 << 20;
  std::vector<rocksdb::ColumnFamilyDescriptor> out;
  for (const char* name : {rocksdb::kDefaultColumnFamilyName.c_str(), kCfEvents, kCfStreamIndex,
                           kCfStreamMeta, kCfEventIds, kCfContentKeys, kCfMerkle}) {
    out.emplace_back(name, o);
  }
  // The tree's nodes are 32-byte hashes: incompressible, and read by point lookups (proofs,
  // roots) many at a time. Uncompressed 4 KiB blocks with a hash index make a lookup that misses
  // the cache one small read and no decompression, and one that hits it no binary search.
  for (auto& d : out) {
    if (d.name != kCfMerkle) continue;
    rocksdb::BlockBasedTableOptions mt = t;
    mt.block_size = 4 << 10;
    mt.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
    d.options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(mt));
    d.options.compression = rocksdb::kNoCompression;
    d.options.bottommost_compression = rocksdb::kNoCompression;
  }
  // Families whose keys arrive in ascending order within a prefix (positions; subtree indexes
  // per level) insert into the memtable from a remembered position
  // instead of searching the skip list from the top: a group's thousands of keys then cost
  // O(1) each, not O(log n). The prefix is the part of the key that stays fixed while the rest
  // ascends.
  auto hint = [&out](const char* name, size_t prefix_len) {
    for (auto& d : out) {
      if (d.name == name) {
        d.options.memtable_insert_with_hint_prefix_extractor.reset(
            rocksdb::NewFixedPrefixTransform(prefix_len));
      }
    }
  };
  hint(kCfEvents, 1);  // position: fixed64, below 2^56 the first byte is 0
  hint(kCfMerkle, 1);  // level: u8
  // Not the stream index: a group interleaves many streams, so a stream's remembered position is
  // stale by its next insert and recomputing it costs more than the search it saves.
  // Event ids are the client's: random ones gain nothing, time-ordered ones (UUIDv7, ULIDs, the
  // workload generator's) ascend. Two bytes bound the hint table to 65,536 entries.
  hint(kCfEventIds, 2);
  return out;
}

void ForBulkLoad(rocksdb::DBOptions* db, std::vector<rocksdb::ColumnFamilyDescriptor>* families) {
  db->allow_concurrent_memtable_write = false;  // the vector memtable does not take it
  for (auto& d : *families) {
    d.options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  }
}

rocksdb::ColumnFamilyOptions StateFamilyOptions(const rocksdb::ColumnFamilyOptions& store_default) {
  // A projection reads its records by point lookups, one person or stream per event; with a
  // million of them the records outgrow the block cache, and a lookup that misses it reads and
  // decompresses a whole block for one record. 4 KiB blocks instead of 16 KiB, and LZ4 on the
  // last level too instead of ZSTD (which decompresses several times slower), keep that miss
  // small: the per-event cost at 1M parties moved towards that at 10k (bench/RESULTS.md). The
  // state is derived from the log and rebuilt from it, so the bytes ZSTD would save matter less.
  rocksdb::ColumnFamilyOptions o = store_default;
  rocksdb::BlockBasedTableOptions t =
      *store_default.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
  t.block_size = 4 << 10;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  o.bottommost_compression = rocksdb::kLZ4Compression;
  return o;
}

}  // namespace ihs::store::internal
