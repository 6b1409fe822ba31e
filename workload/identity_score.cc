#include "workload/identity_score.h"

#include <set>
#include <utility>

namespace ihs::workload {

nlohmann::json IdentityScore::ToJson() const {
  return {{"precision", precision()},
          {"recall", recall()},
          {"recallWithEvidence", recall_with_evidence()},
          {"recallCeiling", recall_ceiling()},
          {"truePositives", true_positives},
          {"falsePositives", false_positives},
          {"falseNegatives", false_negatives},
          {"truthPairs", truth_pairs},
          {"truthPairsWithEvidence", truth_pairs_with_evidence},
          {"traps", traps},
          {"trapsJoined", traps_joined}};
}

IdentityScore ScoreIdentity(const nlohmann::json& truth,
                            const std::vector<std::vector<std::string>>& persons) {
  using Pair = std::pair<std::string, std::string>;
  auto ordered = [](const std::string& a, const std::string& b) {
    return a < b ? Pair(a, b) : Pair(b, a);
  };
  std::map<std::string, std::string> true_person;  // stream -> the truth's person
  std::set<Pair> in_log, truth_pairs;
  std::set<Pair> with_evidence;
  for (const auto& id : truth["identities"]) {
    const std::string a = id["streams"][0], b = id["streams"][1];
    true_person[a] = id["person"];
    true_person[b] = id["person"];
    (id["linked_in_log"].get<bool>() ? in_log : truth_pairs).insert(ordered(a, b));
    if (!id["linked_in_log"].get<bool>() &&
        (id.value("quotes_order_ref", false) || id.value("follows_up", false))) {
      with_evidence.insert(ordered(a, b));
    }
  }
  std::map<std::string, size_t> joined_in;  // stream -> index of its person
  IdentityScore s;
  for (size_t p = 0; p < persons.size(); ++p) {
    const std::vector<std::string>& streams = persons[p];
    for (const std::string& x : streams) joined_in[x] = p;
    for (size_t i = 0; i < streams.size(); ++i) {
      for (size_t j = i + 1; j < streams.size(); ++j) {
        const Pair pair = ordered(streams[i], streams[j]);
        if (in_log.count(pair)) continue;
        auto a = true_person.find(pair.first), b = true_person.find(pair.second);
        const bool same =
            a != true_person.end() && b != true_person.end() && a->second == b->second;
        ++(same ? s.true_positives : s.false_positives);
        if (!same && s.wrong.size() < 20) s.wrong.push_back(pair);
      }
    }
  }
  auto joined = [&joined_in](const Pair& pair) {
    auto a = joined_in.find(pair.first), b = joined_in.find(pair.second);
    return a != joined_in.end() && b != joined_in.end() && a->second == b->second;
  };
  s.truth_pairs = truth_pairs.size();
  for (const Pair& pair : truth_pairs) {
    if (joined(pair)) continue;
    ++s.false_negatives;
    if (s.missed.size() < 20) s.missed.push_back(pair);
  }
  s.truth_pairs_with_evidence = with_evidence.size();
  for (const Pair& pair : with_evidence) {
    s.found_with_evidence += joined(pair);
  }
  for (const auto& n : truth["not_same"]) {
    const std::string why = n["why"];
    ++s.traps[why];
    if (joined(ordered(n["streams"][0], n["streams"][1]))) ++s.traps_joined[why];
  }
  return s;
}

}  // namespace ihs::workload
