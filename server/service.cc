// ihsd's connections: accepted, watched, limited, logged and dropped. The calls of a session are
// in server/session.cc, subscriptions in server/subscription.cc.
#include "server/service.h"

#include <arpa/inet.h>
#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "projections/segments/segments.h"
#include "server/internal/shared.h"
#include "server/wire.h"

namespace ihs::server {
namespace {

// The connection's byte stream, watched so that a closed connection can be told apart: the
// client hung up, or ihsd dropped it (a malformed or oversized message; Cap'n Proto gives no
// reason of its own).
class WatchedStream final : public kj::AsyncIoStream {
 public:
  WatchedStream(kj::Own<kj::AsyncIoStream> inner, std::shared_ptr<ConnState> state)
      : inner_(kj::mv(inner)), state_(std::move(state)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override {
    return inner_->tryRead(buffer, min_bytes, max_bytes)
        .then(
            [this, min_bytes](size_t n) {
              state_->bytes_read += n;
              if (n < min_bytes) state_->peer_closed = true;
              return n;
            },
            [this](kj::Exception&& e) -> size_t {
              state_->read_failed = true;
              kj::throwFatalException(kj::mv(e));
            });
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    return inner_->write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void abortRead() override { inner_->abortRead(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner_->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner_->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override {
    inner_->getsockname(addr, length);
  }
  void getpeername(struct sockaddr* addr, kj::uint* length) override {
    inner_->getpeername(addr, length);
  }

 private:
  kj::Own<kj::AsyncIoStream> inner_;
  std::shared_ptr<ConnState> state_;
};

// "127.0.0.1:53122", "[::1]:53122", or "unix" for a unix socket.
std::string PeerName(kj::AsyncIoStream& stream) {
  struct sockaddr_storage addr;
  kj::uint len = sizeof addr;
  std::string name = "unix";
  kj::runCatchingExceptions([&] {
    stream.getpeername(reinterpret_cast<struct sockaddr*>(&addr), &len);
    char host[INET6_ADDRSTRLEN] = "";
    if (addr.ss_family == AF_INET) {
      auto* in = reinterpret_cast<struct sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
      name = absl::StrCat(host, ":", ntohs(in->sin_port));
    } else if (addr.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      name = absl::StrCat("[", host, "]:", ntohs(in6->sin6_port));
    }
  });
  return name;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Connections.

struct Server::Connection {
  std::shared_ptr<ConnState> state;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyVatNetwork> network;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
};

class Server::ErrorHandler final : public kj::TaskSet::ErrorHandler {
 public:
  explicit ErrorHandler(Shared& shared) : shared_(shared) {}
  void taskFailed(kj::Exception&& e) override {
    shared_.Log(absl::StrCat("internal task failed: ", FromKj(e).message()));
  }

 private:
  Shared& shared_;
};

Server::Server(store::EventStore& store, projections::Runner* runner, const Tokens& tokens,
               kj::Timer& timer, ServerOptions options)
    : shared_(std::make_unique<Shared>(store, runner, tokens, timer, std::move(options))),
      error_handler_(kj::heap<ErrorHandler>(*shared_)) {
  tasks_ = kj::heap<kj::TaskSet>(*error_handler_);
}

Server::~Server() {
  // Connections (and with them every capability and subscription) go first, then the workers
  // (which finish what they run), then the watcher.
  connections_.clear();
  tasks_ = nullptr;
  shared_.reset();
}

kj::Promise<void> Server::Listen(kj::ConnectionReceiver& listener) {
  return listener.accept().then([this, &listener](kj::Own<kj::AsyncIoStream> stream) {
    std::string peer = PeerName(*stream);
    Accept(kj::mv(stream), std::move(peer));
    return Listen(listener);
  });
}

void Server::Accept(kj::Own<kj::AsyncIoStream> stream, std::string peer) {
  Shared& sh = *shared_;
  const uint64_t id = sh.next_connection++;
  if (sh.draining) return;
  if (connections_.size() >= sh.options.max_connections ||
      sh.pending_logins >= sh.MaxPendingLogins()) {
    // Make room by closing the connection that has waited longest without logging in, so that
    // sockets that never log in cannot keep out a client that does.
    for (auto& [other, c] : connections_) {
      if (c->state->logged_in) continue;
      Drop(other, absl::StrCat("closed for a newer connection: ", sh.pending_logins,
                               " were waiting to log in, ", connections_.size(), " open"));
      break;
    }
  }
  if (connections_.size() >= sh.options.max_connections) {
    sh.Log(absl::StrCat("conn ", id, ": refused: ", connections_.size(),
                        " connections are open and logged in (the limit)"));
    return;
  }
  auto conn = kj::heap<Connection>();
  conn->state = std::make_shared<ConnState>();
  conn->state->id = id;
  conn->state->peer = std::move(peer);
  SetNoDelay(*stream);
  conn->stream = kj::heap<WatchedStream>(kj::mv(stream), conn->state);
  capnp::ReaderOptions limits;
  limits.traversalLimitInWords = sh.options.max_message_bytes / 8;
  conn->network = kj::heap<capnp::TwoPartyVatNetwork>(*conn->stream,
                                                      capnp::rpc::twoparty::Side::SERVER, limits);
  conn->rpc = kj::heap<capnp::RpcSystem<capnp::rpc::twoparty::VatId>>(
      capnp::makeRpcServer(*conn->network, capnp::Capability::Client(NewGateway(sh, conn->state))));
  conn->rpc->setFlowLimit(sh.options.flow_limit_bytes / 8);
  tasks_->add(conn->network->onDisconnect().then(
      [this, id] {
        // Let the connection's own promise chain finish before it is destroyed.
        return kj::evalLater([this, id] { Drop(id, ""); });
      },
      [this, id](kj::Exception&& e) {
        std::string why(FromKj(e).message());
        return kj::evalLater([this, id, why] { Drop(id, why); });
      }));
  // A connection that has not logged in by the deadline is closed: silent sockets must not hold
  // slots that clients which do log in need.
  const absl::Duration login_timeout = sh.options.login_timeout;
  tasks_->add(sh.timer.afterDelay(absl::ToInt64Milliseconds(login_timeout) * kj::MILLISECONDS)
                  .then([this, id, login_timeout] {
                    auto it = connections_.find(id);
                    if (it == connections_.end() || it->second->state->logged_in) return;
                    Drop(id, absl::StrCat("no login within ", absl::FormatDuration(login_timeout)));
                  }));
  ++sh.pending_logins;
  connections_.emplace(id, kj::mv(conn));
  sh.open_connections = connections_.size();
}

namespace {

// The seq the segments projection's next transition will have; 0 when it cannot be read (no
// projections, or a rebuild): a scrape then shows no backlog rather than failing.
uint64_t TransitionFeedNext(projections::Runner* runner) {
  if (runner == nullptr) return 0;
  absl::StatusOr<projections::StateView> view = runner->View(projections::segments::kName);
  if (!view.ok()) return 0;
  absl::StatusOr<uint64_t> next = projections::segments::NextSeq(*view);
  return next.ok() ? *next : 0;
}

}  // namespace

ServerMetrics Server::Metrics() const {
  const Shared& sh = *shared_;
  ServerMetrics m;
  m.connections = connections_.size();
  m.pending_logins = sh.pending_logins;
  m.calls_in_flight = sh.calls_in_flight;
  m.subscriptions = sh.subscriptions.size();
  const uint64_t head = sh.store.Head();
  std::optional<uint64_t> feed_next;  // the segments feed's next seq, read once if needed
  for (const SubscriptionBase* sub : sh.subscriptions) {
    if (std::optional<uint64_t> next = sub->NextPosition(); next && *next < head) {
      m.backlog_max = std::max(m.backlog_max, head - *next);
      m.backlog_sum += head - *next;
    }
    std::optional<uint64_t> seq = sub->NextTransitionSeq();
    if (!seq) continue;
    ++m.transition_subscriptions;
    if (!feed_next) feed_next = TransitionFeedNext(sh.runner);
    if (*seq < *feed_next) {
      m.transition_backlog_max = std::max(m.transition_backlog_max, *feed_next - *seq);
      m.transition_backlog_sum += *feed_next - *seq;
    }
  }
  m.accepted = sh.next_connection - 1;
  m.draining = sh.draining;
  m.calls = sh.calls;
  return m;
}

size_t Server::EndRevokedSessions() {
  const absl::Time now = absl::Now();
  std::vector<std::pair<uint64_t, std::string>> revoked;
  for (const auto& [id, c] : connections_) {
    for (const Identity& who : c->state->logins) {
      if (shared_->tokens.StillHolds(who, now)) continue;
      revoked.emplace_back(id,
                           now >= who.expires
                               ? absl::StrCat("the token of ", who.name, " expired at ",
                                              absl::FormatTime(who.expires))
                               : absl::StrCat("the token of ", who.name, " was revoked (SIGHUP)"));
      break;
    }
  }
  for (const auto& [id, why] : revoked) Drop(id, why);
  return revoked.size();
}

void Server::Drop(uint64_t id, const std::string& why) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  const ConnState& st = *it->second->state;
  // One line per connection that ended in a problem; a client that logged in and hung up is fine,
  // and so is any connection closed by a shutdown.
  std::string problem = why;
  if (problem.empty()) {
    if (st.read_failed) {
      problem = "the connection broke (read error)";
    } else if (shared_->draining) {
      // closed by the shutdown
    } else if (!st.peer_closed) {
      problem = absl::StrCat("ihsd dropped it: a malformed message, or one over the ",
                             shared_->options.max_message_bytes, "-byte limit");
    } else if (!st.logged_in) {
      problem = absl::StrCat("the client hung up without logging in (", st.bytes_read,
                             " bytes received)");
    }
  }
  if (!problem.empty()) {
    shared_->Log(absl::StrCat("conn ", id, " ", st.peer, ": closed: ", problem));
  }
  if (!st.logged_in) --shared_->pending_logins;
  connections_.erase(it);
  shared_->open_connections = connections_.size();
}

kj::Promise<void> Server::Shutdown(kj::Timer& timer, absl::Duration grace) {
  Shared& sh = *shared_;
  sh.draining = true;
  std::vector<SubscriptionBase*> subs(sh.subscriptions.begin(), sh.subscriptions.end());
  for (SubscriptionBase* s : subs) s->End(ShuttingDown());
  if (sh.calls_in_flight == 0) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  sh.idle = kj::mv(paf.fulfiller);
  return paf.promise.exclusiveJoin(
      timer.afterDelay(absl::ToInt64Milliseconds(grace) * kj::MILLISECONDS).then([&sh] {
        sh.Log(absl::StrCat("shutdown: ", sh.calls_in_flight,
                            " calls still in flight after the grace period"));
      }));
}

}  // namespace ihs::server
