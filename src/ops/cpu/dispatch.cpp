// Run-time choice of the kernel set: avx512-amx > avx512 > avx2 > portable
// (VLM_ISA=portable|avx2|avx512 caps it).
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

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

// AMX: CPUID.(7,0).EDX bits 22 (bf16) and 24 (tile), and the kernel's permission to use the tile
// state (Linux asks each process to request it).
bool cpu_has_amx() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!((d >> 22) & 1) || !((d >> 24) & 1)) return false;
  static const bool granted = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
  return granted;
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

const Kernels* best() {
  const char* want = std::getenv("VLM_ISA");
  if (want && std::strcmp(want, "portable") == 0) return portable_kernels();
  if (!cpu_has_avx2()) return portable_kernels();
  if (!cpu_has_avx512() || (want && std::strcmp(want, "avx2") == 0)) return avx2_kernels();
  if (want && std::strcmp(want, "avx512") == 0) return avx512_kernels();
  return cpu_has_amx() ? avx512_amx_kernels() : avx512_kernels();
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
  if (cpu_has_avx2()) v.push_back(avx2_kernels());
  if (cpu_has_avx512()) v.push_back(avx512_kernels());
  if (cpu_has_avx512() && cpu_has_amx()) v.push_back(avx512_amx_kernels());
  return v;
}

void use_kernels(const Kernels* k) { g_forced.store(k); }

}  // namespace vlm::ops::cpu
