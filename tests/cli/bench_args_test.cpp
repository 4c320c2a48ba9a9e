// `vlm bench` and `vlm make-random` argument handling, end to end on the built binary: bad
// arguments exit with status 2 and say what is wrong; good ones produce the documented output.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

const std::string kModel = VLM_TESTDATA "/fixtures/qwen2_vl/model";

struct Result {
  int code = -1;
  std::string out, err;
};

Result run_vlm(const std::string& args) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string out = (dir / ("vlm_bench_test_out_" + std::to_string(::getpid()))).string();
  const std::string err = (dir / ("vlm_bench_test_err_" + std::to_string(::getpid()))).string();
  const std::string cmd = std::string(VLM_BINARY) + " " + args + " >" + out + " 2>" + err;
  const int st = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream o(out), e(err);
  std::stringstream so, se;
  so << o.rdbuf();
  se << e.rdbuf();
  r.out = so.str();
  r.err = se.str();
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

void expect_usage_error(const std::string& args, const std::string& message) {
  const Result r = run_vlm(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << args << "\nstderr: " << r.err;
}

TEST(BenchArgs, BadArgumentsExitWithTwoAndSayWhy) {
  expect_usage_error("bench", "--model DIR is required");
  expect_usage_error("bench --model /nonexistent/dir", "is not a folder");
  expect_usage_error("bench --model " + kModel + " --weights fp8", "--weights must be native, bf16, q8 or q4");
  expect_usage_error("bench --model " + kModel + " --gen-tokens 0", "--gen-tokens");
  expect_usage_error("bench --model " + kModel + " --repeat 0", "--repeat");
  expect_usage_error("bench --model " + kModel + " --prompt-tokens -5", "--prompt-tokens");
  expect_usage_error("bench --model " + kModel + " --image 0x10", "--image WxH");
  expect_usage_error("bench --model " + kModel + " --image /nonexistent.png", "neither WxH nor a file");
  expect_usage_error("bench --model " + kModel + " --accuracy", "--accuracy compares");
}

TEST(BenchArgs, JsonReportHasTheDocumentedKeys) {
  const Result r = run_vlm("bench --model " + kModel +
                           " --image 64x48 --gen-tokens 3 --repeat 2 --threads 2 --probe --probe-mb 8 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"load_s", "preprocess_ms", "vit_encode_ms", "prefill_tok_s", "decode_tok_s",
                        "decode_bytes_per_token", "peak_rss_mb", "probe_read_gbs"}) {
    ASSERT_TRUE(j.contains(k)) << k;
    EXPECT_TRUE(j[k].is_number()) << k << " = " << j[k].dump();
  }
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  EXPECT_GT(j["vit_encode_ms"].get<double>(), 0);
  EXPECT_GT(j["image_tokens"].get<int>(), 0);
  EXPECT_EQ(j["threads"].get<int>(), 2);
  ASSERT_TRUE(j["kernels"].is_string());
  EXPECT_FALSE(j["kernels"].get<std::string>().empty());
  EXPECT_EQ(j["runs"]["decode_tok_s"].size(), 2u);
}

TEST(BenchArgs, QuantisedWeightsReportAgreementWithNative) {
  const Result r = run_vlm("bench --model " + kModel + " --prompt-tokens 20 --gen-tokens 4 --repeat 1 --weights q8 "
                           "--accuracy --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("accuracy_vs_native"));
  const auto& a = j["accuracy_vs_native"];
  EXPECT_EQ(a["steps"].get<int>(), 5);
  EXPECT_GE(a["top1_agreement"].get<double>(), 0.0);
  EXPECT_LE(a["top1_agreement"].get<double>(), 1.0);
  EXPECT_TRUE(j["vit_encode_ms"].is_null());  // no image, no ViT
}

TEST(MakeRandomArgs, BadArguments) {
  const Result r = run_vlm("make-random --like gpt-5 --out /tmp/x");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--like"), std::string::npos) << r.err;
  const auto dir = std::filesystem::temp_directory_path() / "vlm_make_random_nonempty";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "keep") << "x";
  expect_usage_error("make-random --like qwen2-vl-2b --out " + dir.string(), "is not empty");
  std::filesystem::remove_all(dir);
  expect_usage_error("make-random --like qwen2-vl-2b --out /tmp/x --assets /nonexistent", "not found in");
}

TEST(MakeRandomArgs, DryRunCountsTheRealParameters) {
  const std::pair<const char*, const char*> expected[] = {{"qwen2-vl-2b", "2.209 B parameters"},
                                                          {"qwen2-vl-7b", "8.291 B parameters"},
                                                          {"qwen2.5-vl-3b", "3.755 B parameters"}};
  for (auto [like, params] : expected) {
    const Result r = run_vlm(std::string("make-random --dry-run --out /tmp/unused --assets " VLM_TESTDATA " --like ") + like);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find(params), std::string::npos) << r.out;
  }
}

}  // namespace
