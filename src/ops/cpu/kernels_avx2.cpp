// The AVX2 + FMA + F16C kernel set, for x86 CPUs without AVX-512 (most desktops and laptops before
// 2022, AMD before Zen 4). Same contracts as the AVX-512 set; tested against the scalar reference.
//
// Matrix products are dot-product kernels: W rows and x rows are both contiguous along K, so a
// register block of MR x rows by NR W rows keeps MR·NR 8-lane partial sums and reads each operand
// once per k step. Every output element is summed in the same order whatever block it falls in
// (8 lanes over k, then one fixed horizontal sum), so splitting N between threads or grouping
// layers never changes a bit.
//
// Q8/Q4 use vpmaddubsw (u8 x s8 -> s16 pairs) then vpmaddwd: Q8 weights (stored q + 128) are
// recentred to s8 and the sign moved onto the activation, so no pair sum can saturate (127·127·2
// < 32767); Q4 nibbles are 0..15 (15·127·2 < 32767).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/threads.h"
#include "ops/cpu/cpu.h"
#include "ops/cpu/exp_poly.h"
#include "ops/quant.h"
#include "ops/ref/ref.h"

namespace vlm::ops::cpu {
namespace {

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// 8 values at p[i..i+8) widened to f32; `n` < 8 reads only n of them (the rest 0).
enum class Src { F32, BF16, F16 };
template <Src S>
__attribute__((always_inline)) inline __m256 load8(const void* p, int64_t i, int n) {
  if constexpr (S == Src::F32) {
    const float* f = static_cast<const float*>(p) + i;
    if (n >= 8) return _mm256_loadu_ps(f);
    alignas(32) float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(t, f, size_t(n) * 4);
    return _mm256_load_ps(t);
  } else {
    const uint16_t* h = static_cast<const uint16_t*>(p) + i;
    __m128i raw;
    if (n >= 8) {
      raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h));
    } else {
      alignas(16) uint16_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::memcpy(t, h, size_t(n) * 2);
      raw = _mm_load_si128(reinterpret_cast<const __m128i*>(t));
    }
    if constexpr (S == Src::BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
    return _mm256_cvtph_ps(raw);
  }
}

// y[m0 + i][n0 + j] for i < MR, j < NR.
template <int MR, int NR, Src SX, Src SW>
void dot_block(const void* x, int64_t ldx, int64_t m0, const void* W, int64_t K, int64_t n0, const float* bias,
               float* y, int64_t ldy) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  // Whole steps of 8, then one zero-padded step for a K tail (the same order in every block).
  const int64_t K8 = K / 8 * 8;
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 w[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) w[j] = load8<SW>(W, (n0 + j) * K + k, 8);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = load8<SX>(x, (m0 + i) * ldx + k, 8);
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, w[j], acc[i][j]);
    }
  }
  if (K8 < K) {
    const int n = int(K - K8);
    __m256 w[NR];
    for (int j = 0; j < NR; ++j) w[j] = load8<SW>(W, (n0 + j) * K + K8, n);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = load8<SX>(x, (m0 + i) * ldx + K8, n);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[(m0 + i) * ldy + n0 + j] = hsum(acc[i][j]) + (bias ? bias[n0 + j] : 0.0f);
}

template <Src SX, Src SW>
void dot_gemm(const void* x, int64_t ldx, int64_t M, int64_t K, const void* W, int64_t n0, int64_t n1,
              const float* bias, float* y, int64_t ldy) {
  using Fn = void (*)(const void*, int64_t, int64_t, const void*, int64_t, int64_t, const float*, float*, int64_t);
  static constexpr Fn tab[4][4] = {
      {dot_block<1, 1, SX, SW>, dot_block<1, 2, SX, SW>, dot_block<1, 3, SX, SW>, dot_block<1, 4, SX, SW>},
      {dot_block<2, 1, SX, SW>, dot_block<2, 2, SX, SW>, dot_block<2, 3, SX, SW>, dot_block<2, 4, SX, SW>},
      {dot_block<3, 1, SX, SW>, dot_block<3, 2, SX, SW>, dot_block<3, 3, SX, SW>, dot_block<3, 4, SX, SW>},
      {dot_block<4, 1, SX, SW>, dot_block<4, 2, SX, SW>, dot_block<4, 3, SX, SW>, dot_block<4, 4, SX, SW>}};
  // W rows in chunks that stay in L2 while every x row passes over them.
  const int64_t rows_per_chunk = std::max<int64_t>(4, (int64_t(256) << 10) / std::max<int64_t>(1, K * 2) / 4 * 4);
  for (int64_t c0 = n0; c0 < n1; c0 += rows_per_chunk) {
    const int64_t c1 = std::min(n1, c0 + rows_per_chunk);
    for (int64_t m = 0; m < M; m += 4) {
      const int mr = int(std::min<int64_t>(4, M - m));
      for (int64_t n = c0; n < c1; n += 4) tab[mr - 1][std::min<int64_t>(4, c1 - n) - 1](x, ldx, m, W, K, n, bias, y, ldy);
    }
  }
}

void gemm_f32_avx2(const float* x, int64_t M, int64_t K, const TensorView& W, int64_t n0, int64_t n1,
                   const float* bias, float* y, int64_t ldy) {
  switch (W.dtype) {
    case DType::F32: return dot_gemm<Src::F32, Src::F32>(x, K, M, K, W.data, n0, n1, bias, y, ldy);
    case DType::BF16: return dot_gemm<Src::F32, Src::BF16>(x, K, M, K, W.data, n0, n1, bias, y, ldy);
    case DType::F16: return dot_gemm<Src::F32, Src::F16>(x, K, M, K, W.data, n0, n1, bias, y, ldy);
    default: return gemm_f32_portable(x, M, K, W, n0, n1, bias, y, ldy);
  }
}

void gemm_bf16_avx2(const uint16_t* xb, int64_t ldx, int64_t M, int64_t K, const uint16_t* W, int64_t n0,
                    int64_t n1, const float* bias, float* y, int64_t ldy) {
  if (M <= 4) return dot_gemm<Src::BF16, Src::BF16>(xb, ldx, M, K, W, n0, n1, bias, y, ldy);
  // Widen the (bf16-rounded) activations once instead of in every register block; the products
  // are the same exact bf16 x bf16 values.
  std::vector<float> xf(static_cast<size_t>(M * K));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) xf[size_t(m * K + k)] = bf16_to_f32(xb[m * ldx + k]);
  dot_gemm<Src::F32, Src::BF16>(xf.data(), K, M, K, W, n0, n1, bias, y, ldy);
}

// ---- Q8 / Q4 ---------------------------------------------------------------------------------
// One panel (16 rows) for MR activation rows: two halves of 8 rows, each an 8-lane f32 sum.
template <int MR, bool Q4>
void quant_panel(const QuantActs& a, int64_t m0, const PackedWeight& W, int64_t p, const float* bias, float* y,
                 int64_t ldy) {
  __m256 f[MR][2];
  for (int i = 0; i < MR; ++i) f[i][0] = f[i][1] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1), lo4 = _mm256_set1_epi8(0x0F), bias8 = _mm256_set1_epi8(char(0x80));
  const int64_t bb = quant::block_bytes(W.format);
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint8_t* q = quant::quants(W, p, b);
    const uint16_t* sc = quant::scales(W, p, b);
    if (MR == 1)  // decode streams the panel: 8 blocks ahead, as the AVX-512 kernel
      for (int64_t o = 0; o < bb; o += 64) _mm_prefetch(reinterpret_cast<const char*>(q + 8 * bb + o), _MM_HINT_T0);
    __m256i s[MR][2];
    for (int i = 0; i < MR; ++i) s[i][0] = s[i][1] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      if constexpr (!Q4) {
        for (int g = 0; g < 8; ++g) {
          const __m256i w = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + g * 64 + h * 32)), bias8);
          const __m256i aw = _mm256_sign_epi8(w, w);  // |w| as u8
          for (int i = 0; i < MR; ++i) {
            int32_t v;
            std::memcpy(&v, a.q + (m0 + i) * a.kp + b * 32 + 4 * g, 4);
            const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(v), w);  // x carrying w's sign
            s[i][h] = _mm256_add_epi32(s[i][h], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones));
          }
        }
      } else {
        for (int g2 = 0; g2 < 4; ++g2) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + g2 * 64 + h * 32));
          const __m256i wl = _mm256_and_si256(v, lo4), wh = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
          for (int i = 0; i < MR; ++i) {
            int32_t v0, v1;
            std::memcpy(&v0, a.q + (m0 + i) * a.kp + b * 32 + 8 * g2, 4);
            std::memcpy(&v1, a.q + (m0 + i) * a.kp + b * 32 + 8 * g2 + 4, 4);
            const __m256i t = _mm256_add_epi16(_mm256_maddubs_epi16(wl, _mm256_set1_epi32(v0)),
                                               _mm256_maddubs_epi16(wh, _mm256_set1_epi32(v1)));
            s[i][h] = _mm256_add_epi32(s[i][h], _mm256_madd_epi16(t, ones));
          }
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 8 * h)));
      for (int i = 0; i < MR; ++i) {
        const float d = a.d[(m0 + i) * a.nb + b];
        // Q8 sums are already centred (= s + e); Q4 adds e = -8·Σx like the reference.
        __m256 t = _mm256_cvtepi32_ps(s[i][h]);
        if constexpr (Q4) t = _mm256_add_ps(t, _mm256_set1_ps(a.e[(m0 + i) * a.nb + b]));
        f[i][h] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d)), t, f[i][h]);
      }
    }
  }
  const int64_t col = p * kQuantPanel;
  for (int i = 0; i < MR; ++i) {
    alignas(32) float out[16];
    _mm256_store_ps(out, f[i][0]);
    _mm256_store_ps(out + 8, f[i][1]);
    for (int r = 0; r < 16 && col + r < W.n; ++r) y[(m0 + i) * ldy + col + r] = out[r] + (bias ? bias[col + r] : 0.0f);
  }
}

// (The 16-bit sums of two Q4 pairs stay below 2·3810, far from saturation.)
void gemm_quant_avx2(const QuantActs& a, int64_t M, const PackedWeight& W, int64_t n0, int64_t n1,
                     const float* bias, float* y, int64_t ldy) {
  const int64_t p0 = n0 / kQuantPanel, p1 = (n1 + kQuantPanel - 1) / kQuantPanel;
  const bool q4 = W.format == LinearFormat::Q4;
  for (int64_t p = p0; p < p1; ++p) {
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) q4 ? quant_panel<4, true>(a, m, W, p, bias, y, ldy) : quant_panel<4, false>(a, m, W, p, bias, y, ldy);
    for (; m < M; ++m) q4 ? quant_panel<1, true>(a, m, W, p, bias, y, ldy) : quant_panel<1, false>(a, m, W, p, bias, y, ldy);
  }
}

// ---- attention -------------------------------------------------------------------------------
// Flash style per (head, 4 queries): keys transposed per kv head into blocks [d][8], so 8 scores
// come from d FMAs with the query broadcast; online softmax per row; P·V adds each key's value row.
inline __m256 exp256(__m256 x) {  // 8 lanes of exp512 (exp_poly.h)
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpMin)), _mm256_set1_ps(kExpMax));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kExpLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kExpLn2Lo), _mm256_fnmadd_ps(n, _mm256_set1_ps(kExpLn2Hi), x));
  __m256 p = _mm256_set1_ps(kExpQ[0]);
#pragma GCC unroll 6
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpQ[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n by building the exponent bits (n in [-126, 128] after the clamp above).
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

constexpr int kQ = 4;       // queries per tile
constexpr int kMaxD = 256;  // head size limit (larger: portable)

// Few query rows (decode): no K transpose, which would cost a pass over the whole cache per step.
// Per (row, head): scores by dot products with each key row, softmax over them, then P·V.
void attention_rows_avx2(const AttnArgs& a) {
  const int d = a.d, group = a.heads / a.kv_heads, d8 = d / 8 * 8;
  attn_for_each_row(a, size_t(a.n_kv), [&](int64_t i, int h, int64_t lo, int64_t hi, float* sc) {
    float* out = a.out + i * int64_t(a.heads) * d + int64_t(h) * d;
    if (hi <= lo) {
      std::fill(out, out + d, 0.0f);
      return;
    }
    const float* q = a.q + i * a.q_stride + int64_t(h) * d;
    const int64_t kv_off = int64_t(h / group) * d;
    float mx = -INFINITY;
    for (int64_t j = lo; j < hi; ++j) {
      const float* k = a.k + j * a.kv_stride + kv_off;
      __m256 acc = _mm256_setzero_ps();
      for (int e = 0; e < d8; e += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + e), _mm256_loadu_ps(k + e), acc);
      float s = hsum(acc);
      for (int e = d8; e < d; ++e) s += q[e] * k[e];
      s *= a.scale;
      sc[j - lo] = s;
      mx = std::max(mx, s);
    }
    float sum = 0;
    for (int64_t j = 0; j < hi - lo; ++j) sum += (sc[j] = std::exp(sc[j] - mx));
    std::fill(out, out + d, 0.0f);
    for (int64_t j = 0; j < hi - lo; ++j) {
      const float* v = a.v + (lo + j) * a.kv_stride + kv_off;
      const __m256 p = _mm256_set1_ps(sc[j]);
      for (int e = 0; e < d8; e += 8) _mm256_storeu_ps(out + e, _mm256_fmadd_ps(p, _mm256_loadu_ps(v + e), _mm256_loadu_ps(out + e)));
      for (int e = d8; e < d; ++e) out[e] += sc[j] * v[e];
    }
    const float inv = 1.0f / sum;
    for (int e = 0; e < d; ++e) out[e] *= inv;
  });
}

void attention_avx2(const AttnArgs& a) {
  VLM_CHECK(a.heads % a.kv_heads == 0, "heads %d not a multiple of kv_heads %d", a.heads, a.kv_heads);
  VLM_CHECK(!a.cu_seqlens || a.n_q == a.n_kv, "segmented attention needs n_q == n_kv");
  const int d = a.d;
  if (d > kMaxD) return attention_portable(a);
  if (a.n_q <= 4) return attention_rows_avx2(a);
  const int nv = (d + 7) / 8, dp = nv * 8;
  const int64_t nkb = (a.n_kv + 7) / 8;
  std::vector<float> kt(size_t(a.kv_heads) * size_t(nkb) * size_t(d) * 8);
  parallel_for(int64_t(a.kv_heads) * nkb, 8, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / nkb, kb = t % nkb;
      float* dst = kt.data() + t * int64_t(d) * 8;
      for (int j = 0; j < 8; ++j) {
        const int64_t key = kb * 8 + j;
        const float* src = a.k + key * a.kv_stride + g * d;
        for (int e = 0; e < d; ++e) dst[e * 8 + j] = key < a.n_kv ? src[e] : 0.0f;
      }
    }
  });
  const int group = a.heads / a.kv_heads;
  const int64_t nqb = (a.n_q + kQ - 1) / kQ;
  parallel_for(int64_t(a.heads) * nqb, 1, [&](int64_t t0, int64_t t1) {
    alignas(32) float o[kQ][kMaxD];
    alignas(32) float vpad[kMaxD];
    int seg = 0;
    for (int64_t t = t0; t < t1; ++t) {
      const int h = int(t / nqb);
      const int64_t i0 = (t % nqb) * kQ;
      const int rows = int(std::min<int64_t>(kQ, a.n_q - i0));
      const int64_t g = h / group, kv_off = g * d;
      int64_t lo[kQ], hi[kQ], blo = INT64_MAX, bhi = 0;
      float m[kQ], l[kQ];
      const float* q[kQ];
      for (int r = 0; r < rows; ++r) {
        attn_key_range(a, i0 + r, &seg, &lo[r], &hi[r]);
        blo = std::min(blo, lo[r]), bhi = std::max(bhi, hi[r]);
        m[r] = -INFINITY, l[r] = 0;
        q[r] = a.q + (i0 + r) * a.q_stride + int64_t(h) * d;
        std::memset(o[r], 0, sizeof(float) * size_t(dp));
      }
      const float* kg = kt.data() + g * nkb * int64_t(d) * 8;
      for (int64_t kb = blo / 8; kb * 8 < bhi; ++kb) {
        const float* kb_t = kg + kb * int64_t(d) * 8;
        __m256 s[kQ];
        for (int r = 0; r < kQ; ++r) s[r] = _mm256_setzero_ps();
        for (int e = 0; e < d; ++e) {
          const __m256 kv = _mm256_loadu_ps(kb_t + e * 8);
          for (int r = 0; r < kQ; ++r)
            if (r < rows) s[r] = _mm256_fmadd_ps(_mm256_set1_ps(q[r][e]), kv, s[r]);
        }
        for (int r = 0; r < rows; ++r) {
          alignas(32) float sv[8];
          _mm256_store_ps(sv, _mm256_mul_ps(s[r], _mm256_set1_ps(a.scale)));
          float mx = -INFINITY;
          int j0 = 8, j1 = 0;
          for (int j = 0; j < 8; ++j) {
            const int64_t key = kb * 8 + j;
            if (key < lo[r] || key >= hi[r]) {
              sv[j] = -INFINITY;
              continue;
            }
            j0 = std::min(j0, j), j1 = j + 1;
            mx = std::max(mx, sv[j]);
          }
          if (j1 == 0) continue;
          if (mx > m[r]) {
            const __m256 c = _mm256_set1_ps(std::exp(m[r] - mx));  // 0 on the row's first block
            l[r] *= std::exp(m[r] - mx);
            for (int v = 0; v < nv; ++v) _mm256_store_ps(o[r] + 8 * v, _mm256_mul_ps(_mm256_load_ps(o[r] + 8 * v), c));
            m[r] = mx;
          }
          alignas(32) float pj[8];
          _mm256_store_ps(pj, exp256(_mm256_sub_ps(_mm256_load_ps(sv), _mm256_set1_ps(m[r]))));
          for (int j = j0; j < j1; ++j) {
            if (sv[j] == -INFINITY) continue;
            l[r] += pj[j];
            const float* vr = a.v + (kb * 8 + j) * a.kv_stride + kv_off;
            if (d % 8) {  // the last vector of a row would read past it: pad a copy
              std::memcpy(vpad, vr, sizeof(float) * size_t(d));
              std::memset(vpad + d, 0, sizeof(float) * size_t(dp - d));
              vr = vpad;
            }
            const __m256 pv = _mm256_set1_ps(pj[j]);
            for (int v = 0; v < nv; ++v)
              _mm256_store_ps(o[r] + 8 * v, _mm256_fmadd_ps(pv, _mm256_loadu_ps(vr + 8 * v), _mm256_load_ps(o[r] + 8 * v)));
          }
        }
      }
      for (int r = 0; r < rows; ++r) {
        float* out = a.out + (i0 + r) * int64_t(a.heads) * d + int64_t(h) * d;
        const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        for (int e = 0; e < d; ++e) out[e] = o[r][e] * inv;
      }
    }
  });
}

// ---- load-time Q8/Q4 packing of bf16 weights (same bytes as quant::quantize_block) ----------
void quantize_block_bf16_avx2(LinearFormat f, const uint16_t* src, int64_t K, int rows, int nk, uint8_t* q,
                              uint16_t* s) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int r = 0; r < kQuantPanel; ++r) {
    const int n = r < rows ? nk : 0;
    __m256 w[4];
    for (int c = 0; c < 4; ++c) w[c] = load8<Src::BF16>(src, int64_t(r) * K + 8 * c, std::max(0, std::min(8, n - 8 * c)));
    __m256 am = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, w[0]), _mm256_andnot_ps(sign, w[1])),
                              _mm256_max_ps(_mm256_andnot_ps(sign, w[2]), _mm256_andnot_ps(sign, w[3])));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, am);
    float amax = 0.0f;
    for (float v : lanes) amax = std::max(amax, v);
    alignas(32) int32_t v[32];
    if (f == LinearFormat::Q8) {
      const uint16_t d16 = f32_to_f16(amax / 127.0f);
      const float d = f16_to_f32(d16);
      s[r] = d16;
      const __m256 id = _mm256_set1_ps(d > 0 ? 1.0f / d : 0.0f), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
      for (int c = 0; c < 4; ++c)
        _mm256_store_si256(reinterpret_cast<__m256i*>(v + 8 * c),
                           _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(w[c], id), lo), hi)),
                                            _mm256_set1_epi32(128)));
      for (int g = 0; g < 8; ++g)
        for (int j = 0; j < 4; ++j) q[(g * 16 + r) * 4 + j] = uint8_t(v[g * 4 + j]);
    } else {
      float vmax = 0.0f;  // the first weight of largest magnitude
      if (amax > 0)
        for (int i = 0; i < n; ++i) {
          const float x = bf16_to_f32(src[int64_t(r) * K + i]);
          if (std::fabs(x) == amax) {
            vmax = x;
            break;
          }
        }
      const uint16_t d16 = f32_to_f16(vmax / -8.0f);
      const float d = f16_to_f32(d16);
      s[r] = d16;
      const __m256 id = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f), lo = _mm256_set1_ps(-8.0f), hi = _mm256_set1_ps(8.0f);
      for (int c = 0; c < 4; ++c) {
        const __m256i x = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(w[c], id), lo), hi)),
                                           _mm256_set1_epi32(8));
        _mm256_store_si256(reinterpret_cast<__m256i*>(v + 8 * c),
                           _mm256_min_epi32(_mm256_max_epi32(x, _mm256_setzero_si256()), _mm256_set1_epi32(15)));
      }
      for (int h = 0; h < 4; ++h)
        for (int j = 0; j < 4; ++j) q[(h * 16 + r) * 4 + j] = uint8_t(v[8 * h + j] | (v[8 * h + 4 + j] << 4));
    }
  }
}

// ---- norms and activations (vector body, the reference for the tail of a row) ---------------
inline __m256 silu256(__m256 v, __m256 a) {  // v / (1 + e^(-a·v))
  return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), a), v))));
}

void activate_avx2(Act act, float* x, int64_t n) {
  if (act == Act::Identity) return;
  if (act != Act::Silu && act != Act::QuickGelu) return ref::activate(act, x, n);
  const __m256 a = _mm256_set1_ps(act == Act::Silu ? 1.0f : 1.702f);
  const int64_t n8 = n / 8 * 8;
  for (int64_t i = 0; i < n8; i += 8) _mm256_storeu_ps(x + i, silu256(_mm256_loadu_ps(x + i), a));
  ref::activate(act, x + n8, n - n8);
}

void silu_mul_avx2(const float* gate, const float* up, int64_t rows, int64_t I, int64_t stride, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const int64_t i8 = I / 8 * 8;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < i8; i += 8)
      _mm256_storeu_ps(out + r * I + i,
                       _mm256_mul_ps(silu256(_mm256_loadu_ps(gate + r * stride + i), one), _mm256_loadu_ps(up + r * stride + i)));
    if (i8 < I) ref::silu_mul(gate + r * stride + i8, up + r * stride + i8, 1, I - i8, stride, out + r * I + i8);
  }
}

// Norm weights for 8 channels at i as f32.
inline __m256 load_w8(const TensorView& w, int64_t i) {
  switch (w.dtype) {
    case DType::F32: return load8<Src::F32>(w.data, i, 8);
    case DType::BF16: return load8<Src::BF16>(w.data, i, 8);
    default: return load8<Src::F16>(w.data, i, 8);
  }
}

void rmsnorm_avx2(const float* x, int64_t rows, int64_t dim, const TensorView& w, float eps, float* y) {
  if (dim % 8 || (w.dtype != DType::F32 && w.dtype != DType::BF16 && w.dtype != DType::F16))
    return ref::rmsnorm(x, rows, dim, w, eps, y);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    __m256 ss = _mm256_setzero_ps();
    for (int64_t i = 0; i < dim; i += 8) ss = _mm256_fmadd_ps(_mm256_loadu_ps(xr + i), _mm256_loadu_ps(xr + i), ss);
    const __m256 inv = _mm256_set1_ps(1.0f / std::sqrt(hsum(ss) / float(dim) + eps));
    for (int64_t i = 0; i < dim; i += 8)
      _mm256_storeu_ps(y + r * dim + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), inv), load_w8(w, i)));
  }
}

void layernorm_avx2(const float* x, int64_t rows, int64_t dim, const TensorView& w, const TensorView& b, float eps,
                    float* y) {
  auto ok = [](const TensorView& t) { return t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16; };
  if (dim % 8 || !ok(w) || !ok(b)) return ref::layernorm(x, rows, dim, w, b, eps, y);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    __m256 s = _mm256_setzero_ps();
    for (int64_t i = 0; i < dim; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(xr + i));
    const __m256 mv = _mm256_set1_ps(hsum(s) / float(dim));
    __m256 var = _mm256_setzero_ps();
    for (int64_t i = 0; i < dim; i += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + i), mv);
      var = _mm256_fmadd_ps(d, d, var);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / std::sqrt(hsum(var) / float(dim) + eps));
    for (int64_t i = 0; i < dim; i += 8) {
      const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mv), inv);
      _mm256_storeu_ps(y + r * dim + i, _mm256_add_ps(_mm256_mul_ps(v, load_w8(w, i)), load_w8(b, i)));
    }
  }
}

const Kernels kAvx2 = {"avx2",         gemm_f32_avx2,  gemm_bf16_avx2, gemm_quant_avx2, nullptr, attention_avx2,
                       activate_avx2,  silu_mul_avx2,  rmsnorm_avx2,   layernorm_avx2,  nullptr,
                       quantize_block_bf16_avx2};

}  // namespace

const Kernels* avx2_kernels() {
  // Activation quantisation and the read loop come from the portable set.
  static const Kernels k = [] {
    Kernels s = kAvx2;
    const Kernels& p = *portable_kernels();
    s.quantize_rows = p.quantize_rows;
    s.read_sum = p.read_sum;
    return s;
  }();
  return &k;
}

}  // namespace vlm::ops::cpu
