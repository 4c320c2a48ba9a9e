// M-RoPE for the Qwen-VL families: the three position streams of a prompt
// (get_rope_index) and the cos/sin tables built from them.
#pragma once
#include <array>
#include <utility>
#include <vector>

#include "core/status.h"
#include "models/model.h"

namespace vlm::models {

struct RopeIndexArgs {
  int32_t image_token = 151655, video_token = 151656;
  int merge = 2;
  std::vector<Grid> image_grids, video_grids;
  // Qwen2.5-VL: video frame-group time step = second_per_grid_t · tokens_per_second.
  // Empty = Qwen2-VL (time step 1 per group).
  std::vector<double> second_per_grid_ts;
  double tokens_per_second = 0;
  RopeResumeRule rule = RopeResumeRule::Original;
};

// Fills `pos` (one (t, h, w) triple per token) and returns rope_delta = max + 1 - len.
// Errors when placeholder runs and grids disagree.
Expected<int64_t> qwen_rope_index(const std::vector<int32_t>& ids, const RopeIndexArgs& a,
                                  std::vector<std::array<int64_t, 3>>* pos);

// Each image/video placeholder id becomes t·h·w/merge² copies of itself, taking the grids in order
// (one per image, one per video block). Callers have checked the counts agree.
std::vector<int32_t> expand_placeholders(const std::vector<int32_t>& ids, int32_t image_token, int32_t video_token,
                                         const std::vector<Grid>& image_grids, const std::vector<Grid>& video_grids,
                                         int merge);

// Vision patch rows in merge-window order (QWEN_PREPROCESSING §5.2): the (row, col) of every
// patch, for the 2-D rope, and the attention segments — one per temporal group of each grid.
void vision_patch_layout(const std::vector<Grid>& grids, int merge, std::vector<std::pair<int, int>>* rc,
                         std::vector<int32_t>* cu_seqlens);

// cos/sin [n, head_dim] for tokens with M-RoPE positions. section = (s_t, s_h, s_w) frequency
// slots (sum = head_dim/2); interleaved = Qwen3-VL's THWTHW… slot assignment.
void mrope_tables(const std::array<int64_t, 3>* pos, int64_t n, int head_dim, double theta,
                  const std::array<int, 3>& section, bool interleaved, std::vector<float>* cos,
                  std::vector<float>* sin);

// Qwen3-VL's learned G×G position table is sampled bilinearly at torch.linspace(0, G-1, n) (fp32)
// along each patch axis (QWEN_MODELS §6.1). Sample i lies between table rows lo[i] and hi[i];
// frac[i] is the weight of hi[i].
struct PosEmbedAxis {
  std::vector<int64_t> lo, hi;
  std::vector<float> frac;
};
PosEmbedAxis pos_embed_axis(int64_t n, int64_t grid);

}  // namespace vlm::models
