// Portable blocked linear: weights are widened to f32 one tile at a time and
// reused across all M rows, so each weight byte is read from memory once.
#include <algorithm>
#include <vector>

#include "core/threads.h"
#include "ops/cpu/cpu.h"
#include "ops/ref/ref.h"

namespace vlm::ops::cpu {
namespace {

void widen_row(const TensorView& W, int64_t n, int64_t K, float* dst) {
  switch (W.dtype) {
    case DType::F32: std::copy_n(W.as<float>() + n * K, K, dst); break;
    case DType::BF16: {
      const uint16_t* s = W.as<uint16_t>() + n * K;
      for (int64_t k = 0; k < K; ++k) dst[k] = bf16_to_f32(s[k]);
      break;
    }
    default:
      for (int64_t k = 0; k < K; ++k) dst[k] = ref::weight_at(W, n * K + k);
  }
}

inline float dot(const float* a, const float* b, int64_t K) {
  // 8 independent partial sums let the compiler vectorise without -ffast-math.
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= K; k += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[k + j] * b[k + j];
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; k < K; ++k) t += a[k] * b[k];
  return t;
}

}  // namespace

void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y) {
  const int64_t N = W.dim(0);
  VLM_CHECK(W.ndim == 2 && W.dim(1) == K, "linear: W is %s, K=%lld", W.shape_str().c_str(), (long long)K);
  constexpr int64_t kTileN = 16;
  parallel_for(N, kTileN, [&](int64_t n0, int64_t n1) {
    std::vector<float> wt(size_t(kTileN * K));
    for (int64_t nb = n0; nb < n1; nb += kTileN) {
      const int64_t nt = std::min(kTileN, n1 - nb);
      for (int64_t j = 0; j < nt; ++j) widen_row(W, nb + j, K, wt.data() + j * K);
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        for (int64_t j = 0; j < nt; ++j) {
          float v = dot(xm, wt.data() + j * K, K);
          if (b) v += ref::weight_at(*b, nb + j);
          y[m * N + nb + j] = v;
        }
      }
    }
  });
}

}  // namespace vlm::ops::cpu
