// Chat templates: the Jinja2 subset that Hugging Face chat templates use,
// rendered with the environment transformers configures (trim_blocks,
// lstrip_blocks, loopcontrols, sandboxed/immutable, raise_exception,
// strftime_now, tojson with ensure_ascii=False, {% generation %}).
#pragma once
#include "core/status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace vlm::text {

namespace jinja {
struct Template;
}

// Bounds that keep a hostile or buggy template from hanging or exhausting the
// engine; exceeding one is a render Error, never a crash.
struct ChatTemplateLimits {
  size_t max_output_bytes = 16u << 20;       // rendered text
  size_t max_string_bytes = 16u << 20;       // any single intermediate string
  size_t max_list_items = 1u << 20;          // any single intermediate list
  uint64_t max_loop_iterations = 1'000'000;  // summed over all loops
  uint64_t max_steps = 10'000'000;           // evaluated nodes: bounds CPU time
  uint64_t max_work_bytes = 1ull << 30;      // bytes built or copied by string/list ops
  int max_call_depth = 64;                   // nested macro calls
};

class ChatTemplate {
 public:
  // Syntax errors (unknown tag, unclosed block, bad expression, unknown
  // filter/test, nesting too deep) are reported here as "line L, column C: ...".
  static Expected<ChatTemplate> parse(const std::string& source);

  // `context` supplies the template's variables (messages, add_generation_prompt,
  // bos_token, tools, ...). As transformers does, `tools` and `documents`
  // default to None and `add_generation_prompt` to False when absent.
  // nlohmann::json sorts object keys; pass an ordered_json to keep the
  // caller's key order (it shows in tojson and dict iteration).
  Expected<std::string> render(const nlohmann::json& context) const;
  Expected<std::string> render(const nlohmann::ordered_json& context) const;
  Expected<std::string> render(const nlohmann::ordered_json& context,
                               const ChatTemplateLimits& limits) const;

  const std::string& source() const;

 private:
  std::shared_ptr<const jinja::Template> tmpl_;
};

// Finds the checkpoint's template: chat_template.jinja, chat_template.json,
// then tokenizer_config.json ("chat_template" string, or the "default" entry of
// a list of {name, template}). Error if none.
Expected<std::string> load_chat_template_source(const std::string& model_dir);

}  // namespace vlm::text
