#include "ops/ref/ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/quant.h"

namespace vlm::ops::ref {

float weight_at(const TensorView& w, int64_t i) {
  switch (w.dtype) {
    case DType::F32: return w.as<float>()[i];
    case DType::BF16: return bf16_to_f32(w.as<uint16_t>()[i]);
    case DType::F16: return f16_to_f32(w.as<uint16_t>()[i]);
    default: VLM_CHECK(false, "weight dtype %s not supported by the reference ops", dtype_name(w.dtype));
  }
  return 0;
}

void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y) {
  const int64_t N = W.dim(0);
  VLM_CHECK(W.ndim == 2 && W.dim(1) == K, "linear: W is %s, K=%lld", W.shape_str().c_str(), (long long)K);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += x[m * K + k] * weight_at(W, n * K + k);
      y[m * N + n] = acc + (b ? weight_at(*b, n) : 0.0f);
    }
}

void rmsnorm(const float* x, int64_t rows, int64_t dim, const TensorView& w, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = xr[i] * inv * weight_at(w, i);
  }
}

void layernorm(const float* x, int64_t rows, int64_t dim, const TensorView& w, const TensorView& b,
               float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float mean = 0;
    for (int64_t i = 0; i < dim; ++i) mean += xr[i];
    mean /= float(dim);
    float var = 0;
    for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= float(dim);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = (xr[i] - mean) * inv * weight_at(w, i) + weight_at(b, i);
  }
}

static float act1(Act a, float v) {
  switch (a) {
    case Act::Identity: return v;
    case Act::Silu: return v / (1.0f + std::exp(-v));
    case Act::QuickGelu: return v / (1.0f + std::exp(-1.702f * v));
    case Act::Gelu: return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
    case Act::GeluTanh: {
      const float k = 0.7978845608028654f;  // sqrt(2/pi)
      return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
    }
  }
  return v;
}

void activate(Act act, float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = act1(act, x[i]);
}

void silu_mul(const float* gate, const float* up, int64_t rows, int64_t I, int64_t stride, float* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < I; ++i) out[r * I + i] = act1(Act::Silu, gate[r * stride + i]) * up[r * stride + i];
}

void add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void embedding(const TensorView& E, const int32_t* ids, int64_t n, float* out) {
  const int64_t V = E.dim(0), D = E.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    VLM_CHECK(ids[i] >= 0 && ids[i] < V, "token id %d outside the embedding table (%lld rows)", ids[i],
              (long long)V);
    for (int64_t j = 0; j < D; ++j) out[i * D + j] = weight_at(E, int64_t(ids[i]) * D + j);
  }
}

void rope(float* x, int64_t rows, int64_t stride, int heads, int d, const float* cos, const float* sin) {
  const int half = d / 2;
  for (int64_t r = 0; r < rows; ++r)
    for (int h = 0; h < heads; ++h) {
      float* v = x + r * stride + int64_t(h) * d;
      const float* c = cos + r * d;
      const float* s = sin + r * d;
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i + half] + a * s[i + half];
      }
    }
}

void attention(const AttnArgs& a) {
  VLM_CHECK(a.heads % a.kv_heads == 0, "heads %d not a multiple of kv_heads %d", a.heads, a.kv_heads);
  VLM_CHECK(!a.cu_seqlens || a.n_q == a.n_kv, "segmented attention needs n_q == n_kv");
  const int group = a.heads / a.kv_heads;
  // a.bf16: the tile inputs (q, k, v and the unnormalised probabilities) are rounded to bf16.
  auto rd = [&](float x) { return a.bf16 ? bf16_to_f32(f32_to_bf16(x)) : x; };
  std::vector<float> p(size_t(a.n_kv));
  int seg = 0;
  for (int64_t i = 0; i < a.n_q; ++i) {
    int64_t lo = 0, hi = a.n_kv;
    if (a.cu_seqlens) {
      while (seg + 1 < a.n_seg && a.cu_seqlens[seg + 1] <= i) ++seg;
      lo = a.cu_seqlens[seg];
      hi = a.cu_seqlens[seg + 1];
    }
    if (a.causal) hi = std::min<int64_t>(hi, a.q_pos0 + i + 1);
    for (int h = 0; h < a.heads; ++h) {
      const float* q = a.q + i * a.q_stride + int64_t(h) * a.d;
      const int64_t kv_off = int64_t(h / group) * a.d;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = lo; j < hi; ++j) {
        const float* k = a.k + j * a.kv_stride + kv_off;
        float s = 0;
        for (int t = 0; t < a.d; ++t) s += rd(q[t]) * rd(k[t]);
        p[size_t(j)] = s * a.scale;
        mx = std::max(mx, p[size_t(j)]);
      }
      float sum = 0;
      for (int64_t j = lo; j < hi; ++j) {
        p[size_t(j)] = rd(std::exp(p[size_t(j)] - mx));
        sum += p[size_t(j)];
      }
      float* o = a.out + i * int64_t(a.heads) * a.d + int64_t(h) * a.d;
      for (int t = 0; t < a.d; ++t) o[t] = 0;
      for (int64_t j = lo; j < hi; ++j) {
        const float w = p[size_t(j)] / sum;
        const float* v = a.v + j * a.kv_stride + kv_off;
        for (int t = 0; t < a.d; ++t) o[t] += w * rd(v[t]);
      }
    }
  }
}

// Integer value and scale of weight (n, k) in a quantised packed weight.
static int quant_value(const PackedWeight& w, int64_t n, int64_t kk, float* scale) {
  const int64_t p = n / kQuantPanel, r = n % kQuantPanel, b = kk / kQuantBlock, i = kk % kQuantBlock;
  const uint8_t* q = quant::quants(w, p, b);
  *scale = f16_to_f32(quant::scales(w, p, b)[r]);
  const int g = int(i / 4), j = int(i % 4);
  if (w.format == LinearFormat::Q8) return int(q[(g * 16 + r) * 4 + j]) - 128;
  const uint8_t byte = q[((g / 2) * 16 + r) * 4 + j];
  return int(g % 2 == 0 ? byte & 0x0F : byte >> 4) - 8;
}

std::vector<float> dequantize(const PackedWeight& w) {
  const int64_t N = w.n, K = w.k;
  std::vector<float> out(size_t(N * K));
  if (w.format == LinearFormat::Native || w.format == LinearFormat::BF16) {
    for (int64_t i = 0; i < N * K; ++i) out[size_t(i)] = weight_at(w.view, i);
    return out;
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t kk = 0; kk < K; ++kk) {
      float d;
      const int v = quant_value(w, n, kk, &d);
      out[size_t(n * K + kk)] = d * float(v);
    }
  return out;
}

void quantize_activations(const float* x, int64_t K, int64_t kp, int8_t* q, float* d) {
  for (int64_t b = 0; b < kp / kQuantBlock; ++b) {
    float amax = 0;
    for (int64_t i = b * kQuantBlock; i < std::min(K, (b + 1) * kQuantBlock); ++i) amax = std::max(amax, std::fabs(x[i]));
    const float db = amax / 127.0f, id = db > 0 ? 1.0f / db : 0.0f;
    d[b] = db;
    for (int64_t i = b * kQuantBlock; i < (b + 1) * kQuantBlock; ++i)
      q[i] = i < K ? int8_t(std::nearbyint(x[i] * id)) : int8_t(0);
  }
}

void linear(const float* x, int64_t M, int64_t K, const PackedWeight& W, const TensorView* b, float* y) {
  const int64_t N = W.n;
  VLM_CHECK(W.k == K, "linear: packed weight is [%lld, %lld], K=%lld", (long long)W.n, (long long)W.k, (long long)K);
  if (W.format == LinearFormat::Native) return linear(x, M, K, W.view, b, y);
  if (W.format == LinearFormat::BF16) {
    std::vector<float> xr(size_t(M * K));
    for (int64_t i = 0; i < M * K; ++i) xr[size_t(i)] = bf16_to_f32(f32_to_bf16(x[i]));
    return linear(xr.data(), M, K, W.view, b, y);
  }
  const int64_t kp = W.kp, nb = kp / kQuantBlock;
  std::vector<int8_t> q(static_cast<size_t>(kp));
  std::vector<float> d(static_cast<size_t>(nb));
  for (int64_t m = 0; m < M; ++m) {
    quantize_activations(x + m * K, K, kp, q.data(), d.data());
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0;
      for (int64_t blk = 0; blk < nb; ++blk) {
        float dw = 0;
        int32_t isum = 0;
        for (int64_t i = blk * kQuantBlock; i < std::min(K, (blk + 1) * kQuantBlock); ++i)
          isum += int32_t(q[size_t(i)]) * quant_value(W, n, i, &dw);
        acc += dw * d[size_t(blk)] * float(isum);
      }
      y[m * N + n] = acc + (b ? weight_at(*b, n) : 0.0f);
    }
  }
}

}  // namespace vlm::ops::ref
