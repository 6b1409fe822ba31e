#include "server/service.h"

#include <arpa/inet.h>
#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <iostream>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "projections/timeline/timeline.h"
#include "schema/json.h"
#include "server/read_wire.h"
#include "server/wire.h"
#include "store/audit.h"
#include "store/backup.h"
#include "store/governance.h"

namespace ihs::server {
namespace {

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

absl::Status ShuttingDown() { return absl::UnavailableError("ihsd is shutting down"); }

}  // namespace

struct Server::Shared {
  Shared(store::EventStore& s, projections::Runner* r, const Tokens& t, kj::Timer& tm,
         ServerOptions o)
      : store(s),
        runner(r),
        tokens(t),
        timer(tm),
        options(std::move(o)),
        watch(s),
        reads(4),
        appends(options.workers),
        waits(8) {}

  void Log(const std::string& line) {
    std::cerr << "ihsd: "
              << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()) << " "
              << line << std::endl;
  }

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
  absl::Time started = absl::Now();
  uint64_t next_connection = 1;
  size_t open_connections = 0;
  size_t calls_in_flight = 0;
  size_t pending_logins = 0;  // open connections that have not logged in
  bool draining = false;
  kj::Own<kj::PromiseFulfiller<void>> idle;  // set while Shutdown waits for calls
  std::set<Server::Subscription*> subscriptions;
  CommitWatch watch;
  WorkerPool reads;    // reads and status: short, never wait for a sync
  WorkerPool appends;  // appends: each waits for its group's sync
  WorkerPool waits;    // reads that wait for a projection to reach a position (minPosition)
};

// ---------------------------------------------------------------------------------------------
// Subscriptions.

class Server::Subscription final : public rpc::Subscription::Server {
 public:
  Subscription(Shared& shared, std::shared_ptr<ConnState> conn, uint64_t from, OwnedFilter filter,
               bool open_content, rpc::Subscriber::Client subscriber)
      : shared_(shared),
        conn_(std::move(conn)),
        position_(from),
        filter_(std::move(filter)),
        subscriber_(kj::mv(subscriber)) {
    read_options_.open_content = open_content;
    read_options_.max_bytes = kMaxChunkBytes;
    shared_.subscriptions.insert(this);
    ++conn_->subscriptions;
    counted_ = true;
    task_ = Step().eagerlyEvaluate([this](kj::Exception&& e) {
      // The subscriber went away, failed or stalled: stop, say so once, and let go of what the
      // loop held (a chunk of events) once this handler has returned.
      shared_.Log(absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": subscription at ",
                               position_, " ended: ", FromKj(e).message()));
      Uncount();
      release_ = kj::evalLater([this] { task_ = kj::READY_NOW; }).eagerlyEvaluate(nullptr);
    });
  }
  ~Subscription() { Uncount(); }

  // Tells the subscriber why it ends (best effort) and stops the loop. Not from inside the loop:
  // that would destroy the promise that is running (the loop calls TellEnd and returns).
  void End(const absl::Status& why) {
    TellEnd(why);
    task_ = kj::READY_NOW;
    Uncount();
  }

 protected:
  kj::Promise<void> scannedTo(ScannedToContext context) override {
    context.getResults().setPosition(position_);
    return kj::READY_NOW;
  }

 private:
  // What one subscription holds at a time: a chunk of at most kChunk events and about
  // kMaxChunkBytes stored bytes (twice that with content opened), and one push in flight.
  static constexpr size_t kChunk = 1000;              // events per read
  static constexpr size_t kMaxChunkBytes = 1 << 20;   // stored bytes per read
  static constexpr size_t kMaxPushBytes = 256 << 10;  // per events() call

  // Reads the next chunk (on a worker), sends what matches, and repeats; at the head, waits for
  // the next commit. One send in flight at a time, so a slow subscriber holds back only itself,
  // and Cap'n Proto's stream flow control bounds what is buffered for it.
  kj::Promise<void> Step() {
    store::EventStore* store = &shared_.store;
    uint64_t from = position_;
    store::ReadOptions ro = read_options_;
    return shared_.reads.Run([store, from, ro] { return store->ReadAll(from, kChunk, ro); })
        .then([this](absl::StatusOr<std::vector<store::StoredEvent>> events) -> kj::Promise<void> {
          if (!events.ok()) {
            shared_.Log(absl::StrCat("conn ", conn_->id,
                                     ": subscription read failed: ", events.status().message()));
            TellEnd(events.status());
            Uncount();
            return kj::READY_NOW;
          }
          if (events->empty()) {
            return shared_.watch.WaitBeyond(position_).then([this](uint64_t) { return Step(); });
          }
          auto chunk = std::make_shared<std::vector<store::StoredEvent>>(std::move(*events));
          return Send(chunk, 0).then([this] { return Step(); });
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

  // Sends the matching events of `chunk` from index `i` on, in pushes of at most kMaxPushBytes,
  // each after the previous one was let through by flow control.
  kj::Promise<void> Send(std::shared_ptr<std::vector<store::StoredEvent>> chunk, size_t i) {
    std::vector<const store::StoredEvent*> batch;
    size_t bytes = 0;
    for (; i < chunk->size() && bytes < kMaxPushBytes; ++i) {
      const store::StoredEvent& e = (*chunk)[i];
      if (!filter_.Matches(e.event())) continue;
      batch.push_back(&e);
      bytes += WireBytes(e);
    }
    // Positions in a chunk are consecutive: everything before index i is scanned.
    position_ = (*chunk)[0].position() + i;
    if (batch.empty()) return kj::READY_NOW;
    auto req = subscriber_.eventsRequest();
    auto list = req.initEvents(batch.size());
    for (size_t k = 0; k < batch.size(); ++k) SetReadEvent(list[k], *batch[k]);
    req.setScannedTo(position_);
    // A subscriber that never lets a push through would hold this chunk for ever.
    const absl::Duration timeout = shared_.options.subscriber_timeout;
    kj::Promise<void> stalled =
        shared_.timer.afterDelay(absl::ToInt64Milliseconds(timeout) * kj::MILLISECONDS)
            .then([timeout]() -> kj::Promise<void> {
              return KJ_EXCEPTION(OVERLOADED,
                                  absl::StrCat("the subscriber let no push through within ",
                                               absl::FormatDuration(timeout)));
            });
    return req.send().exclusiveJoin(kj::mv(stalled)).then([this, chunk, i]() -> kj::Promise<void> {
      if (i == chunk->size()) return kj::READY_NOW;
      return Send(chunk, i);
    });
  }

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

namespace {

// The call contexts of the role methods (the generated typedefs are protected).
using ReadStreamCtx =
    capnp::CallContext<rpc::Reads::ReadStreamParams, rpc::Reads::ReadStreamResults>;
using ReadAllCtx = capnp::CallContext<rpc::Reads::ReadAllParams, rpc::Reads::ReadAllResults>;
using StreamInfoCtx =
    capnp::CallContext<rpc::Reads::StreamInfoParams, rpc::Reads::StreamInfoResults>;
using HeadCtx = capnp::CallContext<rpc::Reads::HeadParams, rpc::Reads::HeadResults>;
using AppendCtx = capnp::CallContext<rpc::Writer::AppendParams, rpc::Writer::AppendResults>;
using AppendMultiCtx =
    capnp::CallContext<rpc::Writer::AppendMultiParams, rpc::Writer::AppendMultiResults>;
using SubscribeCtx =
    capnp::CallContext<rpc::Reader::SubscribeParams, rpc::Reader::SubscribeResults>;
using RootCtx = capnp::CallContext<rpc::Auditor::RootParams, rpc::Auditor::RootResults>;
using SignedHeadCtx =
    capnp::CallContext<rpc::Auditor::SignedHeadParams, rpc::Auditor::SignedHeadResults>;
using VerifierKeyCtx =
    capnp::CallContext<rpc::Auditor::VerifierKeyParams, rpc::Auditor::VerifierKeyResults>;
using InclusionProofCtx =
    capnp::CallContext<rpc::Auditor::InclusionProofParams, rpc::Auditor::InclusionProofResults>;
using ConsistencyProofCtx =
    capnp::CallContext<rpc::Auditor::ConsistencyProofParams, rpc::Auditor::ConsistencyProofResults>;
using EraseCtx = capnp::CallContext<rpc::Admin::EraseParams, rpc::Admin::EraseResults>;
using LegalHoldCtx = capnp::CallContext<rpc::Admin::LegalHoldParams, rpc::Admin::LegalHoldResults>;
using BackupCtx = capnp::CallContext<rpc::Admin::BackupParams, rpc::Admin::BackupResults>;
using StatusCtx = capnp::CallContext<rpc::Admin::StatusParams, rpc::Admin::StatusResults>;
using TimelineCtx = capnp::CallContext<rpc::Reader::TimelineParams, rpc::Reader::TimelineResults>;
using SummaryCtx = capnp::CallContext<rpc::Reader::SummaryParams, rpc::Reader::SummaryResults>;
using ProjectionsCtx =
    capnp::CallContext<rpc::Reader::ProjectionsParams, rpc::Reader::ProjectionsResults>;
using RebuildCtx =
    capnp::CallContext<rpc::Admin::RebuildProjectionParams, rpc::Admin::RebuildProjectionResults>;
// A projection read's answer: a message whose root is the page or summary.
using ReadAnswer = absl::StatusOr<std::shared_ptr<capnp::MallocMessageBuilder>>;
using ProjectionRead =
    std::function<absl::Status(const projections::StateView&, capnp::MessageBuilder&)>;
using SharedState = Server::Shared;

// ---------------------------------------------------------------------------------------------
// The calls of one logged-in session. Each role's capability forwards to the calls it has.

class Session {
 public:
  Session(Server::Shared& shared, std::shared_ptr<ConnState> conn, std::string name)
      : shared_(shared), conn_(std::move(conn)), name_(std::move(name)) {}

  kj::Promise<void> ReadStream(ReadStreamCtx c) {
    auto p = c.getParams();
    auto result = c.getResults().initResult();
    absl::Status bad = CheckLimit(p.getLimit());
    if (bad.ok() && p.getStream().size() == 0) bad = BadField("stream", "stream is empty");
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    store::EventStore* store = &shared_.store;
    std::string stream = p.getStream();
    uint64_t from = p.getFromVersion();
    size_t limit = p.getLimit();
    auto dir = p.getBackward() ? store::ReadDirection::kBackward : store::ReadDirection::kForward;
    store::ReadOptions ro;
    ro.open_content = p.getOpenContent();
    return shared_.reads.Run([=] { return store->ReadStream(stream, from, limit, dir, ro); })
        .then([this, c](absl::StatusOr<std::vector<store::StoredEvent>> r) mutable {
          FillEvents(c.getResults().getResult(), r);
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> ReadAll(ReadAllCtx c) {
    auto p = c.getParams();
    auto result = c.getResults().initResult();
    auto admitted = Admit(CheckLimit(p.getLimit()));
    if (!admitted.ok()) return Refuse(result, admitted.status());
    store::EventStore* store = &shared_.store;
    uint64_t from = p.getFromPosition();
    size_t limit = p.getLimit();
    store::ReadOptions ro;
    ro.open_content = p.getOpenContent();
    return shared_.reads.Run([=] { return store->ReadAll(from, limit, ro); })
        .then([this, c](absl::StatusOr<std::vector<store::StoredEvent>> r) mutable {
          FillEvents(c.getResults().getResult(), r);
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> StreamInfo(StreamInfoCtx c) {
    auto result = c.getResults().initResult();
    absl::Status bad = c.getParams().getStream().size() == 0 ? BadField("stream", "stream is empty")
                                                             : absl::OkStatus();
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    store::EventStore* store = &shared_.store;
    std::string stream = c.getParams().getStream();
    return shared_.reads.Run([=] { return store->GetStreamInfo(stream); })
        .then([c](absl::StatusOr<store::StreamInfo> info) mutable {
          auto result = c.getResults().getResult();
          if (info.ok()) {
            SetStreamInfo(result.initOk(), *info);
          } else {
            SetError(result.initError(), info.status());
          }
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> Head(HeadCtx c) {
    c.getResults().setHead(shared_.store.Head());
    return kj::READY_NOW;
  }

  kj::Promise<void> Append(AppendCtx c) {
    auto result = c.getResults().initResult();
    auto admitted = Admit(absl::OkStatus());
    if (!admitted.ok()) return Refuse(result, admitted.status());
    // The events are copied out of the call, so the worker never reads a message that Cap'n Proto
    // may free when the connection drops.
    auto params = c.getParams().getAppend();
    auto msg = std::make_shared<capnp::MallocMessageBuilder>(params.totalSize().wordCount + 8);
    msg->setRoot(params);
    c.releaseParams();
    absl::StatusOr<store::StreamAppend> append =
        ToStoreAppend(msg->getRoot<rpc::StreamAppend>().asReader(), "append");
    if (!append.ok()) return Refuse(result, append.status());
    store::EventStore* store = &shared_.store;
    return shared_.appends.Run([store, msg, a = std::move(*append)] { return store->Append(a); })
        .then([c](absl::StatusOr<store::AppendResult> r) mutable {
          auto result = c.getResults().getResult();
          if (r.ok()) {
            SetAppended(result.initOk(), *r);
          } else {
            SetError(result.initError(), r.status());
          }
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> AppendMulti(AppendMultiCtx c) {
    auto result = c.getResults().initResult();
    auto admitted =
        Admit(c.getParams().getAppends().size() == 0 ? BadField("appends", "appends is empty")
                                                     : absl::OkStatus());
    if (!admitted.ok()) return Refuse(result, admitted.status());
    auto params = c.getParams();
    auto msg = std::make_shared<capnp::MallocMessageBuilder>(params.totalSize().wordCount + 8);
    msg->setRoot(params);
    c.releaseParams();
    std::vector<store::StreamAppend> appends;
    auto list = msg->getRoot<rpc::Writer::AppendMultiParams>().asReader().getAppends();
    for (size_t i = 0; i < list.size(); ++i) {
      absl::StatusOr<store::StreamAppend> a =
          ToStoreAppend(list[i], absl::StrCat("appends[", i, "]"));
      if (!a.ok()) return Refuse(result, a.status());
      appends.push_back(std::move(*a));
    }
    store::EventStore* store = &shared_.store;
    return shared_.appends
        .Run([store, msg, a = std::move(appends)] { return store->AppendMulti(a); })
        .then([c](absl::StatusOr<std::vector<store::AppendResult>> r) mutable {
          auto result = c.getResults().getResult();
          if (!r.ok()) {
            SetError(result.initError(), r.status());
            return;
          }
          auto ok = result.initOk(r->size());
          for (size_t i = 0; i < r->size(); ++i) SetAppended(ok[i], (*r)[i]);
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> Subscribe(SubscribeCtx c) {
    auto p = c.getParams();
    auto result = c.getResults().initResult();
    absl::Status bad;
    const uint64_t head = shared_.store.Head();
    if (p.getFromPosition() > head) {
      bad = absl::OutOfRangeError(absl::StrCat("fromPosition ", p.getFromPosition(),
                                               " is past the log's end (", head, " events)"));
    } else if (!p.hasSubscriber()) {
      bad = BadField("subscriber", "subscriber is missing");
    }
    if (bad.ok() && conn_->subscriptions >= shared_.options.max_subscriptions_per_connection) {
      bad = absl::ResourceExhaustedError(
          absl::StrCat(conn_->subscriptions,
                       " subscriptions run on this connection (the limit): end one first"));
    } else if (bad.ok() && shared_.subscriptions.size() >= shared_.options.max_subscriptions) {
      bad = absl::ResourceExhaustedError(absl::StrCat(shared_.subscriptions.size(),
                                                      " subscriptions run on this server (the "
                                                      "limit): try again later"));
    }
    if (shared_.draining) bad = ShuttingDown();
    if (!bad.ok()) return Refuse(result, bad);
    OwnedFilter filter;
    filter.prefix = p.getFilter().getStreamPrefix();
    for (auto ch : p.getFilter().getChannels()) filter.channels.insert(static_cast<uint16_t>(ch));
    for (auto t : p.getFilter().getTypes()) filter.types.insert(static_cast<uint16_t>(t));
    result.setOk(kj::heap<Server::Subscription>(shared_, conn_, p.getFromPosition(),
                                                std::move(filter), p.getOpenContent(),
                                                p.getSubscriber()));
    return kj::READY_NOW;
  }

  kj::Promise<void> Root(RootCtx c) {
    auto result = c.getResults().initResult();
    auto admitted = Admit(absl::OkStatus());
    if (!admitted.ok()) return Refuse(result, admitted.status());
    store::EventStore* store = &shared_.store;
    uint64_t size = c.getParams().getSize();
    return shared_.reads.Run([=] { return store::Root(*store, size); })
        .then([c](absl::StatusOr<std::string> root) mutable {
          auto result = c.getResults().getResult();
          if (root.ok()) {
            result.setOk(
                capnp::Data::Reader(reinterpret_cast<const kj::byte*>(root->data()), root->size()));
          } else {
            SetError(result.initError(), root.status());
          }
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> SignedHead(SignedHeadCtx c) {
    auto result = c.getResults().initResult();
    auto admitted = Admit(absl::OkStatus());
    if (!admitted.ok()) return Refuse(result, admitted.status());
    store::EventStore* store = &shared_.store;
    return shared_.reads.Run([=] { return store::SignedHead(*store); })
        .then([c](absl::StatusOr<std::string> head) mutable {
          auto result = c.getResults().getResult();
          if (head.ok()) {
            result.setOk(*head);
          } else {
            SetError(result.initError(), head.status());
          }
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> VerifierKey(VerifierKeyCtx c) {
    auto result = c.getResults().initResult();
    absl::StatusOr<tlog::VerifierKey> key = store::VerifierKey(shared_.store);  // in memory: no I/O
    if (!key.ok()) return Refuse(result, key.status());
    result.setOk(tlog::FormatVerifierKey(*key));
    return kj::READY_NOW;
  }

  template <typename Ctx>
  kj::Promise<void> Proof(Ctx c, std::function<absl::StatusOr<std::vector<tlog::Hash>>()> make) {
    auto result = c.getResults().initResult();
    auto admitted = Admit(absl::OkStatus());
    if (!admitted.ok()) return Refuse(result, admitted.status());
    return shared_.reads.Run(std::move(make))
        .then([c](absl::StatusOr<std::vector<tlog::Hash>> proof) mutable {
          auto result = c.getResults().getResult();
          if (!proof.ok()) {
            SetError(result.initError(), proof.status());
            return;
          }
          auto list = result.initOk(proof->size());
          for (size_t i = 0; i < proof->size(); ++i) {
            list.set(i, capnp::Data::Reader((*proof)[i].data(), (*proof)[i].size()));
          }
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> InclusionProof(InclusionProofCtx c) {
    store::EventStore* store = &shared_.store;
    const uint64_t index = c.getParams().getIndex(), size = c.getParams().getSize();
    return Proof(c, [=] { return store::InclusionProof(*store, index, size); });
  }

  kj::Promise<void> ConsistencyProof(ConsistencyProofCtx c) {
    store::EventStore* store = &shared_.store;
    const uint64_t old_size = c.getParams().getOldSize(), new_size = c.getParams().getNewSize();
    return Proof(c, [=] { return store::ConsistencyProof(*store, old_size, new_size); });
  }

  // Erase and LegalHold: the store checks the party and the reason; the trail names the token's
  // holder. They run on the append workers (each waits for a sync; an erasure also compacts).
  template <typename Ctx>
  kj::Promise<void> PartyControl(Ctx c, absl::string_view what,
                                 std::function<absl::StatusOr<uint64_t>()> run) {
    auto result = c.getResults().initResult();
    absl::Status bad = c.getParams().getParty().size() == 0 ? BadField("party", "party is empty")
                                                            : absl::OkStatus();
    if (bad.ok() && shared_.draining) bad = ShuttingDown();
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    std::string log = absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": ", name_, " ", what,
                                   " party ", c.getParams().getParty().cStr());
    return shared_.appends.Run(std::move(run))
        .then([this, c, log](absl::StatusOr<uint64_t> position) mutable {
          auto result = c.getResults().getResult();
          if (position.ok()) {
            result.setOk(*position);
            shared_.Log(absl::StrCat(log, " at position ", *position));
          } else {
            SetError(result.initError(), position.status());
            shared_.Log(absl::StrCat(log, " refused: ", position.status().message()));
          }
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> Erase(EraseCtx c) {
    store::EventStore* store = &shared_.store;
    std::string party = c.getParams().getParty(), reason = c.getParams().getReason();
    return PartyControl(c, "erases", [store, party, reason, by = name_] {
      return store::Erase(*store, party, reason, by);
    });
  }

  kj::Promise<void> LegalHold(LegalHoldCtx c) {
    store::EventStore* store = &shared_.store;
    std::string party = c.getParams().getParty(), reason = c.getParams().getReason();
    const bool lift = c.getParams().getLift();
    return PartyControl(c, lift ? "lifts the hold on" : "places a legal hold on",
                        [store, party, lift, reason, by = name_] {
                          return store::SetLegalHold(*store, party, lift, reason, by);
                        });
  }

  kj::Promise<void> Backup(BackupCtx c) {
    auto result = c.getResults().initResult();
    std::string to = c.getParams().getTo();
    absl::Status bad =
        to.empty() ? BadField("to", "to is empty: name a new directory") : absl::OkStatus();
    if (bad.ok() && to[0] != '/') {
      bad = BadField("to", absl::StrCat("to must be an absolute path on ihsd's machine, not ", to));
    }
    if (bad.ok() && shared_.draining) bad = ShuttingDown();
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    store::EventStore* store = &shared_.store;
    const bool with_master_key = c.getParams().getWithMasterKey();
    std::string log = absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": ", name_,
                                   " backs the store up into ", to);
    return shared_.appends
        .Run([store, to, with_master_key] { return store::Backup(*store, to, with_master_key); })
        .then([this, c, log](absl::StatusOr<uint64_t> size) mutable {
          auto result = c.getResults().getResult();
          if (size.ok()) {
            result.setOk(*size);
            shared_.Log(absl::StrCat(log, ": ", *size, " events"));
          } else {
            SetError(result.initError(), size.status());
            shared_.Log(absl::StrCat(log, " failed: ", size.status().message()));
          }
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> Timeline(TimelineCtx c) {
    auto p = c.getParams().getQuery();
    auto result = c.getResults().initResult();
    namespace tl = projections::timeline;
    tl::Query q;
    q.party = p.getParty();
    q.from = p.getFrom();
    q.to = p.getTo();
    for (auto ch : p.getChannels()) q.channels.push_back(ch);
    q.cursor = p.getCursor();
    q.limit = p.getLimit();
    q.as_of = AsOf(p.getAsOf());
    absl::Status bad = tl::Validate(q);
    if (bad.ok()) bad = CheckMinPosition(p.getMinPosition());
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    store::EventStore* content = p.getOpenContent() ? &shared_.store : nullptr;
    return ReadTimeline(p.getMinPosition(),
                        [q, content](const projections::StateView& view, capnp::MessageBuilder& m) {
                          return tl::ReadPage(view, q, m, content);
                        })
        .then([c](ReadAnswer answer) mutable {
          SetAnswer<schema::TimelinePage>(c.getResults().getResult(), answer);
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> Summary(SummaryCtx c) {
    auto p = c.getParams();
    auto result = c.getResults().initResult();
    std::string party = p.getParty();
    absl::Status bad =
        party.empty() ? BadField("party", "a summary needs a party") : absl::OkStatus();
    if (bad.ok()) bad = CheckMinPosition(p.getMinPosition());
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    const absl::Time as_of = AsOf(p.getAsOf());
    return ReadTimeline(
               p.getMinPosition(),
               [party, as_of](const projections::StateView& view, capnp::MessageBuilder& m) {
                 return projections::timeline::ReadSummary(view, party, as_of, m);
               })
        .then([c](ReadAnswer answer) mutable {
          SetAnswer<schema::TimelineSummary>(c.getResults().getResult(), answer);
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> Projections(ProjectionsCtx c) {
    auto result = c.getResults().initResult();
    auto admitted = Admit(NeedRunner());
    if (!admitted.ok()) return Refuse(result, admitted.status());
    projections::Runner* runner = shared_.runner;
    return shared_.reads.Run([runner] { return runner->Status(); })
        .then([c](std::vector<projections::ProjectionStatus> all) mutable {
          auto list = c.getResults().getResult().initOk(all.size());
          for (size_t i = 0; i < all.size(); ++i) SetProjectionStatus(list[i], all[i]);
        })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> RebuildProjection(RebuildCtx c) {
    auto result = c.getResults().initResult();
    std::string name = c.getParams().getName();
    absl::Status s =
        name.empty() ? BadField("name", "name the projection to rebuild") : NeedRunner();
    if (s.ok()) s = shared_.draining ? ShuttingDown() : shared_.runner->StartRebuild(name);
    if (!s.ok()) return Refuse(result, s);
    shared_.Log(
        absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": rebuilding projection ", name));
    result.setOk();
    return kj::READY_NOW;
  }

  kj::Promise<void> Status(StatusCtx c) {
    store::EventStore* store = &shared_.store;
    return shared_.reads.Run([store] { return store->Stats(); })
        .then([this, c](absl::StatusOr<store::StoreStats> stats) mutable {
          auto s = c.getResults().initStatus();
          s.setVersion(shared_.options.version);
          if (stats.ok()) {
            s.setEvents(stats->event_count);
            s.setStreams(stats->stream_count);
            s.setDiskBytes(stats->disk_bytes);
            s.setRoot(
                capnp::Data::Reader(reinterpret_cast<const kj::byte*>(stats->root_hash.data()),
                                    stats->root_hash.size()));
            s.setAppends(stats->appends);
            s.setSyncs(stats->syncs);
          }
          s.setConnections(shared_.open_connections);
          s.setConnectionsTotal(shared_.next_connection - 1);
          s.setCallsInFlight(shared_.calls_in_flight);
          s.setSubscriptions(shared_.subscriptions.size());
          s.setUptimeSeconds(absl::ToDoubleSeconds(absl::Now() - shared_.started));
          const ServerOptions& o = shared_.options;
          s.setConnectionsAwaitingLogin(shared_.pending_logins);
          s.setMaxConnections(o.max_connections);
          s.setMaxPendingLogins(shared_.MaxPendingLogins());
          s.setLoginTimeoutSeconds(absl::ToDoubleSeconds(o.login_timeout));
          s.setMaxSubscriptions(o.max_subscriptions);
          s.setMaxSubscriptionsPerConnection(o.max_subscriptions_per_connection);
          s.setSubscriberTimeoutSeconds(absl::ToDoubleSeconds(o.subscriber_timeout));
          s.setMaxCallsInFlight(o.max_calls_in_flight);
        });
  }

 private:
  absl::Status CheckLimit(uint32_t limit) const {
    if (limit == 0 || limit > shared_.options.max_read_events) {
      return BadField("limit", absl::StrCat("limit ", limit, " is out of range: give 1 to ",
                                            shared_.options.max_read_events));
    }
    return absl::OkStatus();
  }

  static constexpr absl::Duration kMaxProjectionWait = absl::Seconds(5);

  static absl::Time AsOf(int64_t micros) {
    return micros == 0 ? absl::Now() : absl::FromUnixMicros(micros);
  }

  absl::Status NeedRunner() const {
    if (shared_.runner == nullptr) {
      return absl::UnavailableError("this ihsd runs no projections");
    }
    return absl::OkStatus();
  }

  absl::Status CheckMinPosition(uint64_t min_position) const {
    IHS_RETURN_IF_ERROR(NeedRunner());
    const uint64_t head = shared_.store.Head();
    if (min_position > head) {
      return absl::OutOfRangeError(
          absl::StrCat("minPosition ", min_position, " is past the log's end (", head, " events)"));
    }
    return absl::OkStatus();
  }

  // Waits (on its own pool, at most kMaxProjectionWait) until the timeline has applied every
  // position below `min_position`, then runs `read` on its view on a read worker.
  kj::Promise<ReadAnswer> ReadTimeline(uint64_t min_position, ProjectionRead read) {
    projections::Runner* runner = shared_.runner;
    const absl::Time deadline = absl::Now() + kMaxProjectionWait;
    kj::Promise<bool> reached = true;
    if (min_position > 0) {
      reached = shared_.waits.Run([runner, min_position, deadline] {
        return runner->WaitFor(projections::timeline::kName, min_position, deadline);
      });
    }
    WorkerPool* reads = &shared_.reads;
    return reached.then([runner, min_position, read, reads](bool ok) -> kj::Promise<ReadAnswer> {
      if (!ok) {
        return ReadAnswer(absl::UnavailableError(
            absl::StrCat("the timeline has not reached position ", min_position, " within ",
                         absl::FormatDuration(kMaxProjectionWait), ": try again")));
      }
      return reads->Run([runner, read]() -> ReadAnswer {
        absl::StatusOr<projections::StateView> view = runner->View(projections::timeline::kName);
        if (!view.ok()) return view.status();
        auto m = std::make_shared<capnp::MallocMessageBuilder>();
        IHS_RETURN_IF_ERROR(read(*view, *m));
        return m;
      });
    });
  }

  // A projection read's answer into a result union: its root as `ok`, or the error.
  template <typename Root, typename ResultBuilder>
  static void SetAnswer(ResultBuilder result, const ReadAnswer& answer) {
    if (answer.ok()) {
      result.setOk((*answer)->template getRoot<Root>().asReader());
    } else {
      SetError(result.initError(), answer.status());
    }
  }

  absl::StatusOr<kj::Own<void>> Admit(const absl::Status& bad) {
    if (!bad.ok()) return bad;
    return shared_.Admit(conn_);
  }

  template <typename ResultBuilder>
  static kj::Promise<void> Refuse(ResultBuilder result, const absl::Status& why) {
    SetError(result.initError(), why);
    return kj::READY_NOW;
  }

  static absl::StatusOr<store::StreamAppend> ToStoreAppend(rpc::StreamAppend::Reader a,
                                                           const std::string& where) {
    store::StreamAppend out;
    out.stream = a.getStream();
    if (out.stream.empty()) {
      return BadField(absl::StrCat(where, ".stream"), absl::StrCat(where, ".stream is empty"));
    }
    absl::StatusOr<store::ExpectedVersion> expected = FromWire(a.getExpected());
    if (!expected.ok()) {
      return BadField(absl::StrCat(where, ".expected.kind"),
                      absl::StrCat(where, ": ", expected.status().message()));
    }
    out.expected = *expected;
    if (a.getEvents().size() == 0) {
      return BadField(absl::StrCat(where, ".events"), absl::StrCat(where, ".events is empty"));
    }
    for (auto e : a.getEvents()) out.events.push_back(e);
    return out;
  }

  void FillEvents(rpc::ReadResult::Builder result,
                  const absl::StatusOr<std::vector<store::StoredEvent>>& r) {
    if (!r.ok()) {
      SetError(result.initError(), r.status());
      return;
    }
    // Stop early rather than build a reply larger than the limit; at least one event.
    size_t n = 0, bytes = 0;
    while (n < r->size()) {
      bytes += WireBytes((*r)[n]);
      if (n > 0 && bytes > shared_.options.max_reply_bytes) break;
      ++n;
    }
    auto list = result.initOk(n);
    for (size_t i = 0; i < n; ++i) SetReadEvent(list[i], (*r)[i]);
  }

  Server::Shared& shared_;
  std::shared_ptr<ConnState> conn_;
  const std::string name_;  // the token's holder
};

// Checks a request before its method reads it. A request may carry no capability where the
// schema has none (`allowed_caps`: a subscribe's subscriber): one would otherwise be copied into
// the store's canonical encoding, which throws on a worker thread, or have its reference count
// touched from there. And Cap'n Proto checks a message lazily, as fields are read: text without
// its NUL or a pointer out of bounds throws in the middle of a method, which would go back as an
// untyped FAILED that clients take for a bug of ihsd's. Both are the caller's bad input, answered
// `badInput` in the method's result; nothing is stored.
template <typename Ctx, typename Body>
kj::Promise<void> Checked(Ctx c, uint64_t allowed_caps, Body&& body) {
  absl::Status bad;
  kj::Maybe<kj::Promise<void>> answer;
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] {
                 const capnp::MessageSize size = c.getParams().totalSize();
                 if (size.capCount > allowed_caps) {
                   bad = absl::InvalidArgumentError(absl::StrCat(
                       "the request carries ", size.capCount, " capabilities where the schema ",
                       allowed_caps == 0 ? "has none" : "has one"));
                   return;
                 }
                 answer = body();
               })) {
    bad =
        absl::InvalidArgumentError(absl::StrCat("malformed request: ", e->getDescription().cStr()));
  }
  KJ_IF_MAYBE (a, answer) {
    return kj::mv(*a);
  }
  SetError(c.getResults().initResult().initError(), bad);
  return kj::READY_NOW;
}

// Role capabilities: each is a chain of the mixins for the methods its role has, over the
// generated Server class of its interface.
template <typename Base>
class WithReads : public Base {
 public:
  explicit WithReads(std::shared_ptr<Session> s) : s_(std::move(s)) {}

 protected:
  kj::Promise<void> readStream(ReadStreamCtx c) override {
    return Checked(c, 0, [&] { return s_->ReadStream(c); });
  }
  kj::Promise<void> readAll(ReadAllCtx c) override {
    return Checked(c, 0, [&] { return s_->ReadAll(c); });
  }
  kj::Promise<void> streamInfo(StreamInfoCtx c) override {
    return Checked(c, 0, [&] { return s_->StreamInfo(c); });
  }
  kj::Promise<void> head(HeadCtx c) override { return s_->Head(c); }
  std::shared_ptr<Session> s_;
};

template <typename Parent>
class WithWrites : public Parent {
 public:
  using Parent::Parent;

 protected:
  kj::Promise<void> append(AppendCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Append(c); });
  }
  kj::Promise<void> appendMulti(AppendMultiCtx c) override {
    return Checked(c, 0, [&] { return this->s_->AppendMulti(c); });
  }
};

template <typename Parent>
class WithReader : public Parent {
 public:
  using Parent::Parent;

 protected:
  kj::Promise<void> subscribe(SubscribeCtx c) override {
    return Checked(c, 1, [&] { return this->s_->Subscribe(c); });
  }
  kj::Promise<void> timeline(TimelineCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Timeline(c); });
  }
  kj::Promise<void> summary(SummaryCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Summary(c); });
  }
  kj::Promise<void> projections(ProjectionsCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Projections(c); });
  }
};

template <typename Parent>
class WithAudit : public Parent {
 public:
  using Parent::Parent;

 protected:
  kj::Promise<void> root(RootCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Root(c); });
  }
  kj::Promise<void> signedHead(SignedHeadCtx c) override {
    return Checked(c, 0, [&] { return this->s_->SignedHead(c); });
  }
  kj::Promise<void> verifierKey(VerifierKeyCtx c) override {
    return Checked(c, 0, [&] { return this->s_->VerifierKey(c); });
  }
  kj::Promise<void> inclusionProof(InclusionProofCtx c) override {
    return Checked(c, 0, [&] { return this->s_->InclusionProof(c); });
  }
  kj::Promise<void> consistencyProof(ConsistencyProofCtx c) override {
    return Checked(c, 0, [&] { return this->s_->ConsistencyProof(c); });
  }
};

template <typename Parent>
class WithAdmin : public Parent {
 public:
  using Parent::Parent;

 protected:
  kj::Promise<void> status(StatusCtx c) override { return this->s_->Status(c); }
  kj::Promise<void> rebuildProjection(RebuildCtx c) override {
    return Checked(c, 0, [&] { return this->s_->RebuildProjection(c); });
  }
  kj::Promise<void> erase(EraseCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Erase(c); });
  }
  kj::Promise<void> legalHold(LegalHoldCtx c) override {
    return Checked(c, 0, [&] { return this->s_->LegalHold(c); });
  }
  kj::Promise<void> backup(BackupCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Backup(c); });
  }
};

// Final, so that kj::Own's delete of them is of the complete type (clang's
// -Wdelete-non-abstract-non-virtual-dtor).
template <typename Chain>
class RoleCap final : public Chain {
 public:
  using Chain::Chain;
};
using WriterCap = RoleCap<WithWrites<WithReads<rpc::Writer::Server>>>;
using ReaderCap = RoleCap<WithReader<WithReads<rpc::Reader::Server>>>;
using AuditorCap = RoleCap<WithAudit<WithReader<WithReads<rpc::Auditor::Server>>>>;
using AdminCap =
    RoleCap<WithAdmin<WithAudit<WithReader<WithWrites<WithReads<rpc::Admin::Server>>>>>>;

class Gateway final : public rpc::Gateway::Server {
 public:
  Gateway(SharedState& shared, std::shared_ptr<ConnState> conn)
      : shared_(shared), conn_(std::move(conn)) {}

 protected:
  kj::Promise<void> login(LoginContext c) override {
    return Checked(c, 0, [&] { return Login(c); });
  }

 private:
  kj::Promise<void> Login(LoginContext c) {
    auto result = c.getResults().initResult();
    std::optional<Identity> who = shared_.tokens.Authenticate(c.getParams().getToken().cStr());
    if (!who) {
      shared_.Log(
          absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": login refused: no such token"));
      SetError(result.initError(), absl::UnauthenticatedError("no such token"));
      return kj::READY_NOW;
    }
    if (!conn_->logged_in) {
      conn_->logged_in = true;
      --shared_.pending_logins;
    }
    auto session = result.initOk();
    session.setRole(who->role);
    session.setName(who->name);
    auto s = std::make_shared<Session>(shared_, conn_, who->name);
    switch (who->role) {
      case rpc::Role::WRITER:
        session.setWriterCap(kj::heap<WriterCap>(s));
        break;
      case rpc::Role::READER:
        session.setReaderCap(kj::heap<ReaderCap>(s));
        break;
      case rpc::Role::AUDITOR:
        session.setAuditorCap(kj::heap<AuditorCap>(s));
        break;
      default:
        session.setAdminCap(kj::heap<AdminCap>(s));
    }
    return kj::READY_NOW;
  }

  SharedState& shared_;
  std::shared_ptr<ConnState> conn_;
};

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
  conn->rpc = kj::heap<capnp::RpcSystem<capnp::rpc::twoparty::VatId>>(capnp::makeRpcServer(
      *conn->network, capnp::Capability::Client(kj::heap<Gateway>(sh, conn->state))));
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
  std::vector<Subscription*> subs(sh.subscriptions.begin(), sh.subscriptions.end());
  for (Subscription* s : subs) s->End(ShuttingDown());
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
