// Pre-norm transformer encoder block shared by the vision towers (Qwen2-VL,
// Qwen2.5-VL, Qwen3-VL, CLIP, SigLIP): bidirectional attention restricted to
// segments (packed images / windows), optional 2-D rotary embedding, plain
// (fc1-act-fc2) or gated (down(act(gate)·up)) MLP.
#pragma once
#include <vector>

#include "nn/layers.h"

namespace vlm::nn {

struct VitBlockConfig {
  int64_t width = 0, mlp = 0;
  int heads = 0;
  ops::Act act = ops::Act::QuickGelu;
  bool gated_mlp = false;
};

struct VitBlock {
  Norm norm1, norm2;       // [E]
  Linear qkv;              // [3E, E] fused (Qwen); or separate q, k, v [E, E] (CLIP)
  Linear q, k, v;
  Linear proj;             // [E, E]
  Linear fc1, fc2;         // [mlp, E], [E, mlp]
  Linear gate, up, down;   // gated MLP: [mlp, E], [mlp, E], [E, mlp]

  // x: [N, E] in/out. cos/sin: [N, head_dim] or null (no rope). cu: n_seg+1 segment bounds, or null.
  void forward(const VitBlockConfig& c, float* x, int64_t N, const float* cos, const float* sin,
               const int32_t* cu, int n_seg) const;
};

// Qwen-style 2-D rotary tables: row `i` of the output gets angles
// concat(r_i·inv_freq, c_i·inv_freq) with inv_freq[j] = theta^(-2j/(hd/2)), j < hd/4, laid out
// concat(a, a) (length hd). rc holds (r, c) pairs. Returns cos and sin, each [N, hd].
void vision_rope_tables(const std::vector<std::pair<int, int>>& rc, int head_dim, float theta,
                        std::vector<float>* cos, std::vector<float>* sin);

}  // namespace vlm::nn
