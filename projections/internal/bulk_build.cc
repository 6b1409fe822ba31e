#include "projections/internal/bulk_build.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <future>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/big_endian.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "projections/bulk.h"
#include "projections/internal/guarded.h"
#include "projections/internal/mem_state.h"
#include "store/stored_event.h"

namespace ihs::projections {
namespace {

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
  static constexpr uint8_t kEveryShard = 255;  // shard_of: every shard applies the event
  struct Chunk {
    std::vector<store::StoredEvent> events;
    // With more than one shard: the shard that applies each event (kEveryShard: each), and
    // whether the others observe it (Projection::Observes).
    std::vector<uint8_t> shard_of;
    std::vector<uint8_t> observed;
  };

  // `sharded`: the projection's extension, asked which shard applies each event and which events
  // the others observe; nullptr for one shard.
  // `open_content`: Projection::reads_content.
  ChunkReader(LogAndState store, uint64_t from, uint64_t horizon, size_t shards,
              const ShardedRebuild* sharded, bool open_content)
      : store_(store),
        horizon_(horizon),
        shards_(shards),
        sharded_(sharded),
        open_content_(open_content),
        done_(shards, 0) {
    thread_ = std::thread([this, from] { Run(from); });
  }
  ~ChunkReader() {
    {
      MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // Chunk k (from 0), once it is read; nullptr past the last one.
  absl::StatusOr<std::shared_ptr<const Chunk>> Get(size_t k) {
    MutexLock l(&mu_);
    auto ready = [this, k]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return read_ > k || finished_ || !error_.ok();
    };
    Await(mu_, absl::Condition(&ready));
    if (auto it = chunks_.find(k); it != chunks_.end()) return it->second;
    if (!error_.ok()) return error_;
    if (k >= read_) return nullptr;  // finished
    return absl::InternalError(absl::StrCat("chunk ", k, " of the log was freed before use"));
  }

  // The shard is done with the chunks below k (SIZE_MAX: it stops, and holds nothing up).
  void Done(size_t shard, size_t k) {
    MutexLock l(&mu_);
    done_[shard] = k;
    const size_t low = *std::min_element(done_.begin(), done_.end());
    while (!chunks_.empty() && chunks_.begin()->first < low) chunks_.erase(chunks_.begin());
  }

 private:
  static constexpr size_t kChunksAhead = 4;

  void Run(uint64_t from) {
    store::ReadOptions ro;
    ro.open_content = open_content_;
    for (uint64_t pos = from; pos < horizon_;) {
      {
        MutexLock l(&mu_);
        auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || read_ < *std::min_element(done_.begin(), done_.end()) + kChunksAhead;
        };
        Await(mu_, absl::Condition(&room));
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
        MutexLock l(&mu_);
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
          const size_t shard = sharded_->ShardOf(e, shards_);
          chunk->shard_of.push_back(shard == ShardedRebuild::kEveryShard
                                        ? kEveryShard
                                        : static_cast<uint8_t>(shard % shards_));
          chunk->observed.push_back(sharded_->Observes(e) ? 1 : 0);
        }
      }
      pos += chunk->events.size();
      MutexLock l(&mu_);
      chunks_.emplace(read_++, std::move(chunk));
    }
    MutexLock l(&mu_);
    finished_ = true;
  }

  const LogAndState store_;
  const uint64_t horizon_;
  const size_t shards_;
  const ShardedRebuild* const sharded_;
  const bool open_content_;
  absl::Mutex mu_;
  std::map<size_t, std::shared_ptr<const Chunk>> chunks_ ABSL_GUARDED_BY(mu_);
  size_t read_ ABSL_GUARDED_BY(mu_) = 0;  // chunks read so far
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> done_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace

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
  ShardedRebuild* const extension = n > 1 ? shards[0]->sharded_rebuild() : nullptr;
  std::vector<ShardedRebuild*> extensions;  // every shard's, when n > 1
  if (extension != nullptr) {
    for (Projection* p : shards) extensions.push_back(p->sharded_rebuild());
    IHS_RETURN_IF_ERROR(
        extension->PrepareShards(*store.log, gen.checkpoint(), horizon, extensions));
  }
  ChunkReader reader(store, gen.checkpoint(), horizon, n, extension, shards[0]->reads_content());
  std::atomic<bool> cancelled{false};
  absl::Mutex failure_mu;
  absl::Status failure;  // the error of the first shard that failed
  // Where each shard is; shard 0 reports the least of them.
  std::vector<std::atomic<uint64_t>> at(n);
  for (auto& a : at) a.store(gen.checkpoint());
  uint64_t pos = gen.checkpoint();
  auto write_out = [&]() -> absl::Status {
    if (extension != nullptr) IHS_RETURN_IF_ERROR(extension->BeforeWriteOut(extensions));
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
          MutexLock l(&failure_mu);
          if (failure.ok()) failure = s;
        }
        cancelled.store(true);
        reader.Done(shard, SIZE_MAX);
        return s;
      };
      for (size_t k = next;; ++k) {
        {
          MutexLock l(&round_mu);
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
        auto mine = [&](size_t i) {
          return n == 1 || (*chunk)->shard_of[i] == shard ||
                 (*chunk)->shard_of[i] == ChunkReader::kEveryShard;
        };
        // The shard's own events are fetched ahead, and then what the projection will read
        // for them (Projection::Prefetch), in its stages.
        const size_t stages = static_cast<size_t>(std::max(0, projection.prefetch_stages()));
        for (size_t i = 0; i < events.size(); ++i) {
          FetchAhead(events, i, mine);
          for (size_t s = 0; s < stages; ++s) {
            const size_t ahead = i + 2 * (stages - s);
            if (ahead < events.size() && mine(ahead)) {
              projection.Prefetch(events[ahead], static_cast<int>(s));
            }
          }
          const store::StoredEvent& e = events[i];
          if (!mine(i)) {
            if (!(*chunk)->observed[i]) continue;
            txn.set_position(e.position());
            absl::Status s;  // n > 1: sharded
            if (absl::Status thrown =
                    internal::Guarded(projection, [&] { s = sharded->Observe(e, txn); });
                !thrown.ok()) {
              return fail(thrown);
            }
            if (!s.ok()) return fail(s);
            continue;
          }
          txn.set_position(e.position());
          absl::Status s;
          if (absl::Status thrown =
                  internal::Guarded(projection, [&] { s = projection.Apply(e, txn); });
              !thrown.ok()) {
            return fail(thrown);
          }
          if (!s.ok()) return fail(s);
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
            MutexLock l(&round_mu);
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
      MutexLock l(&failure_mu);
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

}  // namespace ihs::projections
