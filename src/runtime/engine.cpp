#include "runtime/engine.h"

#include <algorithm>
#include <chrono>

namespace vlm::runtime {

SamplingParams default_sampling(const models::Model& m) {
  const auto& g = m.generation();
  SamplingParams p;
  p.do_sample = g.do_sample;
  p.temperature = g.temperature;
  p.top_k = g.top_k;
  p.top_p = g.top_p;
  p.repetition_penalty = g.repetition_penalty;
  return p;
}

SamplingParams sampling_for(const models::Model& m, const SamplingOverrides& o) {
  SamplingParams p = default_sampling(m);
  if (o.temperature) {
    p.temperature = *o.temperature;
    p.do_sample = *o.temperature > 0;
  }
  if (o.top_p) p.top_p = *o.top_p;
  if (o.top_k) p.top_k = *o.top_k;
  if (o.repetition_penalty) p.repetition_penalty = *o.repetition_penalty;
  if (o.seed) p.seed = *o.seed;
  return p;
}

Expected<GenerateResult> generate(const models::Model& m, const models::Prompt& prompt, const GenerateOptions& opt,
                                  const std::function<bool(const std::string&)>& on_text, nn::Trace* trace) {
  using clock = std::chrono::steady_clock;
  GenerateResult r;
  r.prompt_tokens = int64_t(prompt.ids.size());
  const std::vector<int32_t>& stops = opt.stop_ids.empty() ? m.generation().eos_ids : opt.stop_ids;
  models::Session s;
  std::vector<float> logits;
  auto t0 = clock::now();
  VLM_TRY_STATUS(m.prefill(s, prompt, &logits, trace));
  auto t1 = clock::now();
  r.prefill_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  Sampler sampler(opt.sampling);
  text::StreamDecoder stream(m.tokenizer(), /*skip_special=*/true);
  for (int i = 0; i < opt.max_new_tokens; ++i) {
    const int32_t tok = sampler.sample(logits, s.tokens);
    r.tokens.push_back(tok);
    if (std::find(stops.begin(), stops.end(), tok) != stops.end()) {
      r.stopped_by_eos = true;
      break;
    }
    std::string piece = stream.push(tok);
    r.text += piece;
    if (on_text && !piece.empty() && !on_text(piece)) break;
    if (i + 1 < opt.max_new_tokens) m.decode(s, tok, &logits);
  }
  std::string tail = stream.flush();
  r.text += tail;
  if (on_text && !tail.empty()) on_text(tail);
  r.decode_ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
  return r;
}

}  // namespace vlm::runtime
