// Internal: addressing of the quantised panel layout (see PackedWeight in ops.h) and the
// activation quantisation every int8 kernel uses.
#pragma once
#include "ops/ops.h"

namespace vlm::ops::quant {

int64_t block_bytes(LinearFormat f);  // bytes of one 16x32 panel block (512 for Q8, 256 for Q4)
int64_t panels(const PackedWeight& w);
const uint8_t* quants(const PackedWeight& w, int64_t panel, int64_t block);
const uint16_t* scales(const PackedWeight& w, int64_t panel, int64_t block);  // 16 f16, one per row

// The definition of the formats: quantises 32 weights w into row r of a panel block (q) and its
// scale s[r]. Q8: d = f16(amax / 127), q = round_even(w / d) + 128. Q4: d = f16(v / -8) with v the
// first weight of largest magnitude, q = clamp(round_even(w / d) + 8, 0, 15). The SIMD packers
// must give the same bytes.
void quantize_block(LinearFormat f, const float* w, int r, uint8_t* q, uint16_t* s);
// All 16 rows of one panel block from bf16 weights: row r < rows at src + r * K with nk valid
// values (the rest 0), rows past `rows` all 0. Scalar: what cpu::Kernels::quantize_block_bf16 computes.
void quantize_block_bf16_scalar(LinearFormat f, const uint16_t* src, int64_t K, int rows, int nk, uint8_t* q,
                                uint16_t* s);

}  // namespace vlm::ops::quant
