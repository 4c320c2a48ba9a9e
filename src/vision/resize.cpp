#include "vision/resize.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

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

// Horizontal pass over rows [y0, y1) of `src` into `dst` (y1 - y0 rows).
void pass_horizontal(const uint8_t* src, int src_w, int y0, int y1, const ResampleTaps& t,
                     uint8_t* dst) {
  const int out_w = t.out_size;
  const int32_t bias = int32_t(1) << (t.shift - 1);
  for (int y = y0; y < y1; ++y) {
    const uint8_t* in = src + size_t(y) * size_t(src_w) * 3;
    uint8_t* out = dst + size_t(y - y0) * size_t(out_w) * 3;
    for (int x = 0; x < out_w; ++x) {
      const int32_t* k = &t.coeff[size_t(x) * size_t(t.stride)];
      const uint8_t* p = in + size_t(t.first[x]) * 3;
      int32_t r = bias, g = bias, b = bias;
      for (int j = 0, n = t.count[x]; j < n; ++j) {
        r += k[j] * p[3 * j];
        g += k[j] * p[3 * j + 1];
        b += k[j] * p[3 * j + 2];
      }
      out[3 * x] = clamp_u8(r >> t.shift);
      out[3 * x + 1] = clamp_u8(g >> t.shift);
      out[3 * x + 2] = clamp_u8(b >> t.shift);
    }
  }
}

// Vertical pass; `src` row 0 corresponds to input row `row_offset`. Written
// as whole-row multiply-adds so the inner loops are contiguous and vectorise.
void pass_vertical(const uint8_t* src, int row_offset, int row_bytes, const ResampleTaps& t,
                   uint8_t* dst) {
  const int32_t bias = int32_t(1) << (t.shift - 1);
  std::vector<int32_t> acc(static_cast<size_t>(row_bytes));
  for (int o = 0; o < t.out_size; ++o) {
    std::fill(acc.begin(), acc.end(), bias);
    const int32_t* k = &t.coeff[size_t(o) * size_t(t.stride)];
    for (int j = 0, n = t.count[o]; j < n; ++j) {
      const uint8_t* in = src + size_t(t.first[o] - row_offset + j) * size_t(row_bytes);
      const int32_t kj = k[j];
      int32_t* a = acc.data();
      for (int i = 0; i < row_bytes; ++i) a[i] += kj * int32_t(in[i]);
    }
    uint8_t* out = dst + size_t(o) * size_t(row_bytes);
    for (int i = 0; i < row_bytes; ++i) out[i] = clamp_u8(acc[size_t(i)] >> t.shift);
  }
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
