#include "store/internal/merkle.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace ihs::store::internal {

namespace {

// SHA-256 through OpenSSL, which uses the CPU's SHA extensions where there are any (libsodium's
// SHA-256 is portable C, several times slower, and hashing is on the append path).
Hash Sha256(std::initializer_list<absl::string_view> parts) {
  static const EVP_MD* const kSha256 = EVP_sha256();
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  thread_local std::unique_ptr<EVP_MD_CTX, Free> owned(EVP_MD_CTX_new());  // one per thread
  EVP_MD_CTX* ctx = owned.get();
  Hash h;
  EVP_DigestInit_ex(ctx, kSha256, nullptr);
  for (absl::string_view p : parts) EVP_DigestUpdate(ctx, p.data(), p.size());
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, h.data(), &len);
  return h;
}

}  // namespace

Hash EmptyTreeHash() { return Sha256({}); }

Hash LeafHash(absl::string_view data) { return Sha256({absl::string_view("\0", 1), data}); }

Hash NodeHash(const Hash& left, const Hash& right) {
  return Sha256({absl::string_view("\1", 1), HashBytes(left), HashBytes(right)});
}

bool HashFromBytes(absl::string_view bytes, Hash* out) {
  if (bytes.size() != out->size()) return false;
  std::memcpy(out->data(), bytes.data(), out->size());
  return true;
}

std::vector<SubtreeId> SubtreesOf(uint64_t n) {
  std::vector<SubtreeId> out;
  uint64_t offset = 0;
  for (int level = 63; level >= 0; --level) {
    uint64_t width = uint64_t{1} << level;
    if (n & width) {
      out.push_back({static_cast<uint8_t>(level), offset >> level});
      offset += width;
    }
  }
  return out;
}

Hash FoldSubtrees(const std::vector<Hash>& hashes) {
  if (hashes.empty()) return EmptyTreeHash();
  Hash acc = hashes.back();
  for (size_t i = hashes.size() - 1; i-- > 0;) acc = NodeHash(hashes[i], acc);
  return acc;
}

absl::StatusOr<Frontier> Frontier::Load(
    uint64_t size, const std::function<absl::StatusOr<Hash>(SubtreeId)>& lookup) {
  Frontier f;
  f.size_ = size;
  for (const SubtreeId& id : SubtreesOf(size)) {
    absl::StatusOr<Hash> h = lookup(id);
    if (!h.ok()) return h.status();
    f.entries_.push_back({id.level, *h});
  }
  return f;
}

void Frontier::Push(const Hash& leaf, const std::function<void(SubtreeId, const Hash&)>& emit) {
  uint64_t index = size_;
  uint8_t level = 0;
  Hash cur = leaf;
  emit({0, index}, cur);
  // Each trailing one bit of the old size is a complete sibling on the frontier that the new
  // leaf pairs with.
  while (index & 1) {
    cur = NodeHash(entries_.back().hash, cur);
    entries_.pop_back();
    ++level;
    index >>= 1;
    emit({level, index}, cur);
  }
  entries_.push_back({level, cur});
  ++size_;
}

Hash Frontier::Root() const {
  std::vector<Hash> hashes;
  hashes.reserve(entries_.size());
  for (const Entry& e : entries_) hashes.push_back(e.hash);
  return FoldSubtrees(hashes);
}

}  // namespace ihs::store::internal
