// The library face (src/vlm.h): messages and files in, an answer out, on top of the runtime.
#include <filesystem>

#include "core/threads.h"
#include "models/model.h"
#include "ops/ops.h"
#include "runtime/engine.h"
#include "vision/video.h"
#include "vlm.h"

namespace vlm {

Pipeline::Pipeline(std::unique_ptr<models::Model> m) : model_(std::move(m)) {}
Pipeline::~Pipeline() = default;

Expected<std::unique_ptr<Pipeline>> Pipeline::load(const std::string& model_dir, const LoadOptions& opt) {
  ops::LinearFormat f;
  if (!ops::parse_linear_format(opt.weights, &f))
    return make_error("weights must be native, bf16, q8 or q4 (got '", opt.weights, "')");
  if (!opt.vision_weights.empty() && !ops::parse_linear_format(opt.vision_weights, &f))
    return make_error("vision_weights must be native, bf16, q8 or q4 (got '", opt.vision_weights, "')");
  if (opt.threads < 0) return make_error("threads must be >= 0");
  if (opt.threads > 0) set_num_threads(opt.threads);
  models::LoadOptions lo;
  lo.weights = opt.weights;
  lo.vision_weights = opt.vision_weights;
  lo.mmap = opt.mmap;
  VLM_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> m, models::load_model(model_dir, lo));
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(m)));
}

std::string Pipeline::family() const { return model_->family(); }

Expected<Answer> Pipeline::chat(const std::vector<Message>& messages, const GenerationOptions& gen,
                                const std::function<bool(const std::string&)>& on_text) const {
  if (messages.empty()) return make_error("chat: no messages");
  if (gen.max_tokens < 1) return make_error("chat: max_tokens must be >= 1");
  std::vector<models::Media> media;
  nlohmann::json msgs = nlohmann::json::array();
  for (const Message& m : messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      return make_error("chat: unknown role '", m.role, "' (system, user or assistant)");
    nlohmann::json content = nlohmann::json::array();
    for (const std::string& path : m.images) {
      VLM_ASSIGN_OR_RETURN(Image img, load_image(path));
      models::Media md;
      md.frames.push_back(std::move(img));
      media.push_back(std::move(md));
      content.push_back({{"type", "image"}});
    }
    for (const Image& img : m.decoded) {
      models::Media md;
      md.frames.push_back(img);
      media.push_back(std::move(md));
      content.push_back({{"type", "image"}});
    }
    for (const std::string& path : m.videos) {
      VideoSampling vs;
      vs.fps = m.video_fps;
      vs.max_frames = m.max_video_frames;
      std::error_code ec;
      VLM_ASSIGN_OR_RETURN(VideoClip clip, std::filesystem::is_directory(path, ec) ? load_frame_folder(path, m.video_fps, vs)
                                                                                     : load_video(path, vs, {}));
      models::Media md;
      md.kind = models::Media::Kind::Video;
      md.frames = std::move(clip.frames);
      md.fps = clip.sample_fps;
      media.push_back(std::move(md));
      content.push_back({{"type", "video"}});
    }
    content.push_back({{"type", "text"}, {"text", m.text}});
    msgs.push_back({{"role", m.role}, {"content", content}});
  }
  models::PrepareOptions po;
  po.video_frame_budget = true;
  VLM_ASSIGN_OR_RETURN(models::Prompt prompt, model_->prepare(msgs, media, po));
  runtime::GenerateOptions go;
  go.max_new_tokens = gen.max_tokens;
  go.sampling = runtime::default_sampling(*model_);
  if (gen.temperature >= 0) {
    go.sampling.temperature = gen.temperature;
    go.sampling.do_sample = gen.temperature > 0;
  }
  if (gen.top_p >= 0) go.sampling.top_p = gen.top_p;
  if (gen.top_k >= 0) go.sampling.top_k = gen.top_k;
  if (gen.repetition_penalty > 0) go.sampling.repetition_penalty = gen.repetition_penalty;
  go.sampling.seed = gen.seed;
  VLM_ASSIGN_OR_RETURN(runtime::GenerateResult r, runtime::generate(*model_, prompt, go, on_text));
  Answer a;
  a.text = std::move(r.text);
  a.tokens = std::move(r.tokens);
  a.stopped_by_eos = r.stopped_by_eos;
  a.prompt_tokens = r.prompt_tokens;
  a.prefill_ms = r.prefill_ms;
  a.decode_ms = r.decode_ms;
  return a;
}

Expected<Answer> Pipeline::ask(const std::string& image_path, const std::string& question,
                               const GenerationOptions& gen) const {
  Message m;
  m.text = question;
  m.images.push_back(image_path);
  return chat({m}, gen);
}

}  // namespace vlm
