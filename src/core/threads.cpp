#include "core/threads.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace vlm {
namespace {

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return n_; }

  void resize(int n) {
    stop();
    n_ = std::max(1, n);
    quit_ = false;
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this, i] { loop(i); });
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t chunks = (n + grain - 1) / grain;
    const int parts = int(std::min<int64_t>(n_, chunks));
    if (parts <= 1 || in_pool_) {
      fn(0, n);
      return;
    }
    std::unique_lock<std::mutex> lk(mu_);
    fn_ = &fn;
    total_ = n;
    grain_ = grain;
    parts_ = parts;
    pending_ = parts - 1;
    ++gen_;
    lk.unlock();
    cv_.notify_all();
    do_part(0);
    lk.lock();
    done_cv_.wait(lk, [this] { return pending_ == 0; });
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

  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return quit_ || gen_ != seen; });
      if (quit_) return;
      seen = gen_;
      if (id >= parts_) continue;
      lk.unlock();
      do_part(id);
      lk.lock();
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int n_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t total_ = 0, grain_ = 1;
  int parts_ = 0, pending_ = 0;
  uint64_t gen_ = 0;
  bool quit_ = false;
  static thread_local bool in_pool_;
};

thread_local bool Pool::in_pool_ = false;

int default_threads() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n > 0 ? n : default_threads()); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  pool().run(n, std::max<int64_t>(1, grain), fn);
}

}  // namespace vlm
