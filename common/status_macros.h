// Status propagation macros for absl::Status / absl::StatusOr (Abseil 20220623 has none).
//   IHS_RETURN_IF_ERROR(DoThing());
//   IHS_ASSIGN_OR_RETURN(auto value, ComputeValue());
#ifndef IHS_COMMON_STATUS_MACROS_H_
#define IHS_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define IHS_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::absl::Status ihs_status_ = (expr);       \
    if (!ihs_status_.ok()) return ihs_status_; \
  } while (0)

#define IHS_STATUS_CONCAT_INNER_(a, b) a##b
#define IHS_STATUS_CONCAT_(a, b) IHS_STATUS_CONCAT_INNER_(a, b)

#define IHS_ASSIGN_OR_RETURN(lhs, expr) \
  IHS_ASSIGN_OR_RETURN_IMPL_(IHS_STATUS_CONCAT_(ihs_statusor_, __LINE__), lhs, expr)

#define IHS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(*statusor)

#endif  // IHS_COMMON_STATUS_MACROS_H_
