#include "models/qwen_media.h"

#include <algorithm>

namespace vlm::models {
namespace {

QwenPreprocessOptions to_options(const PrepareOptions& opt) {
  QwenPreprocessOptions o;
  o.resampler = opt.pil_resampler ? ResampleKernel::kPil : ResampleKernel::kTorchvision;
  if (opt.min_pixels > 0) o.min_pixels = opt.min_pixels;
  if (opt.max_pixels > 0) o.max_pixels = opt.max_pixels;
  return o;
}

PixelBatch to_batch(VisionBatch&& v) {
  PixelBatch b;
  b.values = std::move(v.pixel_values);
  b.rows = v.rows;
  b.cols = v.cols;
  b.grids = std::move(v.grid_thw);
  return b;
}

}  // namespace

Expected<QwenMediaConfig> load_qwen_media_config(const std::string& dir) {
  QwenMediaConfig c;
  VLM_ASSIGN_OR_RETURN(c.image, load_qwen_image_config(dir));
  VLM_ASSIGN_OR_RETURN(c.video, load_qwen_video_config(dir));
  c.temporal_patch = c.video.temporal_patch_size;
  return c;
}

Expected<PixelBatch> qwen_preprocess_images(const std::vector<const Media*>& images, const QwenMediaConfig& c,
                                            const PrepareOptions& opt) {
  std::vector<Image> frames;
  frames.reserve(images.size());
  for (const Media* m : images) {
    if (m->frames.size() != 1) return make_error("an image must have exactly one frame");
    frames.push_back(m->frames[0]);
  }
  if (frames.empty()) return PixelBatch{};
  VLM_ASSIGN_OR_RETURN(VisionBatch v, preprocess_qwen_images(frames, c.image, to_options(opt)));
  return to_batch(std::move(v));
}

// qwen-vl-utils fetch_video: a per-frame pixel budget that shrinks as the frame count grows, so a
// long video stays within the model's context (QWEN_PREPROCESSING §6.1, 0.0.14 constants).
void video_budget(int64_t frames, int64_t factor, QwenPreprocessOptions* o) {
  const double f2 = double(factor) * double(factor);
  const int64_t min_px = int64_t(128 * f2);
  const double total = 128000.0 * f2 * 0.9;
  const int64_t max_px = std::max<int64_t>(int64_t(std::min(768.0 * f2, total / double(std::max<int64_t>(frames, 1)) * 2)),
                                           int64_t(double(min_px) * 1.05));
  if (!o->min_pixels) o->min_pixels = min_px;
  o->max_pixels = o->max_pixels ? std::min(*o->max_pixels, max_px) : max_px;  // a request may only lower it
  o->rule = SmartResizeRule::kQwenVlUtils;
}

Expected<PixelBatch> qwen_preprocess_video(const Media& video, const QwenMediaConfig& c, const PrepareOptions& opt) {
  if (video.frames.empty()) return make_error("a video needs at least one frame");
  QwenPreprocessOptions o = to_options(opt);
  if (opt.video_frame_budget) video_budget(int64_t(video.frames.size()), c.video.factor(), &o);
  VLM_ASSIGN_OR_RETURN(VisionBatch v, preprocess_qwen_video(video.frames, c.video, o));
  return to_batch(std::move(v));
}

}  // namespace vlm::models
