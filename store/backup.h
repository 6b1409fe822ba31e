// A consistent copy of a store, as rocksdb::Checkpoint makes one of a database
// (docs/operations.md).
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

}  // namespace ihs::store

#endif  // IHS_STORE_BACKUP_H_
