// libFuzzer target for video input (not built by default). The bytes reach
// FFmpeg through the in-memory AVIOContext of load_video_memory, so the whole
// path is exercised: container whitelist, probing, frame counting, frame
// selection, decoding, colour conversion, rotation and every error exit.
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/fuzz_video.cpp src/vision/video.cpp src/vision/image*.cpp \
//     -lpng -ljpeg -lwebp $(pkg-config --libs libavformat libavcodec libswscale libavutil) \
//     -o fuzz_video
//   ./fuzz_video -max_total_time=60 -rss_limit_mb=2048 -timeout=10 corpus/
// Seeds: tiny clips in several containers, e.g.
//   ffmpeg -framerate 2 -i testdata/fixtures/qwen2_vl/cases/video/frame_%d.png \
//     -c:v libx264 -pix_fmt yuv420p corpus/a.mp4   (also .mkv, .webm, .avi, .gif)
// FFmpeg itself is not instrumented; what is checked is that our wrapper
// never crashes, leaks, hangs or returns inconsistent clips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "vision/video.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vlm::VideoSampling s;
  // Small limits keep each input cheap; the limit checks are part of the
  // surface under test.
  s.limits.max_pixels = int64_t(1) << 20;
  s.limits.max_side = 4096;
  s.max_decoded_frames = 256;
  s.max_clip_bytes = int64_t(64) << 20;
  s.decode_threads = 1;  // deterministic, and no thread pools per input
  s.timeout_s = 5;
  if (size > 0) s.fps = 0.5 + (data[size - 1] & 7);  // vary the selection a little

  auto clip = vlm::load_video_memory({data, size}, s);
  if (clip.ok()) {
    const auto& c = *clip;
    if (c.frames.size() < 2 || c.frames.size() % 2 != 0 ||
        c.frames.size() != c.indices.size() || !(c.sample_fps > 0))
      std::abort();
    for (size_t i = 0; i < c.frames.size(); ++i) {
      const vlm::Image& f = c.frames[i];
      if (f.empty() || f.rgb.size() != size_t(f.width) * size_t(f.height) * 3 ||
          int64_t(f.width) * f.height > s.limits.max_pixels)
        std::abort();
      if (i > 0 && c.indices[i] < c.indices[i - 1]) std::abort();
      unsigned sum = 0;  // touch every byte for ASan
      for (uint8_t v : f.rgb) sum += v;
      volatile unsigned sink = sum;
      (void)sink;
    }
    if (c.indices.back() >= c.info.frames || c.indices.front() < 0) std::abort();
  } else if (clip.error().message.empty()) {
    std::abort();
  }
  auto info = vlm::probe_video_memory({data, size});
  if (info.ok() && (info->frames <= 0 || !(info->fps > 0) || info->width <= 0)) std::abort();
  return 0;
}
