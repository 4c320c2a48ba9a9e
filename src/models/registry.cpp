// model_type -> family loader. Adding a family = its file + one line here.
#include <filesystem>

#include "core/mmap.h"
#include "models/model.h"
#include "ops/ops.h"

namespace vlm::models {

Expected<std::unique_ptr<Model>> load_qwen2_vl(const std::string&, const nlohmann::json&, const LoadOptions&);
Expected<std::unique_ptr<Model>> load_llava(const std::string&, const nlohmann::json&, const LoadOptions&);
Expected<std::unique_ptr<Model>> load_qwen3_vl(const std::string&, const nlohmann::json&, const LoadOptions&);

namespace {
struct Family {
  const char* model_type;
  Expected<std::unique_ptr<Model>> (*load)(const std::string&, const nlohmann::json&, const LoadOptions&);
};
const Family kFamilies[] = {
    {"qwen2_vl", load_qwen2_vl},
    {"qwen2_5_vl", load_qwen2_vl},
    {"qwen3_vl", load_qwen3_vl},
    {"llava", load_llava},
};
}  // namespace

Expected<std::unique_ptr<Model>> load_model(const std::string& dir, const LoadOptions& opt) {
  namespace fs = std::filesystem;
  ops::LinearFormat f;
  if (!ops::parse_linear_format(opt.weights, &f))
    return make_error("weights must be native, bf16, q8 or q4 (got '", opt.weights, "')");
  if (!opt.vision_weights.empty() && !ops::parse_linear_format(opt.vision_weights, &f))
    return make_error("vision_weights must be native, bf16, q8 or q4 (got '", opt.vision_weights, "')");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error(dir, ": not a model folder");
  VLM_ASSIGN_OR_RETURN(nlohmann::json cfg, read_json_file((fs::path(dir) / "config.json").string()));
  if (!cfg.is_object() || !cfg.contains("model_type") || !cfg["model_type"].is_string())
    return make_error(dir, "/config.json: no model_type");
  const std::string type = cfg["model_type"].get<std::string>();
  std::string known;
  for (const Family& f : kFamilies) {
    if (type == f.model_type) return f.load(dir, cfg, opt);
    known += std::string(known.empty() ? "" : ", ") + f.model_type;
  }
  return make_error("unknown model type '", type, "' in ", dir, "/config.json (supported: ", known, ")");
}

}  // namespace vlm::models
