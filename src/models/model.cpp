// Loading and prompt helpers shared by every family.
#include <algorithm>
#include <filesystem>

#include "core/mmap.h"
#include "models/model.h"

namespace vlm::models {

Expected<nlohmann::json> read_json_file(const std::string& path) {
  VLM_ASSIGN_OR_RETURN(std::string text, read_file(path, size_t(64) << 20));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(path, ": invalid JSON");
  return j;
}

Expected<GenerationDefaults> load_generation_defaults(const std::string& dir, const nlohmann::json& config) {
  namespace fs = std::filesystem;
  GenerationDefaults g;
  nlohmann::json gc = nlohmann::json::object();
  const fs::path p = fs::path(dir) / "generation_config.json";
  std::error_code ec;
  if (fs::exists(p, ec)) {
    VLM_ASSIGN_OR_RETURN(gc, read_json_file(p.string()));
  }
  auto eos_from = [&](const nlohmann::json& j) {
    if (!j.contains("eos_token_id")) return;
    const auto& e = j["eos_token_id"];
    if (e.is_number_integer()) g.eos_ids.push_back(e.get<int32_t>());
    if (e.is_array())
      for (const auto& x : e)
        if (x.is_number_integer()) g.eos_ids.push_back(x.get<int32_t>());
  };
  eos_from(gc);
  if (g.eos_ids.empty()) eos_from(config);
  if (gc.contains("do_sample") && gc["do_sample"].is_boolean()) g.do_sample = gc["do_sample"].get<bool>();
  if (gc.contains("temperature") && gc["temperature"].is_number()) g.temperature = gc["temperature"].get<float>();
  if (gc.contains("top_p") && gc["top_p"].is_number()) g.top_p = gc["top_p"].get<float>();
  if (gc.contains("top_k") && gc["top_k"].is_number_integer()) g.top_k = gc["top_k"].get<int>();
  if (gc.contains("repetition_penalty") && gc["repetition_penalty"].is_number())
    g.repetition_penalty = gc["repetition_penalty"].get<float>();
  return g;
}

Status Model::load_common(const std::string& dir, const nlohmann::json& config, const LoadOptions& opt,
                          const char* fallback_template) {
  if (opt.progress) opt.progress(0.0, "tokenizer");
  VLM_ASSIGN_OR_RETURN(tokenizer_, text::Tokenizer::load(dir));
  auto found = text::load_chat_template_source(dir);
  if (!found.ok() && !fallback_template) return found.error();
  const std::string src = found.ok() ? found.value() : std::string(fallback_template);
  VLM_ASSIGN_OR_RETURN(text::ChatTemplate t, text::ChatTemplate::parse(src));
  template_ = std::make_unique<text::ChatTemplate>(std::move(t));
  VLM_ASSIGN_OR_RETURN(gen_, load_generation_defaults(dir, config));
  if (opt.progress) opt.progress(0.1, "weights");
  VLM_ASSIGN_OR_RETURN(weights_, WeightStore::open_dir(dir));
  weights_.linear_format = opt.weights;
  vision_format_ = opt.vision_weights.empty() ? opt.weights : opt.vision_weights;
  // The quantised formats make their own packed copies of the linear weights; the others
  // compute from the checkpoint's tensors, which then should sit in huge pages.
  if (!opt.mmap && (opt.weights == "native" || opt.weights == "bf16")) {
    std::function<void(double)> report;
    if (opt.progress) report = [&](double f) { opt.progress(0.1 + 0.9 * f, "weights"); };
    VLM_TRY_STATUS(weights_.copy_into_memory(report));
  } else if (opt.progress) {
    // Read the mapped weights in now, so a cold multi-GB checkpoint shows its progress here
    // instead of stalling the first request; one byte per page is enough to fault it in.
    const double total = double(std::max<size_t>(weights_.total_bytes(), 1));
    double done = 0, shown = -1;
    volatile uint8_t sink = 0;
    for (const std::string& name : weights_.names()) {
      const TensorView* t = weights_.find(name);
      const uint8_t* p = static_cast<const uint8_t*>(t->data);
      const size_t n = t->nbytes();
      for (size_t off = 0; off < n; off += 4096) sink = sink + p[off];
      done += double(n);
      if (done / total - shown >= 0.01) {
        shown = done / total;
        opt.progress(0.1 + 0.9 * shown, "weights");
      }
    }
  }
  if (opt.progress) opt.progress(1.0, "weights");
  return Status::Ok();
}

Expected<Media> load_image_media(const std::string& path) {
  VLM_ASSIGN_OR_RETURN(Image img, load_image(path));
  Media m;
  m.frames.push_back(std::move(img));
  return m;
}

Expected<Media> load_video_media(const std::string& path, double fps, int max_frames, const VideoProgress& progress) {
  VideoSampling vs;
  vs.fps = fps;
  vs.max_frames = max_frames;
  std::error_code ec;
  VLM_ASSIGN_OR_RETURN(VideoClip clip, std::filesystem::is_directory(path, ec) ? load_frame_folder(path, fps, vs)
                                                                                 : load_video(path, vs, progress));
  Media m;
  m.kind = Media::Kind::Video;
  m.frames = std::move(clip.frames);
  m.fps = clip.sample_fps;
  return m;
}

Expected<std::string> Model::render_template(const nlohmann::json& messages, bool add_generation_prompt) const {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = nlohmann::ordered_json::parse(messages.dump());
  ctx["add_generation_prompt"] = add_generation_prompt;
  if (tokenizer_->bos_id() >= 0) ctx["bos_token"] = tokenizer_->id_to_token(tokenizer_->bos_id());
  if (tokenizer_->eos_id() >= 0) ctx["eos_token"] = tokenizer_->id_to_token(tokenizer_->eos_id());
  return template_->render(ctx);
}

Expected<Prompt> Model::prepare(const nlohmann::json& messages, const std::vector<Media>& media,
                                const PrepareOptions& opt) const {
  VLM_ASSIGN_OR_RETURN(std::string text, render_template(messages, opt.add_generation_prompt));
  return prepare_text(text, media, opt);
}

}  // namespace vlm::models
