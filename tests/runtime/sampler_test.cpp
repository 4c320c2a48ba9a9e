// Logits processing in transformers' order and semantics.
#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

namespace vlm::runtime {
namespace {

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  std::vector<float> l = {0.5f, 2.0f, 2.0f, -1.0f};
  Sampler s(SamplingParams{});
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositivesAndMultipliesNegatives) {
  std::vector<float> l = {2.0f, -2.0f, 1.9f, 0.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  const int32_t hist[] = {0, 1, 0};  // each id once, however often it appears
  EXPECT_EQ(s.sample(l, hist), 2);   // 2.0 -> 1.0 loses to 1.9
  EXPECT_FLOAT_EQ(l[0], 1.0f);
  EXPECT_FLOAT_EQ(l[1], -4.0f);
  EXPECT_FLOAT_EQ(l[2], 1.9f);
}

TEST(Sampler, TopKKeepsTiesAtTheKthValue) {
  SamplingParams p;
  p.do_sample = true;
  p.top_k = 2;
  std::map<int, int> seen;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<float> l = {1.0f, 3.0f, 1.0f, 3.0f, 3.0f, -5.0f};
    seen[s.sample(l, {})]++;
  }
  // Three tokens tie at the 2nd largest value: all three survive, nothing else does.
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[3], 0);
  EXPECT_GT(seen[4], 0);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixAboveTheMass) {
  // Probabilities 0.5, 0.3, 0.2 (exactly, via logs): top_p 0.7 keeps {0, 1}; 0.5 keeps {0} only... and
  // HF keeps a token whose preceding mass is below top_p, so 0.5 keeps {0} since 0.5 is not < 0.5.
  const std::vector<float> base = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  for (auto [top_p, allowed] : std::vector<std::pair<float, std::set<int>>>{{0.7f, {0, 1}}, {0.5f, {0}}, {0.81f, {0, 1, 2}}}) {
    SamplingParams p;
    p.do_sample = true;
    p.top_k = 0;
    p.top_p = top_p;
    std::set<int> seen;
    for (uint64_t seed = 0; seed < 300; ++seed) {
      p.seed = seed;
      Sampler s(p);
      std::vector<float> l = base;
      seen.insert(s.sample(l, {}));
    }
    EXPECT_EQ(seen, allowed) << "top_p " << top_p;
  }
}

TEST(Sampler, SeededSamplingIsReproducibleAndFollowsTheDistribution) {
  SamplingParams p;
  p.do_sample = true;
  p.top_k = 0;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p), b(p);
  std::vector<float> l = {0.0f, std::log(3.0f)};  // p = 0.25, 0.75
  int ones = 0;
  for (int i = 0; i < 4000; ++i) {
    std::vector<float> x = l, y = l;
    const int32_t ta = a.sample(x, {}), tb = b.sample(y, {});
    ASSERT_EQ(ta, tb);
    ones += ta;
  }
  // Binomial(4000, 0.75): sd ~ 27; 6 sd either side.
  EXPECT_NEAR(ones, 3000, 165);
}

}  // namespace
}  // namespace vlm::runtime
