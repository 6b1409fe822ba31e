// A consistent copy of a store, as rocksdb::Checkpoint makes one of a database
// (docs/operations.md); and the background work on its files.
#ifndef IHS_STORE_BACKUP_H_
#define IHS_STORE_BACKUP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace ihs::store {

class EventStore;

// A copy of the store as of now in `to`, a new (or empty) directory: to/db is a RocksDB
// checkpoint (SST files hard-linked when on the same file system, copied otherwise), and
// to/signing.key a copy of the signing key, so that the copy signs as the same store. With
// `include_master_key`, to/master.key too; without it, open the copy with --master-key.
// Works on a read-only open beside a running writer (ihsd): its WAL is copied, not flushed, and
// the copy holds at least every event acknowledged before the call. Returns the log size this
// store saw when the copy began. kAlreadyExists: `to` holds something.
absl::StatusOr<uint64_t> Backup(EventStore& store, const std::string& to, bool include_master_key);

// RocksDB's background work on the store's files, running or due: flushes and compactions
// running, plus column families with a flush or a compaction pending. 0 once the files have
// settled. A benchmark that loads a store waits for 0 before it measures, so that what it
// measures does not share the machine with the load's compactions.
absl::StatusOr<uint64_t> BackgroundWork(EventStore& store);

}  // namespace ihs::store

#endif  // IHS_STORE_BACKUP_H_
