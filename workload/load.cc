#include "workload/load.h"

#include <capnp/message.h>
#include <capnp/orphan.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/big_endian.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "schema/json.h"

namespace ihs::workload {
namespace {

// A bounded queue between the generating thread and the appending one. Safe for concurrent use.
class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : capacity_(capacity) {}
  void Push(std::unique_ptr<EventBatch> b) {
    MutexLock lock(&mu_);
    Await(mu_, absl::Condition(this, &BatchQueue::HasSpaceOrClosed));
    if (closed_) return;
    queue_.push_back(std::move(b));
  }
  // nullptr at the end.
  std::unique_ptr<EventBatch> Pop() {
    MutexLock lock(&mu_);
    Await(mu_, absl::Condition(this, &BatchQueue::HasBatchOrDone));
    if (queue_.empty()) return nullptr;
    auto b = std::move(queue_.front());
    queue_.pop_front();
    return b;
  }
  void Finish() {
    MutexLock lock(&mu_);
    done_ = true;
  }
  // The consumer gives up: the producer stops at its next push.
  void Close() {
    MutexLock lock(&mu_);
    closed_ = true;
  }
  bool closed() {
    MutexLock lock(&mu_);
    return closed_;
  }

 private:
  bool HasSpaceOrClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.size() < capacity_ || closed_;
  }
  bool HasBatchOrDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || done_;
  }

  absl::Mutex mu_;
  std::deque<std::unique_ptr<EventBatch>> queue_ ABSL_GUARDED_BY(mu_);
  const size_t capacity_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

uint64_t IdPrefix(schema::Event::Reader e) {
  auto id = e.getId();
  return id.size() == 16 ? GetBigEndian64(reinterpret_cast<const char*>(id.begin())) : 0;
}
uint64_t IdSeq(schema::Event::Reader e) {
  auto id = e.getId();
  return id.size() == 16 ? GetBigEndian64(reinterpret_cast<const char*>(id.begin()) + 8) : 0;
}

// How much of this history the store holds already; kAlreadyExists if it holds another one.
// The history's events are appended in order, one atomic append per batch, so the store holds
// its first N events, N - 1 being the greatest sequence number in the last batch it holds. Other
// appends may follow (a demo's, or ihsd's own identity links) or sit between its batches.
absl::StatusOr<uint64_t> PresentPrefix(Generator& generator, store::EventStore& store) {
  const uint64_t head = store.Head();
  if (head == 0) return 0;
  const uint64_t ours = generator.fingerprint();
  store::ReadOptions ro;
  ro.open_content = false;
  IHS_ASSIGN_OR_RETURN(auto first, store.ReadAll(0, 1, ro));
  if (first.empty()) return absl::InternalError("the log has a hole");
  if (IdPrefix(first[0].event()) != ours) {
    return absl::AlreadyExistsError(absl::StrCat(
        "the store already holds ", head,
        " events of a different history (other seed, parties, days or --ends, or events not made "
        "by ihs generate); give an empty directory, or --force to replace it"));
  }
  for (uint64_t end = head; end > 0;) {
    const uint64_t from = end > kLoadBatch ? end - kLoadBatch : 0;
    IHS_ASSIGN_OR_RETURN(auto window, store.ReadAll(from, end - from, ro));
    for (size_t i = window.size(); i-- > 0;) {
      if (IdPrefix(window[i].event()) != ours) continue;
      // The last append of this history ends here: its events lie at most kLoadBatch back.
      const uint64_t last = window[i].position();
      const uint64_t batch_from = last + 1 > kLoadBatch ? last + 1 - kLoadBatch : 0;
      IHS_ASSIGN_OR_RETURN(auto batch, store.ReadAll(batch_from, last + 1 - batch_from, ro));
      uint64_t present = 0;
      for (const store::StoredEvent& e : batch) {
        if (IdPrefix(e.event()) == ours) present = std::max(present, IdSeq(e.event()) + 1);
      }
      return present;
    }
    end = from;
  }
  return absl::InternalError("the log's first event is of this history, and then none is");
}

}  // namespace

std::vector<schema::Event::Reader> EventBatch::Readers() const {
  std::vector<schema::Event::Reader> out;
  out.reserve(events.size());
  for (const auto& orphan : events) out.push_back(orphan.getReader());
  return out;
}

std::unique_ptr<EventBatch> NextBatch(Generator& generator, size_t count, absl::Duration span) {
  auto batch = std::make_unique<EventBatch>();
  auto orphanage = batch->arena.getOrphanage();
  int64_t first = 0;
  while (batch->events.size() < count) {
    auto orphan = orphanage.newOrphan<schema::Event>();
    if (!generator.Next(orphan.get())) break;
    batch->events.push_back(std::move(orphan));
    if (batch->events.size() == 1) first = generator.arrived();
    if (absl::Microseconds(generator.arrived() - first) > span) break;
  }
  batch->fraction = generator.fraction_done();
  batch->arrived = generator.arrived();
  return batch;
}

std::vector<store::StreamAppend> GroupByStream(const std::vector<schema::Event::Reader>& events) {
  std::vector<store::StreamAppend> appends;
  absl::flat_hash_map<std::string, size_t> index;
  for (schema::Event::Reader e : events) {
    std::string stream(e.getStreamId().cStr());
    auto [it, fresh] = index.try_emplace(stream, appends.size());
    if (fresh) {
      appends.emplace_back();
      appends.back().stream = std::move(stream);
    }
    appends[it->second].events.push_back(e);
  }
  return appends;
}

std::vector<std::vector<store::StreamAppend>> CausalAppends(
    const std::vector<schema::Event::Reader>& events) {
  std::vector<std::vector<store::StreamAppend>> out(1);
  absl::flat_hash_map<std::string, size_t> group;   // stream -> its place in the current append
  absl::flat_hash_map<std::string, size_t> placed;  // event id -> its stream's place
  for (schema::Event::Reader e : events) {
    const std::string stream(e.getStreamId().cStr());
    auto it = group.find(stream);
    size_t at = it != group.end() ? it->second : group.size();
    auto names_later = [&](capnp::Data::Reader ref) {
      if (ref.size() == 0) return false;
      auto p = placed.find(std::string(reinterpret_cast<const char*>(ref.begin()), ref.size()));
      return p != placed.end() && p->second > at;
    };
    bool cut = names_later(e.getCausationId());
    if (e.isTouchpoint()) {
      cut = cut || names_later(e.getTouchpoint().getInReplyTo()) ||
            names_later(e.getTouchpoint().getCorrects());
    }
    if (cut) {
      out.emplace_back();
      group.clear();
      placed.clear();
      it = group.end();
      at = 0;
    }
    std::vector<store::StreamAppend>& appends = out.back();
    if (it == group.end()) {
      group.emplace(stream, appends.size());
      appends.emplace_back();
      appends.back().stream = stream;
    }
    appends[at].events.push_back(e);
    placed.emplace(std::string(reinterpret_cast<const char*>(e.getId().begin()), e.getId().size()),
                   at);
  }
  if (out.back().empty()) out.pop_back();
  return out;
}

absl::StatusOr<LoadReport> LoadIntoStore(Generator& generator, store::EventStore& store,
                                         const LoadProgress& progress, FakeClock* arrival) {
  const absl::Time start = absl::Now();
  LoadReport report;
  IHS_ASSIGN_OR_RETURN(report.present, PresentPrefix(generator, store));
  if (report.present > 0 && generator.Skip(report.present) != report.present) {
    return absl::AlreadyExistsError(
        absl::StrCat("the store holds ", report.present, " events, more than this whole history"));
  }

  BatchQueue queue(3);
  std::thread producer([&] {
    for (;;) {
      auto batch = NextBatch(generator, kLoadBatch,
                             arrival != nullptr ? kArrivalSpan : absl::InfiniteDuration());
      const bool last = batch->events.empty();
      if (!batch->events.empty()) queue.Push(std::move(batch));
      if (last || queue.closed()) break;
    }
    queue.Finish();
  });

  absl::Status status;
  while (auto batch = queue.Pop()) {
    std::vector<schema::Event::Reader> events = batch->Readers();
    if (arrival != nullptr) arrival->Set(absl::FromUnixMicros(batch->arrived));
    absl::Status result;
    for (const std::vector<store::StreamAppend>& appends : CausalAppends(events)) {
      result = store.AppendMulti(appends).status();
      if (!result.ok()) break;
    }
    if (!result.ok()) {
      status = absl::Status(
          result.code(), absl::StrCat("appending generated events ",
                                      report.present + report.appended, "..: ", result.message()));
      queue.Close();
      while (queue.Pop()) {
      }
      break;
    }
    report.appended += batch->events.size();
    if (progress) progress(report.present + report.appended, batch->fraction);
  }
  producer.join();
  IHS_RETURN_IF_ERROR(status);
  report.elapsed = absl::Now() - start;
  return report;
}

absl::StatusOr<LoadReport> WriteJsonLines(Generator& generator, const std::string& path,
                                          const LoadProgress& progress) {
  const absl::Time start = absl::Now();
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  schema::EventJson json(schema::EventJson::Fields::kNonDefault);
  LoadReport report;
  bool ok = true;
  for (;;) {
    capnp::MallocMessageBuilder message(256);
    auto e = message.initRoot<schema::Event>();
    if (!generator.Next(e)) break;
    std::string line = json.Encode(e.asReader());
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), f) != line.size()) {
      ok = false;
      break;
    }
    if (++report.appended % 10000 == 0 && progress) {
      progress(report.appended, generator.fraction_done());
    }
  }
  const int err = errno;
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("writing ", tmp, ": ", std::strerror(err)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_err = errno;
    std::remove(tmp.c_str());
    return absl::InvalidArgumentError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(rename_err)));
  }
  if (progress) progress(report.appended, 1.0);
  report.elapsed = absl::Now() - start;
  return report;
}

}  // namespace ihs::workload
