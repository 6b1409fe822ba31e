// EventStoreImpl's write path: checks and canonical bytes on the caller's thread, then the
// group-commit leader (docs/impl.md "The write path").
#include <capnp/message.h>
#include <capnp/schema.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/big_endian.h"
#include "common/mutex.h"
#include "common/status_macros.h"
#include "common/time_math.h"
#include "common/utf8.h"
#include "schema/json.h"
#include "store/event_store_impl.h"
#include "store/internal/codec.h"
#include "store/internal/impl_parts.h"
#include "store/internal/rocks_status.h"

namespace ihs::store {

using internal::DataKey;
using internal::FromRocksStatus;
using internal::Hash;
using internal::Hex;
using internal::S;
using internal::StreamMeta;
using internal::ToView;
using internal::ValidateStreamId;

namespace {

// One group writes at most this many events (and so holds at most this much in one batch).
constexpr size_t kMaxGroupEvents = 20000;

bool AllZero(absl::string_view s) { return s.find_first_not_of('\0') == absl::string_view::npos; }

// The highest enumerant this build knows, so that a number from a newer client is refused.
template <typename E>
bool KnownEnumerant(E value) {
  auto enumerants = capnp::Schema::from<E>().getEnumerants();
  return static_cast<uint16_t>(value) > 0 && static_cast<uint16_t>(value) < enumerants.size();
}

// What the store can check of a definition; the rule's meaning is the segments projection's
// (projections/segments/definitions.h).
absl::Status ValidateSegmentDefinition(absl::string_view stream,
                                       schema::SegmentDefinition::Reader d) {
  if (stream != kSegmentsStream) {
    return absl::InvalidArgumentError(absl::StrCat("a segmentDefinition goes on the stream \"",
                                                   kSegmentsStream, "\", not \"", stream, "\""));
  }
  const absl::string_view name = ToView(d.getName());
  const bool name_ok =
      !name.empty() && name.size() <= 64 &&
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == absl::string_view::npos;
  if (!name_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segmentDefinition.name \"", absl::CHexEscape(name), "\" is not [a-z0-9_]{1,64}"));
  }
  if (d.getRetired() != (d.getRule().size() == 0)) {
    return absl::InvalidArgumentError(
        "segmentDefinition: a definition has a rule, a retirement has none");
  }
  if (d.getRule().size() > kMaxSegmentRuleBytes) {
    return absl::InvalidArgumentError(absl::StrCat("segmentDefinition.rule has ",
                                                   d.getRule().size(), " bytes; at most ",
                                                   kMaxSegmentRuleBytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateTouchpoint(schema::Touchpoint::Reader tp) {
  if (!KnownEnumerant(tp.getChannel())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "touchpoint.channel ", static_cast<int>(tp.getChannel()), " is missing or unknown"));
  }
  if (!KnownEnumerant(tp.getDirection())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "touchpoint.direction ", static_cast<int>(tp.getDirection()), " is missing or unknown"));
  }
  if (!KnownEnumerant(tp.getType())) {
    return absl::InvalidArgumentError(
        absl::StrCat("touchpoint.type ", static_cast<int>(tp.getType()), " is missing or unknown"));
  }
  float s = tp.getSentiment();
  if (!std::isnan(s) && !(s >= -1.0f && s <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("touchpoint.sentiment ", s, " is outside [-1, 1]"));
  }
  if (tp.hasInReplyTo() && tp.getInReplyTo().size() != 16) {
    return absl::InvalidArgumentError("touchpoint.inReplyTo must be a 16-byte event id");
  }
  if (tp.hasCorrects() && tp.getCorrects().size() != 16) {
    return absl::InvalidArgumentError("touchpoint.corrects must be a 16-byte event id");
  }
  bool corrects_needed = tp.getType() == schema::TouchpointType::CORRECTION ||
                         tp.getType() == schema::TouchpointType::RETRACTION;
  if (corrects_needed && !tp.hasCorrects()) {
    return absl::InvalidArgumentError(
        "touchpoint.corrects is required for a correction or retraction");
  }
  return absl::OkStatus();
}

const char* ControlKindName(schema::Event::Which kind) {
  switch (kind) {
    case schema::Event::ERASURE_REQUEST:
      return "erasureRequest";
    case schema::Event::LEGAL_HOLD:
      return "legalHold";
    case schema::Event::CONTENT_EXPIRY:
      return "contentExpiry";
    default:
      return "retentionRun";
  }
}

// Whether an append may go ahead given the stream's hold and erasure: an erasure or hold
// (`control`, one event of `kind`) checks its party's state; content is refused after erasure.
absl::Status CheckPartyState(absl::string_view stream, bool control, schema::Event::Which kind,
                             bool lift, bool any_content, const std::optional<StreamMeta>& meta) {
  if (!control) {
    if (any_content && meta && meta->erased_position) {
      return absl::FailedPreconditionError(
          absl::StrCat("party ", stream, " was erased (position ", *meta->erased_position,
                       "): its new events cannot carry personal content"));
    }
    return absl::OkStatus();
  }
  if (kind == schema::Event::RETENTION_RUN) return absl::OkStatus();  // "$retention": any state
  if (!meta) return absl::NotFoundError(absl::StrCat("no such party: ", stream));
  if (kind == schema::Event::CONTENT_EXPIRY && meta->hold_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " is under legal hold (placed at position ",
                     *meta->hold_position, "): its content does not expire"));
  }
  if (meta->erased_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " was already erased (position ", *meta->erased_position,
                     kind == schema::Event::ERASURE_REQUEST ? ")" : "): there is nothing to hold"));
  }
  if (kind == schema::Event::ERASURE_REQUEST && meta->hold_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " is under legal hold (placed at position ",
                     *meta->hold_position, "): lift the hold before erasing"));
  }
  if (kind == schema::Event::LEGAL_HOLD && !lift && meta->hold_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " is already under legal hold (placed at position ",
                     *meta->hold_position, ")"));
  }
  if (kind == schema::Event::LEGAL_HOLD && lift && !meta->hold_position) {
    return absl::FailedPreconditionError(
        absl::StrCat("party ", stream, " is not under legal hold"));
  }
  return absl::OkStatus();
}

absl::Status Conflict(absl::string_view stream, const ExpectedVersion& expected, int64_t current) {
  return VersionConflictError(
      absl::StrCat("append to stream ", stream, ": expected version ", expected.ToString(),
                   ", but the current version is ",
                   current < 0 ? std::string("none (no stream yet)") : absl::StrCat(current)),
      current);
}

}  // namespace

namespace internal {

absl::Status ValidateStreamId(absl::string_view stream) {
  if (stream.empty()) return absl::InvalidArgumentError("stream id is missing");
  if (stream.size() > kMaxStreamIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream id is ", stream.size(), " bytes; the limit is ", kMaxStreamIdBytes));
  }
  for (char c : stream) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat("stream id \"", absl::CHexEscape(stream),
                                                     "\" contains a control character"));
    }
  }
  if (const size_t bad = FindInvalidUtf8(stream); bad != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream id \"", absl::CHexEscape(stream), "\" is not UTF-8 (byte ", bad, ")"));
  }
  return absl::OkStatus();
}

}  // namespace internal

namespace {

// Whether a content_keys row (internal::ContentKeyRow) is one of `stream`'s.
bool RowOfStream(absl::string_view row, absl::string_view stream) {
  return absl::StartsWith(row, stream) &&
         (row.size() == stream.size() || row[stream.size()] == '\0');
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Append: caller-thread preparation.

absl::Status EventStoreImpl::PrepareEvent(const StreamAppend& append, size_t index, bool control,
                                          PreparedEvent* out) const {
  schema::Event::Reader in = append.events[index];
  auto fail = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("append to stream ", append.stream, ", event ",
                                               index, ": ", s.message()));
  };
  capnp::MessageSize size{0, 0};
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { size = in.totalSize(); })) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("malformed message: ", e->getDescription().cStr())));
  }
  const uint64_t words = size.wordCount;
  // An event holds no capability (the schema has none); one in an unknown pointer field, sent
  // over RPC, would make the canonical encoding throw.
  if (size.capCount != 0) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("the event carries ", size.capCount, " capabilities; an event holds none")));
  }
  if (std::string problem = internal::EventShapeProblem(in); !problem.empty()) {
    return fail(absl::InvalidArgumentError(absl::StrCat("malformed message: ", problem)));
  }
  if (std::string problem = internal::EventTextProblem(in); !problem.empty()) {
    return fail(absl::InvalidArgumentError(problem));
  }
  if (!in.hasId() || in.getId().size() != 16 || AllZero(ToView(in.getId()))) {
    return fail(absl::InvalidArgumentError("id must be 16 bytes, not all zero"));
  }
  if (in.hasStreamId() && ToView(in.getStreamId()) != append.stream) {
    return fail(absl::InvalidArgumentError(absl::StrCat("streamId \"", ToView(in.getStreamId()),
                                                        "\" differs from the stream appended to")));
  }
  if (in.getRecordedAt() != 0 || in.getPosition() != 0 || in.getStreamVersion() != 0 ||
      in.hasSealedContent()) {
    return fail(absl::InvalidArgumentError(
        "recordedAt, position, streamVersion and sealedContent are set by the store"));
  }
  if (in.getOccurredAt() == 0) return fail(absl::InvalidArgumentError("occurredAt is missing"));
  if (in.getOccurredAt() != ClampTime(in.getOccurredAt())) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("occurredAt ", in.getOccurredAt(), " is outside the years 1 to 9999 (",
                     kEarliestTime, " to ", kLatestTime, " µs since the epoch)")));
  }
  switch (in.which()) {
    case schema::Event::TOUCHPOINT: {
      absl::Status s = ValidateTouchpoint(in.getTouchpoint());
      if (!s.ok()) return fail(s);
      break;
    }
    case schema::Event::PARTY_PROFILE:
      if (!KnownEnumerant(in.getPartyProfile().getKind())) {
        return fail(absl::InvalidArgumentError("partyProfile.kind is missing or unknown"));
      }
      break;
    case schema::Event::IDENTITY_LINK: {
      auto parties = in.getIdentityLink().getParties();
      if (parties.size() < 2) {
        return fail(absl::InvalidArgumentError("identityLink needs at least two parties"));
      }
      for (uint32_t i = 0; i < parties.size(); ++i) {
        if (parties[i].size() == 0) {
          return fail(
              absl::InvalidArgumentError(absl::StrCat("identityLink.parties[", i, "] is empty")));
        }
        for (uint32_t j = 0; j < i; ++j) {
          if (parties[i] == parties[j]) {
            return fail(absl::InvalidArgumentError(
                absl::StrCat("identityLink names the stream \"", parties[i].cStr(), "\" twice")));
          }
        }
      }
      break;
    }
    case schema::Event::SEGMENT_DEFINITION: {
      absl::Status s = ValidateSegmentDefinition(append.stream, in.getSegmentDefinition());
      if (!s.ok()) return fail(s);
      break;
    }
    case schema::Event::COMMUNITY_BAND: {
      auto b = in.getCommunityBand();
      if (append.stream != kCommunityStream) {
        return fail(absl::InvalidArgumentError(absl::StrCat("a communityBand goes on the stream \"",
                                                            kCommunityStream, "\", not \"",
                                                            append.stream, "\"")));
      }
      if (b.getParty().size() == 0 || b.getClause().size() == 0) {
        return fail(absl::InvalidArgumentError("communityBand needs a party and a clause"));
      }
      if (b.getClause().size() > kMaxSegmentRuleBytes) {
        return fail(absl::InvalidArgumentError(
            absl::StrCat("communityBand.clause has ", b.getClause().size(), " bytes; at most ",
                         kMaxSegmentRuleBytes)));
      }
      break;
    }
    case schema::Event::CONTENT_ACCESS: {
      if (append.stream != kAccessStream) {
        return fail(absl::InvalidArgumentError(absl::StrCat("a contentAccess goes on the stream \"",
                                                            kAccessStream, "\", not \"",
                                                            append.stream, "\"")));
      }
      auto a = in.getContentAccess();
      if (a.getParty().size() == 0 || a.getReadBy().size() == 0) {
        return fail(absl::InvalidArgumentError("contentAccess needs a party and readBy"));
      }
      break;
    }
    case schema::Event::ERASURE_REQUEST:
    case schema::Event::LEGAL_HOLD:
    case schema::Event::CONTENT_EXPIRY:
    case schema::Event::RETENTION_RUN:
      if (!control) {
        return fail(absl::InvalidArgumentError(absl::StrCat(
            ControlKindName(in.which()),
            " events are made by `ihs erase`, `ihs hold` and `ihs retention run` (RPC: "
            "Admin.erase, Admin.hold), which check and change the party's data keys and hold "
            "with them; a plain append cannot carry them")));
      }
      out->lift = in.which() == schema::Event::LEGAL_HOLD && in.getLegalHold().getLift();
      if (in.which() == schema::Event::CONTENT_EXPIRY) {
        for (auto c : in.getContentExpiry().getExpired()) {
          out->expired_versions.push_back(
              internal::ClassKeyVersionOfYear(static_cast<uint16_t>(c.getChannel()),
                                              static_cast<uint16_t>(c.getType()), c.getYear()));
        }
      }
      break;
    case schema::Event::UNSPECIFIED:
    default:
      return fail(absl::InvalidArgumentError(
          "event type is missing or unknown (one of touchpoint, partyProfile, identityLink, "
          "segmentDefinition, communityBand)"));
  }
  if (control && in.hasContent()) {
    return fail(absl::InvalidArgumentError("an erasure or hold carries no content"));
  }
  out->kind = in.which();

  // Sized to the event (plus room for the sealed content and store fields), so the copy does
  // not zero capnp's default 8 KiB first segment per event.
  out->message =
      std::make_unique<capnp::MallocMessageBuilder>(static_cast<unsigned>(words + 32 + words / 2));
  out->message->setRoot(in);
  auto root = out->message->getRoot<schema::Event>();
  root.setStreamId(append.stream);
  std::string canonical = internal::CanonicalBytes(root.asReader());
  if (canonical.size() > kMaxEventBytes) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("event is ", canonical.size(), " bytes; the limit is ", kMaxEventBytes)));
  }
  out->id = std::string(ToView(in.getId()));
  out->digest = internal::KeyedDigest(digest_key_, canonical);
  out->occurred_at = in.getOccurredAt();
  if (in.hasContent()) {
    out->has_content = true;
    out->content = internal::CanonicalBytes(in.getContent());
    const bool tp = in.isTouchpoint();
    out->key_version = internal::ClassKeyVersion(
        tp ? static_cast<uint16_t>(in.getTouchpoint().getChannel()) : 0,
        tp ? static_cast<uint16_t>(in.getTouchpoint().getType()) : 0, in.getOccurredAt());
  }
  return absl::OkStatus();
}

std::string EventStoreImpl::NextNonce() {
  std::string nonce = nonce_prefix_;
  PutBigEndian64(&nonce, nonce_counter_.fetch_add(1, std::memory_order_relaxed));
  return nonce;
}

absl::StatusOr<std::vector<EventStoreImpl::PreparedAppend>> EventStoreImpl::Prepare(
    const std::vector<StreamAppend>& appends, bool control) {
  if (appends.empty()) return absl::InvalidArgumentError("append of no streams");
  size_t total = 0;
  absl::flat_hash_set<absl::string_view> streams;
  absl::flat_hash_set<std::string> ids;
  std::vector<PreparedAppend> out;
  out.reserve(appends.size());
  for (const StreamAppend& a : appends) {
    IHS_RETURN_IF_ERROR(ValidateStreamId(a.stream));
    if (!streams.insert(a.stream).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("stream ", a.stream, " appears twice in one multi-stream append"));
    }
    if (a.events.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("append to stream ", a.stream, ": no events (empty batch)"));
    }
    total += a.events.size();
    if (total > kMaxEventsPerAppend) {
      return absl::InvalidArgumentError(absl::StrCat("append of more than ", kMaxEventsPerAppend,
                                                     " events; split it into several"));
    }
    PreparedAppend pa{&a, {}, control};
    pa.events.resize(a.events.size());
    for (size_t i = 0; i < a.events.size(); ++i) {
      IHS_RETURN_IF_ERROR(PrepareEvent(a, i, control, &pa.events[i]));
      if (!ids.insert(pa.events[i].id).second) {
        return absl::InvalidArgumentError(absl::StrCat("append to stream ", a.stream, ", event ", i,
                                                       ": id ", Hex(pa.events[i].id),
                                                       " appears twice in one append"));
      }
    }
    // Seal here, in parallel with other callers, where the stream has the data key already.
    for (PreparedEvent& e : pa.events) {
      if (!e.has_content) continue;
      IHS_ASSIGN_OR_RETURN(std::optional<DataKey> key, DataKeyForRead(a.stream, e.key_version));
      if (!key) continue;
      e.sealed = internal::SealContent(*key, NextNonce(), e.id + a.stream, e.content);
      e.sealed_with = *key;
    }
    out.push_back(std::move(pa));
  }
  return out;
}

absl::StatusOr<AppendResult> EventStoreImpl::Append(const StreamAppend& append) {
  IHS_ASSIGN_OR_RETURN(std::vector<AppendResult> r, AppendMulti({append}));
  return std::move(r[0]);
}

absl::StatusOr<AppendResult> EventStoreImpl::AppendMarked(const StreamAppend& append,
                                                          absl::string_view mark_key,
                                                          absl::string_view mark_value) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("store is open for reading only");
  }
  if (mark_key.empty() || mark_key.size() > 128 || mark_value.size() > 4096) {
    return absl::InvalidArgumentError("a mark's key is 1 to 128 bytes and its value at most 4 KiB");
  }
  const std::pair<std::string, std::string> mark(internal::MarkKey(mark_key), mark_value);
  const std::vector<StreamAppend> appends = {append};  // the prepared appends point into it
  IHS_ASSIGN_OR_RETURN(std::vector<PreparedAppend> prepared, Prepare(appends, /*control=*/false));
  IHS_ASSIGN_OR_RETURN(std::vector<AppendResult> r, Commit(prepared, &mark));
  return std::move(r[0]);
}

absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> EventStoreImpl::AppendEach(
    const std::vector<OrderedAppend>& appends) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("store is open for reading only");
  }
  std::vector<absl::StatusOr<AppendResult>> results(appends.size(), AppendResult{});
  // Each append is prepared from a vector of its own, which its prepared form points into.
  std::vector<std::vector<StreamAppend>> singles(appends.size());
  std::vector<std::vector<PreparedAppend>> prepared(appends.size());
  std::vector<std::pair<std::string, std::string>> marks(appends.size());
  std::vector<Writer> writers(appends.size());
  std::vector<Writer*> group;
  std::vector<size_t> index;  // group member → appends index
  for (size_t i = 0; i < appends.size(); ++i) {
    const OrderedAppend& a = appends[i];
    if (a.mark_key.size() > 128 || a.mark_value.size() > 4096) {
      results[i] =
          absl::InvalidArgumentError("a mark's key is 1 to 128 bytes and its value at most 4 KiB");
      continue;
    }
    singles[i].push_back(a.append);
    absl::StatusOr<std::vector<PreparedAppend>> p = Prepare(singles[i], /*control=*/false);
    if (!p.ok()) {
      results[i] = p.status();
      continue;
    }
    prepared[i] = *std::move(p);
    Writer& w = writers[i];
    w.appends = &prepared[i];
    for (const auto& pa : prepared[i]) w.event_count += pa.events.size();
    w.recorded_at = std::max<int64_t>(a.recorded_at, 1);
    if (!a.mark_key.empty()) {
      marks[i] = {internal::MarkKey(a.mark_key), a.mark_value};
      w.mark = &marks[i];
    }
    group.push_back(&w);
    index.push_back(i);
  }
  if (!group.empty()) {
    CommitAlone(group);
    for (size_t j = 0; j < group.size(); ++j) {
      absl::StatusOr<std::vector<AppendResult>>& r = group[j]->result;
      if (!r.ok() && r.status().code() == absl::StatusCode::kUnavailable) return r.status();
      if (r.ok()) {
        results[index[j]] = std::move((*r)[0]);
      } else {
        results[index[j]] = r.status();
      }
    }
  }
  return results;
}

void EventStoreImpl::CommitAlone(std::vector<Writer*>& group) {
  // The first writer queues as any writer does; once it leads, it commits the group it brought,
  // not the writers queued behind it, which it hands on to the next leader.
  Writer& lead = *group.front();
  {
    MutexLock l(&mu_);
    if (!failed_.ok()) {
      for (Writer* x : group) x->result = failed_;
      return;
    }
    writers_.push_back(&lead);
    while (&lead != writers_.front()) Wait(lead.cv, &mu_);
  }
  {
    MutexLock l(&leader_mu_);
    CommitGroup(group);
  }
  MutexLock l(&mu_);
  writers_.pop_front();
  if (!writers_.empty()) writers_.front()->cv.Signal();
}

absl::StatusOr<std::vector<AppendResult>> EventStoreImpl::AppendMulti(
    const std::vector<StreamAppend>& appends) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("store is open for reading only");
  }
  IHS_ASSIGN_OR_RETURN(std::vector<PreparedAppend> prepared, Prepare(appends, /*control=*/false));
  return Commit(prepared);
}

absl::StatusOr<std::unique_ptr<PreparedAppends>> EventStoreImpl::PrepareAppends(
    const std::vector<StreamAppend>& appends) {
  if (options_.read_only) {
    return absl::FailedPreconditionError("store is open for reading only");
  }
  auto batch = std::make_unique<PreparedBatch>();
  batch->store = this;
  IHS_ASSIGN_OR_RETURN(batch->appends, Prepare(appends, /*control=*/false));
  return std::unique_ptr<PreparedAppends>(std::move(batch));
}

absl::StatusOr<std::vector<AppendResult>> EventStoreImpl::AppendPrepared(
    PreparedAppends& prepared) {
  auto* batch = dynamic_cast<PreparedBatch*>(&prepared);
  if (batch == nullptr || batch->store != this) {
    return absl::InvalidArgumentError("the appends were prepared by another store");
  }
  if (batch->committed) {
    return absl::FailedPreconditionError("the prepared appends are committed already");
  }
  batch->committed = true;
  return Commit(batch->appends);
}

absl::StatusOr<std::vector<AppendResult>> EventStoreImpl::Commit(
    std::vector<PreparedAppend>& prepared, const std::pair<std::string, std::string>* mark) {
  Writer w;
  w.appends = &prepared;
  w.mark = mark;
  for (const auto& pa : prepared) w.event_count += pa.events.size();

  std::vector<Writer*> group;
  {
    MutexLock l(&mu_);
    if (!failed_.ok()) return failed_;
    writers_.push_back(&w);
    if (&w != writers_.front() && options_.hooks.on_queued) options_.hooks.on_queued();
    while (!w.done && &w != writers_.front()) Wait(w.cv, &mu_);
    if (w.done) return std::move(w.result);
  }
  // This writer leads a group: itself and whoever queued behind it.
  if (options_.hooks.on_group_leader) options_.hooks.on_group_leader();
  {
    MutexLock l(&mu_);
    size_t events = 0;
    for (Writer* x : writers_) {
      if (!group.empty() && events + x->event_count > kMaxGroupEvents) break;
      events += x->event_count;
      group.push_back(x);
    }
  }
  {
    MutexLock l(&leader_mu_);
    CommitGroup(group);
  }
  {
    MutexLock l(&mu_);
    for (Writer* x : group) {
      writers_.pop_front();
      x->done = true;
      if (x != &w) x->cv.Signal();
    }
    if (!writers_.empty()) writers_.front()->cv.Signal();
  }
  return std::move(w.result);
}

// ---------------------------------------------------------------------------------------------
// Append: the leader.

absl::StatusOr<std::optional<StreamMeta>> EventStoreImpl::LoadMeta(absl::string_view stream) {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_stream_meta_, S(stream), &v);
  if (s.IsNotFound()) return std::optional<StreamMeta>();
  IHS_RETURN_IF_ERROR(FromRocksStatus(s, absl::StrCat("read metadata of stream ", stream)));
  std::optional<StreamMeta> m = internal::DecodeStreamMeta(v);
  if (!m) return absl::DataLossError(absl::StrCat("metadata of stream ", stream, " is malformed"));
  return m;
}

absl::StatusOr<std::optional<StreamMeta>> EventStoreImpl::MetaForWrite(absl::string_view stream) {
  if (!options_.bulk_load) return LoadMeta(stream);
  auto it = bulk_metas_.find(stream);
  if (it == bulk_metas_.end()) return std::optional<StreamMeta>();
  return std::optional<StreamMeta>(it->second);
}

namespace {
std::array<char, 16> IdBytes(const std::string& id) {
  std::array<char, 16> out{};
  std::copy_n(id.data(), std::min(id.size(), out.size()), out.begin());
  return out;
}
}  // namespace

bool EventStoreImpl::KnownAbsent(const std::string& id) const {
  return options_.bulk_load && !bulk_ids_.contains(IdBytes(id));
}

absl::StatusOr<std::pair<DataKey, bool>> EventStoreImpl::DataKeyForWrite(const std::string& stream,
                                                                         uint32_t version,
                                                                         const Group& g) {
  const std::string row = internal::ContentKeyRow(stream, version);
  if (auto it = g.new_keys.find(row); it != g.new_keys.end()) {
    return std::make_pair(it->second, false);
  }
  bool expired = absl::c_linear_search(g.expired, row);
  IHS_ASSIGN_OR_RETURN(std::optional<DataKey> existing, DataKeyForRead(stream, version, &expired));
  if (existing) return std::make_pair(*existing, false);
  if (expired) return absl::FailedPreconditionError("the key's content has expired");
  // The first content of this stream and class: a new data key, written with what it seals.
  return std::make_pair(internal::NewDataKey(version), true);
}

// Step 1, idempotency: which ids are stored already (by an earlier group or earlier in this one);
// the ids the group has not seen are looked up in one MultiGet. The results of a repeated append
// (every id stored with the same content), nullopt for a new one; kAlreadyExists for a partial or
// changed repeat.
absl::StatusOr<std::optional<std::vector<AppendResult>>> EventStoreImpl::FindStoredIds(
    const std::vector<PreparedAppend>& appends, const Group& g) {
  std::vector<AppendResult> results(appends.size());
  std::vector<const PreparedEvent*> flat;
  std::vector<size_t> flat_append;
  for (size_t a = 0; a < appends.size(); ++a) {
    for (const PreparedEvent& e : appends[a].events) {
      flat.push_back(&e);
      flat_append.push_back(a);
    }
  }
  std::vector<rocksdb::Slice> lookup;
  std::vector<size_t> lookup_index;
  for (size_t i = 0; i < flat.size(); ++i) {
    if (!g.ids.contains(flat[i]->id) && !KnownAbsent(flat[i]->id)) {
      lookup.emplace_back(flat[i]->id);
      lookup_index.push_back(i);
    }
  }
  std::vector<rocksdb::PinnableSlice> values(lookup.size());
  std::vector<rocksdb::Status> statuses(lookup.size());
  if (!lookup.empty()) {
    db_->MultiGet(rocksdb::ReadOptions(), cf_event_ids_, lookup.size(), lookup.data(),
                  values.data(), statuses.data());
  }
  std::vector<std::optional<Group::IdEntry>> stored(flat.size());
  for (size_t j = 0; j < lookup.size(); ++j) {
    if (statuses[j].IsNotFound()) continue;
    IHS_RETURN_IF_ERROR(FromRocksStatus(statuses[j], "read event id index"));
    std::optional<internal::EventIdValue> v = internal::DecodeEventIdValue(ToView(values[j]));
    if (!v) {
      return absl::DataLossError(
          absl::StrCat("event id index entry ", Hex(flat[lookup_index[j]]->id), " is malformed"));
    }
    stored[lookup_index[j]] = Group::IdEntry{v->position, v->stream_version, std::move(v->digest)};
  }
  size_t known = 0;
  const size_t total = flat.size();
  for (size_t i = 0; i < flat.size(); ++i) {
    const PreparedEvent& e = *flat[i];
    const Group::IdEntry* entry = nullptr;
    if (auto it = g.ids.find(e.id); it != g.ids.end()) {
      entry = &it->second;
    } else if (stored[i]) {
      entry = &*stored[i];
    }
    if (entry == nullptr) continue;
    const size_t a = flat_append[i];
    if (entry->digest != e.digest) {
      return absl::AlreadyExistsError(
          absl::StrCat("append to stream ", appends[a].request->stream, ": event id ", Hex(e.id),
                       " is already stored at position ", entry->position, " with other content"));
    }
    ++known;
    results[a].positions.push_back(entry->position);
    results[a].versions.push_back(entry->version);
  }
  if (known == total) {
    for (auto& r : results) r.duplicate = true;
    return std::optional<std::vector<AppendResult>>(std::move(results));
  }
  if (known > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("append of ", total, " events of which ", known,
                     " are already stored: a retry must repeat the original append exactly"));
  }
  return std::optional<std::vector<AppendResult>>();
}

// Step 2, expected versions and the parties' states, against the log as the group has changed it
// so far. Fills each append's stream meta (as it is before the append) and whether it exists.
absl::Status EventStoreImpl::CheckExpectedVersions(const std::vector<PreparedAppend>& appends,
                                                   const Group& g, std::vector<StreamMeta>* metas,
                                                   std::vector<bool>* exists) {
  for (size_t a = 0; a < appends.size(); ++a) {
    const StreamAppend& req = *appends[a].request;
    std::optional<StreamMeta> meta;
    if (auto it = g.metas.find(req.stream); it != g.metas.end()) {
      meta = it->second;
    } else {
      IHS_ASSIGN_OR_RETURN(meta, MetaForWrite(req.stream));
    }
    int64_t current = meta ? static_cast<int64_t>(meta->event_count) - 1 : -1;
    bool ok = true;
    switch (req.expected.kind()) {
      case ExpectedVersion::Kind::kAny:
        break;
      case ExpectedVersion::Kind::kNoStream:
        ok = !meta.has_value();
        break;
      case ExpectedVersion::Kind::kStreamExists:
        ok = meta.has_value();
        break;
      case ExpectedVersion::Kind::kExact:
        ok = meta.has_value() && current == static_cast<int64_t>(req.expected.version());
        break;
    }
    if (!ok) return Conflict(req.stream, req.expected, current);
    bool any_content = false;
    for (const PreparedEvent& e : appends[a].events) any_content |= e.has_content;
    const PreparedEvent& first = appends[a].events[0];
    IHS_RETURN_IF_ERROR(
        CheckPartyState(req.stream, appends[a].control, first.kind, first.lift, any_content, meta));
    (*exists)[a] = meta.has_value();
    if (meta) (*metas)[a] = *meta;
  }

  return absl::OkStatus();
}

// Step 3, data keys for the events that carry content, one per stream and retention class:
// existing ones, or new ones (`made`: content_keys row and key) that step 4 writes.
absl::Status EventStoreImpl::ResolveDataKeys(const std::vector<PreparedAppend>& appends,
                                             const Group& g,
                                             std::vector<std::vector<DataKey>>* keys,
                                             std::vector<std::pair<std::string, DataKey>>* made) {
  keys->resize(appends.size());
  for (size_t a = 0; a < appends.size(); ++a) {
    const std::string& stream = appends[a].request->stream;
    (*keys)[a].resize(appends[a].events.size());
    for (size_t i = 0; i < appends[a].events.size(); ++i) {
      const PreparedEvent& e = appends[a].events[i];
      if (!e.has_content) continue;
      std::string row = internal::ContentKeyRow(stream, e.key_version);
      auto mine =
          std::find_if(made->begin(), made->end(), [&](const auto& m) { return m.first == row; });
      if (mine != made->end()) {
        (*keys)[a][i] = mine->second;
        continue;
      }
      absl::StatusOr<std::pair<DataKey, bool>> k = DataKeyForWrite(stream, e.key_version, g);
      if (k.status().code() == absl::StatusCode::kFailedPrecondition) {
        const internal::KeyClass c = *internal::ClassOfKeyVersion(e.key_version);
        return absl::FailedPreconditionError(absl::StrCat(
            "append to stream ", stream, ", event ", i, ": its content (",
            schema::EnumName(static_cast<schema::Channel>(c.channel)), " ",
            schema::EnumName(static_cast<schema::TouchpointType>(c.type)), " of ", c.year,
            ") has expired under the retention policy; send the event without content"));
      }
      IHS_RETURN_IF_ERROR(k.status());
      (*keys)[a][i] = k->first;
      if (k->second) made->emplace_back(std::move(row), k->first);
    }
  }
  return absl::OkStatus();
}

// Step 4, which cannot fail: the new data keys, wrapped with the master key, into the group.
void EventStoreImpl::PutNewDataKeys(std::vector<std::pair<std::string, DataKey>>& made, Group& g) {
  for (auto& [row, key] : made) {
    std::string stream;
    uint32_t version = 0;
    internal::ParseContentKeyRow(row, &stream, &version);
    g.batch.Put(cf_content_keys_, row, internal::WrapDataKey(master_, stream, key));
    g.new_keys[row] = key;
  }
}

// Step 5, which cannot fail: one append's events with their positions, versions and sealed
// content, their records, index entries and Merkle nodes, and the stream's new meta.
void EventStoreImpl::EmitAppend(PreparedAppend& append, StreamMeta m, bool exists,
                                const std::vector<DataKey>& keys, Group& g, AppendResult& result) {
  const std::string& stream = append.request->stream;
  if (!exists) {
    m = StreamMeta{};
    m.stream_no = g.next_stream_no++;
  }
  for (size_t i = 0; i < append.events.size(); ++i) {
    PreparedEvent& e = append.events[i];
    const uint64_t position = g.frontier.size();
    const uint64_t version = m.event_count;
    auto ev = e.message->getRoot<schema::Event>();
    ev.setRecordedAt(g.recorded_at);
    ev.setPosition(position);
    ev.setStreamVersion(version);
    if (e.has_content) {
      const DataKey& key = keys[i];
      const bool presealed =
          e.sealed && e.sealed_with.version == key.version && e.sealed_with.key == key.key;
      const internal::Sealed sealed =
          presealed ? *e.sealed : internal::SealContent(key, NextNonce(), e.id + stream, e.content);
      auto sc = ev.initSealedContent();
      sc.setKeyVersion(key.version);
      sc.setNonce(kj::arrayPtr(reinterpret_cast<const kj::byte*>(sealed.nonce.data()),
                               sealed.nonce.size()));
      sc.setCiphertext(kj::arrayPtr(reinterpret_cast<const kj::byte*>(sealed.ciphertext.data()),
                                    sealed.ciphertext.size()));
      ev.disownContent();  // the plaintext never reaches the record
    }
    std::string record = internal::EncodeRecord(ev.asReader());
    g.batch.Put(cf_events_, internal::EventKey(position), record);
    g.batch.Put(cf_stream_index_, internal::StreamIndexKey(m.stream_no, version),
                BigEndian64(position));
    g.batch.Put(cf_event_ids_, e.id, internal::EncodeEventIdValue(position, version, e.digest));
    g.frontier.Push(internal::LeafHash(record), [&](internal::SubtreeId id, const Hash& h) {
      g.batch.Put(cf_merkle_, internal::MerkleKey(id.level, id.index), S(internal::HashBytes(h)));
    });
    g.ids[e.id] = {position, version, e.digest};
    if (m.event_count == 0) {
      m.first_position = position;
      m.first_occurred_at = e.occurred_at;
      m.last_occurred_at = e.occurred_at;
    }
    m.first_occurred_at = std::min(m.first_occurred_at, e.occurred_at);
    m.last_occurred_at = std::max(m.last_occurred_at, e.occurred_at);
    m.last_position = position;
    ++m.event_count;
    result.positions.push_back(position);
    result.versions.push_back(version);
  }
  if (append.control) {
    const PreparedEvent& e = append.events[0];
    const uint64_t position = result.positions[0];
    if (e.kind == schema::Event::ERASURE_REQUEST) {
      m.erased_position = position;
      // Every key of the party: version 1's row and the class keys' rows after it.
      g.batch.DeleteRange(cf_content_keys_, stream, stream + '\x01');
      absl::erase_if(g.new_keys, [&](const auto& kv) { return RowOfStream(kv.first, stream); });
      g.erased.push_back(stream);
    } else if (e.kind == schema::Event::CONTENT_EXPIRY) {
      // The keys' rows become markers that hold no key material: the content stays
      // unreadable, and no later append can make a new key under the same version.
      std::string marker(1, internal::kExpiredKeyTag);
      PutBigEndian64(&marker, position);
      for (uint32_t version : e.expired_versions) {
        std::string row = internal::ContentKeyRow(stream, version);
        g.batch.Put(cf_content_keys_, row, marker);
        g.new_keys.erase(row);
        g.expired.push_back(std::move(row));
      }
    } else if (e.kind == schema::Event::RETENTION_RUN) {
      // nothing but the event
    } else if (e.lift) {
      m.hold_position.reset();
    } else {
      m.hold_position = position;
    }
  }
  g.batch.Put(cf_stream_meta_, stream, internal::EncodeStreamMeta(m));
  g.metas[stream] = m;
}

// Stages one writer's appends into the group, in numbered steps. Steps 1 to 3 check and may
// fail: they change nothing of the group, so a writer that fails leaves no trace in it. Steps 4
// and 5 only add to the group, and cannot fail.
absl::StatusOr<std::vector<AppendResult>> EventStoreImpl::StageWriter(Writer& w, Group& g) {
  std::vector<PreparedAppend>& appends = *w.appends;
  // 1. Idempotency.
  IHS_ASSIGN_OR_RETURN(std::optional<std::vector<AppendResult>> repeated,
                       FindStoredIds(appends, g));
  if (repeated) return *std::move(repeated);
  // 2. Expected versions and the parties' states.
  std::vector<StreamMeta> metas(appends.size());
  std::vector<bool> exists(appends.size());
  IHS_RETURN_IF_ERROR(CheckExpectedVersions(appends, g, &metas, &exists));
  // 3. Data keys.
  std::vector<std::vector<DataKey>> keys;
  std::vector<std::pair<std::string, DataKey>> made;  // row -> key, new in this writer
  IHS_RETURN_IF_ERROR(ResolveDataKeys(appends, g, &keys, &made));

  // From here on nothing can fail.
  PutNewDataKeys(made, g);  // 4. New data keys into the group.
  std::vector<AppendResult> results(appends.size());
  for (size_t a = 0; a < appends.size(); ++a) {  // 5. The events, their indexes and nodes.
    EmitAppend(appends[a], metas[a], exists[a], keys[a], g, results[a]);
  }
  if (w.mark != nullptr) g.batch.Put(cf_meta_, w.mark->first, w.mark->second);
  ++g.writes;
  return results;
}

void EventStoreImpl::CommitGroup(std::vector<Writer*>& group) {
  Group g;
  g.frontier = frontier_;
  g.next_stream_no = next_stream_no_;
  // Never before the last group's: recorded_at ascends with position even if the clock steps
  // back, so "as of a time" is a prefix of the log (replay, docs/audit.md).
  // Writers with times of their own (AppendEach) take the clock from them alone.
  const bool own_times =
      std::all_of(group.begin(), group.end(), [](const Writer* w) { return w->recorded_at != 0; });
  g.recorded_at = own_times ? last_recorded_at_
                            : std::max(absl::ToUnixMicros(clock_->Now()), last_recorded_at_);
  const uint64_t old_next_stream_no = next_stream_no_;

  // A writer that fails leaves no trace in the group (StageWriter changes it only once nothing
  // can fail any more), so the others of the group go on.
  std::vector<bool> staged(group.size(), false);
  for (size_t i = 0; i < group.size(); ++i) {
    size_t writes_before = g.writes;
    const int64_t time_before = g.recorded_at;
    if (group[i]->recorded_at != 0) g.recorded_at = std::max(group[i]->recorded_at, g.recorded_at);
    group[i]->result = StageWriter(*group[i], g);
    staged[i] = g.writes > writes_before;
    if (!staged[i]) g.recorded_at = time_before;  // as if it had been a group of its own
  }
  if (g.writes == 0) return;  // only duplicates and failures: nothing to write

  if (g.next_stream_no != old_next_stream_no) {
    g.batch.Put(cf_meta_, internal::kMetaNextStreamNo, BigEndian64(g.next_stream_no));
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync && !options_.bulk_load;
  wo.disableWAL = options_.bulk_load;  // durable with Flush()
  const absl::Time write_start = absl::Now();
  absl::Status s = FromRocksStatus(db_->Write(wo, &g.batch), "write group");
  const double write_seconds = absl::ToDoubleSeconds(absl::Now() - write_start);
  if (!s.ok()) {
    absl::Status failed = absl::UnavailableError(
        absl::StrCat("store ", options_.path,
                     " failed a write and refuses appends until reopened: ", s.message()));
    for (size_t i = 0; i < group.size(); ++i) {
      if (staged[i]) group[i]->result = failed;
    }
    MutexLock l(&mu_);
    failed_ = failed;
    return;
  }
  frontier_ = g.frontier;
  if (options_.bulk_load) {
    for (auto& [stream, m] : g.metas) bulk_metas_[stream] = m;
    for (const auto& [id, entry] : g.ids) bulk_ids_.insert(IdBytes(id));
  }
  last_recorded_at_ = g.recorded_at;
  next_stream_no_ = g.next_stream_no;
  if (!g.new_keys.empty() || !g.erased.empty() || !g.expired.empty()) {
    MutexLock l(&keys_mu_);
    for (auto& [row, key] : g.new_keys) keys_[row] = key;
    for (const std::string& stream : g.erased) {
      absl::erase_if(keys_, [&](const auto& kv) { return RowOfStream(kv.first, stream); });
      erased_.insert(stream);
    }
    for (const std::string& row : g.expired) {
      keys_.erase(row);
      expired_.insert(row);
    }
  }
  MutexLock l(&mu_);
  metrics_.appended_events += frontier_.size() - head_;
  head_ = frontier_.size();
  stat_appends_ += g.writes;
  ++stat_syncs_;
  stat_largest_group_ = std::max<uint64_t>(stat_largest_group_, g.writes);
  auto bucket = [](const auto& bounds, double v) {
    return static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
  };
  if (size_t b = bucket(StoreMetrics::kGroupBounds, static_cast<double>(g.writes));
      b < metrics_.group_buckets.size()) {
    ++metrics_.group_buckets[b];
  }
  if (size_t b = bucket(StoreMetrics::kWriteBounds, write_seconds);
      b < metrics_.write_buckets.size()) {
    ++metrics_.write_buckets[b];
  }
  metrics_.write_seconds += write_seconds;
  commit_cv_.SignalAll();
}

}  // namespace ihs::store
