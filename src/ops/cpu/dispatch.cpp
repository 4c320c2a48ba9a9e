// Run-time choice of the kernel set.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "ops/cpu/cpu.h"

namespace vlm::ops::cpu {
namespace {

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

const Kernels* best() {
  const char* want = std::getenv("VLM_ISA");
  const Kernels* a = cpu_has_avx512() ? avx512_kernels() : nullptr;
  if (want && std::strcmp(want, "portable") == 0) return portable_kernels();
  return a ? a : portable_kernels();
}

std::atomic<const Kernels*> g_forced{nullptr};

}  // namespace

const Kernels& kernels() {
  if (const Kernels* f = g_forced.load(std::memory_order_relaxed)) return *f;
  static const Kernels* k = best();
  return *k;
}

std::vector<const Kernels*> available_kernels() {
  std::vector<const Kernels*> v{portable_kernels()};
  if (cpu_has_avx512() && avx512_kernels()) v.push_back(avx512_kernels());
  return v;
}

void use_kernels(const Kernels* k) { g_forced.store(k); }

}  // namespace vlm::ops::cpu
