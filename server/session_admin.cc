// Session: the admin's calls: erasure, legal hold, backup, status, projection rebuilds
// (server/internal/session.h).
#include "server/internal/session.h"

namespace ihs::server::internal {

kj::Promise<void> Session::Erase(EraseCtx c) {
  store::EventStore* store = &shared_.store;
  std::string party = c.getParams().getParty(), reason = c.getParams().getReason();
  if (c.getParams().getPerson()) {
    return PartyControl(
        c, "erases the whole person of",
        WithIdentity([store, party, reason,
                      by = name_](const projections::StateView& view) -> absl::StatusOr<uint64_t> {
          IHS_ASSIGN_OR_RETURN(auto erased,
                               projections::identity::ErasePerson(*store, view, party, reason, by));
          return erased.first.at(0);
        }));
  }
  return PartyControl(c, "erases", [store, party, reason, by = name_] {
    return store::Erase(*store, party, reason, by);
  });
}

kj::Promise<void> Session::LegalHold(LegalHoldCtx c) {
  store::EventStore* store = &shared_.store;
  std::string party = c.getParams().getParty(), reason = c.getParams().getReason();
  const bool lift = c.getParams().getLift();
  return PartyControl(c, lift ? "lifts the hold on" : "places a legal hold on",
                      [store, party, lift, reason, by = name_] {
                        return store::SetLegalHold(*store, party, lift, reason, by);
                      });
}

kj::Promise<void> Session::Backup(BackupCtx c) {
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

kj::Promise<void> Session::Projections(ProjectionsCtx c) {
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

kj::Promise<void> Session::RebuildProjection(RebuildCtx c) {
  auto result = c.getResults().initResult();
  std::string name = c.getParams().getName();
  absl::Status s = name.empty() ? BadField("name", "name the projection to rebuild") : NeedRunner();
  if (s.ok()) s = shared_.draining ? ShuttingDown() : shared_.runner->StartRebuild(name);
  if (!s.ok()) return Refuse(result, s);
  shared_.Log(absl::StrCat("conn ", conn_->id, " ", conn_->peer, ": rebuilding projection ", name));
  result.setOk();
  return kj::READY_NOW;
}

kj::Promise<void> Session::Status(StatusCtx c) {
  store::EventStore* store = &shared_.store;
  return shared_.reads.Run([store] { return store->Stats(); })
      .then([this, c](absl::StatusOr<store::StoreStats> stats) mutable {
        auto s = c.getResults().initStatus();
        s.setVersion(shared_.options.version);
        if (stats.ok()) {
          s.setEvents(stats->event_count);
          s.setStreams(stats->stream_count);
          s.setDiskBytes(stats->disk_bytes);
          s.setRoot(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(stats->root_hash.data()),
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

}  // namespace ihs::server::internal
