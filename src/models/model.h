// The model interface every family implements, and the registry that picks
// a family from config.json's model_type. A family file binds its weights by
// their Hugging Face names, turns chat messages + media into a Prompt, and
// runs prefill / decode; everything above (sampling, CLI, server, check) is
// family-agnostic.
#pragma once
#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "nn/decoder.h"
#include "nn/layers.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "vision/video.h"
#include "vision/image.h"

namespace vlm::models {

// One image, or one video as already-sampled frames.
struct Media {
  enum class Kind { Image, Video };
  Kind kind = Kind::Image;
  std::vector<Image> frames;
  double fps = 2.0;  // rate at which the video frames were sampled
};

// An image file as one Media item.
Expected<Media> load_image_media(const std::string& path);
// A video file or a folder of frames (taken to be at `fps`) as one Media item, frames sampled with
// Qwen's rules at `fps`, at most `max_frames`.
Expected<Media> load_video_media(const std::string& path, double fps, int max_frames,
                                 const VideoProgress& progress = {});

// Where text positions resume after a multi-frame video block (QWEN_MODELS §8.1).
enum class RopeResumeRule { Original, Transformers5 };

struct PrepareOptions {
  int64_t min_pixels = -1, max_pixels = -1;  // -1: preprocessor_config.json values
  bool pil_resampler = false;                // default: torchvision's, as transformers 5 uses
  RopeResumeRule rope_rule = RopeResumeRule::Original;
  bool add_generation_prompt = true;
  // Size video frames with qwen-vl-utils' per-frame budget (what Qwen's own pipeline feeds HF),
  // instead of the image bounds of preprocessor_config.json that a bare HF processor applies.
  bool video_frame_budget = false;
  // Qwen3-VL videos: keep the template's <|vision_start|>…<|vision_end|> around the timestamped
  // frame blocks, as transformers 5.17 does (Qwen's processor replaces the whole triple).
  bool qwen3_video_outer_pair = false;
};

using Grid = std::array<int64_t, 3>;  // (t, h, w) in patches

// Pixels of all images (or all videos) of a request, in the family's row layout.
struct PixelBatch {
  std::vector<float> values;  // [rows, cols]
  int64_t rows = 0, cols = 0;
  std::vector<Grid> grids;
};

// Everything a model consumes for one request.
struct Prompt {
  std::string text;                  // rendered template (before placeholder expansion)
  std::vector<int32_t> ids;          // after expansion
  PixelBatch images, videos;
  std::vector<double> second_per_grid_ts;   // per video (Qwen2.5-VL)
  std::vector<std::array<int64_t, 3>> pos;  // M-RoPE (t, h, w) per token; empty = 1-D positions
  int64_t rope_delta = 0;
};

// Per-conversation state: KV cache and where decoding continues.
struct Session {
  nn::KVCache cache;
  int64_t next_pos = 0;  // rope position of the next token
  std::vector<int32_t> tokens;
};

// Progress callback for long loads: fraction in [0, 1] and a short label.
using LoadProgress = void (*)(double fraction, const char* what);

struct LoadOptions {
  // Format linear-layer weights are computed in: "native" (as stored: bf16/f16/f32),
  // "q8" or "q4" (block-quantised at load). Passed to the WeightStore before binding.
  std::string weights = "native";
  // Format of the vision tower's (and projector's) linear layers; empty = `weights`. Keeping the
  // tower in bf16 while the text model is q8/q4 keeps image features closer to the original and,
  // on CPUs with AMX, encodes faster too.
  std::string vision_weights;
  // Compute straight from the mapped checkpoint instead of copying native/bf16 weights into
  // 2 MB pages at load: loads faster and shares the page cache, decodes ~7 % slower.
  bool mmap = false;
  LoadProgress progress = nullptr;
};

struct GenerationDefaults {
  std::vector<int32_t> eos_ids;
  bool do_sample = false;
  float temperature = 1.0f, top_p = 1.0f, repetition_penalty = 1.0f;
  int top_k = 50;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string family() const = 0;
  // Chat messages -> the checkpoint's template -> prepare_text.
  Expected<Prompt> prepare(const nlohmann::json& messages, const std::vector<Media>& media,
                           const PrepareOptions& opt) const;
  // An already-rendered prompt with one placeholder per image/video, in order.
  virtual Expected<Prompt> prepare_text(const std::string& text, const std::vector<Media>& media,
                                        const PrepareOptions& opt) const = 0;
  // Runs the whole prompt; fills `logits` with the last position's logits.
  virtual Status prefill(Session& s, const Prompt& p, std::vector<float>* logits, nn::Trace* trace) const = 0;
  virtual void decode(Session& s, int32_t token, std::vector<float>* logits) const = 0;

  const text::Tokenizer& tokenizer() const { return *tokenizer_; }
  const GenerationDefaults& generation() const { return gen_; }
  int64_t vocab_size() const { return vocab_; }
  const std::string& dir() const { return dir_; }

 protected:
  // Tokenizer, chat template, generation defaults and the weight files.
  // fallback_template is used when the checkpoint ships no chat template (null: that is an error).
  Status load_common(const std::string& dir, const nlohmann::json& config, const LoadOptions& opt,
                     const char* fallback_template = nullptr);
  // Family bind(): call after binding the text decoder, before the vision tower and projector, so
  // that their linear layers take LoadOptions::vision_weights.
  void use_vision_format() { weights_.linear_format = vision_format_; }
  // The checkpoint's chat template applied to `messages`, with bos/eos tokens in the context.
  Expected<std::string> render_template(const nlohmann::json& messages, bool add_generation_prompt) const;

  std::string dir_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::unique_ptr<text::ChatTemplate> template_;
  GenerationDefaults gen_;
  int64_t vocab_ = 0;
  WeightStore weights_;
  std::string vision_format_;
};


Expected<std::unique_ptr<Model>> load_model(const std::string& dir, const LoadOptions& opt = {});

// Shared loading helpers for family files.
Expected<nlohmann::json> read_json_file(const std::string& path);
Expected<GenerationDefaults> load_generation_defaults(const std::string& dir, const nlohmann::json& config);

}  // namespace vlm::models
