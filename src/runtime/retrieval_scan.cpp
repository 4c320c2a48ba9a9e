// Brute-force similarity scan over contiguous float32 rows, and top-k.
//
// The vector kernels use per-function target attributes rather than per-file
// -m flags (as src/ops/cpu does) so this layer keeps one set of compile
// options; they are only called after __builtin_cpu_supports says yes.
// Four rows share each load of the query, and each row keeps its own
// accumulator chain, which is enough to keep the FMA units busy while the
// scan is served from cache; past that the scan is bound by memory bandwidth,
// which is why large scans are split across threads.
#include <immintrin.h>

#include <algorithm>
#include <queue>

#include "core/threads.h"
#include "runtime/retrieval.h"

namespace vlm::runtime {

void scan_dot_scalar(const float* rows, int64_t n, int64_t dim, const float* q, float* scores) {
  for (int64_t i = 0; i < n; ++i) {
    const float* r = rows + i * dim;
    float s = 0;
    for (int64_t j = 0; j < dim; ++j) s += r[j] * q[j];
    scores[i] = s;
  }
}

namespace {

#if defined(__x86_64__) || defined(__i386__)
#define VLM_SCAN_X86 1

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) void scan_avx2(const float* rows, int64_t n, int64_t dim, const float* q,
                                                   float* scores) {
  const int64_t vec = dim & ~int64_t(7);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float* r0 = rows + i * dim;
    const float* r1 = r0 + dim;
    const float* r2 = r1 + dim;
    const float* r3 = r2 + dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t j = 0; j < vec; j += 8) {
      const __m256 qv = _mm256_loadu_ps(q + j);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + j), qv, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + j), qv, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + j), qv, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + j), qv, a3);
    }
    float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
    for (int64_t j = vec; j < dim; ++j) {
      s0 += r0[j] * q[j];
      s1 += r1[j] * q[j];
      s2 += r2[j] * q[j];
      s3 += r3[j] * q[j];
    }
    scores[i] = s0;
    scores[i + 1] = s1;
    scores[i + 2] = s2;
    scores[i + 3] = s3;
  }
  for (; i < n; ++i) {
    const float* r = rows + i * dim;
    __m256 a = _mm256_setzero_ps();
    for (int64_t j = 0; j < vec; j += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(r + j), _mm256_loadu_ps(q + j), a);
    float s = hsum256(a);
    for (int64_t j = vec; j < dim; ++j) s += r[j] * q[j];
    scores[i] = s;
  }
}

// GCC 12's avx512fintrin.h seeds its 512-bit shuffles and reductions with _mm512_undefined_ps(), which
// -Wmaybe-uninitialized reports wherever they are inlined; the values are fully defined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void scan_avx512(const float* rows, int64_t n, int64_t dim, const float* q,
                                                   float* scores) {
  const int64_t vec = dim & ~int64_t(15);
  // The tail is a masked load, so no scalar loop and no reading past a row's end.
  const __mmask16 tail = __mmask16((1u << (dim - vec)) - 1u);
  const __m512 qt = _mm512_maskz_loadu_ps(tail, q + vec);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float* r0 = rows + i * dim;
    const float* r1 = r0 + dim;
    const float* r2 = r1 + dim;
    const float* r3 = r2 + dim;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (int64_t j = 0; j < vec; j += 16) {
      const __m512 qv = _mm512_loadu_ps(q + j);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + j), qv, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + j), qv, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + j), qv, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + j), qv, a3);
    }
    if (tail) {
      a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r0 + vec), qt, a0);
      a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r1 + vec), qt, a1);
      a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r2 + vec), qt, a2);
      a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r3 + vec), qt, a3);
    }
    scores[i] = _mm512_reduce_add_ps(a0);
    scores[i + 1] = _mm512_reduce_add_ps(a1);
    scores[i + 2] = _mm512_reduce_add_ps(a2);
    scores[i + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; i < n; ++i) {
    const float* r = rows + i * dim;
    __m512 a = _mm512_setzero_ps();
    for (int64_t j = 0; j < vec; j += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(r + j), _mm512_loadu_ps(q + j), a);
    if (tail) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r + vec), qt, a);
    scores[i] = _mm512_reduce_add_ps(a);
  }
}
#pragma GCC diagnostic pop
#endif

using ScanFn = void (*)(const float*, int64_t, int64_t, const float*, float*);

ScanFn kernel_fn(ScanKernel k) {
#ifdef VLM_SCAN_X86
  if (k == ScanKernel::kAvx512 && __builtin_cpu_supports("avx512f")) return scan_avx512;
  if (k == ScanKernel::kAvx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return scan_avx2;
#endif
  return scan_dot_scalar;
}

}  // namespace

const char* scan_kernel_name(ScanKernel k) {
  switch (k) {
    case ScanKernel::kAuto: return "auto";
    case ScanKernel::kScalar: return "scalar";
    case ScanKernel::kAvx2: return "avx2";
    case ScanKernel::kAvx512: return "avx512";
  }
  return "?";
}

ScanKernel best_scan_kernel() {
#ifdef VLM_SCAN_X86
  if (__builtin_cpu_supports("avx512f")) return ScanKernel::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ScanKernel::kAvx2;
#endif
  return ScanKernel::kScalar;
}

void scan_dot(const float* rows, int64_t n, int64_t dim, const float* q, float* scores, ScanKernel k) {
  if (n <= 0) return;
  if (k != ScanKernel::kAuto) {
    kernel_fn(k)(rows, n, dim, q, scores);
    return;
  }
  static const ScanFn best = kernel_fn(best_scan_kernel());
  // Below a few MB the rows sit in cache and a thread hand-off costs more than it saves.
  constexpr int64_t kMinFloatsPerThread = int64_t(1) << 19;
  const int64_t grain = std::max<int64_t>(64, kMinFloatsPerThread / std::max<int64_t>(dim, 1));
  if (n < 2 * grain) {
    best(rows, n, dim, q, scores);
    return;
  }
  parallel_for(n, grain, [&](int64_t b, int64_t e) { best(rows + b * dim, e - b, dim, q, scores + b); });
}

std::vector<Match> top_k(const float* scores, int64_t n, int64_t k) {
  k = std::min(k, n);
  if (k <= 0) return {};
  // "Better" = higher score, then lower row; the heap's top is the worst kept so far.
  auto better = [](const Match& a, const Match& b) { return a.score > b.score || (a.score == b.score && a.row < b.row); };
  std::priority_queue<Match, std::vector<Match>, decltype(better)> heap(better);
  for (int64_t i = 0; i < n; ++i) {
    const float s = scores[i];
    if (int64_t(heap.size()) < k) {
      heap.push({i, s});
    } else if (s > heap.top().score) {  // equal scores keep the earlier row already held
      heap.pop();
      heap.push({i, s});
    }
  }
  std::vector<Match> out;
  out.reserve(size_t(k));
  while (!heap.empty()) {
    out.push_back(heap.top());
    heap.pop();
  }
  std::sort(out.begin(), out.end(), better);
  return out;
}

}  // namespace vlm::runtime
