// A store's RocksDB opened directly, as an attacker or a broken disk would change it, and the
// stored bytes to compare with.
#ifndef IHS_TESTS_TESTUTIL_RAW_DB_H_
#define IHS_TESTS_TESTUTIL_RAW_DB_H_

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/event_store.h"

namespace ihs::testing {

struct RawDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> cf;
  explicit RawDb(const std::string& data_dir) {
    std::string path = data_dir + "/db";
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    EXPECT_TRUE(rocksdb::DB::Open(rocksdb::Options(), path, descs, &handles, &raw).ok());
    db.reset(raw);
    for (size_t i = 0; i < names.size(); ++i) cf[names[i]] = handles[i];
  }
  ~RawDb() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
};

// The stored bytes of every event of the log, in position order.
inline std::vector<std::string> AllStoredBytes(store::EventStore& store) {
  auto all = store.ReadAll(0, 1 << 20, store::ReadOptions{false});
  EXPECT_TRUE(all.ok()) << all.status();
  std::vector<std::string> out;
  if (!all.ok()) return out;
  for (const auto& e : *all) out.emplace_back(e.bytes());
  return out;
}

// Every byte of every file under `dir` (a store's db/: SST, WAL, MANIFEST, LOG, OPTIONS): what a
// test scans for bytes that must be gone.
inline std::string AllFileBytes(const std::string& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream f(entry.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  return all;
}

}  // namespace ihs::testing

#endif  // IHS_TESTS_TESTUTIL_RAW_DB_H_
