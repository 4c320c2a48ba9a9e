// Tokenizer for chat templates. Whitespace handling follows jinja2's lexer
// exactly as transformers configures it (trim_blocks, lstrip_blocks), because
// a single stray space or newline changes the prompt the model sees.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "text/jinja_ast.h"
#include "text/jinja_value.h"

namespace vlm::text::jinja {

std::string normalize_source(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    char c = source[i];
    if (c == '\r') {
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      out.push_back('\n');
    } else {
      out.push_back(c);
    }
  }
  // keep_trailing_newline=False drops exactly one final line break.
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string describe_pos(const std::string& src, uint32_t pos) {
  if (pos == kNoPos) return "unknown position";
  size_t p = std::min<size_t>(pos, src.size());
  size_t line = 1 + std::count(src.begin(), src.begin() + p, '\n');
  size_t bol = p == 0 ? std::string::npos : src.rfind('\n', p - 1);
  size_t col = bol == std::string::npos ? p + 1 : p - bol;
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

Lexer::Lexer(const std::string& normalized_source) : src_(normalized_source) {}

void Lexer::skip_py_space() {
  while (size_t n = py_space_len(src_, pos_)) pos_ += n;
}

namespace {

bool starts_with(const std::string& s, size_t at, const char* lit) {
  size_t n = std::strlen(lit);
  return at + n <= s.size() && s.compare(at, n, lit) == 0;
}

// True if s[from, to) is one or more whitespace characters (regex \s+).
bool all_space(const std::string& s, size_t from, size_t to) {
  if (from >= to) return false;
  for (size_t i = from; i < to;) {
    size_t n = py_space_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// Python's str.rstrip() with no argument.
size_t rstrip_end(const std::string& s, size_t from, size_t to) {
  while (to > from) {
    // Step back one UTF-8 character.
    size_t k = to - 1;
    while (k > from && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80 && to - k < 4) --k;
    if (py_space_len(s, k) == to - k) {
      to = k;
    } else {
      break;
    }
  }
  return to;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Matches (\d+_)*\d+ at i; returns the end or i when there is no match.
size_t scan_digits(const std::string& s, size_t i) {
  size_t j = i;
  if (j >= s.size() || !is_digit(s[j])) return i;
  while (true) {
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j + 1 < s.size() && s[j] == '_' && is_digit(s[j + 1])) {
      ++j;
      continue;
    }
    return j;
  }
}

std::string without_underscores(const std::string& s, size_t a, size_t b) {
  std::string out;
  for (size_t i = a; i < b; ++i)
    if (s[i] != '_') out.push_back(s[i]);
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's "unicode-escape" decoding of a string literal body.
std::string unescape(const std::string& s, size_t a, size_t b, uint32_t pos) {
  std::string out;
  out.reserve(b - a);
  uint32_t pending_high = 0;  // a \uD8xx waiting for its low surrogate
  auto put = [&](uint32_t cp) {
    if (pending_high) {
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        utf8_append(out, 0x10000 + ((pending_high - 0xD800) << 10) + (cp - 0xDC00));
        pending_high = 0;
        return;
      }
      utf8_append(out, 0xFFFD);
      pending_high = 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      pending_high = cp;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      utf8_append(out, 0xFFFD);
    } else {
      utf8_append(out, cp);
    }
  };
  auto flush = [&] {
    if (pending_high) utf8_append(out, 0xFFFD);
    pending_high = 0;
  };
  for (size_t i = a; i < b;) {
    char c = s[i];
    if (c != '\\' || i + 1 >= b) {
      flush();
      out.push_back(c);
      ++i;
      continue;
    }
    char e = s[i + 1];
    i += 2;
    auto hex = [&](int n) -> uint32_t {
      uint32_t v = 0;
      for (int k = 0; k < n; ++k) {
        int h = i < b ? hex_value(s[i]) : -1;
        if (h < 0) fail("truncated \\" + std::string(1, e) + " escape in string literal", pos);
        v = v * 16 + h;
        ++i;
      }
      return v;
    };
    switch (e) {
      case '\n': break;  // line continuation
      case '\\': flush(); out.push_back('\\'); break;
      case '\'': flush(); out.push_back('\''); break;
      case '"': flush(); out.push_back('"'); break;
      case 'a': flush(); out.push_back('\a'); break;
      case 'b': flush(); out.push_back('\b'); break;
      case 'f': flush(); out.push_back('\f'); break;
      case 'n': flush(); out.push_back('\n'); break;
      case 'r': flush(); out.push_back('\r'); break;
      case 't': flush(); out.push_back('\t'); break;
      case 'v': flush(); out.push_back('\v'); break;
      case 'x': put(hex(2)); break;
      case 'u': put(hex(4)); break;
      case 'U': {
        uint32_t v = hex(8);
        if (v > 0x10FFFF) fail("illegal Unicode character in string literal", pos);
        put(v);
        break;
      }
      case 'N': fail("\\N{...} escapes are not supported", pos);
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = e - '0';
          for (int k = 0; k < 2 && i < b && s[i] >= '0' && s[i] <= '7'; ++k) v = v * 8 + (s[i++] - '0');
          put(v);
        } else {
          flush();  // unknown escapes stay as written
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  flush();
  return out;
}

}  // namespace

Token Lexer::next() {
  while (true) {
    if (!pending_.empty()) {
      Token t = std::move(pending_.front());
      pending_.erase(pending_.begin());
      return t;
    }
    if (state_ == State::kEnd) {
      Token t;
      t.type = Tok::kEof;
      t.pos = static_cast<uint32_t>(src_.size());
      return t;
    }
    if (state_ == State::kRoot) {
      lex_root();  // may yield nothing (a comment), so loop
      continue;
    }
    Token t;
    lex_expr_token(t);
    return t;
  }
}

namespace {
// Start of the line containing `at`, but not before `floor`; also reports
// whether a line break was found in [floor, at).
size_t line_start(const std::string& s, size_t floor, size_t at, bool& found) {
  for (size_t k = at; k > floor; --k) {
    if (s[k - 1] == '\n') {
      found = true;
      return k;
    }
  }
  found = false;
  return floor;
}
}  // namespace

// Root state: template data up to the next tag, with the tag's whitespace
// control applied to the data before it.
void Lexer::lex_root() {
  if (pos_ >= src_.size()) {
    state_ = State::kEnd;
    return;
  }
  size_t i = pos_;
  while (true) {
    i = src_.find('{', i);
    if (i == std::string::npos || i + 1 >= src_.size()) {
      i = std::string::npos;
      break;
    }
    char k = src_[i + 1];
    if (k == '{' || k == '%' || k == '#') break;
    ++i;
  }
  if (i == std::string::npos) {
    Token t;
    t.type = Tok::kData;
    t.pos = static_cast<uint32_t>(pos_);
    t.text = src_.substr(pos_);
    pending_.push_back(std::move(t));
    pos_ = src_.size();
    state_ = State::kEnd;
    return;
  }
  char kind = src_[i + 1];
  char sign = i + 2 < src_.size() && (src_[i + 2] == '-' || src_[i + 2] == '+') ? src_[i + 2] : 0;
  size_t after_open = i + 2 + (sign ? 1 : 0);

  // {% raw %} is recognised as a whole in the root state.
  bool raw = false;
  size_t raw_end = 0;
  if (kind == '%') {
    size_t j = after_open;
    while (size_t n = py_space_len(src_, j)) j += n;
    if (starts_with(src_, j, "raw")) {
      j += 3;
      while (size_t n = py_space_len(src_, j)) j += n;
      if (starts_with(src_, j, "-%}")) {
        raw = true;
        raw_end = j + 3;
        while (size_t n = py_space_len(src_, raw_end)) raw_end += n;
      } else if (starts_with(src_, j, "%}")) {
        raw = true;
        raw_end = j + 2;
      }
    }
  }

  size_t text_end = i;
  if (sign == '-') {
    text_end = rstrip_end(src_, pos_, i);
  } else if (sign != '+' && kind != '{') {
    // lstrip_blocks: drop spaces between the start of the line and the tag.
    bool found;
    size_t l_pos = line_start(src_, pos_, i, found);
    if ((found || line_starting_) && all_space(src_, l_pos, i)) text_end = l_pos;
  }
  if (text_end > pos_) {
    Token d;
    d.type = Tok::kData;
    d.pos = static_cast<uint32_t>(pos_);
    d.text = src_.substr(pos_, text_end - pos_);
    pending_.push_back(std::move(d));
  }
  line_starting_ = false;
  tag_pos_ = static_cast<uint32_t>(i);

  if (raw) {
    line_starting_ = src_[raw_end - 1] == '\n';
    if (!lex_raw(raw_end)) fail("missing end of raw directive", tag_pos_);
    return;
  }
  if (kind == '#') {
    // Comment: ends at the first "#}", which may carry its own sign.
    size_t j = src_.find("#}", after_open);
    if (j == std::string::npos) fail("missing end of comment tag", tag_pos_);
    char esign = j > after_open && (src_[j - 1] == '-' || src_[j - 1] == '+') ? src_[j - 1] : 0;
    pos_ = j + 2;
    if (esign == '-') {
      skip_py_space();
    } else if (esign != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;  // trim_blocks
    }
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
    return;  // no token: the caller loops
  }
  Token b;
  b.type = kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin;
  b.pos = static_cast<uint32_t>(i);
  pending_.push_back(std::move(b));
  state_ = kind == '{' ? State::kVar : State::kBlock;
  balance_.clear();
  pos_ = after_open;
}

bool Lexer::lex_raw(size_t content_begin) {
  size_t j = content_begin;
  while (true) {
    j = src_.find("{%", j);
    if (j == std::string::npos) return false;
    size_t k = j + 2;
    char sign = k < src_.size() && (src_[k] == '-' || src_[k] == '+') ? src_[k] : 0;
    if (sign) ++k;
    while (size_t n = py_space_len(src_, k)) k += n;
    if (!starts_with(src_, k, "endraw")) {
      j += 2;
      continue;
    }
    k += 6;
    while (size_t n = py_space_len(src_, k)) k += n;
    size_t end;
    if (starts_with(src_, k, "+%}")) {
      end = k + 3;
    } else if (starts_with(src_, k, "-%}")) {
      end = k + 3;
      while (size_t n = py_space_len(src_, end)) end += n;
    } else if (starts_with(src_, k, "%}")) {
      end = k + 2;
      if (end < src_.size() && src_[end] == '\n') ++end;
    } else {
      j += 2;
      continue;
    }
    size_t text_end = j;
    if (sign == '-') {
      text_end = rstrip_end(src_, content_begin, j);
    } else if (sign != '+') {
      bool found;
      size_t l_pos = line_start(src_, content_begin, j, found);
      if ((found || line_starting_) && all_space(src_, l_pos, j)) text_end = l_pos;
    }
    if (text_end > content_begin) {
      Token d;
      d.type = Tok::kData;
      d.pos = static_cast<uint32_t>(content_begin);
      d.text = src_.substr(content_begin, text_end - content_begin);
      pending_.push_back(std::move(d));
    }
    pos_ = end;
    line_starting_ = src_[end - 1] == '\n';
    return true;
  }
}

// Block and variable states: one expression token, or the closing tag.
void Lexer::lex_expr_token(Token& t) {
  skip_py_space();
  bool block = state_ == State::kBlock;
  if (pos_ >= src_.size())
    fail(block ? "unexpected end of template: missing '%}' to close this tag"
               : "unexpected end of template: missing '}}' to close this tag",
         tag_pos_);
  t.pos = static_cast<uint32_t>(pos_);
  if (balance_.empty()) {
    size_t end = 0;
    if (block) {
      if (starts_with(src_, pos_, "+%}")) {
        end = pos_ + 3;
      } else if (starts_with(src_, pos_, "-%}")) {
        end = pos_ + 3;
        while (size_t n = py_space_len(src_, end)) end += n;
      } else if (starts_with(src_, pos_, "%}")) {
        end = pos_ + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;  // trim_blocks
      }
    } else {
      if (starts_with(src_, pos_, "-}}")) {
        end = pos_ + 3;
        while (size_t n = py_space_len(src_, end)) end += n;
      } else if (starts_with(src_, pos_, "}}")) {
        end = pos_ + 2;
      }
    }
    if (end) {
      t.type = block ? Tok::kBlockEnd : Tok::kVarEnd;
      pos_ = end;
      line_starting_ = src_[end - 1] == '\n';
      state_ = State::kRoot;
      return;
    }
  }
  const size_t p = pos_;
  char c = src_[p];

  if (is_digit(c)) {
    // Float first, as jinja2 tries it before integers.
    if (p == 0 || src_[p - 1] != '.') {
      size_t e1 = scan_digits(src_, p);
      size_t frac_end = 0;
      if (e1 < src_.size() && src_[e1] == '.') {
        size_t f = scan_digits(src_, e1 + 1);
        if (f > e1 + 1) frac_end = f;
      }
      size_t m = frac_end ? frac_end : e1;
      size_t exp_end = 0;
      if (m < src_.size() && (src_[m] == 'e' || src_[m] == 'E')) {
        size_t q = m + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        size_t d = scan_digits(src_, q);
        if (d > q) exp_end = d;
      }
      size_t fend = exp_end ? exp_end : frac_end;
      if (fend) {
        std::string txt = without_underscores(src_, p, fend);
        t.type = Tok::kFloat;
        t.fval = std::strtod(txt.c_str(), nullptr);
        t.text = txt;
        pos_ = fend;
        return;
      }
    }
    int base = 10;
    size_t q = p;
    if (c == '0' && p + 1 < src_.size()) {
      char x = static_cast<char>(src_[p + 1] | 0x20);
      base = x == 'b' ? 2 : x == 'o' ? 8 : x == 'x' ? 16 : 10;
    }
    uint64_t v = 0;
    bool overflow = false;
    auto add_digit = [&](int d) {
      if (v > (UINT64_MAX - d) / base) overflow = true;
      v = v * base + d;
    };
    if (base != 10) {
      q = p + 2;
      size_t start = q;
      while (q < src_.size()) {
        size_t r = q;
        if (src_[r] == '_') ++r;
        int d = r < src_.size() ? hex_value(src_[r]) : -1;
        if (d < 0 || d >= base) break;
        add_digit(d);
        q = r + 1;
      }
      if (q == start) {  // "0x" without digits: just the integer 0
        base = 10;
        q = p + 1;
        v = 0;
      }
    } else if (c == '0') {
      q = p + 1;
      while (q < src_.size()) {
        size_t r = q;
        if (src_[r] == '_') ++r;
        if (r < src_.size() && src_[r] == '0') {
          q = r + 1;
        } else {
          break;
        }
      }
    } else {
      while (q < src_.size()) {
        size_t r = q;
        if (src_[r] == '_' && q > p) ++r;
        if (r < src_.size() && is_digit(src_[r])) {
          add_digit(src_[r] - '0');
          q = r + 1;
        } else {
          break;
        }
      }
    }
    if (overflow || v > static_cast<uint64_t>(INT64_MAX)) fail("integer literal too large", t.pos);
    t.type = Tok::kInt;
    t.ival = static_cast<int64_t>(v);
    t.text = src_.substr(p, q - p);
    pos_ = q;
    return;
  }
  if (is_name_start(c)) {
    size_t q = p + 1;
    while (q < src_.size() && is_name_char(src_[q])) ++q;
    t.type = Tok::kName;
    t.text = src_.substr(p, q - p);
    pos_ = q;
    return;
  }
  if (c == '\'' || c == '"') {
    size_t q = p + 1;
    while (q < src_.size() && src_[q] != c) q += src_[q] == '\\' ? 2 : 1;
    if (q >= src_.size()) fail("unterminated string literal", t.pos);
    t.type = Tok::kString;
    t.text = unescape(src_, p + 1, q, t.pos);
    pos_ = q + 1;
    return;
  }
  static const char* const kTwo[] = {"**", "//", "==", "!=", ">=", "<="};
  for (const char* op : kTwo) {
    if (starts_with(src_, p, op)) {
      t.type = Tok::kOp;
      t.text = op;
      pos_ = p + 2;
      return;
    }
  }
  if (std::strchr("+-/*%~[](){}><=.:|,;", c) && c != 0) {
    t.type = Tok::kOp;
    t.text = std::string(1, c);
    pos_ = p + 1;
    if (c == '(' || c == '[' || c == '{') {
      balance_.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance_.empty()) fail(std::string("unexpected '") + c + "'", t.pos);
      char want = balance_.back();
      balance_.pop_back();
      if (want != c) fail(std::string("unexpected '") + c + "', expected '" + want + "'", t.pos);
    }
    return;
  }
  size_t q = p;
  utf8_next(src_, q);
  fail("unexpected character '" + src_.substr(p, q - p) + "'", t.pos);
}

}  // namespace vlm::text::jinja
