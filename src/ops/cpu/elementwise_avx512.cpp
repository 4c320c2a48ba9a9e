// AVX-512 norms and activations (same formulas and order as the scalar reference; exp is the
// ~1-ulp polynomial of avx512_math.h, so results differ from std::exp by rounding only).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "ops/cpu/avx512_math.h"
#include "ops/cpu/cpu.h"
#include "ops/ref/ref.h"

namespace vlm::ops::cpu {
namespace {

inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// 16 weights at i as f32 (F32 / BF16 / F16), masked.
inline __m512 load_w(const TensorView& w, int64_t i, __mmask16 m) {
  switch (w.dtype) {
    case DType::F32: return _mm512_maskz_loadu_ps(m, w.as<float>() + i);
    case DType::BF16:
      return _mm512_castsi512_ps(
          _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w.as<uint16_t>() + i)), 16));
    default: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w.as<uint16_t>() + i));
  }
}

inline __m512 silu(__m512 v, __m512 a) {  // v / (1 + e^(-a·v))
  const __m512 e = exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), v));
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

}  // namespace

void activate_avx512(Act act, float* x, int64_t n) {
  if (act == Act::Identity) return;
  if (act != Act::Silu && act != Act::QuickGelu) return ref::activate(act, x, n);
  const __m512 a = _mm512_set1_ps(act == Act::Silu ? 1.0f : 1.702f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, m, silu(_mm512_maskz_loadu_ps(m, x + i), a));
  }
}

void silu_mul_avx512(const float* gate, const float* up, int64_t rows, int64_t I, int64_t stride, float* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < I; i += 16) {
      const __mmask16 m = tail_mask(I - i);
      const __m512 g = _mm512_maskz_loadu_ps(m, gate + r * stride + i), u = _mm512_maskz_loadu_ps(m, up + r * stride + i);
      _mm512_mask_storeu_ps(out + r * I + i, m, _mm512_mul_ps(silu(g, one), u));
    }
}

void rmsnorm_avx512(const float* x, int64_t rows, int64_t dim, const TensorView& w, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    __m512 ss = _mm512_setzero_ps();
    for (int64_t i = 0; i < dim; i += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(tail_mask(dim - i), xr + i);
      ss = _mm512_fmadd_ps(v, v, ss);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(ss) / float(dim) + eps));
    for (int64_t i = 0; i < dim; i += 16) {
      const __mmask16 m = tail_mask(dim - i);
      const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + i), inv);
      _mm512_mask_storeu_ps(y + r * dim + i, m, _mm512_mul_ps(v, load_w(w, i, m)));
    }
  }
}

void layernorm_avx512(const float* x, int64_t rows, int64_t dim, const TensorView& w, const TensorView& b, float eps,
                      float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < dim; i += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail_mask(dim - i), xr + i));
    const float mean = _mm512_reduce_add_ps(s) / float(dim);
    const __m512 mv = _mm512_set1_ps(mean);
    __m512 var = _mm512_setzero_ps();
    for (int64_t i = 0; i < dim; i += 16) {
      const __mmask16 m = tail_mask(dim - i);
      const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xr + i), mv);
      var = _mm512_fmadd_ps(d, d, var);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(var) / float(dim) + eps));
    for (int64_t i = 0; i < dim; i += 16) {
      const __mmask16 m = tail_mask(dim - i);
      const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + i), mv), inv);
      _mm512_mask_storeu_ps(y + r * dim + i, m, _mm512_add_ps(_mm512_mul_ps(v, load_w(w, i, m)), load_w(b, i, m)));
    }
  }
}

}  // namespace vlm::ops::cpu
