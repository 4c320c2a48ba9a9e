// CLIP and SigLIP towers (LAYOUT: LLAVA_CLIP.md Parts A and C). The vision
// tower is also LLaVA's image encoder; the dual encoder is CLIP/SigLIP itself.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/model.h"
#include "nn/layers.h"
#include "ops/ref/ref.h"
#include "vision/clip_preprocess.h"

namespace vlm::models {

// One pre-LN encoder layer as CLIP and SigLIP name it.
struct ClipLayer {
  nn::Norm ln1, ln2;             // [D]
  nn::Linear q, k, v, out;       // [D, D] with bias
  nn::Linear fc1, fc2;           // [I, D], [D, I]
};

struct ClipTowerConfig {
  int64_t width = 0, mlp = 0;
  int layers = 0, heads = 0;
  float eps = 1e-5f;
  ops::Act act = ops::Act::QuickGelu;
};

// Runs layers [0, n_layers) over x [S, D]. Masking: causal (CLIP text) and/or only the first
// n_valid positions visible as keys (padding). hidden(k, x) is called with the input of layer 0
// (k = 0) and the output of every layer (k = i + 1).
void clip_encode(const std::vector<ClipLayer>& layers, int n_layers, const ClipTowerConfig& c, float* x, int64_t S,
                 bool causal, int64_t n_valid, const std::function<void(int, const float*)>& hidden = {});

struct ClipVision {
  bool siglip = false;
  ClipTowerConfig cfg;
  int patch = 14, image_size = 224;
  TensorView patch_w;   // [D, 3·P·P] (Conv2d kernel == stride, flattened (c, py, px))
  nn::Linear patch_b;   // SigLIP: bias only (w unused)
  TensorView cls;       // [D] CLIP only
  TensorView pos;       // [tokens, D]
  nn::Norm pre, post;   // pre: CLIP only
  std::vector<ClipLayer> layers;
  // SigLIP attention-pooling head.
  TensorView probe;     // [1, 1, D]
  TensorView in_w, in_b;  // [3D, D], [3D]
  nn::Linear head_out, head_fc1, head_fc2;
  nn::Norm head_ln;

  int64_t tokens() const;  // sequence length (patches + CLS for CLIP)
  // prefix: "vision_model." (CLIP/SigLIP) or "vision_tower.vision_model." / "vision_tower." (LLaVA).
  static Expected<ClipVision> bind(const WeightStore& ws, const nlohmann::json& vision_config, const std::string& prefix,
                                   bool siglip);
  // One image [3, S, S] -> hidden states after `n_layers` layers [tokens, D] (pre post-LN).
  std::vector<float> encode(const float* pixels, int n_layers,
                            const std::function<void(int, const float*)>& hidden = {}) const;
  // Pooled, unprojected output: CLIP post_layernorm(CLS); SigLIP the attention-pooling head over
  // post_layernorm(all tokens).
  std::vector<float> pool(const std::vector<float>& last) const;
};

// CLIP / SigLIP: both towers, projections, logit scale (and bias).
class DualEncoder {
 public:
  static Expected<std::unique_ptr<DualEncoder>> load(const std::string& dir);
  std::string family() const { return siglip_ ? "siglip" : "clip"; }
  bool sigmoid() const { return siglip_; }  // SigLIP pairs are independent sigmoids
  const text::Tokenizer* tokenizer() const { return tokenizer_.get(); }
  const ClipImageConfig& image_config() const { return pre_; }
  int64_t embed_dim() const { return proj_dim_; }
  int64_t text_length() const { return text_len_; }
  float logit_scale() const { return logit_scale_; }
  float logit_bias() const { return logit_bias_; }

  Expected<std::vector<float>> preprocess(const std::vector<Image>& images,
                                          ResampleKernel k = ResampleKernel::kTorchvision) const;
  // pixels [n, 3, S, S] -> unnormalised embeddings [n, proj]. Trace: vision last_hidden_state [n, T, D].
  std::vector<float> embed_images(const std::vector<float>& pixels, int64_t n, nn::Trace* trace = nullptr) const;
  // Ids as the model was trained: CLIP BOS + text + EOS (truncated to 77), SigLIP padded to max_length.
  Expected<std::vector<int32_t>> tokenize(const std::string& text) const;
  // ids [n, S] with per-row valid lengths -> unnormalised embeddings [n, proj].
  std::vector<float> embed_texts(const std::vector<int32_t>& ids, int64_t n, int64_t S,
                                 const std::vector<int64_t>& valid, nn::Trace* trace = nullptr) const;
  // Similarity logits [n_img, n_txt] from unnormalised embeddings.
  std::vector<float> logits(const std::vector<float>& img, int64_t n_img, const std::vector<float>& txt,
                            int64_t n_txt) const;

 private:
  void post_last(std::vector<float>& last) const;

  bool siglip_ = false;
  std::string dir_;
  WeightStore ws_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  ClipImageConfig pre_;
  ClipVision vision_;
  ClipTowerConfig tcfg_;
  TensorView tok_emb_, tok_pos_;
  std::vector<ClipLayer> tlayers_;
  nn::Norm final_ln_;
  nn::Linear vproj_, tproj_;  // CLIP projections (no bias); SigLIP text head (bias)
  int64_t proj_dim_ = 0, text_len_ = 77;
  int32_t eos_id_ = -1;
  bool legacy_pool_ = false;  // text_config.eos_token_id == 2: pool at argmax(ids)
  float logit_scale_ = 0, logit_bias_ = 0;
};

void l2_normalize(float* v, int64_t n, int64_t dim);

// True when dir/config.json names a dual encoder (clip, siglip) rather than a chat model.
bool is_dual_encoder(const std::string& dir);

}  // namespace vlm::models
