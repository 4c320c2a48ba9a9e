// Optimised CPU kernels (multi-threaded; SIMD variants chosen at run time).
//
// linear.cpp / attention.cpp hold the drivers (threading, activation preparation) and the
// portable kernels; *_avx512.cpp hold the AVX-512 kernels (compiled with their own -m flags).
// dispatch.cpp picks the best kernel set this CPU supports (VLM_ISA=portable|avx512 overrides).
#pragma once
#include <vector>

#include "core/threads.h"

#include "ops/ops.h"

namespace vlm::ops::cpu {

// Keys [lo, hi) visible to query row i: its segment of cu_seqlens (all keys without segments),
// cut at the causal limit. `seg` is a cursor a thread keeps across its rows; it restarts when rows
// go backwards.
inline void attn_key_range(const AttnArgs& a, int64_t i, int* seg, int64_t* lo, int64_t* hi) {
  *lo = 0;
  *hi = a.n_kv;
  if (a.cu_seqlens) {
    if (a.cu_seqlens[*seg] > i) *seg = 0;
    while (*seg + 1 < a.n_seg && a.cu_seqlens[*seg + 1] <= i) ++*seg;
    *lo = a.cu_seqlens[*seg];
    *hi = a.cu_seqlens[*seg + 1];
  }
  if (a.causal && a.q_pos0 + i + 1 < *hi) *hi = a.q_pos0 + i + 1;
}

// fn(i, h, lo, hi, scratch) for every (query row i, head h) pair, split between threads; lo/hi
// as attn_key_range; scratch holds `scratch_floats` floats per thread.
template <class Fn>
void attn_for_each_row(const AttnArgs& a, size_t scratch_floats, Fn&& fn) {
  parallel_for(a.n_q * a.heads, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> scratch(scratch_floats);
    int seg = 0;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i = t / a.heads;
      const int h = int(t % a.heads);
      int64_t lo, hi;
      attn_key_range(a, i, &seg, &lo, &hi);
      fn(i, h, lo, hi, scratch.data());
    }
  });
}

void linear(const float* x, int64_t M, int64_t K, const TensorView& W, const TensorView* b, float* y);
void linear(const float* x, int64_t M, int64_t K, const PackedWeight& W, const TensorView* b, float* y);
void linear_group(const float* x, int64_t M, int64_t K, const LinearJob* jobs, int n_jobs);
void attention(const AttnArgs& a);

// Activations of one linear() call prepared for the int8 kernels (see ref::quantize_activations):
// q [M, kp] int8; d [M, nb] block scales; e [M, nb] = -c·(sum of the block's q), c = 128 for Q8
// (weights stored as q + 128) and 8 for Q4 (stored as q + 8), so the u8·s8 dot plus e is the
// signed dot product.
struct QuantActs {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const float* e = nullptr;
  int64_t kp = 0, nb = 0;
};

// One kernel set. The gemm kernels compute the columns [n0, n1) of y[M, ldy] for all M rows and
// add bias[n] (f32, may be null); the drivers split N between threads.
struct Kernels {
  const char* name;
  // Exact f32: x [M, K] f32, W [N, K] F32/F16/BF16.
  void (*gemm_f32)(const float* x, int64_t M, int64_t K, const TensorView& W, int64_t n0, int64_t n1,
                   const float* bias, float* y, int64_t ldy);
  // xb [M, ldx] bf16 (ldx even, >= K, zero padded), W [N, K] bf16.
  void (*gemm_bf16)(const uint16_t* xb, int64_t ldx, int64_t M, int64_t K, const uint16_t* W, int64_t n0,
                    int64_t n1, const float* bias, float* y, int64_t ldy);
  // Q8/Q4 on whole panels of 16 rows: [n0, n1) are multiples of 16 (n1 may be W.n).
  void (*gemm_quant)(const QuantActs& a, int64_t M, const PackedWeight& W, int64_t n0, int64_t n1,
                     const float* bias, float* y, int64_t ldy);
  // Fills q/d/e of QuantActs for x [M, K]; c as above.
  void (*quantize_rows)(const float* x, int64_t M, int64_t K, int64_t kp, int c, int8_t* q, float* d, float* e);
  void (*attention)(const AttnArgs& a);
  // Row-wise / element-wise ops on a slice (the drivers in ops.cpp split rows between threads).
  void (*activate)(Act act, float* x, int64_t n);
  void (*silu_mul)(const float* gate, const float* up, int64_t rows, int64_t I, int64_t stride, float* out);
  void (*rmsnorm)(const float* x, int64_t rows, int64_t dim, const TensorView& w, float eps, float* y);
  void (*layernorm)(const float* x, int64_t rows, int64_t dim, const TensorView& w, const TensorView& b, float eps,
                    float* y);
  // Sum of n 64-bit words (n a multiple of 64): the read loop of the bandwidth probe, with the
  // widest loads the kernels themselves use.
  uint64_t (*read_sum)(const uint64_t* p, int64_t n);
  // Load-time packing of bf16 weights into Q8/Q4: see quant::quantize_block_bf16_scalar (same bytes).
  void (*quantize_block_bf16)(LinearFormat f, const uint16_t* src, int64_t K, int rows, int nk, uint8_t* q,
                              uint16_t* s);
};
uint64_t read_sum_portable(const uint64_t* p, int64_t n);

const Kernels& kernels();                       // the set in use
std::vector<const Kernels*> available_kernels();  // every set this CPU can run (tests)
void use_kernels(const Kernels* k);              // tests: force one set (null: back to the best)

const Kernels* portable_kernels();
const Kernels* avx512_kernels();      // null when not compiled in
const Kernels* avx512_amx_kernels();  // avx512 with bf16 matrix products on AMX tiles
const Kernels* avx2_kernels();        // AVX2 + FMA + F16C (kernels_avx2.cpp)

// Portable kernels, also used by the SIMD sets for what they do not specialise.
void gemm_f32_portable(const float* x, int64_t M, int64_t K, const TensorView& W, int64_t n0, int64_t n1,
                       const float* bias, float* y, int64_t ldy);
void attention_portable(const AttnArgs& a);
void attention_avx512_entry(const AttnArgs& a);  // attention_avx512.cpp
// attention_amx_avx512.cpp: AMX tiles when a.bf16 and n_q >= 16, else attention_avx512_entry.
void attention_amx_entry(const AttnArgs& a);
// pack_avx512.cpp
void quantize_block_bf16_avx512(LinearFormat f, const uint16_t* src, int64_t K, int rows, int nk, uint8_t* q,
                                uint16_t* s);
// elementwise_avx512.cpp
void activate_avx512(Act act, float* x, int64_t n);
void silu_mul_avx512(const float* gate, const float* up, int64_t rows, int64_t I, int64_t stride, float* out);
void rmsnorm_avx512(const float* x, int64_t rows, int64_t dim, const TensorView& w, float eps, float* y);
void layernorm_avx512(const float* x, int64_t rows, int64_t dim, const TensorView& w, const TensorView& b, float eps,
                      float* y);

}  // namespace vlm::ops::cpu
