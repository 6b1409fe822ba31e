#include "server/client.h"

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/compat/tls.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "server/tokens.h"
#include "server/wire.h"

namespace ihs::client {
namespace {

using server::FromError;
using server::FromKj;
using server::FromWire;

// One kj event loop per thread, shared by the Clients of that thread.
struct Io {
  kj::AsyncIoContext context = kj::setupAsyncIo();
};

std::shared_ptr<Io> ThreadIo() {
  static thread_local std::weak_ptr<Io> current;
  std::shared_ptr<Io> io = current.lock();
  if (!io) {
    io = std::make_shared<Io>();
    current = io;
  }
  return io;
}

// A call the session's capability lacks: ihsd answers "not implemented" and names the interface
// the client asked for; say which role's calls those are, and which tokens may make them.
absl::Status Refused(rpc::Role role, const kj::Exception& e) {
  struct Need {
    uint64_t id;
    const char* calls;
    const char* tokens;
  };
  const Need needs[] = {
      {capnp::typeId<rpc::Writer>(), "appends, links or segment definitions",
       "a writer or admin token"},
      {capnp::typeId<rpc::Reader>(), "timelines, identity, segments, community or subscriptions",
       "a reader, auditor or admin token"},
      {capnp::typeId<rpc::Auditor>(), "signed heads, roots or proofs", "an auditor or admin token"},
      {capnp::typeId<rpc::Admin>(), "server status, rebuilds or erasure", "an admin token"},
  };
  const std::string what = e.getDescription().cStr();
  for (const Need& n : needs) {
    if (what.find(absl::StrCat("requestedTypeId = ", n.id)) == std::string::npos) continue;
    const bool an = role == rpc::Role::AUDITOR || role == rpc::Role::ADMIN;
    return absl::PermissionDeniedError(absl::StrCat(an ? "an " : "a ", server::RoleName(role),
                                                    " token cannot ask for ", n.calls, "; ",
                                                    n.tokens, " can"));
  }
  return FromKj(e);
}

}  // namespace

store::ContentState RemoteEvent::content_state() const { return FromWire(e_.getContentState()); }

struct Client::Impl {
  std::shared_ptr<Io> io;
  absl::Duration timeout;
  kj::Own<kj::TlsCertificate> tls_ca;
  kj::Own<kj::TlsContext> tls;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  capnp::Capability::Client session = nullptr;  // the role's capability
  rpc::Role role = rpc::Role::UNSPECIFIED;
  std::string name;

  ~Impl() {
    // Capabilities and the connection go before the event loop they live on.
    session = nullptr;
    rpc = nullptr;
    stream = nullptr;
    tls = nullptr;
  }

  // Waits for a promise on this thread's loop, within the timeout; exceptions become statuses.
  template <typename T>
  absl::StatusOr<T> Wait(kj::Promise<T> promise) {
    absl::StatusOr<T> out = absl::DeadlineExceededError("not run");
    auto timeout = io->context.provider->getTimer().afterDelay(
        absl::ToInt64Milliseconds(this->timeout) * kj::MILLISECONDS);
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] {
                   auto result =
                       promise.then([](T v) -> kj::Maybe<T> { return kj::mv(v); })
                           .exclusiveJoin(timeout.then([]() -> kj::Maybe<T> { return nullptr; }))
                           .wait(io->context.waitScope);
                   KJ_IF_MAYBE (v, result) {
                     out = kj::mv(*v);
                   } else {
                     out = absl::DeadlineExceededError(absl::StrCat(
                         "ihsd did not answer within ", absl::FormatDuration(this->timeout)));
                   }
                 })) {
      if (e->getType() == kj::Exception::Type::UNIMPLEMENTED) return Refused(role, *e);
      return FromKj(*e);
    }
    return out;
  }

  template <typename Interface>
  typename Interface::Client As() {
    return session.castAs<Interface>();
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

rpc::Role Client::role() const { return impl_->role; }
const std::string& Client::name() const { return impl_->name; }

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ConnectOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->io = ThreadIo();
  impl->timeout = options.timeout;
  auto& provider = *impl->io->context.provider;
  auto addr = impl->Wait(provider.getNetwork().parseAddress(options.address, 7420));
  if (!addr.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot use address \"", options.address, "\": ", addr.status().message()));
  }
  auto stream = impl->Wait((*addr)->connect());
  if (!stream.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ihsd at ", options.address, ": ",
                                               stream.status().message()));
  }
  impl->stream = kj::mv(*stream);
  server::SetNoDelay(*impl->stream);
  if (!options.tls_ca_file.empty()) {
    std::ifstream in(options.tls_ca_file);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read the TLS certificate file ", options.tls_ca_file));
    }
    std::string name = options.tls_server_name;
    if (name.empty()) name = options.address.substr(0, options.address.rfind(':'));
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] {
                   impl->tls_ca = kj::heap<kj::TlsCertificate>(kj::StringPtr(pem.str().c_str()));
                   kj::TlsContext::Options o;
                   o.trustedCertificates = kj::arrayPtr(impl->tls_ca.get(), 1);
                   impl->tls = kj::heap<kj::TlsContext>(kj::mv(o));
                 })) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad TLS certificate file ", options.tls_ca_file, ": ", e->getDescription().cStr()));
    }
    auto wrapped = impl->Wait(impl->tls->wrapClient(kj::mv(impl->stream), name));
    if (!wrapped.ok()) {
      return absl::UnavailableError(absl::StrCat("TLS handshake with ", options.address, " (as ",
                                                 name, ") failed: ", wrapped.status().message()));
    }
    impl->stream = kj::mv(*wrapped);
  }
  impl->rpc = kj::heap<capnp::TwoPartyClient>(*impl->stream);
  auto gateway = impl->rpc->bootstrap().castAs<rpc::Gateway>();
  auto req = gateway.loginRequest();
  req.setToken(options.token);
  auto resp = impl->Wait(req.send());
  if (!resp.ok()) return resp.status();
  auto result = resp->getResult();
  if (result.isError()) return FromError(result.getError());
  auto session = result.getOk();
  impl->role = session.getRole();
  impl->name = session.getName();
  switch (session.which()) {
    case rpc::Session::WRITER_CAP:
      impl->session = session.getWriterCap();
      break;
    case rpc::Session::READER_CAP:
      impl->session = session.getReaderCap();
      break;
    case rpc::Session::AUDITOR_CAP:
      impl->session = session.getAuditorCap();
      break;
    case rpc::Session::ADMIN_CAP:
      impl->session = session.getAdminCap();
      break;
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

namespace {

void FillAppend(rpc::StreamAppend::Builder out, const store::StreamAppend& a) {
  out.setStream(a.stream);
  server::SetExpected(out.initExpected(), a.expected);
  auto events = out.initEvents(a.events.size());
  for (size_t i = 0; i < a.events.size(); ++i) events.setWithCaveats(i, a.events[i]);
}

template <typename Response>
std::vector<RemoteEvent> Events(Response&& response) {
  auto owner = std::make_shared<Response>(kj::mv(response));
  std::vector<RemoteEvent> out;
  for (auto e : owner->getResult().getOk()) out.emplace_back(owner, e);
  return out;
}

}  // namespace

absl::StatusOr<store::AppendResult> Client::Append(const store::StreamAppend& append) {
  auto req = impl_->As<rpc::Writer>().appendRequest();
  FillAppend(req.initAppend(), append);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  return FromWire(r.getOk());
}

absl::StatusOr<std::vector<store::AppendResult>> Client::AppendMulti(
    const std::vector<store::StreamAppend>& appends) {
  auto req = impl_->As<rpc::Writer>().appendMultiRequest();
  auto list = req.initAppends(appends.size());
  for (size_t i = 0; i < appends.size(); ++i) FillAppend(list[i], appends[i]);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  std::vector<store::AppendResult> out;
  for (auto a : r.getOk()) out.push_back(FromWire(a));
  return out;
}

absl::StatusOr<std::vector<RemoteEvent>> Client::ReadStream(const std::string& stream,
                                                            uint64_t from_version,
                                                            uint32_t max_count,
                                                            store::ReadDirection direction,
                                                            bool open_content) {
  auto req = impl_->As<rpc::Reads>().readStreamRequest();
  req.setStream(stream);
  req.setFromVersion(from_version);
  req.setLimit(max_count);
  req.setBackward(direction == store::ReadDirection::kBackward);
  req.setOpenContent(open_content);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  if (resp->getResult().isError()) return FromError(resp->getResult().getError());
  return Events(kj::mv(*resp));
}

absl::StatusOr<std::vector<RemoteEvent>> Client::ReadAll(uint64_t from_position, uint32_t max_count,
                                                         bool open_content) {
  auto req = impl_->As<rpc::Reads>().readAllRequest();
  req.setFromPosition(from_position);
  req.setLimit(max_count);
  req.setOpenContent(open_content);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  if (resp->getResult().isError()) return FromError(resp->getResult().getError());
  return Events(kj::mv(*resp));
}

absl::StatusOr<store::StreamInfo> Client::GetStreamInfo(const std::string& stream) {
  auto req = impl_->As<rpc::Reads>().streamInfoRequest();
  req.setStream(stream);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  return FromWire(r.getOk());
}

absl::StatusOr<uint64_t> Client::Head() {
  auto resp = impl_->Wait(impl_->As<rpc::Reads>().headRequest().send());
  if (!resp.ok()) return resp.status();
  return resp->getHead();
}

absl::StatusOr<std::string> Client::Root(uint64_t size) {
  auto req = impl_->As<rpc::Auditor>().rootRequest();
  req.setSize(size);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  auto d = r.getOk();
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

absl::StatusOr<std::string> Client::SignedHead() {
  auto resp = impl_->Wait(impl_->As<rpc::Auditor>().signedHeadRequest().send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  return std::string(r.getOk().cStr());
}

absl::StatusOr<std::string> Client::VerifierKey() {
  auto resp = impl_->Wait(impl_->As<rpc::Auditor>().verifierKeyRequest().send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  return std::string(r.getOk().cStr());
}

namespace {
absl::StatusOr<std::vector<tlog::Hash>> ProofFrom(rpc::ProofResult::Reader r) {
  if (r.isError()) return FromError(r.getError());
  std::vector<tlog::Hash> out;
  for (capnp::Data::Reader d : r.getOk()) {
    tlog::Hash h{};
    if (d.size() != h.size()) {
      return absl::DataLossError(absl::StrCat("ihsd sent a proof hash of ", d.size(), " bytes"));
    }
    std::copy(d.begin(), d.end(), h.begin());
    out.push_back(h);
  }
  return out;
}

// The position a reply (a PositionResult) names, or its error.
template <typename Response>
absl::StatusOr<uint64_t> PositionFrom(absl::StatusOr<Response> resp) {
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  return r.getOk();
}
}  // namespace

absl::StatusOr<std::vector<tlog::Hash>> Client::InclusionProof(uint64_t index, uint64_t size) {
  auto req = impl_->As<rpc::Auditor>().inclusionProofRequest();
  req.setIndex(index);
  req.setSize(size);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  return ProofFrom(resp->getResult());
}

absl::StatusOr<std::vector<tlog::Hash>> Client::ConsistencyProof(uint64_t old_size,
                                                                 uint64_t new_size) {
  auto req = impl_->As<rpc::Auditor>().consistencyProofRequest();
  req.setOldSize(old_size);
  req.setNewSize(new_size);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  return ProofFrom(resp->getResult());
}

absl::StatusOr<uint64_t> Client::Erase(const std::string& party, const std::string& reason,
                                       bool person) {
  auto req = impl_->As<rpc::Admin>().eraseRequest();
  req.setParty(party);
  req.setReason(reason);
  req.setPerson(person);
  return PositionFrom(impl_->Wait(req.send()));
}

absl::StatusOr<uint64_t> Client::SetLegalHold(const std::string& party, bool lift,
                                              const std::string& reason) {
  auto req = impl_->As<rpc::Admin>().legalHoldRequest();
  req.setParty(party);
  req.setLift(lift);
  req.setReason(reason);
  return PositionFrom(impl_->Wait(req.send()));
}

absl::StatusOr<uint64_t> Client::Backup(const std::string& to, bool with_master_key) {
  auto req = impl_->As<rpc::Admin>().backupRequest();
  req.setTo(to);
  req.setWithMasterKey(with_master_key);
  return PositionFrom(impl_->Wait(req.send()));
}

absl::StatusOr<ServerStatus> Client::Status() {
  auto resp = impl_->Wait(impl_->As<rpc::Admin>().statusRequest().send());
  if (!resp.ok()) return resp.status();
  auto s = resp->getStatus();
  ServerStatus out;
  out.version = s.getVersion();
  out.events = s.getEvents();
  out.streams = s.getStreams();
  out.disk_bytes = s.getDiskBytes();
  out.root = std::string(reinterpret_cast<const char*>(s.getRoot().begin()), s.getRoot().size());
  out.connections = s.getConnections();
  out.connections_total = s.getConnectionsTotal();
  out.calls_in_flight = s.getCallsInFlight();
  out.subscriptions = s.getSubscriptions();
  out.appends = s.getAppends();
  out.syncs = s.getSyncs();
  out.uptime_seconds = s.getUptimeSeconds();
  out.connections_awaiting_login = s.getConnectionsAwaitingLogin();
  out.max_connections = s.getMaxConnections();
  out.max_pending_logins = s.getMaxPendingLogins();
  out.max_subscriptions = s.getMaxSubscriptions();
  out.max_subscriptions_per_connection = s.getMaxSubscriptionsPerConnection();
  out.max_calls_in_flight = s.getMaxCallsInFlight();
  out.login_timeout_seconds = s.getLoginTimeoutSeconds();
  out.subscriber_timeout_seconds = s.getSubscriberTimeoutSeconds();
  return out;
}

namespace {

// A reply whose result is ok (copied into `out` as its root) or an error.
template <typename Response>
absl::Status CopyResult(absl::StatusOr<Response> resp, capnp::MessageBuilder& out) {
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  out.setRoot(r.getOk());
  return absl::OkStatus();
}

}  // namespace

absl::Status Client::Timeline(const projections::timeline::Query& query,
                              const TimelineOptions& options, capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().timelineRequest();
  auto q = req.initQuery();
  q.setParty(query.party);
  q.setFrom(query.from);
  q.setTo(query.to);
  auto ch = q.initChannels(query.channels.size());
  for (size_t i = 0; i < query.channels.size(); ++i) ch.set(i, query.channels[i]);
  q.setCursor(query.cursor);
  q.setLimit(query.limit);
  q.setOpenContent(options.open_content);
  q.setMinPosition(options.min_position);
  q.setAsOf(absl::ToUnixMicros(query.as_of));
  q.setPerson(options.person);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::Status Client::Summary(const std::string& party, absl::Time as_of, uint64_t min_position,
                             capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().summaryRequest();
  req.setParty(party);
  req.setAsOf(absl::ToUnixMicros(as_of));
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::Status Client::Resolve(const std::string& stream, uint64_t min_position,
                             capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().resolveRequest();
  req.setStream(stream);
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::Status Client::Person(const std::string& id, uint64_t min_position,
                            capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().personRequest();
  req.setId(id);
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::StatusOr<std::vector<std::string>> Client::FindHandle(schema::HandleKind kind,
                                                            const std::string& address,
                                                            uint64_t min_position) {
  auto req = impl_->As<rpc::Reader>().findHandleRequest();
  req.initHandle().setKind(kind);
  req.getHandle().setAddress(address);
  req.setMinPosition(min_position);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  std::vector<std::string> out;
  for (auto s : r.getOk()) out.emplace_back(s.cStr(), s.size());
  return out;
}

absl::Status Client::IdentitySuggestions(const std::string& after, uint32_t limit,
                                         uint64_t min_position, capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().identitySuggestionsRequest();
  req.setAfter(after);
  req.setLimit(limit);
  req.setMinPosition(min_position);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  out.initRoot<schema::PairList>().setPairs(r.getOk());
  return absl::OkStatus();
}

absl::Status Client::IdentityStats(uint64_t min_position, capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().identityStatsRequest();
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::StatusOr<uint64_t> Client::Link(const std::string& a, const std::string& b, bool unlink,
                                      const std::string& reason) {
  auto req = impl_->As<rpc::Writer>().linkRequest();
  req.setA(a);
  req.setB(b);
  req.setUnlink(unlink);
  req.setReason(reason);
  return PositionFrom(impl_->Wait(req.send()));
}

absl::StatusOr<uint64_t> Client::DecideSuggestion(const std::string& id, bool accept,
                                                  const std::string& reason) {
  auto req = impl_->As<rpc::Writer>().decideSuggestionRequest();
  req.setId(id);
  req.setAccept(accept);
  req.setReason(reason);
  return PositionFrom(impl_->Wait(req.send()));
}

absl::StatusOr<uint64_t> Client::DefineSegment(schema::SegmentOp op, const std::string& name,
                                               const std::string& rule,
                                               const std::string& description) {
  auto req = impl_->As<rpc::Writer>().defineSegmentRequest();
  req.setOp(op);
  req.setName(name);
  req.setRule(rule);
  req.setDescription(description);
  return PositionFrom(impl_->Wait(req.send()));
}

absl::Status Client::SegmentDefinitions(const std::string& after, uint32_t limit,
                                        capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().segmentDefinitionsRequest();
  req.setAfter(after);
  req.setLimit(limit);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::Status Client::SegmentMembers(const std::string& segment, int64_t as_of,
                                    const std::string& after, uint32_t limit, uint64_t min_position,
                                    capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().segmentMembersRequest();
  req.setSegment(segment);
  req.setAsOf(as_of);
  req.setAfter(after);
  req.setLimit(limit);
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::Status Client::PartySegments(const std::string& party, int64_t as_of, uint64_t min_position,
                                   capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().partySegmentsRequest();
  req.setParty(party);
  req.setAsOf(as_of);
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::Status Client::SegmentWhy(const std::string& party, const std::string& segment, int64_t as_of,
                                uint64_t min_position, capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().segmentWhyRequest();
  req.setParty(party);
  req.setSegment(segment);
  req.setAsOf(as_of);
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::Status Client::Community(const std::string& party, int64_t as_of, uint64_t min_position,
                               capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().communityRequest();
  req.setParty(party);
  req.setAsOf(as_of);
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::Status Client::CommunityTop(uint32_t n, schema::CommunityRank by, uint64_t min_position,
                                  capnp::MessageBuilder& out) {
  auto req = impl_->As<rpc::Reader>().communityTopRequest();
  req.setN(n);
  req.setBy(by);
  req.setMinPosition(min_position);
  return CopyResult(impl_->Wait(req.send()), out);
}

absl::StatusOr<std::vector<projections::ProjectionStatus>> Client::Projections() {
  auto resp = impl_->Wait(impl_->As<rpc::Reader>().projectionsRequest().send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  std::vector<projections::ProjectionStatus> out;
  for (auto p : r.getOk()) out.push_back(FromWire(p));
  return out;
}

absl::Status Client::RebuildProjection(const std::string& name) {
  auto req = impl_->As<rpc::Admin>().rebuildProjectionRequest();
  req.setName(name);
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  auto r = resp->getResult();
  if (r.isError()) return FromError(r.getError());
  return absl::OkStatus();
}

namespace {

// The end of a subscription, shared by the waiting Subscribe call and the Subscriber capability
// (which Cap'n Proto may keep a moment longer).
struct SubscriptionEnd {
  kj::Own<kj::PromiseFulfiller<absl::Status>> fulfiller;
  void Finish(absl::Status s) {
    if (fulfiller->isWaiting()) fulfiller->fulfill(kj::mv(s));
  }
};

class SubscriberImpl final : public rpc::Subscriber::Server {
 public:
  SubscriberImpl(std::shared_ptr<SubscriptionEnd> end, const Client::EventsFn& on_events)
      : end_(std::move(end)), on_events_(on_events) {}

 protected:
  kj::Promise<void> events(EventsContext c) override {
    if (!end_->fulfiller->isWaiting()) return kj::READY_NOW;
    auto params = c.getParams();
    // The call's message is freed when this returns: keep a copy the events can point into.
    auto msg = std::make_shared<capnp::MallocMessageBuilder>(params.totalSize().wordCount + 8);
    msg->setRoot(params);
    auto copy = msg->getRoot<rpc::Subscriber::EventsParams>().asReader();
    std::vector<RemoteEvent> events;
    events.reserve(copy.getEvents().size());
    for (auto e : copy.getEvents()) events.emplace_back(msg, e);
    if (!on_events_(events, copy.getScannedTo())) end_->Finish(absl::OkStatus());
    return kj::READY_NOW;
  }
  kj::Promise<void> end(EndContext c) override {
    end_->Finish(FromError(c.getParams().getError()));
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<SubscriptionEnd> end_;
  const Client::EventsFn& on_events_;
};

class SegmentSubscriberImpl final : public rpc::SegmentSubscriber::Server {
 public:
  SegmentSubscriberImpl(std::shared_ptr<SubscriptionEnd> end, const Client::TransitionsFn& fn)
      : end_(std::move(end)), fn_(fn) {}

 protected:
  kj::Promise<void> transitions(TransitionsContext c) override {
    if (!end_->fulfiller->isWaiting()) return kj::READY_NOW;
    auto params = c.getParams();
    if (!fn_(params.getTransitions(), params.getScannedTo())) end_->Finish(absl::OkStatus());
    return kj::READY_NOW;
  }
  kj::Promise<void> end(EndContext c) override {
    end_->Finish(FromError(c.getParams().getError()));
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<SubscriptionEnd> end_;
  const Client::TransitionsFn& fn_;
};

// Waits, on this thread, until the subscription ends (`promise`) or the connection breaks.
absl::Status AwaitEnd(Client::Impl& impl, kj::Promise<absl::Status> promise);

}  // namespace

absl::Status Client::SubscribeSegments(const std::vector<std::string>& segments, uint64_t from_seq,
                                       bool from_now, const TransitionsFn& on_transitions) {
  auto paf = kj::newPromiseAndFulfiller<absl::Status>();
  auto end = std::make_shared<SubscriptionEnd>();
  end->fulfiller = kj::mv(paf.fulfiller);
  auto req = impl_->As<rpc::Reader>().subscribeSegmentsRequest();
  req.setFromSeq(from_seq);
  req.setFromNow(from_now);
  auto names = req.initSegments(static_cast<unsigned>(segments.size()));
  for (unsigned i = 0; i < segments.size(); ++i) names.set(i, segments[i]);
  req.setSubscriber(kj::heap<SegmentSubscriberImpl>(end, on_transitions));
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  if (resp->getResult().isError()) return FromError(resp->getResult().getError());
  rpc::SegmentSubscription::Client handle = resp->getResult().getOk();
  absl::Status status = AwaitEnd(*impl_, kj::mv(paf.promise));
  end->Finish(absl::OkStatus());  // later deliveries are dropped
  return status;                  // `handle` goes out of scope: the server stops the subscription
}

absl::Status Client::Subscribe(const SubscribeOptions& options, const EventsFn& on_events) {
  auto paf = kj::newPromiseAndFulfiller<absl::Status>();
  auto end = std::make_shared<SubscriptionEnd>();
  end->fulfiller = kj::mv(paf.fulfiller);
  auto req = impl_->As<rpc::Reader>().subscribeRequest();
  req.setFromPosition(options.from_position);
  auto filter = req.initFilter();
  filter.setStreamPrefix(options.stream_prefix);
  auto ch = filter.initChannels(options.channels.size());
  for (size_t i = 0; i < options.channels.size(); ++i) ch.set(i, options.channels[i]);
  auto ty = filter.initTypes(options.types.size());
  for (size_t i = 0; i < options.types.size(); ++i) ty.set(i, options.types[i]);
  req.setOpenContent(options.open_content);
  req.setSubscriber(kj::heap<SubscriberImpl>(end, on_events));
  auto resp = impl_->Wait(req.send());
  if (!resp.ok()) return resp.status();
  if (resp->getResult().isError()) return FromError(resp->getResult().getError());
  rpc::Subscription::Client handle = resp->getResult().getOk();
  absl::Status status = AwaitEnd(*impl_, kj::mv(paf.promise));
  end->Finish(absl::OkStatus());  // later deliveries are dropped
  return status;                  // `handle` goes out of scope: the server stops the subscription
}

namespace {

absl::Status AwaitEnd(Client::Impl& impl, kj::Promise<absl::Status> promise) {
  // No timeout here: a subscription lasts until it ends. A broken connection ends it.
  absl::Status status;
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] {
                 status = promise
                              .exclusiveJoin(impl.rpc->onDisconnect().then(
                                  [] { return absl::UnavailableError("disconnected from ihsd"); }))
                              .wait(impl.io->context.waitScope);
               })) {
    status = FromKj(*e);
  }
  return status;
}

}  // namespace

}  // namespace ihs::client
