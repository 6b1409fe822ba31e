#include "projections/identity/grouping.h"

#include <algorithm>

#include "common/status_macros.h"

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

}  // namespace ihs::projections::identity
