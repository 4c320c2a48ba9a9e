// The text half of every Qwen-VL config.json (Qwen2-VL, Qwen2.5-VL, Qwen3-VL):
// decoder sizes, RoPE theta and M-RoPE sections, special token ids. Reads the
// legacy flat layout and the nested text_config one (VLM_SPEC §3).
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "nn/decoder.h"
#include "ops/ops.h"

namespace vlm::models {

struct QwenTextConfig {
  nn::DecoderConfig text;
  double rope_theta = 1e6;
  std::array<int, 3> mrope{16, 24, 24};
  int32_t image_token = 151655, video_token = 151656, vision_start = 151652, vision_end = 151653;
};

struct QwenTextDefaults {
  double rope_theta = 1e6;
  std::array<int, 3> mrope{16, 24, 24};
  bool require_mrope = true;  // Qwen2/2.5 configs must name mrope_section; Qwen3 has a class default
  bool qkv_bias = true;       // Qwen2/2.5 always; Qwen3 reads attention_bias
  bool qk_norm = false;       // Qwen3
};

Expected<QwenTextConfig> parse_qwen_text_config(const nlohmann::json& cfg, const QwenTextDefaults& d);

// A config's hidden_act string; unknown names are an error naming `what`.
Expected<ops::Act> parse_activation(const std::string& name, const char* what);

}  // namespace vlm::models
