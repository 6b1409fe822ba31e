#include "workload/rank_score.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace ihs::workload {

std::map<std::string, double> ExactStanding(
    const std::vector<std::tuple<std::string, std::string, uint64_t>>& edges, double reset) {
  std::map<std::string, size_t> index;
  for (const auto& [s, t, w] : edges) {
    index.emplace(s, 0);
    index.emplace(t, 0);
  }
  std::vector<std::string> names;
  for (auto& [name, i] : index) {
    i = names.size();
    names.push_back(name);
  }
  const size_t n = names.size();
  std::vector<double> total(n, 0);
  for (const auto& [s, t, w] : edges) total[index[s]] += static_cast<double>(w);
  std::vector<double> x(n, 1), next(n);
  for (int round = 0; round < 10000; ++round) {
    std::fill(next.begin(), next.end(), 1.0);
    for (const auto& [s, t, w] : edges) {
      const size_t u = index[s];
      next[index[t]] += (1 - reset) * x[u] * static_cast<double>(w) / total[u];
    }
    double moved = 0;
    for (size_t i = 0; i < n; ++i) moved = std::max(moved, std::abs(next[i] - x[i]));
    x.swap(next);
    if (moved < 1e-9) break;
  }
  std::map<std::string, double> out;
  for (size_t i = 0; i < n; ++i) out[names[i]] = x[i];
  return out;
}

namespace {

// Average ranks (1-based) of `values`, ties sharing theirs.
std::vector<double> Ranks(const std::vector<double>& values) {
  std::vector<size_t> order(values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    const double rank = (static_cast<double>(i) + static_cast<double>(j)) / 2 + 1;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

std::vector<std::string> Top(const std::map<std::string, double>& m, size_t n) {
  std::vector<std::pair<double, std::string>> v;
  for (const auto& [k, x] : m) v.emplace_back(-x, k);
  std::sort(v.begin(), v.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size() && i < n; ++i) out.push_back(v[i].second);
  return out;
}

}  // namespace

double Spearman(const std::map<std::string, double>& a, const std::map<std::string, double>& b) {
  std::vector<double> va, vb;
  for (const auto& [k, x] : a) {
    auto it = b.find(k);
    if (it == b.end()) continue;
    va.push_back(x);
    vb.push_back(it->second);
  }
  if (va.size() < 2) return 1;
  const std::vector<double> ra = Ranks(va), rb = Ranks(vb);
  const double n = static_cast<double>(ra.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    ma += ra[i] / n;
    mb += rb[i] / n;
  }
  double cov = 0, sa = 0, sb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    cov += (ra[i] - ma) * (rb[i] - mb);
    sa += (ra[i] - ma) * (ra[i] - ma);
    sb += (rb[i] - mb) * (rb[i] - mb);
  }
  return sa == 0 || sb == 0 ? 1 : cov / std::sqrt(sa * sb);
}

double TopOverlap(const std::map<std::string, double>& a, const std::map<std::string, double>& b,
                  size_t n) {
  const std::vector<std::string> ta = Top(a, n), tb = Top(b, n);
  if (ta.empty()) return 1;
  const std::set<std::string> sb(tb.begin(), tb.end());
  size_t both = 0;
  for (const std::string& k : ta) both += sb.count(k);
  return static_cast<double>(both) / static_cast<double>(ta.size());
}

}  // namespace ihs::workload
