// vlm as a C++ library: load a Hugging Face checkpoint folder and ask about images and videos.
//
//   auto p = vlm::Pipeline::load("Qwen2-VL-2B-Instruct");           // Expected<...>
//   if (!p.ok()) { std::cerr << p.error().message; return 1; }
//   auto a = (*p)->ask("photo.jpg", "Describe this image.");
//   if (a.ok()) std::cout << a->text;
//
// Chats with several turns, images and videos (in the order they appear), streaming and
// sampling control go through chat(). Errors (a missing file, a corrupt image, a prompt the
// model cannot take) come back as Expected errors with a message, never as exceptions or aborts.
// Link the CMake target vlm::vlm (add_subdirectory of this repository). One Pipeline answers one
// request at a time; use one per thread for parallel requests.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "vision/image.h"

namespace vlm {

namespace models {
class Model;
}

struct LoadOptions {
  // Linear-layer format: "native" (exact f32 math on the stored weights), "bf16", "q8", "q4".
  std::string weights = "native";
  std::string vision_weights;  // the vision tower's format; empty = `weights`
  bool mmap = false;           // compute from the mapped files instead of a copy in huge pages
  int threads = 0;             // worker threads for all pipelines of the process; 0 = all cores
};

struct GenerationOptions {
  int max_tokens = 256;
  // Negative: the checkpoint's generation_config.json. temperature 0 = greedy.
  float temperature = -1, top_p = -1, repetition_penalty = -1;
  int top_k = -1;
  uint64_t seed = 0;
};

// One chat turn: its text and media, media first (as chat templates place them).
struct Message {
  std::string role = "user";  // "system", "user" or "assistant"
  std::string text;
  std::vector<std::string> images;  // image files (PNG, JPEG, WebP)
  std::vector<Image> decoded;       // images already in memory
  std::vector<std::string> videos;  // video files or frame folders
  double video_fps = 2.0;           // frames sampled per second of video
  int max_video_frames = 768;
};

struct Answer {
  std::string text;             // without special tokens
  std::vector<int32_t> tokens;  // generated ids (a final stop token included)
  bool stopped_by_eos = false;
  int64_t prompt_tokens = 0;
  double prefill_ms = 0, decode_ms = 0;
};

class Pipeline {
 public:
  static Expected<std::unique_ptr<Pipeline>> load(const std::string& model_dir, const LoadOptions& opt = {});
  ~Pipeline();

  // on_text receives each completed piece of the answer as it is generated; return false to stop.
  Expected<Answer> chat(const std::vector<Message>& messages, const GenerationOptions& gen = {},
                        const std::function<bool(const std::string&)>& on_text = {}) const;
  // One image, one question.
  Expected<Answer> ask(const std::string& image_path, const std::string& question,
                       const GenerationOptions& gen = {}) const;

  std::string family() const;  // e.g. "qwen2_vl"
  // The engine's model (prompt preparation, prefill/decode, tokenizer), for what this API lacks.
  const models::Model& model() const { return *model_; }

 private:
  explicit Pipeline(std::unique_ptr<models::Model> m);
  std::unique_ptr<models::Model> model_;
};

}  // namespace vlm
