// Reading tokenizer.json fast: the vocabulary and merges (nearly all of the
// file: ~150k entries each for Qwen) go straight into their final containers
// through a SAX handler; only the small rest becomes a JSON DOM.
#pragma once
#include "core/status.h"
#include "text/bpe.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace vlm::text {

struct TokenizerJson {
  nlohmann::json dom;  // everything except model.vocab (if an object) and model.merges
  Vocab vocab;
  MergeList merges;
  bool has_vocab = false;  // model.vocab was an object and is in `vocab`
};

Expected<TokenizerJson> parse_tokenizer_json(std::string_view text);

}  // namespace vlm::text
