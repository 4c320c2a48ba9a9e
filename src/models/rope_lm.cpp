#include "models/rope_lm.h"

#include "models/qwen_rope.h"

namespace vlm::models {

void RopeLM::prefill(Session& s, const std::vector<int32_t>& ids, float* h,
                     const std::vector<std::array<int64_t, 3>>& pos, int64_t rope_delta, std::vector<float>* logits,
                     nn::Trace* trace, const std::function<void(int, float*, int64_t)>& after_layer) const {
  const nn::DecoderConfig& c = dec.cfg;
  const int64_t L = int64_t(ids.size());
  std::vector<std::array<int64_t, 3>> linear;
  const std::array<int64_t, 3>* p = pos.data();
  if (pos.empty()) {
    linear.resize(size_t(L));
    for (int64_t i = 0; i < L; ++i) linear[size_t(i)] = {i, i, i};
    p = linear.data();
  }
  VLM_CHECK(pos.empty() || int64_t(pos.size()) == L, "%zu positions for %lld tokens", pos.size(), (long long)L);
  std::vector<float> cos, sin;
  mrope_tables(p, L, c.head_dim, theta, section, interleaved, &cos, &sin);
  s.cache.reset(int(dec.layers.size()), int64_t(c.kv_heads) * c.head_dim);
  dec.forward(h, L, cos.data(), sin.data(), s.cache, trace, after_layer);
  s.next_pos = L + rope_delta;
  s.tokens = ids;
  logits->resize(size_t(c.vocab));
  dec.logits(h + (L - 1) * c.hidden, logits->data());
}

void RopeLM::decode(Session& s, int32_t token, std::vector<float>* logits) const {
  const nn::DecoderConfig& c = dec.cfg;
  VLM_CHECK(token >= 0 && token < c.vocab, "token %d outside the vocabulary", token);
  std::vector<float> h(static_cast<size_t>(c.hidden));
  dec.embed_tokens(&token, 1, h.data());
  const std::array<int64_t, 3> pos{s.next_pos, s.next_pos, s.next_pos};
  std::vector<float> cos, sin;
  mrope_tables(&pos, 1, c.head_dim, theta, section, interleaved, &cos, &sin);
  dec.forward(h.data(), 1, cos.data(), sin.data(), s.cache, nullptr);
  ++s.next_pos;
  s.tokens.push_back(token);
  logits->resize(size_t(c.vocab));
  dec.logits(h.data(), logits->data());
}

}  // namespace vlm::models
