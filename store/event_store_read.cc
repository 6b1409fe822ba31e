// EventStoreImpl's reads: events by stream and by position, content opened with its data key.

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "store/event_store_impl.h"
#include "store/internal/codec.h"
#include "store/internal/impl_parts.h"
#include "store/internal/rocks_status.h"

namespace ihs::store {

using internal::DataKey;
using internal::FromRocksStatus;
using internal::StreamMeta;
using internal::ToView;
using internal::ValidateStreamId;

// ---------------------------------------------------------------------------------------------
// Reads.

absl::StatusOr<std::optional<DataKey>> EventStoreImpl::DataKeyForRead(absl::string_view stream,
                                                                      uint32_t version,
                                                                      bool* expired) {
  const std::string row = internal::ContentKeyRow(stream, version);
  {
    MutexLock l(&keys_mu_);
    if (auto it = keys_.find(row); it != keys_.end()) return std::optional<DataKey>(it->second);
    if (expired_.contains(row)) {
      if (expired != nullptr) *expired = true;
      return std::optional<DataKey>();
    }
    // A bulk load's store was new at open: every key it holds was made since, and is in keys_.
    if (options_.bulk_load) return std::optional<DataKey>();
  }
  std::string wrapped;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_content_keys_, row, &wrapped);
  if (s.IsNotFound()) return std::optional<DataKey>();
  IHS_RETURN_IF_ERROR(FromRocksStatus(s, absl::StrCat("read data key of stream ", stream)));
  if (!wrapped.empty() && wrapped[0] == internal::kExpiredKeyTag) {
    if (expired != nullptr) *expired = true;
    return std::optional<DataKey>();
  }
  IHS_ASSIGN_OR_RETURN(DataKey key, internal::UnwrapDataKey(master_, stream, wrapped));
  if (key.version != version) {
    return absl::DataLossError(absl::StrCat("data key of stream ", stream, " under version ",
                                            version, " says it is version ", key.version));
  }
  MutexLock l(&keys_mu_);
  // Erased (or expired) while we read: not put back.
  if (erased_.contains(stream) || expired_.contains(row)) return std::optional<DataKey>();
  keys_[row] = key;
  return std::optional<DataKey>(key);
}

absl::StatusOr<StoredEvent> EventStoreImpl::MakeStoredEvent(uint64_t position,
                                                            absl::string_view bytes,
                                                            const ReadOptions& options) {
  IHS_ASSIGN_OR_RETURN(std::unique_ptr<internal::StoredEventRep> rep,
                       internal::DecodeRecord(position, bytes));
  if (options.open_content && rep->content_state == ContentState::kSealed) {
    auto ev = rep->root;
    absl::string_view stream = ToView(ev.getStreamId());
    IHS_ASSIGN_OR_RETURN(std::optional<DataKey> key,
                         DataKeyForRead(stream, ev.getSealedContent().getKeyVersion()));
    if (!key) {
      rep->content_state = ContentState::kErased;
    } else {
      auto sc = ev.getSealedContent();
      std::string ad = absl::StrCat(ToView(ev.getId()), stream);
      absl::StatusOr<std::string> plain =
          internal::OpenContent(*key, ad, ToView(sc.getNonce()), ToView(sc.getCiphertext()));
      if (!plain.ok()) {
        return absl::DataLossError(
            absl::StrCat("event at position ", position, ": ", plain.status().message()));
      }
      IHS_ASSIGN_OR_RETURN(rep->content,
                           CanonicalMessage::Parse<schema::Content>(
                               *plain, absl::StrCat("content of event at position ", position)));
      if (std::string problem =
              internal::ContentShapeProblem(rep->content->root<schema::Content>());
          !problem.empty()) {
        return absl::DataLossError(
            absl::StrCat("content of event at position ", position, " is malformed: ", problem));
      }
      rep->content_state = ContentState::kOpen;
    }
  }
  return internal::StoredEventAccess::Make(std::move(rep));
}

absl::StatusOr<std::vector<StoredEvent>> EventStoreImpl::ReadStream(absl::string_view stream,
                                                                    uint64_t from_version,
                                                                    size_t max_count,
                                                                    ReadDirection direction,
                                                                    const ReadOptions& options) {
  IHS_RETURN_IF_ERROR(ValidateStreamId(stream));
  IHS_ASSIGN_OR_RETURN(std::optional<StreamMeta> meta, LoadMeta(stream));
  if (!meta) return absl::NotFoundError(absl::StrCat("no such stream: ", stream));
  std::vector<StoredEvent> out;
  if (max_count == 0 || meta->event_count == 0) return out;
  uint64_t lo, hi;  // versions [lo, hi)
  if (direction == ReadDirection::kForward) {
    if (from_version >= meta->event_count) return out;
    lo = from_version;
    hi = lo + std::min<uint64_t>(max_count, meta->event_count - lo);
  } else {
    uint64_t start = std::min(from_version, meta->event_count - 1);
    hi = start + 1;
    lo = hi - std::min<uint64_t>(max_count, hi);
  }
  std::string lower = internal::StreamIndexKey(meta->stream_no, lo);
  std::string upper = internal::StreamIndexKey(meta->stream_no, hi);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::vector<std::string> keys;
  keys.reserve(hi - lo);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_stream_index_));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    if (it->value().size() != 8) return absl::DataLossError("stream index value is malformed");
    keys.emplace_back(it->value().data(), 8);
  }
  IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), absl::StrCat("read stream ", stream)));
  if (keys.size() != hi - lo) {
    return absl::DataLossError(absl::StrCat("stream ", stream, " index has ", keys.size(),
                                            " entries for versions [", lo, ", ", hi, ")"));
  }
  if (direction == ReadDirection::kBackward) std::reverse(keys.begin(), keys.end());

  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), cf_events_, keys.size(), slices.data(), values.data(),
                statuses.data());
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    uint64_t position = GetBigEndian64(keys[i].data());
    if (!statuses[i].ok()) {
      return FromRocksStatus(statuses[i].IsNotFound()
                                 ? rocksdb::Status::Corruption("event missing from the log")
                                 : statuses[i],
                             absl::StrCat("read event at position ", position));
    }
    IHS_ASSIGN_OR_RETURN(StoredEvent e, MakeStoredEvent(position, ToView(values[i]), options));
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<StoredEvent>> EventStoreImpl::ReadAll(uint64_t from_position,
                                                                 size_t max_count,
                                                                 const ReadOptions& options) {
  const uint64_t head = Head();
  if (from_position > head) {
    return absl::OutOfRangeError(
        absl::StrCat("position ", from_position, " is past the log's end (", head, ")"));
  }
  std::vector<StoredEvent> out;
  const uint64_t end = from_position + std::min<uint64_t>(max_count, head - from_position);
  if (end == from_position) return out;
  out.reserve(end - from_position);
  if (end - from_position == 1) {
    // One event (a projection looking up the event an id names): a point lookup, which costs
    // a fraction of an iterator's creation and seek.
    rocksdb::PinnableSlice value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cf_events_, internal::EventKey(from_position), &value);
    if (s.IsNotFound()) {
      return absl::DataLossError(absl::StrCat("the log has no event at position ", from_position));
    }
    IHS_RETURN_IF_ERROR(FromRocksStatus(s, "read the log"));
    IHS_ASSIGN_OR_RETURN(StoredEvent e, MakeStoredEvent(from_position, ToView(value), options));
    out.push_back(std::move(e));
    return out;
  }
  std::string upper = internal::EventKey(end);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_events_));
  uint64_t expected = from_position;
  size_t bytes = 0;
  for (it->Seek(internal::EventKey(from_position)); it->Valid(); it->Next(), ++expected) {
    if (it->key().size() != 8 || GetBigEndian64(it->key().data()) != expected) {
      return absl::DataLossError(absl::StrCat("the log has no event at position ", expected));
    }
    IHS_ASSIGN_OR_RETURN(StoredEvent e, MakeStoredEvent(expected, ToView(it->value()), options));
    out.push_back(std::move(e));
    bytes += it->value().size();
    if (options.max_bytes != 0 && bytes >= options.max_bytes) {
      ++expected;
      break;
    }
  }
  IHS_RETURN_IF_ERROR(FromRocksStatus(it->status(), "read the log"));
  if (expected != end && (options.max_bytes == 0 || bytes < options.max_bytes)) {
    return absl::DataLossError(absl::StrCat("the log has no event at position ", expected));
  }
  return out;
}

absl::StatusOr<StreamInfo> EventStoreImpl::GetStreamInfo(absl::string_view stream) {
  IHS_RETURN_IF_ERROR(ValidateStreamId(stream));
  IHS_ASSIGN_OR_RETURN(std::optional<StreamMeta> meta, LoadMeta(stream));
  if (!meta) return absl::NotFoundError(absl::StrCat("no such stream: ", stream));
  StreamInfo info;
  info.stream = std::string(stream);
  info.event_count = meta->event_count;
  info.current_version = meta->event_count - 1;
  info.first_position = meta->first_position;
  info.last_position = meta->last_position;
  info.first_occurred_at = meta->first_occurred_at;
  info.last_occurred_at = meta->last_occurred_at;
  info.hold_position = meta->hold_position;
  info.erased_position = meta->erased_position;
  return info;
}

absl::StatusOr<std::optional<std::string>> EventStoreImpl::ReadMark(absl::string_view mark_key) {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf_meta_, internal::MarkKey(mark_key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  IHS_RETURN_IF_ERROR(FromRocksStatus(s, "read a mark"));
  return std::optional<std::string>(std::move(value));
}

absl::Status EventStoreImpl::SyncLog() {
  if (options_.read_only) return absl::OkStatus();
  return FromRocksStatus(db_->SyncWAL(), "sync the write-ahead log");
}

}  // namespace ihs::store
