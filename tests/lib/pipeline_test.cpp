// The library face (src/vlm.h) on the bundled fixture model: the same answers as the engine and
// the CLI, streaming, and errors as values.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "vlm.h"

namespace vlm {
namespace {

const std::string kModel = std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/model";
const std::string kImage = std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/cases/single_image/a_84x56.png";

GenerationOptions greedy(int n) {
  GenerationOptions g;
  g.max_tokens = n;
  g.temperature = 0;
  return g;
}

TEST(Pipeline, AskGivesTheRecordedGreedyAnswer) {
  auto p = Pipeline::load(kModel);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ((*p)->family(), "qwen2_vl");
  auto a = (*p)->ask(kImage, "Describe this image.", greedy(12));
  ASSERT_TRUE(a.ok()) << a.error().message;
  // Greedy output of the random-weight model as transformers recorded it (case.json generated_text).
  EXPECT_NE(a->text.find(" suitability suitability suitability"), std::string::npos) << a->text;
  EXPECT_EQ(a->tokens.size(), 12u);
  EXPECT_GT(a->prompt_tokens, 12);
}

TEST(Pipeline, StreamingPiecesMakeTheAnswerAndCanStopIt) {
  auto p = Pipeline::load(kModel);
  ASSERT_TRUE(p.ok());
  Message m;
  m.text = "Describe this image.";
  m.images.push_back(kImage);
  std::string streamed;
  auto a = (*p)->chat({m}, greedy(12), [&](const std::string& piece) {
    streamed += piece;
    return true;
  });
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(streamed, a->text);
  int pieces = 0;
  auto stopped = (*p)->chat({m}, greedy(12), [&](const std::string&) { return ++pieces < 3; });
  ASSERT_TRUE(stopped.ok());
  EXPECT_LT(stopped->tokens.size(), 12u);
}

TEST(Pipeline, ImagesFromMemoryEqualImagesFromFiles) {
  auto p = Pipeline::load(kModel);
  ASSERT_TRUE(p.ok());
  auto img = load_image(kImage);
  ASSERT_TRUE(img.ok());
  Message from_file, from_memory;
  from_file.text = from_memory.text = "What is it?";
  from_file.images.push_back(kImage);
  from_memory.decoded.push_back(*img);
  auto a = (*p)->chat({from_file}, greedy(6)), b = (*p)->chat({from_memory}, greedy(6));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
}

TEST(Pipeline, ErrorsAreValues) {
  EXPECT_FALSE(Pipeline::load("/nonexistent-model").ok());
  LoadOptions bad;
  bad.weights = "fp8";
  auto e = Pipeline::load(kModel, bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("weights must be"), std::string::npos);
  auto p = Pipeline::load(kModel);
  ASSERT_TRUE(p.ok());
  auto missing = (*p)->ask("/nonexistent.png", "hi", greedy(4));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent.png"), std::string::npos);
  const std::string truncated = ::testing::TempDir() + "/pipeline_truncated.png";
  {
    std::ifstream in(kImage, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  EXPECT_FALSE((*p)->ask(truncated, "hi", greedy(4)).ok());
  Message m;
  m.role = "robot";
  EXPECT_FALSE((*p)->chat({m}, greedy(4)).ok());
  EXPECT_FALSE((*p)->chat({}, greedy(4)).ok());
  GenerationOptions zero = greedy(0);
  Message ok;
  ok.text = "hi";
  EXPECT_FALSE((*p)->chat({ok}, zero).ok());
}

TEST(Pipeline, QuantisedLoadAnswers) {
  LoadOptions q;
  q.weights = "q8";
  q.vision_weights = "bf16";
  auto p = Pipeline::load(kModel, q);
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto a = (*p)->ask(kImage, "Describe this image.", greedy(4));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->tokens.size(), 4u);
}

}  // namespace
}  // namespace vlm
