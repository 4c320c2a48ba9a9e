// Decoding: PNG variants written with libpng here, JPEG written with libjpeg
// (plus hand-made EXIF and SOF0 bytes), WebP written with libwebp, and broken
// or hostile inputs that must come back as errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>
#include <zlib.h>

#include <atomic>
#include <csetjmp>
#include <filesystem>

#include "vision/image.h"

// Largest single C++ allocation while tracking is on: shows that a hostile
// header is refused before its pixel buffer is allocated. (The codecs' own
// mallocs are not seen, but every buffer sized by the image is ours.)
namespace {
std::atomic<bool> g_track{false};
std::atomic<size_t> g_largest{0};
}  // namespace

// free() on memory from this operator new is correct: both sides are replaced.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  if (g_track.load(std::memory_order_relaxed) && n > g_largest.load(std::memory_order_relaxed))
    g_largest.store(n, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

using namespace vlm;

namespace {

struct AllocTracker {
  AllocTracker() {
    g_largest = 0;
    g_track = true;
  }
  ~AllocTracker() { g_track = false; }
  size_t largest() const { return g_largest.load(); }
};

Image make_pattern(int w, int h, uint32_t seed = 1) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  std::mt19937 rng(seed);
  for (auto& v : img.rgb) v = uint8_t(rng());
  return img;
}

// Four flat quadrants (TL red, TR green, BL blue, BR white) so that every
// orientation is recognisable even after lossy JPEG coding.
Image make_quadrants(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.row(y) + x * 3;
      const bool right = x >= w / 2, bottom = y >= h / 2;
      const uint8_t c[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
      std::memcpy(p, c[(bottom ? 2 : 0) + (right ? 1 : 0)], 3);
    }
  return img;
}

const uint8_t* px(const Image& img, int x, int y) { return img.row(y) + x * 3; }

// ------------------------------------------------------------------ PNG writer

struct PngSpec {
  int width = 0, height = 0, color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  bool interlace = false;
  std::vector<std::vector<uint8_t>> rows;  // packed as stored in the file (big-endian 16-bit)
  std::vector<png_color> palette;
  std::vector<uint8_t> trans;
  std::vector<uint8_t> exif;
};

void mem_write(png_structp png, png_bytep d, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), d, d + n);
}
void mem_flush(png_structp) {}

// libpng's default error handler longjmps here; the frame has only PODs.
bool write_png_inner(png_structp png, png_infop info, const PngSpec& s,
                     std::vector<uint8_t>* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, mem_write, mem_flush);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty())
    png_set_PLTE(png, info, s.palette.data(), int(s.palette.size()));
  if (!s.trans.empty())
    png_set_tRNS(png, info, s.trans.data(), int(s.trans.size()), nullptr);
  if (!s.exif.empty())
    png_set_eXIf_1(png, info, png_uint_32(s.exif.size()), const_cast<png_bytep>(s.exif.data()));
  png_write_info(png, info);
  std::vector<png_bytep> rows;
  for (auto& r : s.rows) rows.push_back(const_cast<png_bytep>(r.data()));
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  return true;
}

std::vector<uint8_t> write_png(const PngSpec& s) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  const bool ok = write_png_inner(png, info, s, &out);
  png_destroy_write_struct(&png, &info);
  EXPECT_TRUE(ok);
  return out;
}

Image decode_ok(const std::vector<uint8_t>& bytes) {
  auto r = decode_image(bytes);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(*r) : Image{};
}

TEST(Png, SaveAndLoadRoundTrip) {
  const Image img = make_pattern(37, 23);
  const auto path = (std::filesystem::temp_directory_path() / "vlm_vision_roundtrip.png").string();
  ASSERT_TRUE(save_png(path, img).ok());
  auto back = load_image(path);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->width, 37);
  EXPECT_EQ(back->height, 23);
  EXPECT_EQ(back->rgb, img.rgb);
  std::filesystem::remove(path);
  EXPECT_FALSE(save_png("/nonexistent-dir/x.png", img).ok());
  EXPECT_FALSE(save_png(path, Image{}).ok());
}

TEST(Png, GrayDepthsExpandLikePil) {
  for (int depth : {1, 2, 4, 8, 16}) {
    SCOPED_TRACE(depth);
    PngSpec s;
    s.width = 13;
    s.height = 5;
    s.color_type = PNG_COLOR_TYPE_GRAY;
    s.bit_depth = depth;
    const int maxv = (1 << std::min(depth, 8)) - 1;
    std::vector<std::vector<int>> vals(5, std::vector<int>(13));
    for (int y = 0; y < 5; ++y) {
      std::vector<uint8_t> row(size_t(13 * depth + 7) / 8, 0);
      for (int x = 0; x < 13; ++x) {
        const int v = (x * 7 + y * 3) % (maxv + 1);
        vals[y][x] = v;
        if (depth == 16) {
          row[x * 2] = uint8_t(v);
          row[x * 2 + 1] = uint8_t(255 - v);  // low byte must be ignored
        } else if (depth == 8) {
          row[x] = uint8_t(v);
        } else {
          const int per = 8 / depth, shift = 8 - depth * (x % per + 1);
          row[x / per] |= uint8_t(v << shift);
        }
      }
      s.rows.push_back(row);
    }
    const Image img = decode_ok(write_png(s));
    ASSERT_EQ(img.width, 13);
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 13; ++x) {
        const int want = depth >= 8 ? vals[y][x] : vals[y][x] * 255 / maxv;
        const uint8_t* p = px(img, x, y);
        ASSERT_EQ(int(p[0]), want) << x << "," << y;
        ASSERT_EQ(p[1], p[0]);
        ASSERT_EQ(p[2], p[0]);
      }
  }
}

TEST(Png, AlphaIsDroppedNotComposited) {
  PngSpec rgba;
  rgba.width = 4;
  rgba.height = 2;
  rgba.color_type = PNG_COLOR_TYPE_RGBA;
  rgba.rows = {{10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255, 1, 2, 3, 4},
               {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}};
  const Image a = decode_ok(write_png(rgba));
  EXPECT_EQ(std::vector<uint8_t>(a.rgb.begin(), a.rgb.begin() + 12),
            (std::vector<uint8_t>{10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3}));
  EXPECT_EQ(int(px(a, 3, 1)[0]), 17);

  PngSpec ga;
  ga.width = 2;
  ga.height = 1;
  ga.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  ga.rows = {{100, 0, 200, 255}};
  const Image g = decode_ok(write_png(ga));
  EXPECT_EQ(g.rgb, (std::vector<uint8_t>{100, 100, 100, 200, 200, 200}));
}

TEST(Png, PaletteWithTransparencyAnd16BitRgb) {
  for (int depth : {4, 8}) {
    PngSpec p;
    p.width = 3;
    p.height = 2;
    p.color_type = PNG_COLOR_TYPE_PALETTE;
    p.bit_depth = depth;
    p.palette = {{1, 2, 3}, {250, 128, 7}, {0, 0, 0}, {9, 99, 199}};
    p.trans = {0, 255};  // index 0 fully transparent: its colour must survive
    if (depth == 8) p.rows = {{0, 1, 3}, {2, 3, 0}};
    else p.rows = {{0x01, 0x30}, {0x23, 0x00}};
    const Image img = decode_ok(write_png(p));
    EXPECT_EQ(img.rgb, (std::vector<uint8_t>{1, 2, 3, 250, 128, 7, 9, 99, 199, 0, 0, 0, 9, 99, 199,
                                             1, 2, 3}))
        << "depth " << depth;
  }
  PngSpec s;
  s.width = 2;
  s.height = 1;
  s.bit_depth = 16;
  s.rows = {{0x12, 0xff, 0x34, 0x00, 0x56, 0x80, 0xab, 0x01, 0xcd, 0xfe, 0xef, 0x7f}};
  const Image img = decode_ok(write_png(s));
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{0x12, 0x34, 0x56, 0xab, 0xcd, 0xef}));
}

TEST(Png, InterlacedAndExifOrientation) {
  const Image src = make_pattern(21, 17, 7);
  PngSpec s;
  s.width = 21;
  s.height = 17;
  s.interlace = true;
  for (int y = 0; y < 17; ++y) s.rows.emplace_back(src.row(y), src.row(y) + 63);
  EXPECT_EQ(decode_ok(write_png(s)).rgb, src.rgb);

  s.exif = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0};
  const Image rot = decode_ok(write_png(s));
  EXPECT_EQ(rot.width, 17);
  EXPECT_EQ(rot.height, 21);
  EXPECT_EQ(rot.rgb, apply_exif_orientation(src, 6).rgb);
}

// Offsets of chunks in a PNG: {type, start, end} with end past the CRC.
struct Chunk {
  std::string type;
  size_t start, end;
};
std::vector<Chunk> png_chunks(const std::vector<uint8_t>& b) {
  std::vector<Chunk> out;
  size_t pos = 8;
  while (pos + 12 <= b.size()) {
    const size_t n = size_t(b[pos]) << 24 | size_t(b[pos + 1]) << 16 | size_t(b[pos + 2]) << 8 |
                     b[pos + 3];
    out.push_back({std::string(reinterpret_cast<const char*>(&b[pos + 4]), 4), pos, pos + 12 + n});
    pos += 12 + n;
  }
  return out;
}

TEST(Png, TruncatedFilesAreErrors) {
  const auto bytes = encode_png(make_pattern(64, 48, 3));
  ASSERT_TRUE(bytes.ok());
  size_t idat_end = 0;
  for (const auto& c : png_chunks(*bytes))
    if (c.type == "IDAT") idat_end = c.end;
  ASSERT_GT(idat_end, 1000u);
  for (size_t n = 0; n < bytes->size(); n += (n < 100 ? 1 : 37)) {
    std::vector<uint8_t> cut(bytes->begin(), bytes->begin() + long(n));
    auto r = decode_image(cut);
    // Missing image data is always an error; a file cut after its pixels
    // (only IEND missing) may decode, as in PIL.
    if (n + 4 < idat_end) {
      ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
      if (n > 40) {
        EXPECT_NE(r.error().message.find("PNG"), std::string::npos);
      }
    }
  }
  std::vector<uint8_t> half(bytes->begin(), bytes->begin() + long(bytes->size() / 2));
  auto r = decode_image(half);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
}

TEST(Png, CorruptCrcIsAnError) {
  const auto bytes = encode_png(make_pattern(32, 32, 4));
  ASSERT_TRUE(bytes.ok());
  for (const char* type : {"IHDR", "IDAT"}) {
    for (const auto& c : png_chunks(*bytes)) {
      if (c.type != type) continue;
      std::vector<uint8_t> bad = *bytes;
      bad[c.end - 1] ^= 0x5a;  // last CRC byte
      auto r = decode_image(bad);
      ASSERT_FALSE(r.ok()) << type;
      EXPECT_NE(r.error().message.find("CRC"), std::string::npos) << r.error().message;
      break;
    }
  }
  // Corrupt compressed data (valid CRC recomputed) is an error too.
  std::vector<uint8_t> bad = *bytes;
  for (const auto& c : png_chunks(bad)) {
    if (c.type != "IDAT") continue;
    for (size_t i = c.start + 8 + 10; i < c.end - 4; i += 50) bad[i] ^= 0xff;
    const uLong crc = crc32(0, &bad[c.start + 4], uInt(c.end - 4 - (c.start + 4)));
    for (int k = 0; k < 4; ++k) bad[c.end - 4 + k] = uint8_t(crc >> (24 - 8 * k));
    break;
  }
  EXPECT_FALSE(decode_image(bad).ok());
}

std::vector<uint8_t> png_with_size(uint32_t w, uint32_t h) {
  auto bytes = encode_png(make_pattern(8, 8));
  EXPECT_TRUE(bytes.ok());
  std::vector<uint8_t> b = *bytes;
  // IHDR data starts at 16: width, height big-endian; then fix its CRC.
  for (int k = 0; k < 4; ++k) {
    b[16 + k] = uint8_t(w >> (24 - 8 * k));
    b[20 + k] = uint8_t(h >> (24 - 8 * k));
  }
  const uLong crc = crc32(0, &b[12], 17);
  for (int k = 0; k < 4; ++k) b[29 + k] = uint8_t(crc >> (24 - 8 * k));
  return b;
}

TEST(Png, HugeHeaderIsRefusedBeforeAllocation) {
  for (auto [w, h] : {std::pair<uint32_t, uint32_t>{100000, 100000}, {60000, 60000}}) {
    const auto b = png_with_size(w, h);
    AllocTracker t;
    auto r = decode_image(b);
    ASSERT_FALSE(r.ok());
    EXPECT_LT(t.largest(), size_t(1) << 20);
    EXPECT_NE(r.error().message.find("limit"), std::string::npos) << r.error().message;
  }
  // Per-call limits are honoured as well.
  DecodeLimits small;
  small.max_pixels = 63;
  auto r = decode_image(*encode_png(make_pattern(8, 8)), small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("64 pixels"), std::string::npos) << r.error().message;
}

// ------------------------------------------------------------------ JPEG

struct JpegOptions {
  int quality = 95;
  J_COLOR_SPACE in_space = JCS_RGB;
  std::vector<uint8_t> app1;  // written verbatim as an APP1 segment
};

std::vector<uint8_t> write_jpeg(const uint8_t* pixels, int w, int h, int comps,
                                const JpegOptions& o) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);  // valid inputs only: libjpeg's exit() is acceptable here
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = JDIMENSION(w);
  c.image_height = JDIMENSION(h);
  c.input_components = comps;
  c.in_color_space = o.in_space;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, o.quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  if (!o.app1.empty())
    jpeg_write_marker(&c, JPEG_APP0 + 1, o.app1.data(), unsigned(o.app1.size()));
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(pixels + size_t(c.next_scanline) * w * comps);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  std::free(buf);
  return out;
}

std::vector<uint8_t> write_jpeg(const Image& img, const JpegOptions& o = {}) {
  return write_jpeg(img.rgb.data(), img.width, img.height, 3, o);
}

// "Exif\0\0" + a TIFF header and one IFD0 entry: Orientation (0x0112, SHORT).
std::vector<uint8_t> exif_app1(int orientation, bool little_endian) {
  std::vector<uint8_t> e = {'E', 'x', 'i', 'f', 0, 0};
  auto u16 = [&](int v) {
    if (little_endian) e.insert(e.end(), {uint8_t(v), uint8_t(v >> 8)});
    else e.insert(e.end(), {uint8_t(v >> 8), uint8_t(v)});
  };
  auto u32 = [&](uint32_t v) {
    if (little_endian) { u16(int(v & 0xffff)); u16(int(v >> 16)); }
    else { u16(int(v >> 16)); u16(int(v & 0xffff)); }
  };
  e.push_back(little_endian ? 'I' : 'M');
  e.push_back(little_endian ? 'I' : 'M');
  u16(42);
  u32(8);
  u16(2);                                   // two entries
  u16(0x010f); u16(2); u32(4); u32(0x41424300);  // Make = "ABC" (inline ASCII)
  u16(0x0112); u16(3); u32(1); u16(orientation); u16(0);
  u32(0);                                   // no next IFD
  return e;
}

double mean_abs_diff(const Image& a, const Image& b) {
  if (a.rgb.size() != b.rgb.size()) return 1e9;
  double s = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) s += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
  return s / double(a.rgb.size());
}

bool close_to(const uint8_t* p, std::array<int, 3> c, int tol = 40) {
  for (int i = 0; i < 3; ++i)
    if (std::abs(int(p[i]) - c[size_t(i)]) > tol) return false;
  return true;
}

TEST(Jpeg, DecodesRgbAndGray) {
  Image smooth;
  smooth.width = 48;
  smooth.height = 32;
  smooth.rgb.resize(48 * 32 * 3);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 48; ++x) {
      uint8_t* p = smooth.row(y) + x * 3;
      p[0] = uint8_t(x * 5);
      p[1] = uint8_t(y * 7);
      p[2] = uint8_t(128 + x - y);
    }
  const Image a = decode_ok(write_jpeg(smooth));
  ASSERT_EQ(a.width, 48);
  ASSERT_EQ(a.height, 32);
  EXPECT_LT(mean_abs_diff(a, smooth), 3.0);

  std::vector<uint8_t> gray(40 * 24);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = uint8_t(i % 40 * 6);
  JpegOptions g;
  g.in_space = JCS_GRAYSCALE;
  const Image b = decode_ok(write_jpeg(gray.data(), 40, 24, 1, g));
  ASSERT_EQ(b.width, 40);
  for (int i = 0; i < 40 * 24; ++i) {
    ASSERT_EQ(b.rgb[size_t(i) * 3], b.rgb[size_t(i) * 3 + 1]);
    ASSERT_EQ(b.rgb[size_t(i) * 3], b.rgb[size_t(i) * 3 + 2]);
  }
}

TEST(Jpeg, CmykIsConvertedLikePil) {
  // Flat colour at quality 100 survives coding almost exactly.
  const uint8_t raw[4] = {200, 100, 50, 180};
  std::vector<uint8_t> cmyk(16 * 16 * 4);
  for (size_t i = 0; i < cmyk.size(); ++i) cmyk[i] = raw[i % 4];
  JpegOptions o;
  o.in_space = JCS_CMYK;
  o.quality = 100;
  const Image img = decode_ok(write_jpeg(cmyk.data(), 16, 16, 4, o));
  ASSERT_EQ(img.width, 16);
  // PIL: inverted CMYK ("CMYK;I"), then r = nk - nk*c/255 with c = 255 - raw.
  for (int c = 0; c < 3; ++c) {
    const double want = raw[3] - (255.0 - raw[c]) * raw[3] / 255.0;
    EXPECT_NEAR(px(img, 8, 8)[c], want, 2.0) << "channel " << c;
  }
}

TEST(Jpeg, ExifOrientationIsApplied) {
  const Image q = make_quadrants(64, 32);
  const Image plain = decode_ok(write_jpeg(q));
  ASSERT_TRUE(close_to(px(plain, 8, 8), {255, 0, 0}));
  for (bool le : {false, true}) {
    for (int o = 1; o <= 8; ++o) {
      SCOPED_TRACE("orientation " + std::to_string(o) + (le ? " II" : " MM"));
      JpegOptions opt;
      opt.app1 = exif_app1(o, le);
      const Image img = decode_ok(write_jpeg(q, opt));
      EXPECT_EQ(img.rgb, apply_exif_orientation(plain, o).rgb);
      if (o == 6) {  // rotate 90° clockwise: TL shows the old BL
        ASSERT_EQ(img.width, 32);
        ASSERT_EQ(img.height, 64);
        EXPECT_TRUE(close_to(px(img, 8, 8), {0, 0, 255}));
        EXPECT_TRUE(close_to(px(img, 24, 8), {255, 0, 0}));
        EXPECT_TRUE(close_to(px(img, 8, 56), {255, 255, 255}));
        EXPECT_TRUE(close_to(px(img, 24, 56), {0, 255, 0}));
      }
      if (o == 8) {  // rotate 90° counter-clockwise: TL shows the old TR
        EXPECT_TRUE(close_to(px(img, 8, 8), {0, 255, 0}));
        EXPECT_TRUE(close_to(px(img, 24, 56), {0, 0, 255}));
      }
      if (o == 3) {
        EXPECT_TRUE(close_to(px(img, 8, 8), {255, 255, 255}));
      }
    }
  }
}

std::vector<uint8_t> jpeg_with_size(int w, int h) {
  std::vector<uint8_t> b = write_jpeg(make_pattern(16, 16));
  for (size_t i = 2; i + 9 < b.size(); ++i) {
    if (b[i] == 0xff && (b[i + 1] == 0xc0 || b[i + 1] == 0xc2)) {
      // SOFn: FFCx len(2) precision(1) height(2) width(2), big-endian.
      b[i + 5] = uint8_t(h >> 8);
      b[i + 6] = uint8_t(h);
      b[i + 7] = uint8_t(w >> 8);
      b[i + 8] = uint8_t(w);
      return b;
    }
  }
  ADD_FAILURE() << "no SOF marker";
  return b;
}

TEST(Jpeg, HugeSofIsRefusedBeforeAllocation) {
  {
    // 65500 is libjpeg's largest side: this is our pixel-count limit at work.
    const auto b = jpeg_with_size(65500, 65500);
    AllocTracker t;
    auto r = decode_image(b);
    ASSERT_FALSE(r.ok());
    EXPECT_LT(t.largest(), size_t(1) << 20);
    EXPECT_NE(r.error().message.find("65500x65500"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("limit"), std::string::npos) << r.error().message;
  }
  {
    // The largest a SOF can claim; libjpeg itself refuses it in the header.
    const auto b = jpeg_with_size(65535, 65535);
    AllocTracker t;
    auto r = decode_image(b);
    ASSERT_FALSE(r.ok());
    EXPECT_LT(t.largest(), size_t(1) << 20);
  }
}

TEST(Jpeg, TruncatedAndCorruptFilesAreErrors) {
  const std::vector<uint8_t> b = write_jpeg(make_pattern(64, 64, 9));
  for (size_t n : {size_t(3), size_t(20), size_t(200), b.size() / 2, b.size() - 10}) {
    std::vector<uint8_t> cut(b.begin(), b.begin() + long(n));
    auto r = decode_image(cut);
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_NE(r.error().message.find("JPEG"), std::string::npos);
  }
  std::vector<uint8_t> half(b.begin(), b.begin() + long(b.size() / 2));
  EXPECT_NE(decode_image(half).error().message.find("truncated"), std::string::npos);
  // Scribbling over the headers must not crash (error or garbage pixels).
  std::mt19937 rng(5);
  for (int it = 0; it < 300; ++it) {
    std::vector<uint8_t> bad = b;
    for (int k = 0; k < 4; ++k) bad[2 + rng() % std::min<size_t>(bad.size() - 2, 700)] = uint8_t(rng());
    (void)decode_image(bad);
  }
}

// ------------------------------------------------------------------ WebP

TEST(Webp, LosslessRoundTripAndLossy) {
  const Image img = make_pattern(29, 19, 11);
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGB(img.rgb.data(), 29, 19, 29 * 3, &out);
  ASSERT_GT(n, 0u);
  const std::vector<uint8_t> lossless(out, out + n);
  WebPFree(out);
  const Image back = decode_ok(lossless);
  EXPECT_EQ(back.width, 29);
  EXPECT_EQ(back.height, 19);
  EXPECT_EQ(back.rgb, img.rgb);

  const Image q = make_quadrants(64, 32);
  const size_t m = WebPEncodeRGB(q.rgb.data(), 64, 32, 64 * 3, 90.0f, &out);
  ASSERT_GT(m, 0u);
  const std::vector<uint8_t> lossy(out, out + m);
  WebPFree(out);
  const Image l = decode_ok(lossy);
  EXPECT_TRUE(close_to(px(l, 8, 8), {255, 0, 0}));
  EXPECT_TRUE(close_to(px(l, 56, 24), {255, 255, 255}));

  for (size_t cut : {size_t(12), size_t(20), lossless.size() / 2, lossless.size() - 1}) {
    std::vector<uint8_t> t(lossless.begin(), lossless.begin() + long(cut));
    EXPECT_FALSE(decode_image(t).ok()) << cut;
  }
}

void put_le(std::vector<uint8_t>& b, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

TEST(Webp, ExtendedFileWithExifOrientation) {
  const Image img = make_pattern(6, 4, 13);
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGB(img.rgb.data(), 6, 4, 18, &out);
  ASSERT_GT(n, 12u);
  const std::vector<uint8_t> simple(out + 12, out + n);  // the VP8L chunk
  WebPFree(out);
  std::vector<uint8_t> exif = exif_app1(8, true);
  exif.erase(exif.begin(), exif.begin() + 6);  // WebP stores the TIFF data without "Exif\0\0"
  std::vector<uint8_t> body = {'W', 'E', 'B', 'P', 'V', 'P', '8', 'X'};
  put_le(body, 10, 4);
  put_le(body, 0x08, 4);  // flags: EXIF present
  put_le(body, 6 - 1, 3);
  put_le(body, 4 - 1, 3);
  body.insert(body.end(), simple.begin(), simple.end());
  body.insert(body.end(), {'E', 'X', 'I', 'F'});
  put_le(body, uint32_t(exif.size()), 4);
  body.insert(body.end(), exif.begin(), exif.end());
  if (exif.size() & 1) body.push_back(0);
  std::vector<uint8_t> file = {'R', 'I', 'F', 'F'};
  put_le(file, uint32_t(body.size()), 4);
  file.insert(file.end(), body.begin(), body.end());
  const Image r = decode_ok(file);
  EXPECT_EQ(r.width, 4);
  EXPECT_EQ(r.height, 6);
  EXPECT_EQ(r.rgb, apply_exif_orientation(img, 8).rgb);
}

// ------------------------------------------------------------------ misc

TEST(Decode, GarbageIsAnError) {
  std::mt19937 rng(42);
  const std::vector<std::vector<uint8_t>> magics = {
      {},
      {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'},
      {0xff, 0xd8, 0xff},
      {'R', 'I', 'F', 'F', 0x40, 0, 0, 0, 'W', 'E', 'B', 'P'}};
  for (int it = 0; it < 2000; ++it) {
    std::vector<uint8_t> b = magics[size_t(it) % magics.size()];
    const size_t n = rng() % 300;
    for (size_t i = 0; i < n; ++i) b.push_back(uint8_t(rng()));
    auto r = decode_image(b);
    if (r.ok()) {  // vanishingly unlikely, but then it must be self-consistent
      EXPECT_EQ(r->rgb.size(), size_t(r->width) * r->height * 3);
    } else {
      EXPECT_FALSE(r.error().message.empty());
    }
  }
  auto e = decode_image({});
  ASSERT_FALSE(e.ok());
  const std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 0, 0};
  EXPECT_NE(decode_image(gif).error().message.find("unrecognised"), std::string::npos);
  EXPECT_FALSE(load_image("/nonexistent/image.png").ok());
  EXPECT_EQ(sniff_image_format(gif), ImageFormat::kUnknown);
}

TEST(Orientation, TransformsComposeAsExpected) {
  const Image a = make_pattern(5, 3, 17);
  EXPECT_EQ(apply_exif_orientation(a, 1).rgb, a.rgb);
  EXPECT_EQ(apply_exif_orientation(a, 9).rgb, a.rgb);
  EXPECT_EQ(apply_exif_orientation(apply_exif_orientation(a, 6), 8).rgb, a.rgb);
  EXPECT_EQ(apply_exif_orientation(apply_exif_orientation(a, 2), 2).rgb, a.rgb);
  EXPECT_EQ(apply_exif_orientation(apply_exif_orientation(a, 2), 4).rgb,
            apply_exif_orientation(a, 3).rgb);
  const Image t = apply_exif_orientation(a, 5);  // transpose
  ASSERT_EQ(t.width, 3);
  ASSERT_EQ(t.height, 5);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 3; ++x) ASSERT_EQ(0, std::memcmp(px(t, x, y), px(a, y, x), 3));
  const Image v = apply_exif_orientation(a, 7);  // transverse
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 3; ++x) ASSERT_EQ(0, std::memcmp(px(v, x, y), px(a, 4 - y, 2 - x), 3));
}

TEST(Orientation, ExifParserIsDefensive) {
  EXPECT_EQ(exif_orientation(exif_app1(6, false)), 6);
  EXPECT_EQ(exif_orientation(exif_app1(3, true)), 3);
  EXPECT_EQ(exif_orientation(exif_app1(0, true)), 1);
  EXPECT_EQ(exif_orientation(exif_app1(9, true)), 1);
  auto e = exif_app1(6, true);
  // Every truncation before the end of the orientation entry (byte 40).
  for (size_t n = 0; n < e.size(); ++n)
    EXPECT_EQ(exif_orientation({e.data(), n}), n < 40 ? 1 : 6) << n;
  for (size_t i = 10; i < 14; ++i) e[i] = 0xff;  // IFD0 offset far out of range
  EXPECT_EQ(exif_orientation(e), 1);
}

}  // namespace
