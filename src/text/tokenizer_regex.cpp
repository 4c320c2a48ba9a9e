#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tokenizer_regex.h"

#include <pcre2.h>

namespace vlm::text {
namespace {

// Unicode White_Space as class items. Oniguruma's and Rust's \s are exactly
// this set; PCRE2's UCP \s is "Z categories + \t\n\v\f\r" and so misses U+0085.
constexpr const char* kWhiteSpaceItems =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// Oniguruma's Unicode \w is Letter|Mark|Number|Connector_Punctuation; PCRE2's
// UCP \w lacks marks and connectors other than '_'.
constexpr const char* kWordItems = "\\p{L}\\p{M}\\p{N}\\p{Pc}";

void free_code(pcre2_code* c) { pcre2_code_free(c); }

}  // namespace

std::string translate_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  bool class_start = false;  // just after '[' or '[^': a ']' here is literal
  bool quoted = false;       // inside \Q...\E
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (quoted) {
      if (c == '\\' && i + 1 < p.size() && p[i + 1] == 'E') {
        quoted = false;
        out += "\\E";
        ++i;
      } else {
        out.push_back(c);
      }
      continue;
    }
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      ++i;
      class_start = false;
      if (n == 'Q') {
        quoted = true;
        out += "\\Q";
      } else if (n == 's') {
        if (in_class) {
          out += kWhiteSpaceItems;
        } else {
          out += '[';
          out += kWhiteSpaceItems;
          out += ']';
        }
      } else if (n == 'S' && !in_class) {
        out += "[^";
        out += kWhiteSpaceItems;
        out += ']';
      } else if (n == 'w') {
        if (in_class) {
          out += kWordItems;
        } else {
          out += '[';
          out += kWordItems;
          out += ']';
        }
      } else if (n == 'W' && !in_class) {
        out += "[^";
        out += kWordItems;
        out += ']';
      } else {
        // \S and \W inside a class cannot be inlined; PCRE2's versions differ
        // only at U+0085 and at marks, which no known tokenizer relies on.
        out.push_back('\\');
        out.push_back(n);
      }
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
        const size_t end = p.find(":]", i + 2);
        if (end != std::string_view::npos) {
          out.append(p.substr(i, end + 2 - i));
          i = end + 1;
          class_start = false;
          continue;
        }
      }
      if (c == '^' && class_start && out.back() == '[') {
        out.push_back(c);
        continue;
      }
      if (c == ']' && !class_start) in_class = false;
      class_start = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      class_start = true;
    }
    out.push_back(c);
  }
  return out;
}

struct Regex::Code {
  std::unique_ptr<pcre2_code, void (*)(pcre2_code*)> code{nullptr, free_code};
  bool jit = false;
};

Expected<Regex> Regex::compile(std::string_view pattern) {
  const std::string translated = translate_pattern(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                   translated.size(), PCRE2_UTF | PCRE2_UCP, &err, &err_off,
                                   nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return make_error("tokenizer regex `", pattern, "` does not compile: ",
                      reinterpret_cast<const char*>(msg), " (at offset ", err_off, ")");
  }
  auto c = std::make_shared<Code>();
  c->code.reset(code);
  c->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  Regex r;
  r.code_ = std::move(c);
  return r;
}

namespace {

// One match attempt from `offset`; falls back from JIT to the interpreter when
// the JIT stack runs out (the interpreter keeps its backtracking on the heap).
int match_at(const pcre2_code* code, bool jit, std::string_view text, size_t offset,
             pcre2_match_data* md) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.empty() ? "" : text.data());
  int rc;
  if (jit) {
    rc = pcre2_jit_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc != PCRE2_ERROR_JIT_STACKLIMIT) return rc;
  }
  return pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md,
                     nullptr);
}

size_t next_char(std::string_view text, size_t i) {
  ++i;
  while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  return i;
}

}  // namespace

void Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  if (text.empty()) return;
  const pcre2_code* code = code_->code.get();
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  size_t offset = 0;
  while (offset <= text.size()) {
    const int rc = match_at(code, code_->jit, text, offset, md);
    if (rc < 0) break;  // no match, or a resource limit: the rest stays unmatched
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      offset = e;
    } else {
      if (b >= text.size()) break;
      offset = next_char(text, b);
    }
  }
  pcre2_match_data_free(md);
}

bool Regex::search(std::string_view text) const {
  const pcre2_code* code = code_->code.get();
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  const int rc = match_at(code, code_->jit, text, 0, md);
  pcre2_match_data_free(md);
  return rc >= 0;
}

Pattern Pattern::literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

Expected<Pattern> Pattern::regex(std::string_view pattern) {
  VLM_ASSIGN_OR_RETURN(Regex r, Regex::compile(pattern));
  Pattern p;
  p.regex_ = std::make_shared<Regex>(std::move(r));
  return p;
}

void Pattern::find_all(std::string_view text, std::vector<Span>& out) const {
  if (regex_) {
    regex_->find_all(text, out);
    return;
  }
  if (literal_.empty()) return;  // HF: an empty string pattern matches nothing
  size_t pos = 0;
  while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
    out.emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
  }
}

}  // namespace vlm::text
