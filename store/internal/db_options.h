// The RocksDB settings of a store, in one place: the store opens with them, and the raw-RocksDB
// ceiling of bench/ opens with them too, so that the two are compared on equal terms.
#ifndef IHS_STORE_INTERNAL_DB_OPTIONS_H_
#define IHS_STORE_INTERNAL_DB_OPTIONS_H_

#include <rocksdb/db.h>

#include <vector>

namespace ihs::store::internal {

rocksdb::DBOptions StoreDbOptions();

// The column families, in this order: default (store metadata), events, stream_index,
// stream_meta, event_ids, content_keys, merkle (see keys.h).
std::vector<rocksdb::ColumnFamilyDescriptor> StoreColumnFamilies();

// A bulk load's settings (Options::bulk_load), on top of the above: every family appends its
// writes to an unsorted memtable that is sorted once when it is flushed, instead of placing each
// in a skip list (a quarter of `ihs import`'s time went there). A bulk load reads almost nothing
// back while it writes; a read of such a memtable sorts a copy of it.
void ForBulkLoad(rocksdb::DBOptions* db, std::vector<rocksdb::ColumnFamilyDescriptor>* families);

// A projection's state family (docs/format.md "State"), from the default family's options
// (`store_default`, of StoreColumnFamilies, whose block cache it shares).
rocksdb::ColumnFamilyOptions StateFamilyOptions(const rocksdb::ColumnFamilyOptions& store_default);

}  // namespace ihs::store::internal

#endif  // IHS_STORE_INTERNAL_DB_OPTIONS_H_
