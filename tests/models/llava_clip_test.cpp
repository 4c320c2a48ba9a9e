// LLaVA-1.5, CLIP and SigLIP fixtures end to end (case folders discovered, none hard-coded).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "models/clip.h"
#include "models/model.h"
#include "runtime/check.h"

namespace vlm {
namespace {

namespace fs = std::filesystem;
const std::string kRoot = std::string(VLM_TESTDATA) + "/fixtures/";

std::vector<std::string> cases(const std::string& family) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(kRoot + family + "/cases"))
    if (fs::exists(e.path() / "case.json")) v.push_back(e.path().string());
  return v;
}

void expect_all_ok(const runtime::CaseReport& r) {
  EXPECT_TRUE(r.error.empty()) << r.name << ": " << r.error;
  EXPECT_GT(r.tensors.size(), 5u) << r.name;
  for (const auto& t : r.tensors) EXPECT_TRUE(t.ok) << r.name << ": " << t.name << " max error " << t.max_err << " " << t.note;
}

TEST(Llava, FixtureMatchesTransformers) {
  auto m = models::load_model(kRoot + "llava/model");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->family(), "llava");
  for (const auto& d : cases("llava")) expect_all_ok(runtime::check_case(**m, d, {}));
}

TEST(Llava, ChatMessagesUseTheBuiltInTemplateWhenNoneShips) {
  auto m = models::load_model(kRoot + "llava/model");
  ASSERT_TRUE(m.ok()) << m.error().message;
  nlohmann::json msgs = nlohmann::json::parse(
      R"([{"role":"user","content":[{"type":"image"},{"type":"text","text":"What is shown in this image?"}]}])");
  auto img = load_image(kRoot + "llava/cases/single_image/a_84x56.png");
  ASSERT_TRUE(img.ok());
  models::Media media;
  media.frames.push_back(*img);
  auto p = (*m)->prepare(msgs, {media}, {});
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->text, "USER: <image>\nWhat is shown in this image? ASSISTANT:");
}

TEST(ClipSiglip, RetrievalFixturesMatchTransformers) {
  for (const char* fam : {"clip", "siglip"}) {
    auto m = models::DualEncoder::load(kRoot + fam + "/model");
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ((*m)->family(), fam);
    for (const auto& d : cases(fam)) expect_all_ok(runtime::check_dual_case(**m, d, {}));
  }
}

}  // namespace
}  // namespace vlm
