// ihsd's HTTP endpoints for operators (docs/operations.md "HTTP: health and metrics"), served
// with kj-http from Debian's Cap'n Proto on the event loop that serves RPC (`ihsd --http ADDR`).
// Every other path is the agent's console (server/console.h, docs/console.md).
//
//   GET /healthz   200 "ok": the process and its event loop answer
//   GET /readyz    200 "ready" when the store is open, ihsd is not shutting down and every
//                  projection is neither failed nor corrupt and within `ready_lag_events` of the
//                  log's head; else 503, one line per reason
//   GET /metrics   the Prometheus text format (version 0.0.4): the store, group commit, RPC
//                  connections and subscriptions, and each projection's checkpoint, lag and state
//
// HEAD is GET without the body; another method is answered 405, another path 404. /metrics asks
// for `Authorization: Bearer TOKEN` unless ihsd is open (no tokens file) and has no metrics
// tokens: a token of the metrics tokens file (any role), or an admin token of the tokens file;
// else 401. /healthz and /readyz tell nothing but their state and need no token.
//
// Threads: the event loop's, as the Server's.
#ifndef IHS_SERVER_HTTP_H_
#define IHS_SERVER_HTTP_H_

#include <kj/compat/http.h>

#include <string>
#include <vector>

#include "projections/runner.h"
#include "server/console.h"
#include "server/service.h"
#include "server/tokens.h"
#include "store/event_store.h"

namespace ihs::server {

struct HttpOptions {
  uint64_t ready_lag_events = 10000;  // /readyz: how far a projection may be behind the head
  // HTTP connections open at once; more are closed as they are accepted (counted in
  // ihs_http_connections_refused_total), so that idle sockets cannot take ihsd's descriptors.
  size_t max_connections = 64;
  const Tokens* metrics_tokens = nullptr;  // tokens that may read /metrics (any role); may be null
  std::string version = "0";
  ConsoleOptions console;
};

// What /metrics shows of the HTTP listener itself.
struct HttpMetrics {
  uint64_t refused = 0;           // connections closed at accept (over max_connections)
  uint64_t console_sessions = 0;  // console sessions logged in
  uint64_t console_live = 0;      // console live streams open
};

// The /metrics text. `server` and `projections` as Server::Metrics and Runner::Status give them.
std::string RenderMetrics(const store::StoreMetrics& store, const ServerMetrics& server,
                          const std::vector<projections::ProjectionStatus>& projections,
                          const std::string& version, const HttpMetrics& http);

// Why ihsd is not ready (empty: ready).
std::vector<std::string> NotReady(const ServerMetrics& server,
                                  const std::vector<projections::ProjectionStatus>& projections,
                                  uint64_t ready_lag_events);

class OperatorHttp final : public kj::HttpService, public kj::TaskSet::ErrorHandler {
 public:
  // All of them must outlive it; `runner` may be null (no projections). `tokens` is read at each
  // request, so a reload (SIGHUP) applies at once.
  OperatorHttp(store::EventStore& store, projections::Runner* runner, const Server& server,
               const Tokens& tokens, kj::Timer& timer, HttpOptions options);
  ~OperatorHttp();

  // Accepts connections until the promise is dropped, at most options.max_connections at once.
  kj::Promise<void> Listen(kj::ConnectionReceiver& listener);

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url,
                            const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                            Response& response) override {
    return Serve(method, url, headers, body, response, "");
  }
  // A request of a client at `peer` (its address, for the console's limits and trail).
  kj::Promise<void> Serve(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders& headers,
                          kj::AsyncInputStream& body, Response& response, const std::string& peer);

  const Console& console() const { return *console_; }

 private:
  kj::Promise<void> Send(Response& response, unsigned status, kj::StringPtr status_text,
                         std::string body, const char* content_type = "text/plain; charset=utf-8",
                         bool challenge = false);
  bool MayReadMetrics(const kj::HttpHeaders& headers) const;
  void taskFailed(kj::Exception&&) override {}
  class PeerService;  // a connection that failed (reset, timeout)

  store::EventStore& store_;
  projections::Runner* runner_;
  const Server& server_;
  const Tokens& tokens_;
  HttpOptions options_;
  kj::Own<Console> console_;
  kj::Own<kj::HttpHeaderTable> table_;
  kj::HttpHeaderId authorization_;
  kj::HttpHeaderId www_authenticate_, allow_, cache_control_, nosniff_;
  size_t open_ = 0;       // connections being served
  uint64_t refused_ = 0;  // closed at accept: over max_connections
  kj::Own<kj::HttpServer> http_;
  kj::Own<kj::TaskSet> connections_;  // last: its tasks count down open_ as they end
};

}  // namespace ihs::server

#endif  // IHS_SERVER_HTTP_H_
