// Compute ops. Activations are contiguous row-major f32; weights are
// TensorViews in their checkpoint dtype (F32, BF16, F16; quantised later).
// Every op has a scalar reference in ops/ref (the oracle the tests use) and
// is dispatched here to the fastest implementation for this CPU.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace vlm::ops {

enum class Act { Identity, Silu, QuickGelu, Gelu, GeluTanh };

// y[M, N] = x[M, K] · W[N, K]ᵀ (+ b[N]).  W: [N, K] any float dtype; b: [N] or null.
void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y);

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * w.   x, y: [rows, dim]; w: [dim]. y may alias x.
void rmsnorm(const float* x, int64_t rows, int64_t dim, const TensorView& w, float eps, float* y);

// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b.  x, y: [rows, dim]; w, b: [dim]. y may alias x.
void layernorm(const float* x, int64_t rows, int64_t dim, const TensorView& w, const TensorView& b,
               float eps, float* y);

// In-place activation over n values.
void activate(Act act, float* x, int64_t n);

// out[r, i] = silu(gate[r, i]) * up[r, i]; gate/up rows are `stride` apart (so one fused
// [rows, 2I] projection can be split in place). out: [rows, I]; it may be `gate` itself when stride == I, else must not overlap gate/up.
void silu_mul(const float* gate, const float* up, int64_t rows, int64_t I, int64_t stride, float* out);

// x[i] += y[i].
void add(float* x, const float* y, int64_t n);

// out[i, :] = E[ids[i], :] as f32.  E: [vocab, D].
void embedding(const TensorView& E, const int32_t* ids, int64_t n, float* out);

// Half-split ("NeoX") rotary embedding applied in place to `heads` heads of size d in each of
// `rows` rows: x[r, h*d + i] rotates with x[r, h*d + i + d/2].  x rows are `stride` floats
// apart; cos/sin: [rows, d] (concat(angle, angle) layout).
void rope(float* x, int64_t rows, int64_t stride, int heads, int d, const float* cos, const float* sin);

// Scaled dot-product attention without materialising a seq×seq matrix.
//   q: [n_q rows, q_stride], head h at column h*d;  k, v: [n_kv rows, kv_stride], kv head g at g*d.
//   out: [n_q, heads*d] contiguous.  Query head h reads kv head h / (heads / kv_heads).
// Masking, both optional:
//   causal: query row i sits at absolute position q_pos0 + i and sees keys j <= q_pos0 + i.
//   segments (cu_seqlens, n_seg+1 entries over shared row indices, n_q == n_kv): a query in
//     segment s sees only keys of segment s (packed images / windows of the ViT).
struct AttnArgs {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  float* out = nullptr;
  int64_t n_q = 0, n_kv = 0;
  int64_t q_stride = 0, kv_stride = 0;
  int heads = 0, kv_heads = 0, d = 0;
  float scale = 1.0f;
  bool causal = false;
  int64_t q_pos0 = 0;
  const int32_t* cu_seqlens = nullptr;
  int n_seg = 0;
};
void attention(const AttnArgs& a);

}  // namespace vlm::ops
