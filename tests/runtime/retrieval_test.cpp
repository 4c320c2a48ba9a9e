// Classification, the image index and search on the CLIP/SigLIP fixtures:
// rankings must be the ones transformers' recorded logits imply.
#include "runtime/retrieval.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>

#include "core/safetensors.h"

namespace vlm::runtime {
namespace {

namespace fs = std::filesystem;
const std::string kRoot = std::string(VLM_TESTDATA) + "/fixtures/";
const std::vector<std::string> kImages = {"a_84x56.png", "b_100x60.png", "c_320x240.png", "d_33x47.png"};

// One family's model, fixture images and recorded logits, with the texts embedded our way.
struct Case {
  std::string family, model_dir, case_dir;
  std::unique_ptr<models::DualEncoder> m;
  std::vector<Image> images;
  std::vector<std::string> texts;  // CLIP: case.json's texts; SigLIP (no tokenizer): names of the recorded ids
  std::vector<float> text_emb;     // normalised [n_txt, dim]
  int64_t n_img = 0, n_txt = 0;
  std::vector<float> per_image, per_text;  // [n_img, n_txt], [n_txt, n_img]
  std::vector<float> recorded_text_embeds;
};

const Case& fixture(const std::string& family) {
  static std::map<std::string, std::unique_ptr<Case>> cache;
  auto& slot = cache[family];
  if (slot) return *slot;
  auto c = std::make_unique<Case>();
  c->family = family;
  c->model_dir = kRoot + family + "/model";
  c->case_dir = kRoot + family + "/cases/retrieval";
  auto m = models::DualEncoder::load(c->model_dir);
  EXPECT_TRUE(m.ok()) << m.error().message;
  if (!m.ok()) std::abort();
  c->m = std::move(m.value());
  for (const auto& f : kImages) {
    auto img = load_image(c->case_dir + "/" + f);
    EXPECT_TRUE(img.ok()) << img.error().message;
    c->images.push_back(std::move(img.value()));
  }
  auto exp = SafetensorsFile::open(c->case_dir + "/expected.safetensors");
  EXPECT_TRUE(exp.ok());
  const TensorView* lpi = (*exp)->find("out.logits_per_image");
  const TensorView* lpt = (*exp)->find("out.logits_per_text");
  const TensorView* ids = (*exp)->find("inputs.input_ids");
  c->n_img = lpi->dim(0);
  c->n_txt = lpi->dim(1);
  c->per_image = to_f32(*lpi);
  c->per_text = to_f32(*lpt);
  c->recorded_text_embeds = to_f32(*(*exp)->find("out.text_embeds"));
  if (c->m->tokenizer()) {
    std::ifstream in(c->case_dir + "/case.json");
    auto j = nlohmann::json::parse(in);
    for (const auto& t : j["texts"]) c->texts.push_back(t.get<std::string>());
    auto e = embed_texts(*c->m, c->texts);
    EXPECT_TRUE(e.ok()) << e.error().message;
    c->text_emb = std::move(e.value());
  } else {
    // The recorded ids are the input, unmasked, as the SigLIP fixture was run.
    std::vector<int64_t> v = to_i64(*ids);
    const int64_t n = ids->dim(0), S = ids->dim(1);
    c->text_emb = c->m->embed_texts(std::vector<int32_t>(v.begin(), v.end()), n, S, std::vector<int64_t>(size_t(n), S));
    models::l2_normalize(c->text_emb.data(), n, c->m->embed_dim());
    for (int64_t i = 0; i < n; ++i) c->texts.push_back("text " + std::to_string(i));
  }
  slot = std::move(c);
  return *slot;
}

// Indices of v sorted by value, highest first.
std::vector<int64_t> ranking(const float* v, int64_t n) {
  std::vector<int64_t> r(static_cast<size_t>(n));
  std::iota(r.begin(), r.end(), 0);
  std::stable_sort(r.begin(), r.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  return r;
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("vlm_retrieval_" + std::to_string(getpid()) + "_" + name);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

// The four fixture images: a and b at the top, c and d in a subfolder (the walk recurses).
void copy_fixture_images(const Case& c, const TempDir& d) {
  fs::create_directories(d.path / "sub");
  for (size_t i = 0; i < kImages.size(); ++i)
    fs::copy_file(c.case_dir + "/" + kImages[i], d.path / (i < 2 ? "" : "sub") / kImages[i]);
}

ModelId id_of(const Case& c) {
  auto id = identify_model(*c.m, c.model_dir);
  EXPECT_TRUE(id.ok()) << id.error().message;
  return id.value();
}

std::string file_name(const std::string& p) { return fs::path(p).filename().string(); }

TEST(Retrieval, OurTextEmbeddingsMatchTheRecordedOnes) {
  // embed_texts runs each text unpadded at its own length; CLIP's causal mask makes that equal to
  // transformers' padded batch.
  const Case& c = fixture("clip");
  ASSERT_EQ(c.text_emb.size(), c.recorded_text_embeds.size());
  for (size_t i = 0; i < c.text_emb.size(); ++i) EXPECT_NEAR(c.text_emb[i], c.recorded_text_embeds[i], 1e-4) << i;
}

TEST(Retrieval, TemplateAndProbabilities) {
  EXPECT_EQ(*apply_template("a photo of a {}", "cat"), "a photo of a cat");
  EXPECT_EQ(*apply_template("{} or {}?", "x"), "x or x?");
  EXPECT_FALSE(apply_template("no slot", "x").ok());
  auto p = label_probabilities({1.0f, 2.0f, 3.0f}, false);
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0, 1e-6);
  EXPECT_NEAR(p[2] / p[1], std::exp(1.0), 1e-5);
  auto s = label_probabilities({0.0f, 2.0f}, true);
  EXPECT_FLOAT_EQ(s[0], 0.5f);
  EXPECT_NEAR(s[1], 1.0 / (1.0 + std::exp(-2.0)), 1e-7);
  // Softmax stays finite for CLIP-sized logits (scale 100).
  auto big = label_probabilities({3000.0f, 2990.0f}, false);
  EXPECT_TRUE(std::isfinite(big[0]) && std::isfinite(big[1]));
}

TEST(Retrieval, ClassifyRanksLabelsAsTheRecordedLogits) {
  for (const char* fam : {"clip", "siglip"}) {
    const Case& c = fixture(fam);
    for (int64_t i = 0; i < c.n_img; ++i) {
      const float* row = c.per_image.data() + i * c.n_txt;
      std::vector<LabelScore> got;
      if (c.m->tokenizer()) {
        // "{}": the label is the whole text, so the texts are exactly the recorded ones.
        auto r = classify(*c.m, c.images[size_t(i)], c.texts, "{}");
        ASSERT_TRUE(r.ok()) << r.error().message;
        got = std::move(r.value());
      } else {
        auto img = embed_images(*c.m, {c.images[size_t(i)]});
        ASSERT_TRUE(img.ok());
        got = classify_embedded(*c.m, *img, c.text_emb, c.texts);
      }
      const std::vector<float> want_p = label_probabilities(std::vector<float>(row, row + c.n_txt), c.m->sigmoid());
      const std::vector<int64_t> want = ranking(row, c.n_txt);
      ASSERT_EQ(int64_t(got.size()), c.n_txt);
      for (int64_t k = 0; k < c.n_txt; ++k) {
        const int64_t t = std::find(c.texts.begin(), c.texts.end(), got[size_t(k)].label) - c.texts.begin();
        EXPECT_EQ(t, want[size_t(k)]) << fam << " image " << kImages[size_t(i)] << " rank " << k;
        EXPECT_NEAR(got[size_t(k)].prob, want_p[size_t(t)], 1e-4) << fam << " image " << i << " text " << t;
        EXPECT_NEAR(got[size_t(k)].logit, row[t], 1e-4) << fam << " image " << i << " text " << t;
      }
    }
  }
}

TEST(Retrieval, SearchRanksImagesAsTheRecordedLogitsPerText) {
  for (const char* fam : {"clip", "siglip"}) {
    const Case& c = fixture(fam);
    TempDir d(std::string("search_") + fam);
    copy_fixture_images(c, d);
    const ModelId id = id_of(c);
    auto rep = index_folder(*c.m, id, d.path.string(), d / "index.db");
    ASSERT_TRUE(rep.ok()) << rep.error().message;
    EXPECT_EQ(rep->indexed, 4);
    EXPECT_TRUE(rep->failed.empty()) << rep->failed[0].path << ": " << rep->failed[0].reason;
    auto ix = ImageIndex::load(d / "index.db", id);
    ASSERT_TRUE(ix.ok()) << ix.error().message;
    ASSERT_EQ(ix->size(), 4);
    const int64_t dim = c.m->embed_dim();
    for (int64_t t = 0; t < c.n_txt; ++t) {
      std::vector<float> q(c.text_emb.begin() + t * dim, c.text_emb.begin() + (t + 1) * dim);
      auto hits = ix->search(q, 10);
      ASSERT_EQ(hits.size(), 4u);
      const std::vector<int64_t> want = ranking(c.per_text.data() + t * c.n_img, c.n_img);
      for (size_t k = 0; k < 4; ++k)
        EXPECT_EQ(file_name(hits[k].path), kImages[size_t(want[k])]) << fam << " text " << t << " rank " << k;
      // Cosine ranks as the logits do because the scale is positive; check the score is the cosine.
      const float cos0 = (c.per_text[size_t(t * c.n_img + want[0])] - c.m->logit_bias()) / std::exp(c.m->logit_scale());
      EXPECT_NEAR(hits[0].score, cos0, 1e-4) << fam << " text " << t;
    }
    // top-k smaller than the index keeps the best.
    std::vector<float> q0(c.text_emb.begin(), c.text_emb.begin() + dim);
    auto two = ix->search(q0, 2);
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(file_name(two[0].path), kImages[size_t(ranking(c.per_text.data(), c.n_img)[0])]);
  }
}

TEST(Retrieval, ImageQueryFindsItselfFirst) {
  for (const char* fam : {"clip", "siglip"}) {
    const Case& c = fixture(fam);
    TempDir d(std::string("i2i_") + fam);
    copy_fixture_images(c, d);
    const ModelId id = id_of(c);
    ASSERT_TRUE(index_folder(*c.m, id, d.path.string(), d / "index.db").ok());
    auto ix = ImageIndex::load(d / "index.db", id);
    ASSERT_TRUE(ix.ok());
    for (size_t i = 0; i < kImages.size(); ++i) {
      auto q = embed_images(*c.m, {c.images[i]});
      ASSERT_TRUE(q.ok());
      auto hits = ix->search(*q, 4);
      ASSERT_EQ(hits.size(), 4u);
      EXPECT_EQ(file_name(hits[0].path), kImages[i]) << fam;
      EXPECT_NEAR(hits[0].score, 1.0f, 1e-5) << fam;
    }
  }
}

size_t count_failed_with(const IndexReport& r, const std::string& file, const std::string& reason_part) {
  return size_t(std::count_if(r.failed.begin(), r.failed.end(), [&](const IndexFailure& f) {
    return file_name(f.path) == file && f.reason.find(reason_part) != std::string::npos;
  }));
}

TEST(Retrieval, IndexReportsBadFilesSkipsUnchangedAndReembedsChanged) {
  const Case& c = fixture("clip");
  TempDir d("failures");
  copy_fixture_images(c, d);
  {
    // A truncated PNG: the signature is right, the data is not.
    std::ifstream in(c.case_dir + "/c_320x240.png", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(d / "sub/corrupt.png", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    std::ofstream(d / "notes.txt") << "not an image\n";
    std::ofstream(d / ".hidden.png") << "skipped: hidden";
    // An image under a misleading name is still an image.
    fs::copy_file(c.case_dir + "/d_33x47.png", d.path / "sub" / "d_copy.dat");
  }
  const ModelId id = id_of(c);
  const std::string db = d / "index.db";  // inside the folder: must not index itself
  std::vector<int64_t> calls;
  auto r1 = index_folder(*c.m, id, d.path.string(), db, {}, [&](int64_t done, int64_t total, const std::string&) {
    calls.push_back(done);
    EXPECT_EQ(total, 7);
  });
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  EXPECT_EQ(r1->indexed, 5);
  EXPECT_EQ(r1->skipped, 0);
  ASSERT_EQ(r1->failed.size(), 2u);
  EXPECT_EQ(count_failed_with(*r1, "notes.txt", "not an image"), 1u);
  EXPECT_EQ(count_failed_with(*r1, "corrupt.png", ""), 1u);
  for (const auto& f : r1->failed) EXPECT_FALSE(f.reason.empty()) << f.path;
  EXPECT_EQ(r1->total, 5);
  EXPECT_EQ(calls.size(), 7u);
  EXPECT_EQ(calls.back(), 7);

  auto r2 = index_folder(*c.m, id, d.path.string(), db);
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_EQ(r2->indexed, 0);
  EXPECT_EQ(r2->skipped, 5);
  EXPECT_EQ(r2->failed.size(), 2u);  // still reported: the user may have fixed them meanwhile

  // A touched file is embedded again; a deleted one leaves the index.
  const fs::path a = d.path / kImages[0];
  fs::last_write_time(a, fs::last_write_time(a) + std::chrono::seconds(5));
  fs::remove(d.path / "sub" / "d_copy.dat");
  auto r3 = index_folder(*c.m, id, d.path.string(), db);
  ASSERT_TRUE(r3.ok()) << r3.error().message;
  EXPECT_EQ(r3->indexed, 1);
  EXPECT_EQ(r3->skipped, 3);
  EXPECT_EQ(r3->removed, 1);
  EXPECT_EQ(r3->total, 4);
}

TEST(Retrieval, InterruptedIndexKeepsCommittedBatchesAndResumes) {
  const Case& c = fixture("siglip");
  TempDir d("resume");
  copy_fixture_images(c, d);
  const ModelId id = id_of(c);
  std::atomic<bool> cancel{false};
  IndexOptions opt;
  opt.batch = 1;
  opt.cancel = &cancel;
  auto r1 = index_folder(*c.m, id, d.path.string(), d / "i.db", opt,
                         [&](int64_t, int64_t, const std::string&) { cancel = true; });
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  EXPECT_TRUE(r1->interrupted);
  EXPECT_EQ(r1->indexed, 1);
  EXPECT_EQ(r1->total, 1);
  auto r2 = index_folder(*c.m, id, d.path.string(), d / "i.db");
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_FALSE(r2->interrupted);
  EXPECT_EQ(r2->skipped, 1);
  EXPECT_EQ(r2->indexed, 3);
  EXPECT_EQ(r2->total, 4);
}

TEST(Retrieval, IndexOfAnotherModelIsRefused) {
  const Case& clip = fixture("clip");
  const Case& sig = fixture("siglip");
  TempDir d("refuse");
  copy_fixture_images(clip, d);
  const std::string db = d / "clip.db";
  ASSERT_TRUE(index_folder(*clip.m, id_of(clip), d.path.string(), db).ok());
  const ModelId sid = id_of(sig);
  Status s = check_index_model(db, sid);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("another model"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("siglip"), std::string::npos) << s.error().message;
  auto w = index_folder(*sig.m, sid, d.path.string(), db);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("another model"), std::string::npos) << w.error().message;
  auto l = ImageIndex::load(db, sid);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("another model"), std::string::npos) << l.error().message;

  // Same family and size, other weights: still another model.
  ModelId forged = id_of(clip);
  forged.fingerprint = "0000000000000000";
  auto f = ImageIndex::load(db, forged);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("different weights"), std::string::npos) << f.error().message;

  // A file that is not an index at all.
  std::ofstream(d / "junk.db") << "hello, not sqlite\n";
  EXPECT_FALSE(check_index_model(d / "junk.db", sid).ok());
  EXPECT_FALSE(index_folder(*sig.m, sid, d.path.string(), d / "junk.db").ok());
  auto missing = ImageIndex::load(d / "missing.db", sid);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no index"), std::string::npos);
  EXPECT_FALSE(index_folder(*sig.m, sid, d / "no_such_folder", d / "x.db").ok());
}

TEST(Retrieval, ACopiedCheckpointIsTheSameModel) {
  const Case& c = fixture("siglip");
  TempDir d("copy");
  for (const auto& e : fs::directory_iterator(c.model_dir)) fs::copy_file(e.path(), d.path / e.path().filename());
  auto m2 = models::DualEncoder::load(d.path.string());
  ASSERT_TRUE(m2.ok()) << m2.error().message;
  auto id2 = identify_model(**m2, d.path.string());
  ASSERT_TRUE(id2.ok());
  const ModelId id1 = id_of(c);
  EXPECT_EQ(id1.fingerprint, id2->fingerprint);
  EXPECT_NE(id1.path, id2->path);
  EXPECT_NE(id1.fingerprint, id_of(fixture("clip")).fingerprint);
}

// ---- scan kernels -----------------------------------------------------------

TEST(RetrievalScan, VectorKernelsMatchTheScalarReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (int64_t dim : {1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 512, 768}) {
    for (int64_t n : {0, 1, 3, 4, 5, 17, 1001}) {
      std::vector<float> rows(static_cast<size_t>(n * dim)), q(static_cast<size_t>(dim));
      for (auto& v : rows) v = nd(rng);
      for (auto& v : q) v = nd(rng);
      std::vector<float> ref(static_cast<size_t>(n));
      scan_dot_scalar(rows.data(), n, dim, q.data(), ref.data());
      for (ScanKernel k : {ScanKernel::kAvx2, ScanKernel::kAvx512, ScanKernel::kAuto, ScanKernel::kScalar}) {
        std::vector<float> got(size_t(n), -12345.0f);
        scan_dot(rows.data(), n, dim, q.data(), got.data(), k);
        for (int64_t i = 0; i < n; ++i) {
          double mag = 0;
          for (int64_t j = 0; j < dim; ++j) mag += std::fabs(double(rows[size_t(i * dim + j)]) * q[size_t(j)]);
          ASSERT_NEAR(got[size_t(i)], ref[size_t(i)], 1e-6 * mag + 1e-6)
              << scan_kernel_name(k) << " dim " << dim << " n " << n << " row " << i;
        }
      }
    }
  }
}

TEST(RetrievalScan, ThreadedScanCoversEveryRow) {
  // Large enough for scan_dot's kAuto to split the rows across threads.
  const int64_t n = 40000, dim = 64;
  std::vector<float> rows(static_cast<size_t>(n * dim)), q(size_t(dim), 0.0f);
  for (int64_t i = 0; i < n; ++i) rows[size_t(i * dim + i % dim)] = float(i);
  for (int64_t j = 0; j < dim; ++j) q[size_t(j)] = 1.0f;
  std::vector<float> got(size_t(n), -1.0f);
  scan_dot(rows.data(), n, dim, q.data(), got.data());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], float(i)) << i;
}

TEST(RetrievalScan, TopKIsAPartialSort) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> ud(0, 20);  // many ties
  std::vector<float> s(500);
  for (auto& v : s) v = float(ud(rng));
  std::vector<int64_t> all(s.size());
  std::iota(all.begin(), all.end(), 0);
  std::stable_sort(all.begin(), all.end(), [&](int64_t a, int64_t b) { return s[size_t(a)] > s[size_t(b)]; });
  for (int64_t k : {0, 1, 5, 37, 500, 900}) {
    auto top = top_k(s.data(), int64_t(s.size()), k);
    ASSERT_EQ(int64_t(top.size()), std::min<int64_t>(k, 500));
    for (size_t i = 0; i < top.size(); ++i) {
      EXPECT_EQ(top[i].row, all[i]) << "k " << k << " rank " << i;
      EXPECT_EQ(top[i].score, s[size_t(all[i])]);
    }
  }
  EXPECT_TRUE(top_k(s.data(), 0, 3).empty());
}

}  // namespace
}  // namespace vlm::runtime
