#include "vision/qwen_preprocess.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vlm {
namespace {

using json = nlohmann::json;

Status read_int(const json& j, const char* key, int64_t lo, int64_t hi, int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer() && !(it->is_number_float() && std::floor(it->get<double>()) ==
                                                                 it->get<double>()))
    return make_error("preprocessor config: '", key, "' must be an integer");
  const double v = it->get<double>();
  if (v < double(lo) || v > double(hi))
    return make_error("preprocessor config: '", key, "' = ", v, " is outside [", lo, ", ", hi, "]");
  *out = it->is_number_integer() ? it->get<int64_t>() : int64_t(v);
  return Status::Ok();
}

template <class T>
Status read_int_as(const json& j, const char* key, int64_t lo, int64_t hi, T* out) {
  int64_t v = int64_t(*out);
  VLM_TRY_STATUS(read_int(j, key, lo, hi, &v));
  *out = T(v);
  return Status::Ok();
}

Status read_bool(const json& j, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return make_error("preprocessor config: '", key, "' must be a boolean");
  *out = it->get<bool>();
  return Status::Ok();
}

Status read_double(const json& j, const char* key, double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number()) return make_error("preprocessor config: '", key, "' must be a number");
  *out = it->get<double>();
  return Status::Ok();
}

Status read_triple(const json& j, const char* key, std::array<float, 3>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (it->is_number()) {  // HF accepts a scalar and broadcasts it
    out->fill(it->get<float>());
    return Status::Ok();
  }
  if (!it->is_array() || it->size() != 3)
    return make_error("preprocessor config: '", key, "' must be a list of 3 numbers");
  for (size_t c = 0; c < 3; ++c) {
    if (!(*it)[c].is_number())
      return make_error("preprocessor config: '", key, "' must be a list of 3 numbers");
    // HF hands these to torch/numpy as float32, so that is the precision that counts.
    (*out)[c] = (*it)[c].get<float>();
  }
  return Status::Ok();
}

Expected<std::string> read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error("cannot open '", path, "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// Python's round() on floats: half to even (the default FE_TONEAREST mode).
double py_round(double x) { return std::nearbyint(x); }

Status check_aspect(int64_t h, int64_t w) {
  const double r = double(std::max(h, w)) / double(std::min(h, w));
  if (r > 200.0)
    return make_error("absolute aspect ratio must be smaller than 200, got ", r, " (", h, "x", w,
                      ")");
  return Status::Ok();
}

Status check_result(ImageSize s, int64_t h, int64_t w) {
  if (s.height <= 0 || s.width <= 0)
    return make_error("smart_resize: ", h, "x", w, " maps to an empty size ", s.height, "x",
                      s.width, " (min_pixels too small?)");
  if (s.height * s.width > kMaxQwenPixels)
    return make_error("smart_resize: ", h, "x", w, " would be resized to ", s.height, "x",
                      s.width, " pixels, more than the limit of ", kMaxQwenPixels,
                      "; lower max_pixels");
  return Status::Ok();
}

Status check_inputs(int64_t h, int64_t w, int64_t factor, int64_t min_pixels, int64_t max_pixels) {
  // Sides fit in int32 so that every product below is exact in double.
  constexpr int64_t kMaxSide = int64_t(1) << 31;
  if (h <= 0 || w <= 0 || h > kMaxSide || w > kMaxSide)
    return make_error("smart_resize: invalid image size ", h, "x", w);
  if (factor <= 0 || factor > 4096) return make_error("smart_resize: invalid factor ", factor);
  if (min_pixels < 0 || max_pixels <= 0 || max_pixels > (int64_t(1) << 52))
    return make_error("smart_resize: invalid pixel bounds [", min_pixels, ", ", max_pixels, "]");
  return Status::Ok();
}

struct Lut {
  std::array<std::array<float, 256>, 3> v;
};

// The exact float32 arithmetic of the two HF processor flavours (spec §4).
Lut make_lut(const QwenImageConfig& cfg, NormalizeFormula formula) {
  Lut lut;
  for (int c = 0; c < 3; ++c) {
    const float mean = cfg.image_mean[size_t(c)], std_ = cfg.image_std[size_t(c)];
    for (int v = 0; v < 256; ++v) {
      float y;
      if (formula == NormalizeFormula::kFused && cfg.do_rescale && cfg.do_normalize) {
        const float scale = float(1.0 / cfg.rescale_factor);
        y = (float(v) - mean * scale) / (std_ * scale);
      } else {
        float x = float(v);
        if (cfg.do_rescale)
          x = formula == NormalizeFormula::kFused ? float(v) * float(cfg.rescale_factor)
                                                  : float(double(v) * cfg.rescale_factor);
        y = cfg.do_normalize ? (x - mean) / std_ : x;
      }
      lut.v[size_t(c)][size_t(v)] = y;
    }
  }
  return lut;
}

NormalizeFormula resolve(NormalizeFormula f, ResampleKernel k) {
  if (f != NormalizeFormula::kAuto) return f;
  return k == ResampleKernel::kTorchvision ? NormalizeFormula::kFused
                                           : NormalizeFormula::kRescaleThenNormalize;
}

Status check_config(const QwenImageConfig& c) {
  if (c.patch_size < 1 || c.patch_size > 1024 || c.merge_size < 1 || c.merge_size > 64 ||
      c.temporal_patch_size < 1 || c.temporal_patch_size > 64)
    return make_error("Qwen image config: invalid patch_size/merge_size/temporal_patch_size (",
                      c.patch_size, "/", c.merge_size, "/", c.temporal_patch_size, ")");
  for (float s : c.image_std)
    if (!(s != 0.0f) || !std::isfinite(s)) return make_error("Qwen image config: image_std has a zero");
  if (!(c.rescale_factor > 0.0) || !std::isfinite(c.rescale_factor))
    return make_error("Qwen image config: invalid rescale_factor ", c.rescale_factor);
  return Status::Ok();
}

struct Bounds {
  int64_t min_pixels, max_pixels;
};

Bounds bounds_for(const QwenImageConfig& cfg, const QwenPreprocessOptions& opt) {
  return {opt.min_pixels.value_or(cfg.min_pixels), opt.max_pixels.value_or(cfg.max_pixels)};
}

// Size an image or frame must be brought to.
Expected<ImageSize> target_size(const Image& img, const QwenImageConfig& cfg,
                                const QwenPreprocessOptions& opt) {
  if (!cfg.do_resize) {
    const ImageSize s{img.height, img.width};
    VLM_TRY_STATUS(check_result(s, img.height, img.width));
    return s;
  }
  const ImageSize base = opt.resized_size.value_or(ImageSize{img.height, img.width});
  const Bounds b = bounds_for(cfg, opt);
  return smart_resize(base.height, base.width, cfg.factor(), b.min_pixels, b.max_pixels,
                      opt.rule);
}

Expected<Image> resize_to(const Image& img, ImageSize s, const QwenImageConfig& cfg,
                          ResampleKernel kernel) {
  if (s.height == img.height && s.width == img.width) return img;
  return resize_image(img, int(s.width), int(s.height), kernel, cfg.filter);
}

}  // namespace

Expected<QwenImageConfig> parse_qwen_image_config(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return make_error("preprocessor config: not a JSON object");
  QwenImageConfig c;
  constexpr int64_t kBig = int64_t(1) << 52;
  VLM_TRY_STATUS(read_int_as(j, "patch_size", 1, 1024, &c.patch_size));
  VLM_TRY_STATUS(read_int_as(j, "temporal_patch_size", 1, 64, &c.temporal_patch_size));
  VLM_TRY_STATUS(read_int_as(j, "merge_size", 1, 64, &c.merge_size));
  if (auto it = j.find("size"); it != j.end() && it->is_object()) {
    VLM_TRY_STATUS(read_int(*it, "shortest_edge", 0, kBig, &c.min_pixels));
    VLM_TRY_STATUS(read_int(*it, "longest_edge", 1, kBig, &c.max_pixels));
  }
  VLM_TRY_STATUS(read_int(j, "min_pixels", 0, kBig, &c.min_pixels));
  VLM_TRY_STATUS(read_int(j, "max_pixels", 1, kBig, &c.max_pixels));
  VLM_TRY_STATUS(read_triple(j, "image_mean", &c.image_mean));
  VLM_TRY_STATUS(read_triple(j, "image_std", &c.image_std));
  VLM_TRY_STATUS(read_double(j, "rescale_factor", &c.rescale_factor));
  VLM_TRY_STATUS(read_bool(j, "do_resize", &c.do_resize));
  VLM_TRY_STATUS(read_bool(j, "do_rescale", &c.do_rescale));
  VLM_TRY_STATUS(read_bool(j, "do_normalize", &c.do_normalize));
  int64_t resample = 3;
  VLM_TRY_STATUS(read_int(j, "resample", 0, 5, &resample));
  if (resample == 2) c.filter = ResampleFilter::kBilinear;
  else if (resample == 3) c.filter = ResampleFilter::kBicubic;
  else return make_error("preprocessor config: resample = ", resample,
                         " is not supported (2 bilinear and 3 bicubic are)");
  VLM_TRY_STATUS(read_double(j, "fps", &c.fps));
  VLM_TRY_STATUS(read_int_as(j, "min_frames", 1, 1 << 20, &c.min_frames));
  VLM_TRY_STATUS(read_int_as(j, "max_frames", 1, 1 << 20, &c.max_frames));
  VLM_TRY_STATUS(read_bool(j, "do_sample_frames", &c.do_sample_frames));
  auto names = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  c.from_video_config = !names("video_processor_type").empty();
  if (names("video_processor_type").find("Qwen3VL") != std::string::npos ||
      names("processor_class").find("Qwen3VL") != std::string::npos)
    c.video_resize = VideoResizeMode::kClip3D;
  VLM_TRY_STATUS(check_config(c));
  return c;
}

Expected<QwenImageConfig> load_qwen_image_config(const std::string& model_dir) {
  const std::string path = model_dir + "/preprocessor_config.json";
  VLM_ASSIGN_OR_RETURN(auto text, read_text_file(path));
  auto cfg = parse_qwen_image_config(text);
  if (!cfg.ok()) return make_error(path, ": ", cfg.error().message);
  return cfg;
}

Expected<QwenImageConfig> load_qwen_video_config(const std::string& model_dir) {
  const std::string video = model_dir + "/video_preprocessor_config.json";
  if (!file_exists(video)) return load_qwen_image_config(model_dir);
  VLM_ASSIGN_OR_RETURN(auto text, read_text_file(video));
  auto cfg = parse_qwen_image_config(text);
  if (!cfg.ok()) return make_error(video, ": ", cfg.error().message);
  cfg->from_video_config = true;
  return cfg;
}

Expected<ImageSize> smart_resize(int64_t h, int64_t w, int64_t factor, int64_t min_pixels,
                                 int64_t max_pixels, SmartResizeRule rule) {
  VLM_TRY_STATUS(check_inputs(h, w, factor, min_pixels, max_pixels));
  if (rule == SmartResizeRule::kHf45 && (h < factor || w < factor))
    return make_error("height:", h, " or width:", w, " must be larger than factor:", factor);
  if (rule == SmartResizeRule::kQwenVlUtils && max_pixels < min_pixels)
    return make_error("smart_resize: max_pixels ", max_pixels, " < min_pixels ", min_pixels);
  VLM_TRY_STATUS(check_aspect(h, w));
  const double F = double(factor), hd = double(h), wd = double(w);
  int64_t H = int64_t(py_round(hd / F)) * factor;
  int64_t W = int64_t(py_round(wd / F)) * factor;
  if (rule == SmartResizeRule::kQwenVlUtils) {
    H = std::max(factor, H);
    W = std::max(factor, W);
  }
  if (H * W > max_pixels) {
    const double beta = std::sqrt(hd * wd / double(max_pixels));  // original h, w
    H = int64_t(std::floor(hd / beta / F)) * factor;
    W = int64_t(std::floor(wd / beta / F)) * factor;
    if (rule == SmartResizeRule::kHfV5) {
      H = std::max(factor, H);
      W = std::max(factor, W);
    }
  } else if (H * W < min_pixels) {
    const double beta = std::sqrt(double(min_pixels) / (hd * wd));
    H = int64_t(std::ceil(hd * beta / F)) * factor;
    W = int64_t(std::ceil(wd * beta / F)) * factor;
  }
  const ImageSize s{H, W};
  VLM_TRY_STATUS(check_result(s, h, w));
  return s;
}

Expected<ImageSize> smart_resize_clip(int64_t n_frames, int64_t h, int64_t w,
                                      int64_t temporal_factor, int64_t factor, int64_t min_pixels,
                                      int64_t max_pixels) {
  VLM_TRY_STATUS(check_inputs(h, w, factor, min_pixels, max_pixels));
  if (temporal_factor < 1 || n_frames < temporal_factor || n_frames > (int64_t(1) << 20))
    return make_error("smart_resize: t:", n_frames, " must be larger than temporal_factor:",
                      temporal_factor);
  const double F = double(factor);
  double hd = double(h), wd = double(w);
  if (h < factor || w < factor) {  // HF scales tiny clips up to the factor first
    const double s = std::max(F / hd, F / wd);
    hd = std::trunc(hd * s);
    wd = std::trunc(wd * s);
  }
  VLM_TRY_STATUS(check_aspect(int64_t(hd), int64_t(wd)));
  const double n = double(n_frames);
  int64_t H = int64_t(py_round(hd / F)) * factor;
  int64_t W = int64_t(py_round(wd / F)) * factor;
  const int64_t T = int64_t(py_round(n / double(temporal_factor))) * temporal_factor;
  if (T * H * W > max_pixels) {
    const double beta = std::sqrt(n * hd * wd / double(max_pixels));
    H = std::max(factor, int64_t(std::floor(hd / beta / F)) * factor);
    W = std::max(factor, int64_t(std::floor(wd / beta / F)) * factor);
  } else if (T * H * W < min_pixels) {
    const double beta = std::sqrt(double(min_pixels) / (n * hd * wd));
    H = int64_t(std::ceil(hd * beta / F)) * factor;
    W = int64_t(std::ceil(wd * beta / F)) * factor;
  }
  const ImageSize s{H, W};
  VLM_TRY_STATUS(check_result(s, h, w));
  return s;
}

Status append_qwen_patches(const std::vector<const Image*>& frames, const QwenImageConfig& cfg,
                           NormalizeFormula formula, VisionBatch* batch) {
  VLM_TRY_STATUS(check_config(cfg));
  if (frames.empty()) return make_error("Qwen preprocessing: no frames");
  const int P = cfg.patch_size, m = cfg.merge_size, Tp = cfg.temporal_patch_size;
  const int H = frames[0]->height, W = frames[0]->width;
  for (const Image* f : frames)
    if (f->height != H || f->width != W || f->rgb.size() != size_t(H) * size_t(W) * 3)
      return make_error("Qwen preprocessing: frames differ in size");
  if (H % (P * m) != 0 || W % (P * m) != 0)
    return make_error("Qwen preprocessing: size ", H, "x", W, " is not a multiple of ", P * m);
  const int64_t cols = int64_t(3) * Tp * P * P;
  if (batch->cols != 0 && batch->cols != cols)
    return make_error("Qwen preprocessing: row length ", cols, " differs from the batch's ",
                      batch->cols);
  // Pad by repeating the last frame (an image is a clip of one frame).
  std::vector<const Image*> clip = frames;
  while (clip.size() % size_t(Tp) != 0) clip.push_back(clip.back());
  const int64_t gt = int64_t(clip.size()) / Tp, gh = H / P, gw = W / P;
  const int64_t rows = gt * gh * gw;
  const Lut lut = make_lut(cfg, formula == NormalizeFormula::kAuto
                                    ? NormalizeFormula::kRescaleThenNormalize
                                    : formula);

  const size_t start = batch->pixel_values.size();
  batch->pixel_values.resize(start + size_t(rows) * size_t(cols));
  float* out = batch->pixel_values.data() + start;
  // row = ((tg*(gh/m) + bh)*(gw/m) + bw)*m*m + i*m + j, col = ((c*Tp + tt)*P + py)*P + px
  for (int64_t tg = 0; tg < gt; ++tg)
    for (int64_t bh = 0; bh < gh / m; ++bh)
      for (int64_t bw = 0; bw < gw / m; ++bw)
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < m; ++j) {
            const int64_t y0 = (bh * m + i) * P, x0 = (bw * m + j) * P;
            for (int c = 0; c < 3; ++c) {
              const float* l = lut.v[size_t(c)].data();
              for (int tt = 0; tt < Tp; ++tt) {
                const Image& f = *clip[size_t(tg * Tp + tt)];
                for (int py = 0; py < P; ++py) {
                  const uint8_t* src = f.row(int(y0 + py)) + x0 * 3 + c;
                  for (int px = 0; px < P; ++px) *out++ = l[src[px * 3]];
                }
              }
            }
          }
  batch->rows += rows;
  batch->cols = cols;
  batch->grid_thw.push_back({gt, gh, gw});
  return Status::Ok();
}

Expected<VisionBatch> preprocess_qwen_images(const std::vector<Image>& images,
                                             const QwenImageConfig& cfg,
                                             const QwenPreprocessOptions& opt) {
  VLM_TRY_STATUS(check_config(cfg));
  const NormalizeFormula formula = resolve(opt.normalize, opt.resampler);
  VisionBatch batch;
  for (size_t i = 0; i < images.size(); ++i) {
    const Image& img = images[i];
    if (img.empty()) return make_error("image ", i, " is empty");
    auto size = target_size(img, cfg, opt);
    if (!size.ok()) return make_error("image ", i, ": ", size.error().message);
    VLM_ASSIGN_OR_RETURN(Image resized, resize_to(img, *size, cfg, opt.resampler));
    Status st = append_qwen_patches({&resized}, cfg, formula, &batch);
    if (!st.ok()) return make_error("image ", i, ": ", st.error().message);
  }
  return batch;
}

Expected<VisionBatch> preprocess_qwen_video(const std::vector<Image>& frames,
                                            const QwenImageConfig& cfg,
                                            const QwenPreprocessOptions& opt) {
  VLM_TRY_STATUS(check_config(cfg));
  if (frames.empty()) return make_error("video has no frames");
  for (size_t i = 0; i < frames.size(); ++i)
    if (frames[i].empty()) return make_error("video frame ", i, " is empty");
  const Image& first = frames[0];
  ImageSize size{first.height, first.width};
  if (cfg.do_resize) {
    if (cfg.video_resize == VideoResizeMode::kClip3D) {
      const Bounds b = bounds_for(cfg, opt);
      const ImageSize base = opt.resized_size.value_or(size);
      VLM_ASSIGN_OR_RETURN(size, smart_resize_clip(int64_t(frames.size()), base.height,
                                                   base.width, cfg.temporal_patch_size,
                                                   cfg.factor(), b.min_pixels, b.max_pixels));
    } else {
      VLM_ASSIGN_OR_RETURN(size, target_size(first, cfg, opt));
    }
  }
  std::vector<Image> resized;
  resized.reserve(frames.size());
  for (const Image& f : frames) {
    VLM_ASSIGN_OR_RETURN(Image r, resize_to(f, size, cfg, opt.resampler));
    resized.push_back(std::move(r));
  }
  std::vector<const Image*> ptrs;
  for (const Image& r : resized) ptrs.push_back(&r);
  VisionBatch batch;
  VLM_TRY_STATUS(append_qwen_patches(ptrs, cfg, resolve(opt.normalize, opt.resampler), &batch));
  return batch;
}

}  // namespace vlm
