// `vlm bench`: load time, preprocessing, ViT encode, prefill and decode speed of one model on one
// image, as min/median over repeats, plus a read-bandwidth probe run by this process right before
// decoding (decode speed is judged against it: bytes read per token / probe bandwidth).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/threads.h"
#include "frontends/cli/commands.h"
#include "ops/ops.h"
#include "vision/image.h"

namespace vlm::cli {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct BenchArgs {
  LoadArgs load;
  std::string model, image;
  int64_t prompt_tokens = -1, gen_tokens = 32, threads = 0, repeat = 3;
  bool probe = false, json = false, accuracy = false;
  size_t probe_mb = 1024;
};

// Records when the model reports the end of its vision tower (the hook names `vlm check` uses),
// so ViT encode and LLM prefill are timed separately inside one prefill call.
struct PhaseTimer : nn::Trace {
  Clock::time_point vit_end{};
  bool saw_vit = false;
  void tensor(const std::string& name, const float*, std::initializer_list<int64_t>) override {
    if (name.find("visual.pooler_output") != std::string::npos || name.find("visual.merger") != std::string::npos ||
        name.find("vision_tower.last_hidden_state") != std::string::npos) {
      vit_end = Clock::now();
      saw_vit = true;
    }
  }
};

double vm_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::strlen(key));
  return 0;
}

struct Stat {
  std::vector<double> v;
  double min() const { return v.empty() ? NAN : *std::min_element(v.begin(), v.end()); }
  double max() const { return v.empty() ? NAN : *std::max_element(v.begin(), v.end()); }
  double median() const {
    if (v.empty()) return NAN;
    auto s = v;
    std::sort(s.begin(), s.end());
    return s.size() % 2 ? s[s.size() / 2] : 0.5 * (s[s.size() / 2 - 1] + s[s.size() / 2]);
  }
};

nlohmann::json num(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

// Bytes of weights one decode step reads in `format`: every 2-d weight of the text decoder in its
// packed size, 1-d tensors as stored, and the LM head (the embedding matrix when tied).
Expected<double> decode_weight_bytes(const std::string& dir, const std::string& format) {
  VLM_ASSIGN_OR_RETURN(WeightStore ws, WeightStore::open_dir(dir));
  std::ifstream cf(std::filesystem::path(dir) / "config.json");
  nlohmann::json cfg = nlohmann::json::parse(cf, nullptr, false);
  bool tied = false;
  if (cfg.is_object()) {
    if (cfg.contains("tie_word_embeddings") && cfg["tie_word_embeddings"].is_boolean())
      tied = cfg["tie_word_embeddings"].get<bool>();
    else if (cfg.contains("text_config") && cfg["text_config"].value("tie_word_embeddings", false))
      tied = true;
  }
  auto packed = [&](const TensorView& t) -> double {
    if (t.ndim != 2 || format == "native") return double(t.nbytes());
    const double n = double(t.dim(0)), k = double(t.dim(1));
    if (format == "bf16") return n * k * 2;
    const double np = std::ceil(n / 16) * 16, kp = std::ceil(k / 32) * 32;
    return np * kp / 32 * (format == "q8" ? 34 : 18);
  };
  const std::regex layer(R"(^(model\.|model\.language_model\.|language_model\.model\.)(layers\.\d+\.|norm\.weight))");
  const std::regex embed(R"(^(model\.|model\.language_model\.|language_model\.model\.)embed_tokens\.weight$)");
  const std::regex head(R"(^(language_model\.)?lm_head\.weight$)");
  double bytes = 0;
  for (const auto& name : ws.names()) {
    const TensorView* t = ws.find(name);
    if (std::regex_search(name, layer) || std::regex_match(name, head) || (tied && std::regex_match(name, embed)))
      bytes += packed(*t);
  }
  return bytes;
}

Image synthetic_image(int w, int h) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(size_t(w) * size_t(h) * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.row(y) + size_t(x) * 3;
      p[0] = uint8_t(x * 255 / std::max(1, w - 1));
      p[1] = uint8_t(y * 255 / std::max(1, h - 1));
      p[2] = uint8_t((x ^ y) & 255);
    }
  return im;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "vlm bench: %s\n", msg.c_str());
  return 2;
}

int argmax(const std::vector<float>& v) { return int(std::max_element(v.begin(), v.end()) - v.begin()); }

int do_bench(const BenchArgs& a) {
  // Argument checks first: a bad argument costs no model load.
  if (a.model.empty()) return fail("--model DIR is required");
  if (!std::filesystem::is_directory(a.model)) return fail("--model: '" + a.model + "' is not a folder");
  if (std::string e = check_load_args(a.load); !e.empty()) return fail(e);
  ops::LinearFormat fmt;
  ops::parse_linear_format(a.load.weights, &fmt);
  if (a.gen_tokens < 1 || a.gen_tokens > 100000) return fail("--gen-tokens must be in 1..100000");
  if (a.prompt_tokens < -1 || a.prompt_tokens > 1000000) return fail("--prompt-tokens must be in 0..1000000");
  if (a.repeat < 1 || a.repeat > 1000) return fail("--repeat must be in 1..1000");
  if (a.threads < 0 || a.threads > 1024) return fail("--threads must be in 1..1024");
  if (a.accuracy && fmt == ops::LinearFormat::Native) return fail("--accuracy compares --weights bf16|q8|q4 with native");
  std::vector<models::Media> media;
  std::string image_desc = "none";
  if (!a.image.empty()) {
    int w = 0, h = 0;
    char tail = 0;
    models::Media m;
    if (std::sscanf(a.image.c_str(), "%dx%d%c", &w, &h, &tail) == 2) {
      if (w < 1 || h < 1 || w > 16384 || h > 16384) return fail("--image WxH: sides must be in 1..16384");
      m.frames.push_back(synthetic_image(w, h));
    } else {
      if (!std::filesystem::exists(a.image)) return fail("--image: '" + a.image + "' is neither WxH nor a file");
      auto img = load_image(a.image);
      if (!img.ok()) return fail("--image: " + img.error().message);
      m.frames.push_back(std::move(img.value()));
    }
    image_desc = std::to_string(m.frames[0].width) + "x" + std::to_string(m.frames[0].height);
    media.push_back(std::move(m));
  }
  if (a.threads > 0) set_num_threads(int(a.threads));

  auto t0 = Clock::now();
  models::LoadOptions lo;
  lo.weights = a.load.weights;
  lo.vision_weights = a.load.vision_weights;
  lo.mmap = a.load.mmap;
  auto loaded = models::load_model(a.model, lo);
  if (!loaded.ok()) {
    std::fprintf(stderr, "vlm bench: %s\n", loaded.error().message.c_str());
    return 1;
  }
  const double load_s = ms_since(t0) / 1000;
  auto& model = *loaded;

  // A text of about --prompt-tokens tokens (" the" is one token in the BPE vocabularies we load).
  std::string text = "Describe this image.";
  if (a.prompt_tokens >= 0) {
    text.clear();
    for (int64_t i = 0; i < a.prompt_tokens; ++i) text += " the";
  }
  nlohmann::json content = nlohmann::json::array();
  for (size_t i = 0; i < media.size(); ++i) content.push_back({{"type", "image"}});
  content.push_back({{"type", "text"}, {"text", text}});
  const nlohmann::json messages = nlohmann::json::array({{{"role", "user"}, {"content", content}}});

  auto bytes = decode_weight_bytes(a.model, a.load.weights);
  const double weight_bytes = bytes.ok() ? *bytes : NAN;
  Stat pre_ms, vit_ms, prefill_ms, prefill_tps, decode_tps, probe_gbs, kv_bytes;
  int64_t prompt_len = 0, image_tokens = 0;
  double peak_rss_kb = 0;
  for (int64_t r = 0; r < a.repeat; ++r) {
    auto tp = Clock::now();
    auto prompt = model->prepare(messages, media, {});
    if (!prompt.ok()) return fail(prompt.error().message);
    pre_ms.v.push_back(ms_since(tp));
    prompt_len = int64_t(prompt->ids.size());
    image_tokens = 0;
    for (const auto& g : prompt->images.grids) image_tokens += g[0] * g[1] * g[2] / 4;

    models::Session s;
    std::vector<float> logits;
    PhaseTimer timer;
    auto tf = Clock::now();
    Status st = model->prefill(s, *prompt, &logits, media.empty() ? nullptr : &timer);
    if (!st.ok()) {
      std::fprintf(stderr, "vlm bench: %s\n", st.error().message.c_str());
      return 1;
    }
    const double total_ms = ms_since(tf);
    double llm_ms = total_ms;
    if (timer.saw_vit) {
      const double v = std::chrono::duration<double, std::milli>(timer.vit_end - tf).count();
      vit_ms.v.push_back(v);
      llm_ms = total_ms - v;
    }
    prefill_ms.v.push_back(llm_ms);
    prefill_tps.v.push_back(double(prompt_len) / (llm_ms / 1000));
    // Peak RSS without the probe's buffer: the high-water mark before the first probe, then the
    // resident size after each decode (the buffer is freed by then).
    if (!a.probe || r == 0) peak_rss_kb = std::max(peak_rss_kb, vm_kb("VmHWM:"));
    if (a.probe) probe_gbs.v.push_back(ops::probe_read_bandwidth(a.probe_mb << 20, 3));
    int32_t tok = argmax(logits);
    auto td = Clock::now();
    for (int64_t i = 0; i < a.gen_tokens; ++i) {
      model->decode(s, tok, &logits);
      tok = argmax(logits);
    }
    decode_tps.v.push_back(double(a.gen_tokens) / (ms_since(td) / 1000));
    peak_rss_kb = std::max(peak_rss_kb, vm_kb("VmRSS:"));
    // K and V caches read per decode step, averaged over the steps (f32 rows).
    (void)kv_bytes;
  }

  // Accuracy of the packed format against the native (exact) path on the same prompt: top-1
  // agreement over prefill + teacher-forced decode steps, and the largest logit difference.
  nlohmann::json acc = nullptr;
  if (a.accuracy) {
    auto native = models::load_model(a.model, {});
    if (!native.ok()) return fail(native.error().message);
    auto prompt = model->prepare(messages, media, {});
    models::Session s1, s2;
    std::vector<float> l1, l2;
    if (!(*native)->prefill(s1, *prompt, &l1, nullptr).ok() || !model->prefill(s2, *prompt, &l2, nullptr).ok())
      return fail("prefill failed");
    int agree = 0, steps = 0;
    double max_err = 0, max_abs = 0;
    for (int64_t i = 0;; ++i) {
      ++steps;
      agree += argmax(l1) == argmax(l2);
      for (size_t j = 0; j < l1.size(); ++j) {
        max_err = std::max(max_err, double(std::fabs(l1[j] - l2[j])));
        max_abs = std::max(max_abs, double(std::fabs(l1[j])));
      }
      if (i == a.gen_tokens) break;
      const int32_t tok = argmax(l1);
      (*native)->decode(s1, tok, &l1);
      model->decode(s2, tok, &l2);
    }
    acc = {{"steps", steps}, {"top1_agreement", double(agree) / steps}, {"max_logit_err", max_err},
           {"max_abs_logit", max_abs}};
  }

  const double rss_mb = peak_rss_kb / 1024;
  nlohmann::ordered_json j;
  j["model"] = a.model;
  j["weights"] = a.load.weights;
  j["vision_weights"] = a.load.vision_weights.empty() ? a.load.weights : a.load.vision_weights;
  j["mmap"] = a.load.mmap;
  j["kernels"] = ops::kernel_set_name();
  j["threads"] = num_threads();
  j["image"] = image_desc;
  j["image_tokens"] = image_tokens;
  j["prompt_tokens"] = prompt_len;
  j["gen_tokens"] = a.gen_tokens;
  j["repeat"] = a.repeat;
  j["load_s"] = num(load_s);
  j["preprocess_ms"] = num(pre_ms.median());
  j["preprocess_ms_min"] = num(pre_ms.min());
  j["vit_encode_ms"] = num(vit_ms.median());
  j["vit_encode_ms_min"] = num(vit_ms.min());
  j["prefill_ms"] = num(prefill_ms.median());
  j["prefill_tok_s"] = num(prefill_tps.median());
  j["prefill_tok_s_max"] = num(prefill_tps.max());
  j["decode_tok_s"] = num(decode_tps.median());
  j["decode_tok_s_max"] = num(decode_tps.max());
  j["decode_bytes_per_token"] = num(weight_bytes);
  j["peak_rss_mb"] = num(rss_mb);
  if (a.probe) {
    j["probe_read_gbs"] = num(probe_gbs.median());
    j["probe_read_gbs_min"] = num(probe_gbs.min());
    j["probe_read_gbs_max"] = num(probe_gbs.max());
    // Decode speed as a fraction of what the measured bandwidth allows.
    const double limit = probe_gbs.median() * 1e9 / weight_bytes;
    j["decode_limit_tok_s"] = num(limit);
    j["decode_fraction_of_limit"] = num(decode_tps.median() / limit);
  }
  if (!acc.is_null()) j["accuracy_vs_native"] = acc;
  j["runs"] = {{"preprocess_ms", pre_ms.v}, {"vit_encode_ms", vit_ms.v}, {"prefill_tok_s", prefill_tps.v},
               {"decode_tok_s", decode_tps.v}, {"probe_read_gbs", probe_gbs.v}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  const std::string vis = a.load.vision_weights.empty() ? "" : ", vision tower " + a.load.vision_weights;
  std::printf("model            %s (%s weights%s, %d threads, %s kernels)\n", a.model.c_str(), a.load.weights.c_str(),
              vis.c_str(), num_threads(), ops::kernel_set_name());
  std::printf("prompt           %lld tokens (%lld image tokens, image %s), %lld generated, %lld repeats\n",
              (long long)prompt_len, (long long)image_tokens, image_desc.c_str(), (long long)a.gen_tokens,
              (long long)a.repeat);
  std::printf("load             %.2f s\n", load_s);
  std::printf("preprocess       %.1f ms (min %.1f)\n", pre_ms.median(), pre_ms.min());
  if (!vit_ms.v.empty()) std::printf("ViT encode       %.1f ms (min %.1f)\n", vit_ms.median(), vit_ms.min());
  std::printf("prefill          %.1f tok/s (best %.1f)\n", prefill_tps.median(), prefill_tps.max());
  std::printf("decode           %.2f tok/s (best %.2f), %.3f GB of weights per token\n", decode_tps.median(),
              decode_tps.max(), weight_bytes / 1e9);
  if (a.probe)
    std::printf("read bandwidth   %.1f GB/s (min %.1f, max %.1f) -> decode limit %.2f tok/s, reached %.0f%%\n",
                probe_gbs.median(), probe_gbs.min(), probe_gbs.max(), probe_gbs.median() * 1e9 / weight_bytes,
                100 * decode_tps.median() / (probe_gbs.median() * 1e9 / weight_bytes));
  std::printf("peak RSS         %.0f MB\n", rss_mb);
  if (!acc.is_null()) std::printf("vs native        %s\n", acc.dump().c_str());
  return 0;
}

}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* c = app.add_subcommand("bench", "Measure load, preprocessing, ViT encode, prefill and decode speed");
  c->add_option("--model,-m", a->model, "Checkpoint folder");
  c->add_option("--image", a->image, "WxH (a synthetic image of that size) or an image file");
  c->add_option("--prompt-tokens", a->prompt_tokens, "Text prompt length in tokens (default: a short prompt)");
  c->add_option("--gen-tokens", a->gen_tokens, "Tokens decoded per repeat (default 32)");
  c->add_option("--threads", a->threads, "Worker threads (default: all cores)");
  add_load_options(c, &a->load);
  c->add_option("--repeat", a->repeat, "Repeats; each figure is reported as median and best (default 3)");
  c->add_flag("--probe", a->probe, "Measure read bandwidth right before each decode and report the decode limit");
  c->add_option("--probe-mb", a->probe_mb, "Size of the bandwidth probe's buffer; keep it well above the last-level cache (default 1024)");
  c->add_flag("--accuracy", a->accuracy, "Also compare the --weights format's logits with the native path");
  c->add_flag("--json", a->json, "Print one JSON object");
  c->callback([a] { set_exit_code(do_bench(*a)); });
}

}  // namespace vlm::cli
