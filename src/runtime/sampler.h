// Logits processing and token choice in transformers' order: repetition
// penalty, temperature, top-k, top-p, then argmax or a seeded draw.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace vlm::runtime {

struct SamplingParams {
  bool do_sample = false;
  float temperature = 1.0f;
  int top_k = 0;  // 0 = off
  float top_p = 1.0f;
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}
  // `history` = every token of the sequence so far (prompt included, as HF does).
  // logits are modified in place.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<int32_t> idx_;
  std::vector<uint8_t> seen_;
};

// First index of the maximum (ties resolved like torch.argmax).
int32_t argmax(std::span<const float> v);

}  // namespace vlm::runtime
