// Internal: addressing of the quantised panel layout (see PackedWeight in ops.h) and the
// activation quantisation every int8 kernel uses.
#pragma once
#include "ops/ops.h"

namespace vlm::ops::quant {

int64_t block_bytes(LinearFormat f);  // bytes of one 16x32 panel block (512 for Q8, 256 for Q4)
int64_t panels(const PackedWeight& w);
const uint8_t* quants(const PackedWeight& w, int64_t panel, int64_t block);
const uint16_t* scales(const PackedWeight& w, int64_t panel, int64_t block);  // 16 f16, one per row

}  // namespace vlm::ops::quant
