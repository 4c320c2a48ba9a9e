// Causal LLM decoder shared by the Qwen2 / Qwen2.5 / Qwen3 text models and
// Llama: pre-norm blocks of GQA attention + SwiGLU MLP, RMSNorm, RoPE given
// as per-token cos/sin tables (so M-RoPE and 1-D RoPE are the caller's
// choice), a KV cache, and an LM head (tied or not).
#pragma once
#include <functional>
#include <vector>

#include "nn/layers.h"

namespace vlm::nn {

struct DecoderConfig {
  int64_t vocab = 0, hidden = 0, inter = 0;
  int heads = 0, kv_heads = 0, head_dim = 0;
  float eps = 1e-6f;
  bool qkv_bias = false;  // Qwen2/2.5: q/k/v have biases
  bool qk_norm = false;   // Qwen3: RMSNorm over each q/k head
  bool tied = false;      // lm_head = embed_tokens
};

struct DecoderLayer {
  Norm in_norm, post_norm;  // [D]
  Linear q, k, v, o;        // q [H·d, D], k/v [K·d, D], o [D, H·d]
  Norm q_norm, k_norm;      // [d], Qwen3 only
  Linear gate, up, down;    // gate/up [I, D], down [D, I]
};

// Keys/values of every layer for positions [0, len).
class KVCache {
 public:
  void reset(int layers, int64_t row);  // row = kv_heads · head_dim
  void reserve(int64_t positions);
  float* k(int layer, int64_t pos) { return k_[size_t(layer)].data() + pos * row_; }
  float* v(int layer, int64_t pos) { return v_[size_t(layer)].data() + pos * row_; }
  int64_t len = 0;
  int64_t capacity() const { return cap_; }

 private:
  std::vector<std::vector<float>> k_, v_;
  int64_t row_ = 0, cap_ = 0;
};

struct Decoder {
  DecoderConfig cfg;
  TensorView embed;    // [vocab, D]
  TensorView lm_head;  // [vocab, D] (== embed when tied)
  Linear head;         // lm_head in the store's linear format (packed once when not native)
  std::vector<DecoderLayer> layers;
  Norm final_norm;     // [D]

  // prefix: "model." (legacy Qwen2-VL names) or "model.language_model." (v5 / Qwen3-VL).
  static Expected<Decoder> bind(const WeightStore& ws, const DecoderConfig& cfg, const std::string& prefix,
                                const std::string& lm_head_name = "lm_head.weight");

  void embed_tokens(const int32_t* ids, int64_t n, float* out) const;

  // Runs n new tokens through every layer. h: [n, D] input embeddings, replaced by the final-normed
  // states. cos/sin: [n, head_dim] per token. Keys/values are appended to `cache` at cache.len.
  // after_layer(i, h, n) runs after layer i (Qwen3-VL deepstack); trace gets "hidden_states.<i>".
  void forward(float* h, int64_t n, const float* cos, const float* sin, KVCache& cache, Trace* trace = nullptr,
               const std::function<void(int, float*, int64_t)>& after_layer = {}) const;

  // logits[vocab] for one final-normed row.
  void logits(const float* h_row, float* out) const;

  // Bytes of weights one decode step reads: every layer's linears and norms, the final norm and
  // the LM head (the embedding row read for the token is negligible).
  size_t decode_weight_bytes() const;
};

}  // namespace vlm::nn
