// Hugging Face `tokenizer.json` tokenizers (byte-level BPE as in Qwen,
// SentencePiece-style BPE with byte fallback as in Llama/Mistral/LLaVA, CLIP's
// BPE), encoding and decoding exactly as HF `tokenizers` + transformers do.
// The stages are chosen from what tokenizer.json declares, not from model names.
#pragma once
#include "core/status.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vlm::text {

class Tokenizer {
 public:
  // dir holds tokenizer.json (+ optional tokenizer_config.json). Clear error for a missing/corrupt file.
  static Expected<std::unique_ptr<Tokenizer>> load(const std::string& dir);
  // Same, from the files' contents (config_json may be empty).
  static Expected<std::unique_ptr<Tokenizer>> from_json(std::string_view tokenizer_json,
                                                        std::string_view config_json = {});
  virtual ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: apply the post-processor (BOS/EOS) as HF's add_special_tokens=True does.
  // Special/added tokens in the text are always matched (split_special_tokens=false).
  // Invalid UTF-8 in `text` is replaced by U+FFFD first.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  // Ids outside the vocabulary are skipped, as HF does.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  int32_t token_to_id(std::string_view token) const;  // -1 if unknown
  std::string id_to_token(int32_t id) const;          // "" if out of range
  bool is_special(int32_t id) const;
  int32_t vocab_size() const;  // max id + 1 (the model config's embedding rows may be more)
  // From tokenizer_config.json (bos_token, ...); without it, bos/eos are what the
  // post-processor puts before/after the text. -1 if none. Generation usually
  // stops on more ids than eos_id() (generation_config.json's eos_token_id list).
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  // Ids of the added tokens flagged special (what skip_special drops).
  std::vector<int32_t> special_ids() const;

 private:
  friend class StreamDecoder;
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  // decode() that also tells whether the text ends in a truncated character.
  std::string decode_impl(std::span<const int32_t> ids, bool skip_special, bool& truncated_tail) const;
  std::unique_ptr<Impl> impl_;
};

// Incremental decoding for streaming output: feed one id at a time, get back the new complete text.
// Text is held back while it ends in a character whose remaining bytes may come with later
// tokens, so a character split across tokens is printed once, whole (a U+FFFD that the model
// really produced is printed at once). The pieces add up to decode(all ids). The tokenizer must
// outlive the decoder.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = true);
  std::string push(int32_t id);
  // Whatever is still held back (possibly with U+FFFD for a truncated char); resets the state.
  std::string flush();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // context tokens followed by tokens not yet printed
  size_t context_ = 0;        // how many leading ids_ were printed already
  std::string prefix_;        // the part of decode(ids_) printed already
  int truncated_pushes_ = 0;  // consecutive pushes that left a truncated character
};

}  // namespace vlm::text
