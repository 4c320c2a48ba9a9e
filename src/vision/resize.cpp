#include "vision/resize.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/threads.h"

// The passes are integer multiply-adds over contiguous lanes. GCC only
// vectorises at -O3, so ask for it here; on x86 also build an AVX2 clone
// (vpmulld) next to the baseline one, chosen at load time. Integer results
// are identical in every variant. (No clones under the sanitizers: their
// runtimes are not up yet when the ifunc resolvers run.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize")
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define VLM_RESIZE_KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define VLM_RESIZE_KERNEL
#endif

namespace vlm {
namespace {

// Both references evaluate these exact expressions in double; ATen's
// (A*x - 5A) form differs from Pillow's ((x-5)x...)*a only by factors of
// a = -0.5, which are exact, so one formula serves both.
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Quantises like C's (int)(v * 2^bits + ±0.5): round half away from zero.
int32_t quantise(double v, int bits) {
  const double s = double(int64_t(1) << bits);
  return static_cast<int32_t>(v < 0 ? v * s - 0.5 : v * s + 0.5);
}

inline uint8_t clamp_u8(int32_t v) { return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v); }

// Rows handled together by the horizontal pass. They are interleaved into a
// block buffer (x-major: for each input x, kBlockRows RGB triples) so that one
// output pixel of all those rows is a contiguous multiply-add over
// kBlockLanes int32 lanes, which the compiler vectorises.
constexpr int kBlockRows = 16;
constexpr int kBlockLanes = kBlockRows * 3;

VLM_RESIZE_KERNEL
void horizontal_block(const uint8_t* block, const ResampleTaps& t, int32_t* acc_out) {
  const int32_t bias = int32_t(1) << (t.shift - 1);
  for (int x = 0; x < t.out_size; ++x) {
    int32_t acc[kBlockLanes];
    for (int i = 0; i < kBlockLanes; ++i) acc[i] = bias;
    const int32_t* k = &t.coeff[size_t(x) * size_t(t.stride)];
    const uint8_t* b = block + size_t(t.first[size_t(x)]) * kBlockLanes;
    for (int j = 0, n = t.count[size_t(x)]; j < n; ++j, b += kBlockLanes) {
      const int32_t kj = k[j];
      for (int i = 0; i < kBlockLanes; ++i) acc[i] += kj * int32_t(b[i]);
    }
    int32_t* o = acc_out + size_t(x) * kBlockLanes;
    for (int i = 0; i < kBlockLanes; ++i) o[i] = acc[i] >> t.shift;
  }
}

// Horizontal pass over rows [y0, y1) of `src` into `dst` (y1 - y0 rows).
void pass_horizontal(const uint8_t* src, int src_w, int y0, int y1, const ResampleTaps& t,
                     uint8_t* dst) {
  const int out_w = t.out_size;
  const int64_t n_blocks = (y1 - y0 + kBlockRows - 1) / kBlockRows;
  // Blocks are independent, so threads change nothing in the result.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / (int64_t(out_w) * kBlockRows));
  parallel_for(n_blocks, grain, [&](int64_t b0, int64_t b1) {
    std::vector<uint8_t> block(size_t(src_w) * kBlockLanes);
    std::vector<int32_t> acc(size_t(out_w) * kBlockLanes);
    for (int64_t bi = b0; bi < b1; ++bi) {
      const int yb = y0 + int(bi) * kBlockRows;
      const int nr = std::min(kBlockRows, y1 - yb);
      if (nr < kBlockRows) std::fill(block.begin(), block.end(), 0);
      for (int r = 0; r < nr; ++r) {
        const uint8_t* in = src + size_t(yb + r) * size_t(src_w) * 3;
        uint8_t* b = block.data() + r * 3;
        for (int x = 0; x < src_w; ++x, b += kBlockLanes, in += 3) {
          b[0] = in[0];
          b[1] = in[1];
          b[2] = in[2];
        }
      }
      horizontal_block(block.data(), t, acc.data());
      for (int r = 0; r < nr; ++r) {
        uint8_t* out = dst + size_t(yb - y0 + r) * size_t(out_w) * 3;
        const int32_t* a = acc.data() + r * 3;
        for (int x = 0; x < out_w; ++x, a += kBlockLanes) {
          out[3 * x] = clamp_u8(a[0]);
          out[3 * x + 1] = clamp_u8(a[1]);
          out[3 * x + 2] = clamp_u8(a[2]);
        }
      }
    }
  });
}

// Vertical pass over output rows [o0, o1); `src` row 0 is input row
// `row_offset`. Columns are processed in chunks whose accumulators stay in L1
// across all taps.
VLM_RESIZE_KERNEL
void vertical_rows(const uint8_t* src, int row_offset, int row_bytes, const ResampleTaps& t,
                   int o0, int o1, uint8_t* dst) {
  constexpr int kChunk = 1024;
  const int32_t bias = int32_t(1) << (t.shift - 1);
  int32_t acc[kChunk];
  for (int o = o0; o < o1; ++o) {
    const int32_t* k = &t.coeff[size_t(o) * size_t(t.stride)];
    const uint8_t* rows = src + size_t(t.first[size_t(o)] - row_offset) * size_t(row_bytes);
    const int n = t.count[size_t(o)];
    uint8_t* out = dst + size_t(o) * size_t(row_bytes);
    for (int c0 = 0; c0 < row_bytes; c0 += kChunk) {
      const int len = std::min(kChunk, row_bytes - c0);
      for (int i = 0; i < len; ++i) acc[i] = bias;
      for (int j = 0; j < n; ++j) {
        const uint8_t* in = rows + size_t(j) * size_t(row_bytes) + c0;
        const int32_t kj = k[j];
        for (int i = 0; i < len; ++i) acc[i] += kj * int32_t(in[i]);
      }
      for (int i = 0; i < len; ++i) {
        const int32_t v = acc[i] >> t.shift;
        out[c0 + i] = uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
}

void pass_vertical(const uint8_t* src, int row_offset, int row_bytes, const ResampleTaps& t,
                   uint8_t* dst) {
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / row_bytes);
  parallel_for(t.out_size, grain, [&](int64_t o0, int64_t o1) {
    vertical_rows(src, row_offset, row_bytes, t, int(o0), int(o1), dst);
  });
}

}  // namespace

ResampleTaps compute_resample_taps(int in_size, int out_size, ResampleFilter filter,
                                   ResampleKernel kernel) {
  VLM_CHECK(in_size > 0 && out_size > 0, "resample taps for sizes %d -> %d", in_size, out_size);
  const double support_base = filter == ResampleFilter::kBicubic ? 2.0 : 1.0;
  double (*fn)(double) = filter == ResampleFilter::kBicubic ? bicubic : triangle;

  const double scale = double(in_size) / double(out_size);
  const double fs = std::max(scale, 1.0);
  const double support = support_base * fs;
  const double ss = 1.0 / fs;  // Pillow multiplies by 1/fs; it does not divide by fs

  ResampleTaps t;
  t.in_size = in_size;
  t.out_size = out_size;
  t.stride = int(std::ceil(support)) * 2 + 1;
  t.first.resize(size_t(out_size));
  t.count.resize(size_t(out_size));
  std::vector<double> w(size_t(out_size) * size_t(t.stride), 0.0);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    // (int) truncates toward zero, as in both references.
    const int xmin = std::max(0, int(center - support + 0.5));
    const int xmax = std::min(in_size, int(center + support + 0.5)) - xmin;
    VLM_CHECK(xmax >= 1 && xmax <= t.stride, "resample window %d outside [1, %d]", xmax, t.stride);
    double* wi = &w[size_t(i) * size_t(t.stride)];
    double total = 0.0;
    for (int j = 0; j < xmax; ++j) {
      wi[j] = fn((j + xmin - center + 0.5) * ss);
      total += wi[j];
    }
    if (total != 0.0)
      for (int j = 0; j < xmax; ++j) wi[j] /= total;
    t.first[size_t(i)] = xmin;
    t.count[size_t(i)] = xmax;
  }

  if (kernel == ResampleKernel::kPil) {
    t.shift = 22;  // 32 - 8 - 2: headroom for 8-bit samples and negative lobes
  } else {
    // ATen: the largest precision (< 22) at which the largest weight, padding
    // zeros included, still rounds below 2^15 one bit further up.
    double w_max = w[0];
    for (double v : w) w_max = std::max(w_max, v);
    int p = 0;
    for (; p < 22; ++p)
      if (int(0.5 + w_max * double(1 << (p + 1))) >= (1 << 15)) break;
    t.shift = p;
  }
  VLM_CHECK(t.shift >= 1, "resample precision %d", t.shift);
  t.coeff.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) t.coeff[i] = quantise(w[i], t.shift);
  return t;
}

Expected<Image> resize_image(const Image& src, int out_w, int out_h, ResampleKernel kernel,
                             ResampleFilter filter) {
  if (src.empty() || src.rgb.size() != size_t(src.width) * size_t(src.height) * 3)
    return make_error("resize: source image is empty or its buffer does not match ", src.width,
                      "x", src.height);
  if (out_w <= 0 || out_h <= 0) return make_error("resize: invalid target size ", out_w, "x", out_h);
  if (int64_t(out_w) * out_h > kMaxResizePixels)
    return make_error("resize: target size ", out_w, "x", out_h, " exceeds the limit of ",
                      kMaxResizePixels, " pixels");
  if (out_w == src.width && out_h == src.height) return src;

  const bool need_h = out_w != src.width, need_v = out_h != src.height;
  Image out;
  out.width = out_w;
  out.height = out_h;
  out.rgb.resize(size_t(out_w) * size_t(out_h) * 3);

  if (!need_v) {
    const ResampleTaps th = compute_resample_taps(src.width, out_w, filter, kernel);
    pass_horizontal(src.rgb.data(), src.width, 0, src.height, th, out.rgb.data());
    return out;
  }
  const ResampleTaps tv = compute_resample_taps(src.height, out_h, filter, kernel);
  if (!need_h) {
    pass_vertical(src.rgb.data(), 0, int(src.row_bytes()), tv, out.rgb.data());
    return out;
  }
  // Only the source rows the vertical pass reads need the horizontal pass;
  // the result is the same as running it over every row.
  const int y0 = tv.first.front();
  const int y1 = tv.first.back() + tv.count.back();
  const ResampleTaps th = compute_resample_taps(src.width, out_w, filter, kernel);
  std::vector<uint8_t> tmp(size_t(y1 - y0) * size_t(out_w) * 3);
  pass_horizontal(src.rgb.data(), src.width, y0, y1, th, tmp.data());
  pass_vertical(tmp.data(), y0, out_w * 3, tv, out.rgb.data());
  return out;
}

}  // namespace vlm
