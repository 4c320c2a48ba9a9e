// Chat templates of real checkpoints: the recorded fixture prompts must come
// out byte for byte, and well-known Hub templates must render as jinja2 would.
#include "text/chat_template.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace vlm::text {
namespace {

using ojson = nlohmann::ordered_json;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string data(const std::string& rel) { return std::string(VLM_TESTDATA) + "/" + rel; }

ChatTemplate load(const std::string& rel) {
  std::string src = read(data(rel));
  if (rel.size() > 5 && rel.substr(rel.size() - 5) == ".json")
    src = nlohmann::json::parse(src)["chat_template"].get<std::string>();
  auto t = ChatTemplate::parse(src);
  EXPECT_TRUE(t.ok()) << rel << ": " << (t.ok() ? "" : t.error().message);
  return t.ok() ? *t : ChatTemplate();
}

std::string render(const ChatTemplate& t, const ojson& ctx) {
  auto r = t.render(ctx);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : "<error>";
}

std::string render_error(const ChatTemplate& t, const ojson& ctx) {
  auto r = t.render(ctx);
  EXPECT_FALSE(r.ok()) << "unexpectedly rendered: " << (r.ok() ? *r : "");
  return r.ok() ? "" : r.error().message;
}

ojson user(const std::string& text) { return {{"role", "user"}, {"content", text}}; }
ojson assistant(const std::string& text) { return {{"role", "assistant"}, {"content", text}}; }
ojson system(const std::string& text) { return {{"role", "system"}, {"content", text}}; }
ojson text_part(const std::string& t) { return {{"type", "text"}, {"text", t}}; }
ojson image_part() { return {{"type", "image"}}; }

// ------------------------------------------------------ recorded fixtures ----

TEST(ChatTemplateFixtures, Qwen2VLCasesReproduceExactly) {
  auto src = load_chat_template_source(data("fixtures/qwen2_vl/model"));
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto t = ChatTemplate::parse(*src);
  ASSERT_TRUE(t.ok()) << t.error().message;
  int n = 0;
  for (const auto& dir : std::filesystem::directory_iterator(data("fixtures/qwen2_vl/cases"))) {
    auto c = ojson::parse(read(dir.path().string() + "/case.json"));
    ojson ctx = {{"messages", c["messages"]}, {"add_generation_prompt", true}};
    EXPECT_EQ(render(*t, ctx), c["prompt"].get<std::string>()) << dir.path();
    ++n;
  }
  EXPECT_GE(n, 7);
}

void check_cases(const std::string& tmpl, const std::string& cases) {
  ChatTemplate t = load(tmpl);
  auto all = ojson::parse(read(data(cases)));
  ASSERT_FALSE(all.empty());
  for (const auto& c : all) {
    ojson ctx = {{"messages", c["messages"]}, {"add_generation_prompt", true}};
    EXPECT_EQ(render(t, ctx), c["prompt"].get<std::string>()) << c["name"];
  }
}

TEST(ChatTemplateFixtures, Qwen25VLCasesReproduceExactly) {
  check_cases("templates/qwen2_5_vl.json", "templates/qwen2_5_vl_cases.json");
}

TEST(ChatTemplateFixtures, Qwen3VLCasesReproduceExactly) {
  check_cases("templates/qwen3_vl.json", "templates/qwen3_vl_cases.json");
}

TEST(ChatTemplateFixtures, QwenVisionIdsAndStringContent) {
  ChatTemplate t = load("templates/qwen2_5_vl.json");
  ojson msgs = ojson::array({{{"role", "user"},
                              {"content", {image_part(), image_part(), text_part("Diff?")}}},
                             assistant("One is red."),
                             {{"role", "user"}, {"content", {{{"type", "video"}}, text_part("And this?")}}}});
  EXPECT_EQ(render(t, {{"messages", msgs}, {"add_generation_prompt", true}, {"add_vision_id", true}}),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>"
            "Picture 2: <|vision_start|><|image_pad|><|vision_end|>Diff?<|im_end|>\n"
            "<|im_start|>assistant\nOne is red.<|im_end|>\n"
            "<|im_start|>user\nVideo 1: <|vision_start|><|video_pad|><|vision_end|>And this?<|im_end|>\n"
            "<|im_start|>assistant\n");
  // An explicit system turn replaces the default; no generation prompt.
  ojson msgs2 = ojson::array({system("Be terse."), user("Hi")});
  EXPECT_EQ(render(t, {{"messages", msgs2}}),
            "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  // `image_url` / `image` keys count as images too.
  ojson msgs3 = ojson::array({{{"role", "user"}, {"content", {{{"image_url", "x.png"}}, {{"image", "y"}}}}}});
  EXPECT_EQ(render(t, {{"messages", msgs3}}),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>"
            "<|im_end|>\n");
}

// The LLaVA fixture ships no template; its documented prompt is what the
// llava-hf template renders.
TEST(ChatTemplateModels, Llava15) {
  ChatTemplate t = load("templates/llava_1_5.jinja");
  ojson one = ojson::array({{{"role", "user"}, {"content", {image_part(), text_part("What is shown in this image?")}}}});
  EXPECT_EQ(render(t, {{"messages", one}, {"add_generation_prompt", true}}),
            "USER: <image>\nWhat is shown in this image? ASSISTANT:");
  ojson multi = ojson::array({{{"role", "user"}, {"content", {image_part(), text_part("Q1")}}},
                              {{"role", "assistant"}, {"content", {text_part("A1")}}},
                              {{"role", "user"}, {"content", {text_part("Q2")}}}});
  EXPECT_EQ(render(t, {{"messages", multi}, {"add_generation_prompt", true}}),
            "USER: <image>\nQ1 ASSISTANT: A1 USER: Q2 ASSISTANT:");
  // Images go first whatever their position; a system turn has no label.
  ojson sys = ojson::array({{{"role", "system"}, {"content", {text_part("Sys.")}}},
                            {{"role", "user"}, {"content", {text_part("Look"), image_part()}}}});
  EXPECT_EQ(render(t, {{"messages", sys}}), "Sys. USER: <image>\nLook ");
}

TEST(ChatTemplateModels, ChatML) {
  ChatTemplate t = load("templates/chatml.jinja");
  ojson msgs = ojson::array({system("You are helpful."), user("Hi")});
  EXPECT_EQ(render(t, {{"messages", msgs}, {"add_generation_prompt", true}}),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render(t, {{"messages", msgs}}),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplateModels, Llama3Instruct) {
  ChatTemplate t = load("templates/llama3_instruct.jinja");
  ojson msgs = ojson::array({system("  You are a bot.  "), user("Hello\n"), assistant("Hi!"), user("Bye")});
  // `'...' + message['content'] | trim + '...'`: the filter binds to the
  // content only; bos only on the first message (a set inside an if inside
  // the loop).
  EXPECT_EQ(render(t, {{"messages", msgs}, {"add_generation_prompt", true}, {"bos_token", "<|begin_of_text|>"}}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a bot.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

const char* const kLlamaSystemHead =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n";
const char* const kLlamaDates = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";

TEST(ChatTemplateModels, Llama31Plain) {
  ChatTemplate t = load("templates/llama3_1.jinja");
  ojson ctx = {{"messages", ojson::array({system("You are a pirate. "), user(" Hi")})},
               {"add_generation_prompt", true},
               {"bos_token", "<|begin_of_text|>"}};
  EXPECT_EQ(render(t, ctx), std::string(kLlamaSystemHead) + kLlamaDates +
                                "You are a pirate.<|eot_id|>"
                                "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                                "<|start_header_id|>assistant<|end_header_id|>\n\n");
  ctx["date_string"] = "01 Jan 2025";
  EXPECT_NE(render(t, ctx).find("Today Date: 01 Jan 2025\n\n"), std::string::npos);
}

TEST(ChatTemplateModels, Llama31ToolsInFirstUserMessage) {
  ChatTemplate t = load("templates/llama3_1.jinja");
  ojson tool = ojson::parse(R"({"type": "function", "function": {"name": "get_weather",
      "description": "Get the weather", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}}, "required": ["city"]}}})");
  ojson ctx = {{"messages", ojson::array({user("What's the weather in Paris?")})},
               {"tools", ojson::array({tool})},
               {"add_generation_prompt", true},
               {"bos_token", "<|begin_of_text|>"}};
  const char* tool_json =
      "{\n"
      "    \"type\": \"function\",\n"
      "    \"function\": {\n"
      "        \"name\": \"get_weather\",\n"
      "        \"description\": \"Get the weather\",\n"
      "        \"parameters\": {\n"
      "            \"type\": \"object\",\n"
      "            \"properties\": {\n"
      "                \"city\": {\n"
      "                    \"type\": \"string\"\n"
      "                }\n"
      "            },\n"
      "            \"required\": [\n"
      "                \"city\"\n"
      "            ]\n"
      "        }\n"
      "    }\n"
      "}";
  EXPECT_EQ(render(t, ctx),
            std::string(kLlamaSystemHead) + "Environment: ipython\n" + kLlamaDates + "<|eot_id|>" +
                "<|start_header_id|>user<|end_header_id|>\n\n"
                "Given the following functions, please respond with a JSON for a function call "
                "with its proper arguments that best answers the given prompt.\n\n"
                "Respond in the format {\"name\": function name, \"parameters\": dictionary of "
                "argument name and its value}.Do not use variables.\n\n" +
                tool_json + "\n\nWhat's the weather in Paris?<|eot_id|>" +
                "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Tools in the system message instead.
  ctx["tools_in_user_message"] = false;
  std::string out = render(t, ctx);
  EXPECT_EQ(out.find(std::string(kLlamaDates) + "You have access to the following functions."),
            std::string(kLlamaSystemHead).size() + std::string("Environment: ipython\n").size());
  EXPECT_NE(out.find(std::string(tool_json) + "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                                              "What's the weather in Paris?<|eot_id|>"),
            std::string::npos);
}

TEST(ChatTemplateModels, Llama31ToolCallsAndResults) {
  ChatTemplate t = load("templates/llama3_1.jinja");
  ojson call = {{"role", "assistant"},
                {"tool_calls", ojson::array({{{"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}}})}};
  // A string tool result goes through tojson: strings are iterable in jinja2.
  ojson result = {{"role", "tool"}, {"content", "sunny, 22C"}};
  ojson ctx = {{"messages", ojson::array({user("Weather in Paris?"), call, result})},
               {"add_generation_prompt", true},
               {"bos_token", "<|begin_of_text|>"}};
  EXPECT_EQ(render(t, ctx), std::string(kLlamaSystemHead) + kLlamaDates + "<|eot_id|>" +
                                "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
                                "<|start_header_id|>assistant<|end_header_id|>\n\n"
                                "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"
                                "<|start_header_id|>ipython<|end_header_id|>\n\n\"sunny, 22C\"<|eot_id|>"
                                "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Builtin tools: reject|join in the header, `for k, v in x|items` in the call.
  ojson bcall = {{"role", "assistant"},
                 {"tool_calls", ojson::array({{{"function", {{"name", "brave_search"},
                                                             {"arguments", {{"query", "x"}, {"n", "2"}}}}}}})}};
  ojson ctx2 = {{"messages", ojson::array({user("Search x"), bcall})},
                {"builtin_tools", {"brave_search", "code_interpreter"}},
                {"bos_token", "<|begin_of_text|>"}};
  EXPECT_EQ(render(t, ctx2), std::string(kLlamaSystemHead) + "Environment: ipython\nTools: brave_search\n\n" +
                                 kLlamaDates + "<|eot_id|>" +
                                 "<|start_header_id|>user<|end_header_id|>\n\nSearch x<|eot_id|>"
                                 "<|start_header_id|>assistant<|end_header_id|>\n\n"
                                 "<|python_tag|>brave_search.call(query=\"x\", n=\"2\")<|eom_id|>");
  // Two calls at once are refused by the template.
  ojson two = call;
  two["tool_calls"].push_back(two["tool_calls"][0]);
  std::string err = render_error(t, {{"messages", ojson::array({user("x"), two})}});
  EXPECT_NE(err.find("This model only supports single tool-calls at once!"), std::string::npos) << err;
}

TEST(ChatTemplateModels, MistralInstructAndRoleAlternation) {
  ChatTemplate t = load("templates/mistral_instruct.jinja");
  ojson ok = {{"messages", ojson::array({user("Hi"), assistant("Hello!"), user("How are you?")})},
              {"bos_token", "<s>"},
              {"eos_token", "</s>"}};
  EXPECT_EQ(render(t, ok), "<s>[INST] Hi [/INST]Hello!</s>[INST] How are you? [/INST]");
  std::string err = render_error(t, {{"messages", ojson::array({user("a"), user("b")})}, {"bos_token", "<s>"}});
  EXPECT_NE(err.find("Conversation roles must alternate user/assistant/user/assistant/..."), std::string::npos) << err;
  EXPECT_NE(err.find("raised"), std::string::npos) << err;
  err = render_error(t, {{"messages", ojson::array({system("s"), user("b")})}});
  EXPECT_NE(err.find("Conversation roles must alternate"), std::string::npos) << err;
  err = render_error(t, {{"messages", ojson::array({user("a"), system("s")})}});
  EXPECT_NE(err.find("Only user and assistant roles are supported!"), std::string::npos) << err;
}

TEST(ChatTemplateModels, Gemma) {
  ChatTemplate t = load("templates/gemma.jinja");
  ojson ctx = {{"messages", ojson::array({user(" Hi "), assistant("Hello"), user("Q?")})},
               {"bos_token", "<bos>"},
               {"add_generation_prompt", true}};
  EXPECT_EQ(render(t, ctx),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
            "<start_of_turn>user\nQ?<end_of_turn>\n<start_of_turn>model\n");
  std::string err = render_error(t, {{"messages", ojson::array({system("x"), user("y")})}});
  EXPECT_NE(err.find("System role not supported"), std::string::npos) << err;
}

TEST(ChatTemplateModels, Gemma3MultiLineWithWhitespaceControl) {
  ChatTemplate t = load("templates/gemma3.jinja");
  ojson msgs = ojson::array({{{"role", "system"}, {"content", {text_part("Be brief.")}}},
                             {{"role", "user"}, {"content", {image_part(), text_part(" What is this? ")}}},
                             assistant("A cat. "),
                             user("Sure?")});
  EXPECT_EQ(render(t, {{"messages", msgs}, {"bos_token", "<bos>"}, {"add_generation_prompt", true}}),
            "<bos><start_of_turn>user\nBe brief.\n\n<start_of_image>What is this?<end_of_turn>\n"
            "<start_of_turn>model\nA cat.<end_of_turn>\n"
            "<start_of_turn>user\nSure?<end_of_turn>\n<start_of_turn>model\n");
  ojson plain = ojson::array({user("Hi")});
  EXPECT_EQ(render(t, {{"messages", plain}, {"bos_token", "<bos>"}}),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n");
  std::string err = render_error(t, {{"messages", ojson::array({{{"role", "user"}, {"content", 5}}})}});
  EXPECT_NE(err.find("Invalid content type"), std::string::npos) << err;
}

// nlohmann::json sorts keys, so tojson and dict iteration show them sorted;
// ordered_json keeps the caller's order like a Python dict.
TEST(ChatTemplateModels, KeyOrderFollowsTheJsonFlavour) {
  auto t = ChatTemplate::parse("{{ d | tojson }}|{% for k in d %}{{ k }}{% endfor %}");
  ASSERT_TRUE(t.ok());
  ojson ordered = {{"d", {{"b", 1}, {"a", 2}}}};
  EXPECT_EQ(*t->render(ordered), "{\"b\": 1, \"a\": 2}|ba");
  nlohmann::json sorted = {{"d", {{"b", 1}, {"a", 2}}}};
  EXPECT_EQ(*t->render(sorted), "{\"a\": 2, \"b\": 1}|ab");
}

// ----------------------------------------------------------------- loader ----

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("vlm_ct_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(ChatTemplateLoader, FindsTheFixtureTemplate) {
  auto src = load_chat_template_source(data("fixtures/qwen2_vl/model"));
  ASSERT_TRUE(src.ok()) << src.error().message;
  EXPECT_EQ(src->rfind("{% set image_count = namespace(value=0) %}", 0), 0u);
}

TEST(ChatTemplateLoader, PrefersJinjaThenJsonThenTokenizerConfig) {
  TempDir d;
  d.write("tokenizer_config.json", R"({"chat_template": "from tokenizer_config"})");
  EXPECT_EQ(*load_chat_template_source(d.str()), "from tokenizer_config");
  d.write("chat_template.json", R"({"chat_template": "from chat_template.json"})");
  EXPECT_EQ(*load_chat_template_source(d.str()), "from chat_template.json");
  d.write("chat_template.jinja", "from jinja\n");
  EXPECT_EQ(*load_chat_template_source(d.str() + "/"), "from jinja\n");
}

TEST(ChatTemplateLoader, NamedTemplateListUsesDefault) {
  TempDir d;
  d.write("tokenizer_config.json",
          R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  EXPECT_EQ(*load_chat_template_source(d.str()), "D");
  d.write("tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "R"}]})");
  auto r = load_chat_template_source(d.str());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("default"), std::string::npos);
}

TEST(ChatTemplateLoader, ErrorsWhenMissingOrBroken) {
  TempDir d;
  auto r = load_chat_template_source(d.str());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no chat template"), std::string::npos);
  d.write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_FALSE(load_chat_template_source(d.str()).ok());
  d.write("chat_template.json", "{not json");
  r = load_chat_template_source(d.str());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("invalid JSON"), std::string::npos);
}

}  // namespace
}  // namespace vlm::text
