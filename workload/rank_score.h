// Ranks scored against exact answers (docs/community.md "Accuracy"): the network standing's
// exact value by power iteration (a reference, not the product), Spearman's rank correlation and
// the overlap of two top lists.
#ifndef IHS_WORKLOAD_RANK_SCORE_H_
#define IHS_WORKLOAD_RANK_SCORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace ihs::workload {

// x = 1 + (1 - reset) P^T x over the nodes that `edges` (source, target, weight) name, where P
// takes a node's edges by weight and a node without edges ends the walk: the expected visits of
// walks that start once at every node (docs/community.md "Standing"). Iterates until no value
// moves by more than 1e-9.
std::map<std::string, double> ExactStanding(
    const std::vector<std::tuple<std::string, std::string, uint64_t>>& edges, double reset);

// Spearman's rank correlation of two scores of the same keys (ties get their average rank); keys
// in only one of them are left out.
double Spearman(const std::map<std::string, double>& a, const std::map<std::string, double>& b);

// The share of the top `n` keys by `a` that are in the top `n` by `b` (ties broken by key).
double TopOverlap(const std::map<std::string, double>& a, const std::map<std::string, double>& b,
                  size_t n);

}  // namespace ihs::workload

#endif  // IHS_WORKLOAD_RANK_SCORE_H_
