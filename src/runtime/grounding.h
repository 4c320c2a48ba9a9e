// Grounding: turning a model's answer into boxes in the ORIGINAL image's
// pixels (QWEN_PROMPTING.md §6).
//
// The family uses three coordinate frames:
//  * Qwen-VL v1, Qwen2-VL, Qwen3-VL: integers 0..1000 relative to the image,
//    so x_orig = x / 1000 * W_orig whatever the resize was;
//  * Qwen2.5-VL: absolute pixels of the RESIZED model input (the smart_resize
//    output, grid * patch_size), so x_orig = x * W_orig / W_input. Getting
//    W_input wrong (other min/max_pixels, another rounding rule) moves every
//    box, which is why GroundingFrame carries the input size explicitly.
//
// Coordinates stay doubles end to end; only boxes_to_json rounds (to 0.1 px).
// Out-of-range values are clamped to the frame and reversed corners swapped,
// each with a note on the box, so a caller can tell repaired boxes from clean
// ones. Fragments that look like boxes but cannot be read go to `unparsed`
// with the reason; nothing here throws or aborts on arbitrary text.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vlm {
struct QwenImageConfig;
}

namespace vlm::runtime {

enum class BoxFormat {
  Auto,      // detect from the text (JSON without a model type is read as Qwen2.5-VL)
  QwenVL,    // <ref>..</ref><box>(x1,y1),(x2,y2)</box>, 0..1000
  Qwen2VL,   // <|object_ref_start|>..<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>, 0..1000
  Qwen25VL,  // JSON bbox_2d / point_2d in absolute pixels of the resized input
  Qwen3VL,   // JSON bbox_2d / point_2d, 0..1000
};

struct GroundingFrame {
  int orig_w = 0, orig_h = 0;    // the image as the user has it
  int input_w = 0, input_h = 0;  // resized model input (smart_resize output)
};

struct GroundedBox {
  std::string label;
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // original pixels, x1 <= x2, y1 <= y2
  std::optional<double> score;
  bool is_point = false;  // then x1 == x2 and y1 == y2
  std::vector<std::string> notes;  // repairs applied, e.g. "clamped x2 from 1040 to 1000"
};

struct GroundingResult {
  std::vector<GroundedBox> boxes;
  std::vector<std::string> unparsed;  // "<why>: <fragment>"
  BoxFormat format = BoxFormat::Auto;  // the format the coordinates were read in (Auto resolved)
  std::vector<std::string> notes;      // about the whole answer, e.g. an ambiguous Auto guess
};

GroundingResult parse_grounding(std::string_view answer, BoxFormat fmt, const GroundingFrame& f);

// [{"label": ..., "box": [x1,y1,x2,y2], "score"?: s}, ...], one box per line.
// Coordinates are rounded to 0.1 px (an integer prints without ".0"). Points
// carry both "point": [x, y] and the degenerate "box": [x, y, x, y], so a
// consumer that only reads "box" still gets the location.
std::string boxes_to_json(const GroundingResult& r);

// qwen2_vl -> Qwen2VL, qwen2_5_vl -> Qwen25VL, qwen3_vl / qwen3_vl_moe ->
// Qwen3VL, qwen (Qwen-VL v1) -> QwenVL, anything else -> Auto.
BoxFormat format_for_model_type(const std::string& model_type);
// "auto", "qwen-vl", "qwen2-vl", "qwen2.5-vl", "qwen3-vl" (also with '_' and
// without the '-'); nullopt if unknown.
std::optional<BoxFormat> parse_box_format(std::string_view name);
const char* box_format_name(BoxFormat f);

// The frame the model saw for an image of orig_w x orig_h, computed the way
// the engine's preprocessing does (smart_resize with the transformers-5
// rule; min/max_pixels <= 0 mean the config's values; no resize when the
// config says do_resize=false).
Expected<GroundingFrame> grounding_frame(const QwenImageConfig& cfg, int orig_w, int orig_h,
                                         int64_t min_pixels = -1, int64_t max_pixels = -1);
// Same, reading <model_dir>/preprocessor_config.json.
Expected<GroundingFrame> load_grounding_frame(const std::string& model_dir, int orig_w, int orig_h,
                                              int64_t min_pixels = -1, int64_t max_pixels = -1);
// From a prompt's image grid (t, h, w in patches): exactly what the model saw.
GroundingFrame frame_from_grid(int orig_w, int orig_h, int64_t grid_h, int64_t grid_w, int patch_size);

}  // namespace vlm::runtime
