// LLaVA-1.5 (llava-hf layout): CLIP vision tower -> features of one hidden
// layer (CLS dropped for the "default" strategy) -> linear-GELU-linear
// projector -> Llama decoder with 1-D RoPE. LLAVA_CLIP.md Part B.
#include <algorithm>
#include <filesystem>

#include "models/clip.h"
#include "models/model.h"
#include "models/rope_lm.h"

namespace vlm::models {
namespace {

using nlohmann::json;

// transformers' llava chat template (chat_template.json of llava-hf), used when a checkpoint ships
// none: "USER: <image>\nQ ASSISTANT:" per turn.
constexpr const char* kDefaultTemplate =
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for line in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for line in message['content'] | selectattr('type', 'equalto', 'text') %}{{ line['text'] + ' '}}{% endfor %}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

class Llava final : public Model {
 public:
  std::string family() const override { return "llava"; }

  static Expected<std::unique_ptr<Model>> load(const std::string& dir, const json& cfg, const LoadOptions& opt) {
    namespace fs = std::filesystem;
    auto m = std::make_unique<Llava>();
    m->dir_ = dir;
    VLM_TRY_STATUS(m->load_common(dir, cfg, opt, kDefaultTemplate));
    if (!cfg.contains("text_config") || !cfg.contains("vision_config"))
      return make_error(dir, "/config.json: llava needs text_config and vision_config");
    const json& tc = cfg["text_config"];
    auto ti = [&](const char* k, int64_t d) {
      if (tc.contains(k) && tc[k].is_number_integer()) return tc[k].get<int64_t>();
      if (cfg.contains(k) && cfg[k].is_number_integer()) return cfg[k].get<int64_t>();
      return d;
    };
    nn::DecoderConfig& d = m->text_;
    // LlamaConfig defaults fill what llava-hf configs leave out.
    d.vocab = ti("vocab_size", 32000);
    d.hidden = ti("hidden_size", 4096);
    d.inter = ti("intermediate_size", 11008);
    d.heads = int(ti("num_attention_heads", 32));
    d.kv_heads = int(ti("num_key_value_heads", d.heads));
    d.head_dim = int(ti("head_dim", d.hidden / std::max(1, d.heads)));
    d.eps = tc.contains("rms_norm_eps") && tc["rms_norm_eps"].is_number() ? tc["rms_norm_eps"].get<float>() : 1e-6f;
    d.qkv_bias = tc.value("attention_bias", false);
    d.tied = cfg.value("tie_word_embeddings", tc.value("tie_word_embeddings", false));
    m->lm_.theta = tc.contains("rope_theta") && tc["rope_theta"].is_number() ? tc["rope_theta"].get<double>() : 10000.0;
    if (tc.contains("rope_parameters") && tc["rope_parameters"].is_object() && tc["rope_parameters"].contains("rope_theta"))
      m->lm_.theta = tc["rope_parameters"]["rope_theta"].get<double>();
    m->image_token_ = int32_t(cfg.value("image_token_index", cfg.value("image_token_id", 32000)));
    const json& fl = cfg.contains("vision_feature_layer") ? cfg["vision_feature_layer"] : json(-2);
    if (fl.is_number_integer()) m->feature_layers_.push_back(fl.get<int>());
    else if (fl.is_array())
      for (const auto& x : fl) m->feature_layers_.push_back(x.get<int>());
    if (m->feature_layers_.empty()) return make_error("config.json: bad vision_feature_layer");
    m->keep_cls_ = cfg.value("vision_feature_select_strategy", "default") == "full";
    m->vocab_ = d.vocab;

    const WeightStore& ws = m->weights_;
    const bool v5 = ws.has("model.language_model.embed_tokens.weight");
    const std::string tp = v5 ? "model.language_model." : "language_model.model.";
    VLM_ASSIGN_OR_RETURN(m->lm_.dec, nn::Decoder::bind(ws, d, tp, v5 ? "lm_head.weight" : "language_model.lm_head.weight"));
    m->lm_.section = {d.head_dim / 2, 0, 0};  // plain 1-D RoPE
    m->use_vision_format();
    const std::string vt = v5 ? "model.vision_tower." : "vision_tower.";
    const std::string vp = ws.has(vt + "vision_model.embeddings.class_embedding") ? vt + "vision_model." : vt;
    VLM_ASSIGN_OR_RETURN(m->vision_, ClipVision::bind(ws, cfg["vision_config"], vp, false));
    const int64_t V = m->vision_.cfg.width * int64_t(m->feature_layers_.size());
    const std::string pp = v5 ? "model.multi_modal_projector." : "multi_modal_projector.";
    const bool pb = cfg.value("multimodal_projector_bias", true);
    VLM_ASSIGN_OR_RETURN(m->proj1_, nn::Linear::bind(ws, pp + "linear_1", d.hidden, V, pb));
    VLM_ASSIGN_OR_RETURN(m->proj2_, nn::Linear::bind(ws, pp + "linear_2", d.hidden, d.hidden, pb));
    const std::string act = cfg.value("projector_hidden_act", "gelu");
    m->proj_act_ = act == "gelu" ? ops::Act::Gelu : act == "quick_gelu" ? ops::Act::QuickGelu : ops::Act::GeluTanh;
    VLM_ASSIGN_OR_RETURN(m->pre_, load_clip_image_config(dir));
    if (m->pre_.out_height() != m->vision_.image_size || m->pre_.out_width() != m->vision_.image_size)
      return make_error(dir, ": preprocessor output does not match the vision tower's image_size ",
                        m->vision_.image_size);
    for (int l : m->feature_layers_)
      if (l < -m->vision_.cfg.layers - 1 || l > m->vision_.cfg.layers)
        return make_error("config.json: vision_feature_layer ", l, " outside the tower's ", m->vision_.cfg.layers,
                          " layers");
    return std::unique_ptr<Model>(std::move(m));
  }

  int64_t image_tokens() const { return vision_.tokens() - (keep_cls_ ? 0 : 1); }

  Expected<Prompt> prepare_text(const std::string& text, const std::vector<Media>& media,
                                const PrepareOptions& opt) const override {
    Prompt p;
    p.text = text;
    std::vector<int32_t> ids = tokenizer_->encode(text, true);
    const auto n_img = std::count(ids.begin(), ids.end(), image_token_);
    for (const auto& m : media)
      if (m.kind != Media::Kind::Image) return make_error("llava takes images, not videos");
    if (size_t(n_img) != media.size())
      return make_error("the prompt has ", n_img, " image placeholders, but ", media.size(), " images were given");
    std::vector<Image> frames;
    for (const auto& m : media) frames.push_back(m.frames.at(0));
    if (!frames.empty()) {
      VLM_ASSIGN_OR_RETURN(p.images.values, preprocess_clip_images(frames, pre_,
                                                                   opt.pil_resampler ? ResampleKernel::kPil
                                                                                     : ResampleKernel::kTorchvision));
      p.images.rows = int64_t(frames.size());
      p.images.cols = 3 * int64_t(vision_.image_size) * vision_.image_size;
      p.images.grids.assign(frames.size(), Grid{1, vision_.image_size, vision_.image_size});
    }
    for (int32_t id : ids) {
      if (id == image_token_) p.ids.insert(p.ids.end(), size_t(image_tokens()), id);
      else p.ids.push_back(id);
    }
    return p;
  }

  Status prefill(Session& s, const Prompt& p, std::vector<float>* logits, nn::Trace* trace) const override {
    const int64_t L = int64_t(p.ids.size()), D = text_.hidden;
    if (L == 0) return make_error("empty prompt");
    for (int32_t id : p.ids)
      if (id < 0 || id >= text_.vocab) return make_error("token id ", id, " outside the vocabulary");
    std::vector<float> h(static_cast<size_t>(L * D));
    lm_.dec.embed_tokens(p.ids.data(), L, h.data());
    if (p.images.rows > 0) {
      std::vector<float> feats = image_features(p.images, trace);
      size_t row = 0;
      for (int64_t i = 0; i < L; ++i)
        if (p.ids[size_t(i)] == image_token_) std::copy_n(feats.data() + D * int64_t(row++), D, h.data() + i * D);
      VLM_CHECK(row * size_t(D) == feats.size(), "image placeholders and features disagree");
    }
    lm_.prefill(s, p.ids, h.data(), {}, 0, logits, trace);
    return Status::Ok();
  }

  void decode(Session& s, int32_t token, std::vector<float>* logits) const override { lm_.decode(s, token, logits); }

 private:
  // [n_images · image_tokens, D] projected features, in placeholder order.
  std::vector<float> image_features(const PixelBatch& px, nn::Trace* trace) const {
    const int64_t n = px.rows, T = vision_.tokens(), Dv = vision_.cfg.width, D = text_.hidden;
    const int nl = vision_.cfg.layers;
    // hidden_states has nl + 1 entries; negative feature layers count from its end.
    std::vector<int> want;
    int deepest = 0;
    for (int l : feature_layers_) {
      want.push_back(l < 0 ? nl + 1 + l : l);
      deepest = std::max(deepest, want.back());
    }
    const int run = trace ? nl : deepest;  // a trace records every layer, as the fixtures do
    const int64_t nt = image_tokens(), F = Dv * int64_t(want.size());
    std::vector<float> sel(static_cast<size_t>(n * nt * F)), out(static_cast<size_t>(n * nt * D));
    for (int64_t i = 0; i < n; ++i) {
      std::vector<std::vector<float>> hs(size_t(nl + 1));
      std::vector<float> last = vision_.encode(px.values.data() + i * px.cols, run, [&](int k, const float* x) {
        if (trace || std::find(want.begin(), want.end(), k) != want.end()) hs[size_t(k)].assign(x, x + T * Dv);
      });
      if (trace) {
        const std::string hook = "hook.model.vision_tower.";
        for (int k = 0; k <= nl; ++k) trace->tensor(hook + "hidden_states." + std::to_string(k), hs[size_t(k)].data(), {1, T, Dv});
        trace->tensor(hook + "last_hidden_state", last.data(), {1, T, Dv});
        if (vision_.post.w.data) {
          std::vector<float> pooled = vision_.pool(last);
          trace->tensor(hook + "pooler_output", pooled.data(), {1, Dv});
        }
      }
      for (size_t w = 0; w < want.size(); ++w) {
        const std::vector<float>& h = hs[size_t(want[w])];
        for (int64_t t = 0; t < nt; ++t)
          std::copy_n(h.data() + (t + (keep_cls_ ? 0 : 1)) * Dv, Dv, sel.data() + ((i * nt + t) * F + int64_t(w) * Dv));
      }
    }
    std::vector<float> mid(out.size());
    proj1_(sel.data(), n * nt, mid.data());
    ops::activate(proj_act_, mid.data(), n * nt * D);
    proj2_(mid.data(), n * nt, out.data());
    if (trace) trace->tensor("hook.model.multi_modal_projector", out.data(), {n, nt, D});
    return out;
  }

  nn::DecoderConfig text_;
  int32_t image_token_ = 32000;
  std::vector<int> feature_layers_;
  bool keep_cls_ = false;
  RopeLM lm_;
  ClipVision vision_;
  nn::Linear proj1_, proj2_;
  ops::Act proj_act_ = ops::Act::Gelu;
  ClipImageConfig pre_;
};

}  // namespace

Expected<std::unique_ptr<Model>> load_llava(const std::string& dir, const nlohmann::json& config, const LoadOptions& opt) {
  return Llava::load(dir, config, opt);
}

}  // namespace vlm::models
