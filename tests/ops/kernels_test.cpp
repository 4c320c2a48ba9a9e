// Every kernel set this CPU can run (portable, AVX-512) against the scalar reference, for every
// weight format, on shapes that hit the register-block, cache-block and K/N tails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/cpu/cpu.h"
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

struct KernelSets : ::testing::TestWithParam<const cpu::Kernels*> {
  void SetUp() override { cpu::use_kernels(GetParam()); }
  void TearDown() override { cpu::use_kernels(nullptr); }
};

// |a - b| <= tol · scale, where scale is the size of the dot products (sqrt(K) · |x| · |w|).
void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << what << " at " << i;
}

struct Shape {
  int64_t M, K, N;
};
const Shape kShapes[] = {{1, 64, 32}, {1, 67, 37}, {2, 300, 50}, {3, 33, 17}, {4, 130, 70}, {5, 67, 37},
                         {7, 300, 130}, {13, 600, 65}, {20, 64, 300}, {6, 1030, 16}};

TEST_P(KernelSets, NativeLinearAllDtypesMatchReference) {
  for (const Shape& s : kShapes) {
    auto x = randv(size_t(s.M * s.K), 1), w = randv(size_t(s.N * s.K), 2), bias = randv(size_t(s.N), 3);
    std::vector<uint16_t> wb(w.size()), wh(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      wb[i] = f32_to_bf16(w[i]);
      wh[i] = f32_to_f16(w[i]);
    }
    TensorView b(DType::F32, bias.data(), {s.N});
    for (auto W : {TensorView(DType::F32, w.data(), {s.N, s.K}), TensorView(DType::BF16, wb.data(), {s.N, s.K}),
                   TensorView(DType::F16, wh.data(), {s.N, s.K})}) {
      std::vector<float> y(size_t(s.M * s.N)), yr(y.size());
      linear(x.data(), s.M, s.K, W, &b, y.data());
      ref::linear(x.data(), s.M, s.K, W, &b, yr.data());
      expect_close(y, yr, 2e-5f * std::sqrt(float(s.K)), dtype_name(W.dtype));
      linear(x.data(), s.M, s.K, W, nullptr, y.data());
      ref::linear(x.data(), s.M, s.K, W, nullptr, yr.data());
      expect_close(y, yr, 2e-5f * std::sqrt(float(s.K)), dtype_name(W.dtype));
    }
  }
}

TEST_P(KernelSets, PackedFormatsMatchTheirReference) {
  for (const Shape& s : kShapes) {
    auto x = randv(size_t(s.M * s.K), 4), w = randv(size_t(s.N * s.K), 5, 0.05f), bias = randv(size_t(s.N), 6);
    std::vector<uint16_t> wb(w.size());
    for (size_t i = 0; i < w.size(); ++i) wb[i] = f32_to_bf16(w[i]);
    TensorView b(DType::BF16, wb.data(), {s.N});  // any N-prefix will do as a bias
    for (auto src : {TensorView(DType::BF16, wb.data(), {s.N, s.K}), TensorView(DType::F32, w.data(), {s.N, s.K})})
      for (LinearFormat f : {LinearFormat::Native, LinearFormat::BF16, LinearFormat::Q8, LinearFormat::Q4}) {
        auto P = pack_weight(src, f);
        std::vector<float> y(size_t(s.M * s.N)), yr(y.size());
        for (const TensorView* bp : std::vector<const TensorView*>{&b, nullptr}) {
          linear(x.data(), s.M, s.K, *P, bp, y.data());
          ref::linear(x.data(), s.M, s.K, *P, bp, yr.data());
          expect_close(y, yr, 2e-5f * std::sqrt(float(s.K)), linear_format_name(f));
        }
      }
  }
}

TEST_P(KernelSets, LinearGroupEqualsSeparateCalls) {
  for (int64_t M : {1, 3, 7}) {
    const int64_t K = 100;
    const int64_t Ns[] = {64, 37, 16};
    auto x = randv(size_t(M * K), 30);
    std::vector<std::vector<uint16_t>> w;
    std::vector<std::vector<float>> bias;
    for (int j = 0; j < 3; ++j) {
      auto f = randv(size_t(Ns[j] * K), 31 + uint32_t(j), 0.05f);
      w.emplace_back(f.size());
      for (size_t i = 0; i < f.size(); ++i) w.back()[i] = f32_to_bf16(f[i]);
      bias.push_back(randv(size_t(Ns[j]), 40 + uint32_t(j)));
    }
    for (LinearFormat f : {LinearFormat::Native, LinearFormat::BF16, LinearFormat::Q8, LinearFormat::Q4}) {
      std::vector<TensorView> views, bviews;
      std::vector<std::shared_ptr<PackedWeight>> packed;
      for (int j = 0; j < 3; ++j) {
        views.emplace_back(DType::BF16, w[size_t(j)].data(), std::initializer_list<int64_t>{Ns[j], K});
        bviews.emplace_back(DType::F32, bias[size_t(j)].data(), std::initializer_list<int64_t>{Ns[j]});
        packed.push_back(pack_weight(views.back(), f));
      }
      std::vector<std::vector<float>> y(3), ys(3);
      LinearJob jobs[3];
      for (int j = 0; j < 3; ++j) {
        y[size_t(j)].assign(size_t(M * Ns[j]), 0.0f);
        ys[size_t(j)].assign(size_t(M * Ns[j]), 0.0f);
        jobs[j] = LinearJob{f == LinearFormat::Native ? nullptr : packed[size_t(j)].get(), &views[size_t(j)],
                            j == 1 ? nullptr : &bviews[size_t(j)], y[size_t(j)].data()};
        linear(x.data(), M, K, *packed[size_t(j)], j == 1 ? nullptr : &bviews[size_t(j)], ys[size_t(j)].data());
      }
      linear_group(x.data(), M, K, jobs, 3);
      for (int j = 0; j < 3; ++j) EXPECT_EQ(y[size_t(j)], ys[size_t(j)]) << linear_format_name(f) << " job " << j;
    }
  }
}

// One attention problem with random inputs: mode 0 segments, 1 causal prefill, 2 causal rows at
// the end of a cache (a cached prefix before them).
struct AttnCase {
  int64_t n_q, n_kv;
  int heads, kv_heads, d;
  int mode;
};

struct AttnProblem {
  std::vector<float> q, k, v;
  std::vector<int32_t> cu;
  AttnArgs a;
  AttnProblem(const AttnCase& c, uint32_t seed)
      : q(randv(size_t(c.n_kv * c.heads * c.d), seed, 2.0f)),
        k(randv(size_t(c.n_kv * c.kv_heads * c.d), seed + 1)),
        v(randv(size_t(c.n_kv * c.kv_heads * c.d), seed + 2)),
        cu{0, int32_t(c.n_kv / 3), int32_t(c.n_kv / 3 + 5), int32_t(c.n_kv)} {
    a.q = q.data(), a.k = k.data(), a.v = v.data();
    a.n_q = c.n_q, a.n_kv = c.n_kv, a.q_stride = c.heads * c.d, a.kv_stride = c.kv_heads * c.d;
    a.heads = c.heads, a.kv_heads = c.kv_heads, a.d = c.d, a.scale = 1.0f / std::sqrt(float(c.d));
    if (c.mode == 0) a.cu_seqlens = cu.data(), a.n_seg = 3;
    if (c.mode >= 1) a.causal = true;
    if (c.mode == 2) a.q_pos0 = c.n_kv - c.n_q;
  }
  // The dispatched kernel with `bf16` allowed, and the reference with `ref_bf16`.
  void run(bool bf16, bool ref_bf16, std::vector<float>* o, std::vector<float>* orf) {
    o->assign(size_t(a.n_q * a.heads * a.d), 0.0f);
    orf->assign(o->size(), 0.0f);
    a.bf16 = bf16;
    a.out = o->data();
    attention(a);
    a.bf16 = ref_bf16;
    a.out = orf->data();
    ref::attention(a);
  }
};

TEST_P(KernelSets, AttentionMatchesReference) {
  const AttnCase cases[] = {{37, 37, 2, 2, 16, 0}, {100, 100, 3, 3, 80, 0}, {45, 45, 4, 2, 40, 1},
                            {70, 70, 12, 2, 128, 1}, {1, 133, 12, 2, 128, 2}, {3, 50, 4, 1, 24, 2}};
  for (const AttnCase& c : cases) {
    std::vector<float> o, orf;
    AttnProblem(c, 10).run(false, false, &o, &orf);
    expect_close(o, orf, 2e-6f, "attention");
  }
}

// AttnArgs::bf16 lets a kernel round q, k, v and the probabilities to bf16 (the AMX set does for
// n_q >= 16); the others stay exact. Shapes cover the head sizes of the towers (64 CLIP, 72 SigLIP,
// 80 Qwen ViT, 128 LLM, 256 the kernel's limit), partial 16-query and 64-key blocks, segments,
// causal prefill after a cached prefix, and GQA.
TEST_P(KernelSets, Bf16AttentionMatchesReference) {
  const AttnCase cases[] = {{100, 100, 3, 3, 80, 0}, {45, 45, 4, 2, 40, 1},   {70, 70, 12, 2, 128, 1},
                            {200, 200, 2, 2, 72, 0}, {150, 260, 4, 2, 64, 2}, {33, 97, 2, 1, 256, 2},
                            {16, 16, 1, 1, 16, 0},   {3, 50, 4, 1, 24, 2}};
  const bool rounds = std::string(GetParam()->name) == "avx512_amx";
  for (const AttnCase& c : cases) {
    std::vector<float> o, orf;
    AttnProblem(c, 30).run(true, rounds, &o, &orf);
    // Rounded: the kernel rounds each probability against the running maximum of its key block,
    // the reference against the row's final maximum; each is within 2^-9 relative, so outputs
    // (weighted means of v, |v| < 5) differ by well under 2^-8 · 5 = 0.02. Exact: as above.
    expect_close(o, orf, rounds ? 8e-3f : 2e-6f, "bf16 attention");
  }
}

TEST_P(KernelSets, NormsAndActivationsMatchReference) {
  for (int64_t dim : {16, 37, 1280}) {
    const int64_t rows = 5;
    auto x = randv(size_t(rows * dim), 20, 3.0f), w = randv(size_t(dim), 21), bb = randv(size_t(dim), 22);
    std::vector<uint16_t> wb(w.size()), bbb(bb.size());
    for (size_t i = 0; i < w.size(); ++i) wb[i] = f32_to_bf16(w[i]), bbb[i] = f32_to_bf16(bb[i]);
    const TensorView Ws[] = {TensorView(DType::F32, w.data(), {dim}), TensorView(DType::BF16, wb.data(), {dim})};
    const TensorView Bs[] = {TensorView(DType::F32, bb.data(), {dim}), TensorView(DType::BF16, bbb.data(), {dim})};
    for (int t = 0; t < 2; ++t) {
      std::vector<float> y(x.size()), yr(x.size());
      rmsnorm(x.data(), rows, dim, Ws[t], 1e-6f, y.data());
      ref::rmsnorm(x.data(), rows, dim, Ws[t], 1e-6f, yr.data());
      expect_close(y, yr, 2e-6f, "rmsnorm");
      layernorm(x.data(), rows, dim, Ws[t], Bs[t], 1e-6f, y.data());
      ref::layernorm(x.data(), rows, dim, Ws[t], Bs[t], 1e-6f, yr.data());
      expect_close(y, yr, 2e-6f, "layernorm");
    }
    for (Act a : {Act::Silu, Act::QuickGelu, Act::Gelu, Act::GeluTanh}) {
      auto y = x, yr = x;
      activate(a, y.data(), int64_t(y.size()));
      ref::activate(a, yr.data(), int64_t(yr.size()));
      expect_close(y, yr, 1e-6f, "activation");
    }
    std::vector<float> o(size_t(rows * (dim / 2))), orf(o.size());
    silu_mul(x.data(), x.data() + dim / 2, rows, dim / 2, dim, o.data());
    ref::silu_mul(x.data(), x.data() + dim / 2, rows, dim / 2, dim, orf.data());
    expect_close(o, orf, 1e-6f, "silu_mul");
  }
  // Extreme inputs stay finite and saturate like the reference.
  std::vector<float> big = {-200.0f, -90.0f, 0.0f, 90.0f, 200.0f}, bigr = big;
  activate(Act::Silu, big.data(), 5);
  ref::activate(Act::Silu, bigr.data(), 5);
  for (size_t i = 0; i < big.size(); ++i) EXPECT_NEAR(big[i], bigr[i], 1e-6f * (1 + std::fabs(bigr[i])));
}

INSTANTIATE_TEST_SUITE_P(Cpu, KernelSets, ::testing::ValuesIn(cpu::available_kernels()),
                         [](const auto& info) { return std::string(info.param->name); });

// Quantisation error against exact f32 math (the format's accuracy, not a kernel check):
// relative RMS error of y = x·Wᵀ for N(0, 1) activations and N(0, 0.02) weights.
// The SIMD packers write the same bytes as the scalar definition: N and K tails, an all-zero
// block, and blocks whose largest magnitude occurs twice with both signs (Q4 takes the first).
TEST_P(KernelSets, QuantisedPackingIsBitExact) {
  for (const auto [N, K] : {std::pair<int64_t, int64_t>{37, 67}, {48, 1536}, {5, 32}}) {
    auto w = randv(size_t(N * K), 40, 0.05f);
    for (int64_t i = 0; i < std::min<int64_t>(K, 32); ++i) w[size_t(i)] = 0.0f;  // row 0, block 0
    if (K >= 64 && N > 2) {
      w[size_t(2 * K + 33)] = -0.5f;  // row 2, block 1: -0.5 first, then +0.5
      w[size_t(2 * K + 40)] = 0.5f;
      w[size_t(1 * K + 35)] = 0.25f;  // row 1, block 1: +0.25 first
      w[size_t(1 * K + 50)] = -0.25f;
    }
    std::vector<uint16_t> wb(w.size());
    for (size_t i = 0; i < w.size(); ++i) wb[i] = f32_to_bf16(w[i]);
    const TensorView W(DType::BF16, wb.data(), {N, K});
    for (LinearFormat f : {LinearFormat::Q8, LinearFormat::Q4}) {
      auto got = pack_weight(W, f);
      cpu::use_kernels(cpu::portable_kernels());
      auto want = pack_weight(W, f);
      cpu::use_kernels(GetParam());
      ASSERT_EQ(got->data.size(), want->data.size());
      EXPECT_EQ(std::memcmp(got->data.data(), want->data.data(), want->data.size()), 0)
          << linear_format_name(f) << " N=" << N << " K=" << K;
    }
  }
}

TEST(LinearFormats, QuantisationErrorIsBounded) {
  const int64_t M = 4, K = 1536, N = 256;
  auto x = randv(size_t(M * K), 7), w = randv(size_t(N * K), 8, 0.02f);
  TensorView W(DType::F32, w.data(), {N, K});
  std::vector<float> yr(size_t(M * N)), y(yr.size());
  ref::linear(x.data(), M, K, W, nullptr, yr.data());
  const std::pair<LinearFormat, double> bounds[] = {
      {LinearFormat::BF16, 0.006}, {LinearFormat::Q8, 0.012}, {LinearFormat::Q4, 0.12}};
  for (auto [f, bound] : bounds) {
    auto P = pack_weight(W, f);
    linear(x.data(), M, K, *P, nullptr, y.data());
    double num = 0, den = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      num += double(y[i] - yr[i]) * (y[i] - yr[i]);
      den += double(yr[i]) * yr[i];
    }
    const double rel = std::sqrt(num / den);
    EXPECT_LT(rel, bound) << linear_format_name(f);
    std::printf("%s: relative RMS error %.5f\n", linear_format_name(f), rel);
  }
  // Bytes per weight of the packed layouts.
  EXPECT_EQ(pack_weight(W, LinearFormat::Q8)->bytes(), size_t(N * K / 32 * 34));
  EXPECT_EQ(pack_weight(W, LinearFormat::Q4)->bytes(), size_t(N * K / 32 * 18));
}

TEST(LinearFormats, Parse) {
  LinearFormat f;
  EXPECT_TRUE(parse_linear_format("q4", &f));
  EXPECT_EQ(f, LinearFormat::Q4);
  EXPECT_TRUE(parse_linear_format("native", &f));
  EXPECT_FALSE(parse_linear_format("fp8", &f));
}

}  // namespace
}  // namespace vlm::ops
