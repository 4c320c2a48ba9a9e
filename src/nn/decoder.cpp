#include "nn/decoder.h"

#include <cmath>

namespace vlm::nn {

void KVCache::reset(int layers, int64_t row) {
  k_.assign(size_t(layers), {});
  v_.assign(size_t(layers), {});
  row_ = row;
  cap_ = 0;
  len = 0;
}

void KVCache::reserve(int64_t positions) {
  if (positions <= cap_) return;
  int64_t n = std::max(positions, cap_ * 2);
  for (auto& k : k_) k.resize(size_t(n * row_));
  for (auto& v : v_) v.resize(size_t(n * row_));
  cap_ = n;
}

Expected<Decoder> Decoder::bind(const WeightStore& ws, const DecoderConfig& cfg, const std::string& prefix,
                                const std::string& lm_head_name) {
  Decoder d;
  d.cfg = cfg;
  const int64_t D = cfg.hidden, I = cfg.inter, hd = cfg.head_dim;
  const int64_t qd = int64_t(cfg.heads) * hd, kd = int64_t(cfg.kv_heads) * hd;
  if (cfg.heads <= 0 || cfg.kv_heads <= 0 || cfg.heads % cfg.kv_heads != 0 || hd <= 0 || hd % 2 != 0)
    return make_error("bad attention config: heads ", cfg.heads, ", kv_heads ", cfg.kv_heads, ", head_dim ", hd);
  VLM_ASSIGN_OR_RETURN(d.embed, ws.get(prefix + "embed_tokens.weight", {cfg.vocab, D}));
  if (cfg.tied) {
    d.lm_head = d.embed;
  } else {
    VLM_ASSIGN_OR_RETURN(d.lm_head, ws.get(lm_head_name, {cfg.vocab, D}));
  }
  VLM_ASSIGN_OR_RETURN(d.head, Linear::from_view(d.lm_head, ws.linear_format));
  // The packed head replaces the matrix; a tied embedding maps back only the rows looked up.
  if (d.head.packed && d.head.packed->data.data()) ws.release(d.lm_head);
  VLM_ASSIGN_OR_RETURN(d.final_norm, Norm::bind(ws, prefix + "norm", Norm::Kind::RMS, D, cfg.eps));
  for (int64_t i = 0;; ++i) {
    const std::string p = prefix + "layers." + std::to_string(i) + ".";
    if (!ws.has(p + "input_layernorm.weight")) break;
    DecoderLayer L;
    VLM_ASSIGN_OR_RETURN(L.in_norm, Norm::bind(ws, p + "input_layernorm", Norm::Kind::RMS, D, cfg.eps));
    VLM_ASSIGN_OR_RETURN(L.post_norm, Norm::bind(ws, p + "post_attention_layernorm", Norm::Kind::RMS, D, cfg.eps));
    VLM_ASSIGN_OR_RETURN(L.q, Linear::bind(ws, p + "self_attn.q_proj", qd, D, cfg.qkv_bias));
    VLM_ASSIGN_OR_RETURN(L.k, Linear::bind(ws, p + "self_attn.k_proj", kd, D, cfg.qkv_bias));
    VLM_ASSIGN_OR_RETURN(L.v, Linear::bind(ws, p + "self_attn.v_proj", kd, D, cfg.qkv_bias));
    VLM_ASSIGN_OR_RETURN(L.o, Linear::bind(ws, p + "self_attn.o_proj", D, qd, false));
    if (cfg.qk_norm) {
      VLM_ASSIGN_OR_RETURN(L.q_norm, Norm::bind(ws, p + "self_attn.q_norm", Norm::Kind::RMS, hd, cfg.eps));
      VLM_ASSIGN_OR_RETURN(L.k_norm, Norm::bind(ws, p + "self_attn.k_norm", Norm::Kind::RMS, hd, cfg.eps));
    }
    VLM_ASSIGN_OR_RETURN(L.gate, Linear::bind(ws, p + "mlp.gate_proj", I, D, false));
    VLM_ASSIGN_OR_RETURN(L.up, Linear::bind(ws, p + "mlp.up_proj", I, D, false));
    VLM_ASSIGN_OR_RETURN(L.down, Linear::bind(ws, p + "mlp.down_proj", D, I, false));
    d.layers.push_back(L);
  }
  return d;
}

void Decoder::embed_tokens(const int32_t* ids, int64_t n, float* out) const { ops::embedding(embed, ids, n, out); }

void Decoder::forward(float* h, int64_t n, const float* cos, const float* sin, KVCache& cache, Trace* trace,
                      const std::function<void(int, float*, int64_t)>& after_layer) const {
  const int64_t D = cfg.hidden, I = cfg.inter, hd = cfg.head_dim;
  const int64_t qd = int64_t(cfg.heads) * hd, kd = int64_t(cfg.kv_heads) * hd;
  const int64_t pos0 = cache.len;
  cache.reserve(pos0 + n);
  std::vector<float> x(size_t(n * D)), q(size_t(n * qd)), att(size_t(n * qd)), g(size_t(n * I)),
      u(size_t(n * I));
  if (trace) trace->tensor("hidden_states.0", h, {n, D});
  const int nl = int(layers.size());
  for (int li = 0; li < nl; ++li) {
    const DecoderLayer& L = layers[size_t(li)];
    L.in_norm(h, n, x.data());
    float* kc = cache.k(li, pos0);
    float* vc = cache.v(li, pos0);
    run_linears(x.data(), n, {{&L.q, q.data()}, {&L.k, kc}, {&L.v, vc}});
    if (cfg.qk_norm) {
      L.q_norm(q.data(), n * cfg.heads, q.data());
      L.k_norm(kc, n * cfg.kv_heads, kc);
    }
    ops::rope(q.data(), n, qd, cfg.heads, int(hd), cos, sin);
    ops::rope(kc, n, kd, cfg.kv_heads, int(hd), cos, sin);
    ops::AttnArgs a;
    a.q = q.data();
    a.k = cache.k(li, 0);
    a.v = cache.v(li, 0);
    a.out = att.data();
    a.n_q = n;
    a.n_kv = pos0 + n;
    a.q_stride = qd;
    a.kv_stride = kd;
    a.heads = cfg.heads;
    a.kv_heads = cfg.kv_heads;
    a.d = int(hd);
    a.scale = 1.0f / std::sqrt(float(hd));
    a.causal = true;
    a.q_pos0 = pos0;
    a.bf16 = L.o.rounded();
    ops::attention(a);
    L.o(att.data(), n, x.data());
    ops::add(h, x.data(), n * D);
    L.post_norm(h, n, x.data());
    run_linears(x.data(), n, {{&L.gate, g.data()}, {&L.up, u.data()}});
    ops::silu_mul(g.data(), u.data(), n, I, I, g.data());
    L.down(g.data(), n, x.data());
    ops::add(h, x.data(), n * D);
    if (trace && li + 1 < nl) trace->tensor("hidden_states." + std::to_string(li + 1), h, {n, D});
    if (after_layer) after_layer(li, h, n);
  }
  final_norm(h, n, h);
  if (trace) trace->tensor("hidden_states." + std::to_string(nl), h, {n, D});
  cache.len = pos0 + n;
}

void Decoder::logits(const float* h_row, float* out) const { head(h_row, 1, out); }

size_t Decoder::decode_weight_bytes() const {
  size_t n = head.weight_bytes() + final_norm.w.nbytes();
  for (const DecoderLayer& L : layers) {
    for (const Linear* l : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) n += l->weight_bytes();
    n += L.in_norm.w.nbytes() + L.post_norm.w.nbytes() + L.q_norm.w.nbytes() + L.k_norm.w.nbytes();
  }
  return n;
}

}  // namespace vlm::nn
