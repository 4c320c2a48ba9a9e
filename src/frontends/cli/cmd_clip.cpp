// `vlm embed`, `vlm classify`, `vlm index`, `vlm search`: CLIP / SigLIP
// checkpoints as users meet them (runtime/retrieval.h).
//
// Exit codes: 0 done (an index run with unreadable files is still done: they
// are listed), 1 the model failed to load or the index could not be written,
// 2 bad input (missing files or folders, a text request to a checkpoint without
// a tokenizer, an index built with another model).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "frontends/cli/commands.h"
#include "runtime/retrieval.h"

namespace vlm::cli {
namespace {

namespace fs = std::filesystem;

int fail(int code, const std::string& msg) {
  std::fprintf(stderr, "vlm: %s\n", msg.c_str());
  return code;
}

struct Loaded {
  std::unique_ptr<models::DualEncoder> model;
  int code = 0;
};

Loaded load_dual(const std::string& dir) {
  Loaded r;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    r.code = fail(2, cat("no such model folder: ", dir));
    return r;
  }
  if (!models::is_dual_encoder(dir)) {
    r.code = fail(2, cat(dir, " is not a CLIP or SigLIP checkpoint (config.json model_type must be clip or siglip)"));
    return r;
  }
  auto m = models::DualEncoder::load(dir);
  if (!m.ok()) {
    r.code = fail(1, m.error().message);
    return r;
  }
  r.model = std::move(m.value());
  return r;
}

int no_tokenizer(const std::string& dir) {
  return fail(2, cat(dir, " has no tokenizer (tokenizer.json), so it cannot embed text; ",
                     "this checkpoint can embed and search images only"));
}

std::string json_str(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// %.9g round-trips a float; nlohmann would print the double the float widens to.
std::string json_floats(const float* v, int64_t n) {
  std::string out = "[";
  char buf[32];
  for (int64_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", double(v[i]));
    out += buf;
  }
  return out + "]";
}

// ---- embed ------------------------------------------------------------------

struct EmbedArgs {
  std::string model;
  std::vector<std::string> images, texts;
};

int do_embed(const EmbedArgs& a) {
  if (a.images.empty() == a.texts.empty()) return fail(2, "give --image PATH... or --text TEXT... (one of them)");
  std::vector<Image> images;
  for (const auto& p : a.images) {
    auto img = load_image(p);
    if (!img.ok()) return fail(2, img.error().message);
    images.push_back(std::move(img.value()));
  }
  Loaded l = load_dual(a.model);
  if (!l.model) return l.code;
  const models::DualEncoder& m = *l.model;
  if (!a.texts.empty() && !m.tokenizer()) return no_tokenizer(a.model);
  auto e = images.empty() ? runtime::embed_texts(m, a.texts) : runtime::embed_images(m, images);
  if (!e.ok()) return fail(2, e.error().message);
  const bool img = !images.empty();
  const std::vector<std::string>& what = img ? a.images : a.texts;
  const int64_t dim = m.embed_dim();
  std::printf("{\"model\": %s, \"family\": \"%s\", \"dim\": %lld, \"embeddings\": [\n", json_str(a.model).c_str(),
              m.family().c_str(), static_cast<long long>(dim));
  for (size_t i = 0; i < what.size(); ++i)
    std::printf("  {\"%s\": %s, \"embedding\": %s}%s\n", img ? "image" : "text", json_str(what[i]).c_str(),
                json_floats(e->data() + int64_t(i) * dim, dim).c_str(), i + 1 < what.size() ? "," : "");
  std::printf("]}\n");
  return 0;
}

// ---- classify ---------------------------------------------------------------

struct ClassifyArgs {
  std::string model, image, tmpl = "a photo of a {}";
  std::vector<std::string> labels;
  bool json = false;
};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

int do_classify(const ClassifyArgs& a) {
  std::vector<std::string> labels;
  for (const auto& l : a.labels)
    if (!trim(l).empty()) labels.push_back(trim(l));
  if (labels.empty()) return fail(2, "--labels is empty: give a comma-separated list, e.g. \"a cat,a dog\"");
  if (a.tmpl.find("{}") == std::string::npos)
    return fail(2, cat("--template '", a.tmpl, "' has no {} for the label"));
  auto img = load_image(a.image);
  if (!img.ok()) return fail(2, img.error().message);
  Loaded l = load_dual(a.model);
  if (!l.model) return l.code;
  if (!l.model->tokenizer()) return no_tokenizer(a.model);
  auto r = runtime::classify(*l.model, *img, labels, a.tmpl);
  if (!r.ok()) return fail(2, r.error().message);
  if (a.json) {
    std::printf("[\n");
    for (size_t i = 0; i < r->size(); ++i)
      std::printf("  {\"label\": %s, \"prob\": %.6f, \"logit\": %.6f}%s\n", json_str((*r)[i].label).c_str(),
                  double((*r)[i].prob), double((*r)[i].logit), i + 1 < r->size() ? "," : "");
    std::printf("]\n");
  } else {
    for (const auto& s : *r) std::printf("%.6f\t%s\n", double(s.prob), s.label.c_str());
  }
  // CLIP's probabilities compete for one unit; SigLIP's do not, and users read them differently.
  std::fprintf(stderr, "%s\n", l.model->sigmoid() ? "sigmoid per label (SigLIP): probabilities need not sum to 1"
                                                  : "softmax over the labels (CLIP)");
  return 0;
}

// ---- index ------------------------------------------------------------------

struct IndexArgs {
  std::string model, folder, db;
  int batch = 16;
  bool quiet = false;
};

std::atomic<bool> g_cancel{false};

extern "C" void on_sigint(int) {
  g_cancel.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C stops at once
}

int do_index(const IndexArgs& a) {
  std::error_code ec;
  if (!fs::is_directory(a.folder, ec)) return fail(2, cat("no such folder: ", a.folder));
  Loaded l = load_dual(a.model);
  if (!l.model) return l.code;
  auto id = runtime::identify_model(*l.model, a.model);
  if (!id.ok()) return fail(1, id.error().message);
  Status usable = runtime::check_index_model(a.db, *id);
  if (!usable.ok()) return fail(2, usable.error().message);

  const bool bar = !a.quiet && isatty(fileno(stderr));
  const auto t0 = std::chrono::steady_clock::now();
  runtime::IndexProgress progress = [&](int64_t done, int64_t total, const std::string& path) {
    if (!bar) return;
    constexpr int kWidth = 30;
    const int fill = total ? int(done * kWidth / total) : kWidth;
    std::string name = fs::path(path).filename().string();
    if (name.size() > 32) name = name.substr(0, 29) + "...";
    std::fprintf(stderr, "\r[%s%s] %lld/%lld %-32s", std::string(size_t(fill), '#').c_str(),
                 std::string(size_t(kWidth - fill), '.').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total), name.c_str());
    std::fflush(stderr);
  };
  runtime::IndexOptions opt;
  opt.batch = a.batch;
  opt.cancel = &g_cancel;
  g_cancel.store(false);
  auto prev = std::signal(SIGINT, on_sigint);
  auto r = runtime::index_folder(*l.model, *id, a.folder, a.db, opt, progress);
  std::signal(SIGINT, prev);
  if (bar) std::fprintf(stderr, "\n");
  if (!r.ok()) return fail(1, r.error().message);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("indexed %lld, unchanged %lld, failed %zu, removed %lld; %s holds %lld images (%.1f s)\n",
              static_cast<long long>(r->indexed), static_cast<long long>(r->skipped), r->failed.size(),
              static_cast<long long>(r->removed), a.db.c_str(), static_cast<long long>(r->total), secs);
  for (const auto& f : r->failed) std::printf("failed\t%s\t%s\n", f.path.c_str(), f.reason.c_str());
  if (r->interrupted) std::fprintf(stderr, "vlm: interrupted; what was embedded is saved, run again to go on\n");
  return r->interrupted ? 130 : 0;
}

// ---- search -----------------------------------------------------------------

struct SearchArgs {
  std::string model, db, text, image;
  int64_t top = 10;
};

int do_search(const SearchArgs& a) {
  if (a.text.empty() == a.image.empty()) return fail(2, "give --text QUERY or --image PATH (one of them)");
  std::error_code ec;
  if (!fs::is_regular_file(a.db, ec)) return fail(2, cat("no index at ", a.db, " (build one with `vlm index`)"));
  Expected<Image> img = Image();
  if (!a.image.empty()) {
    img = load_image(a.image);
    if (!img.ok()) return fail(2, img.error().message);
  }
  Loaded l = load_dual(a.model);
  if (!l.model) return l.code;
  const models::DualEncoder& m = *l.model;
  if (!a.text.empty() && !m.tokenizer()) return no_tokenizer(a.model);
  auto id = runtime::identify_model(m, a.model);
  if (!id.ok()) return fail(1, id.error().message);
  auto ix = runtime::ImageIndex::load(a.db, *id);
  if (!ix.ok()) return fail(2, ix.error().message);
  auto q = a.text.empty() ? runtime::embed_images(m, {*img}) : runtime::embed_texts(m, {a.text});
  if (!q.ok()) return fail(2, q.error().message);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<runtime::SearchHit> hits = ix->search(*q, a.top);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& h : hits) std::printf("%.6f\t%s\n", double(h.score), h.path.c_str());
  std::fprintf(stderr, "%lld images searched in %.2f ms (%s scan); scores are cosine similarities\n",
               static_cast<long long>(ix->size()), ms, runtime::scan_kernel_name(runtime::best_scan_kernel()));
  return 0;
}

}  // namespace

void add_clip_commands(CLI::App& app) {
  {
    auto a = std::make_shared<EmbedArgs>();
    auto* c = app.add_subcommand("embed", "Print L2-normalised CLIP/SigLIP embeddings of images or texts as JSON");
    c->add_option("--model,-m", a->model, "CLIP or SigLIP checkpoint folder")->required();
    c->add_option("--image,-i", a->images, "Images to embed (PNG, JPEG, WebP)");
    c->add_option("--text,-t", a->texts, "Texts to embed (needs the checkpoint's tokenizer)");
    c->callback([a] { set_exit_code(do_embed(*a)); });
  }
  {
    auto a = std::make_shared<ClassifyArgs>();
    auto* c = app.add_subcommand("classify", "Zero-shot classification of an image against text labels");
    c->add_option("--model,-m", a->model, "CLIP or SigLIP checkpoint folder")->required();
    c->add_option("--image,-i", a->image, "The image (PNG, JPEG, WebP)")->required();
    c->add_option("--labels,-l", a->labels, "Comma-separated labels, e.g. \"a cat,a dog\"")->required()->delimiter(',');
    c->add_option("--template", a->tmpl, "Prompt around each label; {} is the label")->capture_default_str();
    c->add_flag("--json", a->json, "Print JSON (label, prob, logit) instead of lines");
    c->callback([a] { set_exit_code(do_classify(*a)); });
  }
  {
    auto a = std::make_shared<IndexArgs>();
    auto* c = app.add_subcommand("index", "Embed every image in a folder (recursively) into an SQLite index; resumable");
    c->add_option("--model,-m", a->model, "CLIP or SigLIP checkpoint folder")->required();
    c->add_option("--images", a->folder, "Folder of images (found by content, not extension; hidden files skipped)")
        ->required();
    c->add_option("--db", a->db, "Index file (created if absent)")->required();
    c->add_option("--batch", a->batch, "Images per committed transaction")->check(CLI::Range(1, 4096))->capture_default_str();
    c->add_flag("--quiet,-q", a->quiet, "No progress bar");
    c->callback([a] { set_exit_code(do_index(*a)); });
  }
  {
    auto a = std::make_shared<SearchArgs>();
    auto* c = app.add_subcommand("search", "Search an index built by `vlm index` with a text or an image");
    c->add_option("--model,-m", a->model, "The checkpoint the index was built with")->required();
    c->add_option("--db", a->db, "Index file")->required();
    c->add_option("--text,-t", a->text, "Text query (needs the checkpoint's tokenizer)");
    c->add_option("--image,-i", a->image, "Image query (image-to-image)");
    c->add_option("--top,-k", a->top, "How many matches to print")->check(CLI::Range(int64_t(1), int64_t(1) << 30))
        ->capture_default_str();
    c->callback([a] { set_exit_code(do_search(*a)); });
  }
}

}  // namespace vlm::cli
