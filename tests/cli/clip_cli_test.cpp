// `vlm embed / classify / index / search` end to end: the built binary on the
// CLIP and SigLIP fixtures.
#include <gtest/gtest.h>

#include "vlm_cli.h"
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/safetensors.h"

namespace {

namespace fs = std::filesystem;
const std::string kClip = VLM_TESTDATA "/fixtures/clip/model";
const std::string kSiglip = VLM_TESTDATA "/fixtures/siglip/model";
const std::string kCase = VLM_TESTDATA "/fixtures/clip/cases/retrieval";
const std::vector<std::string> kImages = {"a_84x56.png", "b_100x60.png", "c_320x240.png", "d_33x47.png"};
const std::vector<std::string> kTexts = {"a photo of a cat", "A diagram.", "a red square and a green circle on a gradient",
                                         "Two dogs playing in the snow!!"};

using vlm::testing::CliRun;
using vlm::testing::quote;
using vlm::testing::slurp;
using vlm::testing::temp_path;
using vlm::testing::vlm;

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

std::vector<float> recorded(const std::string& name) {
  auto f = vlm::SafetensorsFile::open(kCase + "/expected.safetensors");
  EXPECT_TRUE(f.ok());
  return vlm::to_f32(*(*f)->find(name));
}

std::vector<int64_t> ranking(const float* v, int64_t n) {
  std::vector<int64_t> r(static_cast<size_t>(n));
  std::iota(r.begin(), r.end(), 0);
  std::stable_sort(r.begin(), r.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  return r;
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) : path(temp_path(name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

TEST(ClipCli, EmbedImagesAndTextsMatchTheRecordedEmbeddings) {
  CliRun r = vlm({"embed", "--model", kClip, "--image", kCase + "/" + kImages[0], kCase + "/" + kImages[2]});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["family"], "clip");
  ASSERT_EQ(j["dim"], 16);
  ASSERT_EQ(j["embeddings"].size(), 2u);
  const std::vector<float> img = recorded("out.image_embeds");
  for (int k = 0; k < 2; ++k) {
    const auto& e = j["embeddings"][size_t(k)]["embedding"];
    const int row = k == 0 ? 0 : 2;
    for (int i = 0; i < 16; ++i) EXPECT_NEAR(e[size_t(i)].get<float>(), img[size_t(row * 16 + i)], 1e-4);
  }
  EXPECT_EQ(j["embeddings"][0]["image"], kCase + "/" + kImages[0]);

  r = vlm({"embed", "--model", kClip, "--text", kTexts[0], "--text", kTexts[3]});
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  const std::vector<float> txt = recorded("out.text_embeds");
  ASSERT_EQ(j["embeddings"].size(), 2u);
  EXPECT_EQ(j["embeddings"][1]["text"], kTexts[3]);
  for (int k = 0; k < 2; ++k) {
    const auto& e = j["embeddings"][size_t(k)]["embedding"];
    const int row = k == 0 ? 0 : 3;
    double norm = 0;
    for (int i = 0; i < 16; ++i) {
      EXPECT_NEAR(e[size_t(i)].get<float>(), txt[size_t(row * 16 + i)], 1e-4);
      norm += e[size_t(i)].get<double>() * e[size_t(i)].get<double>();
    }
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
  // SigLIP images embed fine without a tokenizer.
  r = vlm({"embed", "--model", kSiglip, "--image", kCase + "/" + kImages[1]});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["dim"], 32);
}

TEST(ClipCli, EmbedErrors) {
  CliRun r = vlm({"embed", "--model", kSiglip, "--text", "a cat"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no tokenizer"), std::string::npos) << r.err;
  r = vlm({"embed", "--model", kClip});
  EXPECT_EQ(r.code, 2);
  r = vlm({"embed", "--model", kClip, "--image", kCase + "/" + kImages[0], "--text", "x"});
  EXPECT_EQ(r.code, 2);
  r = vlm({"embed", "--model", kClip, "--image", kCase + "/missing.png"});
  EXPECT_EQ(r.code, 2);
  r = vlm({"embed", "--model", VLM_TESTDATA "/fixtures/qwen2_vl/model", "--image", kCase + "/" + kImages[0]});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not a CLIP or SigLIP"), std::string::npos) << r.err;
  r = vlm({"embed", "--model", "/no/such/model", "--image", kCase + "/" + kImages[0]});
  EXPECT_EQ(r.code, 2);
}

TEST(ClipCli, ClassifyRanksAsTheRecordedLogits) {
  const std::vector<float> lpi = recorded("out.logits_per_image");  // [4, 6]
  std::string labels;
  for (const auto& t : kTexts) labels += (labels.empty() ? "" : ",") + t;
  for (size_t i = 0; i < kImages.size(); ++i) {
    CliRun r = vlm({"classify", "--model", kClip, "--image", kCase + "/" + kImages[i], "--labels", labels,
                    "--template", "{}", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), kTexts.size());
    // The first four texts only: a softmax over them, ranked by their recorded logits.
    const float* row = lpi.data() + i * 6;
    const std::vector<int64_t> want = ranking(row, 4);
    double mx = row[want[0]], sum = 0;
    for (int t = 0; t < 4; ++t) sum += std::exp(row[t] - mx);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(j[k]["label"], kTexts[size_t(want[k])]) << kImages[i] << " rank " << k;
      EXPECT_NEAR(j[k]["prob"].get<double>(), std::exp(row[want[k]] - mx) / sum, 1e-4);
    }
  }
  // Plain output: "prob<TAB>label", and the default template.
  CliRun r = vlm({"classify", "--model", kClip, "--image", kCase + "/" + kImages[2], "--labels", "cat, dog ,diagram"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 3u);
  double total = 0;
  for (const auto& l : ls) {
    const size_t tab = l.find('\t');
    ASSERT_NE(tab, std::string::npos) << l;
    total += std::stod(l.substr(0, tab));
    const std::string label = l.substr(tab + 1);
    EXPECT_TRUE(label == "cat" || label == "dog" || label == "diagram") << label;
  }
  EXPECT_NEAR(total, 1.0, 1e-4);
}

TEST(ClipCli, ClassifyErrors) {
  const std::string img = kCase + "/" + kImages[0];
  CliRun r = vlm({"classify", "--model", kSiglip, "--image", img, "--labels", "a,b"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no tokenizer"), std::string::npos) << r.err;
  r = vlm({"classify", "--model", kClip, "--image", img, "--labels", " , "});
  EXPECT_EQ(r.code, 2);
  r = vlm({"classify", "--model", kClip, "--image", img, "--labels", "a,b", "--template", "no slot"});
  EXPECT_EQ(r.code, 2);
  r = vlm({"classify", "--model", kClip, "--image", kCase + "/case.json", "--labels", "a,b"});
  EXPECT_EQ(r.code, 2);
}

TEST(ClipCli, IndexAndSearch) {
  TempDir d("index");
  fs::create_directories(d.path / "imgs" / "nested");
  for (size_t i = 0; i < kImages.size(); ++i)
    fs::copy_file(kCase + "/" + kImages[i], d.path / "imgs" / (i % 2 ? "nested" : "") / kImages[i]);
  {
    std::ifstream in(kCase + "/" + kImages[1], std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(d / "imgs/broken.png", std::ios::binary) << bytes.substr(0, 200);
    std::ofstream(d / "imgs/nested/readme.txt") << "hello\n";
  }
  const std::string db = d / "clip.db";
  CliRun r = vlm({"index", "--model", kClip, "--images", d / "imgs", "--db", db});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("indexed 4, unchanged 0, failed 2, removed 0;", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("failed\t" + (d / "imgs/broken.png") + "\t"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failed\t" + (d / "imgs/nested/readme.txt") + "\tnot an image"), std::string::npos) << r.out;

  r = vlm({"index", "--model", kClip, "--images", d / "imgs", "--db", db, "--quiet"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("indexed 0, unchanged 4, failed 2", 0), 0u) << r.out;

  const std::vector<float> lpt = recorded("out.logits_per_text");  // [6, 4]
  for (size_t t = 0; t < kTexts.size(); ++t) {
    r = vlm({"search", "--model", kClip, "--db", db, "--text", kTexts[t]});
    ASSERT_EQ(r.code, 0) << r.err;
    auto ls = lines(r.out);
    ASSERT_EQ(ls.size(), 4u) << r.out;
    const std::vector<int64_t> want = ranking(lpt.data() + t * 4, 4);
    for (size_t k = 0; k < 4; ++k) {
      const std::string path = ls[k].substr(ls[k].find('\t') + 1);
      EXPECT_EQ(fs::path(path).filename().string(), kImages[size_t(want[k])]) << kTexts[t] << " rank " << k;
      EXPECT_TRUE(fs::exists(path)) << path;
    }
  }
  r = vlm({"search", "--model", kClip, "--db", db, "--image", kCase + "/" + kImages[3], "--top", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 2u);
  EXPECT_EQ(fs::path(ls[0].substr(ls[0].find('\t') + 1)).filename().string(), kImages[3]);
  EXPECT_NEAR(std::stod(ls[0].substr(0, ls[0].find('\t'))), 1.0, 1e-4);

  // The same db with the other model: refused, for search and for indexing.
  r = vlm({"search", "--model", kSiglip, "--db", db, "--image", kCase + "/" + kImages[0]});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("another model"), std::string::npos) << r.err;
  r = vlm({"index", "--model", kSiglip, "--images", d / "imgs", "--db", db});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("another model"), std::string::npos) << r.err;

  // SigLIP builds its own index and searches it by image; text needs a tokenizer it lacks.
  const std::string sdb = d / "siglip.db";
  r = vlm({"index", "--model", kSiglip, "--images", d / "imgs", "--db", sdb});
  ASSERT_EQ(r.code, 0) << r.err;
  r = vlm({"search", "--model", kSiglip, "--db", sdb, "--image", kCase + "/" + kImages[2], "--top", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(kImages[2]), std::string::npos) << r.out;
  r = vlm({"search", "--model", kSiglip, "--db", sdb, "--text", "a cat"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no tokenizer"), std::string::npos) << r.err;
}

TEST(ClipCli, IndexAndSearchErrors) {
  TempDir d("errors");
  CliRun r = vlm({"index", "--model", kClip, "--images", d / "no_such_folder", "--db", d / "x.db"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no such folder"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "x.db"));
  r = vlm({"search", "--model", kClip, "--db", d / "missing.db", "--text", "cat"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no index"), std::string::npos) << r.err;
  r = vlm({"search", "--model", kClip, "--db", d / "missing.db"});
  EXPECT_EQ(r.code, 2);
  std::ofstream(d / "notes.db") << "plain text\n";
  r = vlm({"index", "--model", kClip, "--images", d.path.string(), "--db", d / "notes.db"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not a vlm image index"), std::string::npos) << r.err;
  r = vlm({"search", "--model", kClip, "--db", d / "notes.db", "--text", "cat"});
  EXPECT_EQ(r.code, 2);
}

}  // namespace
