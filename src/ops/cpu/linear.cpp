// Linear-layer drivers (threading, activation preparation, bias) and the
// portable kernels. The portable f32 kernel widens weights to f32 one tile at
// a time and reuses the tile across all M rows, so each weight byte is read
// from memory once.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threads.h"
#include "ops/cpu/cpu.h"
#include "ops/quant.h"
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

void gemm_bf16_portable(const uint16_t* xb, int64_t ldx, int64_t M, int64_t K, const uint16_t* W, int64_t n0,
                        int64_t n1, const float* bias, float* y, int64_t ldy) {
  std::vector<float> xr(static_cast<size_t>(M * K)), wr(static_cast<size_t>(K));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) xr[size_t(m * K + k)] = bf16_to_f32(xb[m * ldx + k]);
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t k = 0; k < K; ++k) wr[size_t(k)] = bf16_to_f32(W[n * K + k]);
    for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = dot(xr.data() + m * K, wr.data(), K) + (bias ? bias[n] : 0.0f);
  }
}

void gemm_quant_portable(const QuantActs& a, int64_t M, const PackedWeight& W, int64_t n0, int64_t n1,
                         const float* bias, float* y, int64_t ldy) {
  const bool q8 = W.format == LinearFormat::Q8;
  for (int64_t n = n0; n < std::min(n1, W.n); ++n) {
    const int64_t p = n / kQuantPanel, r = n % kQuantPanel;
    for (int64_t m = 0; m < M; ++m) {
      const int8_t* xq = a.q + m * a.kp;
      float acc = 0;
      for (int64_t b = 0; b < a.nb; ++b) {
        const uint8_t* q = quant::quants(W, p, b);
        int32_t s = 0;
        for (int i = 0; i < 32; ++i) {
          const int g = i / 4, j = i % 4;
          const int u = q8 ? q[(g * 16 + r) * 4 + j] : (q[((g / 2) * 16 + r) * 4 + j] >> (4 * (g % 2))) & 15;
          s += u * int32_t(xq[b * 32 + i]);
        }
        const float dw = f16_to_f32(quant::scales(W, p, b)[r]);
        acc += dw * a.d[m * a.nb + b] * (float(s) + a.e[m * a.nb + b]);
      }
      y[m * ldy + n] = acc + (bias ? bias[n] : 0.0f);
    }
  }
}

void quantize_rows_portable(const float* x, int64_t M, int64_t K, int64_t kp, int c, int8_t* q, float* d, float* e) {
  const int64_t nb = kp / kQuantBlock;
  for (int64_t m = 0; m < M; ++m) {
    ref::quantize_activations(x + m * K, K, kp, q + m * kp, d + m * nb);
    for (int64_t b = 0; b < nb; ++b) {
      int s = 0;
      for (int i = 0; i < 32; ++i) s += q[m * kp + b * 32 + i];
      e[m * nb + b] = -float(c * s);
    }
  }
}

const Kernels kPortable = {"portable", gemm_f32_portable, gemm_bf16_portable, gemm_quant_portable,
                           quantize_rows_portable, attention_portable, ref::activate, ref::silu_mul, ref::rmsnorm,
                           ref::layernorm, read_sum_portable, quant::quantize_block_bf16_scalar};

std::vector<float> bias_f32(const TensorView* b, int64_t N) {
  std::vector<float> v;
  if (!b) return v;
  VLM_CHECK(b->numel() == N, "linear: bias has %lld values, N=%lld", (long long)b->numel(), (long long)N);
  v.resize(size_t(N));
  for (int64_t i = 0; i < N; ++i) v[size_t(i)] = ref::weight_at(*b, i);
  return v;
}

// Thread ranges: small grains for matrix-vector products (bandwidth-bound, spread evenly),
// whole register panels for matrix-matrix products.
int64_t grain_for(int64_t M) { return M <= 4 ? 16 : 64; }

}  // namespace

const Kernels* portable_kernels() { return &kPortable; }

uint64_t read_sum_portable(const uint64_t* p, int64_t n) {
  uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += p[i + j];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

void gemm_f32_portable(const float* x, int64_t M, int64_t K, const TensorView& W, int64_t n0, int64_t n1,
                       const float* bias, float* y, int64_t ldy) {
  constexpr int64_t kTileN = 16;
  std::vector<float> wt(size_t(kTileN * K));
  for (int64_t nb = n0; nb < n1; nb += kTileN) {
    const int64_t nt = std::min(kTileN, n1 - nb);
    for (int64_t j = 0; j < nt; ++j) widen_row(W, nb + j, K, wt.data() + j * K);
    for (int64_t m = 0; m < M; ++m) {
      const float* xm = x + m * K;
      for (int64_t j = 0; j < nt; ++j)
        y[m * ldy + nb + j] = dot(xm, wt.data() + j * K, K) + (bias ? bias[nb + j] : 0.0f);
    }
  }
}

void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y) {
  const int64_t N = W.dim(0);
  VLM_CHECK(W.ndim == 2 && W.dim(1) == K, "linear: W is %s, K=%lld", W.shape_str().c_str(), (long long)K);
  const std::vector<float> bias = bias_f32(b, N);
  const float* bp = b ? bias.data() : nullptr;
  const Kernels& kk = kernels();
  parallel_for(N, grain_for(M), [&](int64_t n0, int64_t n1) { kk.gemm_f32(x, M, K, W, n0, n1, bp, y, N); });
}

void linear(const float* x, int64_t M, int64_t K, const PackedWeight& W, const TensorView* b, float* y) {
  VLM_CHECK(W.k == K, "linear: packed weight is [%lld, %lld], K=%lld", (long long)W.n, (long long)W.k,
            (long long)K);
  const int64_t N = W.n;
  if (W.format == LinearFormat::Native) return linear(x, M, K, W.view, b, y);
  const std::vector<float> bias = bias_f32(b, N);
  const float* bp = b ? bias.data() : nullptr;
  const Kernels& kk = kernels();
  if (W.format == LinearFormat::BF16) {
    // Rows padded to a multiple of 16 and columns to a multiple of 32, zero filled: whole tiles.
    const int64_t ldx = (K + 31) / 32 * 32, Mp = (M + 15) / 16 * 16;
    Buffer xb(size_t(Mp * ldx * 2));
    uint16_t* xp = xb.as<uint16_t>();
    std::fill(xp + M * ldx, xp + Mp * ldx, uint16_t(0));
    parallel_for(M, 16, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        for (int64_t k = 0; k < K; ++k) xp[m * ldx + k] = f32_to_bf16(x[m * K + k]);
        for (int64_t k = K; k < ldx; ++k) xp[m * ldx + k] = 0;
      }
    });
    const uint16_t* w = W.view.as<uint16_t>();
    parallel_for(N, grain_for(M), [&](int64_t n0, int64_t n1) { kk.gemm_bf16(xp, ldx, M, K, w, n0, n1, bp, y, N); });
    return;
  }
  const int64_t kp = W.kp, nb = kp / kQuantBlock;
  Buffer qb(size_t(M * kp)), db(size_t(M * nb * 4)), eb(size_t(M * nb * 4));
  const int c = W.format == LinearFormat::Q8 ? 128 : 8;
  parallel_for(M, 8, [&](int64_t m0, int64_t m1) {
    kk.quantize_rows(x + m0 * K, m1 - m0, K, kp, c, qb.as<int8_t>() + m0 * kp, db.as<float>() + m0 * nb,
                     eb.as<float>() + m0 * nb);
  });
  QuantActs qa{qb.as<int8_t>(), db.as<float>(), eb.as<float>(), kp, nb};
  const int64_t np = quant::panels(W);
  const int64_t grain = M <= 4 ? 1 : 4;
  parallel_for(np, grain, [&](int64_t p0, int64_t p1) {
    kk.gemm_quant(qa, M, W, p0 * kQuantPanel, std::min(N, p1 * kQuantPanel), bp, y, N);
  });
}

void linear_group(const float* x, int64_t M, int64_t K, const LinearJob* jobs, int n_jobs) {
  if (n_jobs <= 0) return;
  const LinearFormat f = jobs[0].packed ? jobs[0].packed->format : LinearFormat::Native;
  bool same = true;
  for (int j = 0; j < n_jobs; ++j) {
    const LinearFormat fj = jobs[j].packed ? jobs[j].packed->format : LinearFormat::Native;
    same = same && fj == f && (jobs[j].packed || jobs[j].w);
  }
  if (!same || n_jobs == 1) {  // nothing to share: one call per layer
    for (int j = 0; j < n_jobs; ++j) {
      if (jobs[j].packed)
        cpu::linear(x, M, K, *jobs[j].packed, jobs[j].b, jobs[j].y);
      else
        cpu::linear(x, M, K, *jobs[j].w, jobs[j].b, jobs[j].y);
    }
    return;
  }
  // Work units: rows of W for native/bf16, panels of 16 rows for q8/q4; unit u of the group is
  // unit u - start[j] of job j.
  const bool quant = f == LinearFormat::Q8 || f == LinearFormat::Q4;
  std::vector<int64_t> start(static_cast<size_t>(n_jobs) + 1, 0), N(static_cast<size_t>(n_jobs));
  std::vector<std::vector<float>> bias(static_cast<size_t>(n_jobs));
  for (int j = 0; j < n_jobs; ++j) {
    const LinearJob& jb = jobs[j];
    N[size_t(j)] = jb.packed ? jb.packed->n : jb.w->dim(0);
    const int64_t kk = jb.packed ? jb.packed->k : jb.w->dim(1);
    VLM_CHECK(kk == K, "linear_group: job %d has K=%lld, expected %lld", j, (long long)kk, (long long)K);
    bias[size_t(j)] = bias_f32(jb.b, N[size_t(j)]);
    const int64_t units = quant ? quant::panels(*jb.packed) : N[size_t(j)];
    start[size_t(j) + 1] = start[size_t(j)] + units;
  }
  const Kernels& kk = kernels();
  Buffer xb, qb, db, eb;
  QuantActs qa;
  int64_t ldx = 0;
  if (f == LinearFormat::BF16) {
    ldx = (K + 31) / 32 * 32;
    const int64_t Mp = (M + 15) / 16 * 16;
    xb = Buffer(size_t(Mp * ldx * 2));
    uint16_t* xp = xb.as<uint16_t>();
    std::fill(xp + M * ldx, xp + Mp * ldx, uint16_t(0));
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t k = 0; k < K; ++k) xp[m * ldx + k] = f32_to_bf16(x[m * K + k]);
      for (int64_t k = K; k < ldx; ++k) xp[m * ldx + k] = 0;
    }
  } else if (quant) {
    const int64_t kp = jobs[0].packed->kp, nb = kp / kQuantBlock;
    qb = Buffer(size_t(M * kp));
    db = Buffer(size_t(M * nb * 4));
    eb = Buffer(size_t(M * nb * 4));
    kk.quantize_rows(x, M, K, kp, f == LinearFormat::Q8 ? 128 : 8, qb.as<int8_t>(), db.as<float>(), eb.as<float>());
    qa = QuantActs{qb.as<int8_t>(), db.as<float>(), eb.as<float>(), kp, nb};
  }
  const int64_t grain = quant ? (M <= 4 ? 1 : 4) : grain_for(M);
  parallel_for(start.back(), grain, [&](int64_t u0, int64_t u1) {
    for (int j = 0; j < n_jobs; ++j) {
      const int64_t a = std::max(u0, start[size_t(j)]) - start[size_t(j)];
      const int64_t b = std::min(u1, start[size_t(j) + 1]) - start[size_t(j)];
      if (a >= b) continue;
      const LinearJob& jb = jobs[j];
      const float* bp = jb.b ? bias[size_t(j)].data() : nullptr;
      const int64_t Nj = N[size_t(j)];
      if (quant)
        kk.gemm_quant(qa, M, *jb.packed, a * kQuantPanel, std::min(Nj, b * kQuantPanel), bp, jb.y, Nj);
      else if (f == LinearFormat::BF16)
        kk.gemm_bf16(xb.as<uint16_t>(), ldx, M, K, jb.packed->view.as<uint16_t>(), a, b, bp, jb.y, Nj);
      else
        kk.gemm_f32(x, M, K, jb.packed ? jb.packed->view : *jb.w, a, b, bp, jb.y, Nj);
    }
  });
}

}  // namespace vlm::ops::cpu
