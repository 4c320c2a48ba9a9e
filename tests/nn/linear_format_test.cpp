// nn::Linear in each weight format: packing at bind, the same result as the op it wraps, and a
// clear error for an unknown format.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "nn/layers.h"
#include "ops/ref/ref.h"

namespace vlm::nn {
namespace {

TEST(LinearFormat, PacksOnceAndComputesInItsFormat) {
  const int64_t out = 40, in = 96, M = 3;
  std::mt19937 g(1);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<uint16_t> w(size_t(out * in));
  for (auto& v : w) v = f32_to_bf16(d(g));
  std::vector<float> x(size_t(M * in));
  for (auto& v : x) v = d(g) * 20;
  const TensorView W(DType::BF16, w.data(), {out, in});
  for (const char* f : {"native", "bf16", "q8", "q4"}) {
    auto l = Linear::from_view(W, f);
    ASSERT_TRUE(l.ok()) << f;
    EXPECT_EQ(l->packed == nullptr, std::string(f) == "native") << f;
    std::vector<float> y(size_t(M * out)), yr(y.size());
    (*l)(x.data(), M, y.data());
    if (l->packed)
      ops::ref::linear(x.data(), M, in, *l->packed, nullptr, yr.data());
    else
      ops::ref::linear(x.data(), M, in, W, nullptr, yr.data());
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], yr[i], 1e-4f * (1 + std::fabs(yr[i]))) << f;
    EXPECT_GT(l->weight_bytes(), 0u);
  }
  EXPECT_LT(Linear::from_view(W, "q4")->weight_bytes(), Linear::from_view(W, "q8")->weight_bytes());
  EXPECT_LT(Linear::from_view(W, "q8")->weight_bytes(), Linear::from_view(W, "native")->weight_bytes());
  auto bad = Linear::from_view(W, "int3");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("unknown weight format 'int3'"), std::string::npos);
}

}  // namespace
}  // namespace vlm::nn
