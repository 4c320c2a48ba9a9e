// Video input: qwen-vl-utils frame selection against the spec's worked
// examples, the fixture clip re-encoded at test time with libavcodec (so no
// binary test videos are checked in) and decoded back, and hostile files.
//
// Tolerances. pixel_values units are uint8 levels / (255 * std_c), so one
// level is at most 1/(255*0.26130258) = 0.0150 (green). Measured values with
// Debian's FFmpeg 5.1 / x264 164 are in brackets.
//  * frame folder vs recorded tensor: exact (the PNGs are the recording's
//    inputs and the preprocessing is bit-exact).
//  * lossless RGB H.264 (libx264rgb) in mp4: exact. This isolates demuxing,
//    frame selection and the planar GBR -> RGB24 conversion.
//  * lossless 4:4:4 H.264 (qp 0), BT.601 limited range, also in mkv, mov and
//    lossless VP9 webm: only the 8-bit RGB -> Y'CbCr -> RGB round trip is lost
//    (limited range has 220 luma codes for 256 levels): <= 3 levels
//    [max 2, mean 0.32]. Tagged BT.709 [2, 0.53] and full range [1, 0.37] too;
//    decoding those with the default matrix/range would be far off.
//  * lossless 4:2:0 H.264: equal bit for bit to converting the encoder's
//    input straight back with swscale, i.e. the decoder adds nothing.
//  * 4:2:0 H.264 at crf 10 (the check; a camera's format): chroma is
//    halved both ways, and the fixture is per-pixel colour noise over
//    saturated shapes, the worst case for 4:2:0. The format's own floor on
//    this content is measured in-test [max 118 levels = 1.72, mean 6.98 =
//    0.102]; the codec may add 1 level on average and 16 at worst (its loss
//    alone, crf 10 in 4:4:4, is [max 15 = 0.213, mean 1.04 = 0.0151])
//    [mp4: max 118 = 1.72, mean 7.03 = 0.102].
#include <gtest/gtest.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "core/safetensors.h"
#include "vision/image.h"
#include "vision/qwen_preprocess.h"
#include "vision/video.h"

namespace fs = std::filesystem;
using namespace vlm;

namespace {

const std::string kCase = std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/cases/video";
const std::string kModel = std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/model";

std::vector<Image> fixture_frames() {
  std::vector<Image> out;
  for (int i = 0; i < 8; ++i) {
    auto img = load_image(kCase + "/frame_" + std::to_string(i) + ".png");
    EXPECT_TRUE(img.ok()) << (img.ok() ? "" : img.error().message);
    if (img.ok()) out.push_back(std::move(*img));
  }
  return out;
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("vlm_video_test_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const fs::path& temp_dir() {
  static const TempDir dir;
  return dir.path;
}

std::vector<uint8_t> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_file(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// ------------------------------------------------------------ test encoder

struct EncodeSpec {
  std::string encoder = "libx264";
  AVPixelFormat pix_fmt = AV_PIX_FMT_YUV420P;
  std::map<std::string, std::string> options;  // encoder private options
  int qscale = 0;                              // > 0: fixed quantiser (mpeg4)
  int sws_matrix = SWS_CS_ITU601;              // RGB -> Y'CbCr matrix used to encode
  bool full_range = false;
  AVColorSpace tag = AVCOL_SPC_UNSPECIFIED;  // what the stream claims
  int fps = 2;
  double display_matrix_angle = 0;  // av_display_rotation_set(); 0 = no matrix
  bool faststart = false;
};

struct OutCloser {
  void operator()(AVFormatContext* c) const {
    if (c && c->pb) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct EncFree {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

bool have_encoder(const char* name) { return avcodec_find_encoder_by_name(name) != nullptr; }

// Writes `frames` as a video; the container follows the file extension.
Status encode_video(const fs::path& path, const std::vector<Image>& frames, const EncodeSpec& e) {
  if (frames.empty()) return make_error("no frames");
  av_log_set_level(AV_LOG_ERROR);  // x264 prints statistics at INFO
  AVFormatContext* raw = nullptr;
  if (avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str()) < 0 || !raw)
    return make_error("no muxer for ", path);
  std::unique_ptr<AVFormatContext, OutCloser> oc(raw);
  const AVCodec* codec = avcodec_find_encoder_by_name(e.encoder.c_str());
  if (!codec) return make_error("no encoder ", e.encoder);
  AVStream* st = avformat_new_stream(oc.get(), nullptr);
  std::unique_ptr<AVCodecContext, EncFree> enc(avcodec_alloc_context3(codec));
  const int w = frames[0].width, h = frames[0].height;
  enc->width = w;
  enc->height = h;
  enc->pix_fmt = e.pix_fmt;
  enc->time_base = {1, e.fps};
  enc->framerate = {e.fps, 1};
  enc->gop_size = 4;
  enc->colorspace = e.tag;
  enc->color_range = e.full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
  if (e.qscale > 0) {
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * e.qscale;
  }
  if (oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* opts = nullptr;
  for (const auto& [k, v] : e.options) av_dict_set(&opts, k.c_str(), v.c_str(), 0);
  int rc = avcodec_open2(enc.get(), codec, &opts);
  av_dict_free(&opts);
  if (rc < 0) return make_error("cannot open encoder ", e.encoder, ": ", rc);
  avcodec_parameters_from_context(st->codecpar, enc.get());
  st->time_base = enc->time_base;
  st->avg_frame_rate = {e.fps, 1};
  if (e.display_matrix_angle != 0) {
    auto* m = reinterpret_cast<int32_t*>(
        av_stream_new_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t)));
    av_display_rotation_set(m, e.display_matrix_angle);
  }
  if (avio_open(&oc->pb, path.c_str(), AVIO_FLAG_WRITE) < 0) return make_error("cannot write");
  AVDictionary* mux = nullptr;
  if (e.faststart) av_dict_set(&mux, "movflags", "+faststart", 0);
  rc = avformat_write_header(oc.get(), &mux);
  av_dict_free(&mux);
  if (rc < 0) return make_error("cannot write header: ", rc);

  std::unique_ptr<SwsContext, SwsFree> sws(sws_getContext(
      w, h, AV_PIX_FMT_RGB24, w, h, e.pix_fmt,
      SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INP, nullptr, nullptr,
      nullptr));
  if (!sws) return make_error("no swscale path to the encoder's format");
  sws_setColorspaceDetails(sws.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1,
                           sws_getCoefficients(e.sws_matrix), e.full_range ? 1 : 0, 0, 1 << 16,
                           1 << 16);
  std::unique_ptr<AVPacket, PacketFree> pkt(av_packet_alloc());
  auto write_packets = [&]() -> Status {
    while (true) {
      const int r = avcodec_receive_packet(enc.get(), pkt.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return Status::Ok();
      if (r < 0) return make_error("encode failed: ", r);
      av_packet_rescale_ts(pkt.get(), enc->time_base, st->time_base);
      pkt->stream_index = st->index;
      if (av_interleaved_write_frame(oc.get(), pkt.get()) < 0) return make_error("mux failed");
    }
  };
  for (size_t i = 0; i < frames.size(); ++i) {
    std::unique_ptr<AVFrame, FrameFree> f(av_frame_alloc());
    f->format = e.pix_fmt;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f.get(), 0) < 0) return make_error("frame alloc");
    const uint8_t* src[4] = {frames[i].rgb.data(), nullptr, nullptr, nullptr};
    const int src_stride[4] = {int(frames[i].row_bytes()), 0, 0, 0};
    sws_scale(sws.get(), src, src_stride, 0, h, f->data, f->linesize);
    f->pts = int64_t(i);
    if (avcodec_send_frame(enc.get(), f.get()) < 0) return make_error("send_frame");
    VLM_TRY_STATUS(write_packets());
  }
  avcodec_send_frame(enc.get(), nullptr);
  VLM_TRY_STATUS(write_packets());
  if (av_write_trailer(oc.get()) < 0) return make_error("trailer");
  return Status::Ok();
}

// ------------------------------------------------------------ comparisons

struct Diff {
  double max_abs = 0, mean_abs = 0;  // pixel_values units
  double max_levels = 0, mean_levels = 0;  // uint8 levels (diff * 255 * std_c)
};

Diff compare_pixel_values(const std::vector<float>& got, const std::vector<float>& ref,
                          int64_t cols, const QwenImageConfig& cfg) {
  Diff d;
  const int64_t per_channel = cols / 3;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double a = std::fabs(double(got[i]) - double(ref[i]));
    const int c = int((int64_t(i) % cols) / per_channel);
    const double lv = a * 255.0 * cfg.image_std[c];
    d.max_abs = std::max(d.max_abs, a);
    d.mean_abs += a;
    d.max_levels = std::max(d.max_levels, lv);
    d.mean_levels += lv;
  }
  if (!ref.empty()) {
    d.mean_abs /= double(ref.size());
    d.mean_levels /= double(ref.size());
  }
  return d;
}

std::vector<int64_t> flat_grid(const VisionBatch& b) {
  std::vector<int64_t> g;
  for (const auto& t : b.grid_thw) g.insert(g.end(), t.begin(), t.end());
  return g;
}

struct Expected8 {
  std::unique_ptr<SafetensorsFile> file;
  std::vector<float> pixels;
  std::vector<int64_t> grid;
  int64_t rows = 0, cols = 0;
};

Expected8 load_expected() {
  Expected8 e;
  auto st = SafetensorsFile::open(kCase + "/expected.safetensors");
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  if (!st.ok()) return e;
  e.file = std::move(*st);
  const TensorView* pv = e.file->find("inputs.pixel_values_videos");
  const TensorView* g = e.file->find("inputs.video_grid_thw");
  EXPECT_NE(pv, nullptr);
  EXPECT_NE(g, nullptr);
  if (!pv || !g) return e;
  e.pixels = to_f32(*pv);
  e.grid = to_i64(*g);
  e.rows = pv->shape[0];
  e.cols = pv->shape[1];
  return e;
}

// Encodes the fixture frames, decodes with load_video, preprocesses, and
// compares with the recorded tensor.
struct RoundTrip {
  bool ok = false;
  Diff diff;
  VideoClip clip;
};

RoundTrip round_trip(const std::string& file, const EncodeSpec& spec) {
  RoundTrip r;
  const fs::path path = temp_dir() / file;
  const Status enc = encode_video(path, fixture_frames(), spec);
  EXPECT_TRUE(enc.ok()) << enc.error().message;
  if (!enc.ok()) return r;
  auto clip = load_video(path.string(), VideoSampling{});
  EXPECT_TRUE(clip.ok()) << (clip.ok() ? "" : clip.error().message);
  if (!clip.ok()) return r;
  EXPECT_EQ(clip->frames.size(), 8u);
  EXPECT_EQ(clip->indices, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_DOUBLE_EQ(clip->sample_fps, 2.0);
  EXPECT_EQ(clip->info.frames, 8);
  EXPECT_DOUBLE_EQ(clip->info.fps, 2.0);
  auto cfg = load_qwen_video_config(kModel);
  EXPECT_TRUE(cfg.ok());
  if (!cfg.ok()) return r;
  auto b = preprocess_qwen_video(clip->frames, *cfg);
  EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().message);
  if (!b.ok()) return r;
  Expected8 ex = load_expected();
  EXPECT_EQ(flat_grid(*b), ex.grid) << "video_grid_thw";
  EXPECT_EQ(b->rows, ex.rows);
  EXPECT_EQ(b->cols, ex.cols);
  if (b->pixel_values.size() != ex.pixels.size()) {
    ADD_FAILURE() << "pixel_values_videos size";
    return r;
  }
  r.diff = compare_pixel_values(b->pixel_values, ex.pixels, b->cols, *cfg);
  r.clip = std::move(*clip);
  r.ok = true;
  std::printf("[ %s ] %s: max |diff| %.5f (%.2f levels), mean %.6f (%.3f levels)\n",
              ::testing::UnitTest::GetInstance()->current_test_info()->name(), file.c_str(),
              r.diff.max_abs, r.diff.max_levels, r.diff.mean_abs, r.diff.mean_levels);
  return r;
}

EncodeSpec x264(const char* pix, std::map<std::string, std::string> opts) {
  EncodeSpec e;
  e.encoder = "libx264";
  e.pix_fmt = av_get_pix_fmt(pix);
  e.options = std::move(opts);
  return e;
}

// RGB -> `fmt` as encode_video converts, then back as load_video converts
// untagged BT.601 limited-range video.
std::vector<Image> swscale_round_trip(const std::vector<Image>& frames, AVPixelFormat fmt) {
  std::vector<Image> out;
  for (const Image& im : frames) {
    const int w = im.width, h = im.height;
    std::unique_ptr<SwsContext, SwsFree> to(sws_getContext(
        w, h, AV_PIX_FMT_RGB24, w, h, fmt,
        SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INP, nullptr, nullptr,
        nullptr));
    sws_setColorspaceDetails(to.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1,
                             sws_getCoefficients(SWS_CS_ITU601), 0, 0, 1 << 16, 1 << 16);
    std::unique_ptr<AVFrame, FrameFree> yuv(av_frame_alloc());
    yuv->format = fmt;
    yuv->width = w;
    yuv->height = h;
    av_frame_get_buffer(yuv.get(), 0);
    const uint8_t* src[4] = {im.rgb.data(), nullptr, nullptr, nullptr};
    const int src_stride[4] = {int(im.row_bytes()), 0, 0, 0};
    sws_scale(to.get(), src, src_stride, 0, h, yuv->data, yuv->linesize);
    std::unique_ptr<SwsContext, SwsFree> back(sws_getContext(
        w, h, fmt, w, h, AV_PIX_FMT_RGB24,
        SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT, nullptr, nullptr,
        nullptr));
    sws_setColorspaceDetails(back.get(), sws_getCoefficients(SWS_CS_ITU601), 0,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    Image rgb = im;
    uint8_t* dst[4] = {rgb.rgb.data(), nullptr, nullptr, nullptr};
    const int dst_stride[4] = {int(rgb.row_bytes()), 0, 0, 0};
    sws_scale(back.get(), yuv->data, yuv->linesize, 0, h, dst, dst_stride);
    out.push_back(std::move(rgb));
  }
  return out;
}

}  // namespace

// ============================================================ frame selection

TEST(VideoSelect, WorkedExamplesOfTestVectors6) {
  // TEST_VECTORS.md §6: total frames, fps -> n, sample_fps.
  struct Row {
    int64_t total;
    double fps;
    int64_t n;
    double sample_fps;
  } rows[] = {{90, 30, 6, 2.0}, {300, 29.97, 20, 1.998}, {7, 30, 4, 30.0 * 4 / 7},
              {10000, 25, 768, 1.92}};
  for (const Row& r : rows) {
    auto sel = select_video_frames(r.total, r.fps, VideoSampling{});
    ASSERT_TRUE(sel.ok()) << sel.error().message;
    EXPECT_EQ(int64_t(sel->indices.size()), r.n) << r.total << " @ " << r.fps;
    EXPECT_NEAR(sel->sample_fps, r.sample_fps, 1e-9) << r.total << " @ " << r.fps;
    EXPECT_NEAR(2.0 / sel->sample_fps, 2.0 * r.total / (r.n * r.fps), 1e-12);
    EXPECT_EQ(sel->indices.front(), 0);
    EXPECT_EQ(sel->indices.back(), r.total - 1);
  }
  EXPECT_NEAR(2.0 / select_video_frames(7, 30, {})->sample_fps, 0.11667, 1e-5);
}

TEST(VideoSelect, IndicesAreRoundedFloat32Linspace) {
  // torch.round(torch.linspace(0, 89, 6)) = [0, 18, 36, 53, 71, 89]
  EXPECT_EQ(torch_linspace_round(0, 89, 6), (std::vector<int64_t>{0, 18, 36, 53, 71, 89}));
  // 299 / 19 * k for the 29.97 fps example.
  EXPECT_EQ(torch_linspace_round(0, 299, 20),
            (std::vector<int64_t>{0, 16, 31, 47, 63, 79, 94, 110, 126, 142, 157, 173, 189, 205,
                                  220, 236, 252, 268, 283, 299}));
  // Ties go to even: linspace(0, 9, 3) = [0, 4.5, 9] -> [0, 4, 9];
  // linspace(0, 5, 3) = [0, 2.5, 5] -> [0, 2, 5]; linspace(0, 3, 3) -> 1.5 -> 2.
  EXPECT_EQ(torch_linspace_round(0, 9, 3), (std::vector<int64_t>{0, 4, 9}));
  EXPECT_EQ(torch_linspace_round(0, 5, 3), (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(torch_linspace_round(0, 3, 3), (std::vector<int64_t>{0, 2, 3}));
  // The second half is computed from the end: 7 - (7/6)*3 in float32.
  EXPECT_EQ(torch_linspace_round(0, 7, 7).size(), 7u);
  EXPECT_EQ(torch_linspace_round(5, 5, 1), (std::vector<int64_t>{5}));
  EXPECT_TRUE(torch_linspace_round(0, 5, 0).empty());
}

TEST(VideoSelect, FrameCountRules) {
  VideoSampling s;
  EXPECT_EQ(*smart_nframes(8, 2.0, s), 8);      // the fixture: every frame
  EXPECT_EQ(*smart_nframes(9, 2.0, s), 8);      // 9 -> even
  EXPECT_EQ(*smart_nframes(3, 30.0, s), 2);     // min 4 capped by the clip, then even
  EXPECT_FALSE(smart_nframes(1, 30.0, s).ok()); // fewer than 2 frames
  s.min_frames = 5;                             // rounded up to 6
  EXPECT_EQ(*smart_nframes(100, 30.0, s), 6);
  s = {};
  s.max_frames = 9;  // rounded down to 8
  EXPECT_EQ(*smart_nframes(3000, 30.0, s), 8);
  s = {};
  s.fps = 0.5;
  EXPECT_EQ(*smart_nframes(900, 30.0, s), 14);  // 900/30*0.5 = 15 -> 14
  s = {};
  s.nframes = 5;  // round(2.5) = 2 -> 4 (half to even)
  EXPECT_EQ(*smart_nframes(100, 30.0, s), 4);
  s.nframes = 7;  // round(3.5) = 4 -> 8
  EXPECT_EQ(*smart_nframes(100, 30.0, s), 8);
  s.nframes = 200;
  EXPECT_FALSE(smart_nframes(100, 30.0, s).ok());
  s.nframes = 2000000000;  // a hostile header's frame count cannot make us allocate this
  EXPECT_FALSE(select_video_frames(int64_t(1) << 40, 30.0, s).ok());
  s = {};
  s.fps = 0;
  EXPECT_FALSE(smart_nframes(100, 30.0, s).ok());
  EXPECT_FALSE(smart_nframes(100, 0.0, VideoSampling{}).ok());
}

TEST(VideoSelect, TimeRange) {
  // 10 s at 30 fps, 2 s .. 6.5 s: first = ceil(60) = 60, last = floor(195) = 195.
  VideoSampling s;
  s.start_s = 2.0;
  s.end_s = 6.5;
  auto sel = select_video_frames(300, 30.0, s);
  ASSERT_TRUE(sel.ok()) << sel.error().message;
  EXPECT_EQ(sel->first, 60);
  EXPECT_EQ(sel->last, 195);
  EXPECT_EQ(sel->clip_frames, 136);
  EXPECT_EQ(sel->indices.size(), 8u);  // 136/30*2 = 9.07 -> 8
  EXPECT_EQ(sel->indices.front(), 60);
  EXPECT_EQ(sel->indices.back(), 195);
  EXPECT_NEAR(sel->sample_fps, 8.0 / 136 * 30, 1e-12);
  s.start_s = 20;  // clamped to the end: nothing left
  s.end_s = -1;
  EXPECT_FALSE(select_video_frames(300, 30.0, s).ok());
  s = {};
  s.end_s = 100;  // beyond the end: clamped
  EXPECT_EQ(select_video_frames(300, 30.0, s)->last, 299);
}

TEST(VideoSelect, NaturalOrder) {
  EXPECT_TRUE(natural_less("frame_2.png", "frame_10.png"));
  EXPECT_FALSE(natural_less("frame_10.png", "frame_2.png"));
  EXPECT_TRUE(natural_less("a9", "b1"));
  EXPECT_TRUE(natural_less("f007", "f8"));
  EXPECT_TRUE(natural_less("f1", "f1a"));
  EXPECT_FALSE(natural_less("f1", "f1"));
  EXPECT_TRUE(natural_less("f01", "f1") != natural_less("f1", "f01"));  // strict order
  EXPECT_TRUE(natural_less("x99999999999999999999", "x100000000000000000000"));
}

// ============================================================ frame folders

TEST(VideoFolder, FixtureFramesMatchRecordedTensorBitExactly) {
  auto clip = load_frame_folder(kCase, 2.0);
  ASSERT_TRUE(clip.ok()) << clip.error().message;
  ASSERT_EQ(clip->frames.size(), 8u);
  EXPECT_DOUBLE_EQ(clip->sample_fps, 2.0);
  EXPECT_EQ(clip->info.width, 84);
  EXPECT_EQ(clip->info.height, 56);
  auto cfg = load_qwen_video_config(kModel);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  auto b = preprocess_qwen_video(clip->frames, *cfg);
  ASSERT_TRUE(b.ok()) << b.error().message;
  Expected8 ex = load_expected();
  EXPECT_EQ(flat_grid(*b), ex.grid);
  EXPECT_EQ(flat_grid(*b), (std::vector<int64_t>{4, 4, 6}));
  ASSERT_EQ(b->pixel_values.size(), ex.pixels.size());
  size_t n_diff = 0;
  for (size_t i = 0; i < ex.pixels.size(); ++i) n_diff += b->pixel_values[i] != ex.pixels[i];
  EXPECT_EQ(n_diff, 0u);
}

TEST(VideoFolder, NaturalOrderOddCountAndErrors) {
  const fs::path dir = temp_dir() / "folder";
  fs::create_directories(dir);
  // frame_9 must come before frame_10 and frame_10 before frame_11.
  const char* names[] = {"frame_11.png", "frame_9.png", "frame_10.png"};
  const std::vector<Image> src = fixture_frames();
  for (int k = 0; k < 3; ++k) ASSERT_TRUE(save_png((dir / names[k]).string(), src[k]).ok());
  write_file(dir / "notes.txt", {'h', 'i'});
  auto clip = load_frame_folder(dir.string(), 4.0);
  ASSERT_TRUE(clip.ok()) << clip.error().message;
  ASSERT_EQ(clip->frames.size(), 3u);  // odd: padded later by the preprocessing
  EXPECT_EQ(clip->frames[0].rgb, src[1].rgb);
  EXPECT_EQ(clip->frames[1].rgb, src[2].rgb);
  EXPECT_EQ(clip->frames[2].rgb, src[0].rgb);
  EXPECT_DOUBLE_EQ(clip->sample_fps, 4.0);
  auto cfg = load_qwen_video_config(kModel);
  auto b = preprocess_qwen_video(clip->frames, *cfg);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(flat_grid(*b), (std::vector<int64_t>{2, 4, 6}));

  VideoSampling few;
  few.max_decoded_frames = 2;
  EXPECT_FALSE(load_frame_folder(dir.string(), 4.0, few).ok());
  EXPECT_FALSE(load_frame_folder(dir.string(), 0.0).ok());
  EXPECT_FALSE(load_frame_folder((temp_dir() / "missing").string(), 2.0).ok());
  fs::create_directories(temp_dir() / "empty");
  auto empty = load_frame_folder((temp_dir() / "empty").string(), 2.0);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("no PNG"), std::string::npos);
  write_file(dir / "frame_12.png", {1, 2, 3});  // corrupt frame: clear error
  auto bad = load_frame_folder(dir.string(), 4.0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(""), std::string::npos);
}

// ============================================================ mp4 and friends

TEST(VideoDecode, LosslessRgbMp4IsBitExact) {
  if (!have_encoder("libx264rgb")) GTEST_SKIP() << "no libx264rgb encoder";
  EncodeSpec e;
  e.encoder = "libx264rgb";
  e.pix_fmt = AV_PIX_FMT_RGB24;
  e.options = {{"qp", "0"}, {"preset", "ultrafast"}};
  RoundTrip r = round_trip("rgb_lossless.mp4", e);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.diff.max_abs, 0.0);
  const std::vector<Image> src = fixture_frames();
  for (size_t i = 0; i < src.size(); ++i) EXPECT_EQ(r.clip.frames[i].rgb, src[i].rgb) << i;
  EXPECT_EQ(r.clip.info.codec, "h264");
  EXPECT_FALSE(r.clip.info.frames_counted);
}

TEST(VideoDecode, Yuv444Bt601LimitedMp4) {
  if (!have_encoder("libx264")) GTEST_SKIP() << "no libx264 encoder";
  RoundTrip r = round_trip("yuv444_qp0.mp4", x264("yuv444p", {{"qp", "0"}, {"preset", "fast"}}));
  ASSERT_TRUE(r.ok);
  // 8-bit limited-range Y'CbCr round trip: <= 3 levels anywhere, < 1 on average.
  EXPECT_LE(r.diff.max_levels, 3.0 + 1e-3);
  EXPECT_LE(r.diff.mean_levels, 1.0);
  EXPECT_LE(r.diff.max_abs, 3.0 / (255 * 0.26130258) + 1e-4);
}

TEST(VideoDecode, Lossless420IsExactlyTheSwscaleRoundTrip) {
  // With a lossless codec the only change is the 4:2:0 format itself, so the
  // decoded frames must equal the encoder's input converted straight back.
  if (!have_encoder("libx264")) GTEST_SKIP() << "no libx264 encoder";
  const std::vector<Image> src = fixture_frames();
  const fs::path path = temp_dir() / "yuv420_qp0.mp4";
  ASSERT_TRUE(encode_video(path, src, x264("yuv420p", {{"qp", "0"}})).ok());
  auto clip = load_video(path.string(), {});
  ASSERT_TRUE(clip.ok()) << clip.error().message;
  const std::vector<Image> want = swscale_round_trip(src, AV_PIX_FMT_YUV420P);
  ASSERT_EQ(clip->frames.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(clip->frames[i].rgb, want[i].rgb) << i;
}

TEST(VideoDecode, Mp4At2FpsMatchesFrameFolder) {
  // The check: an mp4 of the fixture frames at 2 fps, H.264 4:2:0 at
  // crf 10 (a camera's format at high quality), against the recorded tensor
  // that the frame folder reproduces exactly. The error floor of 4:2:0 on
  // this content is measured here (swscale round trip, no codec); the codec
  // may add at most 1 level on average and 16 levels at worst (the crf-10
  // loss measured in 4:4:4 below is 15).
  if (!have_encoder("libx264")) GTEST_SKIP() << "no libx264 encoder";
  auto cfg = load_qwen_video_config(kModel);
  ASSERT_TRUE(cfg.ok());
  auto floor_batch =
      preprocess_qwen_video(swscale_round_trip(fixture_frames(), AV_PIX_FMT_YUV420P), *cfg);
  ASSERT_TRUE(floor_batch.ok());
  const Diff floor = compare_pixel_values(floor_batch->pixel_values, load_expected().pixels,
                                          floor_batch->cols, *cfg);
  std::printf("[ 4:2:0 floor ] max |diff| %.5f (%.2f levels), mean %.6f (%.3f levels)\n",
              floor.max_abs, floor.max_levels, floor.mean_abs, floor.mean_levels);
  RoundTrip r = round_trip("fixture_420.mp4",
                           x264("yuv420p", {{"crf", "10"}, {"preset", "medium"}}));
  ASSERT_TRUE(r.ok);
  EXPECT_LE(r.diff.mean_levels, floor.mean_levels + 1.0);
  EXPECT_LE(r.diff.max_levels, floor.max_levels + 16.0);
  EXPECT_LE(r.diff.mean_levels, 8.0);
}

TEST(VideoDecode, Lossy444Mp4) {
  // The codec's loss alone (no chroma subsampling): crf 10 in 4:4:4.
  if (!have_encoder("libx264")) GTEST_SKIP() << "no libx264 encoder";
  RoundTrip r = round_trip("fixture_444_crf10.mp4", x264("yuv444p", {{"crf", "10"}}));
  ASSERT_TRUE(r.ok);
  EXPECT_LE(r.diff.mean_levels, 1.5);
  EXPECT_LE(r.diff.max_levels, 24.0);
}

TEST(VideoDecode, ContainersWithoutFrameCountAreCounted) {
  if (!have_encoder("libx264")) GTEST_SKIP() << "no libx264 encoder";
  RoundTrip r = round_trip("yuv444.mkv", x264("yuv444p", {{"qp", "0"}}));
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.clip.info.frames_counted);  // Matroska states no nb_frames
  EXPECT_LE(r.diff.max_levels, 3.0 + 1e-3);
}

TEST(VideoDecode, WebmAviMov) {
  if (have_encoder("libvpx-vp9")) {
    EncodeSpec e;
    e.encoder = "libvpx-vp9";
    e.pix_fmt = AV_PIX_FMT_YUV444P;
    e.options = {{"lossless", "1"}, {"deadline", "realtime"}, {"cpu-used", "8"}};
    RoundTrip r = round_trip("vp9.webm", e);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.clip.info.codec, "vp9");
    EXPECT_LE(r.diff.max_levels, 3.0 + 1e-3);
  }
  {
    EncodeSpec e;  // MPEG-4 part 2 is built into every libavcodec
    e.encoder = "mpeg4";
    e.pix_fmt = AV_PIX_FMT_YUV420P;
    e.qscale = 2;
    RoundTrip r = round_trip("mpeg4.avi", e);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.clip.info.codec, "mpeg4");
    EXPECT_LE(r.diff.mean_levels, 10.0);
  }
  if (have_encoder("libx264")) {
    RoundTrip r = round_trip("x264.mov", x264("yuv444p", {{"qp", "0"}}));
    ASSERT_TRUE(r.ok);
    EXPECT_LE(r.diff.max_levels, 3.0 + 1e-3);
  }
}

TEST(VideoDecode, HonoursSignalledMatrixAndRange) {
  if (!have_encoder("libx264")) GTEST_SKIP() << "no libx264 encoder";
  // Encoded with BT.709 and tagged so: decoding with BT.601 instead would be
  // off by up to ~20 levels on these saturated colours.
  EncodeSpec e709 = x264("yuv444p", {{"qp", "0"}});
  e709.sws_matrix = SWS_CS_ITU709;
  e709.tag = AVCOL_SPC_BT709;
  RoundTrip a = round_trip("bt709.mp4", e709);
  ASSERT_TRUE(a.ok);
  EXPECT_LE(a.diff.max_levels, 3.0 + 1e-3);
  // Full range, tagged: 256 codes per level, so the round trip is tighter.
  EncodeSpec full = x264("yuv444p", {{"qp", "0"}});
  full.full_range = true;
  RoundTrip b = round_trip("fullrange.mp4", full);
  ASSERT_TRUE(b.ok);
  EXPECT_LE(b.diff.max_levels, 2.0 + 1e-3);
}

TEST(VideoDecode, RotationFromDisplayMatrix) {
  if (!have_encoder("libx264rgb")) GTEST_SKIP() << "no libx264rgb encoder";
  // av_display_rotation_set(+90) is what a phone held upright writes; the
  // ffmpeg tool (autorotate) shows such a file turned 90° clockwise, and the
  // -90 matrix turned 90° counter-clockwise (checked by hand with ffmpeg 5.1).
  const std::vector<Image> src = fixture_frames();
  for (const auto& [angle, rotation, exif] : {std::tuple{90.0, 90, 6}, {-90.0, 270, 8},
                                              {180.0, 180, 3}}) {
    EncodeSpec e;
    e.encoder = "libx264rgb";
    e.pix_fmt = AV_PIX_FMT_RGB24;
    e.options = {{"qp", "0"}};
    e.display_matrix_angle = angle;
    const fs::path path = temp_dir() / ("rotated_" + std::to_string(rotation) + ".mp4");
    ASSERT_TRUE(encode_video(path, src, e).ok());
    auto info = probe_video(path.string());
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->rotation, rotation);
    EXPECT_EQ(info->width, rotation == 180 ? 84 : 56);
    EXPECT_EQ(info->height, rotation == 180 ? 56 : 84);
    auto clip = load_video(path.string(), {});
    ASSERT_TRUE(clip.ok()) << clip.error().message;
    ASSERT_EQ(clip->frames.size(), 8u);
    const Image want = apply_exif_orientation(src[3], exif);
    EXPECT_EQ(clip->frames[3].width, want.width);
    EXPECT_EQ(clip->frames[3].rgb, want.rgb) << rotation;
    VideoSampling raw;
    raw.apply_rotation = false;
    auto unrotated = load_video(path.string(), raw);
    ASSERT_TRUE(unrotated.ok());
    EXPECT_EQ(unrotated->frames[3].rgb, src[3].rgb);
    EXPECT_EQ(unrotated->info.width, 84);
  }
}

TEST(VideoDecode, SamplingProgressMemoryAndLimits) {
  if (!have_encoder("libx264rgb")) GTEST_SKIP() << "no libx264rgb encoder";
  // 40 frames at 20 fps (2 s): fps 2 -> min_frames 4, indices 0, 13, 26, 39.
  std::vector<Image> src;
  const std::vector<Image> base = fixture_frames();
  for (int i = 0; i < 40; ++i) {
    Image im = base[i % 8];
    im.rgb[0] = uint8_t(i);  // tells the frames apart
    src.push_back(std::move(im));
  }
  EncodeSpec e;
  e.encoder = "libx264rgb";
  e.pix_fmt = AV_PIX_FMT_RGB24;
  e.options = {{"qp", "0"}};
  e.fps = 20;
  const fs::path path = temp_dir() / "forty.mp4";
  ASSERT_TRUE(encode_video(path, src, e).ok());
  int64_t last_done = 0, last_total = 0, calls = 0;
  auto clip = load_video(path.string(), {}, [&](int64_t d, int64_t t) {
    EXPECT_GE(d, last_done);
    last_done = d;
    last_total = t;
    ++calls;
  });
  ASSERT_TRUE(clip.ok()) << clip.error().message;
  EXPECT_EQ(clip->indices, (std::vector<int64_t>{0, 13, 26, 39}));
  for (size_t k = 0; k < 4; ++k) EXPECT_EQ(clip->frames[k].rgb[0], clip->indices[k]);
  EXPECT_NEAR(clip->sample_fps, 4.0 / 40 * 20, 1e-12);
  EXPECT_EQ(last_done, 40);
  EXPECT_EQ(last_total, 40);
  EXPECT_GT(calls, 0);

  // A time range stops decoding early: 0.5 s .. 1.0 s = frames 10..20.
  VideoSampling range;
  range.start_s = 0.5;
  range.end_s = 1.0;
  last_total = 0;
  auto part = load_video(path.string(), range, [&](int64_t, int64_t t) { last_total = t; });
  ASSERT_TRUE(part.ok()) << part.error().message;
  EXPECT_EQ(part->indices, (std::vector<int64_t>{10, 13, 17, 20}));
  EXPECT_EQ(last_total, 21);

  VideoSampling exact;
  exact.nframes = 10;
  const std::vector<uint8_t> bytes = read_file(path);
  auto mem = load_video_memory(bytes, exact);
  ASSERT_TRUE(mem.ok()) << mem.error().message;
  EXPECT_EQ(mem->indices, torch_linspace_round(0, 39, 10));
  for (size_t k = 0; k < 10; ++k) EXPECT_EQ(mem->frames[k].rgb[0], mem->indices[k]);

  VideoSampling capped;
  capped.max_decoded_frames = 20;  // frame 39 is out of reach
  auto c = load_video(path.string(), capped);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("max_decoded_frames"), std::string::npos);
  VideoSampling small;
  small.limits.max_pixels = 1000;  // 84x56 = 4704
  EXPECT_FALSE(load_video(path.string(), small).ok());
  VideoSampling tiny_budget;
  tiny_budget.max_clip_bytes = 4 * 84 * 56 * 3 - 1;
  EXPECT_FALSE(load_video(path.string(), tiny_budget).ok());
}

// ============================================================ hostile input

TEST(VideoErrors, TruncatedGarbageMissingAndImages) {
  if (!have_encoder("libx264")) GTEST_SKIP() << "no libx264 encoder";
  const fs::path good = temp_dir() / "whole.mp4";
  ASSERT_TRUE(encode_video(good, fixture_frames(), x264("yuv420p", {{"crf", "18"}})).ok());
  std::vector<uint8_t> bytes = read_file(good);
  ASSERT_GT(bytes.size(), 100u);

  auto expect_error = [](const Expected<VideoClip>& r, const char* what) {
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_FALSE(r.error().message.empty()) << what;
    std::printf("[ error ] %s: %s\n", what, r.error().message.c_str());
  };
  // moov at the end (the muxer's default): half a file has no index.
  const fs::path half = temp_dir() / "half.mp4";
  write_file(half, std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  expect_error(load_video(half.string(), {}), "truncated mp4");
  // moov first (faststart): the index promises 8 frames, half the data is there.
  EncodeSpec fs_spec = x264("yuv420p", {{"crf", "18"}});
  fs_spec.faststart = true;
  const fs::path fast = temp_dir() / "fast.mp4";
  ASSERT_TRUE(encode_video(fast, fixture_frames(), fs_spec).ok());
  std::vector<uint8_t> fb = read_file(fast);
  const fs::path fast_half = temp_dir() / "fast_half.mp4";
  write_file(fast_half, std::vector<uint8_t>(fb.begin(), fb.begin() + fb.size() / 2));
  expect_error(load_video(fast_half.string(), {}), "truncated faststart mp4");

  std::vector<uint8_t> garbage(4096);
  uint32_t x = 12345;
  for (auto& b : garbage) b = uint8_t((x = x * 1103515245u + 12345u) >> 24);
  const fs::path junk = temp_dir() / "garbage.mp4";
  write_file(junk, garbage);
  expect_error(load_video(junk.string(), {}), "garbage .mp4");
  expect_error(load_video((temp_dir() / "does_not_exist.mp4").string(), {}), "missing file");
  const fs::path png = temp_dir() / "image.mp4";
  fs::copy_file(kCase + "/frame_0.png", png, fs::copy_options::overwrite_existing);
  auto r = load_video(png.string(), {});
  expect_error(r, "PNG renamed .mp4");
  if (!r.ok()) {
    EXPECT_NE(r.error().message.find("PNG image"), std::string::npos);
  }
  const fs::path empty = temp_dir() / "empty.mp4";
  write_file(empty, {});
  expect_error(load_video(empty.string(), {}), "empty file");
  expect_error(load_video(temp_dir().string(), {}), "a folder");
  expect_error(load_video_memory(garbage, {}), "garbage in memory");
  expect_error(load_video_memory(std::span<const uint8_t>(), {}), "no bytes");

  // Every prefix length class must fail cleanly or decode, never crash.
  for (size_t cut : {size_t(8), size_t(40), bytes.size() / 3, bytes.size() - 1}) {
    auto p = load_video_memory(std::span<const uint8_t>(bytes.data(), cut), {});
    if (p.ok()) {
      EXPECT_GE(p->frames.size(), 2u);
    }
  }
}

TEST(VideoErrors, OneFrameAudioOnlyNoFramesAndHugeSize) {
  if (!have_encoder("libx264")) GTEST_SKIP() << "no libx264 encoder";
  // A single frame cannot give the 2 a temporal patch needs.
  const fs::path one = temp_dir() / "one.mp4";
  ASSERT_TRUE(encode_video(one, {fixture_frames()[0]}, x264("yuv420p", {})).ok());
  auto r1 = load_video(one.string(), {});
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.error().message.find("at least 2"), std::string::npos);
  std::printf("[ error ] one frame: %s\n", r1.error().message.c_str());

  // Written straight through the muxer, no encoder needed.
  auto mux = [](const fs::path& path, auto&& setup, int packets) -> Status {
    AVFormatContext* raw = nullptr;
    if (avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str()) < 0)
      return make_error("no muxer");
    std::unique_ptr<AVFormatContext, OutCloser> oc(raw);
    AVStream* st = avformat_new_stream(oc.get(), nullptr);
    setup(st);
    if (avio_open(&oc->pb, path.c_str(), AVIO_FLAG_WRITE) < 0) return make_error("open");
    if (avformat_write_header(oc.get(), nullptr) < 0) return make_error("header");
    std::unique_ptr<AVPacket, PacketFree> pkt(av_packet_alloc());
    for (int i = 0; i < packets; ++i) {
      av_new_packet(pkt.get(), 512);
      std::memset(pkt->data, 0x5a, 512);
      pkt->pts = pkt->dts = av_rescale_q(i, {1, 2}, st->time_base);
      pkt->duration = av_rescale_q(1, {1, 2}, st->time_base);
      pkt->flags |= AV_PKT_FLAG_KEY;
      pkt->stream_index = 0;
      if (av_interleaved_write_frame(oc.get(), pkt.get()) < 0) return make_error("write");
    }
    if (av_write_trailer(oc.get()) < 0) return make_error("trailer");
    return Status::Ok();
  };
  const fs::path audio = temp_dir() / "audio_only.mkv";
  ASSERT_TRUE(mux(audio,
                  [](AVStream* st) {
                    st->codecpar->codec_type = AVMEDIA_TYPE_AUDIO;
                    st->codecpar->codec_id = AV_CODEC_ID_PCM_S16LE;
                    st->codecpar->sample_rate = 8000;
                    av_channel_layout_default(&st->codecpar->ch_layout, 1);
                    st->time_base = {1, 1000};
                  },
                  8)
                  .ok());
  auto ra = load_video(audio.string(), {});
  ASSERT_FALSE(ra.ok());
  EXPECT_NE(ra.error().message.find("audio only"), std::string::npos) << ra.error().message;
  std::printf("[ error ] audio only: %s\n", ra.error().message.c_str());

  auto video_par = [](int w, int h) {
    return [w, h](AVStream* st) {
      st->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
      st->codecpar->codec_id = AV_CODEC_ID_MPEG4;
      st->codecpar->width = w;
      st->codecpar->height = h;
      st->time_base = {1, 1000};
      st->avg_frame_rate = {2, 1};
    };
  };
  const fs::path none = temp_dir() / "no_frames.mkv";
  ASSERT_TRUE(mux(none, video_par(84, 56), 0).ok());
  auto rn = load_video(none.string(), {});
  ASSERT_FALSE(rn.ok());
  std::printf("[ error ] zero frames: %s\n", rn.error().message.c_str());

  const fs::path huge = temp_dir() / "huge.mkv";
  ASSERT_TRUE(mux(huge, video_par(100000, 100000), 8).ok());
  auto rh = load_video(huge.string(), {});
  ASSERT_FALSE(rh.ok());
  EXPECT_NE(rh.error().message.find("100000x100000 exceeds the decode limit"), std::string::npos);
  std::printf("[ error ] 100000x100000: %s\n", rh.error().message.c_str());

  // Junk packets behind a plausible header: decode errors, never a crash.
  const fs::path junk = temp_dir() / "junk_packets.mkv";
  ASSERT_TRUE(mux(junk, video_par(84, 56), 20).ok());
  auto rj = load_video(junk.string(), {});
  ASSERT_FALSE(rj.ok());
  std::printf("[ error ] junk packets: %s\n", rj.error().message.c_str());
}

TEST(VideoProbe, LooksLikeVideo) {
  EXPECT_TRUE(looks_like_video("clip.MP4"));
  EXPECT_TRUE(looks_like_video("/no/such/dir/x.webm"));
  EXPECT_FALSE(looks_like_video(kCase + "/frame_0.png"));
  EXPECT_FALSE(looks_like_video(kCase));  // a folder is handled separately
  EXPECT_FALSE(looks_like_video(kCase + "/case.json"));
  if (have_encoder("libx264")) {
    const fs::path noext = temp_dir() / "video_without_extension";
    ASSERT_TRUE(encode_video(temp_dir() / "tmp_noext.mp4", fixture_frames(),
                             x264("yuv420p", {}))
                    .ok());
    fs::copy_file(temp_dir() / "tmp_noext.mp4", noext, fs::copy_options::overwrite_existing);
    EXPECT_TRUE(looks_like_video(noext.string()));
    auto info = probe_video(noext.string());
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->frames, 8);
    EXPECT_DOUBLE_EQ(info->fps, 2.0);
    EXPECT_NEAR(info->duration_s, 4.0, 1e-9);
  }
}
