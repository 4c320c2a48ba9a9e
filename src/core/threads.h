// A persistent thread pool: parallel_for splits [0, n) into contiguous
// chunks, one per thread, and the caller's thread does a share of the work.
#pragma once
#include <cstdint>
#include <functional>

namespace vlm {

// Number of threads used by parallel_for (default: the CPUs this process may use — its affinity
// mask, capped by a cgroup v2 CPU quota).
int num_threads();
void set_num_threads(int n);

// fn(begin, end) is called on disjoint ranges covering [0, n). Ranges are
// multiples of `grain` except the last. Nested calls run serially.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace vlm
