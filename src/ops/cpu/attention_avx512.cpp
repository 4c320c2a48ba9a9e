// AVX-512 attention: flash-style tiles of up to 8 queries x 16 keys with an online softmax, so no
// seq x seq matrix exists. Keys are first transposed per kv head into blocks of [d][16] so that
// 16 scores come out of d FMAs with the query broadcast (no horizontal sums); P·V then adds each
// key's value row, weighted by its probability, into the output rows held in registers.
// Masks (segments, causality) are per query row, applied per key block.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/threads.h"
#include "ops/cpu/avx512_math.h"
#include "ops/cpu/cpu.h"

namespace vlm::ops::cpu {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

constexpr int kBQ = 8;      // queries per tile
constexpr int kMaxD = 256;  // head size limit of this kernel (larger falls back)

struct RowRange {
  int64_t lo, hi;
};

template <int NV>  // NV = ceil(d / 16) vectors per row
void tile(const AttnArgs& a, int h, int64_t i0, int rows, const float* kt, int64_t nkb, const RowRange* rr,
          const __mmask16 dmask) {
  const int d = a.d;
  const int group = a.heads / a.kv_heads;
  const int64_t kv_off = int64_t(h / group) * d;
  alignas(64) float o[kBQ][NV * 16];
  float m[kBQ], l[kBQ];
  for (int r = 0; r < rows; ++r) {
    std::memset(o[r], 0, sizeof(o[r]));
    m[r] = -INFINITY;
    l[r] = 0;
  }
  int64_t lo = rr[0].lo, hi = rr[0].hi;
  for (int r = 1; r < rows; ++r) lo = imin(lo, rr[r].lo), hi = imax(hi, rr[r].hi);
  const float* q[kBQ];
  for (int r = 0; r < rows; ++r) q[r] = a.q + (i0 + r) * a.q_stride + int64_t(h) * d;
  const __m512 scale = _mm512_set1_ps(a.scale);
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t kb = lo / 16; kb * 16 < hi && kb < nkb; ++kb) {
    const float* kb_t = kt + kb * int64_t(d) * 16;
    __m512 s[kBQ];
#pragma GCC unroll 8
    for (int r = 0; r < kBQ; ++r) s[r] = _mm512_setzero_ps();
    for (int e = 0; e < d; ++e) {
      const __m512 kv = _mm512_load_ps(kb_t + e * 16);
#pragma GCC unroll 8
      for (int r = 0; r < kBQ; ++r)
        if (r < rows) s[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][e]), kv, s[r]);
    }
    const __m512i key = _mm512_add_epi32(lane, _mm512_set1_epi32(int(kb * 16)));
    for (int r = 0; r < rows; ++r) {
      const __mmask16 valid = _mm512_cmpge_epi32_mask(key, _mm512_set1_epi32(int(rr[r].lo))) &
                              _mm512_cmplt_epi32_mask(key, _mm512_set1_epi32(int(rr[r].hi)));
      if (!valid) continue;
      const __m512 sv = _mm512_mul_ps(s[r], scale);
      const float mx = _mm512_mask_reduce_max_ps(valid, sv);
      if (mx > m[r]) {
        const float c = std::exp(m[r] - mx);  // 0 on the first block (m = -inf)
        l[r] *= c;
        const __m512 cv = _mm512_set1_ps(c);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) _mm512_store_ps(o[r] + 16 * v, _mm512_mul_ps(_mm512_load_ps(o[r] + 16 * v), cv));
        m[r] = mx;
      }
      const __m512 p = _mm512_maskz_mov_ps(valid, exp512(_mm512_sub_ps(sv, _mm512_set1_ps(m[r]))));
      l[r] += _mm512_reduce_add_ps(p);
      alignas(64) float pj[16];
      _mm512_store_ps(pj, p);
      __m512 acc[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[v] = _mm512_load_ps(o[r] + 16 * v);
      const int j0 = __builtin_ctz(valid), j1 = 32 - __builtin_clz(uint32_t(valid));
      for (int j = j0; j < j1; ++j) {
        const float* vr = a.v + (kb * 16 + j) * a.kv_stride + kv_off;
        const __m512 pv = _mm512_set1_ps(pj[j]);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) {
          const __m512 x = v + 1 < NV ? _mm512_loadu_ps(vr + 16 * v) : _mm512_maskz_loadu_ps(dmask, vr + 16 * v);
          acc[v] = _mm512_fmadd_ps(pv, x, acc[v]);
        }
      }
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) _mm512_store_ps(o[r] + 16 * v, acc[v]);
    }
  }
  for (int r = 0; r < rows; ++r) {
    float* out = a.out + (i0 + r) * int64_t(a.heads) * d + int64_t(h) * d;
    const __m512 inv = _mm512_set1_ps(l[r] > 0 ? 1.0f / l[r] : 0.0f);
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mk = v + 1 < NV ? __mmask16(0xFFFF) : dmask;
      _mm512_mask_storeu_ps(out + 16 * v, mk, _mm512_mul_ps(_mm512_load_ps(o[r] + 16 * v), inv));
    }
  }
}

using TileFn = void (*)(const AttnArgs&, int, int64_t, int, const float*, int64_t, const RowRange*, __mmask16);
constexpr TileFn kTiles[] = {nullptr,  tile<1>,  tile<2>,  tile<3>,  tile<4>,  tile<5>,  tile<6>,  tile<7>, tile<8>,
                             tile<9>,  tile<10>, tile<11>, tile<12>, tile<13>, tile<14>, tile<15>, tile<16>};

// Lane k of the result = the sum of the 16 lanes of v[k] (a transpose-reduce: 15 adds instead of
// 16 horizontal sums).
inline __m512 hsum16(const __m512* v) {
  __m512 x[8], y[4], z[2];
  for (int i = 0; i < 8; ++i)
    x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[i], v[i + 8], 0x44), _mm512_shuffle_f32x4(v[i], v[i + 8], 0xEE));
  for (int i = 0; i < 4; ++i)
    y[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x[i], x[i + 4], 0x88), _mm512_shuffle_f32x4(x[i], x[i + 4], 0xDD));
  for (int i = 0; i < 2; ++i)
    z[i] = _mm512_add_ps(_mm512_shuffle_ps(y[i], y[i + 2], 0x44), _mm512_shuffle_ps(y[i], y[i + 2], 0xEE));
  const __m512 w = _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], 0x88), _mm512_shuffle_ps(z[0], z[1], 0xDD));
  // The shuffles leave v[k]'s sum in lane perm[k] (an involution): put it back in lane k.
  const __m512i perm = _mm512_set_epi32(15, 13, 14, 12, 7, 5, 6, 4, 11, 9, 10, 8, 3, 1, 2, 0);
  return _mm512_permutexvar_ps(perm, w);
}

// Few query rows (decode): no K transpose (it would cost a pass over the whole cache per step).
// Per (row, head): scores by dot products with each key row, 16 keys at a time, softmax over
// them, then P·V.
void attention_rows(const AttnArgs& a) {
  const int d = a.d, group = a.heads / a.kv_heads;
  const __mmask16 dmask = d % 16 ? __mmask16((1u << (d % 16)) - 1) : __mmask16(0xFFFF);
  const int nv = (d + 15) / 16;
  attn_for_each_row(a, size_t(a.n_kv + 16), [&](int64_t i, int h, int64_t lo, int64_t hi, float* sc) {
    float* out = a.out + i * int64_t(a.heads) * d + int64_t(h) * d;
    if (hi <= lo) {
      for (int e = 0; e < d; ++e) out[e] = 0;
      return;
    }
    const float* q = a.q + i * a.q_stride + int64_t(h) * d;
    const int64_t kv_off = int64_t(h / group) * d;
    __m512 qv[kMaxD / 16];
    for (int v = 0; v < nv; ++v) qv[v] = _mm512_maskz_loadu_ps(v + 1 < nv ? __mmask16(0xFFFF) : dmask, q + 16 * v);
    float mx = -INFINITY;
    int64_t j = lo;
    const __m512 scale = _mm512_set1_ps(a.scale);
    for (; j + 16 <= hi; j += 16) {
      __m512 acc[16];
#pragma GCC unroll 16
      for (int u = 0; u < 16; ++u) acc[u] = _mm512_setzero_ps();
      for (int v = 0; v < nv; ++v) {
        const __mmask16 mk = v + 1 < nv ? __mmask16(0xFFFF) : dmask;
        const float* kv = a.k + j * a.kv_stride + kv_off + 16 * v;
#pragma GCC unroll 16
        for (int u = 0; u < 16; ++u) acc[u] = _mm512_fmadd_ps(qv[v], _mm512_maskz_loadu_ps(mk, kv + u * a.kv_stride), acc[u]);
      }
      const __m512 s = _mm512_mul_ps(hsum16(acc), scale);
      _mm512_storeu_ps(sc + (j - lo), s);
      mx = std::max(mx, _mm512_reduce_max_ps(s));
    }
    for (; j < hi; ++j) {
      const float* k = a.k + j * a.kv_stride + kv_off;
      __m512 acc = _mm512_setzero_ps();
      for (int v = 0; v < nv; ++v)
        acc = _mm512_fmadd_ps(qv[v], _mm512_maskz_loadu_ps(v + 1 < nv ? __mmask16(0xFFFF) : dmask, k + 16 * v), acc);
      const float sj = _mm512_reduce_add_ps(acc) * a.scale;
      sc[j - lo] = sj;
      mx = sj > mx ? sj : mx;
    }
    const int64_t n = hi - lo;
    __m512 lsum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 mk = n - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - j)) - 1);
      const __m512 p = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, sc + j), _mm512_set1_ps(mx))));
      _mm512_mask_storeu_ps(sc + j, mk, p);
      lsum = _mm512_add_ps(lsum, p);
    }
    __m512 o[kMaxD / 16];
    for (int v = 0; v < nv; ++v) o[v] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const float* vr = a.v + (lo + j) * a.kv_stride + kv_off;
      const __m512 pj = _mm512_set1_ps(sc[j]);
      for (int v = 0; v < nv; ++v)
        o[v] = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(v + 1 < nv ? __mmask16(0xFFFF) : dmask, vr + 16 * v), o[v]);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(lsum));
    for (int v = 0; v < nv; ++v)
      _mm512_mask_storeu_ps(out + 16 * v, v + 1 < nv ? __mmask16(0xFFFF) : dmask, _mm512_mul_ps(o[v], inv));
  });
}

void attention_avx512(const AttnArgs& a) {
  VLM_CHECK(a.heads % a.kv_heads == 0, "heads %d not a multiple of kv_heads %d", a.heads, a.kv_heads);
  VLM_CHECK(!a.cu_seqlens || a.n_q == a.n_kv, "segmented attention needs n_q == n_kv");
  const int d = a.d;
  if (d > kMaxD || a.n_kv >= (int64_t(1) << 30)) return attention_portable(a);
  if (a.n_q <= 4) return attention_rows(a);
  const int nv = (d + 15) / 16;
  const __mmask16 dmask = d % 16 ? __mmask16((1u << (d % 16)) - 1) : __mmask16(0xFFFF);
  // K transposed per kv head: kt[g][block][e][16], zero past n_kv.
  const int64_t nkb = (a.n_kv + 15) / 16;
  const size_t kt_floats = size_t(a.kv_heads) * size_t(nkb) * size_t(d) * 16;
  float* kt = static_cast<float*>(std::aligned_alloc(64, (kt_floats * 4 + 63) / 64 * 64));
  parallel_for(int64_t(a.kv_heads) * nkb, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / nkb, kb = t % nkb;
      float* dst = kt + t * int64_t(d) * 16;
      for (int j = 0; j < 16; ++j) {
        const int64_t key = kb * 16 + j;
        const float* src = a.k + key * a.kv_stride + g * d;
        for (int e = 0; e < d; ++e) dst[e * 16 + j] = key < a.n_kv ? src[e] : 0.0f;
      }
    }
  });
  const int64_t nqb = (a.n_q + kBQ - 1) / kBQ;
  parallel_for(int64_t(a.heads) * nqb, 1, [&](int64_t t0, int64_t t1) {
    int seg = 0;
    for (int64_t t = t0; t < t1; ++t) {
      const int h = int(t / nqb);
      const int64_t i0 = (t % nqb) * kBQ;
      const int rows = int(imin(kBQ, a.n_q - i0));
      RowRange rr[kBQ];
      for (int r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        int64_t lo, hi;
        attn_key_range(a, i, &seg, &lo, &hi);
        rr[r] = {lo, hi};
      }
      const int64_t g = h / (a.heads / a.kv_heads);
      kTiles[nv](a, h, i0, rows, kt + g * nkb * int64_t(d) * 16, nkb, rr, dmask);
    }
  });
  std::free(kt);
}

}  // namespace

void attention_avx512_entry(const AttnArgs& a) { attention_avx512(a); }

}  // namespace vlm::ops::cpu
