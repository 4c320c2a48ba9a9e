// Scalar reference implementations: straightforward loops, double-free f32
// math in the obvious order. They define correct; SIMD/CUDA versions are
// tested against them.
#pragma once
#include <vector>

#include "ops/ops.h"

namespace vlm::ops::ref {

float weight_at(const TensorView& w, int64_t i);  // element i of any float-dtype weight as f32

void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y);
void rmsnorm(const float* x, int64_t rows, int64_t dim, const TensorView& w, float eps, float* y);
void layernorm(const float* x, int64_t rows, int64_t dim, const TensorView& w, const TensorView& b,
               float eps, float* y);
void activate(Act act, float* x, int64_t n);
void silu_mul(const float* gate, const float* up, int64_t rows, int64_t I, int64_t stride, float* out);
void add(float* x, const float* y, int64_t n);
void embedding(const TensorView& E, const int32_t* ids, int64_t n, float* out);
void rope(float* x, int64_t rows, int64_t stride, int heads, int d, const float* cos, const float* sin);
void attention(const AttnArgs& a);

// Packed-weight formats. dequantize: the [n, k] weights a packed weight represents, as f32.
std::vector<float> dequantize(const PackedWeight& w);
// Activation quantisation of the int8 kernels, per block of 32 (kp >= K, a multiple of 32, zero
// padded): d = max|x| / 127, q = round-half-even(x · (1/d)). q: [kp], d: [kp / 32].
void quantize_activations(const float* x, int64_t K, int64_t kp, int8_t* q, float* d);
// What the kernels compute for each format: Native exactly as linear(); BF16 with x rounded to
// bf16; Q8/Q4 with x quantised as above and sum over blocks of dw·dx·(integer block dot).
void linear(const float* x, int64_t M, int64_t K, const PackedWeight& W, const TensorView* b, float* y);

}  // namespace vlm::ops::ref
