// Qwen2-VL (and, with window attention and a gated ViT MLP, Qwen2.5-VL):
// config, weight binding by HF names, prompt preparation, vision tower,
// M-RoPE decoder. Math follows docs/spec/QWEN_MODELS.md.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/model.h"
#include "models/qwen_config.h"
#include "models/qwen_media.h"
#include "models/qwen_rope.h"
#include "models/rope_lm.h"
#include "nn/vit.h"

namespace vlm::models {
namespace {

using nlohmann::json;

struct QwenVisionConfig {
  int64_t width = 0, mlp = 0, out = 0;
  int depth = 0, heads = 0, patch = 14, merge = 2, temporal = 2, in_ch = 3;
  ops::Act act = ops::Act::QuickGelu;
  bool is25 = false;
  int window = 112;
  std::vector<int> fullatt;
  double tokens_per_second = 2;
};

struct QwenConfig : QwenTextConfig {
  std::string model_type;
  QwenVisionConfig vision;
};

// Both layouts: the legacy flat one (text fields at top level) and the nested
// transformers-5 one (text_config); a field missing from text_config falls back to the top level.
Expected<QwenConfig> parse_config(const json& cfg) {
  QwenConfig c;
  VLM_ASSIGN_OR_RETURN(static_cast<QwenTextConfig&>(c), parse_qwen_text_config(cfg, QwenTextDefaults{}));
  c.model_type = cfg.value("model_type", "");

  if (!cfg.contains("vision_config") || !cfg["vision_config"].is_object())
    return make_error("config.json: missing vision_config");
  const json& vc = cfg["vision_config"];
  QwenVisionConfig& V = c.vision;
  V.is25 = c.model_type == "qwen2_5_vl";
  auto vint = [&](const char* k, int64_t dflt) -> int64_t {
    return vc.contains(k) && vc[k].is_number_integer() ? vc[k].get<int64_t>() : dflt;
  };
  V.depth = int(vint("depth", 0));
  V.heads = int(vint("num_heads", 0));
  V.patch = int(vint("patch_size", 14));
  V.merge = int(vint("spatial_merge_size", 2));
  V.temporal = int(vint("temporal_patch_size", 2));
  V.in_ch = int(vint("in_channels", 3));
  if (V.is25) {
    V.width = vint("hidden_size", 0);
    V.out = vint("out_hidden_size", 0);
    V.mlp = vint("intermediate_size", 0);
    VLM_ASSIGN_OR_RETURN(V.act, parse_activation(vc.value("hidden_act", "silu"), "vision hidden_act"));
    V.window = int(vint("window_size", 112));
    if (vc.contains("fullatt_block_indexes") && vc["fullatt_block_indexes"].is_array())
      for (const auto& b : vc["fullatt_block_indexes"])
        if (b.is_number_integer()) V.fullatt.push_back(b.get<int>());
    V.tokens_per_second = vc.contains("tokens_per_second") && vc["tokens_per_second"].is_number()
                              ? vc["tokens_per_second"].get<double>()
                              : 4.0;
  } else {
    V.width = vint("embed_dim", 0);
    V.out = vint("hidden_size", 0);
    V.mlp = V.width * vint("mlp_ratio", 4);
    VLM_ASSIGN_OR_RETURN(V.act, parse_activation(vc.value("hidden_act", "quick_gelu"), "vision hidden_act"));
  }
  if (V.depth <= 0 || V.heads <= 0 || V.width <= 0 || V.out <= 0 || V.mlp <= 0 || V.width % V.heads != 0 ||
      (V.width / V.heads) % 4 != 0 || V.patch <= 0 || V.merge <= 0 || V.temporal <= 0)
    return make_error("config.json: invalid vision_config (depth ", V.depth, ", heads ", V.heads, ", width ",
                      V.width, ")");
  if (V.out != c.text.hidden)
    return make_error("config.json: vision output width ", V.out, " != text hidden_size ", c.text.hidden);
  return c;
}

class QwenVL final : public Model {
 public:
  std::string family() const override { return cfg_.model_type; }

  static Expected<std::unique_ptr<Model>> load(const std::string& dir, const json& config, const LoadOptions& opt) {
    auto m = std::make_unique<QwenVL>();
    m->dir_ = dir;
    VLM_ASSIGN_OR_RETURN(m->cfg_, parse_config(config));
    VLM_TRY_STATUS(m->load_common(dir, config, opt));
    VLM_ASSIGN_OR_RETURN(m->pre_, load_qwen_media_config(dir));
    m->vocab_ = m->cfg_.text.vocab;
    VLM_TRY_STATUS(m->bind());
    return std::unique_ptr<Model>(std::move(m));
  }

  Expected<Prompt> prepare_text(const std::string& text, const std::vector<Media>& media,
                                const PrepareOptions& opt) const override {
    Prompt p;
    p.text = text;
    std::vector<int32_t> ids = tokenizer_->encode(p.text, true);

    std::vector<const Media*> imgs, vids;
    for (const auto& m : media) (m.kind == Media::Kind::Image ? imgs : vids).push_back(&m);
    const auto n_img = std::count(ids.begin(), ids.end(), cfg_.image_token);
    const auto n_vid = std::count(ids.begin(), ids.end(), cfg_.video_token);
    if (size_t(n_img) != imgs.size() || size_t(n_vid) != vids.size())
      return make_error("the prompt has ", n_img, " image and ", n_vid, " video placeholders, but ", imgs.size(),
                        " images and ", vids.size(), " videos were given");
    VLM_ASSIGN_OR_RETURN(p.images, qwen_preprocess_images(imgs, pre_, opt));
    for (const Media* v : vids) {
      VLM_ASSIGN_OR_RETURN(PixelBatch vb, qwen_preprocess_video(*v, pre_, opt));
      append_batch(&p.videos, vb);
      p.second_per_grid_ts.push_back(double(pre_.temporal_patch) / (v->fps > 0 ? v->fps : 2.0));
    }
    // Expand each placeholder into one token per merged 2x2 patch group.
    p.ids = expand_placeholders(ids, cfg_.image_token, cfg_.video_token, p.images.grids, p.videos.grids,
                                cfg_.vision.merge);
    RopeIndexArgs ra;
    ra.image_token = cfg_.image_token;
    ra.video_token = cfg_.video_token;
    ra.merge = cfg_.vision.merge;
    ra.image_grids = p.images.grids;
    ra.video_grids = p.videos.grids;
    if (cfg_.vision.is25) {
      ra.second_per_grid_ts = p.second_per_grid_ts;
      ra.tokens_per_second = cfg_.vision.tokens_per_second;
    }
    ra.rule = opt.rope_rule;
    VLM_ASSIGN_OR_RETURN(p.rope_delta, qwen_rope_index(p.ids, ra, &p.pos));
    return p;
  }

  Status prefill(Session& s, const Prompt& p, std::vector<float>* logits, nn::Trace* trace) const override {
    const int64_t L = int64_t(p.ids.size()), D = cfg_.text.hidden;
    if (L == 0) return make_error("empty prompt");
    for (int32_t id : p.ids)
      if (id < 0 || id >= cfg_.text.vocab) return make_error("token id ", id, " outside the vocabulary");
    std::vector<float> h(static_cast<size_t>(L * D));
    lm_.dec.embed_tokens(p.ids.data(), L, h.data());
    if (!p.images.grids.empty()) scatter(vision_forward(p.images, trace), cfg_.image_token, p.ids, h.data());
    if (!p.videos.grids.empty()) scatter(vision_forward(p.videos, trace), cfg_.video_token, p.ids, h.data());
    lm_.prefill(s, p.ids, h.data(), p.pos, p.rope_delta, logits, trace);
    return Status::Ok();
  }

  void decode(Session& s, int32_t token, std::vector<float>* logits) const override { lm_.decode(s, token, logits); }

 private:
  static void append_batch(PixelBatch* dst, const PixelBatch& src) {
    dst->values.insert(dst->values.end(), src.values.begin(), src.values.end());
    dst->rows += src.rows;
    dst->cols = src.cols;
    dst->grids.insert(dst->grids.end(), src.grids.begin(), src.grids.end());
  }

  Status bind() {
    const WeightStore& ws = weights_;
    const bool v5 = ws.has("model.visual.patch_embed.proj.weight");
    const std::string vp = v5 ? "model.visual." : "visual.";
    const std::string tp = ws.has("model.language_model.embed_tokens.weight") ? "model.language_model." : "model.";
    VLM_ASSIGN_OR_RETURN(lm_.dec, nn::Decoder::bind(ws, cfg_.text, tp));
    use_vision_format();
    lm_.theta = cfg_.rope_theta;
    lm_.section = cfg_.mrope;
    const QwenVisionConfig& V = cfg_.vision;
    const int64_t E = V.width, row = int64_t(V.in_ch) * V.temporal * V.patch * V.patch;
    const TensorView* pe = ws.find(vp + "patch_embed.proj.weight");
    if (!pe) return make_error("missing tensor '", vp, "patch_embed.proj.weight' in checkpoint");
    if (pe->ndim != 5 || pe->numel() != E * row)
      return make_error("tensor '", vp, "patch_embed.proj.weight' has shape ", pe->shape_str(), ", expected [", E,
                        ", ", V.in_ch, ", ", V.temporal, ", ", V.patch, ", ", V.patch, "]");
    // The Conv3d kernel equals its stride, so it is one matmul over the flattened window.
    patch_ = TensorView(pe->dtype, pe->data, {E, row});
    blocks_.clear();
    const auto nk = V.is25 ? nn::Norm::Kind::RMS : nn::Norm::Kind::Layer;
    for (int b = 0; b < V.depth; ++b) {
      const std::string p = vp + "blocks." + std::to_string(b) + ".";
      nn::VitBlock B;
      VLM_ASSIGN_OR_RETURN(B.norm1, nn::Norm::bind(ws, p + "norm1", nk, E, 1e-6f));
      VLM_ASSIGN_OR_RETURN(B.norm2, nn::Norm::bind(ws, p + "norm2", nk, E, 1e-6f));
      VLM_ASSIGN_OR_RETURN(B.qkv, nn::Linear::bind(ws, p + "attn.qkv", 3 * E, E, true));
      VLM_ASSIGN_OR_RETURN(B.proj, nn::Linear::bind(ws, p + "attn.proj", E, E, true));
      if (V.is25) {
        VLM_ASSIGN_OR_RETURN(B.gate, nn::Linear::bind(ws, p + "mlp.gate_proj", V.mlp, E, true));
        VLM_ASSIGN_OR_RETURN(B.up, nn::Linear::bind(ws, p + "mlp.up_proj", V.mlp, E, true));
        VLM_ASSIGN_OR_RETURN(B.down, nn::Linear::bind(ws, p + "mlp.down_proj", E, V.mlp, true));
      } else {
        VLM_ASSIGN_OR_RETURN(B.fc1, nn::Linear::bind(ws, p + "mlp.fc1", V.mlp, E, true));
        VLM_ASSIGN_OR_RETURN(B.fc2, nn::Linear::bind(ws, p + "mlp.fc2", E, V.mlp, true));
      }
      blocks_.push_back(B);
    }
    const int64_t m4 = E * V.merge * V.merge;
    VLM_ASSIGN_OR_RETURN(ln_q_, nn::Norm::bind(ws, vp + "merger.ln_q", nk, E, 1e-6f));
    VLM_ASSIGN_OR_RETURN(mlp0_, nn::Linear::bind(ws, vp + "merger.mlp.0", m4, m4, true));
    VLM_ASSIGN_OR_RETURN(mlp2_, nn::Linear::bind(ws, vp + "merger.mlp.2", V.out, m4, true));
    bcfg_.width = E;
    bcfg_.mlp = V.mlp;
    bcfg_.heads = V.heads;
    bcfg_.act = V.act;
    bcfg_.gated_mlp = V.is25;
    return Status::Ok();
  }

  // Qwen2.5-VL windows over merged tokens (QWEN_MODELS §5.1): the permutation
  // of merged-token indices and the per-window segment bounds in patch rows.
  void window_index(const std::vector<Grid>& grids, std::vector<int64_t>* index, std::vector<int32_t>* cu) const {
    const int m = cfg_.vision.merge;
    const int64_t ws = cfg_.vision.window / m / cfg_.vision.patch;
    index->clear();
    cu->assign(1, 0);
    int64_t base = 0;
    for (const Grid& g : grids) {
      const int64_t H = g[1] / m, W = g[2] / m;
      const int64_t nH = (H + ws - H % ws) / ws, nW = (W + ws - W % ws) / ws;
      for (int64_t tg = 0; tg < g[0]; ++tg)
        for (int64_t wr = 0; wr < nH; ++wr)
          for (int64_t wc = 0; wc < nW; ++wc) {
            int64_t n = 0;
            for (int64_t r = wr * ws; r < wr * ws + ws; ++r)
              for (int64_t c = wc * ws; c < wc * ws + ws; ++c)
                if (r < H && c < W) {
                  index->push_back(base + tg * H * W + r * W + c);
                  ++n;
                }
            if (n) cu->push_back(cu->back() + int32_t(n * m * m));
          }
      base += g[0] * H * W;
    }
  }

  // pixel rows [N, C·T·P·P] -> merged features [N/4, out] in placeholder order.
  std::vector<float> vision_forward(const PixelBatch& px, nn::Trace* trace) const {
    const QwenVisionConfig& V = cfg_.vision;
    const int64_t N = px.rows, E = V.width, mm = int64_t(V.merge) * V.merge, hd = E / V.heads;
    const std::string hook = "hook.model.visual.";
    std::vector<float> x(static_cast<size_t>(N * E));
    ops::linear(px.values.data(), N, px.cols, patch_, nullptr, x.data());
    if (trace) trace->tensor(hook + "patch_embed", x.data(), {N, E});

    // (row, col) of every patch in merge-window order, and frame segments.
    std::vector<std::pair<int, int>> rc;
    std::vector<int32_t> cu_full;
    vision_patch_layout(px.grids, V.merge, &rc, &cu_full);
    std::vector<float> cos, sin;
    nn::vision_rope_tables(rc, int(hd), 10000.0f, &cos, &sin);

    std::vector<int64_t> widx;
    std::vector<int32_t> cu_win;
    if (V.is25) {
      window_index(px.grids, &widx, &cu_win);
      permute_groups(&x, widx, mm * E, false);
      permute_groups(&cos, widx, mm * hd, false);
      permute_groups(&sin, widx, mm * hd, false);
    }
    if (trace) trace->tensor(hook + "hidden_states.0", x.data(), {N, E});
    for (int b = 0; b < V.depth; ++b) {
      const bool full = !V.is25 || std::find(V.fullatt.begin(), V.fullatt.end(), b) != V.fullatt.end();
      const auto& cu = full ? cu_full : cu_win;
      blocks_[size_t(b)].forward(bcfg_, x.data(), N, cos.data(), sin.data(), cu.data(), int(cu.size()) - 1);
      if (trace) {
        trace->tensor(hook + "hidden_states." + std::to_string(b + 1), x.data(), {N, E});
        if (b == 0) trace->tensor(hook + "blocks.0", x.data(), {N, E});
      }
    }
    if (trace) trace->tensor(hook + "last_hidden_state", x.data(), {N, E});
    ln_q_(x.data(), N, x.data());
    const int64_t M = N / mm;
    std::vector<float> h(size_t(M * mm * E)), out(size_t(M * V.out));
    mlp0_(x.data(), M, h.data());
    ops::activate(ops::Act::Gelu, h.data(), M * mm * E);
    mlp2_(h.data(), M, out.data());
    if (trace) trace->tensor(hook + "merger", out.data(), {M, V.out});
    if (V.is25) permute_groups(&out, widx, V.out, true);
    if (trace) trace->tensor(hook + "pooler_output", out.data(), {M, V.out});
    return out;
  }

  // Reorders groups of `group` floats: forward y[i] = x[idx[i]]; inverse y[idx[i]] = x[i].
  static void permute_groups(std::vector<float>* v, const std::vector<int64_t>& idx, int64_t group, bool inverse) {
    std::vector<float> y(v->size());
    for (size_t i = 0; i < idx.size(); ++i) {
      const int64_t src = inverse ? int64_t(i) : idx[i], dst = inverse ? idx[i] : int64_t(i);
      std::copy_n(v->data() + src * group, group, y.data() + dst * group);
    }
    v->swap(y);
  }

  void scatter(const std::vector<float>& feats, int32_t token, const std::vector<int32_t>& ids, float* h) const {
    const int64_t D = cfg_.text.hidden;
    size_t row = 0;
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == token) {
        VLM_CHECK((row + 1) * size_t(D) <= feats.size(), "more placeholders than vision features");
        std::copy_n(feats.data() + row * size_t(D), D, h + int64_t(i) * D);
        ++row;
      }
    VLM_CHECK(row * size_t(D) == feats.size(), "placeholders (%zu) and vision features disagree", row);
  }

  QwenConfig cfg_;
  QwenMediaConfig pre_;
  RopeLM lm_;
  TensorView patch_;  // [E, C·T·P·P]
  std::vector<nn::VitBlock> blocks_;
  nn::VitBlockConfig bcfg_;
  nn::Norm ln_q_;
  nn::Linear mlp0_, mlp2_;
};

}  // namespace

Expected<std::unique_ptr<Model>> load_qwen2_vl(const std::string& dir, const nlohmann::json& config,
                                               const LoadOptions& opt) {
  return QwenVL::load(dir, config, opt);
}

}  // namespace vlm::models
