#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace vlm::runtime {

int32_t argmax(std::span<const float> v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[size_t(best)]) best = int32_t(i);
  return best;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  const size_t V = logits.size();
  if (p_.repetition_penalty != 1.0f) {
    seen_.assign(V, 0);
    for (int32_t t : history)
      if (t >= 0 && size_t(t) < V && !seen_[size_t(t)]) {
        seen_[size_t(t)] = 1;
        float& s = logits[size_t(t)];
        s = s < 0 ? s * p_.repetition_penalty : s / p_.repetition_penalty;
      }
  }
  if (!p_.do_sample) return argmax(logits);
  const float ninf = -std::numeric_limits<float>::infinity();
  if (p_.temperature > 0 && p_.temperature != 1.0f)
    for (float& s : logits) s /= p_.temperature;
  if (p_.top_k > 0 && size_t(p_.top_k) < V) {
    std::vector<float> tmp(logits.begin(), logits.end());
    std::nth_element(tmp.begin(), tmp.begin() + (p_.top_k - 1), tmp.end(), std::greater<float>());
    const float kth = tmp[size_t(p_.top_k - 1)];
    for (float& s : logits)
      if (s < kth) s = ninf;  // ties with the k-th value survive, as in HF
  }
  // Softmax over the survivors, sorted descending for top-p.
  idx_.clear();
  for (size_t i = 0; i < V; ++i)
    if (logits[i] != ninf) idx_.push_back(int32_t(i));
  std::stable_sort(idx_.begin(), idx_.end(), [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  const float mx = logits[size_t(idx_[0])];
  std::vector<double> prob(idx_.size());
  double sum = 0;
  for (size_t i = 0; i < idx_.size(); ++i) sum += prob[i] = std::exp(double(logits[size_t(idx_[i])] - mx));
  for (double& p : prob) p /= sum;
  size_t keep = idx_.size();
  if (p_.top_p < 1.0f) {
    // HF removes tokens whose ascending cumulative mass is <= 1 - top_p, i.e. keeps a token iff
    // the mass of the tokens more likely than it is < top_p (always at least the top token).
    double cum = 0;
    keep = 0;
    while (keep < idx_.size()) {
      cum += prob[keep++];
      if (cum >= double(p_.top_p)) break;
    }
    keep = std::max<size_t>(keep, 1);
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += prob[i];
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_), acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += prob[i];
    if (r < acc) return idx_[i];
  }
  return idx_[keep - 1];
}

}  // namespace vlm::runtime
