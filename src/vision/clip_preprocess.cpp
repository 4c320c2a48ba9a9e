#include "vision/clip_preprocess.h"

#include <nlohmann/json.hpp>

#include "core/mmap.h"

namespace vlm {
namespace {

using nlohmann::json;

Status read_floats3(const json& j, const char* key, std::array<float, 3>* out) {
  if (!j.contains(key)) return Status::Ok();
  const json& v = j[key];
  if (v.is_number()) {
    out->fill(v.get<float>());
    return Status::Ok();
  }
  if (!v.is_array() || v.size() != 3) return make_error("preprocessor_config.json: '", key, "' must be 3 numbers");
  for (size_t i = 0; i < 3; ++i) {
    if (!v[i].is_number()) return make_error("preprocessor_config.json: '", key, "' must be 3 numbers");
    (*out)[i] = v[i].get<float>();
  }
  return Status::Ok();
}

bool read_bool(const json& j, const char* key, bool dflt) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : dflt;
}

// Sides are bounded so that a hostile config cannot ask for a huge tensor.
constexpr int kMaxSide = 8192;

}  // namespace

Expected<ClipImageConfig> parse_clip_image_config(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error("preprocessor_config.json: invalid JSON");
  ClipImageConfig c;
  c.do_resize = read_bool(j, "do_resize", true);
  c.do_center_crop = read_bool(j, "do_center_crop", false);
  c.do_rescale = read_bool(j, "do_rescale", true);
  c.do_normalize = read_bool(j, "do_normalize", true);
  c.do_pad_square = read_bool(j, "do_pad", false);
  if (j.contains("rescale_factor") && j["rescale_factor"].is_number()) c.rescale_factor = j["rescale_factor"].get<double>();
  VLM_TRY_STATUS(read_floats3(j, "image_mean", &c.mean));
  VLM_TRY_STATUS(read_floats3(j, "image_std", &c.std));
  if (j.contains("resample") && j["resample"].is_number_integer()) {
    const int r = j["resample"].get<int>();
    if (r == 2) c.filter = ResampleFilter::kBilinear;
    else if (r == 3) c.filter = ResampleFilter::kBicubic;
    else return make_error("preprocessor_config.json: resample ", r, " is not supported (2 bilinear, 3 bicubic)");
  }
  auto side = [](const json& v, const char* what) -> Expected<int> {
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxSide)
      return make_error("preprocessor_config.json: ", what, " must be an integer in [1, ", kMaxSide, "]");
    return v.get<int>();
  };
  if (j.contains("size")) {
    const json& s = j["size"];
    if (s.is_number_integer()) {
      VLM_ASSIGN_OR_RETURN(c.shortest_edge, side(s, "size"));
    } else if (s.is_object() && s.contains("shortest_edge")) {
      VLM_ASSIGN_OR_RETURN(c.shortest_edge, side(s["shortest_edge"], "size.shortest_edge"));
    } else if (s.is_object() && s.contains("height") && s.contains("width")) {
      VLM_ASSIGN_OR_RETURN(c.height, side(s["height"], "size.height"));
      VLM_ASSIGN_OR_RETURN(c.width, side(s["width"], "size.width"));
    } else {
      return make_error("preprocessor_config.json: unsupported 'size'");
    }
  }
  if (j.contains("crop_size")) {
    const json& s = j["crop_size"];
    if (s.is_number_integer()) {
      VLM_ASSIGN_OR_RETURN(c.crop_height, side(s, "crop_size"));
      c.crop_width = c.crop_height;
    } else if (s.is_object() && s.contains("height") && s.contains("width")) {
      VLM_ASSIGN_OR_RETURN(c.crop_height, side(s["height"], "crop_size.height"));
      VLM_ASSIGN_OR_RETURN(c.crop_width, side(s["width"], "crop_size.width"));
    }
  } else if (!c.fixed_size()) {
    c.crop_height = c.crop_width = c.shortest_edge;
  }
  if (!c.fixed_size() && !c.do_center_crop) {
    // Without a crop the output size would depend on the image; CLIP-style models need a square.
    c.crop_height = c.crop_width = c.shortest_edge;
    c.do_center_crop = true;
  }
  return c;
}

Expected<ClipImageConfig> load_clip_image_config(const std::string& dir) {
  VLM_ASSIGN_OR_RETURN(std::string text, read_file(dir + "/preprocessor_config.json", 1 << 20));
  return parse_clip_image_config(text);
}

void clip_resize_size(int width, int height, int shortest_edge, int* out_w, int* out_h) {
  const bool wide = width >= height;
  const int shrt = wide ? height : width, lng = wide ? width : height;
  const int new_long = int(double(shortest_edge) * double(lng) / double(shrt));
  *out_w = wide ? new_long : shortest_edge;
  *out_h = wide ? shortest_edge : new_long;
}

Expected<std::vector<float>> preprocess_clip_images(const std::vector<Image>& images, const ClipImageConfig& cfg,
                                                    ResampleKernel kernel) {
  const int OH = cfg.out_height(), OW = cfg.out_width();
  // Per-channel lookup tables: the exact float32 arithmetic of the two HF processor flavours.
  std::array<std::array<float, 256>, 3> lut;
  const bool fused = kernel == ResampleKernel::kTorchvision;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float mean = cfg.mean[size_t(c)], sd = cfg.std[size_t(c)];
      float y;
      if (fused && cfg.do_rescale && cfg.do_normalize) {
        const float scale = float(1.0 / cfg.rescale_factor);
        y = (float(v) - mean * scale) / (sd * scale);
      } else {
        float x = cfg.do_rescale ? float(double(v) * cfg.rescale_factor) : float(v);
        y = cfg.do_normalize ? (x - mean) / sd : x;
      }
      lut[size_t(c)][size_t(v)] = y;
    }
  std::vector<float> out;
  out.reserve(images.size() * 3 * size_t(OH) * size_t(OW));
  for (const Image& src : images) {
    if (src.empty()) return make_error("empty image");
    const Image* cur = &src;
    Image padded, resized;
    if (cfg.do_pad_square && src.width != src.height) {
      // LLaVA: centre the image on a square of the mean colour.
      const int S = std::max(src.width, src.height);
      padded.width = padded.height = S;
      padded.rgb.resize(size_t(S) * size_t(S) * 3);
      for (size_t i = 0; i < padded.rgb.size(); ++i) padded.rgb[i] = uint8_t(int(255 * cfg.mean[i % 3]));
      const int ox = (S - src.width) / 2, oy = (S - src.height) / 2;
      for (int y = 0; y < src.height; ++y)
        std::copy_n(src.row(y), src.row_bytes(), padded.row(y + oy) + size_t(ox) * 3);
      cur = &padded;
    }
    if (cfg.do_resize) {
      int rw = OW, rh = OH;
      if (!cfg.fixed_size()) clip_resize_size(cur->width, cur->height, cfg.shortest_edge, &rw, &rh);
      if (rw != cur->width || rh != cur->height) {
        VLM_ASSIGN_OR_RETURN(resized, resize_image(*cur, rw, rh, kernel, cfg.filter));
        cur = &resized;
      }
    }
    // Centre crop (floor offsets); HF zero-pads an image smaller than the crop before normalising.
    const int top = (cur->height - OH) / 2 - ((cur->height - OH) < 0 && (cur->height - OH) % 2 ? 1 : 0);
    const int left = (cur->width - OW) / 2 - ((cur->width - OW) < 0 && (cur->width - OW) % 2 ? 1 : 0);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < OH; ++y)
        for (int x = 0; x < OW; ++x) {
          const int sy = y + top, sx = x + left;
          const bool inside = sy >= 0 && sy < cur->height && sx >= 0 && sx < cur->width;
          out.push_back(lut[size_t(c)][inside ? cur->row(sy)[size_t(sx) * 3 + size_t(c)] : 0]);
        }
  }
  return out;
}

}  // namespace vlm
