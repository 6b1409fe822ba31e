// Writing a generated history somewhere: into an EventStore in durable batches, or to a JSON
// Lines file. Both stream: memory stays bounded by one batch and the generator's own state.
#ifndef IHS_BENCH_WORKLOAD_LOAD_H_
#define IHS_BENCH_WORKLOAD_LOAD_H_

#include <capnp/message.h>
#include <capnp/orphan.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "store/event_store.h"
#include "workload/generator.h"

namespace ihs::workload {

// Events per AppendMulti. Fixed: a resumed load relies on every batch but the last being full.
inline constexpr size_t kLoadBatch = 2000;

// The next events of a generator, in one arena.
struct EventBatch {
  capnp::MallocMessageBuilder arena{8192};
  std::vector<capnp::Orphan<schema::Event>> events;
  double fraction = 0;  // the generator's fraction_done() after the last of them
  int64_t arrived = 0;  // the generator's arrived() after the last of them

  std::vector<schema::Event::Reader> Readers() const;
};

// Up to `count` events (fewer, or none, at the end of the history); with a `span`, the batch also
// ends with the first event that arrived more than `span` after the batch's first.
std::unique_ptr<EventBatch> NextBatch(Generator& generator, size_t count,
                                      absl::Duration span = absl::InfiniteDuration());

// One StreamAppend (expected version: any) per stream, in the order streams first appear, each
// with its events in their order: one batch of generated events as one AppendMulti. The
// readers must outlive the result.
std::vector<store::StreamAppend> GroupByStream(const std::vector<schema::Event::Reader>& events);

// The same batch as AppendMulti calls that keep every reference pointing backwards: grouping by
// stream moves a stream's events up to its first event of the batch, which can put an event
// before one of another stream that it names (a share before the post it shares, by
// causationId, inReplyTo or corrects). A new append starts at such an event, so the log holds
// what an event names before it, as the generator emitted them (the community projection counts
// a share only if the log holds its post first). Each append is a contiguous run of the batch.
std::vector<std::vector<store::StreamAppend>> CausalAppends(
    const std::vector<schema::Event::Reader>& events);

// Called now and then with the events written so far and how far through the days the
// generator is (0..1).
using LoadProgress = std::function<void(uint64_t events, double fraction)>;

struct LoadReport {
  uint64_t appended = 0;  // events written by this call
  uint64_t present = 0;   // events of this history the store already held (a resumed load)
  absl::Duration elapsed;
};

// Appends the generator's events to `store`, one durable AppendMulti of kLoadBatch events at a
// time, generating the next batch on a second thread while one is written. The store must be
// empty or hold a prefix of this very history (same fingerprint), in which case the load resumes
// after it; events appended by others after it or between its batches (a demo's, ihsd's own) are
// left alone. A store whose first event is not of this history is kAlreadyExists, untouched.
//
// `arrival`, if given, is the store's clock (store::Options::clock): each batch then spans at
// most kArrivalSpan of simulated time and is recorded at the moment its last event arrived
// (Generator::arrived), so that the store's recordedAt follows the history, within the span, and
// a reader as of a moment of it sees what was known then.
inline constexpr absl::Duration kArrivalSpan = absl::Hours(1);
absl::StatusOr<LoadReport> LoadIntoStore(Generator& generator, store::EventStore& store,
                                         const LoadProgress& progress = nullptr,
                                         FakeClock* arrival = nullptr);

// Writes the events as JSON Lines (schema/json.h) to `path` through `path.tmp`, renamed into
// place at the end, so an interrupted run leaves no file that looks complete.
absl::StatusOr<LoadReport> WriteJsonLines(Generator& generator, const std::string& path,
                                          const LoadProgress& progress = nullptr);

}  // namespace ihs::workload

#endif  // IHS_BENCH_WORKLOAD_LOAD_H_
