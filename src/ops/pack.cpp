// Weight formats and their load-time packing (the format definition: the
// kernels and the scalar reference both read what is written here).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/threads.h"
#include "ops/cpu/cpu.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "ops/ref/ref.h"

namespace vlm::ops {

bool parse_linear_format(const std::string& s, LinearFormat* out) {
  if (s == "native") *out = LinearFormat::Native;
  else if (s == "bf16") *out = LinearFormat::BF16;
  else if (s == "q8") *out = LinearFormat::Q8;
  else if (s == "q4") *out = LinearFormat::Q4;
  else return false;
  return true;
}

const char* linear_format_name(LinearFormat f) {
  switch (f) {
    case LinearFormat::Native: return "native";
    case LinearFormat::BF16: return "bf16";
    case LinearFormat::Q8: return "q8";
    case LinearFormat::Q4: return "q4";
  }
  return "?";
}

namespace {

// Round half to even without a libm call (|v| < 2^22, which the clamped ranges here satisfy).
inline float round_even(float v) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  return v >= 0 ? (v + magic) - magic : (v - magic) + magic;
}

}  // namespace

namespace quant {

int64_t block_bytes(LinearFormat f) { return f == LinearFormat::Q8 ? 512 : 256; }

int64_t panels(const PackedWeight& w) { return (w.n + kQuantPanel - 1) / kQuantPanel; }

const uint8_t* quants(const PackedWeight& w, int64_t panel, int64_t block) {
  const int64_t nb = w.kp / kQuantBlock;
  return w.data.as<uint8_t>() + (panel * nb + block) * block_bytes(w.format);
}

const uint16_t* scales(const PackedWeight& w, int64_t panel, int64_t block) {
  const int64_t nb = w.kp / kQuantBlock;
  const int64_t qbytes = panels(w) * nb * block_bytes(w.format);
  return reinterpret_cast<const uint16_t*>(w.data.as<uint8_t>() + qbytes) + (panel * nb + block) * kQuantPanel;
}

void quantize_block(LinearFormat f, const float* w, int r, uint8_t* q, uint16_t* s) {
  float amax = 0, vmax = 0;
  for (int i = 0; i < 32; ++i)
    if (std::fabs(w[i]) > amax) {
      amax = std::fabs(w[i]);
      vmax = w[i];
    }
  if (f == LinearFormat::Q8) {
    const uint16_t d16 = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(d16);
    s[r] = d16;
    const float id = d > 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; ++i) {
      const int v = int(std::clamp(round_even(std::clamp(w[i] * id, -127.0f, 127.0f)), -127.0f, 127.0f));
      q[((i / 4) * 16 + r) * 4 + i % 4] = uint8_t(v + 128);
    }
  } else {
    const uint16_t d16 = f32_to_f16(vmax / -8.0f);
    const float d = f16_to_f32(d16);
    s[r] = d16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; ++i) {
      const int v = int(std::clamp(round_even(std::clamp(w[i] * id, -8.0f, 8.0f)) + 8.0f, 0.0f, 15.0f));
      const int g = i / 4, h = g / 2;
      uint8_t& byte = q[(h * 16 + r) * 4 + i % 4];
      byte = uint8_t(g % 2 == 0 ? (byte & 0xF0) | v : (byte & 0x0F) | (v << 4));
    }
  }
}


void quantize_block_bf16_scalar(LinearFormat f, const uint16_t* src, int64_t K, int rows, int nk, uint8_t* q,
                                uint16_t* s) {
  float w[32];
  for (int r = 0; r < kQuantPanel; ++r) {
    const int n = r < rows ? nk : 0;
    for (int i = 0; i < n; ++i) w[i] = bf16_to_f32(src[r * K + i]);
    for (int i = n; i < 32; ++i) w[i] = 0.0f;
    quantize_block(f, w, r, q, s);
  }
}

}  // namespace quant

size_t PackedWeight::bytes() const {
  switch (format) {
    case LinearFormat::Native: return view.nbytes();
    case LinearFormat::BF16: return size_t(n * k * 2);
    case LinearFormat::Q8:
    case LinearFormat::Q4: return data.size();
  }
  return 0;
}

std::shared_ptr<PackedWeight> pack_weight(const TensorView& W, LinearFormat f) {
  VLM_CHECK(W.ndim == 2, "pack_weight: weight must be 2-d, is %s", W.shape_str().c_str());
  auto p = std::make_shared<PackedWeight>();
  p->format = f;
  p->n = W.dim(0);
  p->k = W.dim(1);
  const int64_t N = p->n, K = p->k;
  if (f == LinearFormat::Native) {
    p->view = W;
    return p;
  }
  if (f == LinearFormat::BF16) {
    if (W.dtype == DType::BF16) {
      p->view = W;
      return p;
    }
    p->data = Buffer::for_weights(size_t(N * K * 2));
    uint16_t* d = p->data.as<uint16_t>();
    parallel_for(N, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t i = n0 * K; i < n1 * K; ++i) d[i] = f32_to_bf16(ref::weight_at(W, i));
    });
    p->view = TensorView(DType::BF16, d, {N, K});
    return p;
  }
  p->kp = (K + kQuantBlock - 1) / kQuantBlock * kQuantBlock;
  const int64_t nb = p->kp / kQuantBlock, np = quant::panels(*p);
  const int64_t bytes = np * nb * (quant::block_bytes(f) + kQuantPanel * 2);
  p->data = Buffer::for_weights(size_t(bytes));
  std::memset(p->data.data(), 0, size_t(bytes));
  const cpu::Kernels& kk = cpu::kernels();
  parallel_for(np, 1, [&](int64_t p0, int64_t p1) {
    float w[32];
    for (int64_t pi = p0; pi < p1; ++pi)
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* q = const_cast<uint8_t*>(quant::quants(*p, pi, b));
        uint16_t* s = const_cast<uint16_t*>(quant::scales(*p, pi, b));
        const int64_t k0 = b * kQuantBlock;
        if (W.dtype == DType::BF16) {  // the checkpoints' dtype: SIMD where the CPU has it
          const int rows = int(std::min<int64_t>(kQuantPanel, N - pi * kQuantPanel));
          kk.quantize_block_bf16(f, W.as<uint16_t>() + pi * kQuantPanel * K + k0, K, rows,
                                 int(std::min<int64_t>(32, K - k0)), q, s);
          continue;
        }
        for (int r = 0; r < kQuantPanel; ++r) {
          const int64_t row = pi * kQuantPanel + r;
          const int64_t nk = row < N ? std::min<int64_t>(32, K - k0) : 0;
          for (int64_t i = 0; i < nk; ++i) w[i] = ref::weight_at(W, row * K + k0 + i);
          for (int64_t i = nk; i < 32; ++i) w[i] = 0.0f;
          quant::quantize_block(f, w, r, q, s);
        }
      }
  });
  return p;
}

}  // namespace vlm::ops
