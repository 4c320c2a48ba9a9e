// Image decoding (PNG, JPEG, WebP) to 8-bit RGB, and a small PNG writer.
//
// The decoders reproduce what the Python stacks we compare against see after
// `PIL.Image.open(path)` + `ImageOps.exif_transpose` + `convert("RGB")`:
//  * alpha is dropped, not composited (PIL's RGBA->RGB);
//  * palette images are expanded, transparency ignored;
//  * gray 1/2/4-bit is scaled to 0..255 by bit replication (like PIL's L;1/L;2/L;4);
//  * 16-bit samples keep their high byte (PIL's RGB;16B). For 16-bit *gray*
//    PIL opens mode I;16 and clips to 255 when converting, which turns nearly
//    every pixel white; we deliberately take the high byte instead;
//  * JPEG: libjpeg-turbo with JDCT_ISLOW and fancy upsampling (PIL's
//    settings); CMYK/YCCK are treated as Adobe-inverted CMYK and converted with
//    PIL's integer cmyk2rgb;
//  * the EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) is applied.
//
// Untrusted input: the header's size is checked against DecodeLimits before
// any pixel buffer is allocated; corrupt or truncated data yields an Error.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace vlm {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // interleaved RGB8, row-major, width*height*3 bytes

  bool empty() const { return width <= 0 || height <= 0; }
  size_t row_bytes() const { return size_t(width) * 3; }
  uint8_t* row(int y) { return rgb.data() + size_t(y) * row_bytes(); }
  const uint8_t* row(int y) const { return rgb.data() + size_t(y) * row_bytes(); }
};

// Defaults: max_pixels equals PIL's DecompressionBombError threshold
// (2 * Image.MAX_IMAGE_PIXELS), so anything PIL opens we open too; the RGB
// buffer is then at most ~537 MB. 65535 is the largest side a JPEG can have
// and far beyond any WebP (16383); a PNG claiming more is refused.
struct DecodeLimits {
  int64_t max_pixels = 178956970;
  int max_side = 65535;
  int64_t max_file_bytes = int64_t(1) << 30;  // load_image only
};

enum class ImageFormat { kUnknown, kPng, kJpeg, kWebp };

// Identifies the container from its magic bytes.
ImageFormat sniff_image_format(std::span<const uint8_t> bytes);

Expected<Image> decode_image(std::span<const uint8_t> bytes, const DecodeLimits& limits = {});
Expected<Image> load_image(const std::string& path, const DecodeLimits& limits = {});

// Writes 8-bit RGB, non-interlaced (tests, grounding overlays).
Status save_png(const std::string& path, const Image& image);
// Same, into memory.
Expected<std::vector<uint8_t>> encode_png(const Image& image);

// EXIF orientation (1..8) applied the way PIL's ImageOps.exif_transpose does.
// Values outside 2..8 leave the image unchanged.
Image apply_exif_orientation(const Image& image, int orientation);

// Parses a TIFF-structured EXIF block ("II*\0"/"MM\0*" header, optionally
// preceded by "Exif\0\0") and returns tag 0x0112 of IFD0, or 1 if absent or
// malformed.
int exif_orientation(std::span<const uint8_t> exif);

}  // namespace vlm
