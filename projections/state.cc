// The state of a projection: values sealed with checksums, the transaction of one batch (and of
// a rebuild's bulk phase), and views of a generation for readers.
#include <sodium.h>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "projections/bulk.h"
#include "projections/internal/generation.h"
#include "projections/internal/mem_state.h"
#include "projections/projection.h"

namespace ihs::projections {

namespace {

// A fixed key: the checksum guards against damage, not against an attacker who can write the
// database (the Merkle tree does that for the log; state is rebuilt from the log).
constexpr unsigned char kChecksumKey[crypto_shorthash_KEYBYTES] = {'i', 'h', 's', ' ', 's', 't',
                                                                   'a', 't', 'e', ' ', 'v', '1'};
constexpr size_t kChecksumBytes = crypto_shorthash_BYTES;  // 8

// Into `out` (kChecksumBytes); libsodium's SipHash takes one buffer, so key | payload is copied
// into a buffer that each thread reuses.
void ChecksumInto(absl::string_view key, absl::string_view payload, unsigned char* out) {
  thread_local std::string scratch;
  scratch.assign(key.data(), key.size());
  scratch.append(payload.data(), payload.size());
  crypto_shorthash(out, reinterpret_cast<const unsigned char*>(scratch.data()), scratch.size(),
                   kChecksumKey);
}

std::string Checksum(absl::string_view key, absl::string_view payload) {
  std::string out(kChecksumBytes, '\0');
  ChecksumInto(key, payload, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

}  // namespace

void SealInto(absl::string_view key, absl::string_view payload, std::string* out) {
  unsigned char sum[kChecksumBytes];
  ChecksumInto(key, payload, sum);
  out->assign(payload.data(), payload.size());
  out->append(reinterpret_cast<const char*>(sum), kChecksumBytes);
}

std::string Seal(absl::string_view key, std::string payload) {
  const std::string sum = Checksum(key, payload);
  payload.append(sum);
  return payload;
}

absl::StatusOr<absl::string_view> Unseal(absl::string_view family, absl::string_view key,
                                         absl::string_view value) {
  if (value.size() < kChecksumBytes ||
      Checksum(key, value.substr(0, value.size() - kChecksumBytes)) !=
          value.substr(value.size() - kChecksumBytes)) {
    return absl::DataLossError(absl::StrCat("projection state ", family,
                                            " is corrupt: checksum mismatch at key ",
                                            absl::CHexEscape(key)));
  }
  return value.substr(0, value.size() - kChecksumBytes);
}

Txn::Txn(LogAndState store, std::string family, MemState* mem, uint64_t horizon)
    : store_(store), family_(std::move(family)), mem_(mem) {
  if (mem != nullptr && horizon > 0) bulk_ = std::make_unique<BulkPhase>(this, mem, horizon);
}

Txn::~Txn() = default;

absl::StatusOr<std::optional<std::string>> Txn::Get(absl::string_view key) {
  if (mem_ != nullptr) {
    if (const MemState::Value* v = mem_->Find(key)) {
      if (v->deleted()) return std::nullopt;
      return std::string(v->view());
    }
    if (!mem_->spilled()) return std::nullopt;  // a fresh family holds nothing else
  } else if (auto it = writes_.find(key); it != writes_.end()) {
    return it->second;
  }
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v, store_.state->GetState(family_, key));
  if (!v) return std::nullopt;
  IHS_ASSIGN_OR_RETURN(absl::string_view payload, Unseal(family_, key, *v));
  return std::string(payload);
}

void Txn::Put(absl::string_view key, std::string value) {
  if (mem_ != nullptr) return mem_->Put(key, value);
  writes_[key] = std::move(value);
}

absl::Status Txn::Scan(absl::string_view from, absl::string_view to,
                       const store::StateVisitor& visit) {
  auto in_range = [&](absl::string_view k) { return k >= from && (to.empty() || k < to); };
  // The batch's (or the bulk phase's) own writes in the range; nullopt: deleted.
  std::vector<std::pair<absl::string_view, std::optional<absl::string_view>>> own;
  if (mem_ != nullptr) {
    for (const auto& [k, v] : mem_->index()) {
      if (!in_range(k)) continue;
      own.emplace_back(k, v.deleted() ? std::nullopt : std::optional<absl::string_view>(v.view()));
    }
  } else {
    for (const auto& [k, v] : writes_) {
      if (!in_range(k)) continue;
      own.emplace_back(k, v ? std::optional<absl::string_view>(*v) : std::nullopt);
    }
  }
  std::sort(own.begin(), own.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t next = 0;  // the first of `own` not visited yet
  bool go_on = true;
  // Visits `own` up to (not including) `key`; an empty key: to the end.
  auto own_before = [&](absl::string_view key, bool to_end) {
    while (go_on && next < own.size() && (to_end || own[next].first < key)) {
      const auto& [k, v] = own[next++];
      if (v) go_on = visit(k, *v);
    }
  };
  if (mem_ == nullptr || mem_->spilled()) {
    absl::Status error;
    IHS_RETURN_IF_ERROR(store_.state->ScanState(
        family_, from, to, [&](absl::string_view key, absl::string_view value) {
          own_before(key, false);
          if (!go_on) return false;
          if (next < own.size() && own[next].first == key) {
            const auto& [k, v] = own[next++];
            if (v) go_on = visit(k, *v);
            return go_on;
          }
          absl::StatusOr<absl::string_view> payload = Unseal(family_, key, value);
          if (!payload.ok()) {
            error = payload.status();
            return go_on = false;
          }
          return go_on = visit(key, *payload);
        }));
    IHS_RETURN_IF_ERROR(error);
  }
  own_before(absl::string_view(), true);
  return absl::OkStatus();
}

absl::string_view BulkPhase::Keep(absl::string_view bytes) { return mem_->Copy(bytes).view(); }

void BulkPhase::PutInOrder(absl::string_view key, absl::string_view kept) {
  mem_->PutInOrder(key, MemState::Value{kept.empty() ? "" : kept.data(), kept.size()});
}

absl::StatusOr<std::optional<store::StoredEvent>> BulkPhase::FindLaterEvent(absl::string_view id) {
  return txn_->FindEventIn(id, txn_->position(), horizon_);
}

size_t ShardedRebuild::ShardOf(const store::StoredEvent& event, size_t shards) const {
  const auto stream = event.event().getStreamId();
  return absl::Hash<absl::string_view>()(absl::string_view(stream.cStr(), stream.size())) % shards;
}

absl::StatusOr<std::string> ShardedRebuild::MergeShards(absl::string_view key, std::string a,
                                                        std::string b) {
  (void)a;
  (void)b;
  return absl::UnimplementedError(
      absl::StrCat("two shards wrote the same key ", absl::CHexEscape(key)));
}

void Txn::Delete(absl::string_view key) {
  if (mem_ != nullptr) return mem_->Delete(key);
  writes_[key] = std::nullopt;
}

absl::StatusOr<std::optional<store::StoredEvent>> Txn::FindEarlierEvent(absl::string_view id) {
  return FindEventIn(id, 0, position_);
}

absl::StatusOr<std::optional<store::StoredEvent>> Txn::FindEventIn(absl::string_view id,
                                                                   uint64_t from, uint64_t to) {
  if (id.size() != 16 || from >= to) return std::nullopt;
  IHS_ASSIGN_OR_RETURN(std::optional<uint64_t> pos, store_.log->FindEvent(id));
  if (!pos || *pos < from || *pos >= to) return std::nullopt;
  store::ReadOptions ro;
  ro.open_content = false;
  IHS_ASSIGN_OR_RETURN(std::vector<store::StoredEvent> events, store_.log->ReadAll(*pos, 1, ro));
  if (events.empty()) return std::nullopt;
  return std::move(events[0]);
}

store::StateBatch Txn::Finish(uint64_t checkpoint, uint32_t version) {
  // In key order: RocksDB's memtable inserts a sorted run of keys far faster than random ones
  // (each insert starts from where the previous one ended).
  std::vector<std::pair<const std::string, std::optional<std::string>>*> sorted;
  sorted.reserve(writes_.size());
  for (auto& kv : writes_) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  store::StateBatch batch;
  for (auto* kv : sorted) {
    auto& [key, value] = *kv;
    if (value) {
      batch.Put(key, Seal(key, std::move(*value)));
    } else {
      batch.Delete(key);
    }
  }
  writes_.clear();
  std::string cp;
  PutBigEndian64(&cp, checkpoint);
  PutBigEndian32(&cp, version);
  batch.Put(std::string(CheckpointKey()), Seal(CheckpointKey(), std::move(cp)));
  return batch;
}

// ---------------------------------------------------------------------------------------------
// Views.

StateView::StateView(std::shared_ptr<Generation> gen,
                     std::function<void(const absl::Status&)> on_corrupt)
    : gen_(std::move(gen)), on_corrupt_(std::move(on_corrupt)) {}

StateView::StateView(std::shared_ptr<const std::map<std::string, std::string>> memory,
                     uint64_t checkpoint)
    : memory_(std::move(memory)), memory_checkpoint_(checkpoint) {}

uint64_t StateView::checkpoint() const { return memory_ ? memory_checkpoint_ : gen_->checkpoint(); }

absl::Status StateView::Corrupt(absl::Status s) const {
  if (s.code() == absl::StatusCode::kDataLoss && on_corrupt_) on_corrupt_(s);
  return s;
}

absl::StatusOr<std::optional<std::string>> StateView::Get(absl::string_view key) const {
  if (memory_) {
    auto it = memory_->find(std::string(key));
    if (it == memory_->end()) return std::nullopt;
    return it->second;
  }
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v,
                       gen_->store().state->GetState(gen_->family(), key));
  if (!v) return std::nullopt;
  absl::StatusOr<absl::string_view> payload = Unseal(gen_->family(), key, *v);
  if (!payload.ok()) return Corrupt(payload.status());
  return std::string(*payload);
}

absl::Status StateView::Scan(absl::string_view from, absl::string_view to,
                             const store::StateVisitor& visit) const {
  if (memory_) {
    for (auto it = memory_->lower_bound(std::string(from));
         it != memory_->end() && (to.empty() || it->first < to); ++it) {
      if (!visit(it->first, it->second)) break;
    }
    return absl::OkStatus();
  }
  absl::Status bad;
  IHS_RETURN_IF_ERROR(gen_->store().state->ScanState(
      gen_->family(), from, to, [&](absl::string_view key, absl::string_view value) {
        absl::StatusOr<absl::string_view> payload = Unseal(gen_->family(), key, value);
        if (!payload.ok()) {
          bad = payload.status();
          return false;
        }
        return visit(key, *payload);
      }));
  if (!bad.ok()) return Corrupt(bad);
  return absl::OkStatus();
}

}  // namespace ihs::projections
