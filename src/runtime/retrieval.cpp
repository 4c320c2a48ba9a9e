// Embeddings, zero-shot classification and model identity (retrieval.h).
#include "runtime/retrieval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "text/tokenizer.h"

namespace vlm::runtime {
namespace fs = std::filesystem;

Expected<std::vector<float>> embed_images(const models::DualEncoder& m, const std::vector<Image>& images) {
  if (images.empty()) return std::vector<float>();
  VLM_ASSIGN_OR_RETURN(std::vector<float> px, m.preprocess(images));
  std::vector<float> e = m.embed_images(px, int64_t(images.size()));
  models::l2_normalize(e.data(), int64_t(images.size()), m.embed_dim());
  return e;
}

Expected<std::vector<float>> embed_texts(const models::DualEncoder& m, const std::vector<std::string>& texts) {
  if (!m.tokenizer())
    return make_error("this ", m.family(), " checkpoint has no tokenizer (tokenizer.json), so it cannot embed text");
  std::vector<float> out;
  out.reserve(texts.size() * size_t(m.embed_dim()));
  for (const auto& t : texts) {
    VLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, m.tokenize(t));
    // One text per call at its own length: no padding, so no mask question for CLIP, while SigLIP's
    // tokenize already padded to max_length and is run unmasked, as transformers runs it.
    const int64_t S = int64_t(ids.size());
    std::vector<float> e = m.embed_texts(ids, 1, S, {S});
    out.insert(out.end(), e.begin(), e.end());
  }
  models::l2_normalize(out.data(), int64_t(texts.size()), m.embed_dim());
  return out;
}

Expected<std::string> apply_template(const std::string& tmpl, const std::string& label) {
  if (tmpl.find("{}") == std::string::npos)
    return make_error("template '", tmpl, "' has no {} to put the label in");
  std::string out;
  size_t from = 0;
  for (size_t at; (at = tmpl.find("{}", from)) != std::string::npos; from = at + 2) out += tmpl.substr(from, at - from) + label;
  return out + tmpl.substr(from);
}

std::vector<float> label_probabilities(const std::vector<float>& logits, bool sigmoid) {
  std::vector<float> p(logits.size());
  if (logits.empty()) return p;
  if (sigmoid) {
    for (size_t i = 0; i < logits.size(); ++i) p[i] = float(1.0 / (1.0 + std::exp(-double(logits[i]))));
    return p;
  }
  const double mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += std::exp(double(logits[i]) - mx);
  for (size_t i = 0; i < logits.size(); ++i) p[i] = float(std::exp(double(logits[i]) - mx) / sum);
  return p;
}

std::vector<LabelScore> classify_embedded(const models::DualEncoder& m, const std::vector<float>& image_embedding,
                                          const std::vector<float>& text_embeddings,
                                          const std::vector<std::string>& labels) {
  const int64_t n = int64_t(labels.size());
  std::vector<float> logits = m.logits(image_embedding, 1, text_embeddings, n);
  std::vector<float> probs = label_probabilities(logits, m.sigmoid());
  std::vector<LabelScore> out(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) out[i] = {labels[i], probs[i], logits[i]};
  std::stable_sort(out.begin(), out.end(), [](const LabelScore& a, const LabelScore& b) { return a.prob > b.prob; });
  return out;
}

Expected<std::vector<LabelScore>> classify(const models::DualEncoder& m, const Image& image,
                                           const std::vector<std::string>& labels, const std::string& tmpl) {
  if (labels.empty()) return make_error("no labels to classify against");
  std::vector<std::string> prompts;
  for (const auto& l : labels) {
    VLM_ASSIGN_OR_RETURN(std::string p, apply_template(tmpl, l));
    prompts.push_back(std::move(p));
  }
  VLM_ASSIGN_OR_RETURN(std::vector<float> txt, embed_texts(m, prompts));
  VLM_ASSIGN_OR_RETURN(std::vector<float> img, embed_images(m, {image}));
  return classify_embedded(m, img, txt, labels);
}

namespace {

struct Fnv64 {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void add(const std::string& s) {
    add(s.data(), s.size());
    add("\0", 1);
  }
};

}  // namespace

Expected<ModelId> identify_model(const models::DualEncoder& m, const std::string& dir) {
  ModelId id;
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(dir), ec);
  id.path = ec ? dir : abs.string();
  id.family = m.family();
  id.dim = m.embed_dim();
  // Two fine-tunes share family, dim and config; their weights differ everywhere, so a few sampled
  // blocks per file tell them apart without hashing gigabytes on every search.
  Fnv64 h;
  {
    std::ifstream in(fs::path(dir) / "config.json", std::ios::binary);
    if (!in) return make_error("cannot read ", dir, "/config.json");
    std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    h.add(cfg);
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  if (ec) return make_error("cannot list ", dir, ": ", ec.message());
  std::sort(files.begin(), files.end());
  constexpr int64_t kBlock = 4096, kSamples = 16;
  std::vector<char> buf(kBlock);
  for (const auto& f : files) {
    const int64_t size = int64_t(fs::file_size(f, ec));
    if (ec) return make_error("cannot stat ", f.string(), ": ", ec.message());
    h.add(f.filename().string());
    h.add(&size, sizeof size);
    std::ifstream in(f, std::ios::binary);
    if (!in) return make_error("cannot read ", f.string());
    const int64_t span = std::max<int64_t>(0, size - kBlock);
    for (int64_t s = 0; s < kSamples; ++s) {
      in.clear();
      in.seekg(span * s / (kSamples - 1));
      in.read(buf.data(), kBlock);
      h.add(buf.data(), size_t(in.gcount()));
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h.h));
  id.fingerprint = hex;
  return id;
}

}  // namespace vlm::runtime
