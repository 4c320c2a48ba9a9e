#include <chrono>
#include <filesystem>
#include <cstdio>
#include <iostream>

#include "frontends/cli/commands.h"
#include "ops/ops.h"
#include "runtime/engine.h"
#include "runtime/grounding.h"
#include "vision/draw.h"
#include "text/tokenizer.h"
#include "vision/video.h"

namespace vlm::cli {
namespace {

int g_exit = 0;

struct RunArgs {
  LoadArgs load;
  std::string model, prompt = "Describe this image.", system;
  std::vector<std::string> images, videos;
  double fps = 2.0;
  int max_frames = 768;
  bool rope_v5 = false;
  int max_tokens = 256;
  double temperature = -1, top_p = -1, repetition_penalty = -1;
  int top_k = -1;
  uint64_t seed = 0;
  int64_t min_pixels = -1, max_pixels = -1;
  bool pil = false, stats = false, ground = false;
  std::string draw;
};

void load_progress(double f, const char* what) {
  static int last = -1;
  const int pct = int(f * 100);
  if (pct == last) return;
  last = pct;
  std::fprintf(stderr, "\rloading %-10s %3d%%", what, pct);
  if (f >= 1.0) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

int do_run(const RunArgs& a) {
  int status = 0;
  auto model = load_or_report(a.model, a.load, false, &status);
  if (!model) return status;
  std::vector<models::Media> media;
  nlohmann::json content = nlohmann::json::array();
  for (const auto& path : a.images) {
    auto m = models::load_image_media(path);
    if (!m.ok()) {
      std::fprintf(stderr, "vlm: %s\n", m.error().message.c_str());
      return 2;
    }
    media.push_back(std::move(m.value()));
    content.push_back({{"type", "image"}});
  }
  for (const auto& path : a.videos) {
    auto progress = [](int64_t done, int64_t total) {
      std::fprintf(stderr, "\rdecoding video %lld/%lld frames", (long long)done, (long long)total);
      if (done >= total) std::fprintf(stderr, "\n");
      std::fflush(stderr);
    };
    auto m = models::load_video_media(path, a.fps, a.max_frames, progress);
    if (!m.ok()) {
      std::fprintf(stderr, "vlm: %s\n", m.error().message.c_str());
      return 2;
    }
    media.push_back(std::move(m.value()));
    content.push_back({{"type", "video"}});
  }
  content.push_back({{"type", "text"}, {"text", a.prompt}});
  nlohmann::json messages = nlohmann::json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  messages.push_back({{"role", "user"}, {"content", content}});
  models::PrepareOptions po;
  po.min_pixels = a.min_pixels;
  po.max_pixels = a.max_pixels;
  po.pil_resampler = a.pil;
  po.video_frame_budget = true;
  if (a.rope_v5) {
    po.rope_rule = models::RopeResumeRule::Transformers5;
    po.qwen3_video_outer_pair = true;
  }
  auto prompt = model->prepare(messages, media, po);
  if (!prompt.ok()) {
    std::fprintf(stderr, "vlm: %s\n", prompt.error().message.c_str());
    return 2;
  }
  runtime::GenerateOptions go;
  go.max_new_tokens = a.max_tokens;
  runtime::SamplingOverrides so;  // flags left at their negative "unset" value keep the checkpoint's
  if (a.temperature >= 0) so.temperature = float(a.temperature);
  if (a.top_p >= 0) so.top_p = float(a.top_p);
  if (a.top_k >= 0) so.top_k = a.top_k;
  if (a.repetition_penalty > 0) so.repetition_penalty = float(a.repetition_penalty);
  so.seed = a.seed;
  go.sampling = runtime::sampling_for(*model, so);
  auto res = runtime::generate(*model, *prompt, go, [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::printf("\n");
  std::fflush(stdout);  // the answer line before any stats or errors on stderr
  if (!res.ok()) {
    std::fprintf(stderr, "vlm: %s\n", res.error().message.c_str());
    return 1;
  }
  if (a.ground || !a.draw.empty()) {
    if (media.empty() || media[0].kind != models::Media::Kind::Image) {
      std::fprintf(stderr, "vlm: --ground/--draw need an image\n");
      return 2;
    }
    // Boxes are relative to the first image. Qwen2-VL wraps them in special tokens, so parse
    // a decode that keeps them; the stop token is not part of the answer.
    std::vector<int32_t> toks = res->tokens;
    if (res->stopped_by_eos && !toks.empty()) toks.pop_back();
    const std::string answer = model->tokenizer().decode(toks, /*skip_special=*/false);
    const Image& img = media[0].frames[0];
    // Only Qwen2.5-VL answers in resized-input pixels; the frame is computed exactly as the
    // engine resized (same smart_resize and bounds).
    const bool qwen = model->family().rfind("qwen", 0) == 0;
    auto frame = qwen ? runtime::load_grounding_frame(a.model, img.width, img.height, a.min_pixels, a.max_pixels)
                      : Expected<runtime::GroundingFrame>(runtime::GroundingFrame{img.width, img.height, img.width, img.height});
    if (!frame.ok()) {
      std::fprintf(stderr, "vlm: %s\n", frame.error().message.c_str());
      return 1;
    }
    runtime::GroundingResult g =
        runtime::parse_grounding(answer, runtime::format_for_model_type(model->family()), *frame);
    std::printf("%s\n", runtime::boxes_to_json(g).c_str());
    for (const auto& u : g.unparsed) std::fprintf(stderr, "unparsed: %s\n", u.c_str());
    if (!a.draw.empty()) {
      Image out = img;
      std::vector<DrawBox> boxes;
      for (const auto& b : g.boxes) boxes.push_back({b.x1, b.y1, b.x2, b.y2, b.label, b.is_point});
      draw_boxes(out, boxes);
      if (Status st = save_png(a.draw, out); !st.ok()) {
        std::fprintf(stderr, "vlm: %s\n", st.error().message.c_str());
        return 1;
      }
    }
  }
  if (a.stats) {
    const auto& r = *res;
    const size_t n = r.tokens.size();
    std::fprintf(stderr, "prompt %lld tokens, prefill %.1f ms (%.1f tok/s); %zu tokens in %.1f ms (%.1f tok/s)\n",
                 (long long)r.prompt_tokens, r.prefill_ms, r.prompt_tokens / (r.prefill_ms / 1000.0), n,
                 r.decode_ms, n > 1 ? double(n - 1) / (r.decode_ms / 1000.0) : 0.0);
  }
  return 0;
}

}  // namespace

int exit_code() { return g_exit; }
void set_exit_code(int code) { g_exit = code; }

void add_load_options(CLI::App* c, LoadArgs* a) {
  c->add_option("--weights", a->weights,
                "Linear-layer weight format: native (exact f32 math on the stored weights), bf16, q8, q4 (quantised at load)")
      ->capture_default_str();
  c->add_option("--vision-weights", a->vision_weights,
                "Format of the vision tower's linear layers (default: as --weights); e.g. --weights q4 --vision-weights bf16");
  c->add_flag("--mmap", a->mmap,
              "Compute from the mapped checkpoint instead of copying native/bf16 weights into huge pages (faster load, slower decode)");
}

std::string check_load_args(const LoadArgs& a) {
  ops::LinearFormat f;
  if (!ops::parse_linear_format(a.weights, &f)) return "--weights must be native, bf16, q8 or q4 (got '" + a.weights + "')";
  if (!a.vision_weights.empty() && !ops::parse_linear_format(a.vision_weights, &f))
    return "--vision-weights must be native, bf16, q8 or q4 (got '" + a.vision_weights + "')";
  return {};
}

std::unique_ptr<models::Model> load_or_report(const std::string& dir, const LoadArgs& la, bool quiet, int* status) {
  if (status) *status = 2;
  if (std::string e = check_load_args(la); !e.empty()) {
    std::fprintf(stderr, "vlm: %s\n", e.c_str());
    return nullptr;
  }
  if (status) *status = 1;
  auto t0 = std::chrono::steady_clock::now();
  models::LoadOptions lo;
  lo.weights = la.weights;
  lo.vision_weights = la.vision_weights;
  lo.mmap = la.mmap;
  lo.progress = quiet ? nullptr : load_progress;
  auto m = models::load_model(dir, lo);
  if (!m.ok()) {
    std::fprintf(stderr, "vlm: %s\n", m.error().message.c_str());
    return nullptr;
  }
  if (!quiet)
    std::fprintf(stderr, "loaded %s (%s) in %.2f s\n", dir.c_str(), (*m)->family().c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return std::move(m.value());
}

void add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* c = app.add_subcommand("run", "Answer a prompt about images with a vision-language model");
  c->add_option("--model,-m", a->model, "Checkpoint folder (config.json, *.safetensors, tokenizer.json, ...)")->required();
  add_load_options(c, &a->load);
  c->add_option("--image,-i", a->images, "Image file (PNG, JPEG, WebP); repeat for several images");
  c->add_option("--video", a->videos, "Video file (mp4, webm, mkv, mov, avi) or a folder of frames; repeatable");
  c->add_option("--fps", a->fps, "Frames sampled per second of video (a frame folder is taken to be at this rate)")->capture_default_str()->check(CLI::Range(0.01, 120.0));
  c->add_option("--max-frames", a->max_frames, "Most frames sampled from one video")->capture_default_str()->check(CLI::Range(2, 100000));
  c->add_flag("--rope-v5", a->rope_v5, "Prompt videos as transformers 5.17 does: text positions resume at block start + max(h, w) (not Qwen's max + 1), and Qwen3-VL keeps the outer vision_start/end pair");
  c->add_option("--prompt,-p", a->prompt, "The question or instruction")->capture_default_str();
  c->add_option("--system", a->system, "System message (default: the chat template's own)");
  c->add_option("--max-tokens", a->max_tokens, "Most tokens to generate")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  c->add_option("--temperature", a->temperature, "Sampling temperature; 0 = greedy (default: generation_config.json)")->check(CLI::Range(0.0, 100.0));
  c->add_option("--top-p", a->top_p, "Nucleus sampling mass (default: generation_config.json)")->check(CLI::Range(0.0, 1.0));
  c->add_option("--top-k", a->top_k, "Keep the k most likely tokens; 0 = off (default: generation_config.json)")->check(CLI::Range(0, 1 << 30));
  c->add_option("--repetition-penalty", a->repetition_penalty, "Penalty for tokens already in the sequence (default: generation_config.json)")->check(CLI::Range(0.01, 100.0));
  c->add_option("--seed", a->seed, "Random seed for sampling")->capture_default_str();
  c->add_option("--min-pixels", a->min_pixels, "Smallest image area after resizing (default: preprocessor_config.json)")->check(CLI::Range(int64_t(1), int64_t(1) << 28));
  c->add_option("--max-pixels", a->max_pixels, "Largest image area after resizing (default: preprocessor_config.json)")->check(CLI::Range(int64_t(1), int64_t(1) << 28));
  c->add_flag("--pil-resize", a->pil, "Resize like PIL (HF slow processor) instead of torchvision (transformers 5 default)");
  c->add_flag("--stats", a->stats, "Print prefill/decode speed to stderr");
  c->add_flag("--ground", a->ground, "Parse boxes/points in the answer and print them as JSON in the first image's own pixels");
  c->add_option("--draw", a->draw, "Write the first image with the answer's boxes drawn to this PNG (implies --ground)");
  c->callback([a] { set_exit_code(do_run(*a)); });
}

}  // namespace vlm::cli
