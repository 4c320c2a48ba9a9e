// Qwen preprocessing against the recorded HF fixtures and the spec's tables.
//
// Tolerance: zero. Both resamplers reproduce their references bit for bit
// (PIL's 22-bit taps; ATen's int16 taps with per-pass precision), and the two
// normalisation formulas reproduce HF's float32 arithmetic, so every fixture
// tensor must match exactly. A failure prints the max |diff| and the number of
// differing values to help tell a ±1 uint8 resampling slip (diff ≈ 0.0146 for
// the CLIP std) from a layout bug.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "vision/image.h"
#include "vision/qwen_preprocess.h"

namespace fs = std::filesystem;
using namespace vlm;

namespace {

struct CaseDir {
  std::string family_dir;  // .../fixtures/<family>
  std::string case_dir;
  std::string name;
};

// Every Qwen case folder under the fixture roots. The project ships
// testdata/fixtures; VLM_EXTRA_FIXTURES may name another root with more
// families (qwen2_5_vl, qwen3_vl) laid out the same way.
std::vector<CaseDir> list_cases() {
  std::vector<std::string> roots = {std::string(VLM_TESTDATA) + "/fixtures"};
  if (const char* extra = std::getenv("VLM_EXTRA_FIXTURES")) roots.push_back(extra);
  std::vector<CaseDir> out;
  for (const auto& root : roots) {
    for (const char* fam : {"qwen2_vl", "qwen2_5_vl", "qwen3_vl"}) {
      const fs::path cases = fs::path(root) / fam / "cases";
      if (!fs::is_directory(cases)) continue;
      std::vector<fs::path> dirs;
      for (const auto& e : fs::directory_iterator(cases))
        if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
      std::sort(dirs.begin(), dirs.end());
      for (const auto& d : dirs) {
        std::string name = std::string(fam) + "_" + d.filename().string();
        if (root != roots[0]) name = "extra_" + name;
        out.push_back({(fs::path(root) / fam).string(), d.string(), name});
      }
    }
  }
  return out;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f, nullptr, false);
}

std::vector<Image> load_pngs(const std::string& dir, const nlohmann::json& names) {
  std::vector<Image> out;
  if (!names.is_array()) return out;
  for (const auto& n : names) {
    auto img = load_image(dir + "/" + n.get<std::string>());
    EXPECT_TRUE(img.ok()) << (img.ok() ? "" : img.error().message);
    if (img.ok()) out.push_back(std::move(*img));
  }
  return out;
}

void expect_same_floats(const std::vector<float>& got, int64_t rows, int64_t cols,
                        const TensorView* want, const std::string& what) {
  ASSERT_NE(want, nullptr) << what << " missing from expected.safetensors";
  ASSERT_EQ(want->ndim, 2) << what;
  ASSERT_EQ(rows, want->shape[0]) << what;
  ASSERT_EQ(cols, want->shape[1]) << what;
  const std::vector<float> ref = to_f32(*want);
  ASSERT_EQ(got.size(), ref.size()) << what;
  double max_diff = 0;
  size_t n_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(ref[i]));
    if (d > 0) ++n_diff;
    max_diff = std::max(max_diff, d);
  }
  EXPECT_EQ(n_diff, 0u) << what << ": max |diff| " << max_diff << ", " << n_diff << " of "
                        << ref.size() << " values differ";
}

void expect_same_grid(const VisionBatch& b, const TensorView* want, const std::string& what) {
  ASSERT_NE(want, nullptr) << what << " missing";
  const std::vector<int64_t> ref = to_i64(*want);
  std::vector<int64_t> got;
  for (const auto& g : b.grid_thw) got.insert(got.end(), g.begin(), g.end());
  EXPECT_EQ(got, ref) << what;
}

class QwenFixture : public ::testing::TestWithParam<CaseDir> {};

TEST_P(QwenFixture, MatchesRecordedProcessorOutputs) {
  const CaseDir& c = GetParam();
  const nlohmann::json cj = read_json(c.case_dir + "/case.json");
  ASSERT_FALSE(cj.is_discarded());
  auto st = SafetensorsFile::open(c.case_dir + "/expected.safetensors");
  ASSERT_TRUE(st.ok()) << st.error().message;
  const SafetensorsFile& ex = **st;

  const std::vector<Image> images = load_pngs(c.case_dir, cj.value("images", nlohmann::json()));
  if (!images.empty()) {
    auto cfg = load_qwen_image_config(c.family_dir + "/model");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;

    QwenPreprocessOptions tv;  // torchvision resampler + fused normalisation
    auto a = preprocess_qwen_images(images, *cfg, tv);
    ASSERT_TRUE(a.ok()) << a.error().message;
    expect_same_grid(*a, ex.find("inputs.image_grid_thw"), "inputs.image_grid_thw");
    expect_same_floats(a->pixel_values, a->rows, a->cols, ex.find("inputs.pixel_values"),
                       "inputs.pixel_values (torchvision)");

    QwenPreprocessOptions pil;
    pil.resampler = ResampleKernel::kPil;
    auto b = preprocess_qwen_images(images, *cfg, pil);
    ASSERT_TRUE(b.ok()) << b.error().message;
    if (const TensorView* g = ex.find("inputs_pil.image_grid_thw"))
      expect_same_grid(*b, g, "inputs_pil.image_grid_thw");
    expect_same_floats(b->pixel_values, b->rows, b->cols, ex.find("inputs_pil.pixel_values"),
                       "inputs_pil.pixel_values (PIL)");
  } else {
    EXPECT_EQ(ex.find("inputs.pixel_values"), nullptr);
  }

  const std::vector<Image> frames =
      load_pngs(c.case_dir, cj.value("video_frames", nlohmann::json()));
  if (!frames.empty()) {
    auto cfg = load_qwen_video_config(c.family_dir + "/model");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    auto v = preprocess_qwen_video(frames, *cfg);
    ASSERT_TRUE(v.ok()) << v.error().message;
    expect_same_grid(*v, ex.find("inputs.video_grid_thw"), "inputs.video_grid_thw");
    expect_same_floats(v->pixel_values, v->rows, v->cols, ex.find("inputs.pixel_values_videos"),
                       "inputs.pixel_values_videos");
  } else {
    EXPECT_EQ(ex.find("inputs.pixel_values_videos"), nullptr);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, QwenFixture, ::testing::ValuesIn(list_cases()),
                         [](const ::testing::TestParamInfo<CaseDir>& i) { return i.param.name; });

TEST(QwenFixture, FixturesArePresent) {
  // Guards against the parameterised suite silently running zero cases.
  size_t n_qwen2 = 0;
  for (const auto& c : list_cases()) n_qwen2 += c.name.rfind("qwen2_vl_", 0) == 0;
  EXPECT_GE(n_qwen2, 5u);
}

// ---------------------------------------------------------------- smart_resize

std::string fmt(const Expected<ImageSize>& s) {
  if (!s.ok()) return "error";
  return std::to_string(s->height) + "x" + std::to_string(s->width);
}

TEST(SmartResize, TestVectorsTableF28) {
  // TEST_VECTORS.md §1: (a) HF 4.5x hub bounds, (b) HF 4.5x class defaults,
  // (c) HF v5 hub bounds, (d) qwen-vl-utils 0.0.10.
  struct Row {
    int64_t h, w;
    const char *a, *b, *c, *d;
  };
  const Row rows[] = {
      {480, 640, "476x644", "476x644", "476x644", "476x644"},
      {1080, 1920, "1092x1932", "728x1316", "1092x1932", "1092x1932"},
      {1365, 2048, "1372x2044", "812x1204", "1372x2044", "1372x2044"},
      {224, 224, "224x224", "224x224", "224x224", "224x224"},
      {50, 60, "56x56", "56x56", "56x56", "56x56"},
      {4000, 3000, "4004x2996", "1148x840", "4004x2996", "4004x2996"},
      {100, 5000, "112x5012", "112x5012", "112x5012", "112x5012"},
      {14, 300, "error", "error", "28x280", "28x308"},
      {2160, 3840, "2156x3836", "728x1316", "2156x3836", "2156x3836"},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(std::to_string(r.h) + "x" + std::to_string(r.w));
    EXPECT_EQ(fmt(smart_resize(r.h, r.w, 28, 3136, 12845056, SmartResizeRule::kHf45)), r.a);
    EXPECT_EQ(fmt(smart_resize(r.h, r.w, 28, 3136, 1003520, SmartResizeRule::kHf45)), r.b);
    EXPECT_EQ(fmt(smart_resize(r.h, r.w, 28, 3136, 12845056, SmartResizeRule::kHfV5)), r.c);
    EXPECT_EQ(fmt(smart_resize(r.h, r.w, 28, 3136, 12845056, SmartResizeRule::kQwenVlUtils)),
              r.d);
  }
}

TEST(SmartResize, TestVectorsTableQwen3) {
  struct Row {
    int64_t h, w;
    const char *hf, *utils;
  };
  const Row rows[] = {
      {480, 640, "480x640", "480x640"},     {1080, 1920, "1088x1920", "1088x1920"},
      {1365, 2048, "1376x2048", "1376x2048"}, {50, 60, "256x288", "64x64"},
      {4000, 3000, "4000x3008", "4000x3008"}, {2160, 3840, "2176x3840", "2176x3840"},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(std::to_string(r.h) + "x" + std::to_string(r.w));
    EXPECT_EQ(fmt(smart_resize(r.h, r.w, 32, 65536, 16777216)), r.hf);
    EXPECT_EQ(fmt(smart_resize(r.h, r.w, 32, 4096, 16777216, SmartResizeRule::kQwenVlUtils)),
              r.utils);
  }
  // 1365x2048 -> grid (1, 86, 128) -> 2752 tokens.
  auto s = smart_resize(1365, 2048, 32, 65536, 16777216);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->height / 16 * (s->width / 16) / 4, 2752);
}

TEST(SmartResize, RoundsHalfToEven) {
  // 70/28 = 2.5 -> 2 (std::round would give 3); 42/28 = 1.5 -> 2.
  EXPECT_EQ(fmt(smart_resize(70, 280, 28, 0, 1 << 30)), "56x280");
  EXPECT_EQ(fmt(smart_resize(42, 280, 28, 0, 1 << 30)), "56x280");
}

TEST(SmartResize, RefusesExtremeAspectAndAbsurdSizes) {
  auto a = smart_resize(10, 2500, 28, 3136, 12845056);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("aspect ratio"), std::string::npos);
  EXPECT_FALSE(smart_resize(0, 10, 28, 3136, 12845056).ok());
  EXPECT_FALSE(smart_resize(-5, 10, 28, 3136, 12845056).ok());
  // A 100k x 100k request is bounded by max_pixels ...
  auto b = smart_resize(100000, 100000, 28, 3136, 12845056);
  ASSERT_TRUE(b.ok());
  EXPECT_LE(b->height * b->width, 12845056);
  // ... and an absurd max_pixels override is refused instead of allocating.
  auto c = smart_resize(100000, 100000, 28, 3136, int64_t(1) << 40);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("limit"), std::string::npos);
}

TEST(SmartResize, ClipRuleOfQwen3Video) {
  // fixture qwen3_vl/video: 8 frames of 56x84, bounds 4096..25165824 -> 64x96.
  auto s = smart_resize_clip(8, 56, 84, 2, 32, 4096, 25165824);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(fmt(s), "64x96");
  EXPECT_FALSE(smart_resize_clip(1, 56, 84, 2, 32, 4096, 25165824).ok());
  // Tiny clips are first scaled so the short side reaches the factor.
  auto t = smart_resize_clip(4, 10, 20, 2, 32, 4096, 25165824);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->height % 32, 0);
  EXPECT_EQ(t->width % 32, 0);
}

// ---------------------------------------------------------------- flatten order

TEST(QwenPatches, FlattenOrderOfTestVectors) {
  // TEST_VECTORS.md §2: a 56x56 image, P=14, m=2 -> grid (1,4,4). Encode each
  // pixel's patch (r,c) and in-patch position so every value is traceable.
  Image img;
  img.width = img.height = 56;
  img.rgb.resize(56 * 56 * 3);
  for (int y = 0; y < 56; ++y)
    for (int x = 0; x < 56; ++x) {
      uint8_t* p = img.row(y) + x * 3;
      p[0] = uint8_t((y / 14) * 4 + x / 14);  // patch index r*4+c
      p[1] = uint8_t(y % 14);
      p[2] = uint8_t(x % 14);
    }
  QwenImageConfig cfg;
  cfg.do_rescale = cfg.do_normalize = false;  // values pass through as floats
  VisionBatch b;
  ASSERT_TRUE(append_qwen_patches({&img}, cfg, NormalizeFormula::kRescaleThenNormalize, &b).ok());
  ASSERT_EQ(b.rows, 16);
  ASSERT_EQ(b.cols, 1176);
  EXPECT_EQ(b.grid_thw[0], (std::array<int64_t, 3>{1, 4, 4}));
  const int want_patch[16][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3},
                                 {2, 0}, {2, 1}, {3, 0}, {3, 1}, {2, 2}, {2, 3}, {3, 2}, {3, 3}};
  for (int row = 0; row < 16; ++row) {
    const float* r = &b.pixel_values[size_t(row) * 1176];
    EXPECT_EQ(r[0], float(want_patch[row][0] * 4 + want_patch[row][1])) << "row " << row;
    for (int col = 0; col < 1176; ++col) {
      const int c = col / 392, tt = (col / 196) % 2, py = (col / 14) % 14, px = col % 14;
      (void)tt;  // both temporal halves are the same frame
      const float want = c == 0 ? float(want_patch[row][0] * 4 + want_patch[row][1])
                         : c == 1 ? float(py)
                                  : float(px);
      ASSERT_EQ(r[col], want) << "row " << row << " col " << col;
    }
  }
}

TEST(QwenPatches, VideoPadsWithLastFrame) {
  QwenImageConfig cfg;
  cfg.do_rescale = cfg.do_normalize = false;
  cfg.do_resize = false;  // 28x28 is below the default min_pixels
  std::vector<Image> frames(3);
  for (int f = 0; f < 3; ++f) {
    frames[f].width = frames[f].height = 28;
    frames[f].rgb.assign(28 * 28 * 3, uint8_t(10 * (f + 1)));
  }
  QwenPreprocessOptions opt;
  auto b = preprocess_qwen_video(frames, cfg, opt);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->grid_thw[0], (std::array<int64_t, 3>{2, 2, 2}));
  ASSERT_EQ(b->rows, 8);
  // Group 1 = frames (2, 2 repeated): both temporal halves hold value 30.
  const float* r = &b->pixel_values[size_t(4) * 1176];
  EXPECT_EQ(r[0], 30.0f);
  EXPECT_EQ(r[196], 30.0f);
  const float* r0 = &b->pixel_values[0];
  EXPECT_EQ(r0[0], 10.0f);
  EXPECT_EQ(r0[196], 20.0f);
}

TEST(QwenPatches, NormalisationFormulas) {
  QwenImageConfig cfg;
  Image img;
  img.width = img.height = 28;
  img.rgb.assign(28 * 28 * 3, 200);
  VisionBatch fused, slow;
  ASSERT_TRUE(append_qwen_patches({&img}, cfg, NormalizeFormula::kFused, &fused).ok());
  ASSERT_TRUE(append_qwen_patches({&img}, cfg, NormalizeFormula::kRescaleThenNormalize, &slow).ok());
  const float m = 0.48145466f, s = 0.26862954f;
  EXPECT_EQ(fused.pixel_values[0], (200.0f - m * 255.0f) / (s * 255.0f));
  EXPECT_EQ(slow.pixel_values[0], (float(200.0 * (1.0 / 255.0)) - m) / s);
  EXPECT_NEAR(fused.pixel_values[0], slow.pixel_values[0], 1e-6);
}

// ---------------------------------------------------------------- config

TEST(QwenConfig, ParsesBothBoundNamings) {
  auto a = parse_qwen_image_config(R"({"min_pixels": 3136, "max_pixels": 12845056,
      "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2})");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->min_pixels, 3136);
  EXPECT_EQ(a->max_pixels, 12845056);
  EXPECT_EQ(a->factor(), 28);
  auto b = parse_qwen_image_config(R"({"size": {"longest_edge": 16777216, "shortest_edge": 65536},
      "patch_size": 16, "image_mean": [0.5,0.5,0.5], "image_std": [0.5,0.5,0.5],
      "processor_class": "Qwen3VLProcessor"})");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->min_pixels, 65536);
  EXPECT_EQ(b->max_pixels, 16777216);
  EXPECT_EQ(b->factor(), 32);
  EXPECT_EQ(b->image_mean[1], 0.5f);
  EXPECT_EQ(b->video_resize, VideoResizeMode::kClip3D);
  // Explicit keys win over "size".
  auto c = parse_qwen_image_config(
      R"({"size": {"longest_edge": 100, "shortest_edge": 10}, "min_pixels": 20, "max_pixels": 200})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->min_pixels, 20);
  EXPECT_EQ(c->max_pixels, 200);
  // Defaults: HF's class defaults for Qwen2-VL.
  auto d = parse_qwen_image_config("{}");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->min_pixels, 3136);
  EXPECT_EQ(d->max_pixels, 1003520);
  EXPECT_EQ(d->patch_size, 14);
  EXPECT_DOUBLE_EQ(d->rescale_factor, 1.0 / 255.0);
  EXPECT_EQ(d->video_resize, VideoResizeMode::kPerFrame);
}

TEST(QwenConfig, RejectsBadValues) {
  EXPECT_FALSE(parse_qwen_image_config("not json").ok());
  EXPECT_FALSE(parse_qwen_image_config(R"({"patch_size": 0})").ok());
  EXPECT_FALSE(parse_qwen_image_config(R"({"patch_size": "14"})").ok());
  EXPECT_FALSE(parse_qwen_image_config(R"({"image_std": [0.5, 0, 0.5]})").ok());
  EXPECT_FALSE(parse_qwen_image_config(R"({"image_mean": [0.5]})").ok());
  EXPECT_FALSE(parse_qwen_image_config(R"({"max_pixels": -1})").ok());
  EXPECT_FALSE(parse_qwen_image_config(R"({"resample": 1})").ok());
}

TEST(QwenConfig, VideoConfigFallsBackToImageConfig) {
  const std::string dir = std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/model";
  auto v = load_qwen_video_config(dir);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->min_pixels, 3136);
  EXPECT_EQ(v->max_pixels, 12845056);
  EXPECT_FALSE(load_qwen_image_config("/nonexistent/dir").ok());
}

TEST(QwenPreprocess, ResizedSizeOverrideAndBounds) {
  QwenImageConfig cfg;
  Image img;
  img.width = 300;
  img.height = 200;
  img.rgb.assign(size_t(300) * 200 * 3, 128);
  QwenPreprocessOptions opt;
  opt.max_pixels = 28 * 28 * 4;
  auto a = preprocess_qwen_images({img}, cfg, opt);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_LE(a->grid_thw[0][1] * a->grid_thw[0][2] * 14 * 14, 28 * 28 * 4);
  QwenPreprocessOptions r;
  r.resized_size = ImageSize{56, 112};
  auto b = preprocess_qwen_images({img}, cfg, r);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->grid_thw[0], (std::array<int64_t, 3>{1, 4, 8}));
  QwenImageConfig no_resize = cfg;
  no_resize.do_resize = false;
  EXPECT_FALSE(preprocess_qwen_images({img}, no_resize, {}).ok());  // 300 is not a multiple of 28
  EXPECT_FALSE(preprocess_qwen_images({Image{}}, cfg, {}).ok());
}

}  // namespace
