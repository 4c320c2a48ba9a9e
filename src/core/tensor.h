// The one non-owning tensor view of the engine. Weights are views straight
// into the mmapped checkpoint; activations are views into Buffers.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>

#include "core/check.h"

namespace vlm {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, Q8, Q4 };

// Bytes per element (0 for block-quantised types, whose size is per block).
size_t dtype_size(DType t);
const char* dtype_name(DType t);
// Parses a safetensors dtype string ("BF16", "F32", ...). Returns false if unknown.
bool dtype_from_safetensors(const std::string& s, DType* out);

inline constexpr int kMaxDims = 6;

struct TensorView {
  DType dtype = DType::F32;
  void* data = nullptr;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};  // row-major, contiguous

  TensorView() = default;
  TensorView(DType t, void* p, std::initializer_list<int64_t> dims) : dtype(t), data(p) {
    VLM_CHECK(dims.size() <= kMaxDims, "too many dims (%zu)", dims.size());
    for (int64_t d : dims) shape[ndim++] = d;
  }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  // Negative indices count from the back, as in PyTorch.
  int64_t dim(int i) const {
    if (i < 0) i += ndim;
    VLM_CHECK(i >= 0 && i < ndim, "dim %d out of range for a %d-d tensor", i, ndim);
    return shape[i];
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  std::string shape_str() const;
  bool same_shape(std::initializer_list<int64_t> dims) const;
};

// 64-byte aligned owning storage for activations.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes);
  // Storage for weights that decode streams end to end once per token: 2 MB aligned, with
  // transparent huge pages requested (madvise mode), so reading it costs no 4 KB TLB misses.
  static Buffer for_weights(size_t bytes);
  void* data() const { return p_.get(); }
  size_t size() const { return n_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_.get());
  }

 private:
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<void, Free> p_;
  size_t n_ = 0;
};

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round-to-nearest-even, as torch's float->bfloat16 cast.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace vlm
