// The library face (src/vlm.h): messages and files in, an answer out, on top of the runtime.
#include "core/threads.h"
#include "models/model.h"
#include "runtime/engine.h"
#include "vlm.h"

namespace vlm {

Pipeline::Pipeline(std::unique_ptr<models::Model> m) : model_(std::move(m)) {}
Pipeline::~Pipeline() = default;

Expected<std::unique_ptr<Pipeline>> Pipeline::load(const std::string& model_dir, const LoadOptions& opt) {
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
      VLM_ASSIGN_OR_RETURN(models::Media md, models::load_image_media(path));
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
      VLM_ASSIGN_OR_RETURN(models::Media md, models::load_video_media(path, m.video_fps, m.max_video_frames));
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
  runtime::SamplingOverrides so;  // negative fields: the checkpoint's defaults
  if (gen.temperature >= 0) so.temperature = gen.temperature;
  if (gen.top_p >= 0) so.top_p = gen.top_p;
  if (gen.top_k >= 0) so.top_k = gen.top_k;
  if (gen.repetition_penalty > 0) so.repetition_penalty = gen.repetition_penalty;
  so.seed = gen.seed;
  go.sampling = runtime::sampling_for(*model_, so);
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
