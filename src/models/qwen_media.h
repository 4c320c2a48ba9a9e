// Bridges model requests to the Qwen image/video preprocessors (vision layer).
#pragma once
#include "models/model.h"
#include "vision/qwen_preprocess.h"

namespace vlm::models {

struct QwenMediaConfig {
  QwenImageConfig image, video;
  int temporal_patch = 2;
};

Expected<QwenMediaConfig> load_qwen_media_config(const std::string& dir);
Expected<PixelBatch> qwen_preprocess_images(const std::vector<const Media*>& images, const QwenMediaConfig& c,
                                            const PrepareOptions& opt);
Expected<PixelBatch> qwen_preprocess_video(const Media& video, const QwenMediaConfig& c, const PrepareOptions& opt);

}  // namespace vlm::models
