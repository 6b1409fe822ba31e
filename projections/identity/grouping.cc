#include "projections/identity/grouping.h"

#include <algorithm>

#include "common/status_macros.h"
#include "projections/identity/identity.h"

namespace ihs::projections::identity {

absl::StatusOr<std::map<std::string, StreamGroup>> GroupStreams(
    const std::vector<std::string>& streams, const std::vector<StreamPair>& links,
    const std::function<absl::StatusOr<uint64_t>(const std::string&)>& first_position) {
  std::map<std::string, std::string> parent;
  for (const std::string& s : streams) parent[s] = s;
  auto find = [&parent](std::string s) {
    while (parent[s] != s) s = parent[s];
    return s;
  };
  for (const auto& [a, b] : links) {
    if (!parent.count(a) || !parent.count(b)) continue;
    parent[find(a)] = find(b);
  }
  std::map<std::string, StreamGroup> groups;  // by root
  for (const std::string& s : streams) groups[find(s)].streams.push_back(s);
  for (const StreamPair& l : links) {
    if (parent.count(l.first) && parent.count(l.second)) groups[find(l.first)].links.push_back(l);
  }
  std::map<std::string, StreamGroup> named;
  for (auto& [root, g] : groups) {
    std::sort(g.streams.begin(), g.streams.end());
    std::string id;
    uint64_t first = 0;
    for (const std::string& s : g.streams) {
      IHS_ASSIGN_OR_RETURN(const uint64_t at, first_position(s));
      if (id.empty() || at < first) {
        id = s;
        first = at;
      }
    }
    named[id] = std::move(g);
  }
  return named;
}

absl::Status ForEachLinkChange(schema::IdentityLink::Reader link, const LinkChange& join,
                               const LinkChange& unlink) {
  const std::vector<std::string> parties = LinkedParties(link);
  if (parties.size() < 2) return absl::OkStatus();
  if (link.getUnlink()) {
    for (size_t i = 0; i < parties.size(); ++i) {
      for (size_t j = i + 1; j < parties.size(); ++j) {
        IHS_RETURN_IF_ERROR(unlink(parties[i], parties[j]));
      }
    }
    return absl::OkStatus();
  }
  for (size_t i = 1; i < parties.size(); ++i) {
    if (parties[i] != parties[0]) IHS_RETURN_IF_ERROR(join(parties[0], parties[i]));
  }
  return absl::OkStatus();
}

bool RemoveLink(std::vector<StreamPair>& links, const std::string& a, const std::string& b) {
  const size_t before = links.size();
  links.erase(std::remove_if(links.begin(), links.end(),
                             [&](const StreamPair& l) {
                               return (l.first == a && l.second == b) ||
                                      (l.first == b && l.second == a);
                             }),
              links.end());
  return links.size() != before;
}

}  // namespace ihs::projections::identity
