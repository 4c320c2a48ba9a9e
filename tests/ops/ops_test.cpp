// Every dispatched op against its scalar reference, on random data.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/ops.h"
#include "ops/ref/ref.h"

namespace vlm::ops {
namespace {

std::vector<float> randv(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = f32_to_bf16(v[i]);
  return o;
}

// Summation order differs between kernels: allow a few ulps of the dot-product magnitude.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << "at " << i;
}

TEST(Ops, LinearMatchesReferenceAllDtypes) {
  const int64_t M = 5, K = 67, N = 37;
  auto x = randv(size_t(M * K), 1), w = randv(size_t(N * K), 2), bias = randv(size_t(N), 3);
  auto wb = to_bf16(w);
  std::vector<uint16_t> wh(w.size());
  for (size_t i = 0; i < w.size(); ++i) wh[i] = f32_to_f16(w[i]);
  TensorView b(DType::F32, bias.data(), {N});
  for (auto W : {TensorView(DType::F32, w.data(), {N, K}), TensorView(DType::BF16, wb.data(), {N, K}),
                 TensorView(DType::F16, wh.data(), {N, K})}) {
    std::vector<float> y(size_t(M * N)), yr(size_t(M * N));
    linear(x.data(), M, K, W, &b, y.data());
    ref::linear(x.data(), M, K, W, &b, yr.data());
    expect_close(y, yr, 1e-5f);
    linear(x.data(), M, K, W, nullptr, y.data());
    ref::linear(x.data(), M, K, W, nullptr, yr.data());
    expect_close(y, yr, 1e-5f);
  }
}

TEST(Ops, NormsMatchReference) {
  const int64_t rows = 33, dim = 48;
  auto x = randv(size_t(rows * dim), 4), w = randv(size_t(dim), 5), bb = randv(size_t(dim), 6);
  TensorView W(DType::F32, w.data(), {dim}), B(DType::F32, bb.data(), {dim});
  std::vector<float> y(x.size()), yr(x.size());
  rmsnorm(x.data(), rows, dim, W, 1e-6f, y.data());
  ref::rmsnorm(x.data(), rows, dim, W, 1e-6f, yr.data());
  expect_close(y, yr, 1e-6f);
  layernorm(x.data(), rows, dim, W, B, 1e-6f, y.data());
  ref::layernorm(x.data(), rows, dim, W, B, 1e-6f, yr.data());
  expect_close(y, yr, 1e-6f);
  // The reference itself: a normalised row has unit RMS before the weight.
  std::vector<float> ones(size_t(dim), 1.0f);
  TensorView O(DType::F32, ones.data(), {dim});
  ref::rmsnorm(x.data(), 1, dim, O, 0.0f, yr.data());
  double ss = 0;
  for (int64_t i = 0; i < dim; ++i) ss += double(yr[size_t(i)]) * yr[size_t(i)];
  EXPECT_NEAR(ss / double(dim), 1.0, 1e-5);
}

TEST(Ops, ActivationsKnownValues) {
  std::vector<float> v = {1.0f};
  ref::activate(Act::Gelu, v.data(), 1);
  EXPECT_NEAR(v[0], 0.8413447f, 1e-6f);
  v = {1.0f};
  ref::activate(Act::QuickGelu, v.data(), 1);
  EXPECT_NEAR(v[0], 1.0f / (1.0f + std::exp(-1.702f)), 1e-7f);
  v = {1.0f};
  ref::activate(Act::GeluTanh, v.data(), 1);
  EXPECT_NEAR(v[0], 0.8411920f, 1e-6f);
  auto x = randv(1000, 7);
  for (Act a : {Act::Silu, Act::QuickGelu, Act::Gelu, Act::GeluTanh}) {
    auto y = x, yr = x;
    activate(a, y.data(), int64_t(y.size()));
    ref::activate(a, yr.data(), int64_t(yr.size()));
    expect_close(y, yr, 1e-6f);  // SIMD exp differs from std::exp by rounding

  }
}

TEST(Ops, SiluMulAndRope) {
  const int64_t rows = 9, I = 20;
  auto gu = randv(size_t(rows * 2 * I), 8);
  std::vector<float> o(size_t(rows * I)), orf(size_t(rows * I));
  silu_mul(gu.data(), gu.data() + I, rows, I, 2 * I, o.data());
  ref::silu_mul(gu.data(), gu.data() + I, rows, I, 2 * I, orf.data());
  expect_close(o, orf, 1e-6f);

  const int heads = 3, d = 8;
  auto x = randv(size_t(rows * heads * d), 9);
  std::vector<float> cs(size_t(rows * d)), sn(size_t(rows * d));
  for (int64_t r = 0; r < rows; ++r)
    for (int i = 0; i < d; ++i) {
      float ang = float(r) * std::pow(10000.0f, -float(i % (d / 2)) / float(d / 2));
      cs[size_t(r * d + i)] = std::cos(ang);
      sn[size_t(r * d + i)] = std::sin(ang);
    }
  auto y = x, yr = x;
  rope(y.data(), rows, heads * d, heads, d, cs.data(), sn.data());
  ref::rope(yr.data(), rows, heads * d, heads, d, cs.data(), sn.data());
  expect_close(y, yr, 1e-7f);
  // Rotation preserves each (i, i+d/2) pair's norm.
  for (int i = 0; i < d / 2; ++i) {
    float a = x[size_t(5 * heads * d + i)], b = x[size_t(5 * heads * d + i + d / 2)];
    float c = yr[size_t(5 * heads * d + i)], e = yr[size_t(5 * heads * d + i + d / 2)];
    EXPECT_NEAR(a * a + b * b, c * c + e * e, 1e-4f);
  }
}

TEST(Ops, AttentionSegmentsCausalGqa) {
  const int heads = 4, kv_heads = 2, d = 16;
  const int64_t n = 23;
  auto q = randv(size_t(n * heads * d), 10), k = randv(size_t(n * kv_heads * d), 11),
       v = randv(size_t(n * kv_heads * d), 12);
  int32_t cu[] = {0, 7, 16, 23};
  for (int mode = 0; mode < 3; ++mode) {
    AttnArgs a;
    a.q = q.data(); a.k = k.data(); a.v = v.data();
    a.n_q = a.n_kv = n;
    a.q_stride = heads * d; a.kv_stride = kv_heads * d;
    a.heads = heads; a.kv_heads = kv_heads; a.d = d;
    a.scale = 0.25f;
    if (mode == 0) { a.cu_seqlens = cu; a.n_seg = 3; }
    if (mode == 1) a.causal = true;
    if (mode == 2) {  // decode-style: the last 3 queries against all keys
      a.causal = true; a.n_q = 3; a.q_pos0 = n - 3; a.q = q.data() + (n - 3) * heads * d;
    }
    std::vector<float> o(size_t(a.n_q * heads * d)), orf(o.size());
    a.out = o.data();
    attention(a);
    a.out = orf.data();
    ref::attention(a);
    expect_close(o, orf, 1e-5f);
  }
  // With one key visible (causal row 0), attention returns that key's value exactly.
  AttnArgs a;
  a.q = q.data(); a.k = k.data(); a.v = v.data(); a.n_q = a.n_kv = 1;
  a.q_stride = heads * d; a.kv_stride = kv_heads * d; a.heads = heads; a.kv_heads = kv_heads; a.d = d;
  a.causal = true;
  std::vector<float> o(size_t(heads * d));
  a.out = o.data();
  ref::attention(a);
  for (int e = 0; e < d; ++e) EXPECT_FLOAT_EQ(o[size_t(e)], v[size_t(e)]);
}

}  // namespace
}  // namespace vlm::ops
