#include "core/safetensors.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <string>
#include <vector>

#include "core/threads.h"

namespace vlm {
namespace {

std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(n >> (8 * i));
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

TEST(Safetensors, ParsesValidFile) {
  auto b = make_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"__metadata__":{"format":"pt"}})", 24);
  float* f = reinterpret_cast<float*>(b.data() + b.size() - 24);
  for (int i = 0; i < 6; ++i) f[i] = float(i);
  auto st = SafetensorsFile::parse(b);
  ASSERT_TRUE(st.ok()) << st.error().message;
  const TensorView* t = (*st)->find("a");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->same_shape({2, 3}));
  EXPECT_EQ(to_f32(*t)[5], 5.0f);
  EXPECT_EQ((*st)->metadata().at("format"), "pt");
}

struct BadCase {
  const char* what;
  std::string header;
  size_t data;
  const char* expect;  // substring of the error
};

TEST(Safetensors, RejectsCorruptHeaders) {
  const BadCase cases[] = {
      {"not json", "{not json", 0, "not a JSON object"},
      {"offsets outside", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, "outside the data section"},
      {"size mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "does not match shape"},
      {"bad dtype", R"({"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]}})", 4, "unsupported dtype"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "non-negative"},
      {"reversed", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4, "outside"},
      {"overflow", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4, "overflows"},
      {"array", "[1,2]", 0, "not a JSON object"},
  };
  for (const auto& c : cases) {
    auto b = make_file(c.header, c.data);
    auto st = SafetensorsFile::parse(b);
    ASSERT_FALSE(st.ok()) << c.what;
    EXPECT_NE(st.error().message.find(c.expect), std::string::npos) << c.what << ": " << st.error().message;
  }
}

TEST(Safetensors, RejectsTruncatedAndHugeHeaderLength) {
  std::vector<uint8_t> tiny = {1, 2, 3};
  EXPECT_FALSE(SafetensorsFile::parse(tiny).ok());
  auto b = make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
  b[7] = 0x7f;  // header length claims ~9e18 bytes
  auto st = SafetensorsFile::parse(b);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("header length"), std::string::npos);
  // Cut the file inside the header.
  auto c = make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
  c.resize(20);
  EXPECT_FALSE(SafetensorsFile::parse(c).ok());
}

TEST(Safetensors, MissingFileIsAnError) {
  auto st = SafetensorsFile::open("/nonexistent/model.safetensors");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("cannot open"), std::string::npos);
}

TEST(WeightStore, ShapeAndNameChecks) {
  auto ws = WeightStore::open_dir(std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/model");
  ASSERT_TRUE(ws.ok()) << ws.error().message;
  EXPECT_TRUE(ws->get("model.norm.weight", {32}).ok());
  auto bad = ws->get("model.norm.weight", {64});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("has shape [32], expected [64]"), std::string::npos);
  EXPECT_FALSE(ws->get("model.does_not_exist", {1}).ok());
}

TEST(WeightStore, CopyIntoMemoryKeepsEveryTensorBitExact) {
  const std::string dir = std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/model";
  auto mapped = WeightStore::open_dir(dir);
  auto copied = WeightStore::open_dir(dir);
  ASSERT_TRUE(mapped.ok() && copied.ok());
  std::vector<double> seen;
  ASSERT_TRUE(copied->copy_into_memory([&](double f) { seen.push_back(f); }).ok());
  EXPECT_TRUE(copied->in_memory());
  EXPECT_FALSE(mapped->in_memory());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), 1.0);
  // Move the store (as the loader does): views must keep pointing at the copy.
  WeightStore moved = std::move(copied.value());
  ASSERT_EQ(moved.names(), mapped->names());
  for (const std::string& name : mapped->names()) {
    const TensorView* a = mapped->find(name);
    const TensorView* b = moved.find(name);
    ASSERT_NE(b, nullptr);
    EXPECT_NE(a->data, b->data) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data) % 64, 0u) << name;
    EXPECT_EQ(a->dtype, b->dtype);
    EXPECT_EQ(a->shape_str(), b->shape_str());
    ASSERT_EQ(a->nbytes(), b->nbytes());
    EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes()), 0) << name;
  }
  // A second call is a no-op.
  EXPECT_TRUE(moved.copy_into_memory().ok());
}

TEST(WeightStore, ReleasedPagesReadBackTheSameBytes) {
  auto ws = WeightStore::open_dir(std::string(VLM_TESTDATA) + "/fixtures/qwen2_vl/model");
  ASSERT_TRUE(ws.ok());
  const TensorView* t = ws->find("model.embed_tokens.weight");
  ASSERT_NE(t, nullptr);
  const std::vector<float> before = to_f32(*t);
  ws->release(*t);
  EXPECT_EQ(to_f32(*t), before);
  // A view outside the store's files is left alone (releasing it would zero anonymous memory).
  std::vector<float> heap(4096, 1.5f);
  ws->release(TensorView(DType::F32, heap.data(), {int64_t(heap.size())}));
  EXPECT_EQ(heap[100], 1.5f);
}

TEST(Threads, ParallelForCoversRangeOnce) {
  std::vector<int> hits(1000, 0);
  parallel_for(1000, 7, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
  });
  for (int h : hits) ASSERT_EQ(h, 1);
}

// The pool under the patterns the engine produces: many short calls back to back (decode), calls
// with fewer chunks than threads, nested calls, several outside threads calling at once (the
// server's request threads), and resizes in between. Run under -DVLM_TSAN=ON to check the
// hand-off; here it checks that every index is covered exactly once and nothing hangs.
TEST(Threads, PoolStress) {
  const int saved = num_threads();
  for (int threads : {2, 3, 1, 4}) {
    set_num_threads(threads);
    std::atomic<int64_t> total{0};
    auto work = [&](int seed) {
      for (int it = 0; it < 400; ++it) {
        const int64_t n = 1 + (it * 7 + seed) % 37;
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        parallel_for(n, 1 + it % 3, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            hits[size_t(i)]++;
            if (it % 50 == 0) parallel_for(3, 1, [&](int64_t, int64_t) { total++; });  // nested: serial
          }
        });
        for (auto& h : hits) ASSERT_EQ(h.load(), 1);
        total += n;
      }
    };
    std::vector<std::thread> callers;
    for (int t = 0; t < 3; ++t) callers.emplace_back(work, t);
    work(7);
    for (auto& c : callers) c.join();
    EXPECT_GT(total.load(), 0);
  }
  set_num_threads(saved);
}

TEST(Dtype, Bf16RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  // 1 + 2^-8 is exactly half way between two bf16 values: ties to even (1.0).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(f16_to_f32(f32_to_f16(0.333251953125f)), 0.333251953125f);
  EXPECT_EQ(f16_to_f32(f32_to_f16(65504.0f)), 65504.0f);
}

}  // namespace
}  // namespace vlm
