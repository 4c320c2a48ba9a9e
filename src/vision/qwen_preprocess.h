// Qwen2-VL / Qwen2.5-VL / Qwen3-VL image and video preprocessing
// (QWEN_PREPROCESSING.md): smart_resize, exact resampling, rescale +
// normalise, temporal duplication and the merge-window patch order.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "vision/image.h"
#include "vision/resize.h"

namespace vlm {

enum class SmartResizeRule {
  kHfV5,         // transformers v5: no small-side error, downscale clamped to >= factor
  kHf45,         // transformers 4.45-4.5x: error when a side is < factor
  kQwenVlUtils,  // qwen-vl-utils: initial rounding clamped to >= factor
};

// How a video's frame size is chosen.
enum class VideoResizeMode {
  kPerFrame,  // Qwen2/2.5-VL: 2-D smart_resize of one frame, per-frame bounds
  kClip3D,    // Qwen3-VL: smart_resize over the whole clip (bounds are clip areas)
};

struct ImageSize {
  int64_t height = 0, width = 0;
  bool operator==(const ImageSize&) const = default;
};

// Bounds on anything a request or config can ask for: a resized image (or
// the per-frame area of a video) above kMaxQwenPixels is refused, which keeps
// pixel_values below ~1.6 GB per image even for absurd configurations
// (hub configs ask for at most 2^24 pixels).
inline constexpr int64_t kMaxQwenPixels = int64_t(1) << 26;

struct QwenImageConfig {
  int patch_size = 14;
  int temporal_patch_size = 2;
  int merge_size = 2;
  // Areas in pixels. Defaults are HF's Qwen2VLImageProcessor class defaults,
  // used when a config names no bounds (the hub configs do name them).
  int64_t min_pixels = 56 * 56;
  int64_t max_pixels = 28 * 28 * 1280;
  std::array<float, 3> image_mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std = {0.26862954f, 0.26130258f, 0.27577711f};
  double rescale_factor = 1.0 / 255.0;
  bool do_resize = true, do_rescale = true, do_normalize = true;
  ResampleFilter filter = ResampleFilter::kBicubic;  // "resample": 2 bilinear, 3 bicubic
  // Video processors only (video_preprocessor_config.json).
  VideoResizeMode video_resize = VideoResizeMode::kPerFrame;
  double fps = 2.0;
  int min_frames = 4, max_frames = 768;
  bool do_sample_frames = false;
  bool from_video_config = false;  // parsed from video_preprocessor_config.json

  int factor() const { return patch_size * merge_size; }
};

// Parses a preprocessor_config.json / video_preprocessor_config.json text.
// Explicit "min_pixels"/"max_pixels" win over "size": {"shortest_edge",
// "longest_edge"} (which are areas despite their names).
Expected<QwenImageConfig> parse_qwen_image_config(std::string_view json_text);
// <model_dir>/preprocessor_config.json
Expected<QwenImageConfig> load_qwen_image_config(const std::string& model_dir);
// <model_dir>/video_preprocessor_config.json, or, as HF does for repos
// without one (Qwen2/2.5-VL), preprocessor_config.json.
Expected<QwenImageConfig> load_qwen_video_config(const std::string& model_dir);

// Target (H', W') for one image or frame; all arithmetic in double with
// Python's round-half-to-even, as the references.
Expected<ImageSize> smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                                 int64_t max_pixels,
                                 SmartResizeRule rule = SmartResizeRule::kHfV5);
// Qwen3-VL video processor: bounds apply to n_frames * H' * W'.
Expected<ImageSize> smart_resize_clip(int64_t n_frames, int64_t height, int64_t width,
                                      int64_t temporal_factor, int64_t factor, int64_t min_pixels,
                                      int64_t max_pixels);

enum class NormalizeFormula {
  kAuto,         // fused for the torchvision resampler, slow for PIL
  kFused,        // HF fast processors: (float(v) - mean*255) / (std*255)
  kRescaleThenNormalize,  // HF slow/PIL processors: (float(v/255) - mean) / std
};

struct QwenPreprocessOptions {
  ResampleKernel resampler = ResampleKernel::kTorchvision;  // transformers >= 5 default
  std::optional<int64_t> min_pixels, max_pixels;  // per-request overrides
  // qwen-vl-utils' resized_height/resized_width: smart_resize this size
  // (with the bounds) instead of the image's own size.
  std::optional<ImageSize> resized_size;
  SmartResizeRule rule = SmartResizeRule::kHfV5;
  NormalizeFormula normalize = NormalizeFormula::kAuto;
};

struct VisionBatch {
  std::vector<float> pixel_values;  // [rows, cols] row-major
  int64_t rows = 0, cols = 0;
  std::vector<std::array<int64_t, 3>> grid_thw;  // (t, h, w) in patches, one per image/video
};

// Images: each resized independently, rows concatenated in input order.
Expected<VisionBatch> preprocess_qwen_images(const std::vector<Image>& images,
                                             const QwenImageConfig& config,
                                             const QwenPreprocessOptions& options = {});
// One video given as already-sampled frames: all frames resized to the size
// chosen from the first frame, padded to a multiple of temporal_patch_size by
// repeating the last frame. Produces pixel_values_videos / video_grid_thw.
Expected<VisionBatch> preprocess_qwen_video(const std::vector<Image>& frames,
                                            const QwenImageConfig& config,
                                            const QwenPreprocessOptions& options = {});

// Appends one clip (frames already resized to a common size) in the
// merge-window order of QWEN_PREPROCESSING §5.2; exposed for tests.
Status append_qwen_patches(const std::vector<const Image*>& frames, const QwenImageConfig& config,
                           NormalizeFormula formula, VisionBatch* batch);

}  // namespace vlm
