// Qwen3-VL: the fixtures end to end (every case folder found, none hard-coded),
// the interleaved M-RoPE slot assignment and the position-embedding
// interpolation against TEST_VECTORS.md, the video prompt form, config errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string_view>
#include <nlohmann/json.hpp>

#include "core/mmap.h"
#include "fixture_model.h"
#include "models/model.h"
#include "models/qwen_rope.h"
#include "runtime/check.h"

namespace vlm {
namespace {

namespace fs = std::filesystem;
const std::string kRoot = std::string(VLM_TESTDATA) + "/fixtures/qwen3_vl";
const std::string kModel = kRoot + "/model";

const models::Model& model() { return testing::fixture_model(kModel); }

std::vector<std::string> case_dirs() {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(kRoot + "/cases"))
    if (fs::exists(e.path() / "case.json")) v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Qwen3VL, EveryFixtureCaseMatchesTransformers) {
  EXPECT_EQ(model().family(), "qwen3_vl");
  auto dirs = case_dirs();
  ASSERT_GE(dirs.size(), 7u);
  for (const auto& d : dirs) {
    runtime::CheckOptions opt;  // atol = rtol = 1e-4 on model tensors, integers exact (see check.h)
    runtime::CaseReport r = runtime::check_case(model(), d, opt);
    EXPECT_TRUE(r.error.empty()) << r.name << ": " << r.error;
    EXPECT_GT(r.tensors.size(), 5u) << r.name;
    for (const auto& t : r.tensors) EXPECT_TRUE(t.ok) << r.name << ": " << t.name << " max error " << t.max_err << " " << t.note;
  }
}

// Which axis (T, H, W) drives each of the head_dim/2 frequency slots: a unit position on one axis
// gives a nonzero sine exactly in that axis' slots (sine, not cosine: the slowest frequencies of
// theta 5e6 leave cos(angle) == 1 in fp32).
std::string slot_axes(int head_dim, const std::array<int, 3>& section, bool interleaved) {
  std::string s(size_t(head_dim / 2), '?');
  for (int ax = 0; ax < 3; ++ax) {
    std::array<int64_t, 3> pos{0, 0, 0};
    pos[size_t(ax)] = 1;
    std::vector<float> cos, sin;
    models::mrope_tables(&pos, 1, head_dim, 5e6, section, interleaved, &cos, &sin);
    for (int j = 0; j < head_dim / 2; ++j) {
      EXPECT_EQ(sin[size_t(j)], sin[size_t(j + head_dim / 2)]);  // rotate_half layout: concat(a, a)
      if (sin[size_t(j)] != 0.0f) s[size_t(j)] = s[size_t(j)] == '?' ? "THW"[ax] : '!';
    }
  }
  return s;
}

TEST(Qwen3VL, InterleavedMropeSlots) {
  // TEST_VECTORS §3 (real checkpoints) and §11 (the fixture's head_dim 16).
  EXPECT_EQ(slot_axes(128, {24, 20, 20}, true),
            "THWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTHWTTTT");
  EXPECT_EQ(slot_axes(16, {4, 2, 2}, true), "THWTHWTT");
  EXPECT_EQ(slot_axes(128, {16, 24, 24}, false),
            "TTTTTTTTTTTTTTTTHHHHHHHHHHHHHHHHHHHHHHHHWWWWWWWWWWWWWWWWWWWWWWWW");
}

TEST(Qwen3VL, PositionEmbeddingInterpolation) {
  // TEST_VECTORS §7, G = 48.
  auto a = models::pos_embed_axis(4, 48);
  EXPECT_EQ(a.lo, (std::vector<int64_t>{0, 15, 31, 47}));
  EXPECT_EQ(a.hi, (std::vector<int64_t>{1, 16, 32, 47}));
  const std::vector<float> f4{0, 0.6667f, 0.3333f, 0};
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(a.frac[i], f4[i], 1e-4) << i;
  auto b = models::pos_embed_axis(6, 48);
  EXPECT_EQ(b.lo, (std::vector<int64_t>{0, 9, 18, 28, 37, 47}));
  EXPECT_EQ(b.hi, (std::vector<int64_t>{1, 10, 19, 29, 38, 47}));
  const std::vector<float> f6{0, 0.4f, 0.8f, 0.2f, 0.6f, 0};
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(b.frac[i], f6[i], 1e-5) << i;
  // The last sample sits exactly on the last table row (torch counts the second half back).
  EXPECT_EQ(b.frac[5], 0.0f);
  auto c = models::pos_embed_axis(1, 48);
  EXPECT_EQ(c.lo, (std::vector<int64_t>{0}));
  EXPECT_EQ(c.frac, (std::vector<float>{0.0f}));
}

// By default a video is prompted as Qwen's processor does: the template's
// <|vision_start|><|video_pad|><|vision_end|> becomes the timestamped frame blocks. The fixture was
// recorded with transformers 5.17, which keeps that outer pair: the same ids plus those two tokens.
TEST(Qwen3VL, VideoPromptDefaultsToQwenProcessorForm) {
  const std::string dir = kRoot + "/cases/video";
  auto c = nlohmann::json::parse(read_file(dir + "/case.json", 1 << 20).value());
  models::Media v;
  v.kind = models::Media::Kind::Video;
  v.fps = c["video_fps"].get<double>();
  for (const auto& f : c["video_frames"]) v.frames.push_back(load_image(dir + "/" + f.get<std::string>()).value());
  auto p = model().prepare(c["messages"], {v}, {});
  ASSERT_TRUE(p.ok()) << p.error().message;
  std::vector<int32_t> want = c["input_ids"].get<std::vector<int32_t>>();
  const int32_t vs = 151652, ve = 151653;
  // 5.17: <|vision_start|><0.2 seconds><|vision_start|>… ; the outer pair wraps all frame blocks.
  auto first = std::find(want.begin(), want.end(), vs);
  ASSERT_NE(first, want.end());
  ASSERT_EQ(first[1], 27);  // "<"
  want.erase(first);
  auto last = std::find(want.rbegin(), want.rend(), ve);
  ASSERT_EQ(*(last + 1), ve);
  want.erase(std::next(last).base());
  EXPECT_EQ(p->ids, want);
  EXPECT_EQ(model().tokenizer().decode(std::vector<int32_t>(p->ids.begin() + 3, p->ids.begin() + 12), false),
            "<0.2 seconds><|vision_start|><|video_pad|><|video_pad|>");
  // Four t=1 blocks of 2x3 merged tokens: no temporal offset inside a block (time order comes from
  // the timestamp text), and the text after each block resumes at base + max(2, 3).
  ASSERT_EQ(p->pos.size(), p->ids.size());
  int blocks = 0;
  for (size_t i = 1; i < p->ids.size(); ++i) {
    if (p->ids[i] != 151656 || p->ids[i - 1] != vs) continue;
    ++blocks;
    const int64_t base = p->pos[i - 1][0] + 1;
    for (size_t r = 0; r < 2; ++r)
      for (size_t col = 0; col < 3; ++col) {
        const auto& q = p->pos[i + r * 3 + col];
        EXPECT_EQ(q, (std::array<int64_t, 3>{base, base + int64_t(r), base + int64_t(col)})) << i;
      }
    EXPECT_EQ(p->ids[i + 6], ve);
    EXPECT_EQ(p->pos[i + 6], (std::array<int64_t, 3>{base + 3, base + 3, base + 3}));
  }
  EXPECT_EQ(blocks, 4);
  EXPECT_EQ(p->videos.grids, (std::vector<models::Grid>{{4, 4, 6}}));
}

TEST(Qwen3VL, PlaceholderAndMediaCountsMustAgree) {
  auto msgs = nlohmann::json::parse(R"([{"role":"user","content":[{"type":"video"},{"type":"text","text":"hi"}]}])");
  auto p = model().prepare(msgs, {}, {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("1 video placeholders, but 0 videos were given"), std::string::npos) << p.error().message;
  msgs = nlohmann::json::parse(R"([{"role":"user","content":[{"type":"image"},{"type":"text","text":"hi"}]}])");
  p = model().prepare(msgs, {}, {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("1 image and 0 video-frame placeholders"), std::string::npos) << p.error().message;
}

TEST(Qwen3VL, BadConfigsGiveClearErrors) {
  const fs::path dir = fs::temp_directory_path() / ("vlm_qwen3_badcfg_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(kModel)) fs::create_symlink(e.path(), dir / e.path().filename());
  const auto orig = nlohmann::json::parse(read_file(kModel + "/config.json", 1 << 20).value());
  auto error_with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json cfg = orig;
    edit(cfg);
    fs::remove(dir / "config.json");
    std::ofstream(dir / "config.json") << cfg.dump();
    auto m = models::load_model(dir.string());
    return m.ok() ? std::string() : m.error().message;
  };
  EXPECT_NE(error_with([](auto& c) { c["vision_config"]["deepstack_visual_indexes"] = {0, 3}; })
                .find("deepstack_visual_indexes entry outside 0..2"),
            std::string::npos);
  EXPECT_NE(error_with([](auto& c) { c["text_config"]["rope_scaling"]["mrope_section"] = {4, 2, 1}; })
                .find("mrope_section sums to 7 but head_dim/2 is 8"),
            std::string::npos);
  EXPECT_NE(error_with([](auto& c) { c["vision_config"]["out_hidden_size"] = 64; }).find("!= text hidden_size 32"),
            std::string::npos);
  EXPECT_NE(error_with([](auto& c) { c.erase("text_config"); }).find("needs a text_config"), std::string::npos);
  EXPECT_NE(error_with([](auto& c) { c["vision_config"]["num_position_embeddings"] = 2300; }).find("not a square"),
            std::string::npos);
  EXPECT_NE(error_with([](auto& c) { c["vision_config"]["hidden_act"] = "relu6"; }).find("unsupported vision hidden_act"),
            std::string::npos);
  EXPECT_EQ(error_with([](auto&) {}), "");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vlm
