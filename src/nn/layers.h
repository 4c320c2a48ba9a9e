// Weight-holding building blocks bound by their Hugging Face names straight
// from the checkpoint mmap. Binding checks shapes; forward never allocates
// weights or converts dtypes.
#pragma once
#include <memory>
#include <string>

#include "core/safetensors.h"
#include "core/status.h"
#include "ops/ops.h"

namespace vlm::nn {

struct Linear {
  TensorView w;  // [out, in] as in the checkpoint
  TensorView b;  // [out] (data == nullptr when the layer has no bias)
  int64_t in = 0, out = 0;
  // The weight in the format of WeightStore::linear_format, packed once at bind time
  // (null for "native", which computes straight from `w` with exact f32 math).
  std::shared_ptr<const ops::PackedWeight> packed;

  // prefix is the module name, e.g. "model.layers.0.self_attn.q_proj".
  static Expected<Linear> bind(const WeightStore& ws, const std::string& prefix, int64_t out, int64_t in,
                               bool bias);
  // Wraps an already-bound [out, in] tensor (e.g. a tied LM head) in the format `format`.
  static Expected<Linear> from_view(const TensorView& w, const std::string& format);
  // y[M, out] = x[M, in] · wᵀ + b
  void operator()(const float* x, int64_t M, float* y) const {
    if (packed)
      ops::linear(x, M, in, *packed, b.data ? &b : nullptr, y);
    else
      ops::linear(x, M, in, w, b.data ? &b : nullptr, y);
  }
  // True when the layer computes in a rounded format (bf16, q8, q4): the blocks around it may then
  // use bf16 attention too.
  bool rounded() const { return packed && packed->format != ops::LinearFormat::Native; }
  // Bytes of weights one call reads (the packed size when packed).
  size_t weight_bytes() const { return (packed ? packed->bytes() : w.nbytes()) + b.nbytes(); }
};

// Several Linear layers on the same input (q/k/v, gate/up) in one parallel region; each output is
// what the layer's own call would give.
void run_linears(const float* x, int64_t M, std::initializer_list<std::pair<const Linear*, float*>> layers);

struct Norm {
  enum class Kind { RMS, Layer };
  Kind kind = Kind::RMS;
  TensorView w, b;  // [dim]; b only for LayerNorm
  int64_t dim = 0;
  float eps = 1e-6f;

  static Expected<Norm> bind(const WeightStore& ws, const std::string& prefix, Kind kind, int64_t dim, float eps);
  // y[rows, dim] = norm(x); y may alias x.
  void operator()(const float* x, int64_t rows, float* y) const {
    if (kind == Kind::RMS)
      ops::rmsnorm(x, rows, dim, w, eps, y);
    else
      ops::layernorm(x, rows, dim, w, b, eps, y);
  }
};

// Callback that receives named intermediate tensors (for `vlm check` and
// debugging); names follow the fixtures' hook names. Null = no tracing.
struct Trace {
  virtual ~Trace() = default;
  virtual void tensor(const std::string& name, const float* data, std::initializer_list<int64_t> shape) = 0;
};

}  // namespace vlm::nn
