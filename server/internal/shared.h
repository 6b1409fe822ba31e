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
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
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
#include "server/wire.h"
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
  // Who logged in on it, once per token (a connection may log in more than once).
  std::vector<Identity> logins;
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

// What Shared tracks of a running subscription of either kind (PushLoop below).
class SubscriptionBase {
 public:
  virtual ~SubscriptionBase() noexcept(false) = default;  // as kj::Promise's
  // Tells the subscriber why it ends (best effort) and stops the loop. Not from inside the loop:
  // that would destroy the promise that is running.
  virtual void End(const absl::Status& why) = 0;
  // A subscription of events: the position it pushes next (its backlog is the head minus it).
  virtual std::optional<uint64_t> NextPosition() const { return std::nullopt; }
  // A subscription of transitions: the seq it pushes next (its backlog is the feed's next seq
  // minus it).
  virtual std::optional<uint64_t> NextTransitionSeq() const { return std::nullopt; }
};

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
        segments_watch(r == nullptr ? nullptr : NewProjectionWatch(*r, "segments")),
        reads(4, "ihsd:reads"),
        appends(options.workers, "ihsd:appends"),
        waits(8, "ihsd:waits") {}

  void Log(const std::string& line) { log->Log(line); }

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
  kj::Own<kj::PromiseFulfiller<void>> idle;   // set while Shutdown waits for calls
  std::set<SubscriptionBase*> subscriptions;  // of both kinds: events and transitions
  // RPC calls answered, by method and outcome ("ok", an error kind, "exception"): /metrics.
  std::map<std::pair<std::string, std::string>, uint64_t> calls;
  CommitWatch watch;
  std::unique_ptr<CommitWatch> segments_watch;  // null without projections
  WorkerPool reads;                             // reads and status: short, never wait for a sync
  WorkerPool appends;                           // appends: each waits for its group's sync
  WorkerPool waits;  // reads that wait for a projection to reach a position (minPosition)
};

// What both kinds of subscription share: the count against the limits, the loop and its end, the
// end told to the subscriber, and pushes that a stalled subscriber cannot hold for ever.
// `Subscriber` is rpc::Subscriber or rpc::SegmentSubscriber.
template <typename Subscriber>
class PushLoop : public SubscriptionBase {
 public:
  void End(const absl::Status& why) override {
    TellEnd(why);
    task_ = kj::READY_NOW;
    Uncount();
  }

 protected:
  PushLoop(Server::Shared& shared, std::shared_ptr<ConnState> conn,
           typename Subscriber::Client subscriber)
      : shared_(shared), conn_(std::move(conn)), subscriber_(kj::mv(subscriber)) {
    shared_.subscriptions.insert(this);
    ++conn_->subscriptions;
    counted_ = true;
  }
  ~PushLoop() noexcept(false) override { Stop(); }

  // Stops the loop and the count; a derived class calls it first thing in its destructor, so
  // that the loop never outlives what it reads.
  void Stop() {
    task_ = kj::READY_NOW;
    Uncount();
  }

  // Runs `loop`. When it fails (the subscriber went away, failed or stalled): stops, says so once
  // (`where` names the subscription in the line), and lets go of what the loop held once the
  // handler has returned.
  void Run(kj::Promise<void> loop, std::function<std::string()> where) {
    task_ = loop.eagerlyEvaluate([this, where = std::move(where)](kj::Exception&& e) {
      shared_.Log(absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": ", where(),
                               " ended: ", FromKj(e).message()));
      Uncount();
      release_ = kj::evalLater([this] { task_ = kj::READY_NOW; }).eagerlyEvaluate(nullptr);
    });
  }

  // An ended subscription no longer counts against the limits, though the client may still
  // hold its handle.
  void Uncount() {
    if (!counted_) return;
    counted_ = false;
    shared_.subscriptions.erase(this);
    --conn_->subscriptions;
  }

  void TellEnd(const absl::Status& why) {
    auto req = subscriber_.endRequest();
    SetError(req.initError(), why);
    end_ = req.send().ignoreResult().eagerlyEvaluate([](kj::Exception&&) {});
  }

  // `push`, or an `overloaded` failure if the subscriber lets it through not within the
  // subscriber timeout.
  kj::Promise<void> Bounded(kj::Promise<void> push) {
    const absl::Duration timeout = shared_.options.subscriber_timeout;
    kj::Promise<void> stalled =
        shared_.timer.afterDelay(absl::ToInt64Milliseconds(timeout) * kj::MILLISECONDS)
            .then([timeout]() -> kj::Promise<void> {
              return KJ_EXCEPTION(OVERLOADED,
                                  absl::StrCat("the subscriber let no push through within ",
                                               absl::FormatDuration(timeout)));
            });
    return push.exclusiveJoin(kj::mv(stalled));
  }

  Server::Shared& shared_;
  std::shared_ptr<ConnState> conn_;
  typename Subscriber::Client subscriber_;

 private:
  kj::Promise<void> task_ = nullptr;
  kj::Promise<void> end_ = nullptr;
  kj::Promise<void> release_ = nullptr;
  bool counted_ = false;
};

// One subscription: catches up from a position, then follows commits (server/subscription.cc).
class Server::Subscription final : public rpc::Subscription::Server,
                                   public PushLoop<rpc::Subscriber> {
 public:
  Subscription(Shared& shared, std::shared_ptr<ConnState> conn, uint64_t from, OwnedFilter filter,
               bool open_content, rpc::Subscriber::Client subscriber);
  ~Subscription() noexcept(false) override { Stop(); }

 protected:
  kj::Promise<void> scannedTo(ScannedToContext context) override;
  std::optional<uint64_t> NextPosition() const override { return position_; }

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
  // Sends the matching events of `chunk` from index `i` on, in pushes of at most kMaxPushBytes,
  // each after the previous one was let through by flow control.
  kj::Promise<void> Send(std::shared_ptr<std::vector<store::StoredEvent>> chunk, size_t i);

  uint64_t position_;
  OwnedFilter filter_;
  store::ReadOptions read_options_;
};

// One subscription to segment transitions: catches up from a seq of the segments projection's
// feed, then follows it as the projection changes (server/transition_subscription.cc).
class Server::TransitionSubscription final : public rpc::SegmentSubscription::Server,
                                             public PushLoop<rpc::SegmentSubscriber> {
 public:
  TransitionSubscription(Shared& shared, std::shared_ptr<ConnState> conn, uint64_t from_seq,
                         std::set<std::string> segments, rpc::SegmentSubscriber::Client subscriber);
  ~TransitionSubscription() noexcept(false) override { Stop(); }
  std::optional<uint64_t> NextTransitionSeq() const override { return seq_; }

 protected:
  kj::Promise<void> scannedTo(ScannedToContext context) override;

 private:
  static constexpr size_t kChunk = 500;               // transitions per read and push
  static constexpr size_t kMaxPushBytes = 256 << 10;  // per transitions() call

  // Reads the next transitions (on a worker), pushes them, and repeats; when there are none,
  // waits for the projection to change.
  kj::Promise<void> Step();

  uint64_t seq_;
  // Shared with the reads on workers, which may finish after this is gone.
  const std::shared_ptr<const std::set<std::string>> segments_;
};

// The bootstrap object of a new connection: its login yields a role capability
// (server/session.cc).
kj::Own<rpc::Gateway::Server> NewGateway(Server::Shared& shared, std::shared_ptr<ConnState> conn);

}  // namespace ihs::server

#endif  // IHS_SERVER_INTERNAL_SHARED_H_
