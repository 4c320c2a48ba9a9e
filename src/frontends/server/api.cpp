#include "frontends/server/api.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdint>
#include <utility>

namespace vlm::server {
namespace {

using json = nlohmann::json;

ApiError bad(std::string message, std::string code, std::string param = {}) {
  ApiError e;
  e.message = std::move(message);
  e.code = std::move(code);
  e.param = std::move(param);
  return e;
}

// Deepest nesting of arrays/objects, stopping early past `limit`; the scan runs before
// nlohmann, whose parser and destructor recurse per level.
int json_depth(std::string_view s, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') --depth;
  }
  return deepest;
}

const char* type_name(const json& j) { return j.type_name(); }

ApiError wrong_type(const std::string& param, const char* expected, const json& got) {
  return bad(cat("'", param, "' must be ", expected, ", not ", type_name(got)), "invalid_type", param);
}

// Optional number field in [lo, hi].
std::optional<ApiError> read_number(const json& body, const char* key, double lo, double hi, std::optional<float>* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return wrong_type(key, "a number", *it);
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    return bad(cat("'", key, "' must be between ", lo, " and ", hi, ", got ", v), "invalid_value", key);
  *out = float(v);
  return std::nullopt;
}

std::optional<ApiError> read_int(const json& body, const char* key, int64_t lo, int64_t hi, std::optional<int64_t>* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) return wrong_type(key, "an integer", *it);
  // An unsigned value beyond int64 range is out of every range we accept.
  if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX))
    return bad(cat("'", key, "' must be between ", lo, " and ", hi), "invalid_value", key);
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) return bad(cat("'", key, "' must be between ", lo, " and ", hi, ", got ", v), "invalid_value", key);
  *out = v;
  return std::nullopt;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

}  // namespace

json error_body(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", e.code}}}};
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<std::vector<uint8_t>> decode_base64(std::string_view s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet, which some clients send
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  size_t n = s.size();
  size_t pad = 0;
  while (n > 0 && s[n - 1] == '=' && pad < 2) --n, ++pad;
  if (pad > 0 && (n + pad) % 4 != 0) return std::nullopt;
  if (n % 4 == 1) return std::nullopt;  // 6 bits cannot make a byte
  std::vector<uint8_t> out;
  out.reserve(n / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = value(s[i]);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  return out;
}

ApiResult<std::vector<uint8_t>> parse_data_url(std::string_view url) {
  if (!starts_with_ci(url, "data:")) return bad("image URL is not a data URL", "invalid_image_url");
  const size_t comma = url.find(',');
  if (comma == std::string_view::npos) return bad("data URL has no ',' before its data", "invalid_image_url");
  std::string_view meta = url.substr(5, comma - 5);
  if (meta.size() < 7 || !starts_with_ci(meta.substr(meta.size() - 7), ";base64"))
    return bad("data URL must be base64-encoded (data:image/...;base64,...)", "invalid_image_url");
  auto bytes = decode_base64(url.substr(comma + 1));
  if (!bytes) return bad("data URL holds invalid base64", "invalid_base64");
  if (bytes->empty()) return bad("data URL holds no data", "invalid_image");
  return std::move(*bytes);
}

ApiResult<json> convert_messages(const json& messages, const ApiLimits& limits, std::vector<ImageSource>* images) {
  if (!messages.is_array()) return wrong_type("messages", "an array", messages);
  if (messages.empty()) return bad("'messages' must not be empty", "invalid_value", "messages");
  if (messages.size() > size_t(limits.max_messages))
    return bad(cat("too many messages (", messages.size(), "; at most ", limits.max_messages, ")"), "invalid_value", "messages");
  json out = json::array();
  size_t text_bytes = 0;
  auto add_text = [&](const json& t, const std::string& param) -> std::optional<ApiError> {
    text_bytes += t.get_ref<const std::string&>().size();
    if (text_bytes > limits.max_text_bytes)
      return bad(cat("messages hold more than ", limits.max_text_bytes, " bytes of text"), "text_too_long", param);
    return std::nullopt;
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string where = cat("messages[", i, "]");
    if (!m.is_object()) return wrong_type(where, "an object", m);
    auto role_it = m.find("role");
    if (role_it == m.end()) return bad(cat("'", where, ".role' is missing"), "missing_field", where + ".role");
    if (!role_it->is_string()) return wrong_type(where + ".role", "a string", *role_it);
    std::string role = role_it->get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role == "tool" || role == "function")
      return bad(cat("'", where, ".role' ", role, " is not supported (no tool calling)"), "unsupported_role", where + ".role");
    if (role != "system" && role != "user" && role != "assistant")
      return bad(cat("'", where, ".role' must be system, developer, user or assistant, not '", role, "'"),
                 "invalid_role", where + ".role");
    auto content_it = m.find("content");
    json content;
    if (content_it == m.end() || content_it->is_null()) {
      // OpenAI lets an assistant turn carry only tool calls; with no tools that is an empty turn.
      if (role != "assistant") return bad(cat("'", where, ".content' is missing"), "missing_field", where + ".content");
      content = "";
    } else if (content_it->is_string()) {
      if (auto e = add_text(*content_it, where + ".content")) return *e;
      content = *content_it;
    } else if (content_it->is_array()) {
      json parts = json::array();
      std::string joined;  // system/assistant turns: plain text, which every chat template takes
      for (size_t k = 0; k < content_it->size(); ++k) {
        const json& p = (*content_it)[k];
        const std::string pw = cat(where, ".content[", k, "]");
        if (!p.is_object()) return wrong_type(pw, "an object", p);
        auto type_it = p.find("type");
        if (type_it == p.end()) return bad(cat("'", pw, ".type' is missing"), "missing_field", pw + ".type");
        if (!type_it->is_string()) return wrong_type(pw + ".type", "a string", *type_it);
        const std::string type = type_it->get<std::string>();
        if (type == "text") {
          auto t = p.find("text");
          if (t == p.end()) return bad(cat("'", pw, ".text' is missing"), "missing_field", pw + ".text");
          if (!t->is_string()) return wrong_type(pw + ".text", "a string", *t);
          if (auto e = add_text(*t, pw + ".text")) return *e;
          parts.push_back({{"type", "text"}, {"text", *t}});
          joined += t->get<std::string>();
        } else if (type == "image_url") {
          if (role != "user")
            return bad(cat("'", pw, "': images are only accepted in user messages"), "invalid_value", pw);
          auto iu = p.find("image_url");
          if (iu == p.end()) return bad(cat("'", pw, ".image_url' is missing"), "missing_field", pw + ".image_url");
          const json* url = nullptr;
          if (iu->is_string()) url = &*iu;  // a shorthand some clients use
          else if (iu->is_object()) {
            auto u = iu->find("url");
            if (u == iu->end()) return bad(cat("'", pw, ".image_url.url' is missing"), "missing_field", pw + ".image_url.url");
            url = &*u;
          } else {
            return wrong_type(pw + ".image_url", "an object", *iu);
          }
          if (!url->is_string()) return wrong_type(pw + ".image_url.url", "a string", *url);
          if (images->size() >= size_t(limits.max_images))
            return bad(cat("too many images (at most ", limits.max_images, " per request)"), "too_many_images", pw);
          images->push_back({url->get<std::string>(), pw + ".image_url"});
          parts.push_back({{"type", "image"}});
        } else {
          return bad(cat("'", pw, ".type' ", type, " is not supported (text and image_url are)"), "unsupported_content_type",
                     pw + ".type");
        }
      }
      if (role == "user") content = std::move(parts);
      else content = joined;
    } else {
      return wrong_type(where + ".content", "a string or an array of parts", *content_it);
    }
    out.push_back({{"role", role}, {"content", std::move(content)}});
  }
  return out;
}

ApiResult<Image> load_image_url(const ImageSource& src, const ApiLimits& limits) {
  const std::string& url = src.url;
  auto fail = [&](const std::string& message, const char* code) { return bad(message, code, src.param); };
  if (starts_with_ci(url, "http://") || starts_with_ci(url, "https://"))
    return fail("image URLs are not fetched (the server makes no network requests); send the image as a data URL "
                "(data:image/png;base64,...)",
                "unsupported_image_url");
  if (starts_with_ci(url, "data:")) {
    auto bytes = parse_data_url(url);
    if (auto* e = std::get_if<ApiError>(&bytes)) {
      e->param = src.param;
      return *e;
    }
    auto& b = std::get<std::vector<uint8_t>>(bytes);
    if (sniff_image_format(b) == ImageFormat::kUnknown) return fail("image is not PNG, JPEG or WebP", "invalid_image");
    auto img = decode_image(b, limits.decode);
    if (!img.ok()) return fail("image could not be decoded: " + img.error().message, "invalid_image");
    return std::move(img.value());
  }
  std::string path = url;
  if (starts_with_ci(path, "file://")) path = path.substr(7);
  if (!limits.allow_local_files || path.empty() || path[0] != '/')
    return fail(limits.allow_local_files
                    ? "image URL must be a data URL or an absolute local path (file:///... or /...)"
                    : "image URL must be a data URL (data:image/png;base64,...); local files are refused unless the server "
                      "runs with --allow-local-files",
                "unsupported_image_url");
  auto img = load_image(path, limits.decode);
  if (!img.ok()) return fail("image could not be loaded: " + img.error().message, "invalid_image");
  return std::move(img.value());
}

ApiResult<ChatRequest> parse_chat_request(std::string_view body, const ApiLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    ApiError e = bad(cat("request body is larger than ", limits.max_body_bytes >> 20, " MB"), "body_too_large");
    e.status = 413;
    return e;
  }
  if (json_depth(body, limits.max_json_depth) > limits.max_json_depth)
    return bad(cat("request JSON is nested deeper than ", limits.max_json_depth, " levels"), "invalid_json");
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("request body is not valid JSON", "invalid_json");
  if (!j.is_object()) return wrong_type("body", "a JSON object", j);

  ChatRequest r;
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return wrong_type("model", "a string", *it);
    r.model = it->get<std::string>();
  }
  auto msgs = j.find("messages");
  if (msgs == j.end()) return bad("'messages' is missing", "missing_field", "messages");
  std::vector<ImageSource> sources;
  auto conv = convert_messages(*msgs, limits, &sources);
  if (auto* e = std::get_if<ApiError>(&conv)) return *e;
  r.messages = std::move(std::get<json>(conv));

  // max_completion_tokens is the newer name; when both are given it wins, as in OpenAI's API.
  std::optional<int64_t> v;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (auto e = read_int(j, key, 1, limits.max_tokens, &v)) return *e;
  }
  r.max_tokens = int(v.value_or(limits.default_max_tokens));
  if (auto e = read_number(j, "temperature", 0.0, 2.0, &r.temperature)) return *e;
  if (auto e = read_number(j, "top_p", 0.0, 1.0, &r.top_p)) return *e;
  if (r.top_p && *r.top_p <= 0.0f) return bad("'top_p' must be greater than 0", "invalid_value", "top_p");
  if (auto e = read_number(j, "repetition_penalty", 0.01, 100.0, &r.repetition_penalty)) return *e;
  std::optional<int64_t> k;
  if (auto e = read_int(j, "top_k", 0, int64_t(1) << 30, &k)) return *e;
  if (k) r.top_k = int(*k);
  std::optional<int64_t> seed;
  if (auto e = read_int(j, "seed", INT64_MIN, INT64_MAX, &seed)) return *e;
  if (seed) r.seed = uint64_t(*seed);
  if (auto it = j.find("n"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return wrong_type("n", "an integer", *it);
    if (*it != 1) return bad("only n = 1 is supported", "invalid_value", "n");
  }
  if (auto it = j.find("stream"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) return wrong_type("stream", "a boolean", *it);
    r.stream = it->get<bool>();
  }
  if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return wrong_type("stream_options", "an object", *it);
    if (auto u = it->find("include_usage"); u != it->end() && !u->is_null()) {
      if (!u->is_boolean()) return wrong_type("stream_options.include_usage", "a boolean", *u);
      r.include_usage = u->get<bool>();
    }
  }
  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      r.stop.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      if (it->size() > size_t(limits.max_stop))
        return bad(cat("'stop' holds more than ", limits.max_stop, " strings"), "invalid_value", "stop");
      for (const auto& s : *it) {
        if (!s.is_string()) return wrong_type("stop[]", "a string", s);
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      return wrong_type("stop", "a string or an array of strings", *it);
    }
    for (const auto& s : r.stop) {
      if (s.empty()) return bad("'stop' strings must not be empty", "invalid_value", "stop");
      if (s.size() > limits.max_stop_bytes)
        return bad(cat("'stop' strings must be at most ", limits.max_stop_bytes, " bytes"), "invalid_value", "stop");
    }
  }

  // Images last: decoding is the expensive part and every cheap check has passed.
  int64_t total_pixels = 0;
  for (const auto& src : sources) {
    auto img = load_image_url(src, limits);
    if (auto* e = std::get_if<ApiError>(&img)) return *e;
    Image& im = std::get<Image>(img);
    total_pixels += int64_t(im.width) * im.height;
    if (total_pixels > limits.max_total_pixels)
      return bad(cat("images hold more than ", limits.max_total_pixels, " pixels together"), "image_too_large", src.param);
    models::Media m;
    m.frames.push_back(std::move(im));
    r.media.push_back(std::move(m));
  }
  return r;
}

runtime::GenerateOptions generate_options(const ChatRequest& r, const models::Model& m) {
  runtime::GenerateOptions go;
  go.max_new_tokens = r.max_tokens;
  go.sampling = runtime::sampling_for(m, {r.temperature, r.top_p, r.repetition_penalty, r.top_k, r.seed});
  return go;
}

std::string StopFilter::push(const std::string& piece) {
  if (stopped_) return {};
  pending_ += piece;
  if (stops_.empty()) return std::exchange(pending_, {});
  // Every stop occurrence starts inside pending_: what was emitted never ended with a prefix of one.
  size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  size_t hold = 0;  // longest tail of pending_ that begins some stop string
  for (const auto& s : stops_) {
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopFilter::flush() {
  if (stopped_) return {};
  return std::exchange(pending_, {});
}

json completion_response(const std::string& id, int64_t created, const std::string& model, const std::string& text,
                         const std::string& finish_reason, int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"id", id},
          {"object", "chat.completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", text}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason}}})},
          {"usage",
           {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}}}};
}

json stream_chunk(const std::string& id, int64_t created, const std::string& model, const json& delta,
                  const char* finish_reason) {
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", created},
          {"model", model},
          {"choices", json::array({{{"index", 0},
                                    {"delta", delta},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}}})}};
}

std::string sse_event(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

json models_response(const std::string& model, int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "vlm"}}})}};
}

}  // namespace vlm::server
