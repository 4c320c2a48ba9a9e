// CLIPImageProcessor (shortest-edge resize + centre crop; LLaVA-1.5, CLIP) and
// SiglipImageProcessor (fixed-size resize) preprocessing, from
// preprocessor_config.json. Output: float32 [n, 3, H, W] (CHW per image).
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "vision/image.h"
#include "vision/resize.h"

namespace vlm {

struct ClipImageConfig {
  bool do_resize = true, do_center_crop = true, do_rescale = true, do_normalize = true;
  bool do_pad_square = false;  // LLaVA's pad-to-square with the mean colour (do_pad)
  int shortest_edge = 224;     // CLIP: resize so the short side is this
  int height = 0, width = 0;   // SigLIP: resize straight to this (when size has height/width)
  int crop_height = 224, crop_width = 224;
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f};
  double rescale_factor = 1.0 / 255.0;
  ResampleFilter filter = ResampleFilter::kBicubic;

  bool fixed_size() const { return height > 0 && width > 0; }
  int out_height() const { return fixed_size() ? height : crop_height; }
  int out_width() const { return fixed_size() ? width : crop_width; }
};

Expected<ClipImageConfig> parse_clip_image_config(std::string_view json_text);
Expected<ClipImageConfig> load_clip_image_config(const std::string& model_dir);

// The size CLIP's shortest-edge rule resizes an image to: short side = S, long side =
// trunc(S · long / short), as transformers' get_resize_output_image_size.
void clip_resize_size(int width, int height, int shortest_edge, int* out_w, int* out_h);

// pixel_values [n, 3, out_h, out_w]. kernel selects the PIL (slow processor) or torchvision
// (fast processor, transformers 5 default) resampler and the matching normalise formula.
Expected<std::vector<float>> preprocess_clip_images(const std::vector<Image>& images, const ClipImageConfig& cfg,
                                                    ResampleKernel kernel = ResampleKernel::kTorchvision);

}  // namespace vlm
