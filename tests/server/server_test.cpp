// The HTTP server end to end, in process, on 127.0.0.1 with an OS-chosen port and the bundled
// tiny Qwen2-VL: greedy answers equal the recorded HF text, streaming deltas add up to the same
// text, bad requests get JSON errors, and a client that goes away stops its generation.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <thread>

#include "frontends/server/server.h"
#include "test_util.h"

namespace vlm::server {
namespace {

using json = nlohmann::json;

const std::string kFixture = VLM_TESTDATA "/fixtures/qwen2_vl";
const std::string kImage = kFixture + "/cases/single_image/a_84x56.png";

std::string strip(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// A server running on its own thread for the lifetime of the object.
struct Running {
  Server server;
  std::thread thread;
  int port = 0;
  Running(const models::Model& m, ServerOptions o) : server(m, std::move(o)) {
    auto p = server.bind();
    if (!p.ok()) throw std::runtime_error(p.error().message);
    port = *p;
    thread = std::thread([this] { (void)server.serve(); });
  }
  ~Running() {
    server.stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60);
    return c;
  }
};

ServerOptions local_options() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.log_requests = false;
  return o;
}

struct Stream {
  std::vector<json> chunks;
  std::string text;
  bool done = false;  // saw data: [DONE]
  std::string finish;
  int status = 0;
};

// Posts a streaming request and parses the SSE events. `on_chunk` may return false to hang up.
Stream post_stream(httplib::Client& cli, const json& body, const std::function<bool(const json&)>& on_chunk = {}) {
  Stream s;
  std::string buf;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    size_t cut;
    while ((cut = buf.find("\n\n")) != std::string::npos) {
      const std::string ev = buf.substr(0, cut);
      buf.erase(0, cut + 2);
      EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
      const std::string data = ev.substr(6);
      if (data == "[DONE]") {
        s.done = true;
        continue;
      }
      EXPECT_FALSE(s.done) << "event after [DONE]";
      json j = json::parse(data);
      s.chunks.push_back(j);
      if (j.contains("choices") && !j["choices"].empty()) {
        const json& c = j["choices"][0];
        if (c["delta"].contains("content")) s.text += c["delta"]["content"].get<std::string>();
        if (!c["finish_reason"].is_null()) s.finish = c["finish_reason"];
      }
      if (on_chunk && !on_chunk(j)) return false;
    }
    return true;
  };
  auto res = cli.send(req);
  if (res) s.status = res->status;
  return s;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = models::load_model(kFixture + "/model");
    ASSERT_TRUE(m.ok()) << m.error().message;
    model_ = std::move(m.value()).release();
    case_ = json::parse(read_file(kFixture + "/cases/single_image/case.json"));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  static json image_request(int max_tokens) {
    const std::string url = "data:image/png;base64," + base64_encode(read_file(kImage));
    return {{"model", "model"},
            {"messages", json::array({{{"role", "user"},
                                       {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", url}}}},
                                                                {{"type", "text"}, {"text", "Describe this image."}}})}}})},
            {"temperature", 0},
            {"max_tokens", max_tokens}};
  }

  static models::Model* model_;
  static json case_;
};
models::Model* ServerTest::model_ = nullptr;
json ServerTest::case_;

TEST_F(ServerTest, GreedyAnswerMatchesRecordedTextAndStreamAgrees) {
  Running srv(*model_, local_options());
  auto cli = srv.client();
  const json req = image_request(12);
  auto res = cli.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->get_header_value("Content-Type").find("application/json"), std::string::npos);
  const json j = json::parse(res->body);
  const std::string text = j["choices"][0]["message"]["content"];
  EXPECT_EQ(strip(text), strip(case_["generated_text"].get<std::string>()));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["usage"]["prompt_tokens"], case_["input_ids"].size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);

  json sreq = req;
  sreq["stream"] = true;
  sreq["stream_options"] = {{"include_usage", true}};
  Stream s = post_stream(cli, sreq);
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.text, text);
  EXPECT_EQ(s.finish, "length");
  ASSERT_GE(s.chunks.size(), 3u);
  EXPECT_EQ(s.chunks.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(s.chunks.back()["usage"]["completion_tokens"], 12);
  for (const auto& c : s.chunks) EXPECT_EQ(c["object"], "chat.completion.chunk");
}

TEST_F(ServerTest, StopStringsCutTheAnswer) {
  Running srv(*model_, local_options());
  auto cli = srv.client();
  json req = image_request(12);
  req["stop"] = json::array({"suitability suitability"});
  auto res = cli.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], " ");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  req["stream"] = true;
  Stream s = post_stream(cli, req);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.text, " ");
  EXPECT_EQ(s.finish, "stop");
}

TEST_F(ServerTest, BadRequestsGetJsonErrors) {
  Running srv(*model_, local_options());
  auto cli = srv.client();
  auto expect_error = [&](const std::string& body, int status, const std::string& code) {
    auto res = cli.Post("/v1/chat/completions", body, "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, status) << body.substr(0, 100) << " -> " << res->body;
    const json j = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << res->body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << res->body;
    EXPECT_EQ(j["error"]["code"], code) << res->body;
  };
  expect_error("{", 400, "invalid_json");
  expect_error("[]", 400, "invalid_type");
  expect_error(R"({"messages": 3})", 400, "invalid_type");
  expect_error(R"({"messages": [{"role": "wizard", "content": "x"}]})", 400, "invalid_role");
  json bad_image = image_request(4);
  bad_image["messages"][0]["content"][0]["image_url"]["url"] = "data:image/png;base64,!!!!";
  expect_error(bad_image.dump(), 400, "invalid_base64");
  bad_image["messages"][0]["content"][0]["image_url"]["url"] = "https://example.com/a.png";
  expect_error(bad_image.dump(), 400, "unsupported_image_url");
  json bomb = image_request(4);
  bomb["messages"][0]["content"][0]["image_url"]["url"] = "data:image/png;base64," + base64_encode(png_header(100000, 100000));
  expect_error(bomb.dump(), 400, "invalid_image");
  json too_long = image_request(100000);
  expect_error(too_long.dump(), 400, "invalid_value");

  // Over --max-body-mb: httplib refuses it before the handler (413), still as a JSON error.
  ServerOptions small = local_options();
  small.limits.max_body_bytes = 1 << 10;
  Running tiny(*model_, small);
  auto tcli = tiny.client();
  auto res = tcli.Post("/v1/chat/completions", image_request(4).dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(json::parse(res->body, nullptr, false)["error"]["code"], "body_too_large") << res->body;

  auto nf = cli.Get("/v2/nothing");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(json::parse(nf->body, nullptr, false)["error"]["code"], "not_found") << nf->body;
}

TEST_F(ServerTest, PromptTokenLimit) {
  ServerOptions o = local_options();
  o.limits.max_prompt_tokens = 30;  // the image request's prompt is 31 tokens
  Running srv(*model_, o);
  auto cli = srv.client();
  auto res = cli.Post("/v1/chat/completions", image_request(2).dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body, nullptr, false)["error"]["code"], "context_length_exceeded") << res->body;
}

TEST_F(ServerTest, HealthModelsAndPage) {
  ServerOptions o = local_options();
  o.model_name = "tiny-qwen";
  Running srv(*model_, o);
  auto cli = srv.client();
  auto h = cli.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = cli.Get("/v1/models");
  ASSERT_TRUE(m);
  const json mj = json::parse(m->body);
  EXPECT_EQ(mj["object"], "list");
  EXPECT_EQ(mj["data"][0]["id"], "tiny-qwen");
  auto page = cli.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);
  // Self-contained: nothing is loaded from elsewhere.
  EXPECT_EQ(page->body.find("http://"), std::string::npos);
  EXPECT_EQ(page->body.find("https://"), std::string::npos);
}

TEST_F(ServerTest, HangingUpStopsGenerationAndBusyServerSays503) {
  ServerOptions o = local_options();
  o.max_waiting = 0;
  Running srv(*model_, o);
  auto cli = srv.client();
  json req = image_request(8192);  // long enough to still be running when we hang up
  req["stream"] = true;
  int busy_status = 0;
  bool asked = false;
  Stream s = post_stream(cli, req, [&](const json& chunk) {
    if (asked) return false;
    asked = true;
    // The model is taken by this stream and no one may wait: a second request is turned away.
    auto other = srv.client();
    auto r = other.Post("/v1/chat/completions", image_request(2).dump(), "application/json");
    if (r) busy_status = r->status;
    return false;  // hang up
  });
  EXPECT_TRUE(asked);
  EXPECT_FALSE(s.done);
  EXPECT_EQ(busy_status, 503);
  // The server notices at its next write; bounded wait.
  for (int i = 0; i < 200 && srv.server.cancelled_streams() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(srv.server.cancelled_streams(), 1u);
  // And the model is free again (its slot is released just after the count above moves).
  httplib::Result res = cli.Post("/v1/chat/completions", image_request(2).dump(), "application/json");
  for (int i = 0; i < 100 && res && res->status == 503; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    res = cli.Post("/v1/chat/completions", image_request(2).dump(), "application/json");
  }
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

}  // namespace
}  // namespace vlm::server
