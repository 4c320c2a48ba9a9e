// model_type -> family loader. Adding a family = its file + one line here.
#include <filesystem>

#include "core/mmap.h"
#include "models/model.h"

namespace vlm::models {

Expected<std::unique_ptr<Model>> load_qwen2_vl(const std::string&, const nlohmann::json&, LoadProgress);

namespace {
struct Family {
  const char* model_type;
  Expected<std::unique_ptr<Model>> (*load)(const std::string&, const nlohmann::json&, LoadProgress);
};
const Family kFamilies[] = {
    {"qwen2_vl", load_qwen2_vl},
    {"qwen2_5_vl", load_qwen2_vl},
};
}  // namespace

Expected<nlohmann::json> read_json_file(const std::string& path) {
  VLM_ASSIGN_OR_RETURN(std::string text, read_file(path, size_t(64) << 20));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(path, ": invalid JSON");
  return j;
}

Expected<std::unique_ptr<Model>> load_model(const std::string& dir, LoadProgress progress) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error(dir, ": not a model folder");
  VLM_ASSIGN_OR_RETURN(nlohmann::json cfg, read_json_file((fs::path(dir) / "config.json").string()));
  if (!cfg.is_object() || !cfg.contains("model_type") || !cfg["model_type"].is_string())
    return make_error(dir, "/config.json: no model_type");
  const std::string type = cfg["model_type"].get<std::string>();
  std::string known;
  for (const Family& f : kFamilies) {
    if (type == f.model_type) return f.load(dir, cfg, progress);
    known += std::string(known.empty() ? "" : ", ") + f.model_type;
  }
  return make_error("unknown model type '", type, "' in ", dir, "/config.json (supported: ", known, ")");
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

Status Model::load_common(const std::string& dir, const nlohmann::json& config, LoadProgress progress) {
  if (progress) progress(0.0, "tokenizer");
  VLM_ASSIGN_OR_RETURN(tokenizer_, text::Tokenizer::load(dir));
  VLM_ASSIGN_OR_RETURN(std::string src, text::load_chat_template_source(dir));
  VLM_ASSIGN_OR_RETURN(text::ChatTemplate t, text::ChatTemplate::parse(src));
  template_ = std::make_unique<text::ChatTemplate>(std::move(t));
  VLM_ASSIGN_OR_RETURN(gen_, load_generation_defaults(dir, config));
  if (progress) progress(0.1, "weights");
  VLM_ASSIGN_OR_RETURN(weights_, WeightStore::open_dir(dir));
  if (progress) progress(1.0, "weights");
  return Status::Ok();
}

}  // namespace vlm::models
