// Persons from links, for the projections that fold identityLink events themselves (segments,
// community): the streams a set of links joins, split into connected groups, each named by its
// stream the log saw first (docs/identity.md "Persons").
#ifndef IHS_PROJECTIONS_IDENTITY_GROUPING_H_
#define IHS_PROJECTIONS_IDENTITY_GROUPING_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "schema/event.capnp.h"

namespace ihs::projections::identity {

using StreamPair = std::pair<std::string, std::string>;

struct StreamGroup {
  std::vector<std::string> streams;  // sorted
  std::vector<StreamPair> links;     // those of `links` inside the group, in their order
};

// The connected groups of `streams` under `links` (a link naming a stream outside `streams` is
// ignored), by person id: the stream of the group with the least `first_position`.
absl::StatusOr<std::map<std::string, StreamGroup>> GroupStreams(
    const std::vector<std::string>& streams, const std::vector<StreamPair>& links,
    const std::function<absl::StatusOr<uint64_t>(const std::string&)>& first_position);

// What an identityLink event changes, pair by pair, in the order every projection that folds
// links applies them: an unlink every pair of its parties, a link each party with the first.
using LinkChange = std::function<absl::Status(const std::string& a, const std::string& b)>;
absl::Status ForEachLinkChange(schema::IdentityLink::Reader link, const LinkChange& join,
                               const LinkChange& unlink);

// Removes the links between `a` and `b` from `links`; whether there was one.
bool RemoveLink(std::vector<StreamPair>& links, const std::string& a, const std::string& b);

}  // namespace ihs::projections::identity

#endif  // IHS_PROJECTIONS_IDENTITY_GROUPING_H_
