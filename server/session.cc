// The calls of one logged-in session, the role capabilities that forward to them, and the
// gateway a connection logs in through.
#include <capnp/message.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "projections/identity/identity.h"
#include "projections/identity/links.h"
#include "projections/segments/definitions.h"
#include "projections/timeline/timeline.h"
#include "schema/json.h"
#include "server/internal/shared.h"
#include "server/read_wire.h"
#include "server/wire.h"
#include "store/audit.h"
#include "store/backup.h"
#include "store/governance.h"

namespace ihs::server {
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
using LinkCtx = capnp::CallContext<rpc::Writer::LinkParams, rpc::Writer::LinkResults>;
using DecideCtx =
    capnp::CallContext<rpc::Writer::DecideSuggestionParams, rpc::Writer::DecideSuggestionResults>;
using ResolveCtx = capnp::CallContext<rpc::Reader::ResolveParams, rpc::Reader::ResolveResults>;
using PersonCtx = capnp::CallContext<rpc::Reader::PersonParams, rpc::Reader::PersonResults>;
using FindHandleCtx =
    capnp::CallContext<rpc::Reader::FindHandleParams, rpc::Reader::FindHandleResults>;
using SuggestionsCtx = capnp::CallContext<rpc::Reader::IdentitySuggestionsParams,
                                          rpc::Reader::IdentitySuggestionsResults>;
using IdentityStatsCtx =
    capnp::CallContext<rpc::Reader::IdentityStatsParams, rpc::Reader::IdentityStatsResults>;
using DefineSegmentCtx =
    capnp::CallContext<rpc::Writer::DefineSegmentParams, rpc::Writer::DefineSegmentResults>;
using SegmentDefinitionsCtx = capnp::CallContext<rpc::Reader::SegmentDefinitionsParams,
                                                 rpc::Reader::SegmentDefinitionsResults>;
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
    absl::Status bad = c.getParams().getParty().size() == 0 ? BadField("party", "party is empty")
                                                            : absl::OkStatus();
    return Control(c, bad, absl::StrCat(what, " party ", c.getParams().getParty().cStr()),
                   std::move(run));
  }

  // A call that appends a control event (erasure, hold, identity link) on the appends pool, and
  // logs who did what.
  template <typename Ctx>
  kj::Promise<void> Control(Ctx c, absl::Status bad, absl::string_view what,
                            std::function<absl::StatusOr<uint64_t>()> run) {
    auto result = c.getResults().initResult();
    if (bad.ok() && shared_.draining) bad = ShuttingDown();
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    std::string log = absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": ", name_, " ", what);
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

  // Runs `decide` on the identity projection caught up with the log (docs/identity.md).
  std::function<absl::StatusOr<uint64_t>()> WithIdentity(
      std::function<absl::StatusOr<uint64_t>(const projections::StateView&)> decide) {
    store::EventStore* store = &shared_.store;
    projections::Runner* runner = shared_.runner;
    return [store, runner, decide]() -> absl::StatusOr<uint64_t> {
      if (runner == nullptr) return absl::UnavailableError("this server runs no projections");
      if (!runner->WaitFor(projections::identity::kName, store->Head(),
                           absl::Now() + kMaxProjectionWait)) {
        return absl::UnavailableError("the identity projection is behind the log: try again");
      }
      IHS_ASSIGN_OR_RETURN(projections::StateView view, runner->View(projections::identity::kName));
      return decide(view);
    };
  }

  kj::Promise<void> Link(LinkCtx c) {
    projections::identity::LinkRequest r;
    r.a = c.getParams().getA();
    r.b = c.getParams().getB();
    r.unlink = c.getParams().getUnlink();
    r.reason = c.getParams().getReason();
    r.requested_by = name_;
    store::EventStore* store = &shared_.store;
    return Control(c, absl::OkStatus(),
                   absl::StrCat(r.unlink ? "unlinks " : "links ", r.a, " and ", r.b),
                   WithIdentity([store, r](const projections::StateView& view) {
                     return projections::identity::AppendLink(*store, view, r);
                   }));
  }

  kj::Promise<void> DecideSuggestion(DecideCtx c) {
    std::string id = c.getParams().getId(), reason = c.getParams().getReason();
    const bool accept = c.getParams().getAccept();
    store::EventStore* store = &shared_.store;
    return Control(
        c, absl::OkStatus(), absl::StrCat(accept ? "accepts" : "rejects", " suggestion ", id),
        WithIdentity([store, id, accept, reason, by = name_](const projections::StateView& view) {
          return projections::identity::DecideSuggestion(*store, view, id, accept, reason, by);
        }));
  }

  kj::Promise<void> DefineSegment(DefineSegmentCtx c) {
    auto p = c.getParams();
    namespace sg = projections::segments;
    sg::DefineRequest r;
    absl::StatusOr<sg::Definitions::Op> op = sg::OpOf(p.getOp());
    if (op.ok()) r.op = *op;
    r.name = p.getName();
    r.rule = p.getRule();
    r.description = p.getDescription();
    r.requested_by = name_;
    r.source_system = "ihsd";
    store::EventStore* store = &shared_.store;
    return Control(c, op.ok() ? absl::OkStatus() : BadField("op", op.status().message()),
                   absl::StrCat(schema::EnumName(p.getOp()), "s segment ", r.name),
                   [store, r]() -> absl::StatusOr<uint64_t> {
                     IHS_ASSIGN_OR_RETURN(sg::DefineResult d, sg::AppendDefinition(*store, r));
                     return d.position;
                   });
  }

  kj::Promise<void> SegmentDefinitions(SegmentDefinitionsCtx c) {
    auto result = c.getResults().initResult();
    std::string after = c.getParams().getAfter();
    const uint32_t limit = c.getParams().getLimit();
    auto admitted = Admit(limit == 0 || limit > 1000 ? BadField("limit", "limit must be 1 to 1000")
                                                     : absl::OkStatus());
    if (!admitted.ok()) return Refuse(result, admitted.status());
    store::EventStore* store = &shared_.store;
    return shared_.reads
        .Run([store, after, limit]() -> ReadAnswer {
          IHS_ASSIGN_OR_RETURN(projections::segments::Definitions d,
                               projections::segments::ReadDefinitions(*store));
          auto m = std::make_shared<capnp::MallocMessageBuilder>();
          projections::segments::ToList(d, after, limit, m->initRoot<schema::SegmentList>());
          return m;
        })
        .then([c](ReadAnswer answer) mutable {
          SetAnswer<schema::SegmentList>(c.getResults().getResult(), answer);
        })
        .attach(kj::mv(*admitted));
  }

  // A read of the identity projection whose answer is the root `Root` of the read's message.
  template <typename Root, typename Ctx>
  kj::Promise<void> IdentityRead(Ctx c, absl::Status bad, uint64_t min_position,
                                 ProjectionRead read) {
    auto result = c.getResults().initResult();
    if (bad.ok()) bad = CheckMinPosition(min_position);
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    return ReadProjection(projections::identity::kName, min_position, std::move(read))
        .then(
            [c](ReadAnswer answer) mutable { SetAnswer<Root>(c.getResults().getResult(), answer); })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> Resolve(ResolveCtx c) {
    std::string stream = c.getParams().getStream();
    return IdentityRead<schema::Resolution>(
        c, stream.empty() ? BadField("stream", "stream is empty") : absl::OkStatus(),
        c.getParams().getMinPosition(),
        [stream](const projections::StateView& view, capnp::MessageBuilder& m) {
          return projections::identity::Resolve(view, stream, m);
        });
  }

  kj::Promise<void> Person(PersonCtx c) {
    std::string id = c.getParams().getId();
    return IdentityRead<schema::Person>(
        c, id.empty() ? BadField("id", "id is empty") : absl::OkStatus(),
        c.getParams().getMinPosition(),
        [id](const projections::StateView& view, capnp::MessageBuilder& m) {
          return projections::identity::ReadPerson(view, id, m);
        });
  }

  kj::Promise<void> FindHandle(FindHandleCtx c) {
    const schema::HandleKind kind = c.getParams().getHandle().getKind();
    std::string address = c.getParams().getHandle().getAddress();
    absl::StatusOr<std::string> key = shared_.store.BlindIndexKey();
    return IdentityRead<rpc::StreamsResult>(
        c, key.status(), c.getParams().getMinPosition(),
        [kind, address, key](const projections::StateView& view, capnp::MessageBuilder& m) {
          absl::StatusOr<std::vector<std::string>> streams =
              projections::identity::FindHandle(view, *key, kind, address);
          if (absl::IsInvalidArgument(streams.status())) {
            return BadField("handle", streams.status().message());
          }
          IHS_RETURN_IF_ERROR(streams.status());
          auto list =
              m.initRoot<rpc::StreamsResult>().initOk(static_cast<unsigned>(streams->size()));
          for (unsigned i = 0; i < streams->size(); ++i) list.set(i, (*streams)[i]);
          return absl::OkStatus();
        });
  }

  kj::Promise<void> IdentitySuggestions(SuggestionsCtx c) {
    std::string after = c.getParams().getAfter();
    const uint32_t limit = c.getParams().getLimit();
    absl::Status bad = limit == 0 || limit > 1000 ? BadField("limit", "limit must be 1 to 1000")
                                                  : absl::OkStatus();
    return IdentityRead<rpc::SuggestionsResult>(
        c, bad, c.getParams().getMinPosition(),
        [after, limit](const projections::StateView& view, capnp::MessageBuilder& m) {
          std::string from = after;
          std::replace(from.begin(), from.end(), ' ', '\0');
          IHS_ASSIGN_OR_RETURN(auto pairs, projections::identity::ListPairs(
                                               view, schema::PairState::SUGGESTED, limit, from));
          auto list =
              m.initRoot<rpc::SuggestionsResult>().initOk(static_cast<unsigned>(pairs.size()));
          for (unsigned i = 0; i < pairs.size(); ++i) {
            capnp::MallocMessageBuilder one;
            IHS_RETURN_IF_ERROR(
                projections::identity::ReadPair(view, pairs[i].first, pairs[i].second, one));
            list.setWithCaveats(i, one.getRoot<schema::PairScore>().asReader());
          }
          return absl::OkStatus();
        });
  }

  kj::Promise<void> IdentityStats(IdentityStatsCtx c) {
    return IdentityRead<schema::IdentityStats>(
        c, absl::OkStatus(), c.getParams().getMinPosition(),
        [](const projections::StateView& view, capnp::MessageBuilder& m) {
          return projections::identity::ReadStats(view, m);
        });
  }

  kj::Promise<void> Erase(EraseCtx c) {
    store::EventStore* store = &shared_.store;
    std::string party = c.getParams().getParty(), reason = c.getParams().getReason();
    if (c.getParams().getPerson()) {
      return PartyControl(
          c, "erases the whole person of",
          WithIdentity([store, party, reason, by = name_](
                           const projections::StateView& view) -> absl::StatusOr<uint64_t> {
            IHS_ASSIGN_OR_RETURN(
                auto erased, projections::identity::ErasePerson(*store, view, party, reason, by));
            return erased.first.at(0);
          }));
    }
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
    const uint64_t min_position = p.getMinPosition();
    kj::Promise<ReadAnswer> person = ReadAnswer(nullptr);
    if (p.getPerson()) {
      const std::string party = q.party;
      person = ReadProjection(
          projections::identity::kName, min_position,
          [party](const projections::StateView& view, capnp::MessageBuilder& m) {
            absl::Status s = projections::identity::ReadPerson(view, party, m);
            return absl::IsNotFound(s) ? absl::OkStatus() : s;  // no identity yet: the party alone
          });
    }
    return person
        .then(
            [this, q, content, min_position](ReadAnswer person) mutable -> kj::Promise<ReadAnswer> {
              if (!person.ok()) return ReadAnswer(person.status());
              if (*person != nullptr && (*person)->getRoot<schema::Person>().hasStreams()) {
                for (auto s : (*person)->getRoot<schema::Person>().asReader().getStreams()) {
                  q.also.emplace_back(s.cStr(), s.size());
                }
              }
              return ReadProjection(
                  tl::kName, min_position,
                  [q, content](const projections::StateView& view, capnp::MessageBuilder& m) {
                    return tl::ReadPage(view, q, m, content);
                  });
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
    return ReadProjection(
               projections::timeline::kName, p.getMinPosition(),
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

  // How every projection's reads are served (docs/rpc.md "Projections"): waits (on its own
  // pool, at most kMaxProjectionWait) until the projection `name` has applied every position
  // below `min_position`, then runs `read` on a view of its active generation on a read worker.
  // A projection's read methods validate their parameters, call this, and copy the answer into
  // their result with SetAnswer: nothing else of a projection is in the server.
  kj::Promise<ReadAnswer> ReadProjection(std::string name, uint64_t min_position,
                                         ProjectionRead read) {
    projections::Runner* runner = shared_.runner;
    const absl::Time deadline = absl::Now() + kMaxProjectionWait;
    kj::Promise<bool> reached = true;
    if (min_position > 0) {
      reached = shared_.waits.Run([runner, name, min_position, deadline] {
        return runner->WaitFor(name, min_position, deadline);
      });
    }
    WorkerPool* reads = &shared_.reads;
    return reached.then(
        [runner, name, min_position, read, reads](bool ok) -> kj::Promise<ReadAnswer> {
          if (!ok) {
            return ReadAnswer(absl::UnavailableError(
                absl::StrCat("projection ", name, " has not reached position ", min_position,
                             " within ", absl::FormatDuration(kMaxProjectionWait), ": try again")));
          }
          return reads->Run([runner, name, read]() -> ReadAnswer {
            absl::StatusOr<projections::StateView> view = runner->View(name);
            if (!view.ok()) return view.status();
            auto m = std::make_shared<capnp::MallocMessageBuilder>();
            IHS_RETURN_IF_ERROR(read(*view, *m));
            return m;
          });
        });
  }

  // A projection read's answer into a result union: its root as `ok`, or the error. A root of
  // the result's own type (a list answer) is copied whole.
  template <typename Root, typename ResultBuilder>
  static void SetAnswer(ResultBuilder result, const ReadAnswer& answer) {
    if (!answer.ok()) {
      SetError(result.initError(), answer.status());
    } else if constexpr (std::is_same_v<typename Root::Builder, ResultBuilder>) {
      result.setOk((*answer)->template getRoot<Root>().asReader().getOk());
    } else {
      result.setOk((*answer)->template getRoot<Root>().asReader());
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
  kj::Promise<void> link(LinkCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Link(c); });
  }
  kj::Promise<void> decideSuggestion(DecideCtx c) override {
    return Checked(c, 0, [&] { return this->s_->DecideSuggestion(c); });
  }
  kj::Promise<void> defineSegment(DefineSegmentCtx c) override {
    return Checked(c, 0, [&] { return this->s_->DefineSegment(c); });
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
  kj::Promise<void> resolve(ResolveCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Resolve(c); });
  }
  kj::Promise<void> person(PersonCtx c) override {
    return Checked(c, 0, [&] { return this->s_->Person(c); });
  }
  kj::Promise<void> findHandle(FindHandleCtx c) override {
    return Checked(c, 0, [&] { return this->s_->FindHandle(c); });
  }
  kj::Promise<void> identitySuggestions(SuggestionsCtx c) override {
    return Checked(c, 0, [&] { return this->s_->IdentitySuggestions(c); });
  }
  kj::Promise<void> identityStats(IdentityStatsCtx c) override {
    return Checked(c, 0, [&] { return this->s_->IdentityStats(c); });
  }
  kj::Promise<void> segmentDefinitions(SegmentDefinitionsCtx c) override {
    return Checked(c, 0, [&] { return this->s_->SegmentDefinitions(c); });
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

kj::Own<rpc::Gateway::Server> NewGateway(Server::Shared& shared, std::shared_ptr<ConnState> conn) {
  return kj::heap<Gateway>(shared, std::move(conn));
}

}  // namespace ihs::server
