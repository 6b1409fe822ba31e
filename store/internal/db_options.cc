#include "store/internal/db_options.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include "store/internal/keys.h"

namespace ihs::store::internal {

rocksdb::DBOptions StoreDbOptions() {
  rocksdb::DBOptions o;
  o.IncreaseParallelism(2);
  o.max_open_files = 512;
  o.keep_log_file_num = 4;
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
  return out;
}

}  // namespace ihs::store::internal
