#include "text/tokenizer_pipeline.h"

#include "text/tokenizer_regex.h"
#include "text/unicode.h"

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <algorithm>
#include <functional>

namespace vlm::text {
namespace {

using nlohmann::json;
namespace u = unicode;

std::string type_of(const json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return "";
  return j["type"].get<std::string>();
}

// tokenizer.json patterns are {"String": s} or {"Regex": r}.
Expected<Pattern> parse_pattern(const json& j) {
  if (j.is_object() && j.contains("String")) return Pattern::literal(j["String"].get<std::string>());
  if (j.is_object() && j.contains("Regex")) return Pattern::regex(j["Regex"].get<std::string>());
  if (j.is_string()) return Pattern::literal(j.get<std::string>());
  return make_error("tokenizer pattern must be {\"String\": ...} or {\"Regex\": ...}, got ", j.dump());
}

// A char given as a one-character JSON string (Metaspace's replacement).
std::string one_char(const json& j, const char* dflt) {
  return j.is_string() ? j.get<std::string>() : std::string(dflt);
}

// ---------------------------------------------------------------- splitting

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Expected<Behavior> parse_behavior(const json& j) {
  const std::string b = j.is_string() ? j.get<std::string>() : "Isolated";
  if (b == "Removed" || b == "removed") return Behavior::Removed;
  if (b == "Isolated" || b == "isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious" || b == "merged_with_previous") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext" || b == "merged_with_next") return Behavior::MergedWithNext;
  if (b == "Contiguous" || b == "contiguous") return Behavior::Contiguous;
  return make_error("unknown split behavior `", b, "`");
}

struct Seg {
  size_t begin, end;
  bool is_match;
};

// HF's NormalizedString::split: `matches` are the delimiter spans (sorted,
// non-overlapping); the text between them fills the gaps.
void split_piece(const Piece& p, const std::vector<Span>& matches, bool invert, Behavior behavior,
                 std::vector<Piece>& out) {
  const std::string& s = p.text;
  std::vector<Seg> segs;
  segs.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < s.size()) segs.push_back({prev, s.size(), invert});

  std::vector<Seg> merged;
  merged.reserve(segs.size());
  bool prev_match = false;
  switch (behavior) {
    case Behavior::Removed:
    case Behavior::Isolated:
      merged = std::move(segs);
      break;
    case Behavior::MergedWithPrevious:
      for (const Seg& g : segs) {
        if (g.is_match && !prev_match && !merged.empty()) {
          merged.back().end = g.end;
        } else {
          merged.push_back({g.begin, g.end, false});
        }
        prev_match = g.is_match;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->is_match && !prev_match && !merged.empty()) {
          merged.back().begin = it->begin;
        } else {
          merged.push_back({it->begin, it->end, false});
        }
        prev_match = it->is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    case Behavior::Contiguous:
      for (size_t k = 0; k < segs.size(); ++k) {
        if (k > 0 && segs[k].is_match == prev_match) {
          merged.back().end = segs[k].end;
        } else {
          merged.push_back({segs[k].begin, segs[k].end, false});
        }
        prev_match = segs[k].is_match;
      }
      break;
  }
  for (const Seg& g : merged) {
    if (behavior == Behavior::Removed && g.is_match) continue;
    if (g.end <= g.begin) continue;
    out.push_back(Piece{s.substr(g.begin, g.end - g.begin), p.at_start && g.begin == 0});
  }
}

// Each char satisfying `pred` is its own match, as HF's Pattern for Fn(char).
void char_matches(std::string_view s, const std::function<bool(char32_t)>& pred,
                  std::vector<Span>& out) {
  for (size_t i = 0; i < s.size();) {
    const size_t b = i;
    const char32_t c = u::next_cp(s, i);
    if (pred(c)) out.emplace_back(b, i);
  }
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------- normalizers

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(u::NormForm f) : form_(f) {}
  void normalize(std::string& s) const override { s = u::normalize(s, form_); }

 private:
  u::NormForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override { s = u::to_lower(s); }
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern p, std::string content) : pattern_(std::move(p)), content_(std::move(content)) {}
  void normalize(std::string& s) const override {
    std::vector<Span> m;
    pattern_.find_all(s, m);
    if (m.empty()) return;
    std::string out;
    out.reserve(s.size());
    size_t prev = 0;
    for (const auto& [b, e] : m) {
      out.append(s, prev, b - prev);
      out += content_;
      prev = e;
    }
    out.append(s, prev, std::string::npos);
    s = std::move(out);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prepend_(std::move(p)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& s) const override {
    size_t b = 0, e = s.size();
    if (left_) {
      while (b < e) {
        size_t i = b;
        if (!u::is_white_space(u::next_cp(s, i))) break;
        b = i;
      }
    }
    if (right_) {
      while (e > b) {
        size_t start = e - 1;
        while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!u::is_white_space(u::next_cp(s, i))) break;
        e = start;
      }
    }
    s = s.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

// Drops combining marks (category Mn), as HF's StripAccents after NFD.
class StripAccentsNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      const size_t b = i;
      const char32_t c = u::next_cp(s, i);
      if (c >= 0x300 && utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_MN) continue;
      out.append(s, b, i - b);
    }
    s = std::move(out);
  }
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    std::string out;
    u::append_byte_level(out, s);
    s = std::move(out);
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

// ---------------------------------------------------------------- pre-tokenizers

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern p, Behavior b, bool invert) : pattern_(std::move(p)), behavior_(b), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    std::vector<Span> m;
    for (const Piece& p : pieces) {
      m.clear();
      pattern_.find_all(p.text, m);
      split_piece(p, m, invert_, behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// Splits on chars matching a predicate (Whitespace/Digits/Punctuation/Bert).
class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  CharSplitPreTokenizer(std::function<bool(char32_t)> pred, Behavior b) : pred_(std::move(pred)), behavior_(b) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    std::vector<Span> m;
    for (const Piece& p : pieces) {
      m.clear();
      char_matches(p.text, pred_, m);
      split_piece(p, m, false, behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  std::function<bool(char32_t)> pred_;
  Behavior behavior_;
};

// GPT-2's split, hard-coded inside HF's ByteLevel pre-tokenizer.
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::shared_ptr<Regex> re)
      : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> split;
    if (add_prefix_space_) {
      for (Piece& p : pieces) {
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
      }
    }
    if (re_) {
      std::vector<Span> m;
      split.reserve(pieces.size() * 4);
      for (const Piece& p : pieces) {
        m.clear();
        re_->find_all(p.text, m);
        split_piece(p, m, false, Behavior::Isolated, split);
      }
    } else {
      split = std::move(pieces);
    }
    for (Piece& p : split) {
      std::string mapped;
      u::append_byte_level(mapped, p.text);
      p.text = std::move(mapped);
    }
    pieces = std::move(split);
  }

 private:
  bool add_prefix_space_;
  std::shared_ptr<Regex> re_;
};

enum class PrependScheme { Always, First, Never };

Expected<PrependScheme> parse_prepend_scheme(const json& j) {
  PrependScheme scheme = PrependScheme::Always;
  if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
    const std::string s = j["prepend_scheme"].get<std::string>();
    if (s == "always") scheme = PrependScheme::Always;
    else if (s == "first") scheme = PrependScheme::First;
    else if (s == "never") scheme = PrependScheme::Never;
    else return make_error("unknown Metaspace prepend_scheme `", s, "`");
  }
  // Older files only carry add_prefix_space.
  if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() && !j["add_prefix_space"].get<bool>()) {
    scheme = PrependScheme::Never;
  }
  return scheme;
}

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string repl, PrependScheme scheme, bool split)
      : repl_(std::move(repl)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    std::vector<Span> m;
    for (Piece& p : pieces) {
      std::string s;
      s.reserve(p.text.size() + repl_.size());
      for (const char ch : p.text) {
        if (ch == ' ') s += repl_;
        else s.push_back(ch);
      }
      const bool starts = s.compare(0, repl_.size(), repl_) == 0;
      if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_start))) {
        s.insert(0, repl_);
      }
      p.text = std::move(s);
      if (!split_) {
        if (!p.text.empty()) out.push_back(std::move(p));
        continue;
      }
      m.clear();
      Pattern::literal(repl_).find_all(p.text, m);
      split_piece(p, m, false, Behavior::MergedWithNext, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string repl_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

// ---------------------------------------------------------------- decoders

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const size_t mark = bytes.size();
      bool all = true;
      for (size_t i = 0; i < t.size();) {
        const int b = u::unicode_to_byte(u::next_cp(t, i));
        if (b < 0) {
          all = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      // A token with any char outside the byte alphabet (typically an added
      // token) is taken verbatim.
      if (!all) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    truncated_tail = u::truncated_utf8_tail(bytes) > 0;
    tokens.assign(1, u::to_valid_utf8(bytes));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern p, std::string content) : impl_(std::move(p), std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const override {
    for (std::string& t : tokens) impl_.normalize(t);
  }

 private:
  ReplaceNormalizer impl_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      const size_t tail = u::truncated_utf8_tail(pending);
      truncated_tail = tail > 0 && u::is_valid_utf8(std::string_view(pending).substr(0, pending.size() - tail));
      if (u::is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        // HF emits one U+FFFD per byte of an invalid run, not from_utf8_lossy's.
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') byte = parse_hex2(t[3], t[4]);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        truncated_tail = false;
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int parse_hex2(char a, char b) {
    const int h = hex(a), l = hex(b);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const override {
    const size_t n = content_.size();
    for (std::string& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0; k < start_ && n > 0 && e - b >= n && t.compare(b, n, content_) == 0; ++k) b += n;
      for (size_t k = 0; k < stop_ && n > 0 && e - b >= n && t.compare(e - n, n, content_) == 0; ++k) e -= n;
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string repl, bool strip_first) : repl_(std::move(repl)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t k = 0; k < t.size();) {
        if (!repl_.empty() && t.compare(k, repl_.size(), repl_) == 0) {
          // HF drops every replacement char of the first token, not only a leading one.
          if (!(i == 0 && strip_first_)) out.push_back(' ');
          k += repl_.size();
        } else {
          out.push_back(t[k++]);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string repl_;
  bool strip_first_;
};

class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const override {
    if (suffix_.empty()) return;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string repl = i + 1 == tokens.size() ? "" : " ";
      std::string& t = tokens[i];
      std::string out;
      size_t prev = 0, pos;
      while ((pos = t.find(suffix_, prev)) != std::string::npos) {
        out.append(t, prev, pos - prev);
        out += repl;
        prev = pos + suffix_.size();
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }
  bool handles_word_suffix() const override { return true; }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens, bool& truncated_tail) const override {
    for (const auto& p : parts_) p->decode_chain(tokens, truncated_tail);
  }
  bool handles_word_suffix() const override {
    for (const auto& p : parts_) {
      if (p->handles_word_suffix()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

Expected<std::unique_ptr<Normalizer>> parse_normalizer(const json& j) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  const std::string t = type_of(j);
  if (t == "NFC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(u::NormForm::NFC));
  if (t == "NFD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(u::NormForm::NFD));
  if (t == "NFKC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(u::NormForm::NFKC));
  if (t == "NFKD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(u::NormForm::NFKD));
  if (t == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
  if (t == "StripAccents") return std::unique_ptr<Normalizer>(new StripAccentsNormalizer());
  if (t == "ByteLevel") return std::unique_ptr<Normalizer>(new ByteLevelNormalizer());
  if (t == "Prepend") return std::unique_ptr<Normalizer>(new PrependNormalizer(j.at("prepend").get<std::string>()));
  if (t == "Strip") {
    return std::unique_ptr<Normalizer>(new StripNormalizer(j.value("strip_left", true), j.value("strip_right", true)));
  }
  if (t == "Replace") {
    VLM_ASSIGN_OR_RETURN(Pattern p, parse_pattern(j.at("pattern")));
    return std::unique_ptr<Normalizer>(new ReplaceNormalizer(std::move(p), j.at("content").get<std::string>()));
  }
  if (t == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const json& sub : j.at("normalizers")) {
      VLM_ASSIGN_OR_RETURN(auto n, parse_normalizer(sub));
      if (n) parts.push_back(std::move(n));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(parts)));
  }
  return make_error("unsupported normalizer type `", t, "`");
}

Expected<std::unique_ptr<PreTokenizer>> parse_pre_tokenizer(const json& j) {
  using Ptr = std::unique_ptr<PreTokenizer>;
  if (j.is_null()) return Ptr();
  const std::string t = type_of(j);
  if (t == "Split") {
    VLM_ASSIGN_OR_RETURN(Pattern p, parse_pattern(j.at("pattern")));
    VLM_ASSIGN_OR_RETURN(Behavior b, parse_behavior(j.contains("behavior") ? j["behavior"] : json()));
    return Ptr(new SplitPreTokenizer(std::move(p), b, j.value("invert", false)));
  }
  if (t == "ByteLevel") {
    std::shared_ptr<Regex> re;
    if (j.value("use_regex", true)) {
      VLM_ASSIGN_OR_RETURN(Regex r, Regex::compile(kGpt2Pattern));
      re = std::make_shared<Regex>(std::move(r));
    }
    return Ptr(new ByteLevelPreTokenizer(j.value("add_prefix_space", true), std::move(re)));
  }
  if (t == "Metaspace") {
    VLM_ASSIGN_OR_RETURN(PrependScheme scheme, parse_prepend_scheme(j));
    return Ptr(new MetaspacePreTokenizer(one_char(j.contains("replacement") ? j["replacement"] : json(), "\xE2\x96\x81"),
                                         scheme, j.value("split", true)));
  }
  if (t == "Whitespace") {
    // HF runs this one with the Rust regex crate, whose \w is Alphabetic, marks,
    // decimal digits, connectors and Join_Control (Alphabetic ~ L and Nl).
    VLM_ASSIGN_OR_RETURN(Pattern p, Pattern::regex("[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|"
                                                   "[^\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\s]+"));
    return Ptr(new SplitPreTokenizer(std::move(p), Behavior::Removed, true));
  }
  if (t == "WhitespaceSplit") {
    return Ptr(new CharSplitPreTokenizer(u::is_white_space, Behavior::Removed));
  }
  if (t == "Digits") {
    const bool individual = j.value("individual_digits", false);
    return Ptr(new CharSplitPreTokenizer([](char32_t c) { return c >= '0' && c <= '9'; },
                                         individual ? Behavior::Isolated : Behavior::Contiguous));
  }
  if (t == "Punctuation") {
    VLM_ASSIGN_OR_RETURN(Behavior b, parse_behavior(j.contains("behavior") ? j["behavior"] : json()));
    return Ptr(new CharSplitPreTokenizer(is_punctuation, b));
  }
  if (t == "BertPreTokenizer") {
    std::vector<Ptr> parts;
    parts.emplace_back(new CharSplitPreTokenizer(u::is_white_space, Behavior::Removed));
    parts.emplace_back(new CharSplitPreTokenizer(is_punctuation, Behavior::Isolated));
    return Ptr(new SequencePreTokenizer(std::move(parts)));
  }
  if (t == "Sequence") {
    std::vector<Ptr> parts;
    for (const json& sub : j.at("pretokenizers")) {
      VLM_ASSIGN_OR_RETURN(auto p, parse_pre_tokenizer(sub));
      if (p) parts.push_back(std::move(p));
    }
    return Ptr(new SequencePreTokenizer(std::move(parts)));
  }
  return make_error("unsupported pre_tokenizer type `", t, "`");
}

Expected<std::unique_ptr<Decoder>> parse_decoder(const json& j) {
  using Ptr = std::unique_ptr<Decoder>;
  if (j.is_null()) return Ptr();
  const std::string t = type_of(j);
  if (t == "ByteLevel") return Ptr(new ByteLevelDecoder());
  if (t == "ByteFallback") return Ptr(new ByteFallbackDecoder());
  if (t == "Fuse") return Ptr(new FuseDecoder());
  if (t == "Replace") {
    VLM_ASSIGN_OR_RETURN(Pattern p, parse_pattern(j.at("pattern")));
    return Ptr(new ReplaceDecoder(std::move(p), j.at("content").get<std::string>()));
  }
  if (t == "Strip") {
    return Ptr(new StripDecoder(j.at("content").get<std::string>(), j.value("start", size_t{0}), j.value("stop", size_t{0})));
  }
  if (t == "Metaspace") {
    VLM_ASSIGN_OR_RETURN(PrependScheme scheme, parse_prepend_scheme(j));
    return Ptr(new MetaspaceDecoder(one_char(j.contains("replacement") ? j["replacement"] : json(), "\xE2\x96\x81"),
                                    scheme != PrependScheme::Never));
  }
  if (t == "BPEDecoder") return Ptr(new BpeSuffixDecoder(j.value("suffix", std::string("</w>"))));
  if (t == "Sequence") {
    std::vector<Ptr> parts;
    for (const json& sub : j.at("decoders")) {
      VLM_ASSIGN_OR_RETURN(auto d, parse_decoder(sub));
      if (d) parts.push_back(std::move(d));
    }
    return Ptr(new SequenceDecoder(std::move(parts)));
  }
  return make_error("unsupported decoder type `", t, "`");
}

Expected<PostProcessor> parse_post_processor(const json& j) {
  PostProcessor pp;
  if (j.is_null()) return pp;
  const std::string t = type_of(j);
  if (t == "ByteLevel") return pp;  // only adjusts offsets
  if (t == "RobertaProcessing" || t == "BertProcessing") {
    // "cls": ["<s>", 0], "sep": ["</s>", 2]
    pp.prefix.push_back(j.at("cls").at(1).get<int32_t>());
    pp.suffix.push_back(j.at("sep").at(1).get<int32_t>());
    return pp;
  }
  if (t == "TemplateProcessing") {
    const json& special = j.contains("special_tokens") ? j["special_tokens"] : json::object();
    bool seen_seq = false;
    for (const json& item : j.at("single")) {
      if (item.contains("Sequence")) {
        seen_seq = true;
        continue;
      }
      if (!item.contains("SpecialToken")) return make_error("TemplateProcessing item ", item.dump(), " not understood");
      const std::string name = item["SpecialToken"].at("id").get<std::string>();
      if (!special.contains(name)) return make_error("TemplateProcessing uses `", name, "` missing from special_tokens");
      for (const json& id : special[name].at("ids")) {
        (seen_seq ? pp.suffix : pp.prefix).push_back(id.get<int32_t>());
      }
    }
    return pp;
  }
  if (t == "Sequence") {
    for (const json& sub : j.at("processors")) {
      VLM_ASSIGN_OR_RETURN(PostProcessor inner, parse_post_processor(sub));
      pp.prefix.insert(pp.prefix.begin(), inner.prefix.begin(), inner.prefix.end());
      pp.suffix.insert(pp.suffix.end(), inner.suffix.begin(), inner.suffix.end());
    }
    return pp;
  }
  return make_error("unsupported post_processor type `", t, "`");
}

}  // namespace vlm::text
