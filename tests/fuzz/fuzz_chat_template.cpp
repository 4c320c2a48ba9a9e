// libFuzzer target: arbitrary bytes parsed and rendered as a chat template
// (not built by default):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/fuzz_chat_template.cpp src/text/jinja*.cpp src/text/chat_template.cpp \
//     -lutf8proc -o fuzz_chat_template
//   ./fuzz_chat_template -max_total_time=60 -rss_limit_mb=2048 -max_len=4096 corpus/
// Seeds: testdata/templates/*.jinja and the "chat_template" strings of the
// *.json files. A dictionary of tag and keyword spellings ("{%-", "endfor",
// "namespace(", "|tojson", ...) helps it reach deep paths quickly.
// Checks, besides memory safety and termination: a failure always carries a
// message, and rendering is deterministic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "text/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this? 你好"}]},
      {"role": "assistant", "content": "A cat.", "tool_calls": [
        {"function": {"name": "f", "arguments": {"x": 1, "y": [1.5, null, true]}}}]},
      {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "And this?"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true,
    "bos_token": "<s>",
    "eos_token": "</s>"
  })");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string src(reinterpret_cast<const char*>(data), size);
  auto t = vlm::text::ChatTemplate::parse(src);
  if (!t.ok()) {
    if (t.error().message.empty()) std::abort();
    return 0;
  }
  // Small budgets keep each input fast; hitting them is part of the test.
  vlm::text::ChatTemplateLimits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_string_bytes = 1 << 20;
  limits.max_list_items = 1 << 14;
  limits.max_loop_iterations = 20000;
  limits.max_steps = 200000;
  limits.max_work_bytes = 64u << 20;
  auto a = t->render(context(), limits);
  if (!a.ok() && a.error().message.empty()) std::abort();
  // strftime_now may legitimately differ between two renders.
  if (src.find("strftime_now") == std::string::npos) {
    auto b = t->render(context(), limits);
    if (a.ok() != b.ok()) std::abort();
    if (a.ok() && *a != *b) std::abort();
  }
  return 0;
}
