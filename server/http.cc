#include "server/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace ihs::server {
namespace {

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string Label(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Number(double v) { return absl::StrFormat("%.9g", v); }

class Writer {
 public:
  // A metric's HELP and TYPE lines, once.
  void Family(absl::string_view name, absl::string_view type, absl::string_view help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(absl::string_view name, absl::string_view labels, double value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                    Number(value), "\n");
  }
  void One(absl::string_view name, absl::string_view type, absl::string_view help, double v) {
    Family(name, type, help);
    Sample(name, "", v);
  }
  // A histogram from per-bucket counts (not cumulative) and the bounds they end at.
  template <typename Bounds, typename Counts>
  void Histogram(absl::string_view name, absl::string_view help, const Bounds& bounds,
                 const Counts& counts, uint64_t count, double sum) {
    Family(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      cumulative += counts[i];
      Sample(absl::StrCat(name, "_bucket"), absl::StrCat("le=\"", Number(bounds[i]), "\""),
             static_cast<double>(cumulative));
    }
    Sample(absl::StrCat(name, "_bucket"), "le=\"+Inf\"", static_cast<double>(count));
    Sample(absl::StrCat(name, "_sum"), "", sum);
    Sample(absl::StrCat(name, "_count"), "", static_cast<double>(count));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

constexpr std::array<const char*, 5> kProjectionStates = {"live", "catching up", "rebuilding",
                                                          "failed", "corrupt"};

// The address of a connection's client ("127.0.0.1", "::1"; "unix" for a unix socket), or "?".
std::string PeerOf(kj::AsyncIoStream& stream) {
  struct sockaddr_storage addr;
  kj::uint len = sizeof addr;
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] {
                 stream.getpeername(reinterpret_cast<struct sockaddr*>(&addr), &len);
               })) {
    return "?";
  }
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<struct sockaddr_in*>(&addr)->sin_addr, text, sizeof text);
  } else if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<struct sockaddr_in6*>(&addr)->sin6_addr, text,
              sizeof text);
  } else if (addr.ss_family == AF_UNIX) {
    return "unix";
  }
  return text;
}

}  // namespace

// The service of one connection: OperatorHttp's, with the client's address.
class OperatorHttp::PeerService final : public kj::HttpService {
 public:
  PeerService(OperatorHttp& http, std::string peer) : http_(http), peer_(std::move(peer)) {}
  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url,
                            const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                            Response& response) override {
    return http_.Serve(method, url, headers, body, response, peer_);
  }

 private:
  OperatorHttp& http_;
  std::string peer_;
};

std::string RenderMetrics(const store::StoreMetrics& st, const ServerMetrics& server,
                          const std::vector<projections::ProjectionStatus>& projections,
                          const std::string& version, const HttpMetrics& http) {
  Writer w;
  w.Family("ihs_build_info", "gauge", "The running ihsd's version (always 1).");
  w.Sample("ihs_build_info", absl::StrCat("version=\"", Label(version), "\""), 1);
  w.One("ihs_events", "gauge", "Events in the log (its size: the next position).",
        static_cast<double>(st.events));
  w.One("ihs_streams", "gauge", "Streams in the log.", static_cast<double>(st.streams));
  w.One("ihs_disk_bytes", "gauge", "Live SST and WAL bytes of the store, all column families.",
        static_cast<double>(st.disk_bytes));
  w.One("ihs_appends_total", "counter", "Appends that wrote, since ihsd started.",
        static_cast<double>(st.appends));
  w.One("ihs_appended_events_total", "counter", "Events those appends wrote.",
        static_cast<double>(st.appended_events));
  w.Histogram("ihs_group_commit_appends",
              "Appends per write group (one WAL write and sync carries a group).",
              store::StoreMetrics::kGroupBounds, st.group_buckets, st.groups,
              static_cast<double>(st.appends));
  w.Histogram("ihs_group_commit_write_seconds",
              "Seconds of a write group's WAL write and sync (an acknowledgement waits for it).",
              store::StoreMetrics::kWriteBounds, st.write_buckets, st.groups, st.write_seconds);
  w.One("ihs_rpc_connections", "gauge", "Open RPC connections, logged in or not.",
        static_cast<double>(server.connections));
  w.One("ihs_rpc_pending_logins", "gauge", "Open RPC connections that have not logged in yet.",
        static_cast<double>(server.pending_logins));
  w.One("ihs_rpc_connections_accepted_total", "counter", "RPC connections accepted.",
        static_cast<double>(server.accepted));
  w.One("ihs_rpc_calls_in_flight", "gauge", "RPC calls being served.",
        static_cast<double>(server.calls_in_flight));
  w.One("ihs_rpc_subscriptions", "gauge", "Running subscriptions (events and transitions).",
        static_cast<double>(server.subscriptions));
  w.One("ihs_rpc_subscription_backlog_events_max", "gauge",
        "The most events one subscription of events has yet to push (head minus its position).",
        static_cast<double>(server.backlog_max));
  w.One("ihs_rpc_subscription_backlog_events_sum", "gauge",
        "The events all subscriptions of events have yet to push, added up.",
        static_cast<double>(server.backlog_sum));
  w.One("ihs_rpc_transition_subscriptions", "gauge",
        "Running subscriptions of segment transitions.",
        static_cast<double>(server.transition_subscriptions));
  w.One("ihs_rpc_subscription_backlog_transitions_max", "gauge",
        "The most transitions one subscription of transitions has yet to push (the feed's next "
        "seq minus its own).",
        static_cast<double>(server.transition_backlog_max));
  w.One("ihs_rpc_subscription_backlog_transitions_sum", "gauge",
        "The transitions all subscriptions of transitions have yet to push, added up.",
        static_cast<double>(server.transition_backlog_sum));
  w.Family("ihs_rpc_calls_total", "counter",
           "RPC calls answered, by method and outcome (ok, the error's kind, or exception: the "
           "call ended without an answer).");
  for (const auto& [key, n] : server.calls) {
    w.Sample("ihs_rpc_calls_total",
             absl::StrCat("method=\"", Label(key.first), "\",outcome=\"", Label(key.second), "\""),
             static_cast<double>(n));
  }
  w.One("ihs_http_connections_refused_total", "counter",
        "HTTP connections closed at accept: more than --max-http-connections were open.",
        static_cast<double>(http.refused));
  w.One("ihs_console_sessions", "gauge", "Console sessions logged in (bounded; docs/console.md).",
        static_cast<double>(http.console_sessions));
  w.One("ihs_console_live_streams", "gauge",
        "Console live streams (server-sent events of a person's new touchpoints) open.",
        static_cast<double>(http.console_live));
  if (projections.empty()) return w.Take();
  auto per = [&](absl::string_view name, absl::string_view type, absl::string_view help,
                 auto value) {
    w.Family(name, type, help);
    for (const auto& p : projections) {
      w.Sample(name, absl::StrCat("projection=\"", Label(p.name), "\""), value(p));
    }
  };
  per("ihs_projection_checkpoint", "gauge", "Events the projection has applied.",
      [](const auto& p) { return static_cast<double>(p.checkpoint); });
  per("ihs_projection_lag_events", "gauge", "Events of the log the projection has not applied.",
      [](const auto& p) { return static_cast<double>(p.lag_events); });
  per("ihs_projection_lag_seconds", "gauge",
      "Seconds since the oldest event the projection has not applied was recorded.",
      [](const auto& p) { return p.lag_seconds; });
  per("ihs_projection_events_per_second", "gauge", "Events applied per second, lately.",
      [](const auto& p) { return p.events_per_second; });
  w.Family("ihs_projection_state", "gauge",
           "1 for the projection's state (live, catching up, rebuilding, failed, corrupt).");
  for (const auto& p : projections) {
    for (const char* s : kProjectionStates) {
      w.Sample("ihs_projection_state",
               absl::StrCat("projection=\"", Label(p.name), "\",state=\"", s, "\""),
               p.state == s ? 1 : 0);
    }
  }
  w.Family("ihs_projection_rebuild_checkpoint", "gauge",
           "Events a running rebuild has applied (only while one runs).");
  for (const auto& p : projections) {
    if (p.rebuild_checkpoint) {
      w.Sample("ihs_projection_rebuild_checkpoint",
               absl::StrCat("projection=\"", Label(p.name), "\""),
               static_cast<double>(*p.rebuild_checkpoint));
    }
  }
  return w.Take();
}

std::vector<std::string> NotReady(const ServerMetrics& server,
                                  const std::vector<projections::ProjectionStatus>& projections,
                                  uint64_t ready_lag_events) {
  std::vector<std::string> why;
  if (server.draining) why.push_back("ihsd is shutting down");
  for (const auto& p : projections) {
    if (p.state == "failed" || p.state == "corrupt") {
      why.push_back(absl::StrCat("projection ", p.name, " is ", p.state,
                                 p.error.empty() ? "" : ": ", p.error));
    } else if (p.lag_events > ready_lag_events) {
      why.push_back(absl::StrCat("projection ", p.name, " is ", p.lag_events,
                                 " events behind the log (more than ", ready_lag_events, ")"));
    }
  }
  return why;
}

OperatorHttp::OperatorHttp(store::EventStore& store, projections::Runner* runner,
                           const Server& server, const Tokens& tokens, kj::Timer& timer,
                           HttpOptions options)
    : store_(store),
      runner_(runner),
      server_(server),
      tokens_(tokens),
      options_(std::move(options)) {
  kj::HttpHeaderTable::Builder b;
  authorization_ = b.add("Authorization");
  www_authenticate_ = b.add("WWW-Authenticate");
  allow_ = b.add("Allow");
  cache_control_ = b.add("Cache-Control");
  nosniff_ = b.add("X-Content-Type-Options");
  console_ = kj::heap<Console>(b, store, runner, tokens, timer, options_.console);
  table_ = b.build();
  console_->SetTable(*table_);
  kj::HttpServerSettings settings;
  settings.headerTimeout = 10 * kj::SECONDS;
  // A service per connection, which knows the client's address.
  http_ = kj::heap<kj::HttpServer>(
      timer, *table_,
      [this](kj::AsyncIoStream& stream) -> kj::Own<kj::HttpService> {
        return kj::heap<PeerService>(*this, PeerOf(stream));
      },
      settings);
  connections_ = kj::heap<kj::TaskSet>(*this);
}

OperatorHttp::~OperatorHttp() {
  connections_ = nullptr;
  http_ = nullptr;
}

kj::Promise<void> OperatorHttp::Listen(kj::ConnectionReceiver& listener) {
  return listener.accept().then([this, &listener](kj::Own<kj::AsyncIoStream> stream) {
    if (open_ >= options_.max_connections) {
      ++refused_;  // dropping the stream closes it
    } else {
      ++open_;
      connections_->add(http_->listenHttp(kj::mv(stream)).attach(kj::defer([this] { --open_; })));
    }
    return Listen(listener);
  });
}

kj::Promise<void> OperatorHttp::Send(Response& response, unsigned status, kj::StringPtr status_text,
                                     std::string body, const char* content_type, bool challenge) {
  kj::HttpHeaders h(*table_);
  h.set(kj::HttpHeaderId::CONTENT_TYPE, content_type);
  h.set(cache_control_, "no-store");
  h.set(nosniff_, "nosniff");
  if (status == 405) h.set(allow_, "GET, HEAD");
  if (challenge) h.set(www_authenticate_, "Bearer realm=\"ihsd metrics\"");
  auto text = kj::heap<std::string>(std::move(body));
  auto out = response.send(status, status_text, h, text->size());
  auto written = out->write(text->data(), text->size());
  return written.attach(kj::mv(out), kj::mv(text));
}

bool OperatorHttp::MayReadMetrics(const kj::HttpHeaders& headers) const {
  const bool guarded =
      !tokens_.open() || (options_.metrics_tokens != nullptr && options_.metrics_tokens->size());
  if (!guarded) return true;
  KJ_IF_MAYBE (value, headers.get(authorization_)) {
    absl::string_view v(value->cStr(), value->size());
    if (!absl::ConsumePrefix(&v, "Bearer ")) return false;
    if (options_.metrics_tokens != nullptr && options_.metrics_tokens->Authenticate(v)) {
      return true;
    }
    if (!tokens_.open()) {
      std::optional<Identity> who = tokens_.Authenticate(v);
      return who && who->role == rpc::Role::ADMIN;
    }
  }
  return false;
}

kj::Promise<void> OperatorHttp::Serve(kj::HttpMethod method, kj::StringPtr url,
                                      const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                                      Response& response, const std::string& peer) {
  absl::string_view path(url.cStr(), url.size());
  path = path.substr(0, path.find('?'));
  if (path != "/healthz" && path != "/readyz" && path != "/metrics") {
    return console_->Serve(method, url, headers, body, response, peer);
  }
  if (method != kj::HttpMethod::GET && method != kj::HttpMethod::HEAD) {
    return Send(response, 405, "Method Not Allowed", "only GET and HEAD\n");
  }
  if (path == "/healthz") return Send(response, 200, "OK", "ok\n");
  const std::vector<projections::ProjectionStatus> status =
      runner_ != nullptr ? runner_->Status() : std::vector<projections::ProjectionStatus>{};
  const ServerMetrics server = server_.Metrics();
  if (path == "/readyz") {
    std::vector<std::string> why = NotReady(server, status, options_.ready_lag_events);
    if (why.empty()) return Send(response, 200, "OK", "ready\n");
    return Send(response, 503, "Service Unavailable", absl::StrCat(absl::StrJoin(why, "\n"), "\n"));
  }
  if (!MayReadMetrics(headers)) {
    return Send(response, 401, "Unauthorized",
                "/metrics needs Authorization: Bearer with a metrics token or an admin token\n",
                "text/plain; charset=utf-8", /*challenge=*/true);
  }
  return Send(response, 200, "OK",
              RenderMetrics(store_.Metrics(), server, status, options_.version,
                            HttpMetrics{refused_, console_->sessions(), console_->live()}),
              "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace ihs::server
