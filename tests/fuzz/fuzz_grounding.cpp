// libFuzzer target for the grounding parser and the box drawing (not built by default):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/fuzz_grounding.cpp src/runtime/grounding.cpp src/vision/draw.cpp \
//     src/vision/font.cpp src/vision/qwen_preprocess.cpp src/vision/resize.cpp src/vision/image*.cpp \
//     -lpng -ljpeg -lwebp -o fuzz_grounding
//   ./fuzz_grounding -max_total_time=60 -max_len=4096 corpus/
// Seeds: a few model answers of each format (see tests/runtime/grounding_test.cpp).
// The first bytes choose the format and the frame, the rest is the answer.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "runtime/grounding.h"
#include "vision/draw.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  using vlm::runtime::BoxFormat;
  const BoxFormat fmt = BoxFormat(data[0] % 5);
  vlm::runtime::GroundingFrame f;
  f.orig_w = 1 + data[1] * 3;
  f.orig_h = 1 + data[2] * 3;
  // Input sizes include 0 (unknown), which must be reported, not divided by.
  f.input_w = data[3] % 64 == 0 ? 0 : 28 * (data[3] % 64);
  f.input_h = data[4] % 64 == 0 ? 0 : 28 * (data[4] % 64);
  const std::string_view text(reinterpret_cast<const char*>(data + 5), size - 5);

  const auto r = vlm::runtime::parse_grounding(text, fmt, f);
  for (const auto& b : r.boxes) {
    for (double v : {b.x1, b.y1, b.x2, b.y2})
      if (!std::isfinite(v)) std::abort();
    if (b.x1 > b.x2 || b.y1 > b.y2 || b.x1 < 0 || b.y1 < 0 || b.x2 > f.orig_w || b.y2 > f.orig_h) std::abort();
    if (b.is_point && (b.x1 != b.x2 || b.y1 != b.y2)) std::abort();
  }
  const std::string json = vlm::runtime::boxes_to_json(r);
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array() || parsed.size() != r.boxes.size()) std::abort();

  // Draw onto a small canvas (orig sizes can reach 766 px; scale the boxes down).
  vlm::Image img;
  img.width = 64;
  img.height = 48;
  img.rgb.assign(size_t(img.width) * img.height * 3, 0);
  std::vector<vlm::DrawBox> boxes;
  for (const auto& b : r.boxes)
    boxes.push_back({b.x1 * 64 / f.orig_w, b.y1 * 48 / f.orig_h, b.x2 * 64 / f.orig_w, b.y2 * 48 / f.orig_h, b.label,
                     b.is_point});
  vlm::draw_boxes(img, boxes);
  return 0;
}
