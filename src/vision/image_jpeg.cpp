// JPEG via libjpeg(-turbo), configured like PIL (ISLOW DCT, fancy
// upsampling) so that decoded pixels are identical. libjpeg's error_exit must
// not return: it longjmps back to decode_inner, which holds no objects with
// destructors; the decompressor is destroyed by the caller's JpegReader.
#include <cstddef>
#include <cstdio>
// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <algorithm>
#include <cstring>
#include <limits>

#include "vision/image_codecs.h"

namespace vlm::detail {
namespace {

// A progressive JPEG can hold thousands of tiny scans, each one a pass over
// the whole coefficient buffer; real files have fewer than ~20. Same bound as
// libjpeg-turbo's djpeg -maxscans advice.
constexpr int kMaxScans = 500;

struct JpegErrorMgr {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 32];
};

struct JpegReader {
  jpeg_decompress_struct cinfo;
  JpegErrorMgr err;
  jpeg_progress_mgr progress;
  bool created = false;
  Image image;
  std::vector<uint8_t> line;  // CMYK scanline
  int orientation = 1;

  ~JpegReader() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

[[noreturn]] void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  std::snprintf(err->message, sizeof(err->message), "%s", buf);
  std::longjmp(err->jump, 1);
}

// libjpeg treats running out of data as a warning and pads the image with
// gray; PIL refuses such files ("image file is truncated") and so do we.
// Other warnings (e.g. extraneous bytes before a marker) are common in
// real-world files that PIL decodes fine, so they are ignored.
void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "file is truncated");
    std::longjmp(err->jump, 1);
  }
}

void jpeg_progress(j_common_ptr cinfo) {
  if (cinfo->is_decompressor) {
    auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
    if (d->input_scan_number > kMaxScans) {
      auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
      std::snprintf(err->message, sizeof(err->message), "more than %d scans", kMaxScans);
      std::longjmp(err->jump, 1);
    }
  }
}

// PIL assumes Adobe's inverted CMYK for every CMYK JPEG ("CMYK;I") and then
// converts with integer arithmetic: out = nk - nk*c/255 (rounded), where
// c, k are the un-inverted values and nk = 255 - k.
inline uint8_t cmyk_channel(uint8_t raw_c, uint8_t raw_k) {
  const int c = 255 - raw_c, nk = raw_k;
  const int t = c * nk + 128;
  const int v = nk - (((t >> 8) + t) >> 8);
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

bool decode_inner(JpegReader& r, std::span<const uint8_t> bytes, const DecodeLimits& limits,
                  Status* st) {
  if (setjmp(r.err.jump)) return false;
  jpeg_create_decompress(&r.cinfo);
  r.created = true;
  r.cinfo.progress = &r.progress;
  // Progressive files buffer every coefficient (6 bytes per pixel at 4:4:4);
  // cap libjpeg's own allocations accordingly so that odd sampling factors
  // cannot inflate memory past what the pixel limit implies.
  r.cinfo.mem->max_memory_to_use = long(std::min<int64_t>(
      (int64_t(64) << 20) + 8 * limits.max_pixels, std::numeric_limits<long>::max() / 2));
  jpeg_mem_src(&r.cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&r.cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&r.cinfo, TRUE);

  *st = check_image_dimensions(r.cinfo.image_width, r.cinfo.image_height, limits, "JPEG");
  if (!st->ok()) return true;

  for (jpeg_saved_marker_ptr m = r.cinfo.marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
        std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      r.orientation = exif_orientation({m->data, m->data_length});
      break;  // PIL reads the first EXIF segment only
    }
  }

  const bool cmyk = r.cinfo.jpeg_color_space == JCS_CMYK || r.cinfo.jpeg_color_space == JCS_YCCK;
  r.cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  r.cinfo.dct_method = JDCT_ISLOW;
  r.cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&r.cinfo);
  if (int(r.cinfo.output_width) != int(r.cinfo.image_width) ||
      r.cinfo.output_components != (cmyk ? 4 : 3)) {
    *st = make_error("JPEG: unexpected output layout");
    return true;
  }

  r.image = make_image(int(r.cinfo.output_width), int(r.cinfo.output_height));
  if (cmyk) r.line.resize(size_t(r.cinfo.output_width) * 4);
  while (r.cinfo.output_scanline < r.cinfo.output_height) {
    const int y = int(r.cinfo.output_scanline);
    JSAMPROW row = cmyk ? r.line.data() : r.image.row(y);
    if (jpeg_read_scanlines(&r.cinfo, &row, 1) != 1) {
      *st = make_error("JPEG: decoder made no progress at row ", y);
      return true;
    }
    if (cmyk) {
      uint8_t* dst = r.image.row(y);
      for (size_t x = 0; x < r.cinfo.output_width; ++x) {
        const uint8_t* p = &r.line[x * 4];
        for (int c = 0; c < 3; ++c) dst[x * 3 + c] = cmyk_channel(p[c], p[3]);
      }
    }
  }
  // The pixels are complete; trailing garbage after them does not matter to
  // PIL either, so jpeg_finish_decompress (which would parse it) is skipped.
  jpeg_abort_decompress(&r.cinfo);
  return true;
}

}  // namespace

Expected<Image> decode_jpeg(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  JpegReader r;
  r.cinfo.err = jpeg_std_error(&r.err.pub);
  r.err.pub.error_exit = jpeg_error_exit;
  r.err.pub.emit_message = jpeg_emit_message;
  r.err.message[0] = 0;
  r.progress.progress_monitor = jpeg_progress;
  Status st;
  if (!decode_inner(r, bytes, limits, &st)) return make_error("JPEG: ", r.err.message);
  if (!st.ok()) return st.error();
  if (r.orientation != 1) return apply_exif_orientation(r.image, r.orientation);
  return std::move(r.image);
}

}  // namespace vlm::detail
