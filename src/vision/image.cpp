#include "vision/image.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "vision/image_codecs.h"

namespace vlm {
namespace detail {

Status check_image_dimensions(int64_t width, int64_t height, const DecodeLimits& limits,
                              const char* format) {
  if (width <= 0 || height <= 0)
    return make_error(format, ": invalid image size ", width, "x", height);
  if (width > limits.max_side || height > limits.max_side)
    return make_error(format, ": image of ", width, "x", height,
                      " pixels exceeds the decode limit of ", limits.max_side, " pixels per side");
  // Both factors are <= max_side (<= 2^31), so the product cannot overflow.
  if (width * height > limits.max_pixels)
    return make_error(format, ": image of ", width, "x", height, " = ", width * height,
                      " pixels exceeds the decode limit of ", limits.max_pixels, " pixels");
  return Status::Ok();
}

Image make_image(int width, int height) {
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(size_t(width) * size_t(height) * 3);
  return img;
}

}  // namespace detail

ImageFormat sniff_image_format(std::span<const uint8_t> b) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() >= 8 && std::memcmp(b.data(), kPng, 8) == 0) return ImageFormat::kPng;
  if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return ImageFormat::kJpeg;
  if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 &&
      std::memcmp(b.data() + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  return ImageFormat::kUnknown;
}

Expected<Image> decode_image(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  switch (sniff_image_format(bytes)) {
    case ImageFormat::kPng: return detail::decode_png(bytes, limits);
    case ImageFormat::kJpeg: return detail::decode_jpeg(bytes, limits);
    case ImageFormat::kWebp: return detail::decode_webp(bytes, limits);
    case ImageFormat::kUnknown: break;
  }
  if (bytes.empty()) return make_error("cannot decode image: no data");
  return make_error("cannot decode image: unrecognised format (PNG, JPEG and WebP are supported)");
}

Expected<Image> load_image(const std::string& path, const DecodeLimits& limits) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return make_error("cannot open image '", path, "': ", std::strerror(errno));
  if (std::fseek(f.get(), 0, SEEK_END) != 0)
    return make_error("cannot read image '", path, "': not a seekable file");
  long size = std::ftell(f.get());
  if (size < 0) return make_error("cannot read image '", path, "': ", std::strerror(errno));
  if (size > limits.max_file_bytes)
    return make_error("image file '", path, "' has ", size, " bytes, more than the limit of ",
                      limits.max_file_bytes);
  std::rewind(f.get());
  std::vector<uint8_t> data(static_cast<size_t>(size));
  if (size > 0 && std::fread(data.data(), 1, data.size(), f.get()) != data.size())
    return make_error("cannot read image '", path, "': short read");
  auto img = decode_image(data, limits);
  if (!img.ok()) return make_error(path, ": ", img.error().message);
  return img;
}

Image apply_exif_orientation(const Image& in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const int W = in.width, H = in.height;
  const bool swap = orientation >= 5;
  Image out;
  out.width = swap ? H : W;
  out.height = swap ? W : H;
  out.rgb.resize(in.rgb.size());
  // For each output pixel, the source pixel of PIL's transpose method:
  // 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE,
  // 6 ROTATE_270 (clockwise), 7 TRANSVERSE, 8 ROTATE_90 (counter-clockwise).
  for (int y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = W - 1 - x; sy = y; break;
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;
        case 4: sx = x; sy = H - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = H - 1 - x; break;
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;
        case 8: sx = W - 1 - y; sy = x; break;
      }
      std::memcpy(dst + size_t(x) * 3, in.row(sy) + size_t(sx) * 3, 3);
    }
  }
  return out;
}

int exif_orientation(std::span<const uint8_t> b) {
  if (b.size() >= 6 && std::memcmp(b.data(), "Exif\0\0", 6) == 0) b = b.subspan(6);
  if (b.size() < 8) return 1;
  bool le;
  if (b[0] == 'I' && b[1] == 'I') le = true;
  else if (b[0] == 'M' && b[1] == 'M') le = false;
  else return 1;
  auto u16 = [&](size_t o) -> uint32_t {
    return le ? uint32_t(b[o]) | uint32_t(b[o + 1]) << 8 : uint32_t(b[o]) << 8 | uint32_t(b[o + 1]);
  };
  auto u32 = [&](size_t o) -> uint32_t {
    return le ? u16(o) | u16(o + 2) << 16 : u16(o) << 16 | u16(o + 2);
  };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd > b.size() || b.size() - ifd < 2) return 1;
  const size_t n = u16(ifd);
  for (size_t i = 0; i < n; ++i) {
    const size_t e = ifd + 2 + i * 12;
    if (e + 12 > b.size()) return 1;
    if (u16(e) != 0x0112) continue;
    const uint32_t type = u16(e + 2);
    uint32_t v = 0;
    if (type == 3) v = u16(e + 8);        // SHORT, stored left-justified in the value field
    else if (type == 4) v = u32(e + 8);   // LONG, written by a few tools
    else return 1;
    return (v >= 1 && v <= 8) ? int(v) : 1;
  }
  return 1;
}

}  // namespace vlm
