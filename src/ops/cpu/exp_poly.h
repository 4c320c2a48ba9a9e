// Constants of the vector e^x used by the SIMD kernel sets (Cephes expf): x is clamped to
// [kExpMin, kExpMax], n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two parts for accuracy),
// e^x = 2^n · (1 + r + r²·q(r)) with q the degree-5 polynomial below (Horner, highest first).
// About 1 ulp; very negative x gives ~0 and very positive x ~FLT_MAX, never NaN.
#pragma once

namespace vlm::ops::cpu {

inline constexpr float kExpMin = -87.3f, kExpMax = 88.7f;
inline constexpr float kExpLog2e = 1.44269504088896341f, kExpLn2Hi = 0.693359375f, kExpLn2Lo = -2.12194440e-4f;
inline constexpr float kExpQ[6] = {1.9875691500E-4f, 1.3981999507E-3f, 8.3334519073E-3f,
                                   4.1665795894E-2f, 1.6666665459E-1f, 5.0000001201E-1f};

}  // namespace vlm::ops::cpu
