// Load-time Q8/Q4 packing of bf16 weights with AVX-512: the same bytes as the scalar definition
// (quant::quantize_block), about an order of magnitude faster, which is most of a q8/q4 load.
// The per-block scale stays scalar (f16 conversions, one division per 32 weights); the weights
// are scaled, clamped and rounded 32 at a time (vcvtps2dq rounds half to even, as round_even).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "ops/cpu/cpu.h"
#include "ops/quant.h"

namespace vlm::ops::cpu {

void quantize_block_bf16_avx512(LinearFormat f, const uint16_t* src, int64_t K, int rows, int nk, uint8_t* q,
                                uint16_t* s) {
  const __mmask32 valid = nk >= 32 ? __mmask32(0xFFFFFFFFu) : __mmask32((1u << nk) - 1);
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int r = 0; r < kQuantPanel; ++r) {
    const __m512i raw = _mm512_maskz_loadu_epi16(r < rows ? valid : 0, src + r * K);
    const __m512 w0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(raw)), 16));
    const __m512 w1 =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(raw, 1)), 16));
    const __m512 a0 = _mm512_andnot_ps(sign, w0), a1 = _mm512_andnot_ps(sign, w1);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    alignas(64) int32_t v[32];
    if (f == LinearFormat::Q8) {
      const uint16_t d16 = f32_to_f16(amax / 127.0f);
      const float d = f16_to_f32(d16);
      s[r] = d16;
      const __m512 id = _mm512_set1_ps(d > 0 ? 1.0f / d : 0.0f);
      const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
      const __m512i off = _mm512_set1_epi32(128);
      _mm512_store_si512(v, _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(w0, id), lo), hi)), off));
      _mm512_store_si512(v + 16, _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(w1, id), lo), hi)), off));
      for (int g = 0; g < 8; ++g) {
        uint8_t* dst = q + (g * 16 + r) * 4;
        for (int j = 0; j < 4; ++j) dst[j] = uint8_t(v[g * 4 + j]);
      }
    } else {
      // The scale follows the first weight of largest magnitude (its sign included).
      float vmax = 0.0f;
      if (amax > 0) {
        const uint32_t m = uint32_t(_mm512_cmp_ps_mask(a0, _mm512_set1_ps(amax), _CMP_EQ_OQ)) |
                           (uint32_t(_mm512_cmp_ps_mask(a1, _mm512_set1_ps(amax), _CMP_EQ_OQ)) << 16);
        vmax = bf16_to_f32(src[r * K + __builtin_ctz(m)]);
      }
      const uint16_t d16 = f32_to_f16(vmax / -8.0f);
      const float d = f16_to_f32(d16);
      s[r] = d16;
      const __m512 id = _mm512_set1_ps(d != 0 ? 1.0f / d : 0.0f);
      const __m512 lo = _mm512_set1_ps(-8.0f), hi = _mm512_set1_ps(8.0f);
      const __m512i off = _mm512_set1_epi32(8), zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(15);
      auto quant = [&](__m512 w) {
        const __m512i x = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(w, id), lo), hi)), off);
        return _mm512_min_epi32(_mm512_max_epi32(x, zero), top);
      };
      _mm512_store_si512(v, quant(w0));
      _mm512_store_si512(v + 16, quant(w1));
      for (int h = 0; h < 4; ++h) {
        uint8_t* dst = q + (h * 16 + r) * 4;
        for (int j = 0; j < 4; ++j) dst[j] = uint8_t(v[8 * h + j] | (v[8 * h + 4 + j] << 4));
      }
    }
  }
}

}  // namespace vlm::ops::cpu
