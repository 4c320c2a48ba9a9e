#include "runtime/check.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/safetensors.h"
#include "runtime/engine.h"

namespace vlm::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Records every traced tensor by name.
struct Recorder : nn::Trace {
  std::map<std::string, std::vector<float>> t;
  void tensor(const std::string& name, const float* data, std::initializer_list<int64_t> shape) override {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    t[name].assign(data, data + n);
  }
};

TensorReport compare(const std::string& name, const float* a, size_t na, const std::vector<float>& b,
                     const Tolerance& tol) {
  TensorReport r;
  r.name = name;
  if (na != b.size()) {
    r.ok = false;
    r.note = cat("size ", na, " vs expected ", b.size());
    return r;
  }
  for (size_t i = 0; i < na; ++i) {
    const double e = std::fabs(double(a[i]) - double(b[i]));
    const double lim = tol.atol + tol.rtol * std::fabs(double(b[i]));
    r.max_err = std::max(r.max_err, e);
    r.worst = std::max(r.worst, e / lim);
    if (!(e <= lim)) r.ok = false;  // NaN fails too
  }
  return r;
}

TensorReport compare_ints(const std::string& name, const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  TensorReport r;
  r.name = name;
  if (a.size() != b.size()) {
    r.ok = false;
    r.note = cat("length ", a.size(), " vs expected ", b.size());
    return r;
  }
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) {
      r.ok = false;
      r.max_err = std::max(r.max_err, double(std::llabs(a[i] - b[i])));
      if (r.note.empty()) r.note = cat("first difference at ", i, ": ", a[i], " vs ", b[i]);
    }
  return r;
}

Expected<std::vector<models::Media>> load_media(const std::string& dir, const json& c) {
  std::vector<models::Media> media;
  if (c.contains("images") && c["images"].is_array())
    for (const auto& f : c["images"]) {
      VLM_ASSIGN_OR_RETURN(Image img, load_image((fs::path(dir) / f.get<std::string>()).string()));
      models::Media m;
      m.frames.push_back(std::move(img));
      media.push_back(std::move(m));
    }
  if (c.contains("video_frames") && c["video_frames"].is_array() && !c["video_frames"].empty()) {
    models::Media v;
    v.kind = models::Media::Kind::Video;
    if (c.contains("video_fps") && c["video_fps"].is_number()) v.fps = c["video_fps"].get<double>();
    for (const auto& f : c["video_frames"]) {
      VLM_ASSIGN_OR_RETURN(Image img, load_image((fs::path(dir) / f.get<std::string>()).string()));
      v.frames.push_back(std::move(img));
    }
    media.push_back(std::move(v));
  }
  return media;
}

// transformers 5.17 prompts a Qwen3-VL video keeping the template's outer vision_start/end pair;
// the recorded prompt then has a <|vision_start|> followed by text (the first timestamp) instead
// of a placeholder.
bool recorded_with_outer_video_pair(const json& c) {
  if (!c.contains("decoded_prompt") || !c["decoded_prompt"].is_string()) return false;
  const std::string& s = c["decoded_prompt"].get_ref<const std::string&>();
  const std::string vs = "<|vision_start|>";
  for (size_t f = s.find(vs); f != std::string::npos; f = s.find(vs, f + 1)) {
    const std::string_view next = std::string_view(s).substr(f + vs.size());
    if (!next.starts_with("<|image_pad|>") && !next.starts_with("<|video_pad|>")) return true;
  }
  return false;
}

Status run_case(const models::Model& m, const std::string& dir, const CheckOptions& opt, CaseReport* rep) {
  VLM_ASSIGN_OR_RETURN(json c, models::read_json_file((fs::path(dir) / "case.json").string()));
  VLM_ASSIGN_OR_RETURN(auto exp, SafetensorsFile::open((fs::path(dir) / "expected.safetensors").string()));
  VLM_ASSIGN_OR_RETURN(auto media, load_media(dir, c));
  models::PrepareOptions po;
  if (c.contains("rope_resume_rule")) po.rope_rule = models::RopeResumeRule::Transformers5;
  po.qwen3_video_outer_pair = recorded_with_outer_video_pair(c);
  // Cases with chat messages exercise the checkpoint's template; others give the rendered prompt.
  Expected<models::Prompt> prepared =
      c.contains("messages") ? m.prepare(c["messages"], media, po)
      : c.contains("prompt") && c["prompt"].is_string()
          ? m.prepare_text(c["prompt"].get<std::string>(), media, po)
          : Expected<models::Prompt>(make_error("case.json has neither messages nor prompt"));
  VLM_ASSIGN_OR_RETURN(models::Prompt p, std::move(prepared));
  auto& out = rep->tensors;
  auto want = [&](const std::string& n) { return exp->find(n); };

  if (auto* t = want("inputs.input_ids"))
    out.push_back(compare_ints("input_ids", std::vector<int64_t>(p.ids.begin(), p.ids.end()), to_i64(*t)));
  auto grids = [](const std::vector<models::Grid>& g) {
    std::vector<int64_t> v;
    for (const auto& x : g) v.insert(v.end(), x.begin(), x.end());
    return v;
  };
  if (auto* t = want("inputs.image_grid_thw")) out.push_back(compare_ints("image_grid_thw", grids(p.images.grids), to_i64(*t)));
  if (auto* t = want("inputs.video_grid_thw")) out.push_back(compare_ints("video_grid_thw", grids(p.videos.grids), to_i64(*t)));
  auto pix = [&](const char* key, const models::PixelBatch& b, const char* label) {
    if (auto* t = want(key)) {
      auto r = compare(label, b.values.data(), b.values.size(), to_f32(*t), opt.pixels);
      out.push_back(r);
    }
  };
  pix("inputs.pixel_values", p.images, "pixel_values");
  pix("inputs.pixel_values_videos", p.videos, "pixel_values_videos");
  if (auto* t = want("inputs_pil.pixel_values")) {  // informational: the PIL processor's output
    auto r = compare("pixel_values_vs_pil", p.images.values.data(), p.images.values.size(), to_f32(*t), opt.pixels);
    r.ok = true;
    r.note = "informational (engine uses the torchvision resampler)";
    out.push_back(r);
  }
  if (auto* t = want("rope.position_ids")) {
    std::vector<int64_t> v(3 * p.pos.size());
    for (size_t i = 0; i < p.pos.size(); ++i)
      for (size_t a = 0; a < 3; ++a) v[a * p.pos.size() + i] = p.pos[i][a];
    out.push_back(compare_ints("rope.position_ids", v, to_i64(*t)));
  }
  if (auto* t = want("rope.deltas")) out.push_back(compare_ints("rope.deltas", {p.rope_delta}, to_i64(*t)));

  Recorder rec;
  GenerateOptions go;
  std::vector<int64_t> gen_expected;
  for (const auto& x : c.value("generated_ids", json::array())) gen_expected.push_back(x.get<int64_t>());
  go.max_new_tokens = int(std::max<size_t>(1, gen_expected.size()));
  go.sampling = SamplingParams{};  // the fixtures are greedy without penalties
  std::vector<float> logits;
  {
    models::Session s;
    VLM_TRY_STATUS(m.prefill(s, p, &logits, &rec));
  }
  for (const auto& [name, view] : exp->tensors()) {
    if (name.rfind("hook.", 0) != 0) continue;
    auto it = rec.t.find(name);
    if (it == rec.t.end()) continue;  // a hook this family does not produce
    out.push_back(compare(name.substr(5), it->second.data(), it->second.size(), to_f32(view), opt.model));
  }
  if (auto* t = want("hidden_states")) {
    auto e = to_f32(*t);
    const int64_t layers = t->dim(0), per = t->numel() / layers;
    for (int64_t i = 0; i < layers; ++i) {
      const std::string n = "hidden_states." + std::to_string(i);
      auto it = rec.t.find(n);
      std::vector<float> slice(e.begin() + i * per, e.begin() + (i + 1) * per);
      if (it == rec.t.end()) {
        out.push_back({n, 0, 0, false, "not produced"});
        continue;
      }
      out.push_back(compare(n, it->second.data(), it->second.size(), slice, opt.model));
    }
  }
  if (auto* t = want("logits.last")) out.push_back(compare("logits.last", logits.data(), logits.size(), to_f32(*t), opt.model));
  if (auto* ti = want("logits.last.top64.indices")) {
    auto idx = to_i64(*ti);
    auto val = to_f32(*want("logits.last.top64.values"));
    std::vector<float> ours(idx.size());
    for (size_t k = 0; k < idx.size(); ++k) ours[k] = idx[k] >= 0 && idx[k] < int64_t(logits.size()) ? logits[size_t(idx[k])] : NAN;
    auto r = compare("logits.top64", ours.data(), ours.size(), val, opt.model);
    // The recorded order must be ours too, up to ties within tolerance; and nothing else may
    // outrank the 64th recorded value.
    for (size_t k = 1; k < ours.size(); ++k)
      if (ours[k] > ours[k - 1] + opt.model.atol) {
        r.ok = false;
        r.note = cat("order differs at rank ", k);
      }
    std::vector<int64_t> sorted_idx = idx;
    std::sort(sorted_idx.begin(), sorted_idx.end());
    for (size_t v = 0; v < logits.size(); ++v)
      if (!std::binary_search(sorted_idx.begin(), sorted_idx.end(), int64_t(v)) &&
          logits[v] > val.back() + opt.model.atol + opt.model.rtol * std::fabs(val.back())) {
        r.ok = false;
        r.note = cat("token ", v, " outranks the recorded top-64");
        break;
      }
    out.push_back(r);
  }
  if (!gen_expected.empty()) {
    VLM_ASSIGN_OR_RETURN(GenerateResult g, generate(m, p, go));
    std::vector<int64_t> got(g.tokens.begin(), g.tokens.end());
    out.push_back(compare_ints("generated_ids", got, gen_expected));
  }
  for (const auto& t : out) rep->ok = rep->ok && t.ok;
  return Status::Ok();
}

Status run_dual_case(const models::DualEncoder& m, const std::string& dir, const CheckOptions& opt, CaseReport* rep) {
  VLM_ASSIGN_OR_RETURN(json c, models::read_json_file((fs::path(dir) / "case.json").string()));
  VLM_ASSIGN_OR_RETURN(auto exp, SafetensorsFile::open((fs::path(dir) / "expected.safetensors").string()));
  auto& out = rep->tensors;
  auto want = [&](const std::string& n) { return exp->find(n); };
  std::vector<Image> images;
  for (const auto& f : c.value("images", json::array())) {
    VLM_ASSIGN_OR_RETURN(Image img, load_image((fs::path(dir) / f.get<std::string>()).string()));
    images.push_back(std::move(img));
  }
  const int64_t n_img = int64_t(images.size());
  VLM_ASSIGN_OR_RETURN(std::vector<float> px, m.preprocess(images));
  if (auto* t = want("inputs.pixel_values")) out.push_back(compare("pixel_values", px.data(), px.size(), to_f32(*t), opt.pixels));
  if (auto* t = want("inputs_pil.pixel_values")) {
    VLM_ASSIGN_OR_RETURN(std::vector<float> pil, m.preprocess(images, ResampleKernel::kPil));
    out.push_back(compare("pixel_values_pil_resampler", pil.data(), pil.size(), to_f32(*t), opt.pixels));
  }
  // Texts: tokenized by us when the case gives strings, else the recorded ids are the input.
  const TensorView* ids_t = want("inputs.input_ids");
  const TensorView* mask_t = want("inputs.attention_mask");
  if (!ids_t) return make_error("expected.safetensors has no inputs.input_ids");
  const int64_t n_txt = ids_t->dim(0), S = ids_t->dim(1);
  std::vector<int64_t> rec = to_i64(*ids_t), valid(static_cast<size_t>(n_txt), S);
  if (mask_t) {
    auto mk = to_i64(*mask_t);
    for (int64_t i = 0; i < n_txt; ++i) valid[size_t(i)] = std::count(mk.begin() + i * S, mk.begin() + (i + 1) * S, 1);
  }
  std::vector<int32_t> ids(rec.begin(), rec.end());
  if (c.contains("texts") && c["texts"].is_array()) {
    std::vector<int64_t> ours;
    const int32_t pad = m.tokenizer() && m.tokenizer()->pad_id() >= 0 ? m.tokenizer()->pad_id() : 0;
    for (const auto& t : c["texts"]) {
      VLM_ASSIGN_OR_RETURN(std::vector<int32_t> v, m.tokenize(t.get<std::string>()));
      v.resize(size_t(S), pad);  // the fixture was padded to max_length
      ours.insert(ours.end(), v.begin(), v.end());
    }
    out.push_back(compare_ints("input_ids", ours, rec));
    ids.assign(ours.begin(), ours.end());
  }
  Recorder rec_t;
  std::vector<float> ie = m.embed_images(px, n_img, &rec_t);
  std::vector<float> te = m.embed_texts(ids, n_txt, S, valid, &rec_t);
  for (const auto& [name, v] : rec_t.t)
    if (auto* t = want(name)) out.push_back(compare(name.substr(4), v.data(), v.size(), to_f32(*t), opt.model));
  if (auto* t = want("out.vision_model_output.pooler_output")) out.push_back(compare("vision pooler_output", ie.data(), ie.size(), to_f32(*t), opt.model));
  if (auto* t = want("out.text_model_output.pooler_output")) out.push_back(compare("text pooler_output", te.data(), te.size(), to_f32(*t), opt.model));
  std::vector<float> logits = m.logits(ie, n_img, te, n_txt);
  if (auto* t = want("out.logits_per_image")) out.push_back(compare("logits_per_image", logits.data(), logits.size(), to_f32(*t), opt.model));
  if (auto* t = want("out.logits_per_text")) {
    std::vector<float> tr(logits.size());
    for (int64_t i = 0; i < n_img; ++i)
      for (int64_t j = 0; j < n_txt; ++j) tr[size_t(j * n_img + i)] = logits[size_t(i * n_txt + j)];
    out.push_back(compare("logits_per_text", tr.data(), tr.size(), to_f32(*t), opt.model));
  }
  models::l2_normalize(ie.data(), n_img, m.embed_dim());
  models::l2_normalize(te.data(), n_txt, m.embed_dim());
  if (auto* t = want("out.image_embeds")) out.push_back(compare("image_embeds", ie.data(), ie.size(), to_f32(*t), opt.model));
  if (auto* t = want("out.text_embeds")) out.push_back(compare("text_embeds", te.data(), te.size(), to_f32(*t), opt.model));
  for (const auto& t : out) rep->ok = rep->ok && t.ok;
  return Status::Ok();
}

}  // namespace

CaseReport check_dual_case(const models::DualEncoder& m, const std::string& case_dir, const CheckOptions& opt) {
  CaseReport rep;
  rep.name = fs::path(case_dir).filename().string();
  Status s = run_dual_case(m, case_dir, opt, &rep);
  if (!s.ok()) {
    rep.ok = false;
    rep.error = s.error().message;
  }
  return rep;
}

CaseReport check_case(const models::Model& m, const std::string& case_dir, const CheckOptions& opt) {
  CaseReport rep;
  rep.name = fs::path(case_dir).filename().string();
  if (rep.name.empty()) rep.name = fs::path(case_dir).parent_path().filename().string();
  Status s = run_case(m, case_dir, opt, &rep);
  if (!s.ok()) {
    rep.ok = false;
    rep.error = s.error().message;
  }
  return rep;
}

}  // namespace vlm::runtime
