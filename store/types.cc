// The values of store/types.h that have behaviour: an expected version's text, and the status
// that carries a version conflict's current version.
#include "store/types.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ihs::store {

std::string ExpectedVersion::ToString() const {
  switch (kind_) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "none (no stream yet)";
    case Kind::kStreamExists:
      return "exists";
    case Kind::kExact:
      return absl::StrCat(version_);
  }
  return "?";
}

std::optional<int64_t> ConflictCurrentVersion(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kAborted) return std::nullopt;
  auto payload = status.GetPayload(kConflictPayloadUrl);
  int64_t v = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &v)) return std::nullopt;
  return v;
}

absl::Status VersionConflictError(absl::string_view message, int64_t current_version) {
  absl::Status s = absl::AbortedError(message);
  s.SetPayload(kConflictPayloadUrl, absl::Cord(absl::StrCat(current_version)));
  return s;
}

}  // namespace ihs::store
