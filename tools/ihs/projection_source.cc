#include "tools/ihs/projection_source.h"

#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "projections/identity/identity.h"
#include "projections/registry.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"

namespace ihs::tools {
namespace {

// A data directory's projections, run in this process.
class InProcess : public ProjectionSource {
 public:
  InProcess(const Common& c, std::unique_ptr<store::EventStore> store,
            std::unique_ptr<projections::Runner> runner)
      : c_(c), store_(std::move(store)), runner_(std::move(runner)) {}

  absl::StatusOr<std::vector<projections::ProjectionStatus>> Status() override {
    return runner_->Status();
  }

 protected:
  const Common& c_;
  std::unique_ptr<store::EventStore> store_;
  std::unique_ptr<projections::Runner> runner_;
};

// Projections write their state, so on a data directory these commands open the store for
// writing when they can.
class LocalProjections final : public InProcess {
 public:
  using InProcess::InProcess;

  absl::Status Rebuild(const std::string& name, const store::ProgressFn& progress) override {
    return runner_->Rebuild(name, progress);
  }
  absl::Status Read(const std::string& name, const LocalRead& local,
                    const RemoteRead& remote) override {
    (void)remote;
    for (int attempt = 0;; ++attempt) {
      IHS_RETURN_IF_ERROR(CatchUp(name));
      absl::StatusOr<projections::StateView> view = runner_->View(name);
      absl::Status s = view.status();
      if (s.ok()) s = local(*view, store_.get());
      const bool corrupt =
          s.code() == absl::StatusCode::kDataLoss || s.code() == absl::StatusCode::kUnavailable;
      if (!corrupt || attempt > 0) return s;
      std::cerr << "ihs: " << s.message() << "; rebuilding projection " << name << std::endl;
    }
  }

 private:
  absl::Status CatchUp(const std::string& name) {
    Progress progress(absl::StrCat("projection ", name));
    if (c_.json) progress.Disable();
    absl::Status s = runner_->CatchUp(
        name, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
    progress.Finish();
    return s;
  }
};

// A data directory that another process holds (ihsd, as a rule): the store opened read-only,
// and the projections read as that process has written them, without catching up or
// rebuilding, which would write.
class HeldProjections final : public InProcess {
 public:
  using InProcess::InProcess;

  absl::Status Rebuild(const std::string& name, const store::ProgressFn& progress) override {
    (void)progress;
    return absl::UnavailableError(absl::StrCat(
        Held(), ": rebuild through it: ihs projections rebuild ", name, " --connect HOST:PORT"));
  }
  absl::Status Read(const std::string& name, const LocalRead& local,
                    const RemoteRead& remote) override {
    (void)remote;
    for (const projections::ProjectionStatus& st : runner_->Status()) {
      if (st.name != name || st.checkpoint >= st.head || warned_) continue;
      warned_ = true;
      std::cerr << "ihs: " << Held() << "; projection " << name << " as it has written it, at "
                << st.checkpoint << " of the log's " << st.head
                << " events (--connect reads it caught up)" << std::endl;
    }
    IHS_ASSIGN_OR_RETURN(projections::StateView view, runner_->View(name));
    return local(view, store_.get());
  }

 private:
  std::string Held() const {
    return absl::StrCat("another process (ihsd?) holds ", c_.data, " and keeps its projections");
  }

  bool warned_ = false;
};

class RemoteProjections final : public ProjectionSource {
 public:
  explicit RemoteProjections(std::unique_ptr<client::Client> client) : client_(std::move(client)) {}

  absl::StatusOr<std::vector<projections::ProjectionStatus>> Status() override {
    return client_->Projections();
  }

  // Starts the rebuild in ihsd (admin), then follows it through the status until the new
  // generation serves.
  absl::Status Rebuild(const std::string& name, const store::ProgressFn& progress) override {
    IHS_ASSIGN_OR_RETURN(projections::ProjectionStatus before, Find(name));
    IHS_RETURN_IF_ERROR(client_->RebuildProjection(name));
    for (;;) {
      IHS_ASSIGN_OR_RETURN(projections::ProjectionStatus now, Find(name));
      if (now.rebuild_checkpoint) {
        if (progress) progress(*now.rebuild_checkpoint, now.head);
      } else if (now.family != before.family) {
        if (progress) progress(now.checkpoint, now.checkpoint);
        return absl::OkStatus();
      } else {
        // The rebuild ended without a swap (ihsd claims it before answering, so this is not a
        // rebuild that has yet to start).
        return absl::UnavailableError(
            now.error.empty() ? std::string("the rebuild stopped (is ihsd shutting down?)")
                              : now.error);
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  absl::Status Read(const std::string& name, const LocalRead& local,
                    const RemoteRead& remote) override {
    (void)local;
    IHS_ASSIGN_OR_RETURN(const uint64_t head, client_->Head());
    absl::Status s = remote(*client_, head);
    if (s.code() == absl::StatusCode::kUnavailable) {
      // Behind after ihsd's wait (or not serving at all: then this fails the same way).
      std::cerr << "ihs: projection " << name << " has not reached the log's head " << head
                << "; reading it as it is" << std::endl;
      s = remote(*client_, 0);
    }
    return s;
  }

 private:
  absl::StatusOr<projections::ProjectionStatus> Find(const std::string& name) {
    IHS_ASSIGN_OR_RETURN(auto all, client_->Projections());
    std::vector<std::string> names;
    for (const projections::ProjectionStatus& st : all) {
      if (st.name == name) return st;
      names.push_back(st.name);
    }
    return absl::NotFoundError(absl::StrCat("no projection named \"", name,
                                            "\" (there are: ", absl::StrJoin(names, ", "), ")"));
  }

  std::unique_ptr<client::Client> client_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ProjectionSource>> OpenProjections(const Common& c) {
  IHS_RETURN_IF_ERROR(CheckWhere(c));
  if (!c.connect.empty()) {
    IHS_ASSIGN_OR_RETURN(auto client, Connect(c));
    return std::unique_ptr<ProjectionSource>(new RemoteProjections(std::move(client)));
  }
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, /*write=*/true);
  if (absl::IsFailedPrecondition(st.status()) &&
      absl::StrContains(st.status().message(), "already open by another process")) {
    // The store's lock is held: read beside its holder, read-only.
    absl::StatusOr<std::unique_ptr<store::EventStore>> ro = OpenStore(c, /*write=*/false);
    if (!ro.ok()) return OpenFailure(st.status());
    absl::StatusOr<std::unique_ptr<projections::Runner>> runner =
        projections::Runner::Open(ro->get(), projections::AllProjections());
    if (!runner.ok()) {
      return absl::UnavailableError(absl::StrCat(
          st.status().message(), "; its projections cannot be read beside it (",
          runner.status().message(), "): give --connect HOST:PORT of the ihsd that holds it"));
    }
    return std::unique_ptr<ProjectionSource>(
        new HeldProjections(c, std::move(*ro), std::move(*runner)));
  }
  if (!st.ok()) return OpenFailure(st.status());
  IHS_ASSIGN_OR_RETURN(auto runner,
                       projections::Runner::Open(st->get(), projections::AllProjections()));
  return std::unique_ptr<ProjectionSource>(
      new LocalProjections(c, std::move(*st), std::move(runner)));
}

nlohmann::json ProjectionStatusJson(const projections::ProjectionStatus& st) {
  nlohmann::json j = {{"name", st.name},
                      {"version", st.version},
                      {"family", st.family},
                      {"state", st.state},
                      {"checkpoint", st.checkpoint},
                      {"head", st.head},
                      {"lagEvents", st.lag_events},
                      {"lagSeconds", st.lag_seconds},
                      {"eventsPerSecond", st.events_per_second}};
  if (!st.error.empty()) j["error"] = st.error;
  if (st.rebuild_checkpoint) j["rebuildCheckpoint"] = *st.rebuild_checkpoint;
  return j;
}

absl::StatusOr<std::optional<PersonOfStream>> PersonOf(ProjectionSource& source,
                                                       const std::string& stream) {
  capnp::MallocMessageBuilder m;
  absl::Status s = source.Read(
      projections::identity::kName,
      [&](const projections::StateView& view, store::EventStore*) {
        return projections::identity::ReadPerson(view, stream, m);
      },
      [&](client::Client& client, uint64_t min) { return client.Person(stream, min, m); });
  if (absl::IsNotFound(s)) return std::nullopt;
  IHS_RETURN_IF_ERROR(s);
  PersonOfStream p;
  auto person = m.getRoot<schema::Person>().asReader();
  p.id = person.getId().cStr();
  for (auto x : person.getStreams()) p.streams.emplace_back(x.cStr());
  return p;
}

int RunAppender(const Common& c, const std::string& projection, const std::string& refusal,
                const std::string& noun,
                const std::function<absl::StatusOr<AppenderReport>(store::EventStore&,
                                                                   projections::Runner&)>& settle) {
  if (!c.connect.empty()) return Fail(absl::InvalidArgumentError(refusal));
  absl::StatusOr<std::unique_ptr<store::EventStore>> st = OpenStore(c, /*write=*/true);
  if (!st.ok()) return FailOpen(st.status());
  auto runner = projections::Runner::Open(st->get(), projections::AllProjections());
  if (!runner.ok()) return Fail(runner.status());
  Progress progress(absl::StrCat("projection ", projection));
  if (c.json) progress.Disable();
  absl::Status caught = (*runner)->CatchUp(
      projection, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!caught.ok()) return Fail(caught);
  absl::StatusOr<AppenderReport> r = settle(**st, **runner);
  if (!r.ok()) return Fail(r.status());
  if (c.json) {
    std::cout << JsonLine(
                     {{"appended", r->appended}, {"present", r->present}, {"passes", r->passes}})
              << "\n";
  } else {
    std::cout << r->appended << " " << noun << " appended (" << r->present
              << " were in the log already), " << r->passes << " passes\n";
  }
  return kExitOk;
}

}  // namespace ihs::tools
