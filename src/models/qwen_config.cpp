#include "models/qwen_config.h"

namespace vlm::models {

using nlohmann::json;

Expected<ops::Act> parse_activation(const std::string& s, const char* what) {
  if (s == "quick_gelu") return ops::Act::QuickGelu;
  if (s == "silu" || s == "swish") return ops::Act::Silu;
  if (s == "gelu") return ops::Act::Gelu;
  if (s == "gelu_pytorch_tanh" || s == "gelu_new") return ops::Act::GeluTanh;
  return make_error("config.json: unsupported ", what, " '", s, "'");
}

Expected<QwenTextConfig> parse_qwen_text_config(const json& cfg, const QwenTextDefaults& d) {
  QwenTextConfig c;
  c.rope_theta = d.rope_theta;
  c.mrope = d.mrope;
  const json& text = cfg.contains("text_config") && cfg["text_config"].is_object() ? cfg["text_config"] : cfg;
  // A field missing from text_config falls back to the top level (transformers 4.5x re-saves both).
  auto get = [&](const char* k) -> const json* {
    if (text.contains(k) && !text[k].is_null()) return &text[k];
    if (cfg.contains(k) && !cfg[k].is_null()) return &cfg[k];
    return nullptr;
  };
  auto need_int = [&](const char* k, int64_t* out) -> Status {
    const json* v = get(k);
    if (!v || !v->is_number_integer() || v->get<int64_t>() <= 0)
      return make_error("config.json: missing or invalid integer '", k, "'");
    *out = v->get<int64_t>();
    return Status::Ok();
  };
  int64_t v = 0;
  VLM_TRY_STATUS(need_int("vocab_size", &c.text.vocab));
  VLM_TRY_STATUS(need_int("hidden_size", &c.text.hidden));
  VLM_TRY_STATUS(need_int("intermediate_size", &c.text.inter));
  VLM_TRY_STATUS(need_int("num_attention_heads", &v));
  c.text.heads = int(v);
  c.text.kv_heads = c.text.heads;
  if (get("num_key_value_heads")) {
    VLM_TRY_STATUS(need_int("num_key_value_heads", &v));
    c.text.kv_heads = int(v);
  }
  c.text.head_dim = int(c.text.hidden / c.text.heads);
  if (get("head_dim")) {
    VLM_TRY_STATUS(need_int("head_dim", &v));
    c.text.head_dim = int(v);
  }
  if (const json* e = get("rms_norm_eps"); e && e->is_number()) c.text.eps = e->get<float>();
  c.text.qkv_bias = d.qkv_bias;
  if (const json* b = get("attention_bias"); b && b->is_boolean() && !d.qkv_bias) c.text.qkv_bias = b->get<bool>();
  c.text.qk_norm = d.qk_norm;
  // The top-level flag is what HF's tie_weights() reads for the composite model.
  if (cfg.contains("tie_word_embeddings") && cfg["tie_word_embeddings"].is_boolean())
    c.text.tied = cfg["tie_word_embeddings"].get<bool>();
  else if (text.contains("tie_word_embeddings") && text["tie_word_embeddings"].is_boolean())
    c.text.tied = text["tie_word_embeddings"].get<bool>();

  // 4.5x files say rope_scaling ({type: mrope, ...}), v5 files rope_parameters (theta inside).
  const json* rope = nullptr;
  for (const json* src : {&text, &cfg})
    for (const char* k : {"rope_parameters", "rope_scaling"})
      if (!rope && src->contains(k) && (*src)[k].is_object()) rope = &(*src)[k];
  if (rope && rope->contains("mrope_section")) {
    const json& ms = (*rope)["mrope_section"];
    if (!ms.is_array() || ms.size() != 3) return make_error("config.json: mrope_section must have 3 entries");
    for (size_t i = 0; i < 3; ++i) {
      if (!ms[i].is_number_integer() || ms[i].get<int>() < 0) return make_error("config.json: bad mrope_section");
      c.mrope[i] = ms[i].get<int>();
    }
  } else if (d.require_mrope) {
    return make_error("config.json: rope_scaling/rope_parameters must carry a 3-entry mrope_section");
  }
  if (c.mrope[0] + c.mrope[1] + c.mrope[2] != c.text.head_dim / 2)
    return make_error("config.json: mrope_section sums to ", c.mrope[0] + c.mrope[1] + c.mrope[2],
                      " but head_dim/2 is ", c.text.head_dim / 2);
  if (rope && rope->contains("rope_theta") && (*rope)["rope_theta"].is_number())
    c.rope_theta = (*rope)["rope_theta"].get<double>();
  else if (const json* t = get("rope_theta"); t && t->is_number())
    c.rope_theta = t->get<double>();
  if (!(c.rope_theta > 0)) return make_error("config.json: rope_theta must be positive");

  auto token = [&](const char* k, int32_t dflt) {
    return cfg.contains(k) && cfg[k].is_number_integer() ? cfg[k].get<int32_t>() : dflt;
  };
  c.image_token = token("image_token_id", 151655);
  c.video_token = token("video_token_id", 151656);
  c.vision_start = token("vision_start_token_id", 151652);
  c.vision_end = token("vision_end_token_id", 151653);
  return c;
}

}  // namespace vlm::models
