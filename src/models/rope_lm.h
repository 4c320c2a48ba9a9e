// The language-model half shared by the families: an nn::Decoder driven by
// (M-)RoPE positions. Qwen2/2.5-VL use chunked M-RoPE sections, Qwen3-VL
// interleaved ones, LLaVA plain 1-D RoPE (section {head_dim/2, 0, 0}).
#pragma once
#include <array>
#include <functional>
#include <vector>

#include "models/model.h"
#include "nn/decoder.h"

namespace vlm::models {

struct RopeLM {
  nn::Decoder dec;
  double theta = 1e6;
  std::array<int, 3> section{0, 0, 0};
  bool interleaved = false;

  // Runs the prompt embeddings h [L, D] (placeholders already replaced) at positions `pos`
  // (empty: 0..L-1), resets and fills s.cache, sets s.next_pos = L + rope_delta, and writes the
  // last position's logits.
  void prefill(Session& s, const std::vector<int32_t>& ids, float* h, const std::vector<std::array<int64_t, 3>>& pos,
               int64_t rope_delta, std::vector<float>* logits, nn::Trace* trace,
               const std::function<void(int, float*, int64_t)>& after_layer = {}) const;
  // One generated token at s.next_pos (all position axes equal).
  void decode(Session& s, int32_t token, std::vector<float>* logits) const;
};

}  // namespace vlm::models
