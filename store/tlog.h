// What an auditor needs to check the log without trusting the operator, and without ihs: RFC 9162
// proof verification, signed tree heads as C2SP signed notes (tlog-checkpoint), verifier keys as
// Go's note package writes them, and ihs's proof files. docs/audit.md gives every byte.
//
// This file depends on libsodium and the C++ standard library only, so that the stand-alone
// verifier (tools/ihs-verify) builds from it alone. Hashing here uses libsodium's SHA-256; the
// store's append path uses OpenSSL's (store/internal/merkle.cc). Both are SHA-256, and the tests
// check that the two agree.
#ifndef IHS_STORE_TLOG_H_
#define IHS_STORE_TLOG_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ihs::tlog {

using Hash = std::array<uint8_t, 32>;

Hash LeafHash(std::string_view stored_event_bytes);  // SHA-256(0x00 || bytes)
Hash NodeHash(const Hash& left, const Hash& right);  // SHA-256(0x01 || left || right)
std::string_view AsBytes(const Hash& h);
bool HashFromBytes(std::string_view bytes, Hash* out);

// RFC 9162 section 2.1.3.2: the leaf at `index` is in the tree of `size` leaves with `root`.
// On false, `why` says what failed.
bool VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf, const std::vector<Hash>& path,
                     const Hash& root, std::string* why);
// The same with another implementation of the RFC's node hash, SHA-256(0x01 || left || right):
// the store passes its hardware-accelerated one when it checks many paths (verify-party).
using NodeHasher = Hash (*)(const Hash& left, const Hash& right);
bool VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf, const std::vector<Hash>& path,
                     const Hash& root, std::string* why, NodeHasher node_hash);

// RFC 9162 section 2.1.4.2: the tree of `new_size` leaves with `new_root` extends the tree of
// `old_size` leaves with `old_root` unchanged. A root of size 0 must be the empty tree's. When the
// proof does not lead to the old root, `why` says that the log was rewritten or the proof is
// damaged: the two cannot be told apart from the proof alone.
bool VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                       const Hash& new_root, const std::vector<Hash>& proof, std::string* why);

// --- Keys and signed tree heads -------------------------------------------------------------

inline constexpr size_t kPublicKeyBytes = 32;  // Ed25519
inline constexpr size_t kSecretKeyBytes = 64;  // libsodium's seed | public key
using PublicKey = std::array<uint8_t, kPublicKeyBytes>;

// The store's name in its heads: "ihs/" + the first 8 bytes of SHA-256(public key), in hex.
// Another store has another key, so another name.
std::string OriginFor(const PublicKey& key);

struct VerifierKey {
  std::string name;
  uint32_t key_id = 0;  // the first 4 bytes of SHA-256(name || 0x0A || 0x01 || key), big-endian
  PublicKey key{};
};
// "NAME+KEYID+BASE64(0x01 || key)", as golang.org/x/mod/sumdb/note writes verifier keys.
std::string FormatVerifierKey(const VerifierKey& k);
bool ParseVerifierKey(std::string_view text, VerifierKey* out, std::string* why);
VerifierKey VerifierKeyFor(const PublicKey& key);

struct TreeHead {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  int64_t time_micros = 0;  // when the store signed it, µs since 1970 UTC
};

// The head as a signed note:
//   ORIGIN \n SIZE \n BASE64(ROOT) \n "time " MICROS \n \n "— " ORIGIN " " BASE64(KEYID || SIG) \n
std::string SignHead(const TreeHead& head, const std::array<uint8_t, kSecretKeyBytes>& secret);

// One signature line of a signed note: "— NAME BASE64(KEYID || SIGNATURE)".
struct HeadSignature {
  std::string name;
  uint32_t key_id = 0;
  std::string blob;  // key id and signature, as decoded
};

// Parses a signed head without checking any signature: refuses, saying why, text that is not a
// C2SP signed note holding a tlog-checkpoint (origin, size, base64 root, optional extension
// lines, of which "time MICROS" is read), and a head of size 0 whose root is not the empty
// tree's. `signatures` (may be null) gets every signature line, of any key.
bool ParseHead(std::string_view note, TreeHead* out, std::vector<HeadSignature>* signatures,
               std::string* why);

// Parses a signed head and checks its signature by `key`, ignoring the signatures of other keys
// (witness cosignatures among them) whatever their length or order. Refuses, saying why:
// malformed text, a head of another store (another origin or key), a bad signature.
bool OpenHead(std::string_view note, const VerifierKey& key, TreeHead* out, std::string* why);

// The root of the empty tree: SHA-256 of nothing (RFC 9162 section 2.1.1).
Hash EmptyRoot();

// --- Proof files ----------------------------------------------------------------------------

// "ihs inclusion proof v1" \n "index " N \n "leaf " BASE64(stored event bytes) \n
// BASE64(hash) \n ... (the audit path, leaf to root) \n \n (the signed head, verbatim)
struct InclusionProof {
  uint64_t index = 0;
  std::string leaf_bytes;  // the event's stored bytes: the verifier hashes them itself
  std::vector<Hash> path;
  std::string head;  // the signed note it proves against
};
std::string FormatInclusionProof(const InclusionProof& p);
bool ParseInclusionProof(std::string_view text, InclusionProof* out, std::string* why);

// "ihs consistency proof v1" \n "old " M \n "new " N \n BASE64(hash) \n ...
struct ConsistencyProof {
  uint64_t old_size = 0, new_size = 0;
  std::vector<Hash> path;
};
std::string FormatConsistencyProof(const ConsistencyProof& p);
bool ParseConsistencyProof(std::string_view text, ConsistencyProof* out, std::string* why);

std::string Base64(std::string_view bytes);
bool FromBase64(std::string_view text, std::string* out);

}  // namespace ihs::tlog

#endif  // IHS_STORE_TLOG_H_
