// The agent's console on ihsd's HTTP listener (`ihsd --http ADDR`, docs/console.md): the pages
// (server/console/*: HTML, CSS and JavaScript of the project, compiled in) and the JSON API they
// use under /api/. server/http.h serves /healthz, /readyz and /metrics on the same listener and
// hands every other path here.
//
// Access is the same as over RPC: a person logs in with a token of the tokens file (POST
// /api/login, JSON {"token": ...}); the session lives in a cookie that is HttpOnly,
// SameSite=Strict, Path=/ and, under TLS, Secure. Every POST other than the login carries the
// session's CSRF token in X-CSRF-Token. The role decides what the API allows: every role reads
// timelines, segments and community values; opening personal content needs a role that may read
// it over RPC (reader, auditor, admin; a writer may not); erasure needs admin. Failed logins are
// limited per address; sessions are bounded in number and idle time, and end when the token
// leaves the tokens file (a SIGHUP reload) or expires.
//
// Opening a message's subject and text (POST /api/open) appends a contentAccess event to
// "$access" first (who, whose, which event, from where) and answers only once it is durable, so
// that an auditor sees every access to personal content.
//
// Threads: everything runs on the event loop that serves HTTP, except the store and projection
// calls, which run on the console's own WorkerPool.
#ifndef IHS_SERVER_CONSOLE_H_
#define IHS_SERVER_CONSOLE_H_

#include <kj/compat/http.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "projections/runner.h"
#include "server/commit_watch.h"
#include "server/tokens.h"
#include "server/worker_pool.h"
#include "store/event_store.h"

namespace ihs::server {

struct ConsoleOptions {
  bool secure_cookies = false;  // under TLS: the session cookie is Secure
  size_t max_sessions = 1024;   // more logins end the least recently used session
  absl::Duration session_idle = absl::Hours(8);
  size_t max_login_failures = 10;  // per address, in login_failure_window; then 429
  absl::Duration login_failure_window = absl::Minutes(1);
  size_t max_live = 32;              // live streams (server-sent events) at once
  size_t max_body_bytes = 16 << 10;  // of a request body
};

class Console {
 public:
  // Registers the console's headers in `headers` (before it is built); the rest must outlive
  // the Console. `runner` may be null (no projections: the API answers 503).
  Console(kj::HttpHeaderTable::Builder& headers, store::EventStore& store,
          projections::Runner* runner, const Tokens& tokens, kj::Timer& timer,
          ConsoleOptions options);
  ~Console();

  // Once the table is built.
  void SetTable(const kj::HttpHeaderTable& table) { table_ = &table; }

  // Serves one request of a path that is not the operator's; `peer` is the client's address
  // (rate limits and the access trail).
  kj::Promise<void> Serve(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders& headers,
                          kj::AsyncInputStream& body, kj::HttpService::Response& response,
                          const std::string& peer);

  size_t sessions() const { return sessions_.size(); }
  size_t live() const { return live_; }

  struct Reply {
    unsigned status = 200;
    std::string body;  // JSON
  };
  struct Session {
    Identity who;
    std::string csrf;
    absl::Time last_used;
  };

 private:
  kj::Promise<void> Send(kj::HttpService::Response& response, unsigned status, std::string body,
                         const char* content_type, const std::string& cookie = "");
  kj::Promise<void> SendReply(kj::HttpService::Response& response, Reply reply);
  kj::Promise<void> Asset(kj::HttpMethod method, absl::string_view path,
                          kj::HttpService::Response& response);
  kj::Promise<void> Login(const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                          kj::HttpService::Response& response, const std::string& peer);
  // A stream of server-sent events (text/event-stream) while the session lasts: each time
  // `watch` moves, `poll` runs on the pool with the cursor and returns the events to send.
  using Poll = std::function<std::string(uint64_t* cursor)>;
  struct StreamState {
    kj::Own<kj::AsyncOutputStream> out;
    std::string sid;
    CommitWatch* watch = nullptr;
    uint64_t known = 0;   // the watch's counter as last seen
    uint64_t cursor = 0;  // what poll has looked at
    Poll poll;
    std::string text;  // being written
  };
  kj::Promise<void> Stream(const std::string& sid, kj::HttpService::Response& response,
                           CommitWatch& watch, uint64_t cursor, Poll poll);
  kj::Promise<void> Step(StreamState* s);
  // The session of the request's cookie (its id in *id), or null.
  Session* Find(const kj::HttpHeaders& headers, std::string* id);
  bool LoginRefused(const std::string& peer, absl::Time now);
  // Keeps failures_ within kMaxFailingAddresses, never dropping `keep`.
  static constexpr size_t kMaxFailingAddresses = 4096;
  void ForgetOldestFailures(const std::string& keep, absl::Time now);
  std::string Cookie(const std::string& value, bool clear) const;
  // A request body of at most options_.max_body_bytes; null when it is larger.
  kj::Promise<kj::Maybe<kj::String>> Body(kj::AsyncInputStream& body);
  Reply TooLarge() const;

  store::EventStore& store_;
  projections::Runner* runner_;
  const Tokens& tokens_;
  kj::Timer& timer_;
  ConsoleOptions options_;
  const kj::HttpHeaderTable* table_ = nullptr;
  kj::HttpHeaderId cookie_, set_cookie_, csrf_, csp_, cache_control_, nosniff_, frame_options_,
      referrer_policy_, retry_after_, allow_;
  std::map<std::string, Session> sessions_;                 // by session id
  std::map<std::string, std::deque<absl::Time>> failures_;  // failed logins by address
  size_t live_ = 0;
  WorkerPool pool_{4, "ihsd:console"};
  std::unique_ptr<CommitWatch> log_watch_;       // wakes live streams when events commit
  std::unique_ptr<CommitWatch> segments_watch_;  // ... when the segments' state changes
};

}  // namespace ihs::server

#endif  // IHS_SERVER_CONSOLE_H_
