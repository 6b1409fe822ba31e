// Column families of the store and the layout of their keys and values (docs/format.md has the
// same as tables). Integers in keys are fixed-width big-endian, so byte order is numeric order.
//
//   default       "format_version"        -> fixed32 BE
//                 "master_key_check"      -> 32 bytes: BLAKE2b-256(key = master, "ihs master key
//                 check v1") "next_stream_no"        -> fixed64 BE
//   events        position: fixed64       -> record (see codec.h)
//   stream_index  stream_no: fixed64 | version: fixed64 -> position: fixed64
//   stream_meta   stream id (UTF-8)       -> StreamMeta (see EncodeStreamMeta)
//   event_ids     event id (16 bytes)     -> EventIdValue (see EncodeEventIdValue)
//   content_keys  stream id (UTF-8)       -> wrapped data key (see content_keys.h)
//   merkle        level: u8 | index: fixed64 -> SHA-256 of the complete subtree (32 bytes)
//   state.NAME    the projection's own keys and values (projections/; docs/format.md)
#ifndef IHS_STORE_INTERNAL_KEYS_H_
#define IHS_STORE_INTERNAL_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/big_endian.h"

namespace ihs::store::internal {

inline constexpr char kCfEvents[] = "events";
inline constexpr char kCfStreamIndex[] = "stream_index";
inline constexpr char kCfStreamMeta[] = "stream_meta";
inline constexpr char kCfEventIds[] = "event_ids";
inline constexpr char kCfContentKeys[] = "content_keys";
inline constexpr char kCfMerkle[] = "merkle";
// State families of projections/: "state." + name (EventStore::CreateStateFamily).
inline constexpr char kCfStatePrefix[] = "state.";

inline constexpr char kMetaFormatVersion[] = "format_version";
inline constexpr char kMetaMasterKeyCheck[] = "master_key_check";
inline constexpr char kMetaNextStreamNo[] = "next_stream_no";
// No event is recorded before it (LogReader::Watermark), across restarts.
inline constexpr char kMetaRecordedFloor[] = "recorded_floor";
// A caller's mark (EventStore::AppendMarked): "mark/" + the caller's key.
inline std::string MarkKey(absl::string_view key) { return absl::StrCat("mark/", key); }

inline std::string EventKey(uint64_t position) { return BigEndian64(position); }

inline std::string StreamIndexKey(uint64_t stream_no, uint64_t version) {
  std::string k;
  k.reserve(16);
  PutBigEndian64(&k, stream_no);
  PutBigEndian64(&k, version);
  return k;
}

inline std::string MerkleKey(uint8_t level, uint64_t index) {
  std::string k(1, static_cast<char>(level));
  PutBigEndian64(&k, index);
  return k;
}

// Per-stream metadata.
//   value := format: u8 (=1) | stream_no: fixed64 | event_count: fixed64 |
//            first_position: fixed64 | last_position: fixed64 |
//            first_occurred_at: fixed64 (two's complement) | last_occurred_at: fixed64 |
//            [ flags: u8 (bit 0 held, bit 1 erased) | hold_position: fixed64 |
//              erased_position: fixed64 ]   (only for a party that is or was held or erased)
// A newer writer may append fields; a reader ignores bytes past the ones it knows.
struct StreamMeta {
  uint64_t stream_no = 0;
  uint64_t event_count = 0;
  uint64_t first_position = 0;
  uint64_t last_position = 0;
  int64_t first_occurred_at = 0;
  int64_t last_occurred_at = 0;
  // The legal hold in force (the position of the event that placed it) and the erasure, if any.
  std::optional<uint64_t> hold_position;
  std::optional<uint64_t> erased_position;
};

inline constexpr size_t kStreamMetaBytes = 1 + 6 * 8;
// Written only for a stream that is held or erased, after the fields above (which older readers
// read alone): flags: u8 (1 held, 2 erased) | hold_position: fixed64 | erased_position: fixed64.
inline constexpr size_t kStreamMetaControlBytes = 1 + 2 * 8;

inline std::string EncodeStreamMeta(const StreamMeta& m) {
  std::string v(1, '\x01');
  PutBigEndian64(&v, m.stream_no);
  PutBigEndian64(&v, m.event_count);
  PutBigEndian64(&v, m.first_position);
  PutBigEndian64(&v, m.last_position);
  PutBigEndian64(&v, static_cast<uint64_t>(m.first_occurred_at));
  PutBigEndian64(&v, static_cast<uint64_t>(m.last_occurred_at));
  if (m.hold_position || m.erased_position) {
    v.push_back(static_cast<char>((m.hold_position ? 1 : 0) | (m.erased_position ? 2 : 0)));
    PutBigEndian64(&v, m.hold_position.value_or(0));
    PutBigEndian64(&v, m.erased_position.value_or(0));
  }
  return v;
}

inline std::optional<StreamMeta> DecodeStreamMeta(absl::string_view v) {
  if (v.size() < kStreamMetaBytes || v[0] != '\x01') return std::nullopt;
  const char* p = v.data() + 1;
  StreamMeta m;
  m.stream_no = GetBigEndian64(p);
  m.event_count = GetBigEndian64(p + 8);
  m.first_position = GetBigEndian64(p + 16);
  m.last_position = GetBigEndian64(p + 24);
  m.first_occurred_at = static_cast<int64_t>(GetBigEndian64(p + 32));
  m.last_occurred_at = static_cast<int64_t>(GetBigEndian64(p + 40));
  if (v.size() >= kStreamMetaBytes + kStreamMetaControlBytes) {
    const char* c = v.data() + kStreamMetaBytes;
    const uint8_t flags = static_cast<uint8_t>(c[0]);
    if (flags & 1) m.hold_position = GetBigEndian64(c + 1);
    if (flags & 2) m.erased_position = GetBigEndian64(c + 9);
  }
  return m;
}

inline constexpr size_t kDigestBytes = 32;

// The event-id index: where an acknowledged id lies, and the digest a retry is compared with.
//   value := position: fixed64 | stream_version: fixed64 | digest: 32 bytes
struct EventIdValue {
  uint64_t position = 0;
  uint64_t stream_version = 0;
  std::string digest;  // kDigestBytes
};

inline std::string EncodeEventIdValue(uint64_t position, uint64_t stream_version,
                                      absl::string_view digest) {
  std::string v = BigEndian64(position);
  PutBigEndian64(&v, stream_version);
  v.append(digest.data(), digest.size());
  return v;
}

// nullopt for a value of another size: a damaged entry.
inline std::optional<EventIdValue> DecodeEventIdValue(absl::string_view v) {
  if (v.size() != 16 + kDigestBytes) return std::nullopt;
  return EventIdValue{GetBigEndian64(v.data()), GetBigEndian64(v.data() + 8),
                      std::string(v.substr(16))};
}

}  // namespace ihs::store::internal

#endif  // IHS_STORE_INTERNAL_KEYS_H_
