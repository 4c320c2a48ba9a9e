// Attention with online softmax (flash-style): one pass over the keys per
// query row keeps a running max and sum, so no seq×seq scores are stored.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/threads.h"
#include "ops/cpu/cpu.h"

namespace vlm::ops::cpu {

void attention(const AttnArgs& a) { kernels().attention(a); }

void attention_portable(const AttnArgs& a) {
  VLM_CHECK(a.heads % a.kv_heads == 0, "heads %d not a multiple of kv_heads %d", a.heads, a.kv_heads);
  VLM_CHECK(!a.cu_seqlens || a.n_q == a.n_kv, "segmented attention needs n_q == n_kv");
  const int group = a.heads / a.kv_heads;
  const int d = a.d;
  attn_for_each_row(a, size_t(d), [&](int64_t i, int h, int64_t lo, int64_t hi, float* acc) {
    const float* q = a.q + i * a.q_stride + int64_t(h) * d;
    const int64_t kv_off = int64_t(h / group) * d;
    float mx = -std::numeric_limits<float>::infinity(), sum = 0;
    std::fill(acc, acc + d, 0.0f);
    for (int64_t j = lo; j < hi; ++j) {
      const float* k = a.k + j * a.kv_stride + kv_off;
      float s = 0;
      for (int e = 0; e < d; ++e) s += q[e] * k[e];
      s *= a.scale;
      if (s > mx) {  // rescale what was accumulated under the old max
        const float c = std::exp(mx - s);
        sum *= c;
        for (int e = 0; e < d; ++e) acc[e] *= c;
        mx = s;
      }
      const float p = std::exp(s - mx);
      sum += p;
      const float* v = a.v + j * a.kv_stride + kv_off;
      for (int e = 0; e < d; ++e) acc[e] += p * v[e];
    }
    float* o = a.out + i * int64_t(a.heads) * d + int64_t(h) * d;
    const float inv = sum > 0 ? 1.0f / sum : 0.0f;
    for (int e = 0; e < d; ++e) o[e] = acc[e] * inv;
  });
}

}  // namespace vlm::ops::cpu
