#include "store/internal/codec.h"

#include <capnp/any.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace ihs::store {

absl::StatusOr<std::unique_ptr<CanonicalMessage>> CanonicalMessage::ParseImpl(
    absl::string_view record, size_t prefix_bytes, absl::string_view what,
    const std::function<void(capnp::MessageReader&)>& walk) {
  absl::string_view words = record.substr(std::min(prefix_bytes, record.size()));
  if (prefix_bytes > sizeof(capnp::word) || words.empty() ||
      words.size() % sizeof(capnp::word) != 0) {
    return absl::DataLossError(
        absl::StrCat(what, ": ", words.size(), " bytes is not a whole number of words"));
  }
  std::unique_ptr<CanonicalMessage> m(new CanonicalMessage());
  const size_t n = words.size() / sizeof(capnp::word);
  m->words_ = kj::heapArray<capnp::word>(n + 1);
  char* base = reinterpret_cast<char*>(m->words_.begin());
  char* start = base + sizeof(capnp::word) - prefix_bytes;
  std::memcpy(start, record.data(), prefix_bytes + words.size());
  m->prefixed_ = absl::string_view(start, prefix_bytes + words.size());
  m->segments_[0] = m->words_.slice(1, n + 1).asConst();
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() {
                 m->reader_.emplace(kj::arrayPtr(m->segments_, 1));
                 walk(*m->reader_);
               })) {
    return absl::DataLossError(
        absl::StrCat(what, " does not decode: ", e->getDescription().cStr()));
  }
  return m;
}

namespace internal {
namespace {

void TouchHandle(schema::Handle::Reader h) { (void)h.getAddress().size(); }

void TouchContent(schema::Content::Reader c) {
  (void)c.getSubject().size();
  (void)c.getText().size();
  TouchHandle(c.getFrom());
  for (auto h : c.getTo()) TouchHandle(h);
}

void TouchEvent(schema::Event::Reader e) {
  (void)e.getId().size();
  (void)e.getStreamId().size();
  (void)e.getSourceSystem().size();
  (void)e.getCorrelationId().size();
  (void)e.getCausationId().size();
  TouchContent(e.getContent());
  auto sc = e.getSealedContent();
  (void)sc.getNonce().size();
  (void)sc.getCiphertext().size();
  switch (e.which()) {
    case schema::Event::TOUCHPOINT: {
      auto tp = e.getTouchpoint();
      for (auto t : tp.getTopics()) (void)t.size();
      (void)tp.getThreadId().size();
      (void)tp.getInReplyTo().size();
      (void)tp.getCounterpart().size();
      (void)tp.getCorrects().size();
      (void)tp.getCampaignId().size();
      break;
    }
    case schema::Event::PARTY_PROFILE:
      (void)e.getPartyProfile().getCohort().size();
      break;
    case schema::Event::IDENTITY_LINK:
      for (auto p : e.getIdentityLink().getParties()) (void)p.size();
      (void)e.getIdentityLink().getReason().size();
      (void)e.getIdentityLink().getRequestedBy().size();
      for (auto c : e.getIdentityLink().getClues()) {
        for (auto id : c.getEvents()) (void)id.size();
      }
      break;
    case schema::Event::SEGMENT_DEFINITION:
      (void)e.getSegmentDefinition().getName().size();
      (void)e.getSegmentDefinition().getRule().size();
      (void)e.getSegmentDefinition().getDescription().size();
      (void)e.getSegmentDefinition().getRequestedBy().size();
      break;
    case schema::Event::COMMUNITY_BAND:
      (void)e.getCommunityBand().getParty().size();
      (void)e.getCommunityBand().getClause().size();
      break;
    case schema::Event::CONTENT_ACCESS:
      (void)e.getContentAccess().getParty().size();
      for (auto id : e.getContentAccess().getEvents()) (void)id.size();
      (void)e.getContentAccess().getReadBy().size();
      (void)e.getContentAccess().getRole().size();
      (void)e.getContentAccess().getVia().size();
      (void)e.getContentAccess().getPeer().size();
      break;
    case schema::Event::ERASURE_REQUEST:
      (void)e.getErasureRequest().getReason().size();
      (void)e.getErasureRequest().getRequestedBy().size();
      break;
    case schema::Event::LEGAL_HOLD:
      (void)e.getLegalHold().getReason().size();
      (void)e.getLegalHold().getRequestedBy().size();
      break;
    case schema::Event::CONTENT_EXPIRY:
      (void)e.getContentExpiry().getExpired().size();
      (void)e.getContentExpiry().getRules().size();
      (void)e.getContentExpiry().getRequestedBy().size();
      break;
    case schema::Event::RETENTION_RUN:
      (void)e.getRetentionRun().getPolicy().size();
      for (auto h : e.getRetentionRun().getHeld()) (void)h.size();
      (void)e.getRetentionRun().getRequestedBy().size();
      break;
    default:
      break;  // a newer kind: its fields are not read by this build
  }
}

template <typename Fn>
std::string ProblemOf(Fn&& fn) {
  KJ_IF_MAYBE (e, kj::runCatchingExceptions(kj::fwd<Fn>(fn))) {
    return e->getDescription().cStr();
  }
  return "";
}

// Checks text fields one by one and keeps the first problem, naming the field. A valid event
// (the common case, on the append path) costs a scan of its text and no allocation.
class TextCheck {
 public:
  void operator()(const char* field, capnp::Text::Reader text) { Check(text, field, -1, ""); }
  void operator()(const char* list, uint32_t index, const char* field, capnp::Text::Reader text) {
    Check(text, list, index, field);
  }
  std::string problem;

 private:
  void Check(capnp::Text::Reader text, const char* name, int64_t index, const char* suffix) {
    if (!problem.empty()) return;
    const absl::string_view s(text.cStr(), text.size());
    std::string what;
    if (const size_t nul = s.find('\0'); nul != absl::string_view::npos) {
      what = absl::StrCat("a NUL byte at offset ", nul);
    } else if (const size_t bad = FindInvalidUtf8(s); bad != absl::string_view::npos) {
      what = absl::StrCat("not UTF-8 (byte ", bad, " of ", s.size(), ")");
    } else {
      return;
    }
    problem = index < 0 ? absl::StrCat(name, ": ", what)
                        : absl::StrCat(name, "[", index, "]", suffix, ": ", what);
  }
};

}  // namespace

std::string EventTextProblem(schema::Event::Reader e) {
  TextCheck check;
  KJ_IF_MAYBE (ex, kj::runCatchingExceptions([&]() {
                 check("streamId", e.getStreamId());
                 check("sourceSystem", e.getSourceSystem());
                 if (e.hasContent()) {
                   auto c = e.getContent();
                   check("content.subject", c.getSubject());
                   check("content.text", c.getText());
                   check("content.from.address", c.getFrom().getAddress());
                   auto to = c.getTo();
                   for (uint32_t i = 0; i < to.size(); ++i) {
                     check("content.to", i, ".address", to[i].getAddress());
                   }
                 }
                 switch (e.which()) {
                   case schema::Event::TOUCHPOINT: {
                     auto tp = e.getTouchpoint();
                     auto topics = tp.getTopics();
                     for (uint32_t i = 0; i < topics.size(); ++i) {
                       check("touchpoint.topics", i, "", topics[i]);
                     }
                     check("touchpoint.threadId", tp.getThreadId());
                     check("touchpoint.counterpart", tp.getCounterpart());
                     check("touchpoint.campaignId", tp.getCampaignId());
                     break;
                   }
                   case schema::Event::PARTY_PROFILE:
                     check("partyProfile.cohort", e.getPartyProfile().getCohort());
                     break;
                   case schema::Event::IDENTITY_LINK: {
                     auto parties = e.getIdentityLink().getParties();
                     for (uint32_t i = 0; i < parties.size(); ++i) {
                       check("identityLink.parties", i, "", parties[i]);
                     }
                     check("identityLink.reason", e.getIdentityLink().getReason());
                     check("identityLink.requestedBy", e.getIdentityLink().getRequestedBy());
                     break;
                   }
                   case schema::Event::SEGMENT_DEFINITION: {
                     auto d = e.getSegmentDefinition();
                     check("segmentDefinition.name", d.getName());
                     check("segmentDefinition.rule", d.getRule());
                     check("segmentDefinition.description", d.getDescription());
                     check("segmentDefinition.requestedBy", d.getRequestedBy());
                     break;
                   }
                   case schema::Event::COMMUNITY_BAND:
                     check("communityBand.party", e.getCommunityBand().getParty());
                     check("communityBand.clause", e.getCommunityBand().getClause());
                     break;
                   case schema::Event::CONTENT_ACCESS: {
                     auto a = e.getContentAccess();
                     check("contentAccess.party", a.getParty());
                     check("contentAccess.readBy", a.getReadBy());
                     check("contentAccess.role", a.getRole());
                     check("contentAccess.via", a.getVia());
                     check("contentAccess.peer", a.getPeer());
                     break;
                   }
                   case schema::Event::ERASURE_REQUEST:
                     check("erasureRequest.reason", e.getErasureRequest().getReason());
                     check("erasureRequest.requestedBy", e.getErasureRequest().getRequestedBy());
                     break;
                   case schema::Event::LEGAL_HOLD:
                     check("legalHold.reason", e.getLegalHold().getReason());
                     check("legalHold.requestedBy", e.getLegalHold().getRequestedBy());
                     break;
                   case schema::Event::CONTENT_EXPIRY:
                     check("contentExpiry.rules", e.getContentExpiry().getRules());
                     check("contentExpiry.requestedBy", e.getContentExpiry().getRequestedBy());
                     break;
                   case schema::Event::RETENTION_RUN: {
                     auto r = e.getRetentionRun();
                     check("retentionRun.policy", r.getPolicy());
                     auto held = r.getHeld();
                     for (uint32_t i = 0; i < held.size(); ++i) {
                       check("retentionRun.held", i, "", held[i]);
                     }
                     check("retentionRun.requestedBy", r.getRequestedBy());
                     break;
                   }
                   default:
                     break;  // a newer kind: refused by the append's own checks
                 }
               })) {
    return ex->getDescription().cStr();
  }
  return check.problem;
}

std::string EventShapeProblem(schema::Event::Reader event) {
  return ProblemOf([&]() { TouchEvent(event); });
}

std::string ContentShapeProblem(schema::Content::Reader content) {
  return ProblemOf([&]() { TouchContent(content); });
}

void AppendCanonical(const capnp::_::StructReader& reader, std::string* out) {
  // The root pointer and everything the struct reaches; canonical may be shorter (trailing zero
  // words of a struct's data are cut).
  const size_t words = reader.totalSize().wordCount + 1;
  // Kept per thread up to 512 KiB, so that an append's events reuse it; a larger event gets its
  // own buffer.
  constexpr size_t kKeptWords = (512 << 10) / sizeof(capnp::word);
  thread_local kj::Array<capnp::word> kept;
  kj::Array<capnp::word> own;
  kj::ArrayPtr<capnp::word> space;
  if (words <= kKeptWords) {
    if (kept.size() < words) kept = kj::heapArray<capnp::word>(std::max(words, size_t{1024}));
    space = kept.slice(0, words);
  } else {
    own = kj::heapArray<capnp::word>(words);
    space = own;
  }
  std::memset(space.begin(), 0, space.asBytes().size());
  capnp::FlatMessageBuilder builder(space);
  capnp::_::PointerHelpers<capnp::AnyPointer>::getInternalBuilder(
      builder.initRoot<capnp::AnyPointer>())
      .setStruct(reader, /*canonical=*/true);
  auto used = builder.getSegmentsForOutput()[0].asBytes();
  out->append(reinterpret_cast<const char*>(used.begin()), used.size());
}

std::string EncodeRecord(schema::Event::Reader event) {
  auto internal = capnp::_::PointerHelpers<schema::Event>::getInternalReader(event);
  std::string out(1, kRecordTagCapnpV1);
  AppendCanonical(internal, &out);
  return out;
}

absl::StatusOr<std::unique_ptr<internal::StoredEventRep>> DecodeRecord(uint64_t position,
                                                                       absl::string_view bytes) {
  std::string what = absl::StrCat("event at position ", position);
  if (bytes.empty() || bytes[0] != kRecordTagCapnpV1) {
    return absl::DataLossError(absl::StrCat(what, " has an unknown record tag"));
  }
  auto rep = std::make_unique<StoredEventRep>();
  rep->position = position;
  auto msg = CanonicalMessage::ParsePrefixed<schema::Event>(bytes, 1, what);
  if (!msg.ok()) return msg.status();
  rep->event = std::move(*msg);
  const schema::Event::Reader ev = rep->event->root<schema::Event>();
  std::string problem = EventShapeProblem(ev);
  if (!problem.empty()) return absl::DataLossError(absl::StrCat(what, " is malformed: ", problem));
  if (ev.getPosition() != position) {
    return absl::DataLossError(absl::StrCat(what, " says it is at position ", ev.getPosition()));
  }
  rep->content_state = ev.hasSealedContent() ? ContentState::kSealed : ContentState::kNone;
  rep->root = ev;
  rep->record = rep->event->prefixed();
  return rep;
}

}  // namespace internal
}  // namespace ihs::store
