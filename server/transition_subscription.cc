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
    : PushLoop(shared, std::move(conn), kj::mv(subscriber)),
      seq_(from_seq),
      segments_(std::make_shared<const std::set<std::string>>(std::move(segments))) {
  Run(Step(), [this] { return absl::StrCat("transition subscription at ", seq_); });
}

kj::Promise<void> Server::TransitionSubscription::scannedTo(ScannedToContext context) {
  context.getResults().setSeq(seq_);
  return kj::READY_NOW;
}

kj::Promise<void> Server::TransitionSubscription::Step() {
  projections::Runner* runner = shared_.runner;
  // Taken before the read: a change after it wakes the wait below, so none is missed.
  const uint64_t changes = shared_.segments_watch->Current();
  const uint64_t from = seq_;
  std::shared_ptr<const std::set<std::string>> segments = segments_;
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
        return Bounded(req.send()).then([this, page = *page] { return Step(); });
      });
}

}  // namespace ihs::server
