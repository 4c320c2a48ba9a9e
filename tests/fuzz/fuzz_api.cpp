// libFuzzer target for the chat API request parser (src/frontends/server/api.cpp): any body must
// give either a request within the limits or a 4xx error with a message, never a crash, a hang,
// or an unbounded allocation. Not built by default; with VLM_FUZZ=ON the CMake loop builds it.
// api.cpp is compiled into this file because the fuzz loop links only the `vlm` library, and
// the server library (which also holds the HTTP parts) is not part of it. By hand, against the
// libraries of a GCC build (same libstdc++ ABI):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_api.cpp \
//     -Wl,--start-group build-server/libvlm_*.a -Wl,--end-group \
//     $(pkg-config --libs libpng libjpeg libwebp libpcre2-8 libutf8proc libavformat libavcodec libswscale libavutil sqlite3) \
//     -o fuzz_api
//   ./fuzz_api -max_total_time=60 -max_len=65536 corpus/
// Seeds: OpenAI request bodies, e.g. the ones in docs/SERVER.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "frontends/server/api.cpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vlm::server::ApiLimits limits;
  limits.max_body_bytes = 1 << 20;
  limits.max_images = 4;
  limits.decode.max_pixels = int64_t(1) << 20;
  limits.decode.max_side = 4096;
  limits.max_total_pixels = int64_t(1) << 21;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = vlm::server::parse_chat_request(body, limits);
  if (auto* e = std::get_if<vlm::server::ApiError>(&r)) {
    if (e->message.empty() || e->status < 400 || e->status >= 500) std::abort();
    (void)vlm::server::dump_json(vlm::server::error_body(*e));
    return 0;
  }
  auto& req = std::get<vlm::server::ChatRequest>(r);
  if (req.max_tokens < 1 || req.max_tokens > limits.max_tokens) std::abort();
  if (req.media.size() > size_t(limits.max_images)) std::abort();
  if (!req.messages.is_array() || req.messages.empty()) std::abort();
  size_t image_parts = 0;
  for (const auto& m : req.messages) {
    const auto& c = m.at("content");
    if (c.is_array())
      for (const auto& p : c) image_parts += p.at("type") == "image";
  }
  if (image_parts != req.media.size()) std::abort();
  // The stop filter sees model text; feed it the request's own bytes.
  vlm::server::StopFilter f(req.stop);
  std::string out;
  for (size_t i = 0; i < size; i += 7) out += f.push(std::string(body.substr(i, 7)));
  out += f.flush();
  if (!f.stopped() && out != body) std::abort();
  return 0;
}
