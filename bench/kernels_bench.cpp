// Kernel benchmarks: every weight format on the Qwen2-VL-2B shapes, side by side in one run.
// Counters: GB/s of weight bytes read (matrix-vector, the decode case) and GFLOP/s (matrix-matrix,
// the ViT/prefill case). BM_ReadBandwidth is the yardstick for the first, measured in the same run.
//   cmake -S . -B build-perf -G Ninja -DVLM_BUILD_BENCH=ON && cmake --build build-perf --target vlm_kernels_bench
//   ./build-perf/vlm_kernels_bench --benchmark_min_time=0.5 --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/threads.h"
#include "ops/cpu/cpu.h"
#include "ops/ops.h"
#ifdef VLM_HAVE_DNNL
#include <dnnl.hpp>
#endif

namespace vlm::ops {
namespace {

std::vector<uint16_t> random_bf16(size_t n, float scale, uint32_t seed) {
  std::vector<uint16_t> v(n);
  uint64_t s = 0x9E3779B97F4A7C15ull ^ seed;
  for (auto& x : v) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    const float u = float(int64_t(s >> 40) - (1 << 23)) / float(1 << 23);  // uniform in [-1, 1)
    x = f32_to_bf16(u * scale * 1.7320508f);
  }
  return v;
}

std::vector<float> random_f32(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// One weight per (format, N, K), kept across benchmarks.
struct Weight {
  std::vector<uint16_t> raw;
  std::shared_ptr<PackedWeight> packed;
};
Weight& weight(LinearFormat f, int64_t N, int64_t K) {
  static std::vector<std::tuple<LinearFormat, int64_t, int64_t, std::unique_ptr<Weight>>> cache;
  for (auto& [ff, n, k, w] : cache)
    if (ff == f && n == N && k == K) return *w;
  auto w = std::make_unique<Weight>();
  w->raw = random_bf16(size_t(N * K), 0.02f, uint32_t(N * 31 + K));
  w->packed = pack_weight(TensorView(DType::BF16, w->raw.data(), {N, K}), f);
  cache.emplace_back(f, N, K, std::move(w));
  return *std::get<3>(cache.back());
}

void BM_Linear(benchmark::State& st) {
  const auto f = LinearFormat(st.range(0));
  const int64_t M = st.range(1), K = st.range(2), N = st.range(3);
  Weight& w = weight(f, N, K);
  auto x = random_f32(size_t(M * K), 1);
  std::vector<float> y(size_t(M * N));
  for (auto _ : st) {
    linear(x.data(), M, K, *w.packed, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetLabel(std::string(linear_format_name(f)) + " " + cpu::kernels().name);
  st.counters["GB/s"] = benchmark::Counter(double(w.packed->bytes()), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void LinearArgs(benchmark::internal::Benchmark* b) {
  for (int f = 0; f < 4; ++f) {
    b->Args({f, 1, 1536, 8960});   // decode: LLM gate/up
    b->Args({f, 1, 8960, 1536});   // decode: LLM down
    b->Args({f, 391, 1536, 8960}); // prefill of the image tokens
    b->Args({f, 1564, 1280, 3840}); // ViT fused qkv over 1564 patches
  }
  b->ArgNames({"fmt", "M", "K", "N"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_Linear)->Apply(LinearArgs);

void BM_ReadBandwidth(benchmark::State& st) {
  double gbs = 0;
  for (auto _ : st) gbs = probe_read_bandwidth(size_t(512) << 20, 3);
  st.counters["GB/s"] = gbs;
}
BENCHMARK(BM_ReadBandwidth)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_Attention(benchmark::State& st) {
  const int64_t nq = st.range(0), nkv = st.range(1);
  const int heads = int(st.range(2)), kvh = int(st.range(3)), d = int(st.range(4));
  const bool causal = st.range(5) != 0;
  const auto sets = cpu::available_kernels();
  if (size_t(st.range(6)) >= sets.size()) return st.SkipWithError("kernel set not available on this CPU");
  cpu::use_kernels(sets[size_t(st.range(6))]);
  const bool bf16 = st.range(7) != 0;
  auto q = random_f32(size_t(nq * heads * d), 2), k = random_f32(size_t(nkv * kvh * d), 3),
       v = random_f32(size_t(nkv * kvh * d), 4);
  std::vector<float> o(size_t(nq * heads * d));
  int32_t cu[2] = {0, int32_t(nkv)};
  AttnArgs a;
  a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = o.data();
  a.n_q = nq, a.n_kv = nkv, a.q_stride = heads * d, a.kv_stride = kvh * d;
  a.heads = heads, a.kv_heads = kvh, a.d = d, a.scale = 1.0f / std::sqrt(float(d));
  if (causal) {
    a.causal = true;
    a.q_pos0 = nkv - nq;
  } else {
    a.cu_seqlens = cu, a.n_seg = 1;
  }
  a.bf16 = bf16;
  for (auto _ : st) {
    attention(a);
    benchmark::DoNotOptimize(o.data());
  }
  const double pairs = causal ? double(nq) * (nkv - nq) + double(nq) * (nq + 1) / 2 : double(nq) * nkv;
  st.counters["GFLOP/s"] = benchmark::Counter(4.0 * pairs * heads * d / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(cpu::kernels().name);
  cpu::use_kernels(nullptr);
}
// isa: index into available_kernels(): 0 portable, 1 avx2, 2 avx512, 3 avx512_amx (each shape with
// each set this CPU has, side by side); bf16: 1 allows the rounded bf16 kernel (AttnArgs::bf16:
// AMX tiles in the avx512_amx set).
BENCHMARK(BM_Attention)
    ->ArgsProduct({{1564}, {1564}, {16}, {16}, {80}, {0}, {0, 1, 2, 3}, {0, 1}})  // ViT full attention, 640x488 image
    ->ArgsProduct({{391}, {420}, {12}, {2}, {128}, {1}, {0, 1, 2, 3}, {0, 1}})    // LLM prefill of the image tokens
    ->ArgsProduct({{1}, {512}, {12}, {2}, {128}, {1}, {0, 1, 2}, {0}})        // LLM decode step at position 512
    ->ArgNames({"nq", "nkv", "H", "KVH", "d", "causal", "isa", "bf16"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

#ifdef VLM_HAVE_DNNL
// oneDNN matmul on the same shapes: f32 (exact) and bf16 (activations rounded), weights [K, N]
// pre-transposed so it picks its blocked layout once (as a load-time repack would).
void BM_OneDnnMatmul(benchmark::State& st) {
  using namespace dnnl;
  const bool bf16 = st.range(0) != 0;
  const int64_t M = st.range(1), K = st.range(2), N = st.range(3);
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const auto dt = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  memory::desc a_md({M, K}, dt, memory::format_tag::ab), c_md({M, N}, memory::data_type::f32, memory::format_tag::ab);
  memory::desc b_any({K, N}, dt, memory::format_tag::any), b_plain({K, N}, dt, memory::format_tag::ba);
  matmul::primitive_desc pd(matmul::desc(a_md, b_any, c_md), eng);
  memory a_mem(a_md, eng), c_mem(c_md, eng), b_src(b_plain, eng), b_mem(pd.weights_desc(), eng);
  auto xs = random_f32(size_t(M * K), 5);
  auto ws = random_bf16(size_t(N * K), 0.02f, 6);
  if (bf16) {
    auto* pa = static_cast<uint16_t*>(a_mem.get_data_handle());
    for (size_t i = 0; i < xs.size(); ++i) pa[i] = f32_to_bf16(xs[i]);
    std::memcpy(b_src.get_data_handle(), ws.data(), ws.size() * 2);
  } else {
    std::memcpy(a_mem.get_data_handle(), xs.data(), xs.size() * 4);
    auto* pb = static_cast<float*>(b_src.get_data_handle());
    for (size_t i = 0; i < ws.size(); ++i) pb[i] = bf16_to_f32(ws[i]);
  }
  reorder(b_src, b_mem).execute(s, b_src, b_mem);
  matmul mm(pd);
  for (auto _ : st) {
    mm.execute(s, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    s.wait();
  }
  st.SetLabel(bf16 ? "onednn bf16" : "onednn f32");
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_OneDnnMatmul)
    ->Args({0, 391, 1536, 8960})
    ->Args({1, 391, 1536, 8960})
    ->Args({0, 1564, 1280, 3840})
    ->Args({1, 1564, 1280, 3840})
    ->ArgNames({"bf16", "M", "K", "N"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
#endif

}  // namespace
}  // namespace vlm::ops

// VLM_THREADS=n sets the worker count (e.g. 1, to match a single-threaded reference run).
int main(int argc, char** argv) {
  if (const char* t = std::getenv("VLM_THREADS")) vlm::set_num_threads(std::atoi(t));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
