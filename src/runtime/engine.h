// Generation: prefill once, then decode token by token with the sampler,
// streaming each piece of text as soon as it is complete UTF-8.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/model.h"
#include "runtime/sampler.h"

namespace vlm::runtime {

struct GenerateOptions {
  int max_new_tokens = 256;
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // empty: the model's generation_config eos ids
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (the stop token included if one was produced)
  std::string text;             // decoded without special tokens
  bool stopped_by_eos = false;
  double prefill_ms = 0, decode_ms = 0;
  int64_t prompt_tokens = 0;
};

// Sampling defaults from the checkpoint's generation_config.json.
SamplingParams default_sampling(const models::Model& m);

// Per-request changes to those defaults (CLI flags, API fields); an unset field keeps the
// default. A temperature also decides whether to sample: 0 is greedy.
struct SamplingOverrides {
  std::optional<float> temperature, top_p, repetition_penalty;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
};
SamplingParams sampling_for(const models::Model& m, const SamplingOverrides& o);

// on_text receives each newly completed piece of text; return false to stop early.
Expected<GenerateResult> generate(const models::Model& m, const models::Prompt& prompt, const GenerateOptions& opt,
                                  const std::function<bool(const std::string&)>& on_text = {},
                                  nn::Trace* trace = nullptr);

}  // namespace vlm::runtime
