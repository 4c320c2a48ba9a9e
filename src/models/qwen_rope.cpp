#include "models/qwen_rope.h"

#include <algorithm>
#include <cmath>

namespace vlm::models {

Expected<int64_t> qwen_rope_index(const std::vector<int32_t>& ids, const RopeIndexArgs& a,
                                  std::vector<std::array<int64_t, 3>>* pos) {
  const int64_t L = int64_t(ids.size());
  pos->clear();
  pos->reserve(size_t(L));
  size_t next_img = 0, next_vid = 0;
  int64_t next = 0, maxp = -1;
  int64_t i = 0;
  auto emit = [&](int64_t t, int64_t h, int64_t w) {
    pos->push_back({t, h, w});
    maxp = std::max({maxp, t, h, w});
  };
  while (i < L) {
    const int32_t tok = ids[size_t(i)];
    const bool is_img = tok == a.image_token, is_vid = tok == a.video_token;
    if (!is_img && !is_vid) {
      emit(next, next, next);
      ++next;
      ++i;
      continue;
    }
    const auto& grids = is_img ? a.image_grids : a.video_grids;
    size_t& gi = is_img ? next_img : next_vid;
    if (gi >= grids.size())
      return make_error("prompt has more ", is_img ? "image" : "video", " placeholder blocks than ",
                        is_img ? "images" : "videos", " (", grids.size(), ")");
    const Grid g = grids[gi];
    const int64_t lt = g[0], lh = g[1] / a.merge, lw = g[2] / a.merge;
    const int64_t n = lt * lh * lw;
    if (i + n > L) return make_error("placeholder block at token ", i, " is shorter than its grid (", n, " tokens)");
    for (int64_t j = 0; j < n; ++j)
      if (ids[size_t(i + j)] != tok)
        return make_error("placeholder block at token ", i, " has ", j, " tokens, its grid needs ", n);
    double step = 1.0;
    if (is_vid && !a.second_per_grid_ts.empty()) step = a.second_per_grid_ts[gi] * a.tokens_per_second;
    if (is_img) step = 0.0;  // an image is a single frame group
    const int64_t base = next;
    for (int64_t tg = 0; tg < lt; ++tg) {
      // Qwen2.5-VL truncates the product (transformers 4.49 / the Qwen reference code).
      const int64_t tt = is_vid && !a.second_per_grid_ts.empty() ? int64_t(double(tg) * step) : (is_img ? 0 : tg);
      for (int64_t r = 0; r < lh; ++r)
        for (int64_t c = 0; c < lw; ++c) emit(base + tt, base + r, base + c);
    }
    next = a.rule == RopeResumeRule::Original ? maxp + 1 : base + std::max(lh, lw);
    ++gi;
    i += n;
  }
  if (next_img != a.image_grids.size() || next_vid != a.video_grids.size())
    return make_error("prompt has ", next_img, " image and ", next_vid, " video placeholder blocks but ",
                      a.image_grids.size(), " images and ", a.video_grids.size(), " videos were given");
  return maxp + 1 - L;
}

std::vector<int32_t> expand_placeholders(const std::vector<int32_t>& ids, int32_t image_token, int32_t video_token,
                                         const std::vector<Grid>& image_grids, const std::vector<Grid>& video_grids,
                                         int merge) {
  const int64_t mm = int64_t(merge) * merge;
  std::vector<int32_t> out;
  size_t gi = 0, gv = 0;
  for (int32_t id : ids) {
    if (id == image_token || id == video_token) {
      const bool img = id == image_token;
      VLM_CHECK(img ? gi < image_grids.size() : gv < video_grids.size(), "more placeholders than grids");
      const Grid& g = img ? image_grids[gi++] : video_grids[gv++];
      out.insert(out.end(), size_t(g[0] * g[1] * g[2] / mm), id);
    } else {
      out.push_back(id);
    }
  }
  return out;
}

void vision_patch_layout(const std::vector<Grid>& grids, int merge, std::vector<std::pair<int, int>>* rc,
                         std::vector<int32_t>* cu) {
  rc->clear();
  cu->assign(1, 0);
  for (const Grid& g : grids)
    for (int64_t t = 0; t < g[0]; ++t) {
      for (int64_t bh = 0; bh < g[1] / merge; ++bh)
        for (int64_t bw = 0; bw < g[2] / merge; ++bw)
          for (int i = 0; i < merge; ++i)
            for (int j = 0; j < merge; ++j) rc->emplace_back(int(bh * merge + i), int(bw * merge + j));
      cu->push_back(cu->back() + int32_t(g[1] * g[2]));
    }
}

void mrope_tables(const std::array<int64_t, 3>* pos, int64_t n, int head_dim, double theta,
                  const std::array<int, 3>& section, bool interleaved, std::vector<float>* cos,
                  std::vector<float>* sin) {
  const int half = head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  std::vector<int> axis(static_cast<size_t>(half));
  for (int j = 0; j < half; ++j) {
    // fp32 like HF: exponent 2j/d in fp32, pow in fp32.
    inv[size_t(j)] = 1.0f / std::pow(float(theta), float(2 * j) / float(head_dim));
    if (interleaved) {
      int ax = 0;
      if (j % 3 == 1 && j < 3 * section[1]) ax = 1;
      else if (j % 3 == 2 && j < 3 * section[2]) ax = 2;
      axis[size_t(j)] = ax;
    } else {
      axis[size_t(j)] = j < section[0] ? 0 : (j < section[0] + section[1] ? 1 : 2);
    }
  }
  cos->resize(size_t(n * head_dim));
  sin->resize(size_t(n * head_dim));
  for (int64_t r = 0; r < n; ++r) {
    float* c = cos->data() + r * head_dim;
    float* s = sin->data() + r * head_dim;
    for (int j = 0; j < half; ++j) {
      const float ang = float(pos[r][size_t(axis[size_t(j)])]) * inv[size_t(j)];
      c[j] = c[j + half] = std::cos(ang);
      s[j] = s[j + half] = std::sin(ang);
    }
  }
}

PosEmbedAxis pos_embed_axis(int64_t n, int64_t grid) {
  PosEmbedAxis a;
  a.lo.resize(size_t(n));
  a.hi.resize(size_t(n));
  a.frac.resize(size_t(n));
  // torch's linspace kernel: fp32 step, the second half counted back from the end so the last
  // sample is exactly G-1; a single sample is the start.
  const float end = float(grid - 1);
  const float step = n > 1 ? end / float(n - 1) : 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = n == 1 ? 0.0f : i < n / 2 ? step * float(i) : end - step * float(n - 1 - i);
    const int64_t lo = int64_t(v);
    a.lo[size_t(i)] = lo;
    a.hi[size_t(i)] = std::min(lo + 1, grid - 1);
    a.frac[size_t(i)] = v - float(lo);
  }
  return a;
}

}  // namespace vlm::models
