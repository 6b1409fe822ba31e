// A bad request that names the field at fault: kInvalidArgument with the field's name as a
// status payload, so that every layer (the timeline's query checks, ihsd, the client library)
// carries the same "which field" without parsing messages.
//
//   return BadField("limit", "limit 0 is out of range: 1 to 1000 entries per page");
//   ErrorField(status) == "limit"
#ifndef IHS_COMMON_FIELD_ERROR_H_
#define IHS_COMMON_FIELD_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace ihs {

inline constexpr char kFieldPayloadUrl[] = "type.ihs/field";

inline absl::Status BadField(absl::string_view field, absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kFieldPayloadUrl, absl::Cord(field));
  return s;
}

// The field a status names; "" when none.
inline std::string ErrorField(const absl::Status& status) {
  auto p = status.GetPayload(kFieldPayloadUrl);
  return p ? std::string(*p) : std::string();
}

}  // namespace ihs

#endif  // IHS_COMMON_FIELD_ERROR_H_
