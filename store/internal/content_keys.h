// Crypto of personal content (DESIGN.md decision 5), all through libsodium:
// - the master key: 32 random bytes in a file outside the database (64 hex characters and a
//   newline, mode 0600), created when a new store is created;
// - per-stream data keys (32 random bytes; one per retention class and year, below), stored in
//   the content_keys column family wrapped
//   by the master key with XChaCha20-Poly1305:
//     value := format: u8 (=1) | key_version: fixed32 BE | nonce: 24 bytes | wrapped: 48 bytes
//     additional data := "ihs-dek-v1" | key_version: fixed32 BE | stream id
//   Erasing a party deletes this row; its content can then never be opened again.
// - content sealed with the data key: see SealedContent in schema/event.capnp;
// - an idempotency digest: BLAKE2b-256 keyed with a key derived from the master key, so that
//   the digest of an erased party's content reveals nothing without the master key.
// Functions are thread-safe; SodiumInit() must have run (EventStore::Open does it).
#ifndef IHS_STORE_INTERNAL_CONTENT_KEYS_H_
#define IHS_STORE_INTERNAL_CONTENT_KEYS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ihs::store::internal {

using SecretKey = std::array<uint8_t, 32>;

absl::Status SodiumInit();

// Reads a file of 32 secret bytes (64 hex characters, mode 0600); with `create`, makes a new
// one if the file does not exist. `what` names it in errors; `if_missing` says what to do.
absl::StatusOr<SecretKey> LoadOrCreateKeyFile(const std::string& path, bool create,
                                              absl::string_view what,
                                              absl::string_view if_missing);

// Reads the master key file; with `create`, makes a new one if the file does not exist.
absl::StatusOr<SecretKey> LoadOrCreateMasterKey(const std::string& path, bool create);

// A value stored beside the data that tells whether a master key is the store's.
std::string MasterKeyCheck(const SecretKey& master);

// The key of the idempotency digest, derived from the master key.
SecretKey DigestKey(const SecretKey& master);
// The key of blind indexes (LogReader::BlindIndexKey), derived from the master key.
SecretKey BlindIndexKey(const SecretKey& master);
std::string KeyedDigest(const SecretKey& key, absl::string_view data);  // 32 bytes

struct DataKey {
  uint32_t version = 0;
  SecretKey key{};
};

// Keys by retention class (format 2): content is sealed with a key of its party, its class
// (channel and touchpoint type) and the UTC year of its occurredAt, so that retention can delete
// the keys of one class and year (docs/audit.md "Retention"). The version names the class:
//   version := year << 10 | channel << 5 | type   (year 1..4,194,303; channel, type < 32)
// Version 1 is a store's single key per party from format 1, which stays readable.
inline constexpr uint32_t kPartyKeyVersion = 1;
uint32_t ClassKeyVersion(uint16_t channel, uint16_t type, int64_t occurred_at_micros);
uint32_t ClassKeyVersionOfYear(uint16_t channel, uint16_t type, int32_t year);
// The value of a row whose key retention deleted: this tag, then the position (fixed64 BE) of
// the contentExpiry event. It holds no key material, and keeps the version from being reused.
inline constexpr char kExpiredKeyTag = '\x02';
struct KeyClass {
  uint16_t channel = 0;
  uint16_t type = 0;
  int32_t year = 0;
};
// nullopt for version 1.
std::optional<KeyClass> ClassOfKeyVersion(uint32_t version);
// The row of a key in content_keys: the stream id for version 1, else stream id | 0x00 |
// version: fixed32 BE (stream ids hold no control characters, so the rows of one stream are the
// range [stream, stream | 0x01)).
std::string ContentKeyRow(absl::string_view stream, uint32_t version);
// The stream and version of a row; false if it is malformed.
bool ParseContentKeyRow(absl::string_view row, std::string* stream, uint32_t* version);

DataKey NewDataKey(uint32_t version);
std::string WrapDataKey(const SecretKey& master, absl::string_view stream, const DataKey& key);
// kDataLoss if the wrapped key fails to authenticate (tampered, or another master key).
absl::StatusOr<DataKey> UnwrapDataKey(const SecretKey& master, absl::string_view stream,
                                      absl::string_view wrapped);

struct Sealed {
  std::string nonce;       // 24 bytes
  std::string ciphertext;  // plaintext size + 16
};

// `nonce` must never repeat under one key: the store uses 16 random bytes drawn when it opens,
// followed by the event's position (big-endian), which no other event of that open shares.
Sealed SealContent(const DataKey& key, absl::string_view nonce, absl::string_view additional_data,
                   absl::string_view plaintext);
std::string RandomBytes(size_t n);
// kDataLoss if the ciphertext fails to authenticate.
absl::StatusOr<std::string> OpenContent(const DataKey& key, absl::string_view additional_data,
                                        absl::string_view nonce, absl::string_view ciphertext);

}  // namespace ihs::store::internal

#endif  // IHS_STORE_INTERNAL_CONTENT_KEYS_H_
