// `vlm boxes` end to end: the built binary on the bundled fixtures (no
// weights are read, only config.json and preprocessor_config.json).
#include <gtest/gtest.h>

#include "vlm_cli.h"
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vision/draw.h"
#include "vision/image.h"

namespace {

const std::string kQwen25 = VLM_TESTDATA "/fixtures/qwen2_5_vl/model";
const std::string kQwen2 = VLM_TESTDATA "/fixtures/qwen2_vl/model";
const std::string kImage = VLM_TESTDATA "/fixtures/qwen2_vl/cases/large_image/c_320x240.png";

using vlm::testing::CliRun;
using vlm::testing::quote;
using vlm::testing::slurp;
using vlm::testing::temp_path;
using vlm::testing::vlm;

// Qwen2.5-VL fixture: 320x240 -> 308x252 (round(320/28)=11, round(240/28)=9),
// so x*320/308 and y*240/252:
//   [77, 63, 231, 189] -> [80, 60, 240, 180]   (77*320/308 = 80, 63*240/252 = 60)
//   [0, 0, 154, 126]   -> [0, 0, 160, 120]
//   point [154, 126]   -> (160, 120)
TEST(BoxesCli, Qwen25JsonAnswer) {
  const std::string answer =
      "Here you go:\n```json\n[\n  {\"bbox_2d\": [77, 63, 231, 189], \"label\": \"centre\"},\n"
      "  {\"bbox_2d\": [0, 0, 154, 126], \"label\": \"top-left\"},\n"
      "  {\"point_2d\": [154, 126], \"label\": \"middle\"},\n]\n```";
  CliRun r = vlm({"boxes", "--model", kQwen25, "--image", kImage, "--text", answer});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "[\n"
            "  {\"label\": \"centre\", \"box\": [80, 60, 240, 180]},\n"
            "  {\"label\": \"top-left\", \"box\": [0, 0, 160, 120]},\n"
            "  {\"label\": \"middle\", \"box\": [160, 120, 160, 120], \"point\": [160, 120]}\n"
            "]\n");
  EXPECT_NE(r.err.find("model input 308x252"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("unparsed"), std::string::npos) << r.err;
}

// Qwen2-VL fixture: 0..1000 of the image, x*320/1000 and y*240/1000:
//   (100,200),(500,800) -> (32,48),(160,192)
TEST(BoxesCli, Qwen2TokensAndStdin) {
  const std::string answer =
      "<|object_ref_start|>dog<|object_ref_end|><|box_start|>(100,200),(500,800)<|box_end|>";
  CliRun r = vlm({"boxes", "-m", kQwen2, "-i", kImage, "--text", "-"}, answer);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["label"], "dog");
  EXPECT_EQ(j[0]["box"], nlohmann::json({32, 48, 160, 192}));
}

// --max-pixels 20000 changes what the model saw: 320x240 -> 140x112
// (beta = sqrt(76800/20000); floor(320/beta/28) = 5, floor(240/beta/28) = 4),
// so [70, 56, 140, 112] is the bottom-right quarter (160,120)-(320,240).
TEST(BoxesCli, PixelBoundsChangeTheFrame) {
  const std::string answer = R"([{"bbox_2d": [70, 56, 140, 112], "label": "q"}])";
  CliRun r = vlm({"boxes", "--model", kQwen25, "--image", kImage, "--text", answer, "--max-pixels", "20000"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j[0]["box"], nlohmann::json({160, 120, 320, 240}));
  // Forcing the Qwen3-VL reading of the same text: 0..1000 instead.
  r = vlm({"boxes", "--model", kQwen25, "--image", kImage, "--text", answer, "--format", "qwen3-vl"});
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j[0]["box"], nlohmann::json({22.4, 13.4, 44.8, 26.9}));  // 70*0.32, 56*0.24, 140*0.32, 112*0.24 = 26.88
}

TEST(BoxesCli, DamageIsReportedOnStderr) {
  const std::string answer =
      "[{\"bbox_2d\": [0, 0, 400, 100], \"label\": \"wide\"}, {\"bbox_2d\": [10, 20, 30";
  CliRun r = vlm({"boxes", "--model", kQwen25, "--image", kImage, "--text", answer});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["box"][2], 320);  // 400 clamped to 308
  EXPECT_NE(r.err.find("clamped x2 from 400 to 308"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unparsed: truncated"), std::string::npos) << r.err;

  r = vlm({"boxes", "--model", kQwen25, "--image", kImage, "--text", "no boxes at all"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "[]\n");
  EXPECT_NE(r.err.find("no boxes"), std::string::npos);
}

TEST(BoxesCli, DrawWritesThePng) {
  const std::string png = temp_path("draw.png");
  CliRun r = vlm({"boxes", "--model", kQwen25, "--image", kImage, "--draw", png, "--text",
               R"([{"bbox_2d": [77, 63, 231, 189], "label": "centre"}])"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto img = vlm::load_image(png);
  std::filesystem::remove(png);
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->width, 320);
  EXPECT_EQ(img->height, 240);
  // The box is (80,60)-(240,180): its left edge at column 80 has the first palette colour.
  const uint8_t* p = img->row(120) + 80 * 3;
  const vlm::Rgb c = vlm::palette_colour(0);
  EXPECT_EQ(p[0], c.r);
  EXPECT_EQ(p[1], c.g);
  EXPECT_EQ(p[2], c.b);
}

TEST(BoxesCli, BadInputExitsWith2) {
  CliRun r = vlm({"boxes", "--model", "/nonexistent/model", "--image", kImage, "--text", "[]"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
  r = vlm({"boxes", "--model", kQwen25, "--image", "/nonexistent.png", "--text", "[]"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("nonexistent.png"), std::string::npos) << r.err;
  r = vlm({"boxes", "--model", kQwen25, "--image", kImage, "--text", "[]", "--format", "yolo"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--format"), std::string::npos) << r.err;
  // A folder without a preprocessor config is not a model the frame can be computed for.
  r = vlm({"boxes", "--model", VLM_TESTDATA, "--image", kImage, "--text", "[]"});
  EXPECT_EQ(r.code, 2);
}

}  // namespace
