#include "store/tlog.h"

#include <sodium.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace ihs::tlog {
namespace {

Hash Sha256(std::initializer_list<std::string_view> parts) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  for (std::string_view p : parts) {
    crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(p.data()), p.size());
  }
  Hash h;
  crypto_hash_sha256_final(&st, h.data());
  return h;
}

bool Fail(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
  return false;
}

std::string_view View(const PublicKey& k) {
  return std::string_view(reinterpret_cast<const char*>(k.data()), k.size());
}

std::string Hex(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  out.pop_back();
  return out;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// Splits text into lines at '\n'; the text must end with one.
bool Lines(std::string_view text, std::vector<std::string_view>* out) {
  if (text.empty() || text.back() != '\n') return false;
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    out->push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return true;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

uint32_t KeyId(std::string_view name, const PublicKey& key) {
  const Hash h = Sha256({name, std::string_view("\n\x01", 2), View(key)});
  return (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
}

constexpr std::string_view kSignaturePrefix = "\xE2\x80\x94 ";  // an em dash and a space

bool ParseHashLines(const std::vector<std::string_view>& lines, size_t from, size_t to,
                    std::vector<Hash>* out, std::string* why) {
  for (size_t i = from; i < to; ++i) {
    std::string bytes;
    Hash h;
    if (!FromBase64(lines[i], &bytes) || !HashFromBytes(bytes, &h)) {
      return Fail(why, "line " + std::to_string(i + 1) + " is not a base64 SHA-256 hash");
    }
    out->push_back(h);
  }
  return true;
}

}  // namespace

Hash EmptyRoot() { return Sha256({}); }

Hash LeafHash(std::string_view bytes) { return Sha256({std::string_view("\0", 1), bytes}); }

Hash NodeHash(const Hash& left, const Hash& right) {
  return Sha256({std::string_view("\1", 1), AsBytes(left), AsBytes(right)});
}

std::string_view AsBytes(const Hash& h) {
  return std::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

bool HashFromBytes(std::string_view bytes, Hash* out) {
  if (bytes.size() != out->size()) return false;
  std::memcpy(out->data(), bytes.data(), out->size());
  return true;
}

bool VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf, const std::vector<Hash>& path,
                     const Hash& root, std::string* why) {
  return VerifyInclusion(index, size, leaf, path, root, why, &NodeHash);
}

bool VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf, const std::vector<Hash>& path,
                     const Hash& root, std::string* why, NodeHasher node_hash) {
  if (index >= size) {
    return Fail(why, "position " + std::to_string(index) + " is not in a tree of " +
                         std::to_string(size) + " events");
  }
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : path) {
    if (sn == 0) return Fail(why, "the audit path is longer than the tree is deep");
    if ((fn & 1) != 0 || fn == sn) {
      r = node_hash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Fail(why, "the audit path is shorter than the tree is deep");
  if (r != root) return Fail(why, "the audit path does not lead to the head's root");
  return true;
}

bool VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                       const Hash& new_root, const std::vector<Hash>& proof, std::string* why) {
  if (old_size > new_size) {
    return Fail(why, "the old head (" + std::to_string(old_size) +
                         " events) is larger than the new one (" + std::to_string(new_size) + ")");
  }
  // The empty tree has one root, the hash of nothing (RFC 9162 section 2.1.1), whatever a head
  // or a caller says.
  if (old_size == 0 && old_root != EmptyRoot()) {
    return Fail(why, "the old root is not the empty tree's (SHA-256 of nothing)");
  }
  if (new_size == 0 && new_root != EmptyRoot()) {
    return Fail(why, "the new root is not the empty tree's (SHA-256 of nothing)");
  }
  if (old_size == new_size) {
    if (!proof.empty()) return Fail(why, "heads of one size need an empty proof");
    if (old_root != new_root) return Fail(why, "two heads of the same size have other roots");
    return true;
  }
  if (old_size == 0) {
    if (!proof.empty()) return Fail(why, "a proof from the empty tree must be empty");
    return true;
  }
  if (proof.empty()) return Fail(why, "the consistency proof is empty");
  std::vector<Hash> path;
  if ((old_size & (old_size - 1)) == 0) path.push_back(old_root);
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = old_size - 1, sn = new_size - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0], sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return Fail(why, "the consistency proof is longer than the tree is deep");
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Fail(why, "the consistency proof is shorter than the tree is deep");
  if (fr != old_root) {
    // A rewritten log and a damaged proof look the same from here: say what is established.
    return Fail(why, "the proof does not lead to the old head's root: either the log's first " +
                         std::to_string(old_size) +
                         " events were rewritten, or the proof is damaged (ask for it again, "
                         "from another copy if you can)");
  }
  if (sr != new_root) return Fail(why, "the proof does not lead to the new head's root");
  return true;
}

std::string OriginFor(const PublicKey& key) {
  const Hash h = Sha256({View(key)});
  return "ihs/" + Hex(std::string_view(reinterpret_cast<const char*>(h.data()), 8));
}

VerifierKey VerifierKeyFor(const PublicKey& key) {
  VerifierKey k;
  k.name = OriginFor(key);
  k.key = key;
  k.key_id = KeyId(k.name, key);
  return k;
}

std::string FormatVerifierKey(const VerifierKey& k) {
  char id[9];
  std::snprintf(id, sizeof(id), "%08x", k.key_id);
  std::string typed(1, '\x01');
  typed.append(View(k.key));
  return k.name + "+" + id + "+" + Base64(typed);
}

bool ParseVerifierKey(std::string_view text, VerifierKey* out, std::string* why) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  const size_t a = text.find('+');
  const size_t b = a == std::string_view::npos ? a : text.find('+', a + 1);
  if (a == std::string_view::npos || b == std::string_view::npos || b - a != 9 || a == 0) {
    return Fail(why, "a verifier key is NAME+KEYID+KEY (as `ihs audit pubkey` prints it)");
  }
  std::string typed;
  if (!FromBase64(text.substr(b + 1), &typed) || typed.size() != 1 + kPublicKeyBytes ||
      typed[0] != '\x01') {
    return Fail(why, "the verifier key's KEY is not an Ed25519 key (base64 of 0x01 || 32 bytes)");
  }
  VerifierKey k;
  k.name = std::string(text.substr(0, a));
  std::memcpy(k.key.data(), typed.data() + 1, kPublicKeyBytes);
  k.key_id = KeyId(k.name, k.key);
  char id[9];
  std::snprintf(id, sizeof(id), "%08x", k.key_id);
  if (text.substr(a + 1, 8) != id) return Fail(why, "the verifier key's KEYID does not match it");
  *out = k;
  return true;
}

std::string SignHead(const TreeHead& head, const std::array<uint8_t, kSecretKeyBytes>& secret) {
  PublicKey pub;
  std::memcpy(pub.data(), secret.data() + 32, kPublicKeyBytes);  // libsodium: seed | public
  const std::string body = head.origin + "\n" + std::to_string(head.size) + "\n" +
                           Base64(AsBytes(head.root)) + "\ntime " +
                           std::to_string(head.time_micros) + "\n";
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(body.data()),
                       body.size(), secret.data());
  const uint32_t id = KeyId(head.origin, pub);
  std::string blob{static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                   static_cast<char>(id >> 8), static_cast<char>(id)};
  blob.append(reinterpret_cast<const char*>(sig), sizeof(sig));
  return body + "\n" + std::string(kSignaturePrefix) + head.origin + " " + Base64(blob) + "\n";
}

bool ParseHead(std::string_view note, TreeHead* out, std::vector<HeadSignature>* signatures,
               std::string* why) {
  // C2SP signed-note: the text, a blank line, then one or more signature lines; the text of a
  // tlog-checkpoint is origin, size, root, then optional extension lines (ihs writes one, "time").
  if (note.empty() || note.back() != '\n') {
    return Fail(why, "not a signed tree head: it does not end with a newline");
  }
  const size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) {
    return Fail(why, "not a signed tree head: no blank line before the signatures");
  }
  const std::string_view body = note.substr(0, split + 1);
  std::vector<std::string_view> lines, sigs;
  if (!Lines(body, &lines) || lines.size() < 3 || !Lines(note.substr(split + 2), &sigs) ||
      sigs.empty()) {
    return Fail(why,
                "not a signed tree head: origin, size and root lines, a blank line and "
                "signature lines expected");
  }
  TreeHead h;
  h.origin = std::string(lines[0]);
  if (h.origin.empty()) return Fail(why, "the head's origin line is empty");
  std::string root;
  if (!ParseU64(lines[1], &h.size)) return Fail(why, "the head's size line is not a number");
  if (!FromBase64(lines[2], &root) || !HashFromBytes(root, &h.root)) {
    return Fail(why, "the head's root line is not a base64 SHA-256 hash");
  }
  for (size_t i = 3; i < lines.size(); ++i) {
    if (!StartsWith(lines[i], "time ")) continue;  // an extension line of someone else's
    uint64_t time = 0;
    if (!ParseU64(lines[i].substr(5), &time) || time > static_cast<uint64_t>(INT64_MAX)) {
      return Fail(why, "the head's time line is not \"time MICROSECONDS\"");
    }
    h.time_micros = static_cast<int64_t>(time);
  }
  if (h.size == 0 && h.root != EmptyRoot()) {
    return Fail(why, "a head of size 0 must carry the empty tree's root (SHA-256 of nothing)");
  }
  std::vector<HeadSignature> parsed;
  for (std::string_view s : sigs) {
    if (!StartsWith(s, kSignaturePrefix)) return Fail(why, "a malformed signature line");
    s.remove_prefix(kSignaturePrefix.size());
    const size_t sp = s.find(' ');
    if (sp == std::string_view::npos || sp == 0) return Fail(why, "a malformed signature line");
    HeadSignature sig;
    sig.name = std::string(s.substr(0, sp));
    // Any length past the key id: a witness cosignature (4 + 72 bytes), a key type of
    // tomorrow. Only the signatures of a key the verifier knows are checked.
    if (!FromBase64(s.substr(sp + 1), &sig.blob) || sig.blob.size() < 5) {
      return Fail(why, "a signature line does not hold a key id and a signature in base64");
    }
    sig.key_id = (uint32_t{static_cast<uint8_t>(sig.blob[0])} << 24) |
                 (uint32_t{static_cast<uint8_t>(sig.blob[1])} << 16) |
                 (uint32_t{static_cast<uint8_t>(sig.blob[2])} << 8) |
                 uint32_t{static_cast<uint8_t>(sig.blob[3])};
    parsed.push_back(std::move(sig));
  }
  *out = std::move(h);
  if (signatures != nullptr) *signatures = std::move(parsed);
  return true;
}

bool OpenHead(std::string_view note, const VerifierKey& key, TreeHead* out, std::string* why) {
  if (sodium_init() < 0) return Fail(why, "libsodium failed to start");
  TreeHead h;
  std::vector<HeadSignature> sigs;
  if (!ParseHead(note, &h, &sigs, why)) return false;
  if (h.origin != key.name) {
    return Fail(why, "the head is from another store: " + h.origin + ", not " + key.name);
  }
  const std::string_view body = note.substr(0, note.rfind("\n\n") + 1);
  // Signatures by other keys are ignored, whatever their length or order (C2SP signed-note);
  // the first by this key decides (as Go's note.Open does).
  for (const HeadSignature& s : sigs) {
    if (s.name != key.name || s.key_id != key.key_id) continue;
    if (s.blob.size() != 4 + crypto_sign_BYTES ||
        crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(s.blob.data() + 4),
                                    reinterpret_cast<const unsigned char*>(body.data()),
                                    body.size(), key.key.data()) != 0) {
      return Fail(why, "the head's signature is wrong: it was not signed by " + key.name +
                           ", or it was changed after");
    }
    *out = h;
    return true;
  }
  return Fail(why, "the head carries no signature by " + key.name + " (a head of another store)");
}

std::string FormatInclusionProof(const InclusionProof& p) {
  std::string s = "ihs inclusion proof v1\nindex " + std::to_string(p.index) + "\nleaf " +
                  Base64(p.leaf_bytes) + "\n";
  for (const Hash& h : p.path) s += Base64(AsBytes(h)) + "\n";
  return s + "\n" + p.head;
}

bool ParseInclusionProof(std::string_view text, InclusionProof* out, std::string* why) {
  const size_t split = text.find("\n\n");
  std::vector<std::string_view> lines;
  if (split == std::string_view::npos || !Lines(text.substr(0, split + 1), &lines) ||
      lines.size() < 3 || lines[0] != "ihs inclusion proof v1") {
    return Fail(why, "not an ihs inclusion proof (its first line is \"ihs inclusion proof v1\")");
  }
  InclusionProof p;
  if (!StartsWith(lines[1], "index ") || !ParseU64(lines[1].substr(6), &p.index)) {
    return Fail(why, "line 2 of the proof is not \"index N\"");
  }
  if (!StartsWith(lines[2], "leaf ") || !FromBase64(lines[2].substr(5), &p.leaf_bytes)) {
    return Fail(why, "line 3 of the proof is not \"leaf BASE64\"");
  }
  if (!ParseHashLines(lines, 3, lines.size(), &p.path, why)) return false;
  p.head = std::string(text.substr(split + 2));
  *out = std::move(p);
  return true;
}

std::string FormatConsistencyProof(const ConsistencyProof& p) {
  std::string s = "ihs consistency proof v1\nold " + std::to_string(p.old_size) + "\nnew " +
                  std::to_string(p.new_size) + "\n";
  for (const Hash& h : p.path) s += Base64(AsBytes(h)) + "\n";
  return s;
}

bool ParseConsistencyProof(std::string_view text, ConsistencyProof* out, std::string* why) {
  std::vector<std::string_view> lines;
  if (!Lines(text, &lines) || lines.size() < 3 || lines[0] != "ihs consistency proof v1") {
    return Fail(why,
                "not an ihs consistency proof (its first line is \"ihs consistency proof v1\")");
  }
  ConsistencyProof p;
  if (!StartsWith(lines[1], "old ") || !ParseU64(lines[1].substr(4), &p.old_size) ||
      !StartsWith(lines[2], "new ") || !ParseU64(lines[2].substr(4), &p.new_size)) {
    return Fail(why, "lines 2 and 3 of the proof are not \"old M\" and \"new N\"");
  }
  if (!ParseHashLines(lines, 3, lines.size(), &p.path, why)) return false;
  *out = std::move(p);
  return true;
}

std::string Base64(std::string_view bytes) {
  const size_t n = sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(n, '\0');
  sodium_bin2base64(out.data(), n, reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(n - 1);  // the terminating NUL
  return out;
}

bool FromBase64(std::string_view text, std::string* out) {
  std::string bin(text.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), text.data(),
                        text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return false;
  }
  bin.resize(len);
  *out = std::move(bin);
  return true;
}

}  // namespace ihs::tlog
