// The OpenAI-compatible chat API without HTTP: request bodies are parsed, validated and turned
// into the HF message shape + media that Model::prepare takes; responses and stream chunks are
// built here too. Everything that touches untrusted bytes lives in this file so that it can be
// unit-tested and fuzzed without sockets (and it must not include httplib for that reason).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "runtime/engine.h"
#include "vision/image.h"

namespace vlm::server {

// What the server accepts. Sized for a single-user local server: generous, but every
// allocation an attacker can cause is bounded by one of these.
struct ApiLimits {
  size_t max_body_bytes = size_t(64) << 20;
  int max_json_depth = 64;  // nlohmann parses recursively; a "[[[[..." body must not blow the stack
  int max_messages = 512;
  // Text of all messages together. Tokenising runs while the model is held, so it is bounded
  // here, long before max_prompt_tokens could judge it.
  size_t max_text_bytes = size_t(1) << 20;
  int64_t max_prompt_tokens = 32768;  // after the chat template and image placeholders
  int max_images = 16;
  int max_tokens = 8192;         // upper bound a request may ask for
  int default_max_tokens = 512;  // when the request names none
  int max_stop = 8;
  size_t max_stop_bytes = 256;
  // Far above what the vision towers consume (they resize down), far below the decoder's own
  // defaults, which allow ~537 MB of RGB for one image.
  DecodeLimits decode{/*max_pixels=*/int64_t(1) << 25, /*max_side=*/16384, /*max_file_bytes=*/int64_t(64) << 20};
  int64_t max_total_pixels = int64_t(1) << 26;  // all images of one request together
  bool allow_local_files = false;
};

// An error in the OpenAI shape {"error": {"message", "type", "param", "code"}} plus its HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code = "invalid_request";
  std::string param;  // the offending field, e.g. "messages[1].content[0].image_url"
};

nlohmann::json error_body(const ApiError& e);
// JSON text that never throws, even when the model emitted invalid UTF-8 (replaced with U+FFFD).
std::string dump_json(const nlohmann::json& j);

template <class T>
using ApiResult = std::variant<T, ApiError>;

struct ChatRequest {
  std::string model;
  nlohmann::json messages;          // HF shape, ready for Model::prepare
  std::vector<models::Media> media;  // images in order of appearance
  int max_tokens = 0;
  std::optional<float> temperature, top_p, repetition_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// A reference to an image found in the messages, before any decoding.
struct ImageSource {
  std::string url;
  std::string param;  // where it was found, for error messages
};

// Strict RFC 4648 base64 (padding optional, no whitespace except what data URLs put in: none).
std::optional<std::vector<uint8_t>> decode_base64(std::string_view s);

// "data:image/png;base64,...." -> bytes. Only base64 data URLs are accepted.
ApiResult<std::vector<uint8_t>> parse_data_url(std::string_view url);

// OpenAI messages -> HF messages; images are listed in `images` in order of appearance and
// appear as {"type": "image"} parts. Does not decode anything.
ApiResult<nlohmann::json> convert_messages(const nlohmann::json& messages, const ApiLimits& limits,
                                           std::vector<ImageSource>* images);

// Decodes one image URL (data URL, or a local path when allowed).
ApiResult<Image> load_image_url(const ImageSource& src, const ApiLimits& limits);

// Everything: body text -> validated request with decoded images.
ApiResult<ChatRequest> parse_chat_request(std::string_view body, const ApiLimits& limits);

// Sampling and length for generate(): the model's defaults overridden by the request.
runtime::GenerateOptions generate_options(const ChatRequest& r, const models::Model& m);

// Holds back text that may be the start of a stop string, so that a stop string is never
// streamed, and cuts the text where one appears.
class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds generated text; returns the text that is now safe to emit.
  std::string push(const std::string& piece);
  // Generation ended: the held-back text is final.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

// Response bodies.
nlohmann::json completion_response(const std::string& id, int64_t created, const std::string& model,
                                   const std::string& text, const std::string& finish_reason,
                                   int64_t prompt_tokens, int64_t completion_tokens);
// One chat.completion.chunk; `delta` is {"content": ...}, {"role": ...} or {}.
nlohmann::json stream_chunk(const std::string& id, int64_t created, const std::string& model,
                            const nlohmann::json& delta, const char* finish_reason);
// "data: <json>\n\n"
std::string sse_event(const nlohmann::json& j);
nlohmann::json models_response(const std::string& model, int64_t created);

}  // namespace vlm::server
