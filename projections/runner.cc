#include "projections/runner.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "projections/bulk.h"
#include "projections/mem_state.h"

namespace ihs::projections {

// ---------------------------------------------------------------------------------------------
// Checksums and the transaction of one batch.

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

// payload | checksum into `out`, whose buffer is reused: a write-out seals millions of values.
void SealInto(absl::string_view key, absl::string_view payload, std::string* out) {
  unsigned char sum[kChecksumBytes];
  ChecksumInto(key, payload, sum);
  out->assign(payload.data(), payload.size());
  out->append(reinterpret_cast<const char*>(sum), kChecksumBytes);
}

constexpr absl::string_view CheckpointKey() {
  return absl::string_view(kCheckpointKey, sizeof(kCheckpointKey) - 1);
}

}  // namespace

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

absl::string_view BulkPhase::Keep(absl::string_view bytes) { return mem_->Copy(bytes).view(); }

void BulkPhase::PutInOrder(absl::string_view key, absl::string_view kept) {
  mem_->PutInOrder(key, MemState::Value{kept.empty() ? "" : kept.data(), kept.size()});
}

absl::StatusOr<std::optional<store::StoredEvent>> BulkPhase::FindLaterEvent(absl::string_view id) {
  return txn_->FindEventIn(id, txn_->position(), horizon_);
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
// Generations and views.

class StateView::Generation {
 public:
  Generation(LogAndState store, std::string family, uint64_t checkpoint)
      : store_(store), family_(std::move(family)), checkpoint_(checkpoint) {}
  // The last reference to a generation that a swap retired drops its family.
  ~Generation() {
    if (retired_.load()) {
      store_.state->DropStateFamily(family_)
          .IgnoreError();  // a leftover is dropped at the next Open
    }
  }
  LogAndState store() const { return store_; }
  const std::string& family() const { return family_; }
  uint64_t checkpoint() const { return checkpoint_.load(); }
  void set_checkpoint(uint64_t c) { checkpoint_.store(c); }
  // A retired generation's family is dropped with its last reference.
  void set_retired(bool retired) { retired_.store(retired); }

 private:
  const LogAndState store_;
  const std::string family_;
  std::atomic<uint64_t> checkpoint_;
  std::atomic<bool> retired_{false};
};

using Generation = StateView::Generation;

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

// ---------------------------------------------------------------------------------------------
// The runner.

struct Runner::Slot {
  ProjectionFactory factory;
  std::string name;
  uint32_t version = 0;
  std::unique_ptr<Projection> live;  // used under apply_mu only

  // Held while a batch is applied to the active generation; a swap holds it too.
  absl::Mutex apply_mu;
  absl::Mutex mu ABSL_ACQUIRED_AFTER(apply_mu);
  absl::CondVar advanced;  // the active generation's checkpoint moved, or it was swapped
  std::shared_ptr<Generation> gen ABSL_GUARDED_BY(mu);
  bool needs_rebuild ABSL_GUARDED_BY(mu) = false;  // another version, or corrupt
  bool corrupt ABSL_GUARDED_BY(mu) = false;        // do not serve reads
  bool rebuilding ABSL_GUARDED_BY(mu) = false;
  std::optional<uint64_t> rebuild_checkpoint ABSL_GUARDED_BY(mu);
  std::string error ABSL_GUARDED_BY(mu);
  bool stop ABSL_GUARDED_BY(mu) = false;
  absl::Time rate_time ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  uint64_t rate_checkpoint ABSL_GUARDED_BY(mu) = 0;
  double rate ABSL_GUARDED_BY(mu) = 0;

  std::thread worker;
  std::thread rebuilder;

  std::shared_ptr<Generation> Active() {
    absl::MutexLock l(&mu);
    return gen;
  }
};

namespace {

std::string RegistryKey(absl::string_view name) { return absl::StrCat("active/", name); }

// The generation number of "NAME@G", or 0.
uint64_t GenerationOf(absl::string_view name, absl::string_view family) {
  uint64_t g = 0;
  if (family.size() <= name.size() + 1 || family.substr(0, name.size()) != name ||
      family[name.size()] != '@' || !absl::SimpleAtoi(family.substr(name.size() + 1), &g)) {
    return 0;
  }
  return g;
}

struct StoredCheckpoint {
  uint64_t next = 0;
  uint32_t version = 0;
};

absl::StatusOr<std::optional<StoredCheckpoint>> ReadCheckpoint(LogAndState store,
                                                               const std::string& family) {
  IHS_ASSIGN_OR_RETURN(std::optional<std::string> v,
                       store.state->GetState(family, CheckpointKey()));
  if (!v) return std::nullopt;
  IHS_ASSIGN_OR_RETURN(absl::string_view p, Unseal(family, CheckpointKey(), *v));
  if (p.size() != 12) {
    return absl::DataLossError(absl::StrCat("projection state ", family, ": bad checkpoint"));
  }
  return StoredCheckpoint{GetBigEndian64(p.data()), GetBigEndian32(p.data() + 8)};
}

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 40) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

Runner::Runner(LogAndState store, RunnerOptions options)
    : store_(store), options_(options), clock_(options.clock ? options.clock : RealClock()) {}

absl::StatusOr<std::unique_ptr<Runner>> Runner::Open(store::EventStore* store,
                                                     std::vector<ProjectionFactory> factories,
                                                     RunnerOptions options) {
  return Open(LogAndState{store, store::StateStoreOf(*store)}, std::move(factories), options);
}

absl::StatusOr<std::unique_ptr<Runner>> Runner::Open(LogAndState store,
                                                     std::vector<ProjectionFactory> factories,
                                                     RunnerOptions options) {
  if (store.log == nullptr || store.state == nullptr) {
    return absl::InvalidArgumentError("a runner needs a log and a state store");
  }
  std::unique_ptr<Runner> r(new Runner(store, options));
  IHS_RETURN_IF_ERROR(store.state->CreateStateFamily(kRegistryFamily));
  const std::vector<std::string> families = store.state->StateFamilies();
  for (ProjectionFactory& f : factories) {
    auto slot = std::make_unique<Slot>();
    slot->live = f();
    slot->factory = std::move(f);
    slot->name = std::string(slot->live->name());
    slot->version = slot->live->version();
    if (!ValidName(slot->name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("a projection's name has 1-40 bytes of [a-z0-9_]: \"", slot->name, "\""));
    }
    if (r->Find(slot->name).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("projection ", slot->name, " registered twice"));
    }
    // The active generation, or a first one.
    const std::string key = RegistryKey(slot->name);
    IHS_ASSIGN_OR_RETURN(std::optional<std::string> active,
                         store.state->GetState(kRegistryFamily, key));
    std::string family;
    if (active) {
      IHS_ASSIGN_OR_RETURN(absl::string_view p, Unseal(kRegistryFamily, key, *active));
      family = std::string(p);
    }
    if (family.empty() || GenerationOf(slot->name, family) == 0) {
      family = absl::StrCat(slot->name, "@1");
      IHS_RETURN_IF_ERROR(store.state->CreateStateFamily(family));
      store::StateBatch b;
      b.Put(key, Seal(key, family));
      IHS_RETURN_IF_ERROR(store.state->WriteState(kRegistryFamily, b));
    } else {
      IHS_RETURN_IF_ERROR(
          store.state->CreateStateFamily(family));  // a no-op unless it went missing
    }
    // What a crashed rebuild or an interrupted drop left behind.
    for (const std::string& other : families) {
      if (other != family && GenerationOf(slot->name, other) != 0) {
        IHS_RETURN_IF_ERROR(store.state->DropStateFamily(other));
      }
    }
    absl::StatusOr<std::optional<StoredCheckpoint>> cp = ReadCheckpoint(store, family);
    uint64_t next = 0;
    absl::MutexLock l(&slot->mu);
    if (!cp.ok()) {
      if (cp.status().code() != absl::StatusCode::kDataLoss) return cp.status();
      slot->needs_rebuild = slot->corrupt = true;
      slot->error = std::string(cp.status().message());
    } else if (*cp) {
      next = (*cp)->next;
      if ((*cp)->version != slot->version) {
        slot->needs_rebuild = true;
        slot->error = absl::StrCat("state of version ", (*cp)->version, ", this build writes ",
                                   slot->version);
      } else if (next > store.log->Head()) {
        slot->needs_rebuild = slot->corrupt = true;
        slot->error =
            absl::StrCat("checkpoint ", next, " is past the log's end ", store.log->Head());
      }
    }
    slot->gen = std::make_shared<Generation>(store, family, next);
    slot->rate_checkpoint = next;
    r->slots_.push_back(std::move(slot));
  }
  return r;
}

Runner::~Runner() { Stop(); }

absl::StatusOr<Runner::Slot*> Runner::Find(absl::string_view name) const {
  for (const auto& s : slots_) {
    if (s->name == name) return s.get();
  }
  std::vector<std::string> names = Names();
  return absl::NotFoundError(absl::StrCat("no projection named \"", name,
                                          "\" (there are: ", absl::StrJoin(names, ", "), ")"));
}

std::vector<std::string> Runner::Names() const {
  std::vector<std::string> out;
  for (const auto& s : slots_) out.push_back(s->name);
  return out;
}

namespace {

// Applies up to max_events from gen's checkpoint with `projection`, and commits them with the
// new checkpoint in one batch. Returns how many were applied.
// Events per read of the log inside a batch.
constexpr size_t kReadChunk = 16384;
// A rebuild applies the last events before the swap with the live worker paused: at most this
// many, so that the pause is short.
constexpr uint64_t kFinalStretch = 16384;

// Applies the log from the generation's checkpoint towards `head`, at most `max_events`, as one
// batch: read in chunks, applied through one Txn (so a key written many times is written once),
// written with the new checkpoint in one WriteBatch. `reached` (optional) hears the position
// after each chunk.
absl::StatusOr<uint64_t> CommitBatch(LogAndState store, Projection& projection, Generation& gen,
                                     uint64_t head, size_t max_events,
                                     const std::function<void(uint64_t)>& reached) {
  const uint64_t from = gen.checkpoint();
  if (from >= head) return 0;
  const uint64_t end = from + std::min<uint64_t>(max_events, head - from);
  store::ReadOptions ro;
  ro.open_content = false;  // projections derive nothing from personal content
  Txn txn(store, gen.family());
  uint64_t pos = from;
  while (pos < end) {
    IHS_ASSIGN_OR_RETURN(std::vector<store::StoredEvent> events,
                         store.log->ReadAll(pos, std::min<uint64_t>(kReadChunk, end - pos), ro));
    if (events.empty()) break;
    for (const store::StoredEvent& e : events) {
      txn.set_position(e.position());
      IHS_RETURN_IF_ERROR(projection.Apply(e, txn));
    }
    pos += events.size();
    if (reached) reached(pos);
  }
  txn.set_position(pos);
  IHS_RETURN_IF_ERROR(projection.Flush(txn));
  IHS_RETURN_IF_ERROR(store.state->WriteState(gen.family(), txn.Finish(pos, projection.version())));
  gen.set_checkpoint(pos);
  return pos - from;
}

// The same; a batch that fails is not committed, and the projection drops what it cached.
absl::StatusOr<uint64_t> ApplyTo(LogAndState store, Projection& projection, Generation& gen,
                                 uint64_t head, size_t max_events,
                                 const std::function<void(uint64_t)>& reached = nullptr) {
  absl::StatusOr<uint64_t> n = CommitBatch(store, projection, gen, head, max_events, reached);
  if (!n.ok()) projection.Discard();
  return n;
}

// Runs fn(0) .. fn(n - 1), fn(0) on this thread and the others on threads of their own; the
// first error.
absl::Status OnThreads(size_t n, const std::function<absl::Status(size_t)>& fn) {
  std::vector<std::future<absl::Status>> others;
  for (size_t i = 1; i < n; ++i) others.push_back(std::async(std::launch::async, fn, i));
  absl::Status first = fn(0);
  for (auto& f : others) first.Update(f.get());
  return first;
}

// A key's first 24 bytes as three big-endian words (zero-padded), with the entry: sorting these
// compares integers held in the array, and reaches the keys themselves only on a tie.
struct SortItem {
  uint64_t w[3];
  MemState::Index::value_type* kv;

  SortItem() : w{0, 0, 0}, kv(nullptr) {}
  explicit SortItem(MemState::Index::value_type* e) : kv(e) {
    char b[24] = {};
    std::memcpy(b, e->first.data(), std::min<size_t>(e->first.size(), sizeof(b)));
    for (int i = 0; i < 3; ++i) w[i] = GetBigEndian64(b + 8 * i);
  }
  bool operator==(const SortItem& o) const {
    return w[0] == o.w[0] && w[1] == o.w[1] && w[2] == o.w[2] && kv->first == o.kv->first;
  }
  bool operator<(const SortItem& o) const {
    if (w[0] != o.w[0]) return w[0] < o.w[0];
    if (w[1] != o.w[1]) return w[1] < o.w[1];
    if (w[2] != o.w[2]) return w[2] < o.w[2];
    return kv->first < o.kv->first;
  }
};

// The first i in [0, n) for which `reached(i)` holds, or n; `reached` is false and then true.
template <typename Reached>
size_t FirstIndex(size_t n, Reached&& reached) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (reached(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// Writes a rebuild's state out of memory as sorted files, ingested into the family with the
// checkpoint, and empties the MemStates (one per shard; `projection` merges a key that two
// shards wrote). Each shard's indexed keys are one sorted run (one shard's are cut in two),
// sorted on a thread each, and the keys it put in order (PutInOrder) are another; the key
// space is then cut into one range per file, and each file is written on a thread of its own,
// merging its range of every run as it goes and sealing each value.
absl::Status WriteOut(LogAndState store, const std::string& family,
                      const std::vector<MemState*>& mems, Projection& projection,
                      uint64_t checkpoint) {
  for (const MemState* mem : mems) {
    if (mem->out_of_order()) {
      return absl::InternalError(absl::StrCat("projection ", projection.name(),
                                              " put keys in order that were not in order"));
    }
  }
  std::string cp;
  PutBigEndian64(&cp, checkpoint);
  PutBigEndian32(&cp, projection.version());
  mems[0]->Put(CheckpointKey(), std::move(cp));
  // The runs, each made (and an indexed one sorted) on its own thread.
  struct Run {
    size_t shard;
    MemState::Index* index = nullptr;  // else the shard's keys put in order
    size_t part = 0, parts = 1;        // of the index, in this run
  };
  std::vector<Run> plan;
  for (size_t s = 0; s < mems.size(); ++s) {
    const size_t parts = mems.size() == 1 ? 2 : 1;
    for (size_t part = 0; part < parts; ++part) plan.push_back({s, &mems[s]->index(), part, parts});
    if (!mems[s]->ordered().empty()) plan.push_back({s});
  }
  const size_t n_runs = plan.size();
  // An indexed run's items, sorted; a run of keys put in order needs none.
  std::vector<std::vector<SortItem>> runs(n_runs);
  IHS_RETURN_IF_ERROR(OnThreads(n_runs, [&](size_t r) {
    const Run& run = plan[r];
    if (run.index == nullptr) return absl::OkStatus();
    std::vector<SortItem>& items = runs[r];
    const size_t size = run.index->size();
    const size_t from = size * run.part / run.parts, to = size * (run.part + 1) / run.parts;
    items.reserve(to - from);
    size_t i = 0;
    for (auto& kv : *run.index) {
      if (i == to) break;
      if (i++ >= from) items.emplace_back(&kv);
    }
    std::sort(items.begin(), items.end());
    return absl::OkStatus();
  }));
  auto run_size = [&](size_t r) {
    return plan[r].index != nullptr ? runs[r].size() : mems[plan[r].shard]->ordered().size();
  };
  auto entry_at = [&](size_t r, size_t i) {
    return plan[r].index != nullptr ? runs[r][i].kv : mems[plan[r].shard]->ordered()[i];
  };
  auto item_at = [&](size_t r, size_t i) {
    return plan[r].index != nullptr ? runs[r][i] : SortItem(mems[plan[r].shard]->ordered()[i]);
  };
  // Where each file's range begins in each run: at a key of the largest run below which the
  // runs hold the file's share of all keys. (A cut of the largest run alone left one file a
  // third larger than the other: a shard's entries come before all its other keys.)
  constexpr size_t kFiles = 2;
  size_t largest = 0, total = 0;
  for (size_t r = 0; r < n_runs; ++r) {
    if (run_size(r) > run_size(largest)) largest = r;
    total += run_size(r);
  }
  // The first item of run r not less than `pivot`.
  auto lower_bound = [&](size_t r, const SortItem& pivot) {
    return FirstIndex(run_size(r), [&](size_t i) { return !(item_at(r, i) < pivot); });
  };
  // How many items of all runs are less than item j of the largest run.
  auto below = [&](size_t j) {
    const SortItem pivot = item_at(largest, j);
    size_t n = 0;
    for (size_t r = 0; r < n_runs; ++r) n += r == largest ? j : lower_bound(r, pivot);
    return n;
  };
  std::vector<std::vector<size_t>> cut(kFiles + 1, std::vector<size_t>(n_runs));
  for (size_t r = 0; r < n_runs; ++r) cut[kFiles][r] = run_size(r);
  for (size_t f = 1; f < kFiles; ++f) {
    const size_t share = total * f / kFiles;
    // The first item of the largest run with at least `share` below it.
    const size_t lo = FirstIndex(run_size(largest), [&](size_t j) { return below(j) >= share; });
    for (size_t r = 0; r < n_runs; ++r) {
      cut[f][r] = lo == run_size(largest) ? run_size(r) : lower_bound(r, item_at(largest, lo));
    }
  }
  std::vector<std::unique_ptr<store::StateFile>> files(kFiles);
  IHS_RETURN_IF_ERROR(OnThreads(kFiles, [&](size_t f) -> absl::Status {
    IHS_ASSIGN_OR_RETURN(files[f], store.state->NewStateFile(family));
    // The keys and values lie scattered over gigabytes in sorted order: fetch those a few
    // places ahead in each run while this one is sealed, or every key waits for memory twice.
    constexpr size_t kSlotsAhead = 16, kBytesAhead = 8;
    std::vector<size_t> at(cut[f]);
    const std::vector<size_t>& stop = cut[f + 1];
    auto prefetch = [&](size_t r) {
      const size_t i = at[r];
      if (i + kSlotsAhead < stop[r]) __builtin_prefetch(entry_at(r, i + kSlotsAhead));
      if (i + kBytesAhead < stop[r]) {
        const auto& [k, v] = *entry_at(r, i + kBytesAhead);
        __builtin_prefetch(k.data());
        __builtin_prefetch(v.data);
        __builtin_prefetch(v.data + std::min<size_t>(v.size, 64));
      }
    };
    // Each run's first item not yet written.
    std::vector<SortItem> head;
    for (size_t r = 0; r < n_runs; ++r) {
      head.push_back(at[r] < stop[r] ? item_at(r, at[r]) : SortItem());
    }
    auto advance = [&](size_t r) {
      prefetch(r);
      if (++at[r] < stop[r]) head[r] = item_at(r, at[r]);
    };
    std::string sealed, merged;
    for (;;) {
      // The least key at the heads of the runs; runs are few (two per shard at most).
      size_t least = n_runs;
      for (size_t r = 0; r < n_runs; ++r) {
        if (at[r] < stop[r] && (least == n_runs || head[r] < head[least])) least = r;
      }
      if (least == n_runs) break;
      const SortItem item = head[least];
      const auto& [key, value] = *item.kv;
      advance(least);
      // The same key in later runs: two shards wrote it.
      absl::string_view payload = value.view();
      bool has_merged = false;
      for (size_t r = least + 1; r < n_runs; ++r) {
        if (at[r] >= stop[r] || !(head[r] == item)) continue;
        if (plan[r].shard == plan[least].shard) {
          return absl::InternalError(absl::StrCat("projection ", projection.name(), " put the key ",
                                                  absl::CHexEscape(key), " both in order and not"));
        }
        const MemState::Value other = head[r].kv->second;
        advance(r);
        if (value.deleted() || other.deleted()) {
          return absl::InternalError(absl::StrCat("two shards of projection ", projection.name(),
                                                  " wrote and deleted the same key ",
                                                  absl::CHexEscape(key)));
        }
        absl::StatusOr<std::string> m = projection.sharded_rebuild()->MergeShards(
            key, std::string(payload), std::string(other.view()));
        if (!m.ok()) {
          return absl::Status(m.status().code(), absl::StrCat("projection ", projection.name(),
                                                              ": ", m.status().message()));
        }
        merged = *std::move(m);
        payload = merged;
        has_merged = true;
      }
      if (value.deleted() && !has_merged) {
        IHS_RETURN_IF_ERROR(files[f]->Delete(key));
      } else {
        SealInto(key, payload, &sealed);
        IHS_RETURN_IF_ERROR(files[f]->Put(key, sealed));
      }
    }
    return absl::OkStatus();
  }));
  IHS_RETURN_IF_ERROR(store.state->IngestState(family, std::move(files)));
  runs.clear();
  for (MemState* mem : mems) mem->Spill();
  return absl::OkStatus();
}

// For a walk over `events` that is at i: starts to fetch the events it reaches a few places
// later (those that `wanted` names), the handle first and then the record. A chunk of events is
// some 20 MB that ReadAll decoded long before, and each event three allocations: without this,
// each read of one waits for memory several times over.
template <typename Wanted>
void FetchAhead(const std::vector<store::StoredEvent>& events, size_t i, Wanted&& wanted) {
  constexpr size_t kHandleAhead = 16, kRecordAhead = 8;
  if (i + kHandleAhead < events.size() && wanted(i + kHandleAhead)) {
    store::PrefetchEventHandle(events[i + kHandleAhead]);
  }
  if (i + kRecordAhead < events.size() && wanted(i + kRecordAhead)) {
    store::PrefetchEventRecord(events[i + kRecordAhead]);
  }
}

// The log from a position to a horizon, read a chunk at a time on a thread of its own, for the
// shards of a bulk phase: each shard takes the chunks in order, as fast as it goes, and a chunk
// is freed when every shard is done with it. The reader stays at most kChunksAhead chunks ahead
// of the slowest shard, and picks the shard of each event (a hash of its stream id) once.
class ChunkReader {
 public:
  struct Chunk {
    std::vector<store::StoredEvent> events;
    // With more than one shard: the shard that applies each event, and whether the others
    // observe it (Projection::Observes).
    std::vector<uint8_t> shard_of;
    std::vector<uint8_t> observed;
  };

  // `sharded`: the projection's extension, asked which events to observe; nullptr for one shard.
  ChunkReader(LogAndState store, uint64_t from, uint64_t horizon, size_t shards,
              const ShardedRebuild* sharded)
      : store_(store), horizon_(horizon), shards_(shards), sharded_(sharded), done_(shards, 0) {
    thread_ = std::thread([this, from] { Run(from); });
  }
  ~ChunkReader() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // Chunk k (from 0), once it is read; nullptr past the last one.
  absl::StatusOr<std::shared_ptr<const Chunk>> Get(size_t k) {
    absl::MutexLock l(&mu_);
    auto ready = [this, k]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return read_ > k || finished_ || !error_.ok();
    };
    mu_.Await(absl::Condition(&ready));
    if (auto it = chunks_.find(k); it != chunks_.end()) return it->second;
    if (!error_.ok()) return error_;
    if (k >= read_) return nullptr;  // finished
    return absl::InternalError(absl::StrCat("chunk ", k, " of the log was freed before use"));
  }

  // The shard is done with the chunks below k (SIZE_MAX: it stops, and holds nothing up).
  void Done(size_t shard, size_t k) {
    absl::MutexLock l(&mu_);
    done_[shard] = k;
    const size_t low = *std::min_element(done_.begin(), done_.end());
    while (!chunks_.empty() && chunks_.begin()->first < low) chunks_.erase(chunks_.begin());
  }

 private:
  static constexpr size_t kChunksAhead = 4;

  void Run(uint64_t from) {
    store::ReadOptions ro;
    ro.open_content = false;
    const absl::Hash<absl::string_view> hash;
    for (uint64_t pos = from; pos < horizon_;) {
      {
        absl::MutexLock l(&mu_);
        auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || read_ < *std::min_element(done_.begin(), done_.end()) + kChunksAhead;
        };
        mu_.Await(absl::Condition(&room));
        if (stop_) return;
      }
      auto chunk = std::make_shared<Chunk>();
      absl::StatusOr<std::vector<store::StoredEvent>> events =
          store_.log->ReadAll(pos, std::min<uint64_t>(kReadChunk, horizon_ - pos), ro);
      if (events.ok() && events->empty()) {
        events = absl::DataLossError(absl::StrCat("the log ends at position ", pos,
                                                  " before the rebuild's horizon ", horizon_));
      }
      if (!events.ok()) {
        absl::MutexLock l(&mu_);
        error_ = events.status();
        return;
      }
      chunk->events = std::move(*events);
      if (shards_ > 1) {
        chunk->shard_of.reserve(chunk->events.size());
        chunk->observed.reserve(chunk->events.size());
        const std::vector<store::StoredEvent>& events = chunk->events;
        for (size_t i = 0; i < events.size(); ++i) {
          FetchAhead(events, i, [](size_t) { return true; });
          const store::StoredEvent& e = events[i];
          const auto stream = e.event().getStreamId();
          chunk->shard_of.push_back(static_cast<uint8_t>(
              hash(absl::string_view(stream.cStr(), stream.size())) % shards_));
          chunk->observed.push_back(sharded_ == nullptr || sharded_->Observes(e) ? 1 : 0);
        }
      }
      pos += chunk->events.size();
      absl::MutexLock l(&mu_);
      chunks_.emplace(read_++, std::move(chunk));
    }
    absl::MutexLock l(&mu_);
    finished_ = true;
  }

  const LogAndState store_;
  const uint64_t horizon_;
  const size_t shards_;
  const ShardedRebuild* const sharded_;
  absl::Mutex mu_;
  std::map<size_t, std::shared_ptr<const Chunk>> chunks_ ABSL_GUARDED_BY(mu_);
  size_t read_ ABSL_GUARDED_BY(mu_) = 0;  // chunks read so far
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> done_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The bulk phase of a rebuild: from the generation's checkpoint (0) to the head as it was when
// the phase began (the horizon), with the state in memory (MemState), written out as sorted
// files when it passes `memory_bytes` and at the end. Nothing goes through the memtable or the
// WAL, and no read of the state misses memory until a first write-out. The log is read on a
// thread of its own (ChunkReader). With more than one instance in `shards` (a projection that is
// a ShardedRebuild), each applies the events of the streams that hash to it, on a thread of
// its own, and the shards meet only every kRoundChunks chunks, to see whether to write out.
// `reached` hears the position and head after each chunk that every shard has applied.
absl::Status BulkBuild(LogAndState store, const std::vector<Projection*>& shards, Generation& gen,
                       size_t memory_bytes, const std::function<bool()>& stopping,
                       const std::function<void(uint64_t, uint64_t)>& reached) {
  constexpr size_t kRoundChunks = 64;
  const size_t n = shards.size();
  const uint64_t horizon = store.log->Head();
  std::vector<MemState> mems(n);
  std::vector<MemState*> mem_ptrs;
  std::deque<Txn> txns;  // a Txn does not move
  for (MemState& mem : mems) {
    mem_ptrs.push_back(&mem);
    txns.emplace_back(store, gen.family(), &mem, horizon);
  }
  ChunkReader reader(store, gen.checkpoint(), horizon, n, shards[0]->sharded_rebuild());
  std::atomic<bool> cancelled{false};
  absl::Mutex failure_mu;
  absl::Status failure;  // the error of the first shard that failed
  // Where each shard is; shard 0 reports the least of them.
  std::vector<std::atomic<uint64_t>> at(n);
  for (auto& a : at) a.store(gen.checkpoint());
  uint64_t pos = gen.checkpoint();
  auto write_out = [&]() -> absl::Status {
    IHS_RETURN_IF_ERROR(OnThreads(n, [&](size_t shard) {
      txns[shard].set_position(pos);
      return shards[shard]->Flush(txns[shard]);
    }));
    IHS_RETURN_IF_ERROR(WriteOut(store, gen.family(), mem_ptrs, *shards[0], pos));
    gen.set_checkpoint(pos);
    return absl::OkStatus();
  };
  // An empty log: the fresh family gets its checkpoint all the same.
  if (pos >= horizon) return write_out();
  // What each shard's MemState holds, as its shard last saw it.
  std::vector<std::atomic<size_t>> held(n);
  size_t next = 0;  // the next round's first chunk
  bool last = false;
  while (!last) {
    if (stopping()) return absl::CancelledError("the runner is stopping");
    // A round ends at `end`: after kRoundChunks chunks, or as soon as shard 0 sees the state
    // past the memory bound, after the chunks that some shard has begun.
    absl::Mutex round_mu;
    size_t end = next + kRoundChunks, begun = next;
    std::vector<char> ended(n, 0);  // the shard met the log's end (every shard meets it)
    absl::Status applied = OnThreads(n, [&](size_t shard) -> absl::Status {
      Projection& projection = *shards[shard];
      ShardedRebuild* const sharded = projection.sharded_rebuild();
      Txn& txn = txns[shard];
      // A shard that fails holds up neither the reader nor the other shards, which stop too;
      // the first failure is the rebuild's error.
      auto fail = [&](absl::Status s) {
        {
          absl::MutexLock l(&failure_mu);
          if (failure.ok()) failure = s;
        }
        cancelled.store(true);
        reader.Done(shard, SIZE_MAX);
        return s;
      };
      for (size_t k = next;; ++k) {
        {
          absl::MutexLock l(&round_mu);
          if (k >= end) break;
          begun = std::max(begun, k + 1);
        }
        if (cancelled.load()) {
          reader.Done(shard, SIZE_MAX);
          return absl::CancelledError("another shard failed");
        }
        if (shard == 0 && k > next && stopping()) {
          return fail(absl::CancelledError("the runner is stopping"));
        }
        absl::StatusOr<std::shared_ptr<const ChunkReader::Chunk>> chunk = reader.Get(k);
        if (!chunk.ok()) return fail(chunk.status());
        if (*chunk == nullptr) {
          ended[shard] = 1;
          break;
        }
        const std::vector<store::StoredEvent>& events = (*chunk)->events;
        auto mine = [&](size_t i) { return n == 1 || (*chunk)->shard_of[i] == shard; };
        // The shard's own events are fetched ahead, and then what the projection will read
        // for them (Projection::Prefetch), in two stages.
        constexpr size_t kStateAhead = 4, kStateNext = 2;
        for (size_t i = 0; i < events.size(); ++i) {
          FetchAhead(events, i, mine);
          if (sharded != nullptr) {
            if (i + kStateAhead < events.size() && mine(i + kStateAhead)) {
              sharded->Prefetch(events[i + kStateAhead], 0);
            }
            if (i + kStateNext < events.size() && mine(i + kStateNext)) {
              sharded->Prefetch(events[i + kStateNext], 1);
            }
          }
          const store::StoredEvent& e = events[i];
          if (!mine(i)) {
            if ((*chunk)->observed[i]) sharded->Observe(e);  // n > 1: sharded
            continue;
          }
          txn.set_position(e.position());
          if (absl::Status s = projection.Apply(e, txn); !s.ok()) return fail(s);
        }
        at[shard].store(events.back().position() + 1);
        held[shard].store(mems[shard].bytes());
        chunk->reset();
        reader.Done(shard, k + 1);
        if (shard == 0) {
          size_t bytes = 0;
          uint64_t low = UINT64_MAX;
          for (size_t i = 0; i < n; ++i) {
            bytes += held[i].load();
            low = std::min(low, at[i].load());
          }
          if (bytes >= memory_bytes) {
            absl::MutexLock l(&round_mu);
            end = std::min(end, begun);
          }
          if (reached) reached(low, store.log->Head());
        }
        if (at[shard].load() >= horizon) {
          ended[shard] = 1;
          break;
        }
      }
      return absl::OkStatus();
    });
    {
      absl::MutexLock l(&failure_mu);
      IHS_RETURN_IF_ERROR(failure);
    }
    IHS_RETURN_IF_ERROR(applied);
    for (size_t i = 1; i < n; ++i) {
      if (at[i].load() != at[0].load() || ended[i] != ended[0]) {
        return absl::InternalError("the shards of a rebuild ended a round at different places");
      }
    }
    next = end;
    pos = at[0].load();
    last = ended[0] != 0;
    size_t bytes = 0;
    for (const MemState& mem : mems) bytes += mem.bytes();
    if (last || bytes >= memory_bytes) IHS_RETURN_IF_ERROR(write_out());
    if (reached) reached(pos, store.log->Head());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Runner::ApplyBatch(Slot& slot, size_t max_events, bool* applied,
                                const std::function<void(uint64_t)>& reached) {
  *applied = false;
  absl::MutexLock apply(&slot.apply_mu);
  std::shared_ptr<Generation> gen = slot.Active();
  IHS_ASSIGN_OR_RETURN(uint64_t n,
                       ApplyTo(store_, *slot.live, *gen, store_.log->Head(), max_events, reached));
  // At the head (a short batch), caches are dropped: they pay off while catching up, and a
  // worker that follows the log should not hold them for as long as ihsd runs.
  if (n < max_events) slot.live->Discard();
  if (n == 0) return absl::OkStatus();
  *applied = true;
  const absl::Time now = clock_->Now();
  absl::MutexLock l(&slot.mu);
  if (now - slot.rate_time >= absl::Seconds(1)) {
    if (slot.rate_time != absl::InfinitePast()) {
      slot.rate = static_cast<double>(gen->checkpoint() - slot.rate_checkpoint) /
                  absl::ToDoubleSeconds(now - slot.rate_time);
    }
    slot.rate_time = now;
    slot.rate_checkpoint = gen->checkpoint();
  }
  slot.advanced.SignalAll();
  return absl::OkStatus();
}

absl::Status Runner::ClaimRebuild(Slot& slot) {
  absl::MutexLock l(&slot.mu);
  if (slot.rebuilding) {
    return absl::FailedPreconditionError(
        absl::StrCat("projection ", slot.name, " is being rebuilt already"));
  }
  slot.rebuilding = true;
  slot.rebuild_checkpoint = 0;
  return absl::OkStatus();
}

absl::Status Runner::RebuildSlot(Slot& slot, const store::ProgressFn& progress) {
  IHS_RETURN_IF_ERROR(ClaimRebuild(slot));
  return RunClaimedRebuild(slot, progress);
}

absl::Status Runner::RunClaimedRebuild(Slot& slot, const store::ProgressFn& progress) {
  std::shared_ptr<Generation> old;
  {
    absl::MutexLock l(&slot.mu);
    old = slot.gen;
  }
  // Ends the rebuild: the slot is no longer "rebuilding".
  auto done = [&](absl::Status s) {
    absl::MutexLock l(&slot.mu);
    slot.rebuilding = false;
    slot.rebuild_checkpoint.reset();
    if (!s.ok()) slot.error = absl::StrCat("rebuild failed: ", s.message());
    return s;
  };
  // Ends it only on failure.
  auto check = [&](absl::Status s) { return s.ok() ? s : done(s); };
  const std::string family =
      absl::StrCat(slot.name, "@", GenerationOf(slot.name, old->family()) + 1);
  if (store_.state->GetState(family, CheckpointKey()).ok()) {
    IHS_RETURN_IF_ERROR(check(store_.state->DropStateFamily(family)));
  }
  IHS_RETURN_IF_ERROR(check(store_.state->CreateStateFamily(family)));
  auto gen = std::make_shared<Generation>(store_, family, 0);
  gen->set_retired(true);  // until it is swapped in: a failed rebuild drops it
  std::unique_ptr<Projection> projection = slot.factory();
  // Most of the log without holding up the live worker.
  std::vector<std::unique_ptr<Projection>> more;  // shards 1..
  std::vector<Projection*> shards{projection.get()};
  if (projection->sharded_rebuild() != nullptr && options_.rebuild_memory_bytes > 0) {
    size_t n = options_.rebuild_shards;
    if (n == 0) n = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
    n = std::min<size_t>(n, 255);  // a shard's number is a byte
    for (size_t i = 1; i < n; ++i) shards.push_back(more.emplace_back(slot.factory()).get());
  }
  absl::Status bulk = BulkBuild(
      store_, shards, *gen, options_.rebuild_memory_bytes,
      [&] {
        absl::MutexLock l(&slot.mu);
        return slot.stop;
      },
      [&](uint64_t reached, uint64_t head) {
        {
          absl::MutexLock l(&slot.mu);
          slot.rebuild_checkpoint = reached;
        }
        if (progress) progress(reached, head);
      });
  if (!bulk.ok()) return done(bulk);
  more.clear();
  projection->Discard();  // its caches hold only its shard's streams
  // What was appended meanwhile, still beside the live worker, to within kFinalStretch.
  while (store_.log->Head() - gen->checkpoint() > kFinalStretch) {
    {
      absl::MutexLock l(&slot.mu);
      if (slot.stop) return done(absl::CancelledError("the runner is stopping"));
    }
    absl::StatusOr<uint64_t> n =
        ApplyTo(store_, *projection, *gen, store_.log->Head(), options_.rebuild_batch_events);
    if (!n.ok()) return done(n.status());
    {
      absl::MutexLock l(&slot.mu);
      slot.rebuild_checkpoint = gen->checkpoint();
    }
    if (progress) progress(gen->checkpoint(), store_.log->Head());
  }
  // The rest, and the swap, with the live worker paused between its batches.
  absl::MutexLock apply(&slot.apply_mu);
  const uint64_t head = store_.log->Head();
  while (gen->checkpoint() < head) {
    absl::StatusOr<uint64_t> n =
        ApplyTo(store_, *projection, *gen, head, options_.rebuild_batch_events);
    if (!n.ok()) return done(n.status());
  }
  if (progress) progress(head, head);
  const std::string key = RegistryKey(slot.name);
  store::StateBatch b;
  b.Put(key, Seal(key, family));
  IHS_RETURN_IF_ERROR(check(store_.state->WriteState(kRegistryFamily, b)));
  gen->set_retired(false);
  old->set_retired(true);
  {
    absl::MutexLock l(&slot.mu);
    slot.gen = gen;
    slot.needs_rebuild = slot.corrupt = false;
    slot.error.clear();
    slot.rate_time = absl::InfinitePast();
    slot.rate_checkpoint = gen->checkpoint();
    slot.advanced.SignalAll();
  }
  // Only now may a new instance replace the live one: the worker applies to the new generation.
  slot.live = std::move(projection);
  return done(absl::OkStatus());
}

void Runner::MarkCorrupt(Slot& slot, const absl::Status& status) {
  absl::MutexLock l(&slot.mu);
  if (slot.corrupt) return;
  std::fprintf(stderr, "ihs: projection %s: %s; rebuilding it\n", slot.name.c_str(),
               std::string(status.message()).c_str());
  slot.corrupt = slot.needs_rebuild = true;
  slot.error = std::string(status.message());
  slot.advanced.SignalAll();
}

void Runner::Work(Slot& slot) {
  for (;;) {
    bool rebuild = false;
    {
      absl::MutexLock l(&slot.mu);
      if (slot.stop) return;
      rebuild = slot.needs_rebuild && !slot.rebuilding;
    }
    absl::Status s;
    bool applied = false;
    if (rebuild) {
      s = RebuildSlot(slot, nullptr);
    } else {
      s = ApplyBatch(slot, options_.batch_events, &applied);
    }
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kDataLoss) {
        MarkCorrupt(slot, s);
      } else if (s.code() != absl::StatusCode::kCancelled) {
        absl::MutexLock l(&slot.mu);
        slot.error = std::string(s.message());
        std::fprintf(stderr, "ihs: projection %s: %s; retrying in 1 s\n", slot.name.c_str(),
                     slot.error.c_str());
        slot.mu.AwaitWithTimeout(absl::Condition(&slot.stop), absl::Seconds(1));
      }
      continue;
    }
    if (!applied && !rebuild) {
      // Not holding the generation while it waits: a swap drops the old one at once.
      const uint64_t checkpoint = slot.Active()->checkpoint();
      store_.log->WaitForCommit(checkpoint, absl::Now() + absl::Milliseconds(200));
    }
  }
}

void Runner::Start() {
  for (auto& s : slots_) {
    if (s->worker.joinable()) continue;
    {
      absl::MutexLock l(&s->mu);
      s->stop = false;
    }
    Slot* slot = s.get();
    s->worker = std::thread([this, slot] { Work(*slot); });
  }
}

void Runner::Stop() {
  for (auto& s : slots_) {
    absl::MutexLock l(&s->mu);
    s->stop = true;
    s->advanced.SignalAll();
  }
  for (auto& s : slots_) {
    if (s->worker.joinable()) s->worker.join();
    if (s->rebuilder.joinable()) s->rebuilder.join();
    absl::MutexLock l(&s->mu);
    s->stop = false;  // CatchUp and Rebuild work on a stopped runner
  }
}

absl::Status Runner::CatchUp(absl::string_view name, const store::ProgressFn& progress) {
  std::vector<Slot*> chosen;
  if (name.empty()) {
    for (auto& s : slots_) chosen.push_back(s.get());
  } else {
    IHS_ASSIGN_OR_RETURN(Slot * s, Find(name));
    chosen.push_back(s);
  }
  for (Slot* slot : chosen) {
    if (slot->worker.joinable()) {
      return absl::FailedPreconditionError("the runner's workers are following the log");
    }
    bool rebuild = false;
    {
      absl::MutexLock l(&slot->mu);
      rebuild = slot->needs_rebuild;
      if (rebuild) {
        std::fprintf(stderr, "ihs: projection %s: %s; rebuilding it\n", slot->name.c_str(),
                     slot->error.c_str());
      }
    }
    if (rebuild) IHS_RETURN_IF_ERROR(RebuildSlot(*slot, progress));
    const uint64_t head = store_.log->Head();
    for (bool applied = true; applied;) {
      absl::Status s =
          ApplyBatch(*slot, options_.rebuild_batch_events, &applied, [&](uint64_t reached) {
            if (progress) progress(std::min(reached, head), head);
          });
      if (s.code() == absl::StatusCode::kDataLoss) {
        MarkCorrupt(*slot, s);
        IHS_RETURN_IF_ERROR(RebuildSlot(*slot, progress));
        continue;
      }
      IHS_RETURN_IF_ERROR(s);
      if (slot->Active()->checkpoint() >= head) break;
    }
  }
  return absl::OkStatus();
}

absl::Status Runner::Rebuild(absl::string_view name, const store::ProgressFn& progress) {
  IHS_ASSIGN_OR_RETURN(Slot * slot, Find(name));
  return RebuildSlot(*slot, progress);
}

absl::Status Runner::StartRebuild(absl::string_view name) {
  IHS_ASSIGN_OR_RETURN(Slot * slot, Find(name));
  // Claimed here, so that Status() says "rebuilding" as soon as this returns.
  IHS_RETURN_IF_ERROR(ClaimRebuild(*slot));
  if (slot->rebuilder.joinable()) slot->rebuilder.join();  // a finished one
  slot->rebuilder = std::thread([this, slot] {
    absl::Status s = RunClaimedRebuild(*slot, nullptr);
    if (!s.ok() && s.code() != absl::StatusCode::kCancelled) {
      std::fprintf(stderr, "ihs: projection %s: rebuild failed: %s\n", slot->name.c_str(),
                   std::string(s.message()).c_str());
    }
  });
  return absl::OkStatus();
}

std::vector<ProjectionStatus> Runner::Status() {
  std::vector<ProjectionStatus> out;
  const uint64_t head = store_.log->Head();
  const absl::Time now = clock_->Now();
  for (auto& s : slots_) {
    ProjectionStatus st;
    st.name = s->name;
    st.version = s->version;
    st.head = head;
    {
      absl::MutexLock l(&s->mu);
      st.family = s->gen->family();
      st.checkpoint = s->gen->checkpoint();
      st.error = s->error;
      st.rebuild_checkpoint = s->rebuild_checkpoint;
      st.events_per_second = now - s->rate_time < absl::Seconds(10) ? s->rate : 0;
      st.state = s->rebuilding          ? "rebuilding"
                 : s->corrupt           ? "corrupt"
                 : !s->error.empty()    ? "failed"
                 : st.checkpoint < head ? "catching up"
                                        : "live";
    }
    st.lag_events = head > st.checkpoint ? head - st.checkpoint : 0;
    if (st.lag_events > 0) {
      store::ReadOptions ro;
      ro.open_content = false;
      auto next = store_.log->ReadAll(st.checkpoint, 1, ro);
      if (next.ok() && !next->empty()) {
        const int64_t recorded = (*next)[0].event().getRecordedAt();
        st.lag_seconds = std::max(0.0, absl::ToDoubleSeconds(now - absl::FromUnixMicros(recorded)));
      }
    }
    out.push_back(std::move(st));
  }
  return out;
}

absl::StatusOr<StateView> Runner::View(absl::string_view name) {
  IHS_ASSIGN_OR_RETURN(Slot * slot, Find(name));
  absl::MutexLock l(&slot->mu);
  if (slot->corrupt) {
    return absl::UnavailableError(
        absl::StrCat("projection ", name, " is being rebuilt: ", slot->error));
  }
  return StateView(slot->gen, [this, slot](const absl::Status& s) { MarkCorrupt(*slot, s); });
}

bool Runner::WaitFor(absl::string_view name, uint64_t position, absl::Time deadline) {
  absl::StatusOr<Slot*> slot = Find(name);
  if (!slot.ok()) return false;
  Slot& s = **slot;
  absl::MutexLock l(&s.mu);
  while (s.gen->checkpoint() < position && !s.stop) {
    if (s.advanced.WaitWithDeadline(&s.mu, deadline)) break;
  }
  return s.gen->checkpoint() >= position;
}

}  // namespace ihs::projections
