// Attention with Q·Kᵀ and P·V on AMX bf16 tiles (AttnArgs::bf16: the precision of the bf16
// weight format), flash style: per head and block of 16 queries, keys in blocks of 64; scores and
// the online softmax stay in f32 (AVX-512), only the tile inputs Q, K, P, V are rounded to bf16.
//
// Layouts (all bf16, zero padded; dp = d rounded up to 32, nc = ceil(d / 16) output columns):
//   Q  [n_q padded to 16][heads][dp]                 A tiles: 16 rows x 32 d
//   K  [kv_heads][key block of 16][dp / 2][16][2]    B tiles: 16 d-pairs x 16 keys (S = Q·Kᵀ)
//   V  [kv_heads][key block of 32][nc][16][16][2]    B tiles: 16 key-pairs x 16 columns (O = P·V)
//   P  [16][64] per thread                           A tiles: 16 rows x 32 keys
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/threads.h"
#include "ops/cpu/avx512_math.h"
#include "ops/cpu/cpu.h"

namespace vlm::ops::cpu {
namespace {

constexpr int kKB = 64;  // keys per block (4 score tiles)

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

inline uint16_t to_bf16(float f) { return f32_to_bf16(f); }

// Rounds 16 f32 to bf16 (nearest even, as f32_to_bf16).
inline __m256i cvt16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

struct Packed {
  std::vector<uint16_t> q, k, v;
  int64_t nq16 = 0, nk16 = 0, nk32 = 0;
  int dp = 0, nc = 0;
};

void pack(const AttnArgs& a, Packed& p) {
  const int d = a.d;
  p.dp = (d + 31) / 32 * 32;
  p.nc = (d + 15) / 16;
  p.nq16 = (a.n_q + 15) / 16;
  const int64_t nkp = (a.n_kv + kKB - 1) / kKB * kKB;  // keys padded to whole blocks
  p.nk16 = nkp / 16;
  p.nk32 = nkp / 32;
  const int dp = p.dp, nc = p.nc;
  p.q.assign(size_t(p.nq16 * 16) * size_t(a.heads) * size_t(dp), 0);
  p.k.assign(size_t(a.kv_heads) * size_t(p.nk16) * 16 * size_t(dp), 0);
  p.v.assign(size_t(a.kv_heads) * size_t(p.nk32) * size_t(nc) * 512, 0);
  parallel_for(a.n_q, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int h = 0; h < a.heads; ++h) {
        const float* src = a.q + i * a.q_stride + int64_t(h) * d;
        uint16_t* dst = p.q.data() + (i * a.heads + h) * dp;
        for (int e = 0; e < d; ++e) dst[e] = to_bf16(src[e]);
      }
  });
  parallel_for(int64_t(a.kv_heads) * p.nk16, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / p.nk16, kb = t % p.nk16;
      uint16_t* kd = p.k.data() + t * 16 * dp;
      for (int j = 0; j < 16; ++j) {
        const int64_t key = kb * 16 + j;
        if (key >= a.n_kv) break;
        const float* ks = a.k + key * a.kv_stride + g * d;
        for (int e = 0; e < d; ++e) kd[(e / 2) * 32 + j * 2 + e % 2] = to_bf16(ks[e]);
        const float* vs = a.v + key * a.kv_stride + g * d;
        // V: block of 32 keys = kb / 2, pair row (key % 32) / 2, element key % 2.
        uint16_t* vd = p.v.data() + ((g * p.nk32 + kb / 2) * nc) * 512;
        const int kr = int(key % 32);
        for (int e = 0; e < d; ++e) vd[(e / 16) * 512 + (kr / 2) * 32 + (e % 16) * 2 + kr % 2] = to_bf16(vs[e]);
      }
    }
  });
}

__attribute__((target("amx-tile,amx-bf16"))) void block(const AttnArgs& a, const Packed& p, int h, int64_t qb,
                                                          const int64_t* lo_r, const int64_t* hi_r) {
  const int dp = p.dp, nc = p.nc;
  const int g = h / (a.heads / a.kv_heads);
  int64_t lo = lo_r[0], hi = hi_r[0];
  for (int r = 1; r < 16; ++r) lo = std::min(lo, lo_r[r]), hi = std::max(hi, hi_r[r]);
  alignas(64) float s[16][kKB];
  alignas(64) uint16_t pm[16][kKB];
  alignas(64) float o[16][256];
  alignas(64) float part[16][16];
  float m[16], l[16], c[16];
  for (int r = 0; r < 16; ++r) {
    m[r] = -INFINITY, l[r] = 0;
    std::memset(o[r], 0, sizeof(float) * 16 * size_t(nc));
  }
  const uint16_t* qa = p.q.data() + (qb * 16 * a.heads + h) * dp;
  const int64_t qstride = int64_t(a.heads) * dp * 2;
  const __m512 scale = _mm512_set1_ps(a.scale);
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t k0 = lo / kKB * kKB; k0 < hi; k0 += kKB) {
    // S = Q·Kᵀ for 64 keys: tiles 0-3, A in 4, B in 5.
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const uint16_t* kb = p.k.data() + (int64_t(g) * p.nk16 + k0 / 16) * 16 * dp;
    for (int ch = 0; ch < dp / 32; ++ch) {
      _tile_loadd(4, qa + ch * 32, qstride);
      const uint16_t* kc = kb + ch * 512;
      _tile_loadd(5, kc, 64);
      _tile_dpbf16ps(0, 4, 5);
      _tile_loadd(5, kc + 16 * dp, 64);
      _tile_dpbf16ps(1, 4, 5);
      _tile_loadd(5, kc + 32 * dp, 64);
      _tile_dpbf16ps(2, 4, 5);
      _tile_loadd(5, kc + 48 * dp, 64);
      _tile_dpbf16ps(3, 4, 5);
    }
    _tile_stored(0, &s[0][0], kKB * 4);
    _tile_stored(1, &s[0][16], kKB * 4);
    _tile_stored(2, &s[0][32], kKB * 4);
    _tile_stored(3, &s[0][48], kKB * 4);
    // Online softmax per row; P rounded to bf16, and l sums the rounded values so that the
    // normalisation matches what P·V adds up.
    for (int r = 0; r < 16; ++r) {
      __mmask16 valid[4];
      __m512 sv[4];
      float mx = -INFINITY;
      for (int j = 0; j < 4; ++j) {
        const __m512i key = _mm512_add_epi32(lane, _mm512_set1_epi32(int(k0 + 16 * j)));
        valid[j] = _mm512_cmpge_epi32_mask(key, _mm512_set1_epi32(int(lo_r[r]))) &
                   _mm512_cmplt_epi32_mask(key, _mm512_set1_epi32(int(hi_r[r])));
        sv[j] = _mm512_mul_ps(_mm512_load_ps(&s[r][16 * j]), scale);
        if (valid[j]) mx = std::max(mx, _mm512_mask_reduce_max_ps(valid[j], sv[j]));
      }
      if (mx == -INFINITY) {  // no visible key in this block for this row
        c[r] = 1.0f;
        std::memset(pm[r], 0, sizeof(pm[r]));
        continue;
      }
      const float mn = std::max(m[r], mx);
      c[r] = std::exp(m[r] - mn);  // 0 on the row's first block (m = -inf)
      m[r] = mn;
      __m512 sum = _mm512_setzero_ps();
      for (int j = 0; j < 4; ++j) {
        const __m512 e = _mm512_maskz_mov_ps(valid[j], exp512(_mm512_sub_ps(sv[j], _mm512_set1_ps(mn))));
        const __m256i b = cvt16(e);
        _mm256_store_si256(reinterpret_cast<__m256i*>(&pm[r][16 * j]), b);
        sum = _mm512_add_ps(sum, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)));
      }
      l[r] = l[r] * c[r] + _mm512_reduce_add_ps(sum);
    }
    // O = O·c + P·V, 16 output columns at a time: A = P (two 32-key halves) in 4 and 6, B in 5.
    _tile_loadd(4, &pm[0][0], kKB * 2);
    _tile_loadd(6, &pm[0][32], kKB * 2);
    const uint16_t* vb = p.v.data() + ((int64_t(g) * p.nk32 + k0 / 32) * nc) * 512;
    for (int cg = 0; cg < nc; ++cg) {
      _tile_zero(0);
      _tile_loadd(5, vb + cg * 512, 64);
      _tile_dpbf16ps(0, 4, 5);
      _tile_loadd(5, vb + (nc + cg) * 512, 64);
      _tile_dpbf16ps(0, 6, 5);
      _tile_stored(0, &part[0][0], 64);
      for (int r = 0; r < 16; ++r) {
        float* orow = &o[r][cg * 16];
        _mm512_store_ps(orow, _mm512_fmadd_ps(_mm512_load_ps(orow), _mm512_set1_ps(c[r]), _mm512_load_ps(part[r])));
      }
    }
  }
  const int d = a.d;
  const __mmask16 tail = d % 16 ? __mmask16((1u << (d % 16)) - 1) : __mmask16(0xFFFF);
  for (int r = 0; r < 16; ++r) {
    const int64_t i = qb * 16 + r;
    if (i >= a.n_q) break;
    float* out = a.out + i * int64_t(a.heads) * d + int64_t(h) * d;
    const __m512 inv = _mm512_set1_ps(l[r] > 0 ? 1.0f / l[r] : 0.0f);
    for (int cg = 0; cg < nc; ++cg)
      _mm512_mask_storeu_ps(out + cg * 16, cg + 1 < nc ? __mmask16(0xFFFF) : tail,
                            _mm512_mul_ps(_mm512_load_ps(&o[r][cg * 16]), inv));
  }
}

// Blocks [t0, t1) of (head, 16-query block), head-major, on one thread.
__attribute__((target("amx-tile,amx-bf16"))) void run_blocks(const AttnArgs& a, const Packed& p, int64_t t0,
                                                               int64_t t1) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  _tile_loadconfig(&cfg);
  const int64_t nqb = p.nq16;
  int seg = 0;
  for (int64_t t = t0; t < t1; ++t) {
    const int h = int(t / nqb);
    const int64_t qb = t % nqb;
    int64_t lo[16], hi[16];
    for (int r = 0; r < 16; ++r) {
      const int64_t i = qb * 16 + r;
      if (i < a.n_q) {
        attn_key_range(a, i, &seg, &lo[r], &hi[r]);
      } else {
        lo[r] = lo[0], hi[r] = lo[0];  // padding row: no keys
      }
    }
    block(a, p, h, qb, lo, hi);
  }
  _tile_release();
}

}  // namespace

void attention_amx_entry(const AttnArgs& a) {
  // Decode (few rows) and what this kernel's buffers do not cover go to the f32 kernel.
  if (!a.bf16 || a.n_q < 16 || a.d > 256 || a.n_kv >= (int64_t(1) << 30)) return attention_avx512_entry(a);
  VLM_CHECK(a.heads % a.kv_heads == 0, "heads %d not a multiple of kv_heads %d", a.heads, a.kv_heads);
  VLM_CHECK(!a.cu_seqlens || a.n_q == a.n_kv, "segmented attention needs n_q == n_kv");
  Packed p;
  pack(a, p);
  // Head-major order: a thread's consecutive blocks share one head's K and V (cache reuse).
  parallel_for(int64_t(a.heads) * p.nq16, 1, [&](int64_t t0, int64_t t1) { run_blocks(a, p, t0, t1); });
}

}  // namespace vlm::ops::cpu
