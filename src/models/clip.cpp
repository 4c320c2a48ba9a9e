#include "models/clip.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace vlm::models {
namespace {

using nlohmann::json;

int64_t jint(const json& j, const char* k, int64_t dflt) {
  return j.contains(k) && j[k].is_number_integer() ? j[k].get<int64_t>() : dflt;
}

ops::Act act_of(const json& j, ops::Act dflt) {
  const std::string a = j.value("hidden_act", "");
  if (a == "quick_gelu") return ops::Act::QuickGelu;
  if (a == "gelu") return ops::Act::Gelu;
  if (a == "gelu_pytorch_tanh" || a == "gelu_new") return ops::Act::GeluTanh;
  if (a == "silu") return ops::Act::Silu;
  return dflt;
}

Expected<ClipTowerConfig> tower_config(const json& j, bool siglip, const char* what) {
  ClipTowerConfig c;
  c.width = jint(j, "hidden_size", 0);
  c.mlp = jint(j, "intermediate_size", 0);
  c.layers = int(jint(j, "num_hidden_layers", 0));
  c.heads = int(jint(j, "num_attention_heads", 0));
  c.eps = j.contains("layer_norm_eps") && j["layer_norm_eps"].is_number() ? j["layer_norm_eps"].get<float>()
                                                                          : (siglip ? 1e-6f : 1e-5f);
  c.act = act_of(j, siglip ? ops::Act::GeluTanh : ops::Act::QuickGelu);
  if (c.width <= 0 || c.mlp <= 0 || c.layers <= 0 || c.heads <= 0 || c.width % c.heads != 0)
    return make_error("config.json: invalid ", what, " (hidden_size ", c.width, ", heads ", c.heads, ", layers ",
                      c.layers, ")");
  return c;
}

Expected<std::vector<ClipLayer>> bind_layers(const WeightStore& ws, const std::string& prefix, const ClipTowerConfig& c) {
  std::vector<ClipLayer> out;
  const int64_t D = c.width, I = c.mlp;
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = prefix + "encoder.layers." + std::to_string(i) + ".";
    ClipLayer L;
    VLM_ASSIGN_OR_RETURN(L.ln1, nn::Norm::bind(ws, p + "layer_norm1", nn::Norm::Kind::Layer, D, c.eps));
    VLM_ASSIGN_OR_RETURN(L.ln2, nn::Norm::bind(ws, p + "layer_norm2", nn::Norm::Kind::Layer, D, c.eps));
    VLM_ASSIGN_OR_RETURN(L.q, nn::Linear::bind(ws, p + "self_attn.q_proj", D, D, true));
    VLM_ASSIGN_OR_RETURN(L.k, nn::Linear::bind(ws, p + "self_attn.k_proj", D, D, true));
    VLM_ASSIGN_OR_RETURN(L.v, nn::Linear::bind(ws, p + "self_attn.v_proj", D, D, true));
    VLM_ASSIGN_OR_RETURN(L.out, nn::Linear::bind(ws, p + "self_attn.out_proj", D, D, true));
    VLM_ASSIGN_OR_RETURN(L.fc1, nn::Linear::bind(ws, p + "mlp.fc1", I, D, true));
    VLM_ASSIGN_OR_RETURN(L.fc2, nn::Linear::bind(ws, p + "mlp.fc2", D, I, true));
    out.push_back(L);
  }
  return out;
}

float scalar(const WeightStore& ws, const std::string& name, float dflt) {
  const TensorView* t = ws.find(name);
  if (!t || t->numel() != 1) return dflt;
  return to_f32(*t)[0];
}

}  // namespace

void clip_encode(const std::vector<ClipLayer>& layers, int n_layers, const ClipTowerConfig& c, float* x, int64_t S,
                 bool causal, int64_t n_valid, const std::function<void(int, const float*)>& hidden) {
  const int64_t D = c.width, I = c.mlp;
  const int hd = int(D / c.heads);
  std::vector<float> y(static_cast<size_t>(S * D)), q(y.size()), k(y.size()), v(y.size()), att(y.size()),
      h(static_cast<size_t>(S * I));
  if (hidden) hidden(0, x);
  for (int li = 0; li < n_layers; ++li) {
    const ClipLayer& L = layers[size_t(li)];
    L.ln1(x, S, y.data());
    L.q(y.data(), S, q.data());
    L.k(y.data(), S, k.data());
    L.v(y.data(), S, v.data());
    ops::AttnArgs a;
    a.k = k.data();
    a.v = v.data();
    a.q_stride = a.kv_stride = D;
    a.heads = a.kv_heads = c.heads;
    a.d = hd;
    a.scale = 1.0f / std::sqrt(float(hd));
    // Valid queries: causal or full over the valid keys. Padded queries (rows >= n_valid) still
    // attend to every valid key, as HF's additive padding mask leaves them.
    a.q = q.data();
    a.out = att.data();
    a.n_q = n_valid;
    a.n_kv = n_valid;
    a.causal = causal;
    ops::attention(a);
    if (n_valid < S) {
      a.q = q.data() + n_valid * D;
      a.out = att.data() + n_valid * D;
      a.n_q = S - n_valid;
      a.causal = false;
      ops::attention(a);
    }
    L.out(att.data(), S, y.data());
    ops::add(x, y.data(), S * D);
    L.ln2(x, S, y.data());
    L.fc1(y.data(), S, h.data());
    ops::activate(c.act, h.data(), S * I);
    L.fc2(h.data(), S, y.data());
    ops::add(x, y.data(), S * D);
    if (hidden) hidden(li + 1, x);
  }
}

int64_t ClipVision::tokens() const {
  const int64_t g = image_size / patch;
  return g * g + (siglip ? 0 : 1);
}

Expected<ClipVision> ClipVision::bind(const WeightStore& ws, const json& vc, const std::string& prefix, bool siglip) {
  ClipVision v;
  v.siglip = siglip;
  VLM_ASSIGN_OR_RETURN(v.cfg, tower_config(vc, siglip, "vision_config"));
  v.patch = int(jint(vc, "patch_size", siglip ? 16 : 32));
  v.image_size = int(jint(vc, "image_size", 224));
  if (v.patch <= 0 || v.image_size <= 0 || v.image_size % v.patch != 0 || v.image_size > 4096)
    return make_error("config.json: vision image_size ", v.image_size, " is not a multiple of patch_size ", v.patch);
  const int64_t D = v.cfg.width, row = 3 * int64_t(v.patch) * v.patch;
  const std::string e = prefix + "embeddings.";
  const TensorView* pw = ws.find(e + "patch_embedding.weight");
  if (!pw) return make_error("missing tensor '", e, "patch_embedding.weight' in checkpoint");
  if (pw->numel() != D * row || pw->dim(0) != D)
    return make_error("tensor '", e, "patch_embedding.weight' has shape ", pw->shape_str(), ", expected [", D, ", 3, ",
                      v.patch, ", ", v.patch, "]");
  v.patch_w = TensorView(pw->dtype, pw->data, {D, row});
  if (siglip) {
    VLM_ASSIGN_OR_RETURN(v.patch_b.b, ws.get(e + "patch_embedding.bias", {D}));
  } else {
    VLM_ASSIGN_OR_RETURN(v.cls, ws.get(e + "class_embedding", {D}));
    VLM_ASSIGN_OR_RETURN(v.pre, nn::Norm::bind(ws, prefix + "pre_layrnorm", nn::Norm::Kind::Layer, D, v.cfg.eps));
  }
  VLM_ASSIGN_OR_RETURN(v.pos, ws.get(e + "position_embedding.weight", {v.tokens(), D}));
  VLM_ASSIGN_OR_RETURN(v.layers, bind_layers(ws, prefix, v.cfg));
  // LLaVA checkpoints may omit what it never uses (post_layernorm, head); bind when present.
  if (ws.has(prefix + "post_layernorm.weight")) {
    VLM_ASSIGN_OR_RETURN(v.post, nn::Norm::bind(ws, prefix + "post_layernorm", nn::Norm::Kind::Layer, D, v.cfg.eps));
  }
  if (siglip && ws.has(prefix + "head.probe")) {
    const std::string h = prefix + "head.";
    VLM_ASSIGN_OR_RETURN(v.probe, ws.get(h + "probe", {1, 1, D}));
    VLM_ASSIGN_OR_RETURN(v.in_w, ws.get(h + "attention.in_proj_weight", {3 * D, D}));
    VLM_ASSIGN_OR_RETURN(v.in_b, ws.get(h + "attention.in_proj_bias", {3 * D}));
    VLM_ASSIGN_OR_RETURN(v.head_out, nn::Linear::bind(ws, h + "attention.out_proj", D, D, true));
    VLM_ASSIGN_OR_RETURN(v.head_ln, nn::Norm::bind(ws, h + "layernorm", nn::Norm::Kind::Layer, D, v.cfg.eps));
    VLM_ASSIGN_OR_RETURN(v.head_fc1, nn::Linear::bind(ws, h + "mlp.fc1", v.cfg.mlp, D, true));
    VLM_ASSIGN_OR_RETURN(v.head_fc2, nn::Linear::bind(ws, h + "mlp.fc2", D, v.cfg.mlp, true));
  }
  return v;
}

std::vector<float> ClipVision::encode(const float* pixels, int n_layers,
                                      const std::function<void(int, const float*)>& hidden) const {
  const int P = patch, G = image_size / patch, S = image_size;
  const int64_t D = cfg.width, row = 3 * int64_t(P) * P, T = tokens(), np = int64_t(G) * G;
  // Patch rows in raster order, columns (c, py, px) = the Conv2d weight's memory order.
  std::vector<float> rows(static_cast<size_t>(np * row));
  for (int gy = 0; gy < G; ++gy)
    for (int gx = 0; gx < G; ++gx) {
      float* r = rows.data() + (int64_t(gy) * G + gx) * row;
      for (int c = 0; c < 3; ++c)
        for (int py = 0; py < P; ++py)
          std::copy_n(pixels + (int64_t(c) * S + gy * P + py) * S + gx * P, P, r + (c * P + py) * P);
    }
  std::vector<float> x(static_cast<size_t>(T * D));
  float* patches = x.data() + (siglip ? 0 : D);
  ops::linear(rows.data(), np, row, patch_w, siglip ? &patch_b.b : nullptr, patches);
  if (!siglip)
    for (int64_t i = 0; i < D; ++i) x[size_t(i)] = ops::ref::weight_at(cls, i);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) x[size_t(t * D + i)] += ops::ref::weight_at(pos, t * D + i);
  if (!siglip) pre(x.data(), T, x.data());
  clip_encode(layers, n_layers, cfg, x.data(), T, false, T, hidden);
  return x;
}

std::vector<float> ClipVision::pool(const std::vector<float>& last) const {
  const int64_t D = cfg.width, T = tokens();
  if (!siglip) {
    std::vector<float> y(static_cast<size_t>(D));
    post(last.data(), 1, y.data());
    return y;
  }
  std::vector<float> x(last);
  post(x.data(), T, x.data());
  // nn.MultiheadAttention with one learned query (the probe).
  const size_t eb = dtype_size(in_w.dtype), bb = dtype_size(in_b.dtype);
  auto part = [&](int i, TensorView* w, TensorView* b) {
    *w = TensorView(in_w.dtype, static_cast<uint8_t*>(in_w.data) + size_t(i) * size_t(D * D) * eb, {D, D});
    *b = TensorView(in_b.dtype, static_cast<uint8_t*>(in_b.data) + size_t(i) * size_t(D) * bb, {D});
  };
  TensorView wq, bq, wk, bk, wv, bv;
  part(0, &wq, &bq);
  part(1, &wk, &bk);
  part(2, &wv, &bv);
  std::vector<float> pr(static_cast<size_t>(D)), q(pr.size()), k(static_cast<size_t>(T * D)), v(k.size()),
      a(pr.size()), y(pr.size()), h(static_cast<size_t>(cfg.mlp));
  for (int64_t i = 0; i < D; ++i) pr[size_t(i)] = ops::ref::weight_at(probe, i);
  ops::linear(pr.data(), 1, D, wq, &bq, q.data());
  ops::linear(x.data(), T, D, wk, &bk, k.data());
  ops::linear(x.data(), T, D, wv, &bv, v.data());
  ops::AttnArgs at;
  at.q = q.data();
  at.k = k.data();
  at.v = v.data();
  at.out = a.data();
  at.n_q = 1;
  at.n_kv = T;
  at.q_stride = at.kv_stride = D;
  at.heads = at.kv_heads = cfg.heads;
  at.d = int(D / cfg.heads);
  at.scale = 1.0f / std::sqrt(float(at.d));
  ops::attention(at);
  head_out(a.data(), 1, y.data());
  head_ln(y.data(), 1, a.data());
  head_fc1(a.data(), 1, h.data());
  ops::activate(cfg.act, h.data(), cfg.mlp);
  head_fc2(h.data(), 1, a.data());
  ops::add(y.data(), a.data(), D);
  return y;
}

Expected<std::unique_ptr<DualEncoder>> DualEncoder::load(const std::string& dir) {
  namespace fs = std::filesystem;
  auto m = std::unique_ptr<DualEncoder>(new DualEncoder());
  m->dir_ = dir;
  VLM_ASSIGN_OR_RETURN(json cfg, read_json_file((fs::path(dir) / "config.json").string()));
  const std::string type = cfg.value("model_type", "");
  if (type != "clip" && type != "siglip") return make_error(dir, ": model_type '", type, "' is not clip or siglip");
  m->siglip_ = type == "siglip";
  if (!cfg.contains("vision_config") || !cfg.contains("text_config"))
    return make_error(dir, "/config.json: needs vision_config and text_config");
  const json& vc = cfg["vision_config"];
  const json& tc = cfg["text_config"];
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "tokenizer.json", ec)) {
    VLM_ASSIGN_OR_RETURN(m->tokenizer_, text::Tokenizer::load(dir));
  }
  VLM_ASSIGN_OR_RETURN(m->pre_, load_clip_image_config(dir));
  VLM_ASSIGN_OR_RETURN(m->ws_, WeightStore::open_dir(dir));
  const WeightStore& ws = m->ws_;
  VLM_ASSIGN_OR_RETURN(m->vision_, ClipVision::bind(ws, vc, "vision_model.", m->siglip_));
  if (m->pre_.out_height() != m->vision_.image_size || m->pre_.out_width() != m->vision_.image_size)
    return make_error(dir, ": preprocessor output ", m->pre_.out_width(), "x", m->pre_.out_height(),
                      " does not match vision image_size ", m->vision_.image_size);
  VLM_ASSIGN_OR_RETURN(m->tcfg_, tower_config(tc, m->siglip_, "text_config"));
  const int64_t Dt = m->tcfg_.width, Dv = m->vision_.cfg.width;
  m->text_len_ = jint(tc, "max_position_embeddings", m->siglip_ ? 64 : 77);
  const int64_t vocab = jint(tc, "vocab_size", 0);
  VLM_ASSIGN_OR_RETURN(m->tok_emb_, ws.get("text_model.embeddings.token_embedding.weight", {vocab, Dt}));
  VLM_ASSIGN_OR_RETURN(m->tok_pos_, ws.get("text_model.embeddings.position_embedding.weight", {m->text_len_, Dt}));
  VLM_ASSIGN_OR_RETURN(m->tlayers_, bind_layers(ws, "text_model.", m->tcfg_));
  VLM_ASSIGN_OR_RETURN(m->final_ln_, nn::Norm::bind(ws, "text_model.final_layer_norm", nn::Norm::Kind::Layer, Dt, m->tcfg_.eps));
  if (m->siglip_) {
    m->proj_dim_ = jint(tc, "projection_size", Dt);
    if (m->proj_dim_ != Dv) return make_error("siglip: text projection ", m->proj_dim_, " != vision width ", Dv);
    VLM_ASSIGN_OR_RETURN(m->tproj_, nn::Linear::bind(ws, "text_model.head", m->proj_dim_, Dt, true));
    if (!m->vision_.probe.data) return make_error("siglip: vision_model.head.* is missing (vision_use_head)");
  } else {
    m->proj_dim_ = jint(cfg, "projection_dim", 512);
    VLM_ASSIGN_OR_RETURN(m->vproj_, nn::Linear::bind(ws, "visual_projection", m->proj_dim_, Dv, false));
    VLM_ASSIGN_OR_RETURN(m->tproj_, nn::Linear::bind(ws, "text_projection", m->proj_dim_, Dt, false));
    if (!m->vision_.post.w.data) return make_error("clip: vision_model.post_layernorm is missing");
  }
  m->eos_id_ = int32_t(jint(tc, "eos_token_id", 49407));
  m->legacy_pool_ = m->eos_id_ == 2;
  m->logit_scale_ = scalar(ws, "logit_scale", 0.0f);
  m->logit_bias_ = scalar(ws, "logit_bias", 0.0f);
  return m;
}

Expected<std::vector<float>> DualEncoder::preprocess(const std::vector<Image>& images, ResampleKernel k) const {
  return preprocess_clip_images(images, pre_, k);
}

std::vector<float> DualEncoder::embed_images(const std::vector<float>& px, int64_t n, nn::Trace* trace) const {
  const int64_t S = vision_.image_size, per = 3 * S * S, T = vision_.tokens(), D = vision_.cfg.width;
  std::vector<float> out(static_cast<size_t>(n * proj_dim_)), lasts;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<float> last = vision_.encode(px.data() + i * per, vision_.cfg.layers);
    std::vector<float> pooled = vision_.pool(last);
    if (siglip_) {
      std::copy(pooled.begin(), pooled.end(), out.begin() + i * proj_dim_);
      post_last(last);
    } else {
      vproj_(pooled.data(), 1, out.data() + i * proj_dim_);
    }
    if (trace) lasts.insert(lasts.end(), last.begin(), last.end());
  }
  if (trace) trace->tensor("out.vision_model_output.last_hidden_state", lasts.data(), {n, T, D});
  return out;
}

void DualEncoder::post_last(std::vector<float>& last) const {
  // SigLIP reports last_hidden_state after post_layernorm.
  vision_.post(last.data(), vision_.tokens(), last.data());
}

Expected<std::vector<int32_t>> DualEncoder::tokenize(const std::string& text) const {
  if (!tokenizer_) return make_error(dir_, " has no tokenizer.json");
  std::vector<int32_t> ids = tokenizer_->encode(text, true);
  if (int64_t(ids.size()) > text_len_) {
    const int32_t last = ids.back();
    ids.resize(size_t(text_len_));
    if (!siglip_) ids.back() = last;  // CLIP keeps its EOS (HF truncation inserts it after the cut)
  }
  if (siglip_) {
    const int32_t pad = tokenizer_->pad_id() >= 0 ? tokenizer_->pad_id() : tokenizer_->eos_id();
    ids.resize(size_t(text_len_), pad);  // SigLIP pools the last slot: it was trained padded to max_length
  }
  return ids;
}

std::vector<float> DualEncoder::embed_texts(const std::vector<int32_t>& ids, int64_t n, int64_t S,
                                            const std::vector<int64_t>& valid, nn::Trace* trace) const {
  const int64_t Dt = tcfg_.width;
  std::vector<float> out(static_cast<size_t>(n * proj_dim_)), lasts;
  std::vector<float> x(static_cast<size_t>(S * Dt));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* row = ids.data() + i * S;
    ops::embedding(tok_emb_, row, S, x.data());
    for (int64_t t = 0; t < S; ++t)
      for (int64_t j = 0; j < Dt; ++j) x[size_t(t * Dt + j)] += ops::ref::weight_at(tok_pos_, t * Dt + j);
    const int64_t nv = valid.empty() ? S : std::clamp<int64_t>(valid[size_t(i)], 1, S);
    clip_encode(tlayers_, tcfg_.layers, tcfg_, x.data(), S, /*causal=*/!siglip_, nv);
    final_ln_(x.data(), S, x.data());
    int64_t at = S - 1;  // SigLIP: the last slot
    if (!siglip_) {
      if (legacy_pool_) {
        at = std::max_element(row, row + S) - row;
      } else {
        at = std::find(row, row + S, eos_id_) - row;
        if (at >= S) at = nv - 1;
      }
    }
    tproj_(x.data() + at * Dt, 1, out.data() + i * proj_dim_);
    if (trace) lasts.insert(lasts.end(), x.begin(), x.end());
  }
  if (trace) trace->tensor("out.text_model_output.last_hidden_state", lasts.data(), {n, S, Dt});
  return out;
}

bool is_dual_encoder(const std::string& dir) {
  auto cfg = read_json_file(dir + "/config.json");
  if (!cfg.ok() || !cfg->is_object()) return false;
  const std::string t = cfg->value("model_type", "");
  return t == "clip" || t == "siglip";
}

void l2_normalize(float* v, int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < dim; ++j) ss += double(v[i * dim + j]) * v[i * dim + j];
    const float inv = ss > 0 ? float(1.0 / std::sqrt(ss)) : 0.0f;
    for (int64_t j = 0; j < dim; ++j) v[i * dim + j] *= inv;
  }
}

std::vector<float> DualEncoder::logits(const std::vector<float>& img, int64_t n_img, const std::vector<float>& txt,
                                       int64_t n_txt) const {
  std::vector<float> a(img), b(txt), out(static_cast<size_t>(n_img * n_txt));
  l2_normalize(a.data(), n_img, proj_dim_);
  l2_normalize(b.data(), n_txt, proj_dim_);
  const float scale = std::exp(logit_scale_);
  for (int64_t i = 0; i < n_img; ++i)
    for (int64_t t = 0; t < n_txt; ++t) {
      float s = 0;
      for (int64_t j = 0; j < proj_dim_; ++j) s += a[size_t(i * proj_dim_ + j)] * b[size_t(t * proj_dim_ + j)];
      out[size_t(i * n_txt + t)] = s * scale + logit_bias_;
    }
  return out;
}

}  // namespace vlm::models
