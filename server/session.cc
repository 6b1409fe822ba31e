// The calls of one logged-in session, the role capabilities that forward to them, and the
// gateway a connection logs in through.
#include "server/internal/session.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "schema/json.h"

namespace ihs::server {
namespace {

using namespace internal;  // NOLINT: Session and the call contexts of its methods

// Checks a request before its method reads it. A request may carry no capability where the
// schema has none (`allowed_caps`: a subscribe's subscriber): one would otherwise be copied into
// the store's canonical encoding, which throws on a worker thread, or have its reference count
// touched from there. And Cap'n Proto checks a message lazily, as fields are read: text without
// its NUL or a pointer out of bounds throws in the middle of a method, which would go back as an
// untyped FAILED that clients take for a bug of ihsd's. Both are the caller's bad input, answered
// `badInput` in the method's result; nothing is stored.
// How a call ended, for /metrics: "ok", or the kind of the error in its result.
template <typename Ctx>
const char* Outcome(Ctx& c) {
  auto r = c.getResults().getResult();
  return r.isError() ? schema::EnumName(r.getError().getKind()) : "ok";
}

template <typename Ctx, typename Body>
kj::Promise<void> Checked(const char* method, SharedState& shared, Ctx c, uint64_t allowed_caps,
                          Body&& body) {
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
  // Counted on the event loop, when the answer is complete (or the call ended without one).
  SharedState* counts = &shared;
  KJ_IF_MAYBE (a, answer) {
    return a->then(
        [counts, method, c]() mutable {
          ++counts->calls[{method, Outcome(c)}];
        },
        [counts, method](kj::Exception&& e) {
          ++counts->calls[{method, "exception"}];
          kj::throwFatalException(kj::mv(e));
        });
  }
  SetError(c.getResults().initResult().initError(), bad);
  ++counts->calls[{method, Outcome(c)}];
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
    return Checked("readStream", s_->shared(), c, 0, [&] { return s_->ReadStream(c); });
  }
  kj::Promise<void> readAll(ReadAllCtx c) override {
    return Checked("readAll", s_->shared(), c, 0, [&] { return s_->ReadAll(c); });
  }
  kj::Promise<void> streamInfo(StreamInfoCtx c) override {
    return Checked("streamInfo", s_->shared(), c, 0, [&] { return s_->StreamInfo(c); });
  }
  kj::Promise<void> head(HeadCtx c) override {
    ++s_->shared().calls[{"head", "ok"}];  // it cannot fail
    return s_->Head(c);
  }
  std::shared_ptr<Session> s_;
};

template <typename Parent>
class WithWrites : public Parent {
 public:
  using Parent::Parent;

 protected:
  kj::Promise<void> append(AppendCtx c) override {
    return Checked("append", this->s_->shared(), c, 0, [&] { return this->s_->Append(c); });
  }
  kj::Promise<void> appendMulti(AppendMultiCtx c) override {
    return Checked("appendMulti", this->s_->shared(), c, 0,
                   [&] { return this->s_->AppendMulti(c); });
  }
  kj::Promise<void> link(LinkCtx c) override {
    return Checked("link", this->s_->shared(), c, 0, [&] { return this->s_->Link(c); });
  }
  kj::Promise<void> decideSuggestion(DecideCtx c) override {
    return Checked("decideSuggestion", this->s_->shared(), c, 0,
                   [&] { return this->s_->DecideSuggestion(c); });
  }
  kj::Promise<void> defineSegment(DefineSegmentCtx c) override {
    return Checked("defineSegment", this->s_->shared(), c, 0,
                   [&] { return this->s_->DefineSegment(c); });
  }
};

template <typename Parent>
class WithReader : public Parent {
 public:
  using Parent::Parent;

 protected:
  kj::Promise<void> subscribe(SubscribeCtx c) override {
    return Checked("subscribe", this->s_->shared(), c, 1, [&] { return this->s_->Subscribe(c); });
  }
  kj::Promise<void> timeline(TimelineCtx c) override {
    return Checked("timeline", this->s_->shared(), c, 0, [&] { return this->s_->Timeline(c); });
  }
  kj::Promise<void> summary(SummaryCtx c) override {
    return Checked("summary", this->s_->shared(), c, 0, [&] { return this->s_->Summary(c); });
  }
  kj::Promise<void> projections(ProjectionsCtx c) override {
    return Checked("projections", this->s_->shared(), c, 0,
                   [&] { return this->s_->Projections(c); });
  }
  kj::Promise<void> resolve(ResolveCtx c) override {
    return Checked("resolve", this->s_->shared(), c, 0, [&] { return this->s_->Resolve(c); });
  }
  kj::Promise<void> person(PersonCtx c) override {
    return Checked("person", this->s_->shared(), c, 0, [&] { return this->s_->Person(c); });
  }
  kj::Promise<void> findHandle(FindHandleCtx c) override {
    return Checked("findHandle", this->s_->shared(), c, 0, [&] { return this->s_->FindHandle(c); });
  }
  kj::Promise<void> identitySuggestions(SuggestionsCtx c) override {
    return Checked("identitySuggestions", this->s_->shared(), c, 0,
                   [&] { return this->s_->IdentitySuggestions(c); });
  }
  kj::Promise<void> identityStats(IdentityStatsCtx c) override {
    return Checked("identityStats", this->s_->shared(), c, 0,
                   [&] { return this->s_->IdentityStats(c); });
  }
  kj::Promise<void> segmentDefinitions(SegmentDefinitionsCtx c) override {
    return Checked("segmentDefinitions", this->s_->shared(), c, 0,
                   [&] { return this->s_->SegmentDefinitions(c); });
  }
  kj::Promise<void> segmentMembers(SegmentMembersCtx c) override {
    return Checked("segmentMembers", this->s_->shared(), c, 0,
                   [&] { return this->s_->SegmentMembers(c); });
  }
  kj::Promise<void> partySegments(PartySegmentsCtx c) override {
    return Checked("partySegments", this->s_->shared(), c, 0,
                   [&] { return this->s_->PartySegments(c); });
  }
  kj::Promise<void> segmentWhy(SegmentWhyCtx c) override {
    return Checked("segmentWhy", this->s_->shared(), c, 0, [&] { return this->s_->SegmentWhy(c); });
  }
  kj::Promise<void> subscribeSegments(SubscribeSegmentsCtx c) override {
    return Checked("subscribeSegments", this->s_->shared(), c, 1,
                   [&] { return this->s_->SubscribeSegments(c); });
  }
  kj::Promise<void> community(CommunityCtx c) override {
    return Checked("community", this->s_->shared(), c, 0, [&] { return this->s_->Community(c); });
  }
  kj::Promise<void> communityTop(CommunityTopCtx c) override {
    return Checked("communityTop", this->s_->shared(), c, 0,
                   [&] { return this->s_->CommunityTop(c); });
  }
};

template <typename Parent>
class WithAudit : public Parent {
 public:
  using Parent::Parent;

 protected:
  kj::Promise<void> root(RootCtx c) override {
    return Checked("root", this->s_->shared(), c, 0, [&] { return this->s_->Root(c); });
  }
  kj::Promise<void> signedHead(SignedHeadCtx c) override {
    return Checked("signedHead", this->s_->shared(), c, 0, [&] { return this->s_->SignedHead(c); });
  }
  kj::Promise<void> verifierKey(VerifierKeyCtx c) override {
    return Checked("verifierKey", this->s_->shared(), c, 0,
                   [&] { return this->s_->VerifierKey(c); });
  }
  kj::Promise<void> inclusionProof(InclusionProofCtx c) override {
    return Checked("inclusionProof", this->s_->shared(), c, 0,
                   [&] { return this->s_->InclusionProof(c); });
  }
  kj::Promise<void> consistencyProof(ConsistencyProofCtx c) override {
    return Checked("consistencyProof", this->s_->shared(), c, 0,
                   [&] { return this->s_->ConsistencyProof(c); });
  }
};

template <typename Parent>
class WithAdmin : public Parent {
 public:
  using Parent::Parent;

 protected:
  kj::Promise<void> status(StatusCtx c) override { return this->s_->Status(c); }
  kj::Promise<void> rebuildProjection(RebuildCtx c) override {
    return Checked("rebuildProjection", this->s_->shared(), c, 0,
                   [&] { return this->s_->RebuildProjection(c); });
  }
  kj::Promise<void> erase(EraseCtx c) override {
    return Checked("erase", this->s_->shared(), c, 0, [&] { return this->s_->Erase(c); });
  }
  kj::Promise<void> legalHold(LegalHoldCtx c) override {
    return Checked("legalHold", this->s_->shared(), c, 0, [&] { return this->s_->LegalHold(c); });
  }
  kj::Promise<void> backup(BackupCtx c) override {
    return Checked("backup", this->s_->shared(), c, 0, [&] { return this->s_->Backup(c); });
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
    return Checked("login", shared_, c, 0, [&] { return Login(c); });
  }

 private:
  kj::Promise<void> Login(LoginContext c) {
    auto result = c.getResults().initResult();
    std::optional<absl::Time> expired;
    std::optional<Identity> who =
        shared_.tokens.Authenticate(c.getParams().getToken().cStr(), absl::Now(), &expired);
    if (!who) {
      const std::string why =
          expired ? absl::StrCat("the token expired at ", absl::FormatTime(*expired))
                  : "no such token";
      shared_.Log(absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": login refused: ", why));
      SetError(result.initError(), absl::UnauthenticatedError(why));
      return kj::READY_NOW;
    }
    if (!conn_->logged_in) {
      conn_->logged_in = true;
      --shared_.pending_logins;
    }
    // Once per token and role: a client that logs in again and again on one connection does not
    // grow the list (it is bounded by the tokens file).
    const bool known = std::any_of(
        conn_->logins.begin(), conn_->logins.end(),
        [&](const Identity& i) { return i.token_hash == who->token_hash && i.role == who->role; });
    if (!known) conn_->logins.push_back(*who);
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

kj::Own<rpc::Gateway::Server> NewGateway(Server::Shared& shared, std::shared_ptr<ConnState> conn) {
  return kj::heap<Gateway>(shared, std::move(conn));
}

}  // namespace ihs::server
