#include "store/audit.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "store/internal/merkle.h"

namespace ihs::store {

absl::StatusOr<PartyAudit> VerifyParty(EventStore& store, absl::string_view party,
                                       const tlog::TreeHead& head, const ProgressFn& progress) {
  absl::StatusOr<StreamInfo> info = store.GetStreamInfo(party);
  if (info.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("no such party: ", party));
  }
  if (!info.ok()) return info.status();
  ReadOptions ro;
  ro.open_content = false;
  PartyAudit audit;
  uint64_t version = 0;
  constexpr size_t kPage = 1000;
  while (version < info->event_count) {
    IHS_ASSIGN_OR_RETURN(std::vector<StoredEvent> events,
                         store.ReadStream(party, version, kPage, ReadDirection::kForward, ro));
    if (events.empty()) break;
    std::vector<uint64_t> covered;  // the page's events below the head, proved in one batch
    for (const StoredEvent& e : events) {
      if (e.position() < head.size) covered.push_back(e.position());
    }
    audit.after_head += events.size() - covered.size();
    IHS_ASSIGN_OR_RETURN(std::vector<std::vector<tlog::Hash>> paths,
                         InclusionProofs(store, covered, head.size));
    for (size_t i = 0; i < covered.size(); ++i) {
      const StoredEvent& e = events[i];  // positions ascend: the covered ones come first
      // OpenSSL's SHA-256 (the store's), several times faster here than libsodium's portable
      // one, which tools/ihs-verify keeps; AuditTest.TheTwoSha256ImplementationsAgree.
      const tlog::Hash leaf = internal::LeafHash(e.bytes());
      std::string why;
      if (!tlog::VerifyInclusion(e.position(), head.size, leaf, paths[i], head.root, &why,
                                 &internal::NodeHash)) {
        return absl::DataLossError(absl::StrCat("party ", party, ": the event at position ",
                                                e.position(), " does not verify: ", why));
      }
      ++audit.verified;
    }
    version += events.size();
    if (progress) progress(version, info->event_count);
  }
  return audit;
}

absl::StatusOr<uint64_t> LogSizeAt(EventStore& store, int64_t micros) {
  ReadOptions ro;
  ro.open_content = false;
  uint64_t low = 0, high = store.Head();  // the answer lies in [low, high]
  while (low < high) {
    const uint64_t mid = low + (high - low) / 2;
    IHS_ASSIGN_OR_RETURN(std::vector<StoredEvent> events, store.ReadAll(mid, 1, ro));
    if (events.empty()) return absl::DataLossError(absl::StrCat("no event at position ", mid));
    if (events[0].event().getRecordedAt() <= micros) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  return low;
}

}  // namespace ihs::store
