#include "ops/ops.h"

#include "core/threads.h"
#include "ops/cpu/cpu.h"
#include "ops/ref/ref.h"

namespace vlm::ops {

void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y) {
  cpu::linear(x, M, K, W, b, y);
}

void linear(const float* x, int64_t M, int64_t K, const PackedWeight& W, const TensorView* b, float* y) {
  cpu::linear(x, M, K, W, b, y);
}

void linear_group(const float* x, int64_t M, int64_t K, const LinearJob* jobs, int n_jobs) {
  cpu::linear_group(x, M, K, jobs, n_jobs);
}

void rmsnorm(const float* x, int64_t rows, int64_t dim, const TensorView& w, float eps, float* y) {
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    cpu::kernels().rmsnorm(x + r0 * dim, r1 - r0, dim, w, eps, y + r0 * dim);
  });
}

void layernorm(const float* x, int64_t rows, int64_t dim, const TensorView& w, const TensorView& b,
               float eps, float* y) {
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    cpu::kernels().layernorm(x + r0 * dim, r1 - r0, dim, w, b, eps, y + r0 * dim);
  });
}

void activate(Act act, float* x, int64_t n) {
  parallel_for(n, 4096, [&](int64_t b, int64_t e) { cpu::kernels().activate(act, x + b, e - b); });
}

void silu_mul(const float* gate, const float* up, int64_t rows, int64_t I, int64_t stride, float* out) {
  parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
    cpu::kernels().silu_mul(gate + r0 * stride, up + r0 * stride, r1 - r0, I, stride, out + r0 * I);
  });
}

void add(float* x, const float* y, int64_t n) { ref::add(x, y, n); }

void embedding(const TensorView& E, const int32_t* ids, int64_t n, float* out) { ref::embedding(E, ids, n, out); }

void rope(float* x, int64_t rows, int64_t stride, int heads, int d, const float* cos, const float* sin) {
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    ref::rope(x + r0 * stride, r1 - r0, stride, heads, d, cos + r0 * d, sin + r0 * d);
  });
}

void attention(const AttnArgs& a) { cpu::attention(a); }

}  // namespace vlm::ops
