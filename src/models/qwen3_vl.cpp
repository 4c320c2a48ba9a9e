// Qwen3-VL (dense): config, weight binding by HF names, prompt preparation with
// per-frame video timestamps, the vision tower (learned interpolated position
// embedding, deepstack mergers), interleaved M-RoPE and the deepstack
// injection into the first decoder layers. Math follows docs/spec/QWEN_MODELS.md
// §6, §8.3 and §9.2; prompts QWEN_PROMPTING.md §3.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/model.h"
#include "models/qwen_config.h"
#include "models/qwen_media.h"
#include "models/qwen_rope.h"
#include "models/rope_lm.h"
#include "nn/vit.h"

namespace vlm::models {
namespace {

using nlohmann::json;

struct Qwen3VisionConfig {
  int64_t width = 0, mlp = 0, out = 0, pos_embeds = 2304;
  int depth = 0, heads = 0, patch = 16, merge = 2, temporal = 2, in_ch = 3;
  ops::Act act = ops::Act::GeluTanh;
  std::vector<int> deepstack;  // block indexes whose output feeds a deepstack merger, in merger order
};

struct Qwen3Config : QwenTextConfig {
  Qwen3VisionConfig vision;
};

// Nested layout (text_config / vision_config), as every Qwen3-VL checkpoint ships; a text field
// missing from text_config is looked up at the top level.
Expected<Qwen3Config> parse_config(const json& cfg) {
  Qwen3Config c;
  if (!cfg.contains("text_config") || !cfg["text_config"].is_object())
    return make_error("config.json: Qwen3-VL needs a text_config object");
  QwenTextDefaults d;
  d.rope_theta = 5e5;  // Qwen3VLTextConfig default; real checkpoints say 5e6
  d.mrope = {24, 20, 20};
  d.require_mrope = false;
  d.qkv_bias = false;  // attention_bias decides
  d.qk_norm = true;
  // HF's Qwen3-VL rotary always interleaves (mrope_interleaved is informational), so we do too.
  VLM_ASSIGN_OR_RETURN(static_cast<QwenTextConfig&>(c), parse_qwen_text_config(cfg, d));

  if (!cfg.contains("vision_config") || !cfg["vision_config"].is_object())
    return make_error("config.json: missing vision_config");
  const json& vc = cfg["vision_config"];
  Qwen3VisionConfig& V = c.vision;
  auto vint = [&](const char* k, int64_t dflt) -> int64_t {
    return vc.contains(k) && vc[k].is_number_integer() ? vc[k].get<int64_t>() : dflt;
  };
  V.depth = int(vint("depth", 0));
  V.heads = int(vint("num_heads", 0));
  V.width = vint("hidden_size", 0);
  V.mlp = vint("intermediate_size", 0);
  V.out = vint("out_hidden_size", 0);
  V.pos_embeds = vint("num_position_embeddings", 2304);
  V.patch = int(vint("patch_size", 16));
  V.merge = int(vint("spatial_merge_size", 2));
  V.temporal = int(vint("temporal_patch_size", 2));
  V.in_ch = int(vint("in_channels", 3));
  VLM_ASSIGN_OR_RETURN(V.act, parse_activation(vc.value("hidden_act", "gelu_pytorch_tanh"), "vision hidden_act"));
  if (vc.contains("deepstack_visual_indexes")) {
    if (!vc["deepstack_visual_indexes"].is_array()) return make_error("config.json: bad deepstack_visual_indexes");
    for (const auto& b : vc["deepstack_visual_indexes"]) {
      if (!b.is_number_integer() || b.get<int>() < 0 || b.get<int>() >= V.depth)
        return make_error("config.json: deepstack_visual_indexes entry outside 0..", V.depth - 1);
      V.deepstack.push_back(b.get<int>());
    }
  }
  if (V.depth <= 0 || V.heads <= 0 || V.width <= 0 || V.out <= 0 || V.mlp <= 0 || V.width % V.heads != 0 ||
      (V.width / V.heads) % 4 != 0 || V.patch <= 0 || V.merge <= 0 || V.temporal <= 0 || V.in_ch <= 0 ||
      V.pos_embeds <= 0)
    return make_error("config.json: invalid vision_config (depth ", V.depth, ", heads ", V.heads, ", width ",
                      V.width, ")");
  if (V.out != c.text.hidden)
    return make_error("config.json: vision out_hidden_size ", V.out, " != text hidden_size ", c.text.hidden);
  return c;
}

// "<t seconds>" per temporal group of a video given as frames sampled at `fps` (QWEN_PREPROCESSING
// §7.2; a frame list gets indices 0..n-1, padded with the last to whole groups like the pixels).
std::vector<std::string> video_timestamps(size_t frames, double fps, int group) {
  std::vector<double> ts;
  for (size_t i = 0; i < frames; ++i) ts.push_back(double(i) / fps);
  while (ts.size() % size_t(group)) ts.push_back(ts.back());
  std::vector<std::string> out;
  for (size_t i = 0; i < ts.size(); i += size_t(group)) {
    char buf[64];
    // printf's %.1f rounds the exact binary value half-to-even, like Python's format().
    std::snprintf(buf, sizeof buf, "<%.1f seconds>", (ts[i] + ts[i + size_t(group) - 1]) / 2);
    out.emplace_back(buf);
  }
  return out;
}

// Which video prompt form to build. Qwen's processor replaces the template's whole
// <|vision_start|><|video_pad|><|vision_end|>; transformers 5.17 (the fixtures) replaces only the
// pad and keeps that outer pair (PrepareOptions::qwen3_video_outer_pair, which the checker sets
// from a case's recorded prompt).
bool keep_outer_pair(const PrepareOptions& o) { return o.qwen3_video_outer_pair; }

class Qwen3VL final : public Model {
 public:
  std::string family() const override { return "qwen3_vl"; }

  static Expected<std::unique_ptr<Model>> load(const std::string& dir, const json& config, const LoadOptions& opt) {
    auto m = std::make_unique<Qwen3VL>();
    m->dir_ = dir;
    VLM_ASSIGN_OR_RETURN(m->cfg_, parse_config(config));
    VLM_TRY_STATUS(m->load_common(dir, config, opt));
    VLM_ASSIGN_OR_RETURN(m->pre_, load_qwen_media_config(dir));
    if (m->pre_.image.patch_size != m->cfg_.vision.patch || m->pre_.image.merge_size != m->cfg_.vision.merge ||
        m->pre_.temporal_patch != m->cfg_.vision.temporal)
      return make_error(dir, ": preprocessor patch/merge/temporal sizes (", m->pre_.image.patch_size, ", ",
                        m->pre_.image.merge_size, ", ", m->pre_.temporal_patch, ") disagree with vision_config (",
                        m->cfg_.vision.patch, ", ", m->cfg_.vision.merge, ", ", m->cfg_.vision.temporal, ")");
    m->vocab_ = m->cfg_.text.vocab;
    VLM_TRY_STATUS(m->bind());
    return std::unique_ptr<Model>(std::move(m));
  }

  Expected<Prompt> prepare_text(const std::string& text, const std::vector<Media>& media,
                                const PrepareOptions& opt) const override {
    Prompt p;
    p.text = text;
    std::vector<const Media*> imgs, vids;
    for (const auto& m : media) (m.kind == Media::Kind::Image ? imgs : vids).push_back(&m);
    VLM_ASSIGN_OR_RETURN(p.images, qwen_preprocess_images(imgs, pre_, opt));
    std::vector<std::vector<std::string>> stamps;
    for (const Media* v : vids) {
      VLM_ASSIGN_OR_RETURN(PixelBatch vb, qwen_preprocess_video(*v, pre_, opt));
      stamps.push_back(video_timestamps(v->frames.size(), v->fps > 0 ? v->fps : 2.0, pre_.temporal_patch));
      if (int64_t(stamps.back().size()) != vb.grids[0][0])
        return make_error("video of ", v->frames.size(), " frames gave ", vb.grids[0][0], " temporal groups but ",
                          stamps.back().size(), " timestamps");
      p.videos.values.insert(p.videos.values.end(), vb.values.begin(), vb.values.end());
      p.videos.rows += vb.rows;
      p.videos.cols = vb.cols;
      p.videos.grids.push_back(vb.grids[0]);
    }
    // Timestamps are ordinary text, so they are spliced into the string before tokenizing: the
    // tokenizer then sees exactly what HF's processor tokenizes (neighbouring text included).
    VLM_ASSIGN_OR_RETURN(std::string expanded, expand_videos(text, stamps, keep_outer_pair(opt)));
    std::vector<int32_t> ids = tokenizer_->encode(expanded, true);

    // The LLM sees a video as one t=1 block per temporal group (QWEN_MODELS §8.1), each between its
    // own vision_start/end; those are the blocks both the pad expansion and the positions walk.
    std::vector<Grid> frame_grids;
    for (const Grid& g : p.videos.grids)
      for (int64_t t = 0; t < g[0]; ++t) frame_grids.push_back({1, g[1], g[2]});
    const auto n_img = std::count(ids.begin(), ids.end(), cfg_.image_token);
    const auto n_vid = std::count(ids.begin(), ids.end(), cfg_.video_token);
    if (size_t(n_img) != imgs.size() || size_t(n_vid) != frame_grids.size())
      return make_error("the prompt has ", n_img, " image and ", n_vid, " video-frame placeholders, but ",
                        imgs.size(), " images and ", frame_grids.size(), " video frame groups were given");
    p.ids = expand_placeholders(ids, cfg_.image_token, cfg_.video_token, p.images.grids, frame_grids,
                                cfg_.vision.merge);
    RopeIndexArgs ra;
    ra.image_token = cfg_.image_token;
    ra.video_token = cfg_.video_token;
    ra.merge = cfg_.vision.merge;
    ra.image_grids = p.images.grids;
    ra.video_grids = frame_grids;
    ra.rule = opt.rope_rule;  // the two rules agree on t=1 blocks (base + max(h, w) is max + 1)
    VLM_ASSIGN_OR_RETURN(p.rope_delta, qwen_rope_index(p.ids, ra, &p.pos));
    return p;
  }

  Status prefill(Session& s, const Prompt& p, std::vector<float>* logits, nn::Trace* trace) const override {
    const int64_t L = int64_t(p.ids.size()), D = cfg_.text.hidden;
    if (L == 0) return make_error("empty prompt");
    if (int64_t(p.pos.size()) != L) return make_error("prompt has ", L, " tokens but ", p.pos.size(), " positions");
    for (int32_t id : p.ids)
      if (id < 0 || id >= cfg_.text.vocab) return make_error("token id ", id, " outside the vocabulary");
    std::vector<float> h(static_cast<size_t>(L * D));
    lm_.dec.embed_tokens(p.ids.data(), L, h.data());
    VisionOut img, vid;
    if (!p.images.grids.empty()) {
      VLM_ASSIGN_OR_RETURN(img, vision_forward(p.images, trace));
      VLM_TRY_STATUS(scatter(img.main, cfg_.image_token, p.ids, h.data()));
    }
    if (!p.videos.grids.empty()) {
      VLM_ASSIGN_OR_RETURN(vid, vision_forward(p.videos, trace));
      VLM_TRY_STATUS(scatter(vid.main, cfg_.video_token, p.ids, h.data()));
    }
    // Deepstack: level k is added to the visual rows of decoder layer k's output (prefill only).
    auto deepstack = [&](int layer, float* x, int64_t n) {
      if (size_t(layer) >= cfg_.vision.deepstack.size()) return;
      size_t ri = 0, rv = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int32_t id = p.ids[size_t(i)];
        const float* add = id == cfg_.image_token   ? img.deep[size_t(layer)].data() + D * ri++
                           : id == cfg_.video_token ? vid.deep[size_t(layer)].data() + D * rv++
                                                    : nullptr;
        if (add) ops::add(x + i * D, add, D);
      }
    };
    lm_.prefill(s, p.ids, h.data(), p.pos, p.rope_delta, logits, trace, deepstack);
    return Status::Ok();
  }

  void decode(Session& s, int32_t token, std::vector<float>* logits) const override { lm_.decode(s, token, logits); }

 private:
  struct Merger {
    nn::Norm norm;
    nn::Linear fc1, fc2;
  };
  struct VisionOut {
    std::vector<float> main;               // [M, out]
    std::vector<std::vector<float>> deep;  // per deepstack level, [M, out]
  };

  // Replaces the k-th video placeholder with one "<t seconds><|vision_start|><|video_pad|><|vision_end|>"
  // per temporal group (one pad each; expanded to h·w/4 after tokenizing).
  Expected<std::string> expand_videos(const std::string& text, const std::vector<std::vector<std::string>>& stamps,
                                      bool outer_pair) const {
    const std::string pad = tokenizer_->id_to_token(cfg_.video_token);
    const std::string vs = tokenizer_->id_to_token(cfg_.vision_start);
    const std::string ve = tokenizer_->id_to_token(cfg_.vision_end);
    if (pad.empty() || vs.empty() || ve.empty()) return make_error("tokenizer lacks the video/vision tokens");
    size_t n = 0;
    for (size_t f = text.find(pad); f != std::string::npos; f = text.find(pad, f + pad.size())) ++n;
    if (n != stamps.size())
      return make_error("the prompt has ", n, " video placeholders, but ", stamps.size(), " videos were given");
    std::string out;
    size_t pos = 0;
    for (size_t k = 0; k < n; ++k) {
      const size_t f = text.find(pad, pos);
      size_t a = f, b = f + pad.size();
      // A bare pad (no wrapping pair) is replaced alone, as Qwen's processor does.
      if (!outer_pair && f >= pos + vs.size() && text.compare(f - vs.size(), vs.size(), vs) == 0 &&
          text.compare(b, ve.size(), ve) == 0) {
        a -= vs.size();
        b += ve.size();
      }
      out.append(text, pos, a - pos);
      for (const std::string& t : stamps[k]) out += t + vs + pad + ve;
      pos = b;
    }
    out.append(text, pos, std::string::npos);
    return out;
  }

  Status bind() {
    const WeightStore& ws = weights_;
    const std::string vp = "model.visual.", tp = "model.language_model.";
    VLM_ASSIGN_OR_RETURN(lm_.dec, nn::Decoder::bind(ws, cfg_.text, tp));
    use_vision_format();
    lm_.theta = cfg_.rope_theta;
    lm_.section = cfg_.mrope;
    lm_.interleaved = true;
    if (lm_.dec.layers.empty()) return make_error("checkpoint has no decoder layers under '", tp, "layers.'");
    const Qwen3VisionConfig& V = cfg_.vision;
    const int64_t E = V.width, row = int64_t(V.in_ch) * V.temporal * V.patch * V.patch;
    const TensorView* pe = ws.find(vp + "patch_embed.proj.weight");
    if (!pe) return make_error("missing tensor '", vp, "patch_embed.proj.weight' in checkpoint");
    if (pe->ndim != 5 || pe->numel() != E * row)
      return make_error("tensor '", vp, "patch_embed.proj.weight' has shape ", pe->shape_str(), ", expected [", E,
                        ", ", V.in_ch, ", ", V.temporal, ", ", V.patch, ", ", V.patch, "]");
    // The Conv3d kernel equals its stride, so it is one matmul over the flattened window.
    patch_ = TensorView(pe->dtype, pe->data, {E, row});
    VLM_ASSIGN_OR_RETURN(patch_bias_, ws.get(vp + "patch_embed.proj.bias", {E}));
    grid_side_ = int64_t(std::lround(std::sqrt(double(V.pos_embeds))));
    if (grid_side_ * grid_side_ != V.pos_embeds)
      return make_error("config.json: num_position_embeddings ", V.pos_embeds, " is not a square");
    VLM_ASSIGN_OR_RETURN(TensorView pos, ws.get(vp + "pos_embed.weight", {V.pos_embeds, E}));
    pos_table_ = to_f32(pos);
    blocks_.clear();
    for (int b = 0; b < V.depth; ++b) {
      const std::string p = vp + "blocks." + std::to_string(b) + ".";
      nn::VitBlock B;
      VLM_ASSIGN_OR_RETURN(B.norm1, nn::Norm::bind(ws, p + "norm1", nn::Norm::Kind::Layer, E, 1e-6f));
      VLM_ASSIGN_OR_RETURN(B.norm2, nn::Norm::bind(ws, p + "norm2", nn::Norm::Kind::Layer, E, 1e-6f));
      VLM_ASSIGN_OR_RETURN(B.qkv, nn::Linear::bind(ws, p + "attn.qkv", 3 * E, E, true));
      VLM_ASSIGN_OR_RETURN(B.proj, nn::Linear::bind(ws, p + "attn.proj", E, E, true));
      VLM_ASSIGN_OR_RETURN(B.fc1, nn::Linear::bind(ws, p + "mlp.linear_fc1", V.mlp, E, true));
      VLM_ASSIGN_OR_RETURN(B.fc2, nn::Linear::bind(ws, p + "mlp.linear_fc2", E, V.mlp, true));
      blocks_.push_back(B);
    }
    const int64_t m4 = E * V.merge * V.merge;
    auto merger = [&](const std::string& p, int64_t norm_dim) -> Expected<Merger> {
      Merger m;
      VLM_ASSIGN_OR_RETURN(m.norm, nn::Norm::bind(ws, p + "norm", nn::Norm::Kind::Layer, norm_dim, 1e-6f));
      VLM_ASSIGN_OR_RETURN(m.fc1, nn::Linear::bind(ws, p + "linear_fc1", m4, m4, true));
      VLM_ASSIGN_OR_RETURN(m.fc2, nn::Linear::bind(ws, p + "linear_fc2", V.out, m4, true));
      return m;
    };
    // The main merger normalises each patch before the 2x2 concat, the deepstack ones after it.
    VLM_ASSIGN_OR_RETURN(merger_, merger(vp + "merger.", E));
    deep_.clear();
    for (size_t k = 0; k < V.deepstack.size(); ++k) {
      VLM_ASSIGN_OR_RETURN(Merger m, merger(vp + "deepstack_merger_list." + std::to_string(k) + ".", m4));
      deep_.push_back(std::move(m));
    }
    bcfg_.width = E;
    bcfg_.mlp = V.mlp;
    bcfg_.heads = V.heads;
    bcfg_.act = V.act;
    bcfg_.gated_mlp = false;
    return Status::Ok();
  }

  // Adds the bilinearly interpolated learned position embedding to x (rows in merge-window order,
  // QWEN_MODELS §6.1). Weights and products in fp32, summed in HF's order.
  void add_pos_embed(const std::vector<Grid>& grids, float* x) const {
    const int64_t E = cfg_.vision.width, G = grid_side_, m = cfg_.vision.merge;
    std::vector<float> e;
    for (const Grid& g : grids) {
      const int64_t h = g[1], w = g[2];
      const PosEmbedAxis ay = pos_embed_axis(h, G), ax = pos_embed_axis(w, G);
      e.assign(size_t(h * w * E), 0.0f);
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j) {
          const float dy = ay.frac[size_t(i)], dx = ax.frac[size_t(j)];
          const float wt[4] = {(1 - dy) * (1 - dx), (1 - dy) * dx, dy * (1 - dx), dy * dx};
          const float* src[4] = {&pos_table_[size_t((ay.lo[size_t(i)] * G + ax.lo[size_t(j)]) * E)],
                                 &pos_table_[size_t((ay.lo[size_t(i)] * G + ax.hi[size_t(j)]) * E)],
                                 &pos_table_[size_t((ay.hi[size_t(i)] * G + ax.lo[size_t(j)]) * E)],
                                 &pos_table_[size_t((ay.hi[size_t(i)] * G + ax.hi[size_t(j)]) * E)]};
          float* d = &e[size_t((i * w + j) * E)];
          for (int64_t c = 0; c < E; ++c) {
            const float p0 = wt[0] * src[0][c], p1 = wt[1] * src[1][c], p2 = wt[2] * src[2][c],
                        p3 = wt[3] * src[3][c];
            d[c] = ((p0 + p1) + p2) + p3;
          }
        }
      for (int64_t t = 0; t < g[0]; ++t)
        for (int64_t bh = 0; bh < h / m; ++bh)
          for (int64_t bw = 0; bw < w / m; ++bw)
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < m; ++j, x += E) ops::add(x, &e[size_t(((bh * m + i) * w + bw * m + j) * E)], E);
    }
  }

  // rows [M, 4E] (or [N, E] pre-norm for the main merger) -> [M, out]
  std::vector<float> merge(const Merger& mg, std::vector<float> x, int64_t M, bool norm_first) const {
    const int64_t E = cfg_.vision.width, mm = int64_t(cfg_.vision.merge) * cfg_.vision.merge;
    if (norm_first)
      mg.norm(x.data(), M * mm, x.data());
    else
      mg.norm(x.data(), M, x.data());
    std::vector<float> hid(size_t(M * mm * E)), out(size_t(M * cfg_.vision.out));
    mg.fc1(x.data(), M, hid.data());
    ops::activate(ops::Act::Gelu, hid.data(), M * mm * E);
    mg.fc2(hid.data(), M, out.data());
    return out;
  }

  // pixel rows [N, C·T·P·P] -> merged features [N/4, out] in placeholder order, plus deepstack levels.
  Expected<VisionOut> vision_forward(const PixelBatch& px, nn::Trace* trace) const {
    const Qwen3VisionConfig& V = cfg_.vision;
    const int64_t N = px.rows, E = V.width, mm = int64_t(V.merge) * V.merge, hd = E / V.heads;
    if (px.cols != patch_.shape[1]) return make_error("pixel rows have ", px.cols, " values, the ViT wants ", patch_.shape[1]);
    int64_t rows = 0;
    for (const Grid& g : px.grids) {
      if (g[0] <= 0 || g[1] % V.merge || g[2] % V.merge || g[1] <= 0 || g[2] <= 0)
        return make_error("bad vision grid (", g[0], ", ", g[1], ", ", g[2], ")");
      rows += g[0] * g[1] * g[2];
    }
    if (rows != N || int64_t(px.values.size()) != N * px.cols)
      return make_error("pixel batch has ", N, " rows but its grids need ", rows);
    const std::string hook = "hook.model.visual.";
    std::vector<float> x(static_cast<size_t>(N * E));
    ops::linear(px.values.data(), N, px.cols, patch_, &patch_bias_, x.data());
    if (trace) trace->tensor(hook + "patch_embed", x.data(), {N, E});
    add_pos_embed(px.grids, x.data());
    if (trace) trace->tensor(hook + "hidden_states.0", x.data(), {N, E});

    // (row, col) of every patch in merge-window order; every temporal group is its own segment.
    std::vector<std::pair<int, int>> rc;
    std::vector<int32_t> cu;
    vision_patch_layout(px.grids, V.merge, &rc, &cu);
    std::vector<float> cos, sin;
    nn::vision_rope_tables(rc, int(hd), 10000.0f, &cos, &sin);

    const int64_t M = N / mm;
    VisionOut out;
    out.deep.resize(V.deepstack.size());
    for (int b = 0; b < V.depth; ++b) {
      blocks_[size_t(b)].forward(bcfg_, x.data(), N, cos.data(), sin.data(), cu.data(), int(cu.size()) - 1);
      if (trace) {
        trace->tensor(hook + "hidden_states." + std::to_string(b + 1), x.data(), {N, E});
        if (b == 0) trace->tensor(hook + "blocks.0", x.data(), {N, E});
      }
      for (size_t k = 0; k < V.deepstack.size(); ++k)
        if (V.deepstack[k] == b) out.deep[k] = merge(deep_[k], x, M, false);
    }
    if (trace) trace->tensor(hook + "last_hidden_state", x.data(), {N, E});
    out.main = merge(merger_, std::move(x), M, true);
    if (trace) {
      trace->tensor(hook + "merger", out.main.data(), {M, V.out});
      trace->tensor(hook + "pooler_output", out.main.data(), {M, V.out});
      for (size_t k = 0; k < out.deep.size(); ++k)
        trace->tensor(hook + "deepstack_features." + std::to_string(k), out.deep[k].data(), {M, V.out});
    }
    return out;
  }

  Status scatter(const std::vector<float>& feats, int32_t token, const std::vector<int32_t>& ids, float* h) const {
    const int64_t D = cfg_.text.hidden;
    const size_t rows = feats.size() / size_t(D);
    const size_t n = size_t(std::count(ids.begin(), ids.end(), token));
    if (n != rows) return make_error("the prompt has ", n, " placeholders but the vision tower gave ", rows, " features");
    size_t row = 0;
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == token) std::copy_n(feats.data() + D * row++, D, h + int64_t(i) * D);
    return Status::Ok();
  }

  Qwen3Config cfg_;
  QwenMediaConfig pre_;
  RopeLM lm_;
  TensorView patch_, patch_bias_;  // [E, C·T·P·P], [E]
  int64_t grid_side_ = 48;
  std::vector<float> pos_table_;  // [G·G, E] widened once: every request samples it
  std::vector<nn::VitBlock> blocks_;
  nn::VitBlockConfig bcfg_;
  Merger merger_;
  std::vector<Merger> deep_;
};

}  // namespace

Expected<std::unique_ptr<Model>> load_qwen3_vl(const std::string& dir, const nlohmann::json& config,
                                               const LoadOptions& opt) {
  return Qwen3VL::load(dir, config, opt);
}

}  // namespace vlm::models
