// Session: reads and appends of the log, and subscriptions (server/internal/session.h).
#include "server/internal/session.h"

namespace ihs::server::internal {

kj::Promise<void> Session::ReadStream(ReadStreamCtx c) {
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

kj::Promise<void> Session::ReadAll(ReadAllCtx c) {
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

kj::Promise<void> Session::StreamInfo(StreamInfoCtx c) {
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

kj::Promise<void> Session::Head(HeadCtx c) {
  c.getResults().setHead(shared_.store.Head());
  return kj::READY_NOW;
}

kj::Promise<void> Session::Append(AppendCtx c) {
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

kj::Promise<void> Session::AppendMulti(AppendMultiCtx c) {
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
  return shared_.appends.Run([store, msg, a = std::move(appends)] { return store->AppendMulti(a); })
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

absl::Status Session::CheckSubscriptionLimits() const {
  if (shared_.draining) return ShuttingDown();
  if (conn_->subscriptions >= shared_.options.max_subscriptions_per_connection) {
    return absl::ResourceExhaustedError(absl::StrCat(
        conn_->subscriptions, " subscriptions run on this connection (the limit): end one first"));
  }
  if (shared_.subscriptions.size() >= shared_.options.max_subscriptions) {
    return absl::ResourceExhaustedError(
        absl::StrCat(shared_.subscriptions.size(),
                     " subscriptions run on this server (the limit): try again later"));
  }
  return absl::OkStatus();
}

kj::Promise<void> Session::Subscribe(SubscribeCtx c) {
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
  if (bad.ok()) {
    // A store with no single log (a node of a cluster) cannot be followed: it says so here,
    // instead of a subscription that would never deliver. Reading nothing costs nothing.
    absl::Status whole = shared_.store.ReadAll(head, 0).status();
    if (absl::IsUnimplemented(whole)) bad = whole;
  }
  if (bad.ok()) bad = CheckSubscriptionLimits();
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

}  // namespace ihs::server::internal
