// Regex/literal patterns of tokenizer.json (Split pre-tokenizer, Replace
// normalizer/decoder), run with PCRE2 in UTF+UCP mode.
#pragma once
#include "core/status.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlm::text {

using Span = std::pair<size_t, size_t>;  // [begin, end) in bytes

// A compiled regex written in the syntax HF tokenizers accepts (Oniguruma /
// Rust regex). The pattern is rewritten where PCRE2 would disagree with them;
// see translate_pattern in the .cpp.
class Regex {
 public:
  static Expected<Regex> compile(std::string_view pattern);
  // Non-overlapping leftmost-first matches, like onig's find_iter. Empty
  // matches are dropped: every caller throws empty pieces away anyway.
  // `text` must be valid UTF-8.
  void find_all(std::string_view text, std::vector<Span>& out) const;
  // Whether the regex matches at some position of `text`.
  bool search(std::string_view text) const;

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
};

// tokenizer.json's {"String": ...} or {"Regex": ...}.
class Pattern {
 public:
  static Pattern literal(std::string s);
  static Expected<Pattern> regex(std::string_view pattern);
  void find_all(std::string_view text, std::vector<Span>& out) const;

 private:
  std::string literal_;
  std::shared_ptr<Regex> regex_;
};

// Exposed for tests: the PCRE2 form of an Oniguruma/Rust pattern.
std::string translate_pattern(std::string_view pattern);

}  // namespace vlm::text
