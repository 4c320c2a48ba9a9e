// Exact uint8 resamplers for RGB images.
//
// Both reproduce a reference implementation bit for bit, because models are
// evaluated against the pixels a specific Python stack produces:
//  * ResampleKernel::kPil — Pillow's Image.resize(size, BICUBIC|BILINEAR)
//    (reducing_gap=None): separable, horizontal pass first with a uint8
//    intermediate, 22-bit fixed-point taps (QWEN_PREPROCESSING.md §3.2).
//  * ResampleKernel::kTorchvision — torchvision.transforms.v2.functional.resize
//    on a CPU uint8 tensor with antialias=True, i.e. ATen's Pillow-SIMD port:
//    the same taps and pass order, but int16 taps whose precision is chosen
//    per pass from the largest weight. This is what Hugging Face's default
//    ("fast") image processors use.
// Both filters are antialiased (support widened by the scale when shrinking).
#pragma once
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "vision/image.h"

namespace vlm {

enum class ResampleFilter { kBilinear, kBicubic };  // bicubic: Keys, a = -0.5
enum class ResampleKernel { kPil, kTorchvision };

// Largest output accepted by resize_image (pixels); far above any model input.
inline constexpr int64_t kMaxResizePixels = int64_t(1) << 28;

// Integer taps of one 1-D pass: output i reads input [first[i], first[i]+count[i])
// with weights coeff[i*stride .. i*stride+count[i]); result is
// clamp((bias + sum) >> shift, 0, 255) with bias = 1 << (shift - 1).
struct ResampleTaps {
  int in_size = 0, out_size = 0;
  int stride = 0;  // taps reserved per output
  int shift = 0;
  std::vector<int> first, count;
  std::vector<int32_t> coeff;
};

ResampleTaps compute_resample_taps(int in_size, int out_size, ResampleFilter filter,
                                   ResampleKernel kernel);

Expected<Image> resize_image(const Image& src, int out_width, int out_height,
                             ResampleKernel kernel, ResampleFilter filter);

inline Expected<Image> resize_pil(const Image& src, int out_width, int out_height,
                                  ResampleFilter filter = ResampleFilter::kBicubic) {
  return resize_image(src, out_width, out_height, ResampleKernel::kPil, filter);
}
inline Expected<Image> resize_torchvision(const Image& src, int out_width, int out_height,
                                          ResampleFilter filter = ResampleFilter::kBicubic) {
  return resize_image(src, out_width, out_height, ResampleKernel::kTorchvision, filter);
}

}  // namespace vlm
