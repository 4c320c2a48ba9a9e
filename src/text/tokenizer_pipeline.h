// The stages of a tokenizer.json around the model: normalizer, pre-tokenizer,
// post-processor and decoder, each built from its JSON description. Their
// behaviour mirrors HF tokenizers; offsets are not tracked since only ids and
// text are needed.
#pragma once
#include "core/status.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vlm::text {

// A piece of text on its way to the model. `at_start` says it begins at
// offset 0 of the caller's text (Metaspace's prepend_scheme "first" needs it).
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` with their finer split; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // HF's decode_chain: token strings in, token strings out; the caller joins.
  // The stages that turn bytes into text set `truncated_tail` when the text
  // ends in a character whose remaining bytes could still follow (it then
  // ends in U+FFFD); streaming holds such text back.
  virtual void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const = 0;
  // Whether this decoder turns BPE end-of-word suffixes back into spaces.
  virtual bool handles_word_suffix() const { return false; }
};

// For one sequence every post-processor HF ships boils down to fixed ids
// before and after it (TemplateProcessing, Roberta, Bert, ByteLevel, Sequence).
struct PostProcessor {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
};

// A JSON null yields nullptr (the stage is absent).
Expected<std::unique_ptr<Normalizer>> parse_normalizer(const nlohmann::json& j);
Expected<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const nlohmann::json& j);
Expected<std::unique_ptr<Decoder>> parse_decoder(const nlohmann::json& j);
Expected<PostProcessor> parse_post_processor(const nlohmann::json& j);

}  // namespace vlm::text
