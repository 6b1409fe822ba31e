#include "projections/runner.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/big_endian.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "projections/bulk.h"
#include "projections/internal/bulk_build.h"
#include "projections/internal/generation.h"
#include "projections/internal/guarded.h"

namespace ihs::projections {

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
  uint64_t changes ABSL_GUARDED_BY(mu) = 0;  // batches and clock batches written, and swaps
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
    MutexLock l(&mu);
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
    : store_(store),
      options_(options),
      clock_(options.clock ? options.clock : RealClock()),
      log_(options.log ? options.log : DefaultLog()) {}

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
  if (options.worker_nice < 0 || options.worker_nice > 19) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker_nice ", options.worker_nice, " is not in 0..19"));
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
    MutexLock l(&slot->mu);
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
  ro.open_content = projection.reads_content();
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
  absl::StatusOr<uint64_t> n = absl::UnknownError("not applied");
  absl::Status thrown = internal::Guarded(
      projection, [&] { n = CommitBatch(store, projection, gen, head, max_events, reached); });
  if (!thrown.ok()) n = thrown;
  if (!n.ok()) projection.Discard();
  return n;
}

}  // namespace

absl::Status Runner::ApplyBatch(Slot& slot, size_t max_events, bool* applied,
                                const std::function<void(uint64_t)>& reached) {
  *applied = false;
  MutexLock apply(&slot.apply_mu);
  std::shared_ptr<Generation> gen = slot.Active();
  IHS_ASSIGN_OR_RETURN(uint64_t n,
                       ApplyTo(store_, *slot.live, *gen, store_.log->Head(), max_events, reached));
  // At the head (a short batch), caches are dropped: they pay off while catching up, and a
  // worker that follows the log should not hold them for as long as ihsd runs.
  if (n < max_events) slot.live->Discard();
  if (n == 0) return absl::OkStatus();
  *applied = true;
  const absl::Time now = clock_->Now();
  MutexLock l(&slot.mu);
  if (now - slot.rate_time >= absl::Seconds(1)) {
    if (slot.rate_time != absl::InfinitePast()) {
      slot.rate = static_cast<double>(gen->checkpoint() - slot.rate_checkpoint) /
                  absl::ToDoubleSeconds(now - slot.rate_time);
    }
    slot.rate_time = now;
    slot.rate_checkpoint = gen->checkpoint();
  }
  ++slot.changes;
  slot.advanced.SignalAll();
  return absl::OkStatus();
}

absl::Status Runner::ClaimRebuild(Slot& slot) {
  MutexLock l(&slot.mu);
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
    MutexLock l(&slot.mu);
    old = slot.gen;
  }
  // Ends the rebuild: the slot is no longer "rebuilding".
  auto done = [&](absl::Status s) {
    MutexLock l(&slot.mu);
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
    n = std::min<size_t>(n, 254);  // a shard's number is a byte, 255 is every shard
    if (n < projection->sharded_rebuild()->min_shards()) n = 1;
    for (size_t i = 1; i < n; ++i) shards.push_back(more.emplace_back(slot.factory()).get());
  }
  absl::Status bulk = BulkBuild(
      store_, shards, *gen, options_.rebuild_memory_bytes,
      [&] {
        MutexLock l(&slot.mu);
        return slot.stop;
      },
      [&](uint64_t reached, uint64_t head) {
        {
          MutexLock l(&slot.mu);
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
      MutexLock l(&slot.mu);
      if (slot.stop) return done(absl::CancelledError("the runner is stopping"));
    }
    absl::StatusOr<uint64_t> n =
        ApplyTo(store_, *projection, *gen, store_.log->Head(), options_.rebuild_batch_events);
    if (!n.ok()) return done(n.status());
    {
      MutexLock l(&slot.mu);
      slot.rebuild_checkpoint = gen->checkpoint();
    }
    if (progress) progress(gen->checkpoint(), store_.log->Head());
  }
  // The rest, and the swap, with the live worker paused between its batches.
  MutexLock apply(&slot.apply_mu);
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
    MutexLock l(&slot.mu);
    slot.gen = gen;
    slot.needs_rebuild = slot.corrupt = false;
    slot.error.clear();
    slot.rate_time = absl::InfinitePast();
    slot.rate_checkpoint = gen->checkpoint();
    ++slot.changes;
    slot.advanced.SignalAll();
  }
  // Only now may a new instance replace the live one: the worker applies to the new generation.
  slot.live = std::move(projection);
  return done(absl::OkStatus());
}

void Runner::MarkCorrupt(Slot& slot, const absl::Status& status) {
  MutexLock l(&slot.mu);
  if (slot.corrupt) return;
  log_->Log(absl::StrCat("projection ", slot.name, ": ", status.message(), "; rebuilding it"));
  slot.corrupt = slot.needs_rebuild = true;
  slot.error = std::string(status.message());
  slot.advanced.SignalAll();
}

void Runner::NameAndLowerThisThread(const std::string& name) const {
  // "p:NAME" in top -H, ps -L and /proc (at most 15 bytes).
  (void)pthread_setname_np(pthread_self(), absl::StrCat("p:", name).substr(0, 15).c_str());
  if (options_.worker_nice == 0) return;
  // Linux gives every thread a nice value of its own; threads it starts inherit it.
  const id_t tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);
  if (errno != 0) return;
  // Raising one's own nice value needs no privilege; failing leaves the thread as it was.
  (void)setpriority(PRIO_PROCESS, tid, std::min(19, now + options_.worker_nice));
}

void Runner::Work(Slot& slot) {
  NameAndLowerThisThread(slot.name);
  for (;;) {
    bool rebuild = false;
    {
      MutexLock l(&slot.mu);
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
        MutexLock l(&slot.mu);
        slot.error = std::string(s.message());
        log_->Log(absl::StrCat("projection ", slot.name, ": ", slot.error, "; retrying in 1 s"));
        AwaitWithTimeout(slot.mu, absl::Condition(&slot.stop), absl::Seconds(1));
      }
      continue;
    }
    if (!applied && !rebuild) {
      // At the head: the clock's turn, then a wait for the next commit or the next timer.
      absl::Time wake;
      s = ApplyClock(slot, &wake);
      if (s.code() == absl::StatusCode::kDataLoss) {
        MarkCorrupt(slot, s);
        continue;
      }
      if (!s.ok()) {
        MutexLock l(&slot.mu);
        slot.error = std::string(s.message());
        log_->Log(absl::StrCat("projection ", slot.name, ": the clock: ", slot.error,
                               "; retrying in 1 s"));
        AwaitWithTimeout(slot.mu, absl::Condition(&slot.stop), absl::Seconds(1));
        continue;
      }
      // Not holding the generation while it waits: a swap drops the old one at once.
      const uint64_t checkpoint = slot.Active()->checkpoint();
      store_.log->WaitForCommit(checkpoint, std::min(absl::Now() + absl::Milliseconds(200), wake));
    }
  }
}

void Runner::Start() {
  for (auto& s : slots_) {
    if (s->worker.joinable()) continue;
    {
      MutexLock l(&s->mu);
      s->stop = false;
    }
    Slot* slot = s.get();
    s->worker = std::thread([this, slot] { Work(*slot); });
  }
}

void Runner::Stop() {
  for (auto& s : slots_) {
    MutexLock l(&s->mu);
    s->stop = true;
    s->advanced.SignalAll();
  }
  for (auto& s : slots_) {
    if (s->worker.joinable()) s->worker.join();
    if (s->rebuilder.joinable()) s->rebuilder.join();
    MutexLock l(&s->mu);
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
      MutexLock l(&slot->mu);
      rebuild = slot->needs_rebuild;
      if (rebuild) {
        log_->Log(absl::StrCat("projection ", slot->name, ": ", slot->error, "; rebuilding it"));
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
    absl::Time wake;
    IHS_RETURN_IF_ERROR(ApplyClock(*slot, &wake));
  }
  return absl::OkStatus();
}

absl::Status Runner::ApplyClock(Slot& slot, absl::Time* wake) {
  *wake = absl::InfiniteFuture();
  MutexLock apply(&slot.apply_mu);
  std::shared_ptr<Generation> gen = slot.Active();
  Projection& p = *slot.live;
  Txn txn(store_, gen->family());
  txn.set_position(gen->checkpoint());
  absl::StatusOr<int64_t> next = p.NextTimer(txn);
  if (!next.ok() || *next == Projection::kNoTimer) return next.status();
  IHS_ASSIGN_OR_RETURN(const int64_t until, store_.log->Watermark());
  if (*next >= until) {
    *wake = absl::FromUnixMicros(*next) + absl::Microseconds(1);
    return absl::OkStatus();
  }
  // Events recorded before `until` come first: the worker applies them, then comes back.
  if (store_.log->Head() > gen->checkpoint()) return absl::OkStatus();
  absl::Status s;
  absl::Status thrown = internal::Guarded(p, [&] {
    s = p.AdvanceClock(until, txn);
    if (s.ok()) s = p.Flush(txn);
  });
  if (!thrown.ok()) s = thrown;
  if (s.ok())
    s = store_.state->WriteState(gen->family(), txn.Finish(gen->checkpoint(), p.version()));
  if (!s.ok()) {
    p.Discard();
    return s;
  }
  {
    MutexLock l(&slot.mu);
    ++slot.changes;
    slot.advanced.SignalAll();
  }
  // The timer after those fired: the worker wakes for it.
  Txn after(store_, gen->family());
  after.set_position(gen->checkpoint());
  IHS_ASSIGN_OR_RETURN(const int64_t again, p.NextTimer(after));
  if (again != Projection::kNoTimer) *wake = absl::FromUnixMicros(again) + absl::Microseconds(1);
  return absl::OkStatus();
}

absl::Status Runner::Rebuild(absl::string_view name, const store::ProgressFn& progress) {
  IHS_ASSIGN_OR_RETURN(Slot * slot, Find(name));
  IHS_RETURN_IF_ERROR(RebuildSlot(*slot, progress));
  // As CatchUp: the clock up to the log's watermark (a worker, if any, does it anyway).
  absl::Time wake;
  return ApplyClock(*slot, &wake);
}

absl::Status Runner::StartRebuild(absl::string_view name) {
  IHS_ASSIGN_OR_RETURN(Slot * slot, Find(name));
  // Claimed here, so that Status() says "rebuilding" as soon as this returns.
  IHS_RETURN_IF_ERROR(ClaimRebuild(*slot));
  if (slot->rebuilder.joinable()) slot->rebuilder.join();  // a finished one
  slot->rebuilder = std::thread([this, slot] {
    NameAndLowerThisThread("r:" + slot->name);
    absl::Status s = RunClaimedRebuild(*slot, nullptr);
    if (!s.ok() && s.code() != absl::StatusCode::kCancelled) {
      log_->Log(absl::StrCat("projection ", slot->name, ": rebuild failed: ", s.message()));
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
      MutexLock l(&s->mu);
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
  MutexLock l(&slot->mu);
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
  MutexLock l(&s.mu);
  while (s.gen->checkpoint() < position && !s.stop) {
    if (WaitWithDeadline(s.advanced, &s.mu, deadline)) break;
  }
  return s.gen->checkpoint() >= position;
}

uint64_t Runner::WaitForChange(absl::string_view name, uint64_t known, absl::Time deadline) {
  absl::StatusOr<Slot*> slot = Find(name);
  if (!slot.ok()) return 0;
  Slot& s = **slot;
  MutexLock l(&s.mu);
  while (s.changes <= known && !s.stop) {
    if (WaitWithDeadline(s.advanced, &s.mu, deadline)) break;
  }
  return s.changes;
}

}  // namespace ihs::projections
