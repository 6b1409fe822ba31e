// The touchpoint workload generator: the interaction history of a company and the people around
// it, deterministic for a seed, streamed one event at a time, with the ground truth that later
// features are scored against. The model and its parameters: workload/model.h and
// docs/workload.md.
//
// Usage:
//   IHS_RETURN_IF_ERROR(workload::Validate(config));
//   workload::Generator gen(config);
//   capnp::MallocMessageBuilder m;
//   while (gen.Next(m.initRoot<schema::Event>())) { ... }
//   gen.WriteTruth(out);
//
// Event ids are fingerprint (8 bytes, from the generator version and the config) followed by the
// event's sequence number (8 bytes, big-endian): the same config gives the same ids, so a rerun
// into the same store is recognised (and is idempotent), and a different history is refused.
//
// Memory is bounded by the parties and the actions pending at one moment (replies, reactions,
// late records), never by the history's length. A Generator is not thread-safe: one caller.
#ifndef IHS_BENCH_WORKLOAD_GENERATOR_H_
#define IHS_BENCH_WORKLOAD_GENERATOR_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "schema/event.capnp.h"

namespace ihs::workload {

struct Config {
  uint64_t parties = 0;  // all kinds together; customers are most of them
  uint32_t days = 0;     // length of the history
  uint64_t seed = 1;
  int64_t start = 1767571200LL * 1000000;  // 2026-01-05T00:00:00Z, a Monday (µs since epoch)
  uint64_t max_events = 0;  // stop after this many events (0: when the days are over)
  bool story = true;        // plant the demo story (customer-ada), if the history is >= 4 days
  // More segments defined at the start, after the truth's (name, rule): what a benchmark
  // evaluates through the history. Not part of the truth.
  std::vector<std::pair<std::string, std::string>> extra_segments;
};

// Checks the values a user gave; the error names the flag and the allowed range.
absl::Status Validate(const Config& config);

class Generator {
 public:
  // `config` must have passed Validate.
  explicit Generator(const Config& config);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Writes the next event (in the order it reaches the store) into `out`; false when the
  // history is complete, `out` then untouched.
  bool Next(schema::Event::Builder out);
  // Skips the next `count` events (generating them, not materialising them): resuming a load.
  uint64_t Skip(uint64_t count);

  uint64_t emitted() const;  // events returned by Next or skipped so far
  // The simulated moment (µs since the epoch) the last event Next returned reached the store: a
  // late letter arrives days after it occurred. Never decreases.
  int64_t arrived() const;
  uint64_t fingerprint() const;
  // The 16-byte id the event with sequence number `seq` has.
  std::string EventId(uint64_t seq) const;
  // How far the simulated clock has come through the days, in [0, 1].
  double fraction_done() const;
  // The stream id of the demo story's customer.
  static constexpr char kStoryParty[] = "customer-ada";

  // The ground truth as of the events emitted so far, as one JSON document (docs/workload.md
  // "Ground truth"). Streams: memory is not doubled for large histories.
  void WriteTruth(std::ostream& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ihs::workload

#endif  // IHS_BENCH_WORKLOAD_GENERATOR_H_
