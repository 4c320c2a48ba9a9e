// Video input: FFmpeg decoding (mp4, mov, mkv, webm, avi, gif, ts, ...) and
// folders of frames, with the frame selection of qwen-vl-utils
// (QWEN_PREPROCESSING.md §6.1), producing the RGB8 frames that
// preprocess_qwen_video() turns into pixel_values_videos.
//
// Frame selection (select_video_frames): `smart_nframes` of qwen-vl-utils
// 0.0.10/0.0.14 — an even count, between min_frames (rounded up to even) and
// max_frames (rounded down), never more than the clip has; fewer than 2 is an
// error — then indices round(torch.linspace(first, last, n)) computed in
// float32 exactly as ATen's CPU kernel and rounded half-to-even, and
// sample_fps = n / clip_frames * video_fps. start_s/end_s follow
// calculate_video_frame_range (first = ceil(start*fps), last =
// min(floor(end*fps), total-1)).
//
// Frame numbering: frames are counted in presentation order as the decoder
// outputs them (what torchvision's read_video list and decord's index give).
// The total comes from the container (nb_frames) when it states one;
// otherwise (Matroska/WebM, some AVI/TS) a demux-only pass counts the video
// packets, which is exact for every codec with one frame per packet and costs
// reading the file, not decoding it (the same number torchcodec's "exact"
// mode reports; decord instead guesses duration*fps). If decoding then yields
// fewer frames than the total promised, the selection is recomputed from the
// true count and decoded again, unless the shortfall is large, which is
// reported as a truncated or corrupt file.
//
// Colour: each decoded frame goes to RGB24 through libswscale with
// SWS_BICUBIC|SWS_ACCURATE_RND|SWS_FULL_CHR_H_INT|SWS_BITEXACT. The YUV matrix
// and range are the ones the stream signals (BT.709, BT.2020, SMPTE 240M,
// FCC, full/"JPEG" range incl. the yuvj formats); when the stream says
// nothing, BT.601 limited range — swscale's default, which is what decord and
// torchvision (PyAV) produce for untagged video.
//
// Rotation: a display matrix that rotates by a multiple of 90 degrees (phone
// videos) is applied after conversion, unless VideoSampling::apply_rotation is
// false. (decord and torchvision ignore it and hand the model sideways frames.)
//
// Untrusted input: only container demuxers on a fixed list are accepted (no
// playlists, concat scripts or image2 globs that would read other files; the
// file: protocol only), the declared frame size is checked against
// DecodeLimits before a decoder is opened, decoded frames are capped by
// max_decoded_frames, every loop is bounded, and an interrupt callback
// enforces timeout_s. Every FFmpeg object is owned by an RAII wrapper.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "vision/image.h"

namespace vlm {

struct VideoInfo {
  int width = 0, height = 0;  // as displayed, i.e. after `rotation` (in a VideoClip
                              // loaded with apply_rotation = false: as stored)
  int64_t frames = 0;         // see frames_counted
  double fps = 0;             // average frame rate
  double duration_s = 0;
  std::string codec;      // e.g. "h264"
  std::string container;  // demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  int rotation = 0;       // clockwise degrees to display upright: 0, 90, 180, 270
  bool frames_counted = false;  // true: the container gave no count, packets were counted
};

using VideoProgress = std::function<void(int64_t done, int64_t total)>;

struct VideoSampling {
  double fps = 2.0;  // frames sampled per second of video
  int min_frames = 4;
  int max_frames = 768;
  std::optional<int> nframes;  // exact count instead of fps (rounded to even)
  double start_s = 0, end_s = -1;  // clip range in seconds; end_s < 0: to the end
  int64_t max_decoded_frames = 100000;  // frames decoded to reach the last selected one
  DecodeLimits limits;                  // per frame (max_file_bytes: frame folders only)
  // Beyond the brief's fields:
  int64_t max_clip_bytes = int64_t(8) << 30;  // RGB bytes of all selected frames
  double timeout_s = 0;                       // wall clock for one load; 0 = none
  bool apply_rotation = true;
  int decode_threads = 0;  // 0 = FFmpeg's choice
};

struct VideoClip {
  std::vector<Image> frames;
  double sample_fps = 2.0;       // for Qwen2.5-VL second_per_grid_ts = 2 / sample_fps
  std::vector<int64_t> indices;  // source frame index of each frame
  VideoInfo info;
};

// The frame choice alone (exposed for tests and for callers that budget
// tokens before decoding).
struct FrameSelection {
  int64_t first = 0, last = 0;   // clip range in source frames, inclusive
  int64_t clip_frames = 0;       // last - first + 1
  std::vector<int64_t> indices;  // ascending source frame indices, size n
  double sample_fps = 0;
};

// qwen-vl-utils smart_nframes for a clip of `clip_frames` frames.
Expected<int64_t> smart_nframes(int64_t clip_frames, double video_fps, const VideoSampling& s);
// round(torch.linspace(start, end, n)) with float32 arithmetic and
// round-half-even, as torch's CPU kernel computes it.
std::vector<int64_t> torch_linspace_round(int64_t start, int64_t end, int64_t n);
Expected<FrameSelection> select_video_frames(int64_t total_frames, double video_fps,
                                             const VideoSampling& s);

Expected<VideoInfo> probe_video(const std::string& path);
// `progress` is called as frames decode (at most ~100 times plus the end);
// `total` is the number of frames that must be decoded.
Expected<VideoClip> load_video(const std::string& path, const VideoSampling& s,
                               const VideoProgress& progress = {});
// The same from a file image in memory (uploads, fuzzing); `bytes` must stay
// valid during the call.
Expected<VideoInfo> probe_video_memory(std::span<const uint8_t> bytes);
Expected<VideoClip> load_video_memory(std::span<const uint8_t> bytes, const VideoSampling& s,
                                      const VideoProgress& progress = {});

// A folder of frames (PNG/JPEG/WebP) in natural name order (frame_2 before
// frame_10). Every frame is used, as qwen-vl-utils does for a list of images;
// an odd count is padded later by preprocess_qwen_video. sample_fps = fps.
// Only s.max_decoded_frames and s.limits apply.
Expected<VideoClip> load_frame_folder(const std::string& dir, double fps,
                                      const VideoSampling& s = {});
// Natural order of file names: digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b);

// For the CLI: a known video extension, or (unknown extension) a file that
// is not a still image and that FFmpeg opens with a video stream. Folders and
// PNG/JPEG/WebP images are not videos.
bool looks_like_video(const std::string& path);

}  // namespace vlm
