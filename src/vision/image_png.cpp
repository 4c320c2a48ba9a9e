// PNG via libpng. libpng reports errors by longjmp-ing to the setjmp point;
// the functions that call setjmp therefore hold no objects with destructors:
// everything that must survive (or be freed after) an error lives in a state
// struct owned by the caller, whose destructor releases the libpng structs.
#include <png.h>

#include <csetjmp>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "vision/image_codecs.h"

namespace vlm::detail {
namespace {

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::span<const uint8_t> src;
  size_t pos = 0;
  char message[200] = {0};
  char warning[200] = {0};  // libpng often explains an error in a preceding warning
  Image image;
  std::vector<png_bytep> rows;
  int orientation = 1;

  ~PngReader() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void png_error_fn(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof(r->message), "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

void png_warning_fn(png_structp, png_const_charp) {}

void png_read_warning_fn(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->warning, sizeof(r->warning), "%s", msg ? msg : "");
}

void png_read_fn(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (n > r->src.size() - r->pos) png_error(png, "file is truncated");
  std::memcpy(out, r->src.data() + r->pos, n);
  r->pos += n;
}

// Returns false after a libpng error (message in r.message) and a Status
// error (in *st) for our own checks.
bool png_decode_inner(PngReader& r, const DecodeLimits& limits, Status* st) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_read_fn(r.png, &r, png_read_fn);
  // libpng's own size limit (1e6 per side) stays as a backstop; our check
  // below gives the clearer message for anything in between.
  png_read_info(r.png, r.info);

  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(r.png, r.info, &w, &h, &depth, &color, &interlace, nullptr, nullptr);
  *st = check_image_dimensions(w, h, limits, "PNG");
  if (!st->ok()) return true;

  if (depth == 16) png_set_strip_16(r.png);  // keeps the high byte, like PIL's RGB;16B
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
  if ((color & PNG_COLOR_MASK_COLOR) == 0) {
    if (depth < 8) png_set_expand_gray_1_2_4_to_8(r.png);
    png_set_gray_to_rgb(r.png);
  }
  // convert("RGB") drops alpha (and palette transparency) without compositing.
  png_set_strip_alpha(r.png);
  png_set_interlace_handling(r.png);
  png_read_update_info(r.png, r.info);
  if (png_get_rowbytes(r.png, r.info) != size_t(w) * 3 || png_get_channels(r.png, r.info) != 3 ||
      png_get_bit_depth(r.png, r.info) != 8) {
    *st = make_error("PNG: unsupported pixel layout (color type ", color, ", depth ", depth, ")");
    return true;
  }

  png_bytep exif = nullptr;
  png_uint_32 exif_len = 0;
  if (png_get_eXIf_1(r.png, r.info, &exif_len, &exif) != 0 && exif && exif_len > 0)
    r.orientation = exif_orientation({exif, exif_len});

  r.image = make_image(int(w), int(h));
  r.rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) r.rows[y] = r.image.row(int(y));
  png_read_image(r.png, r.rows.data());
  return true;
}

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<uint8_t> out;
  char message[200] = {0};

  ~PngWriter() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

void png_write_error_fn(png_structp png, png_const_charp msg) {
  auto* w = static_cast<PngWriter*>(png_get_error_ptr(png));
  std::snprintf(w->message, sizeof(w->message), "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

void png_write_fn(png_structp png, png_bytep data, png_size_t n) {
  auto* w = static_cast<PngWriter*>(png_get_io_ptr(png));
  w->out.insert(w->out.end(), data, data + n);
}

void png_flush_fn(png_structp) {}

bool png_encode_inner(PngWriter& w, const Image& img) {
  if (setjmp(png_jmpbuf(w.png))) return false;
  png_set_write_fn(w.png, &w, png_write_fn, png_flush_fn);
  png_set_IHDR(w.png, w.info, png_uint_32(img.width), png_uint_32(img.height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w.png, w.info);
  for (int y = 0; y < img.height; ++y)
    png_write_row(w.png, const_cast<png_bytep>(img.row(y)));  // libpng's API is not const-correct
  png_write_end(w.png, nullptr);
  return true;
}

}  // namespace

Expected<Image> decode_png(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  PngReader r;
  r.src = bytes;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_error_fn, png_read_warning_fn);
  if (!r.png) return make_error("PNG: cannot create decoder");
  r.info = png_create_info_struct(r.png);
  if (!r.info) return make_error("PNG: cannot create decoder");
  Status st;
  if (!png_decode_inner(r, limits, &st)) {
    if (r.warning[0]) return make_error("PNG: ", r.message, " (", r.warning, ")");
    return make_error("PNG: ", r.message);
  }
  if (!st.ok()) return st.error();
  if (r.orientation != 1) return apply_exif_orientation(r.image, r.orientation);
  return std::move(r.image);
}

}  // namespace vlm::detail

namespace vlm {

Expected<std::vector<uint8_t>> encode_png(const Image& img) {
  if (img.empty() || img.rgb.size() != size_t(img.width) * size_t(img.height) * 3)
    return make_error("encode_png: image is empty or its buffer does not match ", img.width, "x",
                      img.height);
  detail::PngWriter w;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, detail::png_write_error_fn,
                                  detail::png_warning_fn);
  if (!w.png) return make_error("PNG: cannot create encoder");
  w.info = png_create_info_struct(w.png);
  if (!w.info) return make_error("PNG: cannot create encoder");
  if (!detail::png_encode_inner(w, img)) return make_error("PNG encode: ", w.message);
  return std::move(w.out);
}

Status save_png(const std::string& path, const Image& img) {
  VLM_ASSIGN_OR_RETURN(auto bytes, encode_png(img));
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return make_error("cannot create '", path, "': ", std::strerror(errno));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) return make_error("cannot write '", path, "': ", std::strerror(errno));
  return Status::Ok();
}

}  // namespace vlm
