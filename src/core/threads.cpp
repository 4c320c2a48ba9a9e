#include "core/threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VLM_CPU_RELAX() _mm_pause()
#else
#define VLM_CPU_RELAX() std::this_thread::yield()
#endif

namespace vlm {
namespace {

// Decode calls parallel_for ~150 times per token with ~0.1-1 ms of work each; waking a worker
// through a condition variable costs tens of microseconds per call on a VM. So a worker spins a
// short while after each job, waiting for the next one, before it sleeps; the caller spins while
// the workers finish their parts. Either side falls back to the condition variable.
//
// No lost wake-ups: a sleeper increments `sleepers_` and then re-checks the job generation under
// `mu_`; a publisher stores the generation and then reads `sleepers_` (all seq_cst). In the single
// total order either the publisher sees the sleeper (and notifies under `mu_`), or the sleeper's
// re-check sees the new generation.
constexpr auto kWorkerSpin = std::chrono::microseconds(300);
constexpr auto kCallerSpin = std::chrono::microseconds(2000);

// CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (containers).
int available_cpus() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string quota, period;
  if (f >> quota >> period && quota != "max") {
    const double q = std::atof(quota.c_str()), p = std::atof(period.c_str());
    if (q > 0 && p > 0) n = std::min<long>(n, std::max<long>(1, long(std::ceil(q / p))));
  }
  return n > 0 ? int(n) : 1;
}

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return n_; }

  void resize(int n) {
    std::lock_guard<std::mutex> call(call_mu_);
    stop();
    n_ = std::max(1, n);
    // Spinning only pays when every thread has a CPU: with more threads than CPUs a spinner
    // takes the CPU from the thread it waits for (4 threads on 2 CPUs decoded 4x slower).
    spin_ = n_ <= available_cpus();
    quit_ = false;
    // The generation a worker starts from is read here, not in the new thread: a job published
    // before the thread first runs must still count as new to it.
    const uint64_t g0 = gen_.load();
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this, i, g0] { loop(i, g0); });
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t chunks = (n + grain - 1) / grain;
    const int parts = int(std::min<int64_t>(n_, chunks));
    if (parts <= 1 || in_pool_) {
      fn(0, n);
      return;
    }
    // One caller at a time owns the workers; a concurrent caller (another thread using the
    // library) runs its loop itself rather than waiting.
    std::unique_lock<std::mutex> call(call_mu_, std::try_to_lock);
    if (!call.owns_lock()) {
      fn(0, n);
      return;
    }
    fn_ = &fn;
    total_ = n;
    grain_ = grain;
    parts_ = parts;
    // Every worker acknowledges every job, even one with no part in it: the next job is then
    // published only after all workers are done reading this one's fields.
    pending_.store(n_ - 1);
    gen_.fetch_add(1);  // publishes the job (seq_cst: ordered before the sleepers_ read)
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_.notify_all();
    }
    do_part(0);
    wait_done();
    fn_ = nullptr;
  }

 private:
  void do_part(int p) {
    const int64_t chunks = (total_ + grain_ - 1) / grain_;
    const int64_t c0 = chunks * p / parts_, c1 = chunks * (p + 1) / parts_;
    const int64_t b = c0 * grain_, e = std::min(total_, c1 * grain_);
    in_pool_ = true;
    if (b < e) (*fn_)(b, e);
    in_pool_ = false;
  }

  void wait_done() {
    const auto until = std::chrono::steady_clock::now() + (spin_ ? kCallerSpin : std::chrono::microseconds(0));
    for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
      VLM_CPU_RELAX();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) {
        std::unique_lock<std::mutex> lk(mu_);
        caller_sleeping_.store(true);
        done_cv_.wait(lk, [this] { return pending_.load() == 0; });
        caller_sleeping_.store(false);
        return;
      }
    }
  }

  // Returns false when the pool is stopping.
  bool wait_job(uint64_t seen) {
    const auto until = std::chrono::steady_clock::now() + (spin_ ? kWorkerSpin : std::chrono::microseconds(0));
    for (int i = 0;; ++i) {
      if (gen_.load(std::memory_order_acquire) != seen) return true;
      if (quit_.load(std::memory_order_relaxed)) return false;
      VLM_CPU_RELAX();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) break;
    }
    std::unique_lock<std::mutex> lk(mu_);
    sleepers_.fetch_add(1);
    cv_.wait(lk, [&] { return quit_.load() || gen_.load() != seen; });
    sleepers_.fetch_sub(1);
    return !quit_.load();
  }

  void loop(int id, uint64_t seen) {
    for (;;) {
      if (!wait_job(seen)) return;
      ++seen;  // the caller publishes the next job only after this one is acknowledged
      if (id < parts_) do_part(id);
      if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int n_ = 1;
  bool spin_ = true;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // held by the caller that owns the workers
  std::mutex mu_;       // guards sleeping and waking only
  std::condition_variable cv_, done_cv_;
  // The job: written by the owning caller before gen_ is bumped, read by workers after they see it.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t total_ = 0, grain_ = 1;
  int parts_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeping_{false}, quit_{false};
  static thread_local bool in_pool_;
};

thread_local bool Pool::in_pool_ = false;

Pool& pool() {
  static Pool p(available_cpus());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n > 0 ? n : available_cpus()); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  pool().run(n, std::max<int64_t>(1, grain), fn);
}

}  // namespace vlm
