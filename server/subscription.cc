// Subscriptions: a chunk read on a worker, pushes one at a time, the end told to the subscriber.
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/internal/shared.h"
#include "server/read_wire.h"
#include "server/wire.h"

namespace ihs::server {

Server::Subscription::Subscription(Shared& shared, std::shared_ptr<ConnState> conn, uint64_t from,
                                   OwnedFilter filter, bool open_content,
                                   rpc::Subscriber::Client subscriber)
    : PushLoop(shared, std::move(conn), kj::mv(subscriber)),
      position_(from),
      filter_(std::move(filter)) {
  read_options_.open_content = open_content;
  read_options_.max_bytes = kMaxChunkBytes;
  Run(Step(), [this] { return absl::StrCat("subscription at ", position_); });
}

kj::Promise<void> Server::Subscription::scannedTo(ScannedToContext context) {
  context.getResults().setPosition(position_);
  return kj::READY_NOW;
}

kj::Promise<void> Server::Subscription::Step() {
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

kj::Promise<void> Server::Subscription::Send(std::shared_ptr<std::vector<store::StoredEvent>> chunk,
                                             size_t i) {
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
  return Bounded(req.send()).then([this, chunk, i]() -> kj::Promise<void> {
    if (i == chunk->size()) return kj::READY_NOW;
    return Send(chunk, i);
  });
}

}  // namespace ihs::server
