#include "runtime/grounding.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "vision/qwen_preprocess.h"

namespace vlm::runtime {
namespace {

// ---------------------------------------------------------------------------
// Small helpers

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident(char c) { return is_ident_start(c) || is_digit(c); }

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return r;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Shortest readable form for notes: integers without ".0", else up to 6 digits.
std::string num(double v) {
  char buf[64];
  if (std::fabs(v) < 1e15 && v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f", v == 0 ? 0.0 : v);
  else
    std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// A quoted, single-line excerpt of the answer for messages.
std::string excerpt(std::string_view s, size_t begin, size_t end, size_t max_len = 100) {
  begin = std::min(begin, s.size());
  end = std::clamp(end, begin, s.size());
  std::string out;
  for (size_t i = begin; i < end && out.size() < max_len; ++i) {
    const char c = s[i];
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  if (end - begin > max_len) out += "...";
  return out;
}

// Parses [+-]digits[.digits] (or .digits) with no exponent at s[*p]; used for
// coordinates written outside JSON. False if no number starts there.
bool read_plain_number(std::string_view s, size_t* p, double* out, bool* at_end) {
  size_t i = *p;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  const size_t digits = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  bool any = i > digits;
  if (i < s.size() && s[i] == '.') {
    const size_t frac = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    any = any || i > frac;
  }
  if (!any) return false;
  double v = 0;
  auto r = std::from_chars(s.data() + digits, s.data() + i, v);
  if (r.ec != std::errc() || !std::isfinite(v)) return false;
  *out = neg ? -v : v;
  *at_end = i == s.size();
  *p = i;
  return true;
}

// The numbers of "(x1,y1),(x2,y2)", "[x1, y1, x2, y2]", "x1 y1 x2 y2", ...
// Anything but numbers and those separators makes the text unreadable.
bool extract_numbers(std::string_view s, std::vector<double>* out, std::string* why) {
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c) || c == ',' || c == '(' || c == ')' || c == '[' || c == ']' || c == ';') {
      ++i;
      continue;
    }
    double v;
    bool at_end;
    if (!read_plain_number(s, &i, &v, &at_end)) {
      *why = cat("unexpected '", excerpt(s, i, i + 12, 12), "'");
      return false;
    }
    if (out->size() >= 64) {
      *why = "too many numbers";
      return false;
    }
    out->push_back(v);
  }
  return true;
}

// A box as written, before any frame is applied: 4 values (x1,y1,x2,y2) or 2 (x,y).
struct RawBox {
  enum class Source { Qwen2Tags, V1Tags, Json, Bare };
  Source source;
  size_t offset;  // where it starts in the answer; results keep answer order
  std::string label;
  std::vector<double> v;
  bool is_point = false;
  std::optional<double> score;
  std::vector<std::string> notes;
};

struct Collector {
  std::string_view text;
  std::vector<RawBox> boxes;
  std::vector<std::pair<size_t, std::string>> unparsed;  // offset, message
  void fail(size_t offset, const std::string& msg) { unparsed.emplace_back(offset, msg); }
};

// Bounding box of an even number of values read as (x, y) points.
std::vector<double> bounds_of_points(const std::vector<double>& v) {
  double x1 = v[0], y1 = v[1], x2 = v[0], y2 = v[1];
  for (size_t i = 2; i + 1 < v.size(); i += 2) {
    x1 = std::min(x1, v[i]);
    x2 = std::max(x2, v[i]);
    y1 = std::min(y1, v[i + 1]);
    y2 = std::max(y2, v[i + 1]);
  }
  return {x1, y1, x2, y2};
}

// ---------------------------------------------------------------------------
// Tagged formats: Qwen2-VL special tokens and Qwen-VL v1 tags. Both share one
// grammar: a ref names the boxes that follow it until the next ref, so a ref
// followed by several boxes yields several boxes with that label.

struct TagSet {
  const char* ref_open;
  const char* ref_close;
  const char* box_open;
  const char* box_close;
  const char* quad_open;
  const char* quad_close;
  RawBox::Source source;
};

constexpr TagSet kQwen2Tags = {"<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                               "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
                               RawBox::Source::Qwen2Tags};
constexpr TagSet kV1Tags = {"<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", RawBox::Source::V1Tags};

// Next occurrence of one tag at or after a position. Queries only move
// forward, so a found position (or "none left") is reused until passed: an
// answer of thousands of unclosed tags stays linear instead of rescanning
// the rest of the text for every tag.
class TagFinder {
 public:
  TagFinder(std::string_view s, const char* tag) : s_(s), tag_(tag) {}
  size_t operator()(size_t from) {
    if (from >= s_.size()) return std::string_view::npos;
    if (!valid_ || (cached_ != std::string_view::npos && cached_ < from)) {
      cached_ = s_.find(tag_, from);
      valid_ = true;
    }
    return cached_;
  }

 private:
  std::string_view s_;
  const char* tag_;
  size_t cached_ = 0;
  bool valid_ = false;
};

void parse_tagged(const TagSet& t, Collector* c) {
  const std::string_view s = c->text;
  TagFinder ref_open(s, t.ref_open), box_open(s, t.box_open), quad_open(s, t.quad_open);
  TagFinder ref_close(s, t.ref_close), box_close(s, t.box_close), quad_close(s, t.quad_close);
  std::string label;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t r = ref_open(pos), b = box_open(pos), q = quad_open(pos);
    const size_t at = std::min({r, b, q});
    if (at == std::string_view::npos) break;
    const bool is_ref = at == r, is_quad = at == q && !is_ref;
    const size_t open_len = std::strlen(is_ref ? t.ref_open : is_quad ? t.quad_open : t.box_open);
    const char* close_tag = is_ref ? t.ref_close : is_quad ? t.quad_close : t.box_close;
    const size_t body = at + open_len;
    // Any opening tag before the close means this element was never closed.
    const size_t next_open = std::min({ref_open(body), box_open(body), quad_open(body)});
    const size_t close = is_ref ? ref_close(body) : is_quad ? quad_close(body) : box_close(body);
    const bool closed = close != std::string_view::npos && close < next_open;
    const size_t body_end = closed ? close : std::min(next_open, s.size());
    const std::string_view content = s.substr(std::min(body, s.size()), body_end - std::min(body, s.size()));
    const size_t next = closed ? close + std::strlen(close_tag) : body_end;

    if (is_ref) {
      if (!closed && next_open == std::string_view::npos) {
        c->fail(at, cat("truncated: reference without a box: ", excerpt(s, at, s.size())));
        break;
      }
      label = std::string(trim(content));
      pos = next;
      continue;
    }
    std::vector<std::string> notes;
    if (!closed) {
      // At the very end the last number may itself be cut ("40" of "400").
      if (next_open == std::string_view::npos) {
        c->fail(at, cat("truncated: ", is_quad ? "quad" : "box", " not closed: ", excerpt(s, at, s.size())));
        break;
      }
      notes.push_back(cat("missing ", close_tag));
    }
    std::vector<double> v;
    std::string why;
    if (!extract_numbers(content, &v, &why)) {
      c->fail(at, cat(why, " in ", excerpt(s, at, next)));
      pos = next;
      continue;
    }
    if (is_quad) {
      if (v.size() < 4 || v.size() % 2 != 0) {
        c->fail(at, cat("quad needs an even number (>= 4) of values, got ", v.size(), ": ", excerpt(s, at, next)));
      } else {
        notes.push_back(v.size() == 8 ? "quad reduced to its bounding box"
                                      : cat("quad of ", v.size() / 2, " points reduced to its bounding box"));
        c->boxes.push_back({t.source, at, label, bounds_of_points(v), false, {}, notes});
      }
    } else if (v.size() == 2) {
      notes.push_back("a single point inside a box");
      c->boxes.push_back({t.source, at, label, v, true, {}, notes});
    } else if (!v.empty() && v.size() % 4 == 0) {
      if (v.size() > 4) notes.push_back(cat(v.size() / 4, " boxes in one box element"));
      for (size_t i = 0; i < v.size(); i += 4)
        c->boxes.push_back({t.source, at + i, label, {v[i], v[i + 1], v[i + 2], v[i + 3]}, false, {}, notes});
    } else {
      c->fail(at, cat("box needs 4 values, got ", v.size(), ": ", excerpt(s, at, next)));
    }
    pos = next;
  }
}

// Qwen2-VL decoded with skip_special_tokens=True loses its wrappers and reads
// "a dog(100,200),(300,400)". The label is then the text before the box, back
// to the previous box, line or sentence end.
void parse_bare_pairs(Collector* c) {
  const std::string_view s = c->text;
  size_t boundary = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '(') continue;
    size_t p = i;
    auto expect = [&](char ch) {
      while (p < s.size() && is_space(s[p])) ++p;
      if (p >= s.size() || s[p] != ch) return false;
      ++p;
      return true;
    };
    auto number = [&](double* out) {
      while (p < s.size() && is_space(s[p])) ++p;
      bool at_end;
      return read_plain_number(s, &p, out, &at_end);
    };
    double v[4];
    if (!(expect('(') && number(&v[0]) && expect(',') && number(&v[1]) && expect(')') && expect(',') &&
          expect('(') && number(&v[2]) && expect(',') && number(&v[3]) && expect(')')))
      continue;
    size_t from = boundary;
    for (size_t j = i; j > boundary; --j)
      if (std::strchr("\n.:;!?", s[j - 1])) {
        from = j;
        break;
      }
    std::string_view label = trim(s.substr(from, i - from));
    while (!label.empty() && std::strchr(",-*\"'", label.front())) label = trim(label.substr(1));
    while (!label.empty() && std::strchr(",-:\"'", label.back())) label = trim(label.substr(0, label.size() - 1));
    if (label.size() > 80) label = label.substr(label.size() - 80);
    c->boxes.push_back({RawBox::Source::Bare, i, std::string(label), {v[0], v[1], v[2], v[3]}, false, {},
                        {"no box tokens (decoded with skip_special_tokens?): label taken from the text before it"}});
    boundary = p;
    i = p - 1;
  }
}

// ---------------------------------------------------------------------------
// Lenient JSON: single quotes, unquoted keys, trailing or missing commas,
// Python literals, and answers that stop mid-value. A value records whether
// it was complete so the walker can keep the complete objects of a truncated
// list and report the broken one.

struct JMember;  // a std::pair here would need JValue complete (clang + libstdc++)

struct JValue {
  enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool complete = true;
  double number = 0;
  std::string str;
  std::vector<JValue> items;
  std::vector<JMember> members;
  size_t begin = 0, end = 0;  // span in the answer; end is where parsing stopped if incomplete
};

struct JMember {
  std::string key;
  JValue value;
};

enum class Outcome { Ok, Truncated, Error };

class LenientJson {
 public:
  explicit LenientJson(std::string_view s) : s_(s) {}

  Outcome parse(size_t pos, JValue* out) {
    p_ = pos;
    why_.clear();
    return value(out, 0);
  }
  size_t stop() const { return p_; }
  const std::string& why() const { return why_; }

 private:
  static constexpr int kMaxDepth = 64;

  bool eof() const { return p_ >= s_.size(); }
  void skip_ws() {
    while (!eof() && is_space(s_[p_])) ++p_;
  }
  Outcome error(std::string why) {
    why_ = std::move(why);
    return Outcome::Error;
  }
  bool value_start(char c) const {
    return c == '{' || c == '[' || c == '"' || c == '\'' || is_digit(c) || c == '-' || c == '+' ||
           c == '.' || is_ident_start(c);
  }

  Outcome value(JValue* v, int depth) {
    skip_ws();
    v->begin = p_;
    if (eof()) {
      v->complete = false;
      return Outcome::Truncated;
    }
    const char c = s_[p_];
    Outcome r;
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) r = error("nested too deeply");
      else r = c == '{' ? object(v, depth) : array(v, depth);
    } else if (c == '"' || c == '\'') {
      v->kind = JValue::Kind::String;
      r = string(&v->str);
    } else if (is_digit(c) || c == '-' || c == '+' || c == '.') {
      r = number(v);
    } else if (is_ident_start(c)) {
      r = word(v);
    } else {
      r = error(cat("unexpected '", c, "'"));
    }
    if (r != Outcome::Ok) v->complete = false;
    v->end = p_;
    return r;
  }

  Outcome object(JValue* v, int depth) {
    v->kind = JValue::Kind::Object;
    ++p_;
    for (;;) {
      while (!eof() && (is_space(s_[p_]) || s_[p_] == ',')) ++p_;
      if (eof()) return Outcome::Truncated;
      if (s_[p_] == '}') {
        ++p_;
        return Outcome::Ok;
      }
      std::string key;
      if (s_[p_] == '"' || s_[p_] == '\'') {
        if (Outcome r = string(&key); r != Outcome::Ok) return r;
      } else if (is_ident_start(s_[p_])) {
        while (!eof() && is_ident(s_[p_])) key += s_[p_++];
        if (eof()) return Outcome::Truncated;
      } else {
        return error(cat("expected a key, found '", s_[p_], "'"));
      }
      skip_ws();
      if (eof()) return Outcome::Truncated;
      if (s_[p_] != ':') return error(cat("expected ':' after key '", key, "'"));
      ++p_;
      JValue child;
      const Outcome r = value(&child, depth + 1);
      v->members.push_back({std::move(key), std::move(child)});
      if (r != Outcome::Ok) return r;
      skip_ws();
      if (eof()) return Outcome::Truncated;
      const char n = s_[p_];
      if (n != ',' && n != '}' && n != '"' && n != '\'' && !is_ident_start(n))
        return error(cat("expected ',' or '}', found '", n, "'"));
    }
  }

  Outcome array(JValue* v, int depth) {
    v->kind = JValue::Kind::Array;
    ++p_;
    for (;;) {
      while (!eof() && (is_space(s_[p_]) || s_[p_] == ',')) ++p_;
      if (eof()) return Outcome::Truncated;
      if (s_[p_] == ']') {
        ++p_;
        return Outcome::Ok;
      }
      JValue child;
      const Outcome r = value(&child, depth + 1);
      v->items.push_back(std::move(child));
      if (r != Outcome::Ok) return r;
      skip_ws();
      if (eof()) return Outcome::Truncated;
      const char n = s_[p_];
      if (n != ',' && n != ']' && !value_start(n)) return error(cat("expected ',' or ']', found '", n, "'"));
    }
  }

  static void put_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += char(cp);
    } else if (cp < 0x800) {
      *out += char(0xC0 | (cp >> 6));
      *out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += char(0xE0 | (cp >> 12));
      *out += char(0x80 | ((cp >> 6) & 0x3F));
      *out += char(0x80 | (cp & 0x3F));
    } else {
      *out += char(0xF0 | (cp >> 18));
      *out += char(0x80 | ((cp >> 12) & 0x3F));
      *out += char(0x80 | ((cp >> 6) & 0x3F));
      *out += char(0x80 | (cp & 0x3F));
    }
  }

  // 4 hex digits at p_; -1 at a malformed escape, -2 at the end of the text.
  int hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      if (eof()) return -2;
      const char h = s_[p_];
      int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + uint32_t(d);
      ++p_;
    }
    return int(v);
  }

  Outcome string(std::string* out) {
    const char quote = s_[p_++];
    for (;;) {
      if (eof()) return Outcome::Truncated;
      const char c = s_[p_++];
      if (c == quote) return Outcome::Ok;
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (eof()) return Outcome::Truncated;
      const char e = s_[p_++];
      switch (e) {
        case 'n': *out += '\n'; break;
        case 't': *out += '\t'; break;
        case 'r': *out += '\r'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'u': {
          int cp = hex4();
          if (cp == -2) return Outcome::Truncated;
          if (cp < 0) return error("bad \\u escape");
          if (cp >= 0xD800 && cp < 0xDC00 && p_ + 1 < s_.size() && s_[p_] == '\\' && s_[p_ + 1] == 'u') {
            p_ += 2;
            const int lo = hex4();
            if (lo == -2) return Outcome::Truncated;
            if (lo < 0) return error("bad \\u escape");
            cp = (lo >= 0xDC00 && lo < 0xE000) ? 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00) : 0xFFFD;
          } else if (cp >= 0xD800 && cp < 0xE000) {
            cp = 0xFFFD;
          }
          put_utf8(uint32_t(cp), out);
          break;
        }
        default: *out += e;  // \" \' \\ \/ and anything else: the character itself
      }
    }
  }

  Outcome number(JValue* v) {
    const size_t start = p_;
    bool neg = false;
    if (s_[p_] == '+' || s_[p_] == '-') neg = s_[p_++] == '-';
    const size_t digits = p_;
    while (!eof() && (is_digit(s_[p_]) || s_[p_] == '.')) ++p_;
    if (!eof() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      ++p_;
      if (!eof() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      while (!eof() && is_digit(s_[p_])) ++p_;
    }
    // A number that runs into the end may have lost digits ("40" of "400").
    if (eof()) return Outcome::Truncated;
    double d = 0;
    auto r = std::from_chars(s_.data() + digits, s_.data() + p_, d);
    if (r.ec != std::errc() || r.ptr != s_.data() + p_ || !std::isfinite(d))
      return error(cat("bad number '", excerpt(s_, start, p_, 24), "'"));
    v->kind = JValue::Kind::Number;
    v->number = neg ? -d : d;
    return Outcome::Ok;
  }

  Outcome word(JValue* v) {
    const size_t start = p_;
    while (!eof() && is_ident(s_[p_])) ++p_;
    if (eof()) return Outcome::Truncated;  // "tru" may have been "true"
    const std::string_view w = s_.substr(start, p_ - start);
    if (w == "true" || w == "True") {
      v->kind = JValue::Kind::Bool;
      v->number = 1;
    } else if (w == "false" || w == "False") {
      v->kind = JValue::Kind::Bool;
    } else if (w == "null" || w == "None") {
      v->kind = JValue::Kind::Null;
    } else {
      p_ = start;
      return error(cat("unexpected word '", excerpt(w, 0, w.size(), 24), "'"));
    }
    return Outcome::Ok;
  }

  std::string_view s_;
  size_t p_ = 0;
  std::string why_;
};

bool is_box_key(const std::string& k) { return k == "bbox_2d" || k == "bbox" || k == "box_2d" || k == "box"; }
bool is_point_key(const std::string& k) { return k == "point_2d" || k == "point"; }
bool is_label_key(const std::string& k) {
  return k == "label" || k == "text_content" || k == "text" || k == "name" || k == "category";
}
bool is_score_key(const std::string& k) { return k == "score" || k == "confidence" || k == "conf"; }

bool looks_like_box(std::string_view fragment) {
  const std::string l = lower(fragment);
  return l.find("bbox") != std::string::npos || l.find("point") != std::string::npos ||
         l.find("box") != std::string::npos || l.find("label") != std::string::npos;
}

bool number_of(const JValue& v, double* out, bool* was_string) {
  if (v.kind == JValue::Kind::Number) {
    *out = v.number;
    return true;
  }
  if (v.kind != JValue::Kind::String) return false;
  const std::string_view s = trim(v.str);
  size_t p = 0;
  bool at_end;
  if (!read_plain_number(s, &p, out, &at_end) || p != s.size()) return false;
  *was_string = true;
  return true;
}

// Coordinates of a bbox_2d/point_2d value: [x1,y1,x2,y2], [[x1,y1],[x2,y2]],
// numeric strings, or the whole list as one string.
bool coords_of(const JValue& v, std::vector<double>* out, std::vector<std::string>* notes, std::string* why) {
  if (v.kind == JValue::Kind::String) {
    if (!extract_numbers(v.str, out, why)) return false;
    notes->push_back("coordinates given as a string");
    return true;
  }
  if (v.kind != JValue::Kind::Array) {
    *why = "coordinates are not a list";
    return false;
  }
  bool strings = false;
  for (const JValue& item : v.items) {
    double d;
    if (number_of(item, &d, &strings)) {
      out->push_back(d);
    } else if (item.kind == JValue::Kind::Array) {
      for (const JValue& inner : item.items) {
        if (!number_of(inner, &d, &strings)) {
          *why = "a coordinate is not a number";
          return false;
        }
        out->push_back(d);
      }
    } else {
      *why = "a coordinate is not a number";
      return false;
    }
  }
  if (strings) notes->push_back("coordinates given as strings");
  return true;
}

struct JsonWalk {
  Collector* c;
  Outcome outcome;  // how the parse of the current top-level value ended
  std::string why;  // and why, for Error
  size_t stop;      // where it ended
  int found = 0;    // boxes plus reports from this value

  void report_incomplete(const JValue& v) {
    const std::string reason =
        outcome == Outcome::Truncated ? std::string("truncated: the answer ends inside this object")
                                      : cat(why, " at offset ", stop);
    c->fail(v.begin, cat(reason, ": ", excerpt(c->text, v.begin, std::max(v.end, v.begin + 1))));
    ++found;
  }

  // sibling_of_boxes: an element of a list that already gave boxes, where even
  // a bare "{" cut off by the end of the answer is a lost box.
  void object(const JValue& v, bool sibling_of_boxes) {
    const JValue* coords = nullptr;
    bool point = false;
    for (const auto& [k, child] : v.members) {
      const std::string key = lower(k);
      if (!coords && (is_box_key(key) || is_point_key(key))) {
        coords = &child;
        point = is_point_key(key);
      }
    }
    if (!v.complete) {
      bool nested = false;
      for (const auto& m : v.members)
        nested |= m.value.kind == JValue::Kind::Array || m.value.kind == JValue::Kind::Object;
      if (coords || (!nested && (sibling_of_boxes || looks_like_box(excerpt(c->text, v.begin, v.end, 400))))) {
        report_incomplete(v);
        return;
      }
    }
    if (!coords) {
      for (const auto& m : v.members) walk(m.value);
      return;
    }
    RawBox b{RawBox::Source::Json, v.begin, "", {}, point, {}, {}};
    for (const auto& [k, child] : v.members) {
      const std::string key = lower(k);
      if (is_label_key(key) && b.label.empty()) {
        if (child.kind == JValue::Kind::String) b.label = child.str;
        else if (child.kind == JValue::Kind::Number) b.label = num(child.number);
      } else if (is_score_key(key) && !b.score) {
        double d;
        bool s = false;
        if (number_of(child, &d, &s)) b.score = d;
      }
    }
    std::string why_bad;
    std::vector<double> xs;
    ++found;
    const std::string where = excerpt(c->text, v.begin, v.end);
    if (!coords_of(*coords, &xs, &b.notes, &why_bad)) {
      c->fail(v.begin, cat(why_bad, ": ", where));
      return;
    }
    if (point && xs.size() == 4 && xs[0] == xs[2] && xs[1] == xs[3]) xs.resize(2);
    if (point ? xs.size() != 2 : xs.size() != 4) {
      if (!point && xs.size() >= 6 && xs.size() % 2 == 0) {
        b.notes.push_back(cat("polygon of ", xs.size() / 2, " points reduced to its bounding box"));
        xs = bounds_of_points(xs);
      } else {
        c->fail(v.begin, cat(point ? "point needs 2 values" : "box needs 4 values", ", got ", xs.size(), ": ", where));
        return;
      }
    }
    b.v = std::move(xs);
    c->boxes.push_back(std::move(b));
  }

  void walk(const JValue& v, bool sibling_of_boxes = false) {
    if (v.kind == JValue::Kind::Object) {
      object(v, sibling_of_boxes);
    } else if (v.kind == JValue::Kind::Array) {
      const int before = found;
      for (const JValue& item : v.items) walk(item, found > before);
    }
  }
};

void parse_json(Collector* c) {
  const std::string_view s = c->text;
  LenientJson parser(s);
  // Bounds the work on adversarial text (a parse restarts after a failed
  // attempt): a few passes over the answer at most.
  size_t budget = 64 * s.size() + 4096;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] != '[' && s[i] != '{') ++i;
    if (i >= s.size()) break;
    JValue v;
    const Outcome r = parser.parse(i, &v);
    const size_t stop = std::max(parser.stop(), i + 1);
    JsonWalk w{c, r, parser.why(), stop};
    w.walk(v);
    const size_t spent = stop - i;
    if (spent >= budget) {
      c->fail(i, "gave up: the answer is too irregular to scan for JSON");
      break;
    }
    budget -= spent;
    if (r == Outcome::Ok) i = stop;
    else if (r == Outcome::Error) i = std::max(stop, i + 1);
    // A value that ran to the end without anything box-like was probably
    // prose ("['s ..."); look for JSON after its opening bracket.
    else i = w.found > 0 ? s.size() : i + 1;
  }
}

// ---------------------------------------------------------------------------
// Frames

bool uses_absolute_pixels(BoxFormat f) { return f == BoxFormat::Qwen25VL; }

void map_box(const RawBox& raw, BoxFormat fmt, const GroundingFrame& f, GroundingResult* out) {
  const bool absolute = uses_absolute_pixels(fmt);
  const double lim_x = absolute ? f.input_w : 1000.0, lim_y = absolute ? f.input_h : 1000.0;
  // x * W / lim rather than x * (W / lim): the edge of the frame then maps
  // exactly onto the edge of the image, and rounding stays monotone.
  auto mx = [&](double x) { return x * f.orig_w / lim_x; };
  auto my = [&](double y) { return y * f.orig_h / lim_y; };
  GroundedBox b;
  b.label = raw.label;
  b.score = raw.score;
  b.is_point = raw.is_point;
  b.notes = raw.notes;
  std::vector<double> v = raw.v;
  static const char* const kBoxNames[] = {"x1", "y1", "x2", "y2"};
  static const char* const kPointNames[] = {"x", "y"};
  for (size_t k = 0; k < v.size(); ++k) {
    const double lim = k % 2 == 0 ? lim_x : lim_y;
    const double clamped = std::clamp(v[k], 0.0, lim);
    if (clamped != v[k]) {
      b.notes.push_back(cat("clamped ", raw.is_point ? kPointNames[k] : kBoxNames[k], " from ", num(v[k]), " to ",
                            num(clamped)));
      v[k] = clamped;
    }
  }
  if (raw.is_point) {
    b.x1 = b.x2 = mx(v[0]);
    b.y1 = b.y2 = my(v[1]);
  } else {
    if (v[0] > v[2]) {
      b.notes.push_back(cat("swapped reversed corners: x1 ", num(v[0]), " > x2 ", num(v[2])));
      std::swap(v[0], v[2]);
    }
    if (v[1] > v[3]) {
      b.notes.push_back(cat("swapped reversed corners: y1 ", num(v[1]), " > y2 ", num(v[3])));
      std::swap(v[1], v[3]);
    }
    if (v[0] == v[2] || v[1] == v[3]) b.notes.push_back("box has zero width or height");
    b.x1 = mx(v[0]);
    b.y1 = my(v[1]);
    b.x2 = mx(v[2]);
    b.y2 = my(v[3]);
  }
  out->boxes.push_back(std::move(b));
}

bool valid_size(int w, int h) { return w > 0 && h > 0; }

// JSON strings must be valid UTF-8; a model (or a fuzzer) may emit anything.
void append_json_string(std::string_view s, std::string* out) {
  *out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        *out += '\\';
        *out += char(c);
      } else if (c == '\n') {
        *out += "\\n";
      } else if (c == '\t') {
        *out += "\\t";
      } else if (c < 0x20 || c == 0x7F) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        *out += buf;
      } else {
        *out += char(c);
      }
      ++i;
      continue;
    }
    const int len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    bool ok = len > 0 && i + size_t(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && len >= 3) {
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      // Overlong forms, surrogates and code points past U+10FFFF.
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
        ok = false;
    }
    if (ok) {
      out->append(s.substr(i, size_t(len)));
      i += size_t(len);
    } else {
      *out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  *out += '"';
}

std::string coord(double v) {
  double r = std::round(v * 10.0) / 10.0;
  if (r == 0) r = 0;  // no "-0"
  char buf[64];
  if (r == std::floor(r)) std::snprintf(buf, sizeof buf, "%.0f", r);
  else std::snprintf(buf, sizeof buf, "%.1f", r);
  return buf;
}

}  // namespace

GroundingResult parse_grounding(std::string_view answer, BoxFormat fmt, const GroundingFrame& f) {
  Collector c{answer, {}, {}};
  parse_tagged(kQwen2Tags, &c);
  parse_tagged(kV1Tags, &c);
  parse_json(&c);

  // Without the special tokens a Qwen2-VL answer is bare "(x1,y1),(x2,y2)";
  // only looked for when nothing else was found, since prose has parentheses too.
  if (c.boxes.empty() && (fmt == BoxFormat::Auto || fmt == BoxFormat::Qwen2VL || fmt == BoxFormat::QwenVL))
    parse_bare_pairs(&c);
  bool has[4] = {false, false, false, false};
  for (const RawBox& b : c.boxes) has[int(b.source)] = true;
  const bool any_tagged = has[int(RawBox::Source::Qwen2Tags)] || has[int(RawBox::Source::V1Tags)];

  GroundingResult out;
  out.format = fmt;
  if (fmt == BoxFormat::Auto) {
    if (has[int(RawBox::Source::Qwen2Tags)] || has[int(RawBox::Source::Bare)]) {
      out.format = BoxFormat::Qwen2VL;
    } else if (has[int(RawBox::Source::V1Tags)]) {
      out.format = BoxFormat::QwenVL;
    } else if (has[int(RawBox::Source::Json)]) {
      out.format = BoxFormat::Qwen25VL;
      out.notes.push_back(
          "format auto: JSON boxes read as Qwen2.5-VL (absolute pixels of the resized input); "
          "Qwen3-VL writes 0..1000 instead: give the format or the model type to be sure");
    }
  } else if (has[int(RawBox::Source::Json)] && !any_tagged &&
             (fmt == BoxFormat::Qwen2VL || fmt == BoxFormat::QwenVL)) {
    out.notes.push_back(cat("JSON boxes in a ", box_format_name(fmt), " answer read as 0..1000 of the image"));
  }

  std::stable_sort(c.boxes.begin(), c.boxes.end(),
                   [](const RawBox& a, const RawBox& b) { return a.offset < b.offset; });
  std::stable_sort(c.unparsed.begin(), c.unparsed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string frame_problem;
  if (!valid_size(f.orig_w, f.orig_h))
    frame_problem = cat("the frame has no image size (", f.orig_w, "x", f.orig_h, ")");
  else if (uses_absolute_pixels(out.format) && !valid_size(f.input_w, f.input_h))
    frame_problem = cat("the frame has no model input size (", f.input_w, "x", f.input_h,
                        "), which Qwen2.5-VL's absolute pixels need");
  for (const RawBox& b : c.boxes) {
    if (!frame_problem.empty())
      out.unparsed.push_back(cat("cannot map box '", b.label, "': ", frame_problem));
    else
      map_box(b, out.format, f, &out);
  }
  for (auto& u : c.unparsed) out.unparsed.push_back(std::move(u.second));
  return out;
}

std::string boxes_to_json(const GroundingResult& r) {
  if (r.boxes.empty()) return "[]";
  std::string out = "[\n";
  for (size_t i = 0; i < r.boxes.size(); ++i) {
    const GroundedBox& b = r.boxes[i];
    out += "  {\"label\": ";
    append_json_string(b.label, &out);
    out += cat(", \"box\": [", coord(b.x1), ", ", coord(b.y1), ", ", coord(b.x2), ", ", coord(b.y2), "]");
    if (b.is_point) out += cat(", \"point\": [", coord(b.x1), ", ", coord(b.y1), "]");
    if (b.score && std::isfinite(*b.score)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g", *b.score);
      out += cat(", \"score\": ", buf);
    }
    out += i + 1 < r.boxes.size() ? "},\n" : "}\n";
  }
  out += "]";
  return out;
}

BoxFormat format_for_model_type(const std::string& model_type) {
  if (model_type == "qwen2_vl") return BoxFormat::Qwen2VL;
  if (model_type == "qwen2_5_vl") return BoxFormat::Qwen25VL;
  if (model_type == "qwen3_vl" || model_type == "qwen3_vl_moe") return BoxFormat::Qwen3VL;
  if (model_type == "qwen") return BoxFormat::QwenVL;
  return BoxFormat::Auto;
}

std::optional<BoxFormat> parse_box_format(std::string_view name) {
  std::string n;
  for (char c : lower(name))
    if (c != '-' && c != '_') n += c;
  if (n == "auto") return BoxFormat::Auto;
  if (n == "qwenvl" || n == "qwen1vl" || n == "qwen") return BoxFormat::QwenVL;
  if (n == "qwen2vl") return BoxFormat::Qwen2VL;
  if (n == "qwen2.5vl" || n == "qwen25vl") return BoxFormat::Qwen25VL;
  if (n == "qwen3vl") return BoxFormat::Qwen3VL;
  return std::nullopt;
}

const char* box_format_name(BoxFormat f) {
  switch (f) {
    case BoxFormat::Auto: return "auto";
    case BoxFormat::QwenVL: return "qwen-vl";
    case BoxFormat::Qwen2VL: return "qwen2-vl";
    case BoxFormat::Qwen25VL: return "qwen2.5-vl";
    case BoxFormat::Qwen3VL: return "qwen3-vl";
  }
  return "?";
}

Expected<GroundingFrame> grounding_frame(const QwenImageConfig& cfg, int orig_w, int orig_h, int64_t min_pixels,
                                         int64_t max_pixels) {
  if (!valid_size(orig_w, orig_h)) return make_error("grounding: invalid image size ", orig_w, "x", orig_h);
  GroundingFrame f{orig_w, orig_h, orig_w, orig_h};
  if (!cfg.do_resize) return f;
  VLM_ASSIGN_OR_RETURN(ImageSize s, smart_resize(orig_h, orig_w, cfg.factor(), min_pixels > 0 ? min_pixels : cfg.min_pixels,
                                                 max_pixels > 0 ? max_pixels : cfg.max_pixels, SmartResizeRule::kHfV5));
  if (s.width <= 0 || s.height <= 0 || s.width > (int64_t(1) << 30) || s.height > (int64_t(1) << 30))
    return make_error("grounding: smart_resize gave ", s.width, "x", s.height);
  f.input_w = int(s.width);
  f.input_h = int(s.height);
  return f;
}

Expected<GroundingFrame> load_grounding_frame(const std::string& model_dir, int orig_w, int orig_h, int64_t min_pixels,
                                              int64_t max_pixels) {
  VLM_ASSIGN_OR_RETURN(QwenImageConfig cfg, load_qwen_image_config(model_dir));
  return grounding_frame(cfg, orig_w, orig_h, min_pixels, max_pixels);
}

GroundingFrame frame_from_grid(int orig_w, int orig_h, int64_t grid_h, int64_t grid_w, int patch_size) {
  return {orig_w, orig_h, int(grid_w * patch_size), int(grid_h * patch_size)};
}

}  // namespace vlm::runtime
