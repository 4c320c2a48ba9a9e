// Read-bandwidth probe: the yardstick decode speed is judged against.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/threads.h"
#include "ops/cpu/cpu.h"
#include "ops/ops.h"

namespace vlm::ops {

const char* kernel_set_name() { return cpu::kernels().name; }

double probe_read_bandwidth(size_t bytes, int passes, double* min_gbs, double* max_gbs) {
  const size_t n = bytes / 8 / 64 * 64;
  Buffer buf(n * 8);
  uint64_t* p = buf.as<uint64_t>();
  // 2 MB pages, as the packed weights get: the probe measures the best read rate, not TLB misses.
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + (2u << 20) - 1) & ~uintptr_t((2u << 20) - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + n * 8) & ~uintptr_t((2u << 20) - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
  parallel_for(int64_t(n), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = uint64_t(i) * 0x9E3779B97F4A7C15ull;
  });
  std::vector<double> gbs;
  std::atomic<uint64_t> sink{0};
  for (int r = 0; r < std::max(1, passes); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto read_sum = cpu::kernels().read_sum;
    parallel_for(int64_t(n), 1 << 16, [&](int64_t b, int64_t e) {
      sink.fetch_add(read_sum(p + b, e - b), std::memory_order_relaxed);
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gbs.push_back(double(n * 8) / sec / 1e9);
  }
  if (sink.load() == 42) gbs.push_back(0);  // keeps the sums alive
  std::sort(gbs.begin(), gbs.end());
  if (min_gbs) *min_gbs = gbs.front();
  if (max_gbs) *max_gbs = gbs.back();
  return gbs[gbs.size() / 2];
}

}  // namespace vlm::ops
