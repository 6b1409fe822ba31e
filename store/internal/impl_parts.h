// What the files of EventStoreImpl share (store/event_store_impl*.cc, split as RocksDB splits
// DBImpl: open, write, read, verify, proofs, governance, state): small conversions, the stream
// id check, and the records of the write path. Not API.
#ifndef IHS_STORE_INTERNAL_IMPL_PARTS_H_
#define IHS_STORE_INTERNAL_IMPL_PARTS_H_

#include <capnp/message.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "store/event_store_impl.h"
#include "store/internal/content_keys.h"
#include "store/internal/keys.h"
#include "store/internal/merkle.h"

namespace ihs::store {
namespace internal {

inline std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

inline absl::string_view ToView(capnp::Data::Reader d) {
  return absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size());
}
inline absl::string_view ToView(capnp::Text::Reader t) {
  return absl::string_view(t.cStr(), t.size());
}
inline absl::string_view ToView(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}
inline rocksdb::Slice S(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// A stream id: 1 to kMaxStreamIdBytes of UTF-8 without control characters.
absl::Status ValidateStreamId(absl::string_view stream);

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Internal records of the write path.

struct EventStoreImpl::PreparedEvent {
  std::unique_ptr<capnp::MallocMessageBuilder> message;  // the input, streamId filled in
  std::string id;
  std::string digest;
  std::string content;  // canonical Content bytes, or empty
  bool has_content = false;
  // Sealed by the caller's thread when the stream's data key already existed; the leader uses
  // it if the key is still the one it would use, and seals itself otherwise.
  std::optional<internal::Sealed> sealed;
  internal::DataKey sealed_with;
  int64_t occurred_at = 0;
  schema::Event::Which kind = schema::Event::UNSPECIFIED;
  bool lift = false;         // a legalHold event that lifts the hold
  uint32_t key_version = 0;  // of the data key that seals its content: its retention class
  std::vector<uint32_t> expired_versions;  // a contentExpiry event: the keys it deletes
};

struct EventStoreImpl::PreparedAppend {
  const StreamAppend* request;
  std::vector<PreparedEvent> events;
  bool control = false;  // Erase's or SetLegalHold's: one erasureRequest or legalHold event
};

struct EventStoreImpl::PreparedBatch final : PreparedAppends {
  const EventStoreImpl* store = nullptr;  // the one that prepared it
  std::vector<PreparedAppend> appends;
  bool committed = false;
};

struct EventStoreImpl::Writer {
  std::vector<PreparedAppend>* appends;
  const std::pair<std::string, std::string>* mark = nullptr;  // AppendMarked's, if any
  int64_t recorded_at = 0;  // AppendEach's time for this writer (0: the group's clock)
  size_t event_count = 0;
  absl::StatusOr<std::vector<AppendResult>> result;
  bool done = false;
  absl::CondVar cv;
};

// State of one group while the leader stages it: the effect of earlier writers of the group.
struct EventStoreImpl::Group {
  rocksdb::WriteBatch batch;
  internal::Frontier frontier;
  uint64_t next_stream_no = 0;
  int64_t recorded_at = 0;
  absl::flat_hash_map<std::string, internal::StreamMeta> metas;
  struct IdEntry {
    uint64_t position;
    uint64_t version;
    std::string digest;
  };
  absl::flat_hash_map<std::string, IdEntry> ids;
  absl::flat_hash_map<std::string, internal::DataKey> new_keys;
  std::vector<std::string> erased;   // streams whose data keys the group deletes
  std::vector<std::string> expired;  // content_keys rows the group marks expired
  size_t writes = 0;                 // writers that staged events
};

}  // namespace ihs::store

#endif  // IHS_STORE_INTERNAL_IMPL_PARTS_H_
