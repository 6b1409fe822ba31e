#include "projections/community/bands.h"

#include <capnp/message.h>

#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/big_endian.h"
#include "common/status_macros.h"
#include "projections/community/community.h"
#include "projections/community/state.h"
#include "projections/packed_record.h"
#include "projections/segments/definitions.h"
#include "projections/segments/evaluate.h"

namespace ihs::projections::community {

namespace {

constexpr size_t kAppendBatch = 256;

// The index a measure ranks by, how many persons it holds, and its figures' scale (the reach
// index holds whole numbers, the others thousandths).
struct Index {
  std::string prefix;
  uint64_t ranked = 0;
  double scale = 1;
};

Index IndexOf(const std::string& measure, const Counters& c) {
  if (measure == "standing") return {"Q", c.standing_persons, 1000};
  if (measure == "value") return {"V", c.value_persons, 1000};
  if (measure == "risk") return {"K", c.risk_persons, 1000};
  return {"R", c.persons, 1};
}

}  // namespace

absl::Status ForEachInside(const StateView& view, const segments::Condition& c,
                           const std::function<void(const Inside&)>& visit) {
  IHS_ASSIGN_OR_RETURN(Counters counters, LoadCounters(view));
  const Index index = IndexOf(c.values.at(0), counters);
  uint64_t rank = 0;
  return view.Scan(
      index.prefix, PrefixEnd(index.prefix), [&](absl::string_view key, absl::string_view) {
        Inside in;
        in.rank = ++rank;
        in.ranked = index.ranked;
        in.figure = static_cast<double>(~GetBigEndian64(key.data() + 1)) / index.scale;
        // In the top P% when no more than P% of the persons are at or ahead of it.
        const bool inside =
            c.top
                ? 100.0 * static_cast<double>(rank) <= c.number * static_cast<double>(index.ranked)
                : (c.cmp == segments::Cmp::kGt ? in.figure > c.number : in.figure >= c.number);
        if (!inside) return false;  // the index is best first: no one further is
        in.person = std::string(key.substr(9));
        visit(in);
        return true;
      });
}

std::string BandEventId(const std::string& clause, const std::string& party, uint64_t n) {
  return DerivedEventId("ihs-community/band/v1", {clause, party, BigEndian64(n)});
}

BandAppender::BandAppender(store::EventStore& store, Runner& runner, LogSink* log)
    : store_(store),
      runner_(runner),
      follower_(
          store, runner, kName, "community band appender", [this]() { return RunOnce().status(); },
          log) {}

void BandAppender::Start() { follower_.Start(); }
void BandAppender::Stop() { follower_.Stop(); }

absl::StatusOr<const std::vector<segments::Condition>*> BandAppender::Clauses() {
  absl::StatusOr<store::StreamInfo> info = store_.GetStreamInfo(store::kSegmentsStream);
  if (!info.ok() && !absl::IsNotFound(info.status())) return info.status();
  const int64_t version = info.ok() ? static_cast<int64_t>(info->current_version) : -1;
  if (version == segments_version_) return &clauses_;
  IHS_ASSIGN_OR_RETURN(const segments::Definitions defs, segments::ReadDefinitions(store_));
  std::map<std::string, segments::Condition> by_clause;
  for (const auto& [name, segment] : defs.all()) {
    if (!segment.live()) continue;
    absl::StatusOr<segments::Rule> rule = segments::ParseRule(segment.current().rule);
    if (!rule.ok()) continue;  // the fold refused it: no segment keeps it
    std::vector<const segments::Condition*> conditions;
    segments::Conditions(*rule, &conditions);
    for (const segments::Condition* c : conditions) {
      if (c->kind == segments::Condition::Kind::kCommunity) by_clause[Format(*c)] = *c;
    }
  }
  clauses_.clear();
  for (auto& [clause, c] : by_clause) clauses_.push_back(std::move(c));
  segments_version_ = version;
  return &clauses_;
}

absl::StatusOr<BandReport> BandAppender::RunOnce() {
  BandReport report;
  report.passes = 1;
  IHS_ASSIGN_OR_RETURN(const std::vector<segments::Condition>* clauses, Clauses());
  report.clauses = clauses->size();
  if (clauses->empty()) return report;
  IHS_ASSIGN_OR_RETURN(StateView view, runner_.View(kName));
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> built;
  store::StreamAppend append;
  append.stream = store::kCommunityStream;
  auto flush = [&]() -> absl::Status {
    AppendCount count;
    IHS_RETURN_IF_ERROR(AppendOnce(store_, append, count));
    report.appended += count.appended;
    report.present += count.present;
    append.events.clear();
    built.clear();
    return absl::OkStatus();
  };
  const int64_t now = absl::ToUnixMicros(absl::Now());
  for (const segments::Condition& c : *clauses) {
    const std::string clause = segments::Format(c);
    // What the log says now (the projection's fold of the earlier band events), and what the
    // figures say.
    std::map<std::string, BandRec> published;
    absl::Status bad;
    const std::string prefix = BandPrefix(clause);
    IHS_RETURN_IF_ERROR(
        view.Scan(prefix, PrefixEnd(prefix), [&](absl::string_view key, absl::string_view v) {
          absl::StatusOr<BandRec> b = DecodeBand(v);
          if (!b.ok()) {
            bad = b.status();
            return false;
          }
          published[std::string(key.substr(prefix.size()))] = *b;
          return true;
        }));
    IHS_RETURN_IF_ERROR(bad);
    std::map<std::string, Inside> inside;
    IHS_RETURN_IF_ERROR(
        ForEachInside(view, c, [&](const Inside& in) { inside.emplace(in.person, in); }));
    auto add = [&](const std::string& party, const BandRec& was, const Inside* in) {
      auto m = std::make_unique<capnp::MallocMessageBuilder>();
      auto e = m->initRoot<schema::Event>();
      e.setId(AsData(BandEventId(clause, party, was.count)));
      e.setStreamId(store::kCommunityStream);
      e.setOccurredAt(now);
      e.setSourceSystem(kBandSource);
      auto b = e.initCommunityBand();
      b.setParty(party);
      b.setClause(clause);
      b.setInside(in != nullptr);
      if (in != nullptr) {
        b.setFigure(in->figure);
        b.setRank(in->rank);
        b.setRanked(in->ranked);
      }
      append.events.push_back(m->getRoot<schema::Event>().asReader());
      built.push_back(std::move(m));
    };
    for (const auto& [party, in] : inside) {
      auto it = published.find(party);
      const BandRec was = it == published.end() ? BandRec{} : it->second;
      if (!was.inside) add(party, was, &in);
      if (append.events.size() >= kAppendBatch) IHS_RETURN_IF_ERROR(flush());
    }
    for (const auto& [party, was] : published) {
      if (was.inside && inside.count(party) == 0) add(party, was, nullptr);
      if (append.events.size() >= kAppendBatch) IHS_RETURN_IF_ERROR(flush());
    }
    IHS_RETURN_IF_ERROR(flush());
  }
  return report;
}

absl::StatusOr<BandReport> BandAppender::RunUntilSettled(int max_passes) {
  BandReport total;
  for (int pass = 0; pass < max_passes; ++pass) {
    IHS_RETURN_IF_ERROR(runner_.CatchUp(kName));
    IHS_ASSIGN_OR_RETURN(BandReport r, RunOnce());
    total.appended += r.appended;
    total.present += r.present;
    total.clauses = r.clauses;
    ++total.passes;
    if (r.appended == 0) break;
  }
  return total;
}

}  // namespace ihs::projections::community
