// The Qwen2-VL fixtures end to end (every case folder found, none hard-coded),
// and bad checkpoints refused with clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/mmap.h"
#include "fixture_model.h"
#include "models/model.h"
#include "runtime/check.h"

namespace vlm {
namespace {

namespace fs = std::filesystem;
const std::string kModel = std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/model";
const std::string kCases = std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/cases";

const models::Model& model() { return testing::fixture_model(kModel); }

std::vector<std::string> case_dirs(const std::string& root = kCases) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / "case.json")) v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Qwen2VL, EveryFixtureCaseMatchesTransformers) {
  auto dirs = case_dirs();
  ASSERT_GE(dirs.size(), 7u);
  for (const auto& d : dirs) {
    runtime::CheckOptions opt;  // atol = rtol = 1e-4 on model tensors (see check.h)
    runtime::CaseReport r = runtime::check_case(model(), d, opt);
    EXPECT_TRUE(r.error.empty()) << r.name << ": " << r.error;
    EXPECT_GT(r.tensors.size(), 5u) << r.name;
    for (const auto& t : r.tensors) EXPECT_TRUE(t.ok) << r.name << ": " << t.name << " max error " << t.max_err << " " << t.note;
  }
}

// Qwen2.5-VL: window attention (2 full-attention blocks of 4), gated RMSNorm ViT, video with
// second_per_grid_ts; recorded by the same transformers run, same tolerance.
TEST(Qwen25VL, EveryFixtureCaseMatchesTransformers) {
  const std::string root = std::string(VLM_TESTDATA) + "/fixtures/qwen2_5_vl";
  auto m = models::load_model(root + "/model");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->family(), "qwen2_5_vl");
  auto dirs = case_dirs(root + "/cases");
  ASSERT_GE(dirs.size(), 6u);
  for (const auto& d : dirs) {
    runtime::CaseReport r = runtime::check_case(**m, d, runtime::CheckOptions{});
    EXPECT_TRUE(r.error.empty()) << r.name << ": " << r.error;
    EXPECT_GT(r.tensors.size(), 5u) << r.name;
    for (const auto& t : r.tensors) EXPECT_TRUE(t.ok) << r.name << ": " << t.name << " max error " << t.max_err << " " << t.note;
  }
}

// Builds a copy of the fixture model in a temp folder, letting a test damage one file.
struct ModelCopy {
  fs::path dir;
  explicit ModelCopy(const std::string& tag) {
    dir = fs::temp_directory_path() / ("vlm_badmodel_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(kModel)) fs::copy_file(e.path(), dir / e.path().filename());
    for (const auto& e : fs::directory_iterator(dir)) fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  }
  ~ModelCopy() { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << bytes;
  }
  std::string read(const std::string& name) const { return read_file((dir / name).string(), 1 << 30).value(); }
  // Rewrites model.safetensors with an edited header (data section kept as is).
  void edit_header(const std::function<void(nlohmann::json&)>& fn) const {
    std::string f = read("model.safetensors");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(f[size_t(i)]);
    auto h = nlohmann::json::parse(f.substr(8, n));
    fn(h);
    std::string hs = h.dump();
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[size_t(i)] = char((hs.size() >> (8 * i)) & 0xff);
    write("model.safetensors", out + hs + f.substr(8 + n));
  }
  std::string load_error() const {
    auto m = models::load_model(dir.string());
    return m.ok() ? "" : m.error().message;
  }
};

TEST(Qwen2VL, BadCheckpointsGiveClearErrors) {
  {
    ModelCopy c("garbage");
    c.write("model.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{{{{", 12));
    EXPECT_NE(c.load_error().find("corrupt safetensors header"), std::string::npos) << c.load_error();
  }
  {
    ModelCopy c("truncated_header");
    c.write("model.safetensors", c.read("model.safetensors").substr(0, 1000));
    EXPECT_NE(c.load_error().find("corrupt safetensors header"), std::string::npos) << c.load_error();
  }
  {
    ModelCopy c("truncated_data");
    std::string f = c.read("model.safetensors");
    c.write("model.safetensors", f.substr(0, f.size() / 2));
    EXPECT_NE(c.load_error().find("outside the data section"), std::string::npos) << c.load_error();
  }
  {
    ModelCopy c("missing_tensor");
    c.edit_header([](nlohmann::json& h) { h.erase("model.norm.weight"); });
    EXPECT_NE(c.load_error().find("missing tensor 'model.norm.weight'"), std::string::npos) << c.load_error();
  }
  {
    ModelCopy c("wrong_shape");
    c.edit_header([](nlohmann::json& h) {
      auto& t = h["model.norm.weight"];
      t["shape"] = {16};
      t["data_offsets"][1] = t["data_offsets"][0].get<uint64_t>() + 32;
    });
    EXPECT_NE(c.load_error().find("has shape [16], expected [32]"), std::string::npos) << c.load_error();
  }
  {
    ModelCopy c("wrong_dtype");
    c.edit_header([](nlohmann::json& h) { h["model.norm.weight"]["dtype"] = "I16"; });
    EXPECT_NE(c.load_error().find("has dtype I16"), std::string::npos) << c.load_error();
  }
  {
    ModelCopy c("unknown_type");
    auto cfg = nlohmann::json::parse(c.read("config.json"));
    cfg["model_type"] = "imaginary_vl";
    c.write("config.json", cfg.dump());
    EXPECT_NE(c.load_error().find("unknown model type 'imaginary_vl'"), std::string::npos) << c.load_error();
  }
  {
    ModelCopy c("bad_template");
    c.write("chat_template.json", R"({"chat_template": "{% for m in messages %}{{ m.content }"})");
    EXPECT_FALSE(c.load_error().empty());
  }
  {
    ModelCopy c("bad_config");
    c.write("config.json", "{\"model_type\": \"qwen2_vl\", \"hidden_size\": ");
    EXPECT_NE(c.load_error().find("invalid JSON"), std::string::npos) << c.load_error();
  }
}

TEST(Qwen2VL, PlaceholderAndMediaCountsMustAgree) {
  nlohmann::json msgs = nlohmann::json::parse(R"([{"role":"user","content":[{"type":"image"},{"type":"text","text":"hi"}]}])");
  auto p = model().prepare(msgs, {}, {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("1 image and 0 video placeholders"), std::string::npos) << p.error().message;
}

}  // namespace
}  // namespace vlm
