// `vlm check`: runs recorded fixture cases (case.json + PNGs +
// expected.safetensors) through the whole pipeline and compares every
// recorded tensor the engine produces.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "models/clip.h"
#include "models/model.h"

namespace vlm::runtime {

struct Tolerance {
  double atol = 1e-4, rtol = 1e-4;
};

struct CheckOptions {
  // Model tensors: fp32 math from bf16-exact weights reproduces HF's fp32 run to ~1e-5
  // (summation order), so 1e-4 + 1e-4·|b| leaves a 10x margin.
  Tolerance model;
  // pixel_values after our resampler. Bit-exact except for rounding in the normalise step.
  Tolerance pixels{1e-5, 0};
  bool verbose = false;
};

struct TensorReport {
  std::string name;
  double max_err = 0;   // max |a - b|
  double worst = 0;     // max |a-b| / (atol + rtol·|b|); > 1 fails
  bool ok = true;
  std::string note;
};

struct CaseReport {
  std::string name;
  bool ok = true;
  std::string error;  // pipeline error (not a mismatch)
  std::vector<TensorReport> tensors;
};

CaseReport check_case(const models::Model& m, const std::string& case_dir, const CheckOptions& opt);
// CLIP / SigLIP retrieval cases: pixel values, input ids, embeddings, similarity logits.
CaseReport check_dual_case(const models::DualEncoder& m, const std::string& case_dir, const CheckOptions& opt);

}  // namespace vlm::runtime
