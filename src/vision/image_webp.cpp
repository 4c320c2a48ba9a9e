// WebP via libwebp (lossy and lossless; animated files are refused).
#include <webp/decode.h>

#include <cstring>

#include "vision/image_codecs.h"

namespace vlm::detail {
namespace {

// The EXIF chunk of an extended (VP8X) WebP, if any. libwebp's decoder does
// not expose metadata (that is libwebpdemux), and the RIFF walk is tiny.
std::span<const uint8_t> webp_exif_chunk(std::span<const uint8_t> b) {
  size_t pos = 12;
  while (pos + 8 <= b.size()) {
    const uint8_t* h = b.data() + pos;
    const uint64_t len = uint64_t(h[4]) | uint64_t(h[5]) << 8 | uint64_t(h[6]) << 16 |
                         uint64_t(h[7]) << 24;
    if (len > b.size() - pos - 8) break;
    if (std::memcmp(h, "EXIF", 4) == 0) return b.subspan(pos + 8, size_t(len));
    pos += 8 + size_t(len) + (len & 1);
  }
  return {};
}

}  // namespace

Expected<Image> decode_webp(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  WebPBitstreamFeatures f;
  const VP8StatusCode rc = WebPGetFeatures(bytes.data(), bytes.size(), &f);
  if (rc == VP8_STATUS_NOT_ENOUGH_DATA) return make_error("WebP: file is truncated");
  if (rc != VP8_STATUS_OK) return make_error("WebP: invalid bitstream (status ", int(rc), ")");
  if (f.has_animation) return make_error("WebP: animated images are not supported");
  VLM_TRY_STATUS(check_image_dimensions(f.width, f.height, limits, "WebP"));

  Image img = make_image(f.width, f.height);
  // MODE_RGB on an image with alpha returns the stored colour values, i.e.
  // alpha dropped without compositing, as PIL's RGBA -> RGB.
  if (!WebPDecodeRGBInto(bytes.data(), bytes.size(), img.rgb.data(), img.rgb.size(),
                         int(img.row_bytes())))
    return make_error("WebP: corrupt or truncated image data");

  const auto exif = webp_exif_chunk(bytes);
  const int orientation = exif.empty() ? 1 : exif_orientation(exif);
  if (orientation != 1) return apply_exif_orientation(img, orientation);
  return img;
}

}  // namespace vlm::detail
