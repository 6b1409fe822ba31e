// One logged-in session's calls, which the role capabilities of server/session.cc forward to.
// Their bodies are in session_log.cc (reads, appends, subscriptions), session_audit.cc,
// session_admin.cc and session_projections.cc (timeline, identity, segments). Internal to
// server/. A Session lives on the event-loop thread; blocking work runs on the shared pools.
#ifndef IHS_SERVER_INTERNAL_SESSION_H_
#define IHS_SERVER_INTERNAL_SESSION_H_

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
#include "projections/community/community.h"
#include "projections/identity/identity.h"
#include "projections/identity/links.h"
#include "projections/segments/definitions.h"
#include "projections/segments/segments.h"
#include "projections/timeline/timeline.h"
#include "schema/json.h"
#include "server/internal/shared.h"
#include "server/read_wire.h"
#include "server/wire.h"
#include "store/audit.h"
#include "store/backup.h"
#include "store/governance.h"

namespace ihs::server::internal {

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
using SegmentMembersCtx =
    capnp::CallContext<rpc::Reader::SegmentMembersParams, rpc::Reader::SegmentMembersResults>;
using PartySegmentsCtx =
    capnp::CallContext<rpc::Reader::PartySegmentsParams, rpc::Reader::PartySegmentsResults>;
using SegmentWhyCtx =
    capnp::CallContext<rpc::Reader::SegmentWhyParams, rpc::Reader::SegmentWhyResults>;
using SubscribeSegmentsCtx =
    capnp::CallContext<rpc::Reader::SubscribeSegmentsParams, rpc::Reader::SubscribeSegmentsResults>;
using CommunityCtx =
    capnp::CallContext<rpc::Reader::CommunityParams, rpc::Reader::CommunityResults>;
using CommunityTopCtx =
    capnp::CallContext<rpc::Reader::CommunityTopParams, rpc::Reader::CommunityTopResults>;
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

  Server::Shared& shared() { return shared_; }

  kj::Promise<void> ReadStream(ReadStreamCtx c);
  kj::Promise<void> ReadAll(ReadAllCtx c);
  kj::Promise<void> StreamInfo(StreamInfoCtx c);
  kj::Promise<void> Head(HeadCtx c);
  kj::Promise<void> Append(AppendCtx c);
  kj::Promise<void> AppendMulti(AppendMultiCtx c);
  kj::Promise<void> Subscribe(SubscribeCtx c);
  kj::Promise<void> Root(RootCtx c);
  kj::Promise<void> SignedHead(SignedHeadCtx c);
  kj::Promise<void> VerifierKey(VerifierKeyCtx c);

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

  kj::Promise<void> InclusionProof(InclusionProofCtx c);
  kj::Promise<void> ConsistencyProof(ConsistencyProofCtx c);

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

  kj::Promise<void> Link(LinkCtx c);
  kj::Promise<void> DecideSuggestion(DecideCtx c);
  kj::Promise<void> DefineSegment(DefineSegmentCtx c);
  kj::Promise<void> SegmentDefinitions(SegmentDefinitionsCtx c);
  kj::Promise<void> SegmentMembers(SegmentMembersCtx c);
  kj::Promise<void> PartySegments(PartySegmentsCtx c);
  kj::Promise<void> SegmentWhy(SegmentWhyCtx c);
  kj::Promise<void> SubscribeSegments(SubscribeSegmentsCtx c);
  kj::Promise<void> Community(CommunityCtx c);
  kj::Promise<void> CommunityTop(CommunityTopCtx c);

  // A read of the identity projection whose answer is the root `Root` of the read's message.
  template <typename Root, typename Ctx>
  kj::Promise<void> IdentityRead(Ctx c, absl::Status bad, uint64_t min_position,
                                 ProjectionRead read) {
    return StateRead<Root>(projections::identity::kName, c, std::move(bad), min_position,
                           std::move(read));
  }

  // A read of projection `name`'s state into the result's `ok` (root Root).
  template <typename Root, typename Ctx>
  kj::Promise<void> StateRead(const char* name, Ctx c, absl::Status bad, uint64_t min_position,
                              ProjectionRead read) {
    auto result = c.getResults().initResult();
    if (bad.ok()) bad = CheckMinPosition(min_position);
    auto admitted = Admit(bad);
    if (!admitted.ok()) return Refuse(result, admitted.status());
    return ReadProjection(name, min_position, std::move(read))
        .then(
            [c](ReadAnswer answer) mutable { SetAnswer<Root>(c.getResults().getResult(), answer); })
        .attach(kj::mv(*admitted));
  }

  kj::Promise<void> Resolve(ResolveCtx c);
  kj::Promise<void> Person(PersonCtx c);
  kj::Promise<void> FindHandle(FindHandleCtx c);
  kj::Promise<void> IdentitySuggestions(SuggestionsCtx c);
  kj::Promise<void> IdentityStats(IdentityStatsCtx c);
  kj::Promise<void> Erase(EraseCtx c);
  kj::Promise<void> LegalHold(LegalHoldCtx c);
  kj::Promise<void> Backup(BackupCtx c);
  kj::Promise<void> Timeline(TimelineCtx c);
  kj::Promise<void> Summary(SummaryCtx c);
  kj::Promise<void> Projections(ProjectionsCtx c);
  kj::Promise<void> RebuildProjection(RebuildCtx c);
  kj::Promise<void> Status(StatusCtx c);

 private:
  // Refuses a new subscription while draining or past the limits (both kinds count).
  absl::Status CheckSubscriptionLimits() const;

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
    for (uint32_t i = 0; i < a.getEvents().size(); ++i) {
      schema::Event::Reader e = a.getEvents()[i];
      // Kinds of event only ihsd itself writes.
      const char* own =
          e.isCommunityBand()   ? "communityBand events are ihsd's own (its band appender, "
                                  "docs/community.md \"Bands\")"
          : e.isContentAccess() ? "contentAccess events are ihsd's own (its console records "
                                  "them, docs/console.md)"
                                : nullptr;
      if (own != nullptr) {
        const std::string field = absl::StrCat(where, ".events[", i, "]");
        return BadField(field, absl::StrCat(field, ": ", own, "; a client cannot append them"));
      }
      out.events.push_back(e);
    }
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

}  // namespace ihs::server::internal

#endif  // IHS_SERVER_INTERNAL_SESSION_H_
