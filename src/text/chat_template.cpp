// Public face of the chat-template interpreter: parsing, rendering with the
// transformers defaults, and finding a checkpoint's template.
#include "text/chat_template.h"

#include <fstream>
#include <new>
#include <sstream>

#include "text/jinja_eval.h"

namespace vlm::text {

using jinja::Json;
using jinja::JinjaError;

namespace {

Error to_error(const jinja::Template& t, const JinjaError& e) {
  std::string where = jinja::describe_pos(t.normalized, e.pos);
  if (e.raised) return make_error("chat template raised an exception at ", where, ": ", e.message);
  return make_error("chat template error at ", where, ": ", e.message);
}

// nlohmann::json -> ordered_json without unbounded recursion.
Json convert(const nlohmann::json& j, int depth) {
  if (depth > jinja::kMaxValueDepth) jinja::fail("context nested too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      Json o = Json::object();
      for (const auto& [k, v] : j.items()) o[k] = convert(v, depth + 1);
      return o;
    }
    case nlohmann::json::value_t::array: {
      Json a = Json::array();
      for (const auto& v : j) a.push_back(convert(v, depth + 1));
      return a;
    }
    case nlohmann::json::value_t::string: return j.get<std::string>();
    case nlohmann::json::value_t::boolean: return j.get<bool>();
    case nlohmann::json::value_t::number_integer: return j.get<int64_t>();
    case nlohmann::json::value_t::number_unsigned: return j.get<uint64_t>();
    case nlohmann::json::value_t::number_float: return j.get<double>();
    default: return nullptr;
  }
}

// What transformers' apply_chat_template passes even when the caller does not.
const Json& fallbacks() {
  static const Json f = {{"tools", nullptr}, {"documents", nullptr}, {"add_generation_prompt", false}};
  return f;
}

Expected<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot open ", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error("cannot read ", path);
  return ss.str();
}

bool file_exists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return static_cast<bool>(in);
}

// A "chat_template" value: a string, or a list of {name, template} of which
// transformers uses "default".
Expected<std::string> pick_template(const nlohmann::json& v, const std::string& path) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string names;
    for (const auto& e : v) {
      if (!e.is_object() || !e.contains("name") || !e.contains("template")) continue;
      if (e["name"] == "default" && e["template"].is_string()) return e["template"].get<std::string>();
      if (e["name"].is_string()) names += (names.empty() ? "" : ", ") + e["name"].get<std::string>();
    }
    return make_error(path, ": chat_template list has no \"default\" entry (has: ", names, ")");
  }
  return make_error(path, ": chat_template is neither a string nor a list");
}

}  // namespace

Expected<ChatTemplate> ChatTemplate::parse(const std::string& source) {
  auto t = std::make_shared<jinja::Template>();
  t->source = source;
  try {
    jinja::parse_template(*t);
  } catch (const JinjaError& e) {
    return to_error(*t, e);
  } catch (const std::bad_alloc&) {
    return make_error("chat template error: out of memory while parsing");
  } catch (const std::exception& e) {
    return make_error("chat template error: ", e.what());
  }
  ChatTemplate ct;
  ct.tmpl_ = std::move(t);
  return ct;
}

const std::string& ChatTemplate::source() const {
  static const std::string empty;
  return tmpl_ ? tmpl_->source : empty;
}

Expected<std::string> ChatTemplate::render(const nlohmann::json& context) const {
  Json converted;
  try {
    converted = convert(context, 0);
  } catch (const JinjaError& e) {
    return make_error("chat template context: ", e.message);
  }
  return render(converted, ChatTemplateLimits{});
}

Expected<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render(context, ChatTemplateLimits{});
}

Expected<std::string> ChatTemplate::render(const nlohmann::ordered_json& context,
                                           const ChatTemplateLimits& limits) const {
  if (!tmpl_) return make_error("chat template: not parsed");
  if (!context.is_object()) return make_error("chat template context must be a JSON object");
  try {
    jinja::check_json_depth(context, jinja::kMaxValueDepth);
  } catch (const JinjaError& e) {
    return make_error("chat template context: ", e.message);
  }
  // The caller's context outlives the render, so values alias it uncopied.
  std::shared_ptr<const Json> globals(std::shared_ptr<const Json>(), &context);
  try {
    jinja::Interp interp(*tmpl_, globals, fallbacks(), limits);
    return interp.render();
  } catch (const JinjaError& e) {
    return to_error(*tmpl_, e);
  } catch (const std::bad_alloc&) {
    return make_error("chat template error: out of memory while rendering");
  } catch (const std::exception& e) {
    return make_error("chat template error: ", e.what());
  }
}

Expected<std::string> load_chat_template_source(const std::string& model_dir) {
  std::string dir = model_dir.empty() || model_dir.back() == '/' ? model_dir : model_dir + "/";
  if (std::string p = dir + "chat_template.jinja"; file_exists(p)) return read_file(p);
  for (const char* name : {"chat_template.json", "tokenizer_config.json"}) {
    std::string p = dir + name;
    if (!file_exists(p)) continue;
    VLM_ASSIGN_OR_RETURN(std::string text, read_file(p));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error(p, ": invalid JSON");
    if (!j.is_object() || !j.contains("chat_template") || j["chat_template"].is_null()) continue;
    return pick_template(j["chat_template"], p);
  }
  return make_error("no chat template found in ", model_dir,
                    " (looked for chat_template.jinja, chat_template.json, tokenizer_config.json)");
}

}  // namespace vlm::text
