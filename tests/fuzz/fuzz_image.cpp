// libFuzzer target for the image decoders (not built by default):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/fuzz_image.cpp src/vision/image*.cpp -lpng -ljpeg -lwebp -o fuzz_image
//   ./fuzz_image -max_total_time=60 -rss_limit_mb=2048 corpus/
// Seeds: any PNG/JPEG/WebP files, e.g. testdata/fixtures/*/cases/*/*.png.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "vision/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small limits keep each input cheap; the limit checks themselves are
  // part of what is exercised.
  vlm::DecodeLimits limits;
  limits.max_pixels = int64_t(1) << 22;
  limits.max_side = 8192;
  auto img = vlm::decode_image({data, size}, limits);
  if (img.ok()) {
    if (img->width <= 0 || img->height <= 0 ||
        img->rgb.size() != size_t(img->width) * size_t(img->height) * 3 ||
        int64_t(img->width) * img->height > limits.max_pixels)
      std::abort();
    // Touch every byte so that MSan/ASan see uninitialised or short buffers.
    unsigned sum = 0;
    for (uint8_t v : img->rgb) sum += v;
    volatile unsigned sink = sum;
    (void)sink;
  } else if (img.error().message.empty()) {
    std::abort();
  }
  return 0;
}
