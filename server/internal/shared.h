// What the pieces of ihsd's RPC service share (server/service.cc: connections,
// server/subscription.cc, server/session.cc: the calls of a session and its role capabilities).
// Not API: include server/service.h.
//
// Threads: everything here is used on the event-loop thread of the Server, except WorkerPool
// jobs, which touch only the store and the runner.
#ifndef IHS_SERVER_INTERNAL_SHARED_H_
#define IHS_SERVER_INTERNAL_SHARED_H_

#include <capnp/message.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "schema/rpc.capnp.h"
#include "server/service.h"
#include "store/stored_event.h"

namespace ihs::server {

// What the capabilities of one connection share. Held by shared_ptr: a capability may outlive
// its Connection by a moment while Cap'n Proto tears the connection down.
struct ConnState {
  uint64_t id = 0;
  std::string peer;
  size_t in_flight = 0;
  bool overload_logged = false;
  bool logged_in = false;
  size_t subscriptions = 0;
  // Set by WatchedStream: how the connection ended.
  uint64_t bytes_read = 0;
  bool peer_closed = false;  // the client closed its side (read returned end of stream)
  bool read_failed = false;
};

struct OwnedFilter {
  std::string prefix;
  absl::flat_hash_set<uint16_t> channels;
  absl::flat_hash_set<uint16_t> types;

  bool Matches(schema::Event::Reader e) const {
    if (!prefix.empty() && !absl::StartsWith(e.getStreamId().cStr(), prefix)) return false;
    if (channels.empty() && types.empty()) return true;
    if (!e.isTouchpoint()) return false;
    auto tp = e.getTouchpoint();
    if (!channels.empty() && !channels.contains(static_cast<uint16_t>(tp.getChannel()))) {
      return false;
    }
    return types.empty() || types.contains(static_cast<uint16_t>(tp.getType()));
  }
};

inline absl::Status ShuttingDown() { return absl::UnavailableError("ihsd is shutting down"); }

struct Server::Shared {
  Shared(store::EventStore& s, projections::Runner* r, const Tokens& t, kj::Timer& tm,
         ServerOptions o)
      : store(s),
        runner(r),
        tokens(t),
        timer(tm),
        options(std::move(o)),
        own_log(options.log ? nullptr : NewStderrLog("ihsd", /*timestamps=*/true)),
        log(options.log ? options.log : own_log.get()),
        watch(s),
        segments_watch(r == nullptr ? nullptr : NewChangeWatch(r, "segments")),
        reads(4),
        appends(options.workers),
        waits(8) {}

  void Log(const std::string& line) { log->Log(line); }

  // Wakes what waits for a projection's state to change (transition subscriptions).
  static std::unique_ptr<CommitWatch> NewChangeWatch(projections::Runner* runner,
                                                     std::string name) {
    return std::make_unique<CommitWatch>(
        runner->WaitForChange(name, UINT64_MAX, absl::InfinitePast()),
        [runner, name](uint64_t known, absl::Time deadline) {
          return runner->WaitForChange(name, known, deadline);
        });
  }

  // Subscriptions of both kinds, for the limits.
  size_t AllSubscriptions() const { return subscriptions.size() + transition_subscriptions.size(); }

  // Admits a call: refused while draining or when the connection has too many in flight.
  // On success the returned guard counts the call until it is destroyed.
  absl::StatusOr<kj::Own<void>> Admit(const std::shared_ptr<ConnState>& conn) {
    if (draining) return ShuttingDown();
    if (conn->in_flight >= options.max_calls_in_flight) {
      if (!conn->overload_logged) {
        conn->overload_logged = true;
        Log(absl::StrCat("conn ", conn->id, " ", conn->peer, ": more than ",
                         options.max_calls_in_flight,
                         " calls in flight; answering `overloaded` (logged once per connection)"));
      }
      return absl::ResourceExhaustedError(absl::StrCat("more than ", options.max_calls_in_flight,
                                                       " calls in flight on this connection"));
    }
    ++conn->in_flight;
    ++calls_in_flight;
    return kj::heap(kj::defer([this, conn] {
      --conn->in_flight;
      if (--calls_in_flight == 0 && idle) idle->fulfill();
    }));
  }

  size_t MaxPendingLogins() const {
    return options.max_pending_logins != 0 ? options.max_pending_logins
                                           : std::max<size_t>(1, options.max_connections / 2);
  }

  store::EventStore& store;
  projections::Runner* runner;  // null: no projections (timeline calls answer `unavailable`)
  const Tokens& tokens;
  kj::Timer& timer;
  ServerOptions options;
  std::unique_ptr<LogSink> own_log;  // when options.log is null
  LogSink* log;
  absl::Time started = absl::Now();
  uint64_t next_connection = 1;
  size_t open_connections = 0;
  size_t calls_in_flight = 0;
  size_t pending_logins = 0;  // open connections that have not logged in
  bool draining = false;
  kj::Own<kj::PromiseFulfiller<void>> idle;  // set while Shutdown waits for calls
  std::set<Server::Subscription*> subscriptions;
  std::set<Server::TransitionSubscription*> transition_subscriptions;
  CommitWatch watch;
  std::unique_ptr<CommitWatch> segments_watch;  // null without projections
  WorkerPool reads;                             // reads and status: short, never wait for a sync
  WorkerPool appends;                           // appends: each waits for its group's sync
  WorkerPool waits;  // reads that wait for a projection to reach a position (minPosition)
};

// One subscription: catches up from a position, then follows commits (server/subscription.cc).
class Server::Subscription final : public rpc::Subscription::Server {
 public:
  Subscription(Shared& shared, std::shared_ptr<ConnState> conn, uint64_t from, OwnedFilter filter,
               bool open_content, rpc::Subscriber::Client subscriber);
  ~Subscription();
  // Tells the subscriber why it ends (best effort) and stops the loop. Not from inside the loop:
  // that would destroy the promise that is running (the loop calls TellEnd and returns).
  void End(const absl::Status& why);

 protected:
  kj::Promise<void> scannedTo(ScannedToContext context) override;

 private:
  // What one subscription holds at a time: a chunk of at most kChunk events and about
  // kMaxChunkBytes stored bytes (twice that with content opened), and one push in flight.
  static constexpr size_t kChunk = 1000;              // events per read
  static constexpr size_t kMaxChunkBytes = 1 << 20;   // stored bytes per read
  static constexpr size_t kMaxPushBytes = 256 << 10;  // per events() call

  // Reads the next chunk (on a worker), sends what matches, and repeats; at the head, waits for
  // the next commit. One send in flight at a time, so a slow subscriber holds back only itself,
  // and Cap'n Proto's stream flow control bounds what is buffered for it.
  kj::Promise<void> Step();
  // An ended subscription no longer counts against the limits, though the client may still
  // hold its handle.
  void Uncount();
  void TellEnd(const absl::Status& why);
  // Sends the matching events of `chunk` from index `i` on, in pushes of at most kMaxPushBytes,
  // each after the previous one was let through by flow control.
  kj::Promise<void> Send(std::shared_ptr<std::vector<store::StoredEvent>> chunk, size_t i);

  Shared& shared_;
  std::shared_ptr<ConnState> conn_;
  uint64_t position_;
  OwnedFilter filter_;
  store::ReadOptions read_options_;
  rpc::Subscriber::Client subscriber_;
  kj::Promise<void> task_ = nullptr;
  kj::Promise<void> end_ = nullptr;
  kj::Promise<void> release_ = nullptr;
  bool counted_ = false;
};

// One subscription to segment transitions: catches up from a seq of the segments projection's
// feed, then follows it as the projection changes (server/transition_subscription.cc). The same
// shape and limits as Subscription.
class Server::TransitionSubscription final : public rpc::SegmentSubscription::Server {
 public:
  TransitionSubscription(Shared& shared, std::shared_ptr<ConnState> conn, uint64_t from_seq,
                         std::set<std::string> segments, rpc::SegmentSubscriber::Client subscriber);
  ~TransitionSubscription();
  void End(const absl::Status& why);  // as Subscription::End

 protected:
  kj::Promise<void> scannedTo(ScannedToContext context) override;

 private:
  static constexpr size_t kChunk = 500;               // transitions per read and push
  static constexpr size_t kMaxPushBytes = 256 << 10;  // per transitions() call

  // Reads the next transitions (on a worker), pushes them, and repeats; when there are none,
  // waits for the projection to change.
  kj::Promise<void> Step();
  void Uncount();
  void TellEnd(const absl::Status& why);

  Shared& shared_;
  std::shared_ptr<ConnState> conn_;
  uint64_t seq_;
  const std::set<std::string> segments_;
  rpc::SegmentSubscriber::Client subscriber_;
  kj::Promise<void> task_ = nullptr;
  kj::Promise<void> end_ = nullptr;
  kj::Promise<void> release_ = nullptr;
  bool counted_ = false;
};

// The bootstrap object of a new connection: its login yields a role capability
// (server/session.cc).
kj::Own<rpc::Gateway::Server> NewGateway(Server::Shared& shared, std::shared_ptr<ConnState> conn);

}  // namespace ihs::server

#endif  // IHS_SERVER_INTERNAL_SHARED_H_
