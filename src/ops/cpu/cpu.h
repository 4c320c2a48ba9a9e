// Optimised CPU kernels (multi-threaded; SIMD variants chosen at run time).
#pragma once
#include "ops/ops.h"

namespace vlm::ops::cpu {

void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y);
void attention(const AttnArgs& a);

}  // namespace vlm::ops::cpu
