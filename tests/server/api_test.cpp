// The request parser/validator of the chat API, without sockets: every class of bad input maps
// to a 4xx OpenAI-style error naming the problem, and good requests convert to the HF message
// shape with images decoded in order.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "frontends/server/api.h"
#include "test_util.h"

namespace vlm::server {
namespace {

using json = nlohmann::json;

const std::string kImage = VLM_TESTDATA "/fixtures/qwen2_vl/cases/single_image/a_84x56.png";

json user_text(const std::string& text) { return {{"role", "user"}, {"content", text}}; }

json body_with(const json& extra) {
  json b = {{"model", "m"}, {"messages", json::array({user_text("hi")})}};
  for (auto it = extra.begin(); it != extra.end(); ++it) b[it.key()] = it.value();
  return b;
}

json image_message(const std::string& url) {
  return {{"role", "user"},
          {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", url}}}}, {{"type", "text"}, {"text", "what?"}}})}};
}

ApiError expect_error(const std::string& body, const std::string& code, const ApiLimits& limits = {}, int status = 400) {
  auto r = parse_chat_request(body, limits);
  const ApiError* e = std::get_if<ApiError>(&r);
  EXPECT_NE(e, nullptr) << "accepted: " << body.substr(0, 200);
  if (!e) return {};
  EXPECT_EQ(e->code, code) << e->message << "\nbody: " << body.substr(0, 200);
  EXPECT_EQ(e->status, status) << e->message;
  EXPECT_FALSE(e->message.empty());
  return *e;
}

ChatRequest expect_ok(const std::string& body, const ApiLimits& limits = {}) {
  auto r = parse_chat_request(body, limits);
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << "refused: " << e->message << "\nbody: " << body.substr(0, 200);
    return {};
  }
  return std::move(std::get<ChatRequest>(r));
}

TEST(Base64, DecodesStandardAndRefusesMalformed) {
  auto s = [](const char* in) {
    auto b = decode_base64(in);
    return b ? std::string(b->begin(), b->end()) : std::string("<null>");
  };
  EXPECT_EQ(s(""), "");
  EXPECT_EQ(s("Zg=="), "f");
  EXPECT_EQ(s("Zm8="), "fo");
  EXPECT_EQ(s("Zm9v"), "foo");
  EXPECT_EQ(s("Zm9vYmFy"), "foobar");
  EXPECT_EQ(s("Zg"), "f");  // unpadded
  EXPECT_EQ(s("Z"), "<null>");
  EXPECT_EQ(s("Zg="), "<null>");
  EXPECT_EQ(s("Zm9v!"), "<null>");
  EXPECT_EQ(s("Zm 9v"), "<null>");
  EXPECT_EQ(s("Zg==Zg=="), "<null>");
  EXPECT_EQ(base64_encode("hello world"), "aGVsbG8gd29ybGQ=");
  EXPECT_EQ(s(base64_encode("hello world").c_str()), "hello world");
}

TEST(ParseRequest, MalformedJsonAndWrongShapes) {
  expect_error("", "invalid_json");
  expect_error("{", "invalid_json");
  expect_error("{\"messages\": [}", "invalid_json");
  expect_error("\xff\xfe", "invalid_json");
  expect_error("[]", "invalid_type");
  expect_error("\"hello\"", "invalid_type");
  expect_error("{}", "missing_field");
  expect_error(R"({"messages": 3})", "invalid_type");
  expect_error(R"({"messages": []})", "invalid_value");
  expect_error(R"({"messages": [3]})", "invalid_type");
  expect_error(R"({"messages": [{"content": "x"}]})", "missing_field");
  expect_error(R"({"messages": [{"role": 7, "content": "x"}]})", "invalid_type");
  expect_error(R"({"messages": [{"role": "wizard", "content": "x"}]})", "invalid_role");
  expect_error(R"({"messages": [{"role": "tool", "content": "x"}]})", "unsupported_role");
  expect_error(R"({"messages": [{"role": "user"}]})", "missing_field");
  expect_error(R"({"messages": [{"role": "user", "content": 5}]})", "invalid_type");
  expect_error(R"({"messages": [{"role": "user", "content": [5]}]})", "invalid_type");
  expect_error(R"({"messages": [{"role": "user", "content": [{"text": "x"}]}]})", "missing_field");
  expect_error(R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})", "missing_field");
  expect_error(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]})", "invalid_type");
  expect_error(R"({"messages": [{"role": "user", "content": [{"type": "audio"}]}]})", "unsupported_content_type");
  expect_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "missing_field");
  expect_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}]})", "invalid_type");
  expect_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 3}}]}]})",
               "invalid_type");
  expect_error(body_with({{"model", 5}}).dump(), "invalid_type");
  // Nesting deep enough to hurt a recursive parser is refused before parsing.
  expect_error(std::string(100000, '[') + std::string(100000, ']'), "invalid_json");
  const ApiError e = expect_error(R"({"messages": [{"role": "user", "content": [{"type": "audio"}]}]})",
                                  "unsupported_content_type");
  EXPECT_EQ(e.param, "messages[0].content[0].type");
  const json err = error_body(e);
  EXPECT_TRUE(err["error"]["message"].is_string());
  EXPECT_EQ(err["error"]["type"], "invalid_request_error");
  EXPECT_EQ(err["error"]["code"], "unsupported_content_type");
}

TEST(ParseRequest, ParameterRanges) {
  expect_error(body_with({{"max_tokens", 0}}).dump(), "invalid_value");
  expect_error(body_with({{"max_tokens", -3}}).dump(), "invalid_value");
  expect_error(body_with({{"max_tokens", 100000}}).dump(), "invalid_value");
  expect_error(body_with({{"max_tokens", "12"}}).dump(), "invalid_type");
  expect_error(body_with({{"max_tokens", 1.5}}).dump(), "invalid_type");
  expect_error(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":18446744073709551615})", "invalid_value");
  expect_error(body_with({{"max_completion_tokens", 0}}).dump(), "invalid_value");
  expect_error(body_with({{"temperature", -0.1}}).dump(), "invalid_value");
  expect_error(body_with({{"temperature", 2.5}}).dump(), "invalid_value");
  expect_error(body_with({{"temperature", "hot"}}).dump(), "invalid_type");
  expect_error(body_with({{"top_p", 0}}).dump(), "invalid_value");
  expect_error(body_with({{"top_p", 1.5}}).dump(), "invalid_value");
  expect_error(body_with({{"top_k", -1}}).dump(), "invalid_value");
  expect_error(body_with({{"seed", 1.5}}).dump(), "invalid_type");
  expect_error(body_with({{"n", 2}}).dump(), "invalid_value");
  expect_error(body_with({{"stream", "yes"}}).dump(), "invalid_type");
  expect_error(body_with({{"stop", 5}}).dump(), "invalid_type");
  expect_error(body_with({{"stop", json::array({1})}}).dump(), "invalid_type");
  expect_error(body_with({{"stop", ""}}).dump(), "invalid_value");
  expect_error(body_with({{"stop", json::array({"a", "b", "c", "d", "e", "f", "g", "h", "i"})}}).dump(), "invalid_value");
  expect_error(body_with({{"stop", std::string(1000, 'x')}}).dump(), "invalid_value");

  ChatRequest r = expect_ok(body_with({{"max_tokens", 12}, {"temperature", 0}, {"top_p", 0.9}, {"top_k", 5}, {"seed", -1},
                                       {"stop", "END"}, {"stream", true}, {"stream_options", {{"include_usage", true}}},
                                       {"frequency_penalty", 0}, {"user", "someone"}})
                                .dump());
  EXPECT_EQ(r.max_tokens, 12);
  EXPECT_EQ(r.temperature.value_or(-1), 0.0f);
  EXPECT_FLOAT_EQ(r.top_p.value_or(-1), 0.9f);
  EXPECT_EQ(r.top_k.value_or(-1), 5);
  EXPECT_EQ(r.seed.value_or(0), ~uint64_t(0));
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(expect_ok(body_with({{"max_completion_tokens", 7}}).dump()).max_tokens, 7);
  EXPECT_EQ(expect_ok(body_with({{"max_tokens", 3}, {"max_completion_tokens", 7}}).dump()).max_tokens, 7);
  EXPECT_EQ(expect_ok(body_with({}).dump()).max_tokens, ApiLimits{}.default_max_tokens);
  EXPECT_EQ(expect_ok(body_with({{"stop", json::array({"a", "b"})}}).dump()).stop.size(), 2u);
}

TEST(ParseRequest, BodyLimit) {
  ApiLimits small;
  small.max_body_bytes = 100;
  expect_error(body_with({{"user", std::string(200, 'x')}}).dump(), "body_too_large", small, 413);
}

TEST(ParseRequest, TextLimit) {
  ApiLimits small;
  small.max_text_bytes = 10;
  EXPECT_EQ(expect_ok(body_with({{"messages", json::array({user_text("0123456789")})}}).dump(), small).messages.size(), 1u);
  const ApiError e = expect_error(
      body_with({{"messages", json::array({user_text("01234"), {{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "567890"}}})}}})}})
          .dump(),
      "text_too_long", small);
  EXPECT_EQ(e.param, "messages[1].content[0].text");
}

TEST(ConvertMessages, OpenAiToHfShape) {
  const std::string url = "data:image/png;base64," + base64_encode(read_file(kImage));
  json msgs = json::array({{{"role", "developer"}, {"content", "Be brief."}},
                           image_message(url),
                           {{"role", "assistant"}, {"content", json::array({{{"type", "text"}, {"text", "A "}}, {{"type", "text"}, {"text", "cat."}}})}},
                           {{"role", "assistant"}, {"content", nullptr}},
                           {{"role", "user"},
                            {"content", json::array({{{"type", "text"}, {"text", "and "}},
                                                     {{"type", "image_url"}, {"image_url", url}},
                                                     {{"type", "text"}, {"text", "this?"}}})}}});
  ChatRequest r = expect_ok(json{{"messages", msgs}}.dump());
  const json want = json::array({{{"role", "system"}, {"content", "Be brief."}},
                                 {{"role", "user"}, {"content", json::array({{{"type", "image"}}, {{"type", "text"}, {"text", "what?"}}})}},
                                 {{"role", "assistant"}, {"content", "A cat."}},
                                 {{"role", "assistant"}, {"content", ""}},
                                 {{"role", "user"},
                                  {"content", json::array({{{"type", "text"}, {"text", "and "}},
                                                           {{"type", "image"}},
                                                           {{"type", "text"}, {"text", "this?"}}})}}});
  EXPECT_EQ(r.messages, want) << r.messages.dump(1);
  ASSERT_EQ(r.media.size(), 2u);
  for (const auto& m : r.media) {
    ASSERT_EQ(m.frames.size(), 1u);
    EXPECT_EQ(m.frames[0].width, 84);
    EXPECT_EQ(m.frames[0].height, 56);
  }
}

TEST(ParseRequest, ImageErrors) {
  auto body = [](const std::string& url) { return json{{"messages", json::array({image_message(url)})}}.dump(); };
  expect_error(body("http://example.com/cat.png"), "unsupported_image_url");
  expect_error(body("HTTPS://example.com/cat.png"), "unsupported_image_url");
  expect_error(body(kImage), "unsupported_image_url");  // local files need --allow-local-files
  expect_error(body("file://" + kImage), "unsupported_image_url");
  expect_error(body("data:image/png;base64,@@@@"), "invalid_base64");
  expect_error(body("data:image/png,rawbytes"), "invalid_image_url");
  expect_error(body("data:image/png;base64"), "invalid_image_url");
  expect_error(body("data:image/png;base64,"), "invalid_image");
  expect_error(body("data:image/png;base64," + base64_encode("hello world, not an image")), "invalid_image");
  const std::string png = read_file(kImage);
  expect_error(body("data:image/png;base64," + base64_encode(png.substr(0, png.size() / 2))), "invalid_image");
  const ApiError huge = expect_error(body("data:image/png;base64," + base64_encode(png_header(100000, 100000))), "invalid_image");
  EXPECT_EQ(huge.param, "messages[0].content[0].image_url");
  // Images in a system or assistant turn are refused rather than silently dropped.
  expect_error(json{{"messages", json::array({{{"role", "system"},
                                               {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:,"}}}}})}}})}}
                   .dump(),
               "invalid_value");

  ApiLimits two;
  two.max_images = 2;
  json three = json::array({image_message("x"), image_message("y"), image_message("z")});
  expect_error(json{{"messages", three}}.dump(), "too_many_images", two);
  ApiLimits tiny_total;
  tiny_total.max_total_pixels = 84 * 56 + 1;
  const std::string url = "data:image/png;base64," + base64_encode(png);
  expect_error(json{{"messages", json::array({image_message(url), image_message(url)})}}.dump(), "image_too_large", tiny_total);

  ApiLimits local;
  local.allow_local_files = true;
  EXPECT_EQ(expect_ok(body(kImage), local).media.size(), 1u);
  EXPECT_EQ(expect_ok(body("file://" + kImage), local).media.size(), 1u);
  expect_error(body("relative/path.png"), "unsupported_image_url", local);
  expect_error(body("/nonexistent/x.png"), "invalid_image", local);
}

TEST(StopFilter, CutsAtStopAndHoldsBackPrefixes) {
  StopFilter none({});
  EXPECT_EQ(none.push("abc"), "abc");
  EXPECT_EQ(none.flush(), "");

  StopFilter f({"o W"});
  EXPECT_EQ(f.push("Hel"), "Hel");
  EXPECT_EQ(f.push("lo"), "l");  // "o" may begin "o W"
  EXPECT_EQ(f.push(" Wor"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.push("more"), "");
  EXPECT_EQ(f.flush(), "");

  StopFilter g({"END", "xyz"});
  EXPECT_EQ(g.push("abcE"), "abc");
  EXPECT_EQ(g.push("N"), "");
  EXPECT_EQ(g.push("x"), "EN");  // hold "x": it begins "xyz"
  EXPECT_EQ(g.push("!"), "x!");
  EXPECT_EQ(g.push("E"), "");
  EXPECT_FALSE(g.stopped());
  EXPECT_EQ(g.flush(), "E");

  StopFilter h({"bc", "abcd"});  // the earliest occurrence wins
  EXPECT_EQ(h.push("xabcd"), "x");
  EXPECT_TRUE(h.stopped());
}

TEST(Responses, Shapes) {
  json c = completion_response("id1", 5, "m", "hi", "stop", 3, 2);
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "hi");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 5);
  json k = stream_chunk("id1", 5, "m", {{"content", "x"}}, nullptr);
  EXPECT_EQ(k["object"], "chat.completion.chunk");
  EXPECT_TRUE(k["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  // Invalid UTF-8 from a model must not throw while serialising.
  EXPECT_NO_THROW(dump_json(json{{"t", std::string("\xff\xfe ok")}}));
}

}  // namespace
}  // namespace vlm::server
