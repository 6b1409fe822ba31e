// The worked example of docs/projections.md "Adding a projection": each party's last touchpoint
// (when, on which channel, which way). Small on purpose: it shows what every projection needs and
// nothing more, and it runs the conformance suite like the real ones. It is not registered in
// ihsd (projections/registry.cc); the document shows the lines that would do it.
#ifndef IHS_TESTS_PROJECTIONS_EXAMPLE_LAST_CONTACT_H_
#define IHS_TESTS_PROJECTIONS_EXAMPLE_LAST_CONTACT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "projections/projection.h"
#include "projections/runner.h"
#include "schema/event.capnp.h"

namespace ihs::projections::last_contact {

inline constexpr char kName[] = "last_contact";

struct LastContact {
  int64_t occurred_at = 0;  // µs since the epoch
  schema::Channel channel = schema::Channel::UNSPECIFIED;
  schema::Direction direction = schema::Direction::UNSPECIFIED;
};

std::unique_ptr<Projection> NewLastContactProjection();

// The party's last touchpoint as of the view's checkpoint; kNotFound if it has none.
absl::StatusOr<LastContact> ReadLastContact(const StateView& view, const std::string& party);

}  // namespace ihs::projections::last_contact

#endif  // IHS_TESTS_PROJECTIONS_EXAMPLE_LAST_CONTACT_H_
