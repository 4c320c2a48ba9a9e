// The `vlm` binary as a user runs it: output formats and exit statuses.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

const std::string kData = VLM_TESTDATA;
const std::string kQwen = kData + "/fixtures/qwen2_vl/model";

struct Result {
  int code = -1;
  std::string out;
};

Result run(const std::string& args) {
  Result r;
  const std::string cmd = std::string(VLM_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string q(const std::string& s) {  // shell single-quote
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

TEST(Cli, CheckPrintsOneLinePerCaseAndASummary) {
  Result r = run("check --model " + kQwen + " " + kData + "/fixtures/qwen2_vl/cases/single_image " + kData +
              "/fixtures/qwen2_vl/cases/text_only");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("PASS single_image\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS text_only\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 passed, 0 failed\n"), std::string::npos) << r.out;
}

TEST(Cli, CheckFailsOnACaseOfAnotherModel) {
  // A Qwen2.5-VL case against the Qwen2-VL weights: inputs agree, tensors must not.
  Result r = run("check --model " + kQwen + " " + kData + "/fixtures/qwen2_5_vl/cases/single_image");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("FAIL single_image: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 passed, 1 failed"), std::string::npos) << r.out;
}

TEST(Cli, TokenizeReproducesTheCorpus) {
  std::ifstream f(kData + "/fixtures/tokenizers/corpus.json");
  auto corpus = nlohmann::json::parse(f);
  const auto& strings = corpus["strings"];
  const auto& tok = corpus["tokenizers"]["qwen2_vl"];
  // Every string would spawn 46 processes; a spread of scripts keeps the test quick.
  for (size_t i : {0, 4, 5, 9, 12, 15, 23, 30}) {
    if (i >= strings.size()) continue;
    const std::string s = strings[i].get<std::string>();
    if (s.empty() || s[0] == '-') continue;
    Result r = run("tokenize --model " + kQwen + " -- " + q(s));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out), tok["encode"][i]) << "string " << i << ": " << s;
    Result n = run("tokenize --no-special --model " + kQwen + " -- " + q(s));
    EXPECT_EQ(nlohmann::json::parse(n.out), tok["encode_no_special"][i]) << "string " << i;
  }
}

TEST(Cli, RunAnswersOnTheBundledModel) {
  Result r = run("run --model " + kQwen + " --image " + kData +
              "/fixtures/qwen2_vl/cases/single_image/a_84x56.png --prompt 'Describe this image.' --max-tokens 12 --temperature 0");
  EXPECT_EQ(r.code, 0) << r.out;
  // Greedy output of the random-weight model, as transformers recorded it (case.json generated_text).
  EXPECT_NE(r.out.find(" suitability suitability suitability"), std::string::npos) << r.out;
}

TEST(Cli, RunLoadOptions) {
  const std::string base = "run --model " + kQwen + " --image " + kData +
                           "/fixtures/qwen2_vl/cases/single_image/a_84x56.png --max-tokens 12 --temperature 0";
  // Native weights copied into memory (the default) and computed from the mapping give the same
  // bits, so the same greedy text.
  Result copied = run(base);
  Result mapped = run(base + " --mmap");
  ASSERT_EQ(copied.code, 0) << copied.out;
  ASSERT_EQ(mapped.code, 0) << mapped.out;
  EXPECT_NE(mapped.out.find(" suitability suitability suitability"), std::string::npos) << mapped.out;
  // A quantised format loads and answers (its text may differ from the exact path's).
  Result q8 = run(base + " --weights q8");
  EXPECT_EQ(q8.code, 0) << q8.out;
  // Text model in q4, vision tower in bf16.
  Result mixed = run(base + " --weights q4 --vision-weights bf16");
  EXPECT_EQ(mixed.code, 0) << mixed.out;
  Result bad = run(base + " --weights fp8");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--weights must be native, bf16, q8 or q4"), std::string::npos) << bad.out;
  bad = run(base + " --vision-weights int3");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--vision-weights must be"), std::string::npos) << bad.out;
}

TEST(Cli, BadInputGivesAClearErrorAndExitStatus) {
  Result r = run("run --model " + kQwen + " --image /nonexistent.png");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("/nonexistent.png"), std::string::npos) << r.out;
  r = run("run --model /nonexistent-model --prompt hi");
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("not a model folder"), std::string::npos) << r.out;
  r = run("run --model " + kQwen + " --max-tokens -5");
  EXPECT_NE(r.code, 0) << r.out;
  r = run("frobnicate");
  EXPECT_NE(r.code, 0) << r.out;
  // A truncated PNG.
  const std::string bad = testing::TempDir() + "/truncated.png";
  {
    std::ifstream in(kData + "/fixtures/qwen2_vl/cases/single_image/a_84x56.png", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  r = run("run --model " + kQwen + " --image " + bad);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("vlm: "), std::string::npos) << r.out;
}

TEST(Cli, RunGroundPrintsBoxesJsonAndDraws) {
  const std::string png = testing::TempDir() + "/ground.png";
  std::remove(png.c_str());
  Result r = run("run --model " + kQwen + " --image " + kData +
                 "/fixtures/qwen2_vl/cases/large_image/c_320x240.png --max-tokens 4 --temperature 0 --draw " + png);
  EXPECT_EQ(r.code, 0) << r.out;
  // The random-weight model answers noise: no boxes, but a well-formed (empty) list and an image.
  EXPECT_NE(r.out.find("\n[]\n"), std::string::npos) << r.out;
  std::ifstream f(png, std::ios::binary);
  EXPECT_TRUE(f.good());
}

TEST(Cli, HelpExplainsEveryRunFlag) {
  Result r = run("run --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--model", "--image", "--video", "--prompt", "--system", "--max-tokens", "--temperature",
                           "--top-p", "--seed", "--min-pixels", "--max-pixels", "--fps", "--max-frames", "--ground", "--draw"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

}  // namespace
