// Subscriptions to segment transitions: a page of the segments projection's feed read on a
// worker, pushed with flow control, the end told to the subscriber. The shape of
// server/subscription.cc, over the feed instead of the log.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "projections/segments/segments.h"
#include "server/internal/shared.h"
#include "server/wire.h"

namespace ihs::server {

namespace sg = projections::segments;

Server::TransitionSubscription::TransitionSubscription(Shared& shared,
                                                       std::shared_ptr<ConnState> conn,
                                                       uint64_t from_seq,
                                                       std::set<std::string> segments,
                                                       rpc::SegmentSubscriber::Client subscriber)
    : shared_(shared),
      conn_(std::move(conn)),
      seq_(from_seq),
      segments_(std::move(segments)),
      subscriber_(kj::mv(subscriber)) {
  shared_.transition_subscriptions.insert(this);
  ++conn_->subscriptions;
  counted_ = true;
  task_ = Step().eagerlyEvaluate([this](kj::Exception&& e) {
    shared_.Log(absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": transition subscription at ",
                             seq_, " ended: ", FromKj(e).message()));
    Uncount();
    release_ = kj::evalLater([this] { task_ = kj::READY_NOW; }).eagerlyEvaluate(nullptr);
  });
}

Server::TransitionSubscription::~TransitionSubscription() { Uncount(); }

void Server::TransitionSubscription::End(const absl::Status& why) {
  TellEnd(why);
  task_ = kj::READY_NOW;
  Uncount();
}

kj::Promise<void> Server::TransitionSubscription::scannedTo(ScannedToContext context) {
  context.getResults().setSeq(seq_);
  return kj::READY_NOW;
}

void Server::TransitionSubscription::Uncount() {
  if (!counted_) return;
  counted_ = false;
  shared_.transition_subscriptions.erase(this);
  --conn_->subscriptions;
}

void Server::TransitionSubscription::TellEnd(const absl::Status& why) {
  auto req = subscriber_.endRequest();
  SetError(req.initError(), why);
  end_ = req.send().ignoreResult().eagerlyEvaluate([](kj::Exception&&) {});
}

kj::Promise<void> Server::TransitionSubscription::Step() {
  projections::Runner* runner = shared_.runner;
  // Taken before the read: a change after it wakes the wait below, so none is missed.
  const uint64_t changes = shared_.segments_watch->Current();
  const uint64_t from = seq_;
  const std::set<std::string>* segments = &segments_;
  using Page = absl::StatusOr<std::shared_ptr<capnp::MallocMessageBuilder>>;
  return shared_.reads
      .Run([runner, from, segments]() -> Page {
        IHS_ASSIGN_OR_RETURN(projections::StateView view, runner->View(sg::kName));
        auto m = std::make_shared<capnp::MallocMessageBuilder>();
        IHS_RETURN_IF_ERROR(sg::ReadTransitions(view, from, *segments, kChunk, kMaxPushBytes, *m));
        return m;
      })
      .then([this, changes](Page page) -> kj::Promise<void> {
        if (!page.ok()) {
          if (absl::IsUnavailable(page.status())) {  // a rebuild after corruption: wait for it
            return shared_.segments_watch->WaitBeyond(changes).then(
                [this](uint64_t) { return Step(); });
          }
          shared_.Log(absl::StrCat("conn ", conn_->id, ": transition subscription read failed: ",
                                   page.status().message()));
          TellEnd(page.status());
          Uncount();
          return kj::READY_NOW;
        }
        auto p = (*page)->getRoot<schema::TransitionPage>().asReader();
        const uint64_t scanned = p.getScannedTo();
        if (scanned == seq_) {
          return shared_.segments_watch->WaitBeyond(changes).then(
              [this](uint64_t) { return Step(); });
        }
        seq_ = scanned;
        if (p.getTransitions().size() == 0) return Step();
        auto req = subscriber_.transitionsRequest();
        req.setTransitions(p.getTransitions());
        req.setScannedTo(scanned);
        // A subscriber that never lets a push through would hold this subscription for ever.
        const absl::Duration timeout = shared_.options.subscriber_timeout;
        kj::Promise<void> stalled =
            shared_.timer.afterDelay(absl::ToInt64Milliseconds(timeout) * kj::MILLISECONDS)
                .then([timeout]() -> kj::Promise<void> {
                  return KJ_EXCEPTION(OVERLOADED,
                                      absl::StrCat("the subscriber let no push through within ",
                                                   absl::FormatDuration(timeout)));
                });
        return req.send().exclusiveJoin(kj::mv(stalled)).then([this, page = *page] {
          return Step();
        });
      });
}

}  // namespace ihs::server
