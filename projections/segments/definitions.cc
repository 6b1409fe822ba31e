#include "projections/segments/definitions.h"

#include <capnp/message.h>
#include <sodium.h>

#include <algorithm>
#include <functional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "projections/packed_record.h"

namespace ihs::projections::segments {

namespace {

constexpr int kAppendTries = 8;  // a concurrent definition makes it check again

const char* OpName(Definitions::Op op) {
  switch (op) {
    case Definitions::Op::kDefine:
      return "define";
    case Definitions::Op::kChange:
      return "change";
    case Definitions::Op::kRetire:
      return "retire";
  }
  return "?";
}

}  // namespace

const Segment* Definitions::Find(const std::string& name) const {
  auto it = segments_.find(name);
  return it == segments_.end() ? nullptr : &it->second;
}

absl::StatusOr<std::string> Definitions::Check(Op op, const std::string& name,
                                               const std::string& rule) const {
  if (!ValidSegmentName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a segment's name is [a-z0-9_]{1,64}, not \"", name, "\""));
  }
  const Segment* s = Find(name);
  const bool live = s != nullptr && s->live();
  if (op == Op::kDefine && live) {
    return absl::AlreadyExistsError(absl::StrCat("segment ", name, " is defined already (version ",
                                                 s->current().version,
                                                 "): change it, or retire it first"));
  }
  if (op != Op::kDefine && !live) {
    return absl::NotFoundError(absl::StrCat(
        "no segment ", name, s != nullptr ? " (it was retired)" : "", " to ", OpName(op)));
  }
  if (s == nullptr && segments_.size() >= kMaxSegments) {
    return absl::InvalidArgumentError(absl::StrCat(
        "there are ", segments_.size(),
        " segments already (retired ones count), the most there can be: change one instead"));
  }
  if (op == Op::kRetire) {
    std::vector<std::string> users;
    for (const auto& [other, seg] : segments_) {
      if (!seg.live() || other == name) continue;
      for (const std::string& n : seg.current().named) {
        if (n == name) users.push_back(other);
      }
    }
    if (!users.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("segment ", name, " is named by ",
                                                     absl::StrJoin(users, ", "),
                                                     ": change or retire them first"));
    }
    return std::string();
  }
  IHS_ASSIGN_OR_RETURN(Rule parsed, ParseRule(rule));
  for (const std::string& n : SegmentsNamed(parsed)) {
    if (n == name) {
      return absl::InvalidArgumentError(
          absl::StrCat("the rule of ", name, " names ", name, " itself"));
    }
    const Segment* other = Find(n);
    if (other == nullptr || !other->live()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the rule names segment ", n, ", which ",
                       other == nullptr ? "does not exist" : "was retired"));
    }
  }
  // A cycle: a path from the segments the rule names back to `name`, through current rules.
  std::vector<std::string> path = {name};
  std::set<std::string> seen;
  std::function<bool(const std::string&)> reaches = [&](const std::string& from) -> bool {
    if (from == name) return true;
    if (!seen.insert(from).second) return false;
    const Segment* seg = Find(from);
    if (seg == nullptr || !seg->live()) return false;
    path.push_back(from);
    for (const std::string& n : seg->current().named) {
      if (reaches(n)) return true;
    }
    path.pop_back();
    return false;
  };
  for (const std::string& n : SegmentsNamed(parsed)) {
    if (reaches(n)) {
      path.push_back(name);
      return absl::InvalidArgumentError(
          absl::StrCat("the rule makes a cycle: ", absl::StrJoin(path, " -> ")));
    }
  }
  return Format(parsed);
}

void Definitions::Apply(const schema::Event::Reader& event) {
  stream_version_ = static_cast<int64_t>(event.getStreamVersion());
  if (!event.isSegmentDefinition()) return;
  auto d = event.getSegmentDefinition();
  const std::string name = d.getName();
  const Segment* s = Find(name);
  const Op op = d.getRetired()              ? Op::kRetire
                : s != nullptr && s->live() ? Op::kChange
                                            : Op::kDefine;
  absl::StatusOr<std::string> rule = Check(op, name, d.getRule());
  if (!rule.ok()) {
    rejected_.push_back({event.getPosition(), name, std::string(rule.status().message())});
    return;
  }
  Segment& seg = segments_[name];
  seg.name = name;
  Version v;
  v.version = static_cast<uint32_t>(seg.versions.size() + 1);
  v.rule = *rule;
  if (!v.rule.empty()) v.named = SegmentsNamed(*ParseRule(v.rule));  // Check parsed it
  v.description = d.getDescription();
  v.retired = d.getRetired();
  v.requested_by = d.getRequestedBy();
  v.position = event.getPosition();
  v.recorded_at = event.getRecordedAt();
  auto id = event.getId();
  v.event_id.assign(reinterpret_cast<const char*>(id.begin()), id.size());
  seg.versions.push_back(std::move(v));
}

absl::StatusOr<Definitions> ReadDefinitions(store::EventStore& store) {
  Definitions d;
  store::ReadOptions ro;
  ro.open_content = false;
  for (uint64_t from = 0;;) {
    absl::StatusOr<std::vector<store::StoredEvent>> read =
        store.ReadStream(store::kSegmentsStream, from, 1000, store::ReadDirection::kForward, ro);
    if (absl::IsNotFound(read.status())) break;  // nothing defined yet
    IHS_ASSIGN_OR_RETURN(std::vector<store::StoredEvent> events, std::move(read));
    if (events.empty()) break;
    for (const store::StoredEvent& e : events) d.Apply(e.event());
    from = events.back().event().getStreamVersion() + 1;
  }
  return d;
}

void ToList(const Definitions& d, const std::string& after, size_t limit,
            schema::SegmentList::Builder out) {
  out.setStreamVersion(d.stream_version());
  std::vector<const Segment*> page;
  for (auto it = d.all().upper_bound(after); it != d.all().end() && page.size() < limit; ++it) {
    page.push_back(&it->second);
  }
  auto segments = out.initSegments(static_cast<unsigned>(page.size()));
  for (unsigned i = 0; i < page.size(); ++i) {
    segments[i].setName(page[i]->name);
    auto versions = segments[i].initVersions(static_cast<unsigned>(page[i]->versions.size()));
    for (unsigned k = 0; k < page[i]->versions.size(); ++k) {
      const Version& v = page[i]->versions[k];
      versions[k].setVersion(v.version);
      versions[k].setRule(v.rule);
      versions[k].setDescription(v.description);
      versions[k].setRetired(v.retired);
      versions[k].setRequestedBy(v.requested_by);
      versions[k].setPosition(v.position);
      versions[k].setRecordedAt(v.recorded_at);
    }
  }
  if (!after.empty()) return;
  // The latest 1,000: a writer's plain appends cannot make the answer grow without bound.
  const size_t n = std::min<size_t>(d.rejected().size(), 1000);
  const size_t skip = d.rejected().size() - n;
  auto rejected = out.initRejected(static_cast<unsigned>(n));
  for (unsigned i = 0; i < n; ++i) {
    const Rejected& r = d.rejected()[skip + i];
    rejected[i].setPosition(r.position);
    rejected[i].setName(r.name);
    rejected[i].setReason(r.reason);
  }
}

absl::StatusOr<Definitions::Op> OpOf(schema::SegmentOp op) {
  switch (op) {
    case schema::SegmentOp::DEFINE:
      return Definitions::Op::kDefine;
    case schema::SegmentOp::CHANGE:
      return Definitions::Op::kChange;
    case schema::SegmentOp::RETIRE:
      return Definitions::Op::kRetire;
    default:
      return absl::InvalidArgumentError("op must be define, change or retire");
  }
}

schema::SegmentOp SchemaOp(Definitions::Op op) {
  switch (op) {
    case Definitions::Op::kDefine:
      return schema::SegmentOp::DEFINE;
    case Definitions::Op::kChange:
      return schema::SegmentOp::CHANGE;
    case Definitions::Op::kRetire:
      return schema::SegmentOp::RETIRE;
  }
  return schema::SegmentOp::UNSPECIFIED;
}

absl::StatusOr<DefineResult> AppendDefinition(store::EventStore& store,
                                              const DefineRequest& request) {
  if (request.requested_by.empty()) {
    return absl::InvalidArgumentError("a definition needs who asked for it (requestedBy)");
  }
  absl::Status last;
  for (int attempt = 0; attempt < kAppendTries; ++attempt) {
    IHS_ASSIGN_OR_RETURN(const Definitions d, ReadDefinitions(store));
    IHS_ASSIGN_OR_RETURN(std::string rule, d.Check(request.op, request.name, request.rule));
    capnp::MallocMessageBuilder m;
    auto e = m.initRoot<schema::Event>();
    std::string id(16, '\0');
    randombytes_buf(id.data(), id.size());
    e.setId(AsData(id));
    e.setStreamId(store::kSegmentsStream);
    e.setOccurredAt(absl::ToUnixMicros(absl::Now()));
    e.setSourceSystem(request.source_system);
    auto def = e.initSegmentDefinition();
    def.setName(request.name);
    def.setRule(rule);
    const Segment* before = d.Find(request.name);
    // A change without a description keeps the one it had.
    def.setDescription(request.op == Definitions::Op::kChange && request.description.empty()
                           ? before->current().description
                           : request.description);
    def.setRetired(request.op == Definitions::Op::kRetire);
    def.setRequestedBy(request.requested_by);
    const store::ExpectedVersion expected =
        d.stream_version() < 0
            ? store::ExpectedVersion::NoStream()
            : store::ExpectedVersion::Exact(static_cast<uint64_t>(d.stream_version()));
    absl::StatusOr<store::AppendResult> res =
        store.Append({store::kSegmentsStream, expected, {e.asReader()}});
    if (res.ok()) {
      DefineResult out;
      out.position = res->positions.at(0);
      out.version = static_cast<uint32_t>(before == nullptr ? 1 : before->versions.size() + 1);
      out.rule = rule;
      return out;
    }
    if (!store::ConflictCurrentVersion(res.status())) return res.status();
    last = res.status();
  }
  return absl::UnavailableError(absl::StrCat(
      "segments are being defined by others at the same time; try again (", last.message(), ")"));
}

}  // namespace ihs::projections::segments
