// What the appenders of derived events share (the identity resolver, the community band
// appender; docs/projections.md "The house"): a thread that follows the log, and an append of
// events whose ids are functions of what they say, so that a retry lands nothing twice.
#ifndef IHS_PROJECTIONS_FOLLOWER_H_
#define IHS_PROJECTIONS_FOLLOWER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/log.h"
#include "projections/runner.h"
#include "store/event_store.h"

namespace ihs::projections {

// Runs `pass` on a thread of its own after every change of the log, once the projection
// `projection` has applied it. A pass that fails is logged once (prefixed with `what`) and tried
// again a second later, while the log may not have changed. The store and runner must outlive it.
class Follower {
 public:
  Follower(store::EventStore& store, Runner& runner, std::string projection, std::string what,
           std::function<absl::Status()> pass, LogSink* log);
  ~Follower();
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  void Start();
  void Stop();

 private:
  void Loop();

  store::EventStore& store_;
  Runner& runner_;
  const std::string projection_, what_;
  const std::function<absl::Status()> pass_;
  LogSink* const log_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// What an idempotent append did: events that landed, and events the log held already (an earlier
// try, or another appender).
struct AppendCount {
  uint64_t appended = 0, present = 0;
};

// A derived event's id (16 bytes): an unkeyed BLAKE2b of `label` and `parts`, each ended by a
// 0 byte, so that the same decision gets the same id however often it is tried.
std::string DerivedEventId(absl::string_view label, std::initializer_list<absl::string_view> parts);

// Appends `append`, whose events' ids are functions of what they say. If one of them is in the
// log already (perhaps with other details from an earlier try), they are appended one by one.
absl::Status AppendOnce(store::EventStore& store, const store::StreamAppend& append,
                        AppendCount& count);

}  // namespace ihs::projections

#endif  // IHS_PROJECTIONS_FOLLOWER_H_
