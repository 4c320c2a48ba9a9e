#include "nn/vit.h"

#include <cmath>

namespace vlm::nn {

void VitBlock::forward(const VitBlockConfig& c, float* x, int64_t N, const float* cos, const float* sin,
                       const int32_t* cu, int n_seg) const {
  const int64_t E = c.width, M = c.mlp;
  const int hd = int(E / c.heads);
  std::vector<float> y(size_t(N * E)), qkv_buf(size_t(N * 3 * E)), att(size_t(N * E));
  norm1(x, N, y.data());
  float *qp, *kp, *vp;
  int64_t stride;
  if (qkv.w.data) {
    qkv(y.data(), N, qkv_buf.data());
    qp = qkv_buf.data();
    kp = qp + E;
    vp = qp + 2 * E;
    stride = 3 * E;
  } else {
    qp = qkv_buf.data();
    kp = qp + N * E;
    vp = qp + 2 * N * E;
    q(y.data(), N, qp);
    k(y.data(), N, kp);
    v(y.data(), N, vp);
    stride = E;
  }
  if (cos) {
    ops::rope(qp, N, stride, c.heads, hd, cos, sin);
    ops::rope(kp, N, stride, c.heads, hd, cos, sin);
  }
  int32_t whole[2] = {0, int32_t(N)};
  ops::AttnArgs a;
  a.q = qp;
  a.k = kp;
  a.v = vp;
  a.out = att.data();
  a.n_q = a.n_kv = N;
  a.q_stride = a.kv_stride = stride;
  a.heads = a.kv_heads = c.heads;
  a.d = hd;
  a.scale = 1.0f / std::sqrt(float(hd));
  a.cu_seqlens = cu ? cu : whole;
  a.n_seg = cu ? n_seg : 1;
  a.bf16 = proj.rounded();
  ops::attention(a);
  proj(att.data(), N, y.data());
  ops::add(x, y.data(), N * E);
  norm2(x, N, y.data());
  if (c.gated_mlp) {
    std::vector<float> g(size_t(N * M)), u(size_t(N * M));
    gate(y.data(), N, g.data());
    up(y.data(), N, u.data());
    if (c.act == ops::Act::Silu) {
      ops::silu_mul(g.data(), u.data(), N, M, M, g.data());
    } else {
      ops::activate(c.act, g.data(), N * M);
      for (int64_t i = 0; i < N * M; ++i) g[size_t(i)] *= u[size_t(i)];
    }
    down(g.data(), N, y.data());
  } else {
    std::vector<float> h(static_cast<size_t>(N * M));
    fc1(y.data(), N, h.data());
    ops::activate(c.act, h.data(), N * M);
    fc2(h.data(), N, y.data());
  }
  ops::add(x, y.data(), N * E);
}

void vision_rope_tables(const std::vector<std::pair<int, int>>& rc, int head_dim, float theta,
                        std::vector<float>* cos, std::vector<float>* sin) {
  const int dim = head_dim / 2;  // rotary dim argument of HF's VisionRotaryEmbedding
  const int nf = dim / 2;
  std::vector<float> inv(static_cast<size_t>(nf));
  for (int j = 0; j < nf; ++j) inv[size_t(j)] = 1.0f / std::pow(theta, float(2 * j) / float(dim));
  const size_t N = rc.size();
  cos->assign(N * size_t(head_dim), 0.0f);
  sin->assign(N * size_t(head_dim), 0.0f);
  for (size_t i = 0; i < N; ++i) {
    float* c = cos->data() + i * size_t(head_dim);
    float* s = sin->data() + i * size_t(head_dim);
    for (int j = 0; j < nf; ++j) {
      const float ar = float(rc[i].first) * inv[size_t(j)];
      const float ac = float(rc[i].second) * inv[size_t(j)];
      c[j] = c[j + dim] = std::cos(ar);
      s[j] = s[j + dim] = std::sin(ar);
      c[j + nf] = c[j + nf + dim] = std::cos(ac);
      s[j + nf] = s[j + nf + dim] = std::sin(ac);
    }
  }
}

}  // namespace vlm::nn
