#include "projections/identity/resolver.h"

#include <capnp/message.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "projections/follower.h"
#include "projections/identity/clues.h"
#include "projections/identity/identity.h"
#include "projections/packed_record.h"

namespace ihs::projections::identity {

namespace {

// Pairs read per pass and links per append.
constexpr size_t kPassLimit = 4096;
constexpr size_t kAppendBatch = 256;

// The resolver's link of a pair as its projection scored it.
void BuildLink(schema::PairScore::Reader pair, schema::Event::Builder e) {
  e.setId(AsData(ResolverEventId(pair.getA(), pair.getB())));
  e.setStreamId(kIdentityStream);
  e.setOccurredAt(pair.getEvidenceAt() != 0 ? pair.getEvidenceAt() : 1);
  e.setSourceSystem(kResolverSource);
  auto l = e.initIdentityLink();
  auto parties = l.initParties(2);
  parties.set(0, pair.getA());
  parties.set(1, pair.getB());
  l.setConfidence(pair.getScore());
  l.setReason(
      absl::StrFormat("identity resolution: score %.2f >= %.2f", pair.getScore(), kLinkThreshold));
  l.setClues(pair.getClues());
}

}  // namespace

Resolver::Resolver(store::EventStore& store, Runner& runner, LogSink* log)
    : store_(store),
      runner_(runner),
      follower_(
          store, runner, kName, "identity resolver", [this]() { return RunOnce().status(); }, log) {
}

Resolver::~Resolver() { Stop(); }

void Resolver::Start() { follower_.Start(); }
void Resolver::Stop() { follower_.Stop(); }

absl::StatusOr<ResolverReport> Resolver::RunOnce() {
  ResolverReport report;
  report.passes = 1;
  IHS_ASSIGN_OR_RETURN(StateView view, runner_.View(kName));
  IHS_ASSIGN_OR_RETURN(auto pending, ListPairs(view, schema::PairState::PENDING, kPassLimit));
  for (size_t from = 0; from < pending.size(); from += kAppendBatch) {
    const size_t to = std::min(pending.size(), from + kAppendBatch);
    std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> scores, links;
    store::StreamAppend append;
    append.stream = kIdentityStream;
    for (size_t i = from; i < to; ++i) {
      auto score = std::make_unique<capnp::MallocMessageBuilder>();
      absl::Status s = ReadPair(view, pending[i].first, pending[i].second, *score);
      if (absl::IsNotFound(s)) continue;
      IHS_RETURN_IF_ERROR(s);
      auto link = std::make_unique<capnp::MallocMessageBuilder>();
      BuildLink(score->getRoot<schema::PairScore>().asReader(), link->initRoot<schema::Event>());
      append.events.push_back(link->getRoot<schema::Event>().asReader());
      scores.push_back(std::move(score));
      links.push_back(std::move(link));
    }
    AppendCount count;
    IHS_RETURN_IF_ERROR(AppendOnce(store_, append, count));
    report.appended += count.appended;
    report.present += count.present;
  }
  return report;
}

absl::StatusOr<ResolverReport> Resolver::RunUntilSettled(int max_passes) {
  ResolverReport total;
  for (int pass = 0; pass < max_passes; ++pass) {
    IHS_RETURN_IF_ERROR(runner_.CatchUp(kName));
    IHS_ASSIGN_OR_RETURN(ResolverReport r, RunOnce());
    total.appended += r.appended;
    total.present += r.present;
    ++total.passes;
    if (r.appended == 0) break;
  }
  return total;
}

}  // namespace ihs::projections::identity
