// Identity resolution scored against the generator's ground truth (docs/workload.md
// "Identity", docs/identity.md "Accuracy"): which streams it joined into persons, compared with
// the truth's `identities[]` and its traps, `not_same[]`.
#ifndef IHS_WORKLOAD_IDENTITY_SCORE_H_
#define IHS_WORKLOAD_IDENTITY_SCORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace ihs::workload {

struct IdentityScore {
  // Over pairs of streams the log does not link itself (no identityLink of the history names
  // them): a pair joined into one person is a true positive when the truth says one person.
  uint64_t true_positives = 0, false_positives = 0, false_negatives = 0;
  // The truth's pairs the log does not link, and those of them with evidence: the account
  // quotes its person's order reference or takes their unanswered message public. The rest show
  // only a name, which identifies nobody among 256 names.
  uint64_t truth_pairs = 0, truth_pairs_with_evidence = 0, found_with_evidence = 0;
  std::map<std::string, uint64_t> traps, traps_joined;      // by `why`
  std::vector<std::pair<std::string, std::string>> wrong;   // the first 20 false positives
  std::vector<std::pair<std::string, std::string>> missed;  // the first 20 missed
  double precision() const {
    const uint64_t joined = true_positives + false_positives;
    return joined == 0 ? 1.0 : static_cast<double>(true_positives) / joined;
  }
  double recall() const {
    return truth_pairs == 0 ? 1.0 : static_cast<double>(true_positives) / truth_pairs;
  }
  double recall_with_evidence() const {
    return truth_pairs_with_evidence == 0
               ? 1.0
               : static_cast<double>(found_with_evidence) / truth_pairs_with_evidence;
  }
  // The recall a resolver that only joins on evidence can reach over all pairs.
  double recall_ceiling() const {
    return truth_pairs == 0 ? 1.0 : static_cast<double>(truth_pairs_with_evidence) / truth_pairs;
  }
  nlohmann::json ToJson() const;
};

// `persons`: the streams of each person of two streams or more, as resolution made them.
IdentityScore ScoreIdentity(const nlohmann::json& truth,
                            const std::vector<std::vector<std::string>>& persons);

}  // namespace ihs::workload

#endif  // IHS_WORKLOAD_IDENTITY_SCORE_H_
