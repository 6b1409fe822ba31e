#include "store/internal/merkle.h"

#include <sodium.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace ihs::store::internal {

Hash EmptyTreeHash() {
  Hash h;
  crypto_hash_sha256(h.data(), nullptr, 0);
  return h;
}

Hash LeafHash(absl::string_view data) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  const uint8_t prefix = 0x00;
  crypto_hash_sha256_update(&st, &prefix, 1);
  crypto_hash_sha256_update(&st, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  Hash h;
  crypto_hash_sha256_final(&st, h.data());
  return h;
}

Hash NodeHash(const Hash& left, const Hash& right) {
  uint8_t buf[65];
  buf[0] = 0x01;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  Hash h;
  crypto_hash_sha256(h.data(), buf, sizeof(buf));
  return h;
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
