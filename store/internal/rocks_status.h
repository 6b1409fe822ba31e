// The one place where rocksdb::Status becomes absl::Status, so the mapping is reviewed once.
#ifndef IHS_STORE_INTERNAL_ROCKS_STATUS_H_
#define IHS_STORE_INTERNAL_ROCKS_STATUS_H_

#include <rocksdb/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ihs::store::internal {

// `context` leads the message: "append to stream x: IO error: ...".
absl::Status FromRocksStatus(const rocksdb::Status& s, absl::string_view context);

}  // namespace ihs::store::internal

#endif  // IHS_STORE_INTERNAL_ROCKS_STATUS_H_
