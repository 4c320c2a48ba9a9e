// Compute ops. Activations are contiguous row-major f32; weights are
// TensorViews in their checkpoint dtype (F32, BF16, F16; quantised later).
// Every op has a scalar reference in ops/ref (the oracle the tests use) and
// is dispatched here to the fastest implementation for this CPU.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace vlm::ops {

enum class Act { Identity, Silu, QuickGelu, Gelu, GeluTanh };

// y[M, N] = x[M, K] · W[N, K]ᵀ (+ b[N]).  W: [N, K] any float dtype; b: [N] or null.
// Exact f32 math: weights are widened to f32 and multiplied with f32 activations.
void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y);

// Formats a linear layer's weight can be computed in (chosen once, at load).
//   Native: the checkpoint tensor as stored (F32/F16/BF16), exact f32 math as linear() above.
//   BF16:   bf16 weights and activations rounded to bf16, products summed in f32 (AVX512_BF16
//           dot products); the precision llama.cpp uses for F16/BF16 weights.
//   Q8:     int8 weights in blocks of 32 along K with an f16 scale each (1.0625 bytes/weight).
//   Q4:     4-bit weights in blocks of 32 along K with an f16 scale each (0.5625 bytes/weight).
// Q8/Q4 quantise activations to int8 per block of 32 on the fly (int8 dot products).
enum class LinearFormat { Native, BF16, Q8, Q4 };
// "native" | "bf16" | "q8" | "q4"; false if unknown.
bool parse_linear_format(const std::string& s, LinearFormat* out);
const char* linear_format_name(LinearFormat f);

// A weight prepared once, at load, for the kernels of its format. Native keeps a view of the
// checkpoint tensor (nothing copied); BF16 keeps a view when the tensor already is BF16; the
// quantised formats own their repacked blocks.
struct PackedWeight {
  LinearFormat format = LinearFormat::Native;
  int64_t n = 0, k = 0;  // W is [n, k]
  TensorView view;       // Native / BF16: the [n, k] weight
  Buffer data;           // owned storage (quantised blocks, or a BF16 copy of a non-BF16 weight)
  int64_t kp = 0;        // Q8/Q4: k rounded up to a whole block (32); padding weights are 0
  // Bytes one pass over the weight reads (what one decode step streams from memory).
  size_t bytes() const;
};

// Quantised layout (Q8/Q4), chosen for the int8 dot-product kernels: rows are grouped in panels
// of 16; each panel stores, per block of 32 along K, the 16x32 weights as [8 groups of 4 k]
// x [16 rows] x [4 k] (so one 64-byte load feeds one vpdpbusd), followed by the 16 f16 scales.
// Q8 weights are stored as q + 128 (u8); Q4 as q + 8 in 0..15, two 4-k groups per byte
// (group 2j in the low nibbles, group 2j+1 in the high nibbles). Rows past n are zero.
inline constexpr int64_t kQuantBlock = 32, kQuantPanel = 16;

std::shared_ptr<PackedWeight> pack_weight(const TensorView& W, LinearFormat f);

// y[M, N] = x[M, K] · Wᵀ (+ b) in W's format.
void linear(const float* x, int64_t M, int64_t K, const PackedWeight& W, const TensorView* b, float* y);

// Several linear layers reading the same x (q/k/v, gate/up) in one parallel region, with the
// activations converted once: each y_j equals what linear() gives for it. Each job has either a
// packed weight or a native view (packed == nullptr); all jobs must share one format.
struct LinearJob {
  const PackedWeight* packed = nullptr;
  const TensorView* w = nullptr;
  const TensorView* b = nullptr;
  float* y = nullptr;
};
void linear_group(const float* x, int64_t M, int64_t K, const LinearJob* jobs, int n_jobs);

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
  // Q·Kᵀ and P·V may round Q, K, V and the probabilities to bf16 (sums stay f32): the precision
  // of the bf16/quantised weight formats. A permission: kernels without a bf16 path stay exact.
  bool bf16 = false;
};
void attention(const AttnArgs& a);

}  // namespace vlm::ops

namespace vlm::ops {

// Memory read bandwidth in GB/s seen by parallel_for's threads: each pass sums a `bytes` buffer
// (touched first, so no page faults are timed). Returns the median pass; min/max optional.
double probe_read_bandwidth(size_t bytes, int passes, double* min_gbs = nullptr, double* max_gbs = nullptr);

// Name of the CPU kernel set in use ("avx512_amx", "avx512", "avx2", "portable"; VLM_ISA caps it).
const char* kernel_set_name();

}  // namespace vlm::ops
