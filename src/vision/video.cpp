#include "vision/video.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

namespace fs = std::filesystem;

namespace vlm {

// ------------------------------------------------------------ frame selection

Expected<int64_t> smart_nframes(int64_t clip_frames, double video_fps, const VideoSampling& s) {
  int64_t n = 0;
  if (s.nframes) {
    n = int64_t(std::nearbyint(*s.nframes / 2.0)) * 2;  // Python round(): half to even
  } else {
    if (!(s.fps > 0) || !std::isfinite(s.fps))
      return make_error("video sampling: fps must be a positive number, got ", s.fps);
    if (!(video_fps > 0) || !std::isfinite(video_fps))
      return make_error("video sampling: the video's frame rate is unknown (", video_fps, ")");
    const double min_f = std::ceil(s.min_frames / 2.0) * 2;
    const double max_f = std::floor(s.max_frames / 2.0) * 2;
    // Same operation order as qwen-vl-utils (total / video_fps * fps) so the
    // float result, and hence the floor, agrees.
    double x = double(clip_frames) / video_fps * s.fps;
    x = std::min(std::min(std::max(x, min_f), max_f), double(clip_frames));
    n = int64_t(std::floor(x / 2) * 2);
  }
  if (clip_frames < 2)
    return make_error("video sampling: the clip has ", clip_frames,
                      " frame(s); at least 2 are needed (one temporal patch)");
  if (n < 2 || n > clip_frames)
    return make_error("video sampling: cannot take ", n, " frames from a clip of ", clip_frames,
                      " frames (need an even count between 2 and the clip length)");
  return n;
}

std::vector<int64_t> torch_linspace_round(int64_t start, int64_t end, int64_t n) {
  std::vector<int64_t> out;
  if (n <= 0) return out;
  const float fs = float(start), fe = float(end);
  if (n == 1) return {int64_t(std::nearbyint(fs))};
  // ATen's CPU linspace: each half is computed from its own end so that both
  // endpoints are exact. volatile keeps every product rounded to float, as in
  // the reference, even if the compiler could fuse multiply and add.
  const float step = (fe - fs) / float(n - 1);
  const int64_t halfway = n / 2;
  out.reserve(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    volatile float prod = step * float(i < halfway ? i : n - i - 1);
    const float v = i < halfway ? fs + prod : fe - prod;
    out.push_back(int64_t(std::nearbyint(v)));
  }
  return out;
}

Expected<FrameSelection> select_video_frames(int64_t total_frames, double video_fps,
                                             const VideoSampling& s) {
  if (total_frames <= 0) return make_error("video has no frames");
  if (!(video_fps > 0) || !std::isfinite(video_fps))
    return make_error("video frame rate is unknown or invalid (", video_fps, ")");
  FrameSelection sel;
  sel.first = 0;
  sel.last = total_frames - 1;
  const bool has_start = s.start_s > 0, has_end = s.end_s >= 0;
  if (has_start || has_end) {
    const double max_duration = double(total_frames) / video_fps;
    if (has_start)
      sel.first = int64_t(std::ceil(std::clamp(s.start_s, 0.0, max_duration) * video_fps));
    if (has_end)
      sel.last = std::min(
          int64_t(std::floor(std::clamp(s.end_s, 0.0, max_duration) * video_fps)),
          total_frames - 1);
    if (sel.first >= sel.last)
      return make_error("video time range ", s.start_s, "s..", s.end_s, "s selects no frames (",
                        total_frames, " frames at ", video_fps, " fps)");
  }
  sel.clip_frames = sel.last - sel.first + 1;
  VLM_ASSIGN_OR_RETURN(const int64_t n, smart_nframes(sel.clip_frames, video_fps, s));
  if (n > s.max_decoded_frames)  // before allocating n indices for a hostile count
    return make_error("video sampling: ", n, " frames asked for, more than max_decoded_frames (",
                      s.max_decoded_frames, ")");
  sel.indices = torch_linspace_round(sel.first, sel.last, n);
  sel.sample_fps = double(n) / std::max(double(sel.clip_frames), 1e-6) * video_fps;
  return sel;
}

// ---------------------------------------------------------- FFmpeg plumbing

namespace {

// Demuxers we open. Everything else — playlists (hls, dash), concat scripts,
// image2 globs, still-image pipes — is refused: those can make FFmpeg read
// other files or the network on behalf of an untrusted input.
constexpr const char* kFormatWhitelist =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,gif,mpegts,mpeg,mpegvideo,flv,ogg,asf,"
    "h264,hevc,m4v,ivf,obu,nut,yuv4mpegpipe";

constexpr int kIoBufferBytes = 1 << 16;
constexpr int kSwsFlags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT;

void quiet_ffmpeg_once() {
  static std::once_flag once;
  // Our Error carries the reason; FFmpeg's own warnings about damaged input
  // would only clutter the CLI. VLM_FFMPEG_LOG=1 brings them back.
  std::call_once(once, [] {
    if (!std::getenv("VLM_FFMPEG_LOG")) av_log_set_level(AV_LOG_QUIET);
  });
}

std::string av_err(int rc) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(rc, buf, sizeof(buf));
  return buf;
}

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct AvioFree {
  void operator()(AVIOContext* p) const {
    if (!p) return;
    av_freep(&p->buffer);  // avio may have replaced the buffer we gave it
    avio_context_free(&p);
  }
};
struct CodecFree {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct AvFree {
  void operator()(uint8_t* p) const { av_free(p); }
};

class Deadline {
 public:
  explicit Deadline(double seconds) : enabled_(seconds > 0) {
    if (enabled_)
      t_ = std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(seconds));
  }
  bool expired() const { return enabled_ && std::chrono::steady_clock::now() > t_; }
  static int interrupt(void* self) { return static_cast<const Deadline*>(self)->expired(); }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point t_;
};

struct Source {
  const std::string* path = nullptr;  // else `bytes`
  std::span<const uint8_t> bytes;
  std::string name() const { return path ? "'" + *path + "'" : std::string("<memory>"); }
};

struct MemReader {
  const uint8_t* data = nullptr;
  int64_t size = 0, pos = 0;

  static int read(void* opaque, uint8_t* buf, int buf_size) {
    auto* m = static_cast<MemReader*>(opaque);
    const int64_t n = std::min<int64_t>(buf_size, m->size - m->pos);
    if (n <= 0) return AVERROR_EOF;
    std::memcpy(buf, m->data + m->pos, size_t(n));
    m->pos += n;
    return int(n);
  }
  static int64_t seek(void* opaque, int64_t offset, int whence) {
    auto* m = static_cast<MemReader*>(opaque);
    if (whence & AVSEEK_SIZE) return m->size;
    int64_t p;
    switch (whence & ~AVSEEK_FORCE) {
      case SEEK_SET: p = offset; break;
      case SEEK_CUR: p = m->pos + offset; break;
      case SEEK_END: p = m->size + offset; break;
      default: return AVERROR(EINVAL);
    }
    if (p < 0 || p > m->size) return AVERROR(EINVAL);
    m->pos = p;
    return p;
  }
};

Status check_frame_size(int64_t w, int64_t h, const DecodeLimits& lim, const Source& src) {
  if (w <= 0 || h <= 0)
    return make_error("video ", src.name(), ": no usable frame size (", w, "x", h,
                      "; corrupt header or undecodable stream)");
  if (w > lim.max_side || h > lim.max_side || w * h > lim.max_pixels)
    return make_error("video ", src.name(), ": frame size ", w, "x", h,
                      " exceeds the decode limit (", lim.max_side, " per side, ", lim.max_pixels,
                      " pixels)");
  return Status::Ok();
}

// Nested opens (playlists, references) are never allowed for memory input.
int deny_io_open(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) {
  return AVERROR(EPERM);
}

// An opened container. Member order matters: the format context must close
// before the custom AVIOContext it reads from is freed.
class Input {
 public:
  static Expected<std::unique_ptr<Input>> open(const Source& src, const Deadline& deadline,
                                               const DecodeLimits& limits) {
    auto in = std::unique_ptr<Input>(new Input());
    AVFormatContext* ctx = avformat_alloc_context();
    if (!ctx) return make_error("video ", src.name(), ": out of memory");
    ctx->interrupt_callback.callback = &Deadline::interrupt;
    ctx->interrupt_callback.opaque = const_cast<Deadline*>(&deadline);
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "format_whitelist", kFormatWhitelist, 0);
    std::string url;
    if (src.path) {
      av_dict_set(&opts, "protocol_whitelist", "file", 0);
      url = "file:" + *src.path;  // a ':' in the name must not select a protocol
    } else {
      in->mem_.data = src.bytes.data();
      in->mem_.size = int64_t(src.bytes.size());
      auto* buf = static_cast<uint8_t*>(av_malloc(kIoBufferBytes));
      AVIOContext* pb = buf ? avio_alloc_context(buf, kIoBufferBytes, 0, &in->mem_,
                                                 &MemReader::read, nullptr, &MemReader::seek)
                            : nullptr;
      if (!pb) {
        av_free(buf);
        avformat_free_context(ctx);
        return make_error("video ", src.name(), ": out of memory");
      }
      in->pb_.reset(pb);
      ctx->pb = pb;
      ctx->flags |= AVFMT_FLAG_CUSTOM_IO;
      ctx->io_open = &deny_io_open;
    }
    // On failure avformat_open_input frees ctx (but not a custom pb).
    int rc = avformat_open_input(&ctx, url.c_str(), nullptr, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
      if (rc == AVERROR(EINVAL))
        return make_error("video ", src.name(),
                          ": not a supported video container (accepted: mp4/mov, mkv/webm, avi, "
                          "gif, mpeg-ts/ps, flv, ogg, asf/wmv, ivf, nut, y4m, raw h264/hevc)");
      if (rc == AVERROR_EXIT) return make_error("video ", src.name(), ": timed out");
      if (rc == AVERROR_EOF)
        return make_error("video ", src.name(), ": the file ends before any video data");
      return make_error("cannot open video ", src.name(), ": ", av_err(rc),
                        rc == AVERROR_INVALIDDATA ? " (corrupt, truncated or not a video)" : "");
    }
    in->fmt_.reset(ctx);
    // Checked before avformat_find_stream_info, which opens decoders with the
    // declared size (and zeroes a size they refuse, hiding the reason).
    for (unsigned i = 0; i < ctx->nb_streams; ++i) {
      const AVCodecParameters* par = ctx->streams[i]->codecpar;
      if (par->codec_type == AVMEDIA_TYPE_VIDEO && (par->width || par->height))
        VLM_TRY_STATUS(check_frame_size(par->width, par->height, limits, src));
    }
    rc = avformat_find_stream_info(ctx, nullptr);
    if (rc == AVERROR_EXIT) return make_error("video ", src.name(), ": timed out");
    if (rc < 0)
      return make_error("video ", src.name(), ": cannot read stream information: ", av_err(rc));
    return in;
  }

  AVFormatContext* fmt() const { return fmt_.get(); }

 private:
  Input() = default;
  MemReader mem_;
  std::unique_ptr<AVIOContext, AvioFree> pb_;
  std::unique_ptr<AVFormatContext, FormatCloser> fmt_;
};

Expected<int> find_video_stream(AVFormatContext* fmt, const Source& src) {
  // Cover art (mp3/m4a pictures) is a one-frame "video" stream; skip it.
  auto usable = [&](int i) {
    const AVStream* st = fmt->streams[i];
    return st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
           !(st->disposition & AV_DISPOSITION_ATTACHED_PIC);
  };
  const int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (best >= 0 && usable(best)) return best;
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    if (usable(int(i))) return int(i);
  bool audio = false;
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    audio |= fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
  return make_error("video ", src.name(), ": no video stream",
                    audio ? " (audio only)" : fmt->nb_streams ? "" : " (no streams at all)");
}

int display_rotation(const AVStream* st) {
  size_t size = 0;
  const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (!m || size < 9 * sizeof(int32_t)) return 0;
  int32_t matrix[9];
  std::memcpy(matrix, m, sizeof(matrix));
  // The matrix rotates counter-clockwise by `get`; displaying upright needs
  // the opposite, normalised as ffmpeg's own autorotate does.
  double theta = -std::round(av_display_rotation_get(matrix));
  if (!std::isfinite(theta)) return 0;
  theta -= 360 * std::floor(theta / 360 + 0.9 / 360);
  for (int r : {90, 180, 270})
    if (std::fabs(theta - r) < 1.0) return r;
  return 0;  // other angles would need resampling; not worth it for video input
}

struct Probe {
  VideoInfo info;
  int stream = -1;
};

// Counts the video packets without decoding (containers without nb_frames).
Expected<int64_t> count_video_packets(const Source& src, int stream, int64_t cap,
                                      const DecodeLimits& limits, const Deadline& deadline) {
  VLM_ASSIGN_OR_RETURN(auto in, Input::open(src, deadline, limits));
  AVFormatContext* fmt = in->fmt();
  if (stream >= int(fmt->nb_streams)) return make_error("video ", src.name(), ": streams changed");
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    fmt->streams[i]->discard = int(i) == stream ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
  std::unique_ptr<AVPacket, PacketFree> pkt(av_packet_alloc());
  if (!pkt) return make_error("video ", src.name(), ": out of memory");
  int64_t count = 0, reads = 0;
  int errors_in_a_row = 0;
  const int64_t max_reads = 256 * cap + 100000;
  while (true) {
    if (++reads > max_reads || deadline.expired())
      return make_error("video ", src.name(), ": gave up counting frames");
    const int rc = av_read_frame(fmt, pkt.get());
    if (rc == AVERROR_EOF) break;
    if (rc == AVERROR_EXIT) return make_error("video ", src.name(), ": timed out");
    if (rc < 0) {
      if (rc == AVERROR(EAGAIN)) continue;
      if (++errors_in_a_row > 64) break;
      continue;
    }
    errors_in_a_row = 0;
    if (pkt->stream_index == stream && !(pkt->flags & AV_PKT_FLAG_DISCARD)) ++count;
    av_packet_unref(pkt.get());
    if (count > cap)
      return make_error("video ", src.name(), ": more than ", cap,
                        " frames (raise max_decoded_frames to read it)");
  }
  return count;
}

Expected<Probe> probe_source(const Source& src, const DecodeLimits& limits, int64_t count_cap,
                             const Deadline& deadline) {
  quiet_ffmpeg_once();
  // A still image would open as a one-frame stream at best; say what it is.
  uint8_t head[16] = {0};
  size_t head_n = 0;
  if (src.path) {
    std::error_code ec;
    if (fs::is_directory(*src.path, ec))
      return make_error("video ", src.name(), " is a folder (use load_frame_folder)");
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(src.path->c_str(), "rb"), &std::fclose);
    if (!f) return make_error("cannot open video ", src.name(), ": ", std::strerror(errno));
    head_n = std::fread(head, 1, sizeof(head), f.get());
  } else {
    head_n = std::min(sizeof(head), src.bytes.size());
    if (head_n) std::memcpy(head, src.bytes.data(), head_n);
  }
  if (head_n == 0) return make_error("video ", src.name(), ": empty file");
  switch (sniff_image_format({head, head_n})) {
    case ImageFormat::kPng: return make_error("video ", src.name(), " is a PNG image, not a video");
    case ImageFormat::kJpeg:
      return make_error("video ", src.name(), " is a JPEG image, not a video");
    case ImageFormat::kWebp:
      return make_error("video ", src.name(), " is a WebP image, not a video");
    case ImageFormat::kUnknown: break;
  }

  VLM_ASSIGN_OR_RETURN(auto in, Input::open(src, deadline, limits));
  AVFormatContext* fmt = in->fmt();
  Probe p;
  VLM_ASSIGN_OR_RETURN(p.stream, find_video_stream(fmt, src));
  const AVStream* st = fmt->streams[p.stream];
  const AVCodecParameters* par = st->codecpar;
  VideoInfo& info = p.info;
  info.codec = avcodec_get_name(par->codec_id);
  info.container = fmt->iformat ? fmt->iformat->name : "";
  VLM_TRY_STATUS(check_frame_size(par->width, par->height, limits, src));
  info.rotation = display_rotation(st);
  const bool swap = info.rotation == 90 || info.rotation == 270;
  info.width = swap ? par->height : par->width;
  info.height = swap ? par->width : par->height;

  auto rate = [](AVRational r) { return r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0; };
  double fps = rate(st->avg_frame_rate);
  if (!(fps > 0 && fps <= 10000)) fps = rate(st->r_frame_rate);
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0 && rate(st->time_base) > 0)
    info.duration_s = double(st->duration) * av_q2d(st->time_base);
  else if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
    info.duration_s = double(fmt->duration) / AV_TIME_BASE;
  if (!std::isfinite(info.duration_s) || info.duration_s < 0) info.duration_s = 0;

  info.frames = st->nb_frames;
  if (info.frames <= 0) {
    in.reset();  // one open file at a time
    VLM_ASSIGN_OR_RETURN(info.frames, count_video_packets(src, p.stream, count_cap, limits, deadline));
    info.frames_counted = true;
  }
  if (info.frames <= 0) return make_error("video ", src.name(), ": the video stream has no frames");
  if (!(fps > 0 && fps <= 10000) && info.duration_s > 0) fps = double(info.frames) / info.duration_s;
  if (!(fps > 0 && fps <= 10000) || !std::isfinite(fps))
    return make_error("video ", src.name(), ": unknown frame rate");
  info.fps = fps;
  if (info.duration_s <= 0) info.duration_s = double(info.frames) / fps;
  return p;
}

// Decoded frame -> RGB24, keeping the swscale context across frames.
class RgbConverter {
 public:
  Expected<Image> convert(const AVFrame* f, const DecodeLimits& limits, const Source& src) {
    VLM_TRY_STATUS(check_frame_size(f->width, f->height, limits, src));
    auto fmt = AVPixelFormat(f->format);
    bool full_range = f->color_range == AVCOL_RANGE_JPEG;
    // The deprecated yuvj formats mean "full range"; swscale wants the plain
    // format plus an explicit range.
    switch (fmt) {
      case AV_PIX_FMT_YUVJ420P: fmt = AV_PIX_FMT_YUV420P; full_range = true; break;
      case AV_PIX_FMT_YUVJ422P: fmt = AV_PIX_FMT_YUV422P; full_range = true; break;
      case AV_PIX_FMT_YUVJ444P: fmt = AV_PIX_FMT_YUV444P; full_range = true; break;
      case AV_PIX_FMT_YUVJ440P: fmt = AV_PIX_FMT_YUV440P; full_range = true; break;
      case AV_PIX_FMT_YUVJ411P: fmt = AV_PIX_FMT_YUV411P; full_range = true; break;
      default: break;
    }
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(fmt);
    if (!desc || (desc->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)))
      return make_error("video ", src.name(), ": unsupported pixel format ",
                        desc ? desc->name : "(none)");
    SwsContext* sws = sws_getCachedContext(sws_.release(), f->width, f->height, fmt, f->width,
                                           f->height, AV_PIX_FMT_RGB24, kSwsFlags, nullptr,
                                           nullptr, nullptr);
    sws_.reset(sws);
    if (!sws)
      return make_error("video ", src.name(), ": cannot convert pixel format ", desc->name,
                        " to RGB");
    if (!(desc->flags & AV_PIX_FMT_FLAG_RGB)) {
      // Matrix as signalled; unsignalled (or unknown) means BT.601 (SWS_CS_DEFAULT).
      int cs = SWS_CS_DEFAULT;
      switch (f->colorspace) {
        case AVCOL_SPC_BT709: cs = SWS_CS_ITU709; break;
        case AVCOL_SPC_FCC: cs = SWS_CS_FCC; break;
        case AVCOL_SPC_BT470BG:
        case AVCOL_SPC_SMPTE170M: cs = SWS_CS_ITU601; break;
        case AVCOL_SPC_SMPTE240M: cs = SWS_CS_SMPTE240M; break;
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL: cs = SWS_CS_BT2020; break;
        default: break;
      }
      sws_setColorspaceDetails(sws, sws_getCoefficients(cs), full_range ? 1 : 0,
                               sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    }
    // swscale gets an aligned, padded destination; rows are copied out after.
    const int stride = FFALIGN(f->width * 3, 64);
    const size_t bytes = size_t(stride) * size_t(f->height) + 64;
    if (bytes > buf_bytes_) {
      buf_.reset(static_cast<uint8_t*>(av_malloc(bytes)));
      buf_bytes_ = buf_ ? bytes : 0;
      if (!buf_) return make_error("video ", src.name(), ": out of memory");
    }
    uint8_t* dst[4] = {buf_.get(), nullptr, nullptr, nullptr};
    const int dst_stride[4] = {stride, 0, 0, 0};
    const int rows = sws_scale(sws, f->data, f->linesize, 0, f->height, dst, dst_stride);
    if (rows != f->height)
      return make_error("video ", src.name(), ": colour conversion failed");
    Image img;
    img.width = f->width;
    img.height = f->height;
    img.rgb.resize(size_t(f->width) * size_t(f->height) * 3);
    for (int y = 0; y < f->height; ++y)
      std::memcpy(img.row(y), buf_.get() + size_t(y) * size_t(stride), img.row_bytes());
    return img;
  }

 private:
  std::unique_ptr<SwsContext, SwsFree> sws_;
  std::unique_ptr<uint8_t, AvFree> buf_;
  size_t buf_bytes_ = 0;
};

int exif_for_rotation(int clockwise) {
  switch (clockwise) {
    case 90: return 6;
    case 180: return 3;
    case 270: return 8;
    default: return 1;
  }
}

struct DecodeResult {
  std::vector<Image> frames;  // one per requested index, in order
  int64_t decoded = 0;        // frames the decoder produced
  bool complete = false;
  std::string stop_reason;  // why decoding ended early
};

// Decodes sequentially up to the last wanted frame, converting only the
// wanted ones.
Expected<DecodeResult> decode_frames(const Source& src, int stream,
                                     const std::vector<int64_t>& wanted, const VideoSampling& s,
                                     int rotation, const Deadline& deadline,
                                     const VideoProgress& progress) {
  DecodeResult res;
  if (wanted.empty()) {
    res.complete = true;
    return res;
  }
  VLM_ASSIGN_OR_RETURN(auto in, Input::open(src, deadline, s.limits));
  AVFormatContext* fmt = in->fmt();
  if (stream >= int(fmt->nb_streams)) return make_error("video ", src.name(), ": streams changed");
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    fmt->streams[i]->discard = int(i) == stream ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
  const AVStream* st = fmt->streams[stream];
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec)
    return make_error("video ", src.name(), ": no decoder for codec '",
                      avcodec_get_name(st->codecpar->codec_id), "' in this FFmpeg build");
  std::unique_ptr<AVCodecContext, CodecFree> dec(avcodec_alloc_context3(codec));
  if (!dec) return make_error("video ", src.name(), ": out of memory");
  int rc = avcodec_parameters_to_context(dec.get(), st->codecpar);
  if (rc < 0) return make_error("video ", src.name(), ": bad codec parameters: ", av_err(rc));
  dec->pkt_timebase = st->time_base;
  // The decoder refuses larger pictures itself, before allocating them.
  dec->max_pixels = std::clamp<int64_t>(s.limits.max_pixels, 1, INT32_MAX);
  dec->thread_count = std::max(0, s.decode_threads);
  rc = avcodec_open2(dec.get(), codec, nullptr);
  if (rc < 0)
    return make_error("video ", src.name(), ": cannot open the ", codec->name,
                      " decoder: ", av_err(rc));

  std::unique_ptr<AVPacket, PacketFree> pkt(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameFree> frame(av_frame_alloc());
  if (!pkt || !frame) return make_error("video ", src.name(), ": out of memory");
  RgbConverter conv;
  const int64_t last = wanted.back();
  const int64_t total = last + 1;
  const int64_t progress_step = std::max<int64_t>(1, total / 100);
  size_t next = 0;
  int64_t decode_errors = 0;
  std::string last_decode_error;

  // Takes every frame the decoder has ready; stops once all are collected.
  auto drain = [&]() -> Status {
    while (next < wanted.size()) {
      const int r = avcodec_receive_frame(dec.get(), frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return Status::Ok();
      if (r == AVERROR_INVALIDDATA) {
        last_decode_error = av_err(r);
        if (++decode_errors > 100000)
          return make_error("video ", src.name(), ": too many decoding errors");
        continue;
      }
      if (r < 0) return make_error("video ", src.name(), ": decoding failed: ", av_err(r));
      const int64_t i = res.decoded++;
      if (wanted[next] == i) {
        auto img = conv.convert(frame.get(), s.limits, src);
        av_frame_unref(frame.get());
        if (!img.ok()) return img.error();
        if (s.apply_rotation && rotation) *img = apply_exif_orientation(*img, exif_for_rotation(rotation));
        while (next < wanted.size() && wanted[next] == i) {
          res.frames.push_back(next + 1 < wanted.size() && wanted[next + 1] == i ? *img
                                                                                 : std::move(*img));
          ++next;
        }
      } else {
        av_frame_unref(frame.get());
      }
      if (progress && (res.decoded % progress_step == 0 || res.decoded == total))
        progress(res.decoded, total);
    }
    return Status::Ok();
  };

  // Bounded even if a demuxer keeps returning packets that yield nothing.
  const int64_t max_reads = 256 * total + 100000;
  int64_t reads = 0;
  int read_errors_in_a_row = 0;
  bool at_end = false;
  while (next < wanted.size()) {
    if (deadline.expired()) return make_error("video ", src.name(), ": timed out");
    if (++reads > max_reads) {
      res.stop_reason = "too many packets without reaching the wanted frames";
      break;
    }
    rc = av_read_frame(fmt, pkt.get());
    if (rc == AVERROR_EOF) {
      at_end = true;
      break;
    }
    if (rc == AVERROR_EXIT) return make_error("video ", src.name(), ": timed out");
    if (rc < 0) {
      if (rc == AVERROR(EAGAIN)) continue;
      if (++read_errors_in_a_row > 64) {
        res.stop_reason = "read error: " + av_err(rc);
        at_end = true;
        break;
      }
      continue;
    }
    read_errors_in_a_row = 0;
    if (pkt->stream_index != stream) {
      av_packet_unref(pkt.get());
      continue;
    }
    while (true) {
      rc = avcodec_send_packet(dec.get(), pkt.get());
      if (rc != AVERROR(EAGAIN)) break;
      VLM_TRY_STATUS(drain());  // full decoder: take frames, then resend
      if (next == wanted.size()) break;
    }
    av_packet_unref(pkt.get());
    if (rc == AVERROR_INVALIDDATA) {
      ++decode_errors;
      last_decode_error = av_err(rc);
    } else if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) {
      return make_error("video ", src.name(), ": decoding failed: ", av_err(rc));
    }
    VLM_TRY_STATUS(drain());
  }
  if (next < wanted.size() && at_end) {
    // Frames still inside the decoder (B-frame reordering, frame threads).
    rc = avcodec_send_packet(dec.get(), nullptr);
    if (rc >= 0 || rc == AVERROR_EOF) VLM_TRY_STATUS(drain());
  }
  res.complete = next == wanted.size();
  if (!res.complete && res.stop_reason.empty()) {
    res.stop_reason = "the stream ends after " + std::to_string(res.decoded) + " frames";
    if (decode_errors)
      res.stop_reason += " (" + std::to_string(decode_errors) +
                         " packets failed to decode: " + last_decode_error + ")";
  }
  if (progress && res.complete && res.decoded % progress_step != 0) progress(res.decoded, total);
  return res;
}

Status check_sampling(const VideoSampling& s) {
  if (s.max_decoded_frames < 2)
    return make_error("video sampling: max_decoded_frames must be at least 2");
  if (s.nframes && *s.nframes < 1)
    return make_error("video sampling: nframes must be positive, got ", *s.nframes);
  if (!std::isfinite(s.start_s) || !std::isfinite(s.end_s))
    return make_error("video sampling: start/end must be finite");
  if (s.end_s >= 0 && s.start_s > s.end_s)
    return make_error("video sampling: start ", s.start_s, "s is after end ", s.end_s, "s");
  return Status::Ok();
}

Expected<VideoClip> load_source(const Source& src, const VideoSampling& s,
                                const VideoProgress& progress) {
  VLM_TRY_STATUS(check_sampling(s));
  const Deadline deadline(s.timeout_s);
  VLM_ASSIGN_OR_RETURN(Probe p, probe_source(src, s.limits, 16 * s.max_decoded_frames, deadline));
  if (!s.apply_rotation && (p.info.rotation == 90 || p.info.rotation == 270))
    std::swap(p.info.width, p.info.height);  // describe the frames as returned
  VideoClip clip;
  clip.info = p.info;
  int64_t total = p.info.frames;
  // Decoding may reveal fewer frames than the container promised; then the
  // choice is made again from the true count (once). A large shortfall is
  // damage, not bookkeeping, and is reported.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto chosen = select_video_frames(total, p.info.fps, s);
    if (!chosen.ok()) return make_error("video ", src.name(), ": ", chosen.error().message);
    FrameSelection sel = std::move(*chosen);
    const int64_t need = sel.indices.back() + 1;
    if (need > s.max_decoded_frames)
      return make_error("video ", src.name(), ": reaching frame ", sel.indices.back(),
                        " means decoding ", need, " frames, more than max_decoded_frames (",
                        s.max_decoded_frames, ")");
    const double clip_bytes =
        double(sel.indices.size()) * double(p.info.width) * double(p.info.height) * 3;
    if (clip_bytes > double(s.max_clip_bytes))
      return make_error("video ", src.name(), ": ", sel.indices.size(), " frames of ",
                        p.info.width, "x", p.info.height, " need ", clip_bytes / double(1 << 20),
                        " MiB, above max_clip_bytes; sample fewer frames");
    VLM_ASSIGN_OR_RETURN(DecodeResult dr, decode_frames(src, p.stream, sel.indices, s,
                                                        p.info.rotation, deadline, progress));
    if (dr.complete) {
      clip.frames = std::move(dr.frames);
      clip.indices = std::move(sel.indices);
      clip.sample_fps = sel.sample_fps;
      clip.info.frames = total;
      return clip;
    }
    const int64_t slack = std::max<int64_t>(2, total / 50);
    if (attempt == 1 || dr.decoded < 2 || total - dr.decoded > slack)
      return make_error("video ", src.name(), " is truncated or corrupt: ", total,
                        " frames expected, ", dr.stop_reason);
    total = dr.decoded;
  }
  return make_error("video ", src.name(), ": frame count keeps changing");
}

const char* const kImageExts[] = {".png", ".jpg", ".jpeg", ".webp"};

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  for (char& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

}  // namespace

// ------------------------------------------------------------------ public

Expected<VideoInfo> probe_video(const std::string& path) {
  const Source src{&path, {}};
  VLM_ASSIGN_OR_RETURN(Probe p, probe_source(src, DecodeLimits{}, 16 * 100000, Deadline(0)));
  return p.info;
}

Expected<VideoInfo> probe_video_memory(std::span<const uint8_t> bytes) {
  const Source src{nullptr, bytes};
  VLM_ASSIGN_OR_RETURN(Probe p, probe_source(src, DecodeLimits{}, 16 * 100000, Deadline(0)));
  return p.info;
}

Expected<VideoClip> load_video(const std::string& path, const VideoSampling& s,
                               const VideoProgress& progress) {
  return load_source(Source{&path, {}}, s, progress);
}

Expected<VideoClip> load_video_memory(std::span<const uint8_t> bytes, const VideoSampling& s,
                                      const VideoProgress& progress) {
  return load_source(Source{nullptr, bytes}, s, progress);
}

bool natural_less(const std::string& a, const std::string& b) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      while (i < a.size() && a[i] == '0') ++i;
      while (j < b.size() && b[j] == '0') ++j;
      size_t ie = i, je = j;
      while (ie < a.size() && digit(a[ie])) ++ie;
      while (je < b.size() && digit(b[je])) ++je;
      if (ie - i != je - j) return ie - i < je - j;  // more significant digits = larger
      const int c = a.compare(i, ie - i, b, j, je - j);
      if (c != 0) return c < 0;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
    }
  }
  if ((i < a.size()) != (j < b.size())) return j < b.size();
  return a < b;  // equal as numbers ("f01" vs "f1"): any fixed order will do
}

Expected<VideoClip> load_frame_folder(const std::string& dir, double fps, const VideoSampling& s) {
  if (!(fps > 0) || !std::isfinite(fps))
    return make_error("frame folder '", dir, "': fps must be positive, got ", fps);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error("frame folder '", dir, "' is not a folder");
  std::vector<std::string> names;
  const int64_t scan_cap = 16 * std::max<int64_t>(s.max_decoded_frames, 1) + 10000;
  int64_t scanned = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (++scanned > scan_cap) return make_error("frame folder '", dir, "': too many entries");
    const std::string ext = lower_ext(it->path());
    if (std::find(std::begin(kImageExts), std::end(kImageExts), ext) == std::end(kImageExts))
      continue;
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    names.push_back(it->path().filename().string());
  }
  if (ec) return make_error("frame folder '", dir, "': ", ec.message());
  if (names.empty()) return make_error("frame folder '", dir, "' has no PNG/JPEG/WebP frames");
  if (int64_t(names.size()) > s.max_decoded_frames)
    return make_error("frame folder '", dir, "' has ", names.size(),
                      " frames, more than max_decoded_frames (", s.max_decoded_frames, ")");
  std::sort(names.begin(), names.end(), natural_less);

  VideoClip clip;
  int64_t bytes = 0;
  for (size_t k = 0; k < names.size(); ++k) {
    auto img = load_image((fs::path(dir) / names[k]).string(), s.limits);
    if (!img.ok()) return img.error();
    bytes += int64_t(img->rgb.size());
    if (bytes > s.max_clip_bytes)
      return make_error("frame folder '", dir, "': frames exceed max_clip_bytes (",
                        s.max_clip_bytes, ")");
    clip.frames.push_back(std::move(*img));
    clip.indices.push_back(int64_t(k));
  }
  clip.sample_fps = fps;
  VideoInfo& info = clip.info;
  info.width = clip.frames[0].width;
  info.height = clip.frames[0].height;
  info.frames = int64_t(clip.frames.size());
  info.fps = fps;
  info.duration_s = double(info.frames) / fps;
  info.codec = "images";
  info.container = "folder";
  return clip;
}

bool looks_like_video(const std::string& path) {
  static const char* const kVideoExts[] = {
      ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ts",
      ".m2ts", ".mts", ".flv", ".wmv", ".asf", ".ogv", ".3gp", ".3g2", ".ivf", ".y4m"};
  std::error_code ec;
  if (fs::is_directory(path, ec)) return false;
  const std::string ext = lower_ext(path);
  if (std::find(std::begin(kVideoExts), std::end(kVideoExts), ext) != std::end(kVideoExts))
    return true;
  if (std::find(std::begin(kImageExts), std::end(kImageExts), ext) != std::end(kImageExts))
    return false;
  if (!fs::is_regular_file(path, ec)) return false;
  // Unknown extension: a cheap open (no frame counting, no decoding).
  quiet_ffmpeg_once();
  const Source src{&path, {}};
  uint8_t head[16] = {0};
  {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) return false;
    const size_t n = std::fread(head, 1, sizeof(head), f.get());
    if (n == 0 || sniff_image_format({head, n}) != ImageFormat::kUnknown) return false;
  }
  const Deadline deadline(10.0);
  auto in = Input::open(src, deadline, DecodeLimits{});
  return in.ok() && find_video_stream((*in)->fmt(), src).ok();
}

}  // namespace vlm
