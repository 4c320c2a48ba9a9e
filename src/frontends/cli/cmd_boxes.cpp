// `vlm boxes`: a model's grounding answer -> boxes in the original image's
// pixels (JSON on stdout), optionally drawn. Needs no weights: only the
// model's config.json (which family, hence which coordinate frame) and its
// preprocessor config (which resize, hence Qwen2.5-VL's pixel frame).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "frontends/cli/commands.h"
#include "runtime/grounding.h"
#include "vision/draw.h"
#include "vision/image.h"

namespace vlm::cli {
namespace {

struct BoxesArgs {
  std::string model, image, text, format = "auto", draw;
  int64_t min_pixels = -1, max_pixels = -1;
};

int fail(int code, const std::string& msg) {
  std::fprintf(stderr, "vlm: %s\n", msg.c_str());
  return code;
}

// model_type from <dir>/config.json; "" when the file has none.
Expected<std::string> read_model_type(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read ", path, " (is --model a checkpoint folder?)");
  auto cfg = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded() || !cfg.is_object()) return make_error(path, ": not a JSON object");
  auto it = cfg.find("model_type");
  if (it == cfg.end() || !it->is_string()) return std::string();
  return it->get<std::string>();
}

int do_boxes(const BoxesArgs& a) {
  const auto requested = runtime::parse_box_format(a.format);
  if (!requested)
    return fail(2, cat("unknown --format '", a.format, "' (auto, qwen-vl, qwen2-vl, qwen2.5-vl, qwen3-vl)"));
  auto model_type = read_model_type(a.model);
  if (!model_type.ok()) return fail(2, model_type.error().message);

  std::string answer = a.text;
  if (answer == "-") answer.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());

  auto img = load_image(a.image);
  if (!img.ok()) return fail(2, img.error().message);
  auto frame = runtime::load_grounding_frame(a.model, img->width, img->height, a.min_pixels, a.max_pixels);
  if (!frame.ok()) return fail(2, frame.error().message);

  runtime::BoxFormat fmt = *requested;
  if (fmt == runtime::BoxFormat::Auto) fmt = runtime::format_for_model_type(*model_type);
  const runtime::GroundingResult r = runtime::parse_grounding(answer, fmt, *frame);

  std::printf("%s\n", runtime::boxes_to_json(r).c_str());
  std::fflush(stdout);

  // Which frame was used is the first thing to check when boxes look off.
  std::fprintf(stderr, "image %dx%d, model input %dx%d (%s), format %s%s\n", frame->orig_w, frame->orig_h,
               frame->input_w, frame->input_h, model_type->empty() ? "no model_type" : model_type->c_str(),
               runtime::box_format_name(r.format),
               r.format == runtime::BoxFormat::Qwen25VL   ? ": absolute pixels of the model input"
               : r.format == runtime::BoxFormat::Auto     ? ""
                                                          : ": 0..1000 of the image");
  for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  for (size_t i = 0; i < r.boxes.size(); ++i)
    for (const auto& n : r.boxes[i].notes)
      std::fprintf(stderr, "note: box %zu (%s): %s\n", i + 1, r.boxes[i].label.c_str(), n.c_str());
  for (const auto& u : r.unparsed) std::fprintf(stderr, "unparsed: %s\n", u.c_str());
  if (r.boxes.empty()) std::fprintf(stderr, "vlm: no boxes found in the answer\n");

  if (!a.draw.empty()) {
    Image out = std::move(img.value());
    std::vector<DrawBox> boxes;
    for (const auto& b : r.boxes) boxes.push_back({b.x1, b.y1, b.x2, b.y2, b.label, b.is_point});
    draw_boxes(out, boxes);
    Status st = save_png(a.draw, out);
    if (!st.ok()) return fail(1, st.error().message);
    std::fprintf(stderr, "wrote %s\n", a.draw.c_str());
  }
  return 0;
}

}  // namespace

void add_boxes(CLI::App& app) {
  auto a = std::make_shared<BoxesArgs>();
  auto* c = app.add_subcommand(
      "boxes", "Turn a model's grounding answer into boxes in the original image's pixels (JSON), optionally drawn");
  c->add_option("--model,-m", a->model, "Checkpoint folder (config.json and preprocessor_config.json; no weights needed)")->required();
  c->add_option("--image,-i", a->image, "The image the answer is about (PNG, JPEG, WebP)")->required();
  c->add_option("--text,-t", a->text, "The model's answer; '-' reads it from stdin")->required();
  c->add_option("--format", a->format, "auto|qwen-vl|qwen2-vl|qwen2.5-vl|qwen3-vl (auto: from config.json's model_type, else from the text)")
      ->capture_default_str();
  c->add_option("--draw", a->draw, "Write the image with the labelled boxes to this PNG");
  c->add_option("--min-pixels", a->min_pixels, "Smallest image area after resizing, as given to the model (default: preprocessor_config.json)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 28));
  c->add_option("--max-pixels", a->max_pixels, "Largest image area after resizing, as given to the model (default: preprocessor_config.json)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 28));
  c->callback([a] { set_exit_code(do_boxes(*a)); });
}

}  // namespace vlm::cli
