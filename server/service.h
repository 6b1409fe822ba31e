// ihsd's RPC service: serves schema/rpc.capnp over two-party Cap'n Proto connections, on top of
// one EventStore. tools/ihsd/main.cc builds it and hands it accepted connections.
//
// Every connection gets its own Gateway (the bootstrap object). A login yields a capability of
// one role, implemented by a class that has that role's methods and no others, so a client that
// casts it to another role gets UNIMPLEMENTED from Cap'n Proto itself.
//
// Problems (a refused login, a dropped connection ...) are logged to stderr, one line each.
//
// Limits, per connection (docs/rpc.md): message size (larger messages close the connection),
// calls in flight (more are answered `overloaded`), the words of calls in flight (Cap'n Proto's
// flow limit: the server stops reading the connection until replies go out), subscriptions, the
// time to log in. A request is hostile input: one that carries a capability where the schema has
// none, or that does not decode (text without its NUL), is answered `badInput` and changes nothing.
//
// Threads: everything here runs on the event-loop thread that created the Server, except the
// store calls, which run on a WorkerPool. Destroy the Server on that thread, before the store.
#ifndef IHS_SERVER_SERVICE_H_
#define IHS_SERVER_SERVICE_H_

#include <kj/async-io.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "common/log.h"
#include "projections/runner.h"
#include "server/commit_watch.h"
#include "server/tokens.h"
#include "server/worker_pool.h"
#include "store/event_store.h"

namespace ihs::server {

struct ServerOptions {
  size_t workers = 32;                  // threads for store calls; appends block on their sync
  size_t max_calls_in_flight = 128;     // per connection; more are answered `overloaded`
  size_t max_message_bytes = 32 << 20;  // larger incoming messages close the connection
  size_t flow_limit_bytes = 64 << 20;   // of calls in flight per connection
  size_t max_connections = 4096;        // more are closed at once, with a log line
  size_t max_read_events = 10000;       // per read call
  size_t max_reply_bytes = 8 << 20;     // a read stops early when its reply would pass this
  // Subscriptions hold a capability of the client's and memory of ihsd's while they run, and do
  // not count as calls in flight: they have limits of their own.
  size_t max_subscriptions = 1024;                        // in all; more are answered `overloaded`
  size_t max_subscriptions_per_connection = 8;            // on one connection
  absl::Duration subscriber_timeout = absl::Seconds(60);  // a push not let through by then ends
                                                          // the subscription
  // A connection must log in within login_timeout, or it is closed; at most
  // max_pending_logins connections may be waiting to, so that silent sockets cannot take every
  // slot of max_connections (0: half of max_connections).
  absl::Duration login_timeout = absl::Seconds(10);
  size_t max_pending_logins = 0;
  std::string version = "0";
  // Problems, one line each; default: stderr as "ihsd: TIME LINE". Must outlive the Server.
  LogSink* log = nullptr;
};

// What /metrics and /readyz show of the server (server/http.h).
struct ServerMetrics {
  size_t connections = 0;     // open, logged in or not
  size_t pending_logins = 0;  // open and not logged in yet
  size_t calls_in_flight = 0;
  size_t subscriptions = 0;  // of events and of segment transitions
  // Of the subscriptions of events: the events they have yet to push (the log's head minus the
  // position each pushes next), the largest and the sum.
  uint64_t backlog_max = 0, backlog_sum = 0;
  // Of the subscriptions of segment transitions: how many, and the transitions they have yet to
  // push (the feed's next seq minus the seq each pushes next), the largest and the sum.
  size_t transition_subscriptions = 0;
  uint64_t transition_backlog_max = 0, transition_backlog_sum = 0;
  uint64_t accepted = 0;  // connections accepted since start
  bool draining = false;  // shutting down
  // RPC calls answered, by (method, outcome): "ok", the error's kind, or "exception" (the call
  // ended without an answer: the connection went away).
  std::map<std::pair<std::string, std::string>, uint64_t> calls;
};

class Server {
 public:
  // `runner` serves the timeline and projection calls; null: they answer `unavailable`.
  // All of them, and `timer` (the event loop's), must outlive the Server.
  Server(store::EventStore& store, projections::Runner* runner, const Tokens& tokens,
         kj::Timer& timer, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Accepts connections until the promise is dropped.
  kj::Promise<void> Listen(kj::ConnectionReceiver& listener);
  // Serves one connection; `peer` names it in log lines.
  void Accept(kj::Own<kj::AsyncIoStream> stream, std::string peer);

  // Closes every connection that logged in with a token the tokens file no longer holds (or
  // holds with another role, after ihsd read it again), or whose token has expired; returns how
  // many. Their calls and subscriptions end as if the client had hung up.
  size_t EndRevokedSessions();

  ServerMetrics Metrics() const;

  // Refuses new calls (`unavailable`), ends every subscription, and resolves once no store call
  // is in flight, or after `grace`.
  kj::Promise<void> Shutdown(kj::Timer& timer, absl::Duration grace);

  // Shared with the per-connection objects (service.cc).
  struct Connection;
  class Subscription;
  class TransitionSubscription;
  struct Shared;

 private:
  void Drop(uint64_t id, const std::string& why);

  std::unique_ptr<Shared> shared_;
  std::map<uint64_t, kj::Own<Connection>> connections_;
  kj::Own<kj::TaskSet> tasks_;
  class ErrorHandler;
  kj::Own<ErrorHandler> error_handler_;
};

}  // namespace ihs::server

#endif  // IHS_SERVER_SERVICE_H_
