// Python str / dict / list methods and string formatting for chat templates.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <utf8proc.h>

#include "text/jinja_builtins.h"

namespace vlm::text::jinja {

const std::string& str_arg(const Value& v, const char* fn) {
  if (v.is_undefined()) fail(*v.hint);
  if (!v.is_string())
    fail(std::string(fn) + ": expected a string argument, got '" + type_name(v) + "'");
  return v.s();
}

// --------------------------------------------------------------- casing ----

namespace {

utf8proc_category_t category(uint32_t cp) {
  if (cp >= 0xDC80 && cp <= 0xDCFF) return UTF8PROC_CATEGORY_CS;
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}
bool is_cased(uint32_t cp) {
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}
bool is_alpha(uint32_t cp) {
  auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
bool is_decimal(uint32_t cp) { return category(cp) == UTF8PROC_CATEGORY_ND; }
bool is_numeric(uint32_t cp) {
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}
uint32_t to_upper(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
  if (cp >= 0xDC80 && cp <= 0xDCFF) return cp;
  return static_cast<uint32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp)));
}
uint32_t to_lower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if (cp >= 0xDC80 && cp <= 0xDCFF) return cp;
  return static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
}
uint32_t to_title(uint32_t cp) {
  if (cp < 0x80) return to_upper(cp);
  if (cp >= 0xDC80 && cp <= 0xDCFF) return cp;
  return static_cast<uint32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp)));
}
void append_upper(std::string& out, uint32_t cp) {
  if (cp == 0xDF) {  // the one full mapping templates may meet: German sharp s
    out += "SS";
  } else {
    utf8_append(out, to_upper(cp));
  }
}

}  // namespace

std::string py_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) append_upper(out, utf8_next(s, i));
  return out;
}

std::string py_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) utf8_append(out, to_lower(utf8_next(s, i)));
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    utf8_append(out, prev_cased ? to_lower(c) : to_title(c));
    prev_cased = is_cased(c);
  }
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    utf8_append(out, first ? to_title(c) : to_lower(c));
    first = false;
  }
  return out;
}

std::string py_strip(std::string_view s, const std::string* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  if (chars) set = utf8_decode(*chars);
  auto strip_me = [&](uint32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : py_isspace(c);
  };
  // Only the ends are decoded: stripping a long message stays cheap.
  size_t a = 0, b = s.size();
  if (left) {
    while (a < b) {
      size_t j = a;
      if (!strip_me(utf8_next(s, j))) break;
      a = j;
    }
  }
  if (right) {
    while (b > a) {
      size_t k = b - 1;
      for (int n = 0; n < 3 && k > a && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80; ++n) --k;
      size_t j = k;
      uint32_t c = utf8_next(s, j);
      if (j != b) {  // not one well-formed character: the last byte stands alone
        k = b - 1;
        j = k;
        c = utf8_next(s, j);
      }
      if (!strip_me(c)) break;
      b = k;
    }
  }
  return std::string(s.substr(a, b - a));
}

std::string py_replace(Interp& in, const std::string& s, const std::string& old,
                       const std::string& repl, int64_t count) {
  in.charge(s.size());
  std::string out;
  auto grow = [&](size_t extra) {
    in.check_string(out.size() + extra);
  };
  if (old.empty()) {
    // Python inserts the replacement before every character and at the end.
    int64_t done = 0;
    for (size_t i = 0; i < s.size();) {
      if (count < 0 || done < count) {
        grow(repl.size());
        out += repl;
        ++done;
      }
      size_t b = i;
      utf8_next(s, i);
      out.append(s, b, i - b);
    }
    if (count < 0 || done < count) {
      grow(repl.size());
      out += repl;
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(old, pos);
    if (hit == std::string::npos) break;
    grow(hit - pos + repl.size());
    out.append(s, pos, hit - pos);
    out += repl;
    pos = hit + old.size();
    ++done;
  }
  grow(s.size() - pos);
  out.append(s, pos, std::string::npos);
  return out;
}

std::string py_pad(Interp& in, const std::string& s, int64_t width, char align, uint32_t fill) {
  int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return s;
  int64_t marg = width - len;
  in.check_string(s.size() + static_cast<size_t>(marg) * 4);
  int64_t left = 0;
  if (align == '>') left = marg;
  if (align == '^') left = marg / 2 + (marg & width & 1);  // CPython's centering rule
  std::string f;
  utf8_append(f, fill);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += f;
  out += s;
  for (int64_t i = left; i < marg; ++i) out += f;
  return out;
}

// ------------------------------------------------------ printf formatting ----

namespace {

std::string int_text(int64_t v, char type, bool alt) {
  char buf[96];
  unsigned long long mag = v < 0 ? 0ull - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
  const char* sign = v < 0 ? "-" : "";
  switch (type) {
    case 'x': std::snprintf(buf, sizeof buf, "%s%s%llx", sign, alt ? "0x" : "", mag); break;
    case 'X': std::snprintf(buf, sizeof buf, "%s%s%llX", sign, alt ? "0X" : "", mag); break;
    case 'o': std::snprintf(buf, sizeof buf, "%s%s%llo", sign, alt ? "0o" : "", mag); break;
    case 'b': {
      std::string bits;
      do {
        bits.insert(bits.begin(), static_cast<char>('0' + (mag & 1)));
        mag >>= 1;
      } while (mag);
      return std::string(sign) + (alt ? "0b" : "") + bits;
    }
    default: std::snprintf(buf, sizeof buf, "%s%llu", sign, mag); break;
  }
  return buf;
}

std::string float_text(double v, char type, int prec, bool alt) {
  if (std::isnan(v)) return type >= 'A' && type <= 'Z' ? "NAN" : "nan";
  if (std::isinf(v)) {
    std::string s = v < 0 ? "-inf" : "inf";
    return type >= 'A' && type <= 'Z' ? py_upper(s) : s;
  }
  char f[16];
  std::snprintf(f, sizeof f, "%%%s.%d%c", alt ? "#" : "", prec, type);
  int n = std::snprintf(nullptr, 0, f, v);
  std::string out(static_cast<size_t>(n), '\0');
  std::snprintf(out.data(), out.size() + 1, f, v);
  return out;
}

// Applies sign/zero-padding/width to a formatted number or string.
// printf pads every field on the left unless '-' is given; str.format
// left-aligns strings and right-aligns numbers.
std::string finish_field(Interp& in, std::string body, bool numeric, char sign_flag, bool zero,
                         bool left, int64_t width, char align = 0, uint32_t fill = ' ',
                         bool printf_style = false) {
  if (numeric && sign_flag && !body.empty() && body[0] != '-') body.insert(body.begin(), sign_flag);
  int64_t len = static_cast<int64_t>(utf8_length(body));
  if (width <= len) return body;
  if (zero && numeric && !left && !align) {
    size_t at = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
    if (body.compare(at, 2, "0x") == 0 || body.compare(at, 2, "0X") == 0 || body.compare(at, 2, "0o") == 0 ||
        body.compare(at, 2, "0b") == 0)
      at += 2;
    in.check_string(static_cast<size_t>(width));
    body.insert(at, static_cast<size_t>(width - len), '0');
    return body;
  }
  if (!align) align = left ? '<' : (numeric || printf_style ? '>' : '<');
  return py_pad(in, body, width, align, fill);
}

int64_t parse_count(const std::string& f, size_t& i) {
  int64_t v = 0;
  while (i < f.size() && f[i] >= '0' && f[i] <= '9') {
    v = v * 10 + (f[i++] - '0');
    if (v > 100000) fail("format width or precision too large");
  }
  return v;
}

double number_arg(const Value& v, char type) {
  if (v.is_undefined()) fail(*v.hint);
  if (!v.is_number())
    fail(std::string("%") + type + " format: a real number is required, not " + type_name(v));
  return as_double(*v.j);
}

}  // namespace

std::string percent_format(Interp& in, const std::string& fmt, const Value& rhs) {
  // Count conversions: a list on the right is unpacked like Python's tuple
  // when it supplies exactly that many values.
  size_t convs = 0;
  bool named = false;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') continue;
    if (i + 1 < fmt.size() && fmt[i + 1] == '%') {
      ++i;
      continue;
    }
    ++convs;
    if (i + 1 < fmt.size() && fmt[i + 1] == '(') named = true;
  }
  std::vector<Value> args;
  if (!named) {
    if (rhs.is_list() && rhs.j->size() == convs && convs != 1) {
      args = in.iterate(rhs);
    } else if (rhs.is_list() && convs == 1 && rhs.j->size() == 1) {
      args = in.iterate(rhs);
    } else {
      args.push_back(rhs);
    }
  }
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size();) {
    char c = fmt[i];
    if (c != '%') {
      out.push_back(c);
      ++i;
      continue;
    }
    ++i;
    if (i >= fmt.size()) fail("incomplete format");
    if (fmt[i] == '%') {
      out.push_back('%');
      ++i;
      continue;
    }
    const Value* arg = nullptr;
    Value keyed;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) fail("incomplete format key");
      if (!rhs.is_dict()) fail("format requires a mapping");
      keyed = in.getitem(rhs, Value::str(fmt.substr(i + 1, close - i - 1)));
      if (keyed.is_undefined()) fail("KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      arg = &keyed;
      i = close + 1;
    }
    bool left = false, zero = false, alt = false;
    char sign = 0;
    for (; i < fmt.size(); ++i) {
      char fl = fmt[i];
      if (fl == '-') {
        left = true;
      } else if (fl == '0') {
        zero = true;
      } else if (fl == '+') {
        sign = '+';
      } else if (fl == ' ') {
        if (!sign) sign = ' ';
      } else if (fl == '#') {
        alt = true;
      } else {
        break;
      }
    }
    int64_t width = parse_count(fmt, i);
    int prec = -1;
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      prec = static_cast<int>(parse_count(fmt, i));
    }
    while (i < fmt.size() && (fmt[i] == 'l' || fmt[i] == 'h' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) fail("incomplete format");
    char type = fmt[i++];
    if (!arg) {
      if (next >= args.size()) fail("not enough arguments for format string");
      arg = &args[next++];
    }
    std::string body;
    bool numeric = true;
    switch (type) {
      case 's':
      case 'r':
      case 'a':
        body = type == 's' ? to_str(*arg) : repr(*arg);
        if (prec >= 0 && static_cast<size_t>(prec) < utf8_length(body)) {
          auto cps = utf8_decode(body);
          cps.resize(static_cast<size_t>(prec));
          body = utf8_encode(cps);
        }
        numeric = false;
        break;
      case 'd':
      case 'i':
      case 'u': {
        double d = number_arg(*arg, type);
        int64_t v = arg->is_float() ? static_cast<int64_t>(std::trunc(d)) : as_int(*arg, "%d");
        body = int_text(v, 'd', false);
        break;
      }
      case 'x':
      case 'X':
      case 'o':
        if (!arg->is_int() && !arg->is_bool())
          fail(std::string("%") + type + " format: an integer is required, not " + type_name(*arg));
        body = int_text(as_int(*arg, "%x"), type, alt);
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        body = float_text(number_arg(*arg, type), type, prec < 0 ? 6 : prec, alt);
        break;
      case 'c':
        if (arg->is_string() && utf8_length(arg->s()) == 1) {
          body = arg->s();
        } else if (arg->is_int()) {
          int64_t v = as_int(*arg, "%c");
          if (v < 0 || v > 0x10FFFF) fail("%c arg not in range(0x110000)");
          utf8_append(body, static_cast<uint32_t>(v));
        } else {
          fail("%c requires int or char");
        }
        numeric = false;
        break;
      default: fail(std::string("unsupported format character '") + type + "'");
    }
    out += finish_field(in, std::move(body), numeric, sign, zero, left, width, 0, ' ', true);
    in.check_string(out.size());
  }
  if (!named && next < args.size()) fail("not all arguments converted during string formatting");
  return out;
}

// ------------------------------------------------------------ str.format ----

namespace {

// The format-spec mini-language: [[fill]align][sign][#][0][width][,][.prec][type].
std::string apply_spec(Interp& in, const Value& v, const std::string& spec) {
  if (spec.empty()) return to_str(v);
  std::vector<uint32_t> cps = utf8_decode(spec);
  size_t i = 0;
  uint32_t fill = ' ';
  char align = 0;
  auto is_align = [](uint32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (cps.size() >= 2 && is_align(cps[1])) {
    fill = cps[0];
    align = static_cast<char>(cps[1]);
    i = 2;
  } else if (!cps.empty() && is_align(cps[0])) {
    align = static_cast<char>(cps[0]);
    i = 1;
  }
  std::string rest = utf8_encode(std::vector<uint32_t>(cps.begin() + static_cast<long>(i), cps.end()));
  size_t k = 0;
  char sign = 0;
  if (k < rest.size() && (rest[k] == '+' || rest[k] == '-' || rest[k] == ' ')) {
    sign = rest[k] == '-' ? 0 : rest[k];
    ++k;
  }
  bool alt = false, zero = false;
  if (k < rest.size() && rest[k] == '#') {
    alt = true;
    ++k;
  }
  if (k < rest.size() && rest[k] == '0') {
    zero = true;
    ++k;
  }
  int64_t width = parse_count(rest, k);
  if (k < rest.size() && (rest[k] == ',' || rest[k] == '_')) fail("thousands separators are not supported");
  int prec = -1;
  if (k < rest.size() && rest[k] == '.') {
    ++k;
    prec = static_cast<int>(parse_count(rest, k));
  }
  char type = k < rest.size() ? rest[k++] : 0;
  if (k != rest.size()) fail("invalid format specifier");
  std::string body;
  bool numeric = v.is_number() && type != 's';
  if (type == 0 || type == 's') {
    if (v.is_float() && prec >= 0) {
      body = float_text(as_double(*v.j), 'g', prec, alt);
    } else {
      body = to_str(v);
      if (!numeric && prec >= 0 && static_cast<size_t>(prec) < utf8_length(body)) {
        auto c = utf8_decode(body);
        c.resize(static_cast<size_t>(prec));
        body = utf8_encode(c);
      }
    }
  } else if (std::strchr("dxXob", type)) {
    if (!v.is_int() && !v.is_bool()) fail(std::string("unknown format code '") + type + "' for object of type '" + type_name(v) + "'");
    body = int_text(as_int(v, "format"), type, alt);
  } else if (std::strchr("fFeEgG%", type)) {
    if (!v.is_number()) fail(std::string("unknown format code '") + type + "' for object of type '" + type_name(v) + "'");
    double d = as_double(*v.j);
    if (type == '%') {
      body = float_text(d * 100, 'f', prec < 0 ? 6 : prec, alt) + "%";
    } else {
      body = float_text(d, type, prec < 0 ? 6 : prec, alt);
    }
  } else {
    fail(std::string("unknown format code '") + type + "'");
  }
  if (align == '=') {
    align = 0;
    zero = true;
  }
  return finish_field(in, std::move(body), numeric, sign, zero && !align, false, width, align, fill);
}

std::string str_format(Interp& in, const std::string& fmt, Args& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size();) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        i += 2;
        continue;
      }
      fail("single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) fail("single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close + 1;
    std::string spec, conv;
    size_t colon = field.find(':');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      conv = field.substr(bang + 1);
      field.resize(bang);
    }
    size_t name_end = field.find_first_of(".[");
    std::string head = field.substr(0, name_end);
    Value v;
    if (head.empty()) {
      if (auto_index >= args.pos.size()) fail("Replacement index " + std::to_string(auto_index) + " out of range");
      v = args.pos[auto_index++];
    } else if (std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t idx = std::stoul(head.substr(0, 9));
      if (idx >= args.pos.size()) fail("Replacement index " + head + " out of range");
      v = args.pos[idx];
    } else {
      bool found = false;
      for (auto& [k, kv] : args.kw)
        if (k == head) {
          v = kv;
          found = true;
        }
      if (!found) fail("KeyError: '" + head + "'");
    }
    // Accessors: .attr and [key].
    for (size_t p = name_end; p != std::string::npos && p < field.size();) {
      if (field[p] == '.') {
        size_t e = field.find_first_of(".[", p + 1);
        v = in.getattr(v, field.substr(p + 1, e == std::string::npos ? std::string::npos : e - p - 1));
        p = e;
      } else {
        size_t e = field.find(']', p);
        if (e == std::string::npos) fail("missing ']' in format string");
        std::string key = field.substr(p + 1, e - p - 1);
        bool digits = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; });
        v = in.getitem(v, digits ? Value::integer(std::stoll(key.substr(0, 18))) : Value::str(key));
        p = e + 1;
      }
    }
    if (conv == "r" || conv == "a") {
      v = Value::str(repr(v));
    } else if (conv == "s") {
      v = Value::str(to_str(v));
    } else if (!conv.empty()) {
      fail("unknown conversion specifier " + conv);
    }
    out += apply_spec(in, v, spec);
    in.check_string(out.size());
  }
  return out;
}

// ------------------------------------------------------------ str methods ----

std::vector<std::string> split_ws(const std::string& s, int64_t maxsplit, bool from_right) {
  std::vector<std::pair<size_t, size_t>> words;
  for (size_t i = 0; i < s.size();) {
    size_t n = py_space_len(s, i);
    if (n) {
      i += n;
      continue;
    }
    size_t b = i;
    while (i < s.size() && py_space_len(s, i) == 0) utf8_next(s, i);
    words.emplace_back(b, i);
  }
  std::vector<std::string> out;
  if (maxsplit < 0 || static_cast<size_t>(maxsplit) + 1 >= words.size()) {
    for (auto& [b, e] : words) out.push_back(s.substr(b, e - b));
    return out;
  }
  size_t m = static_cast<size_t>(maxsplit);
  if (!from_right) {
    for (size_t k = 0; k < m; ++k) out.push_back(s.substr(words[k].first, words[k].second - words[k].first));
    // The remainder keeps its inner and trailing whitespace, minus leading.
    out.push_back(py_strip(std::string_view(s).substr(words[m].first), nullptr, true, false));
  } else {
    size_t keep = words.size() - m;
    out.push_back(py_strip(std::string_view(s).substr(0, words[keep - 1].second), nullptr, false, true));
    for (size_t k = keep; k < words.size(); ++k)
      out.push_back(s.substr(words[k].first, words[k].second - words[k].first));
  }
  return out;
}

std::vector<std::string> split_sep(const std::string& s, const std::string& sep, int64_t maxsplit,
                                   bool from_right) {
  if (sep.empty()) fail("empty separator");
  std::vector<std::string> out;
  if (!from_right) {
    size_t pos = 0;
    int64_t n = 0;
    while (maxsplit < 0 || n < maxsplit) {
      size_t hit = s.find(sep, pos);
      if (hit == std::string::npos) break;
      out.push_back(s.substr(pos, hit - pos));
      pos = hit + sep.size();
      ++n;
    }
    out.push_back(s.substr(pos));
    return out;
  }
  size_t end = s.size();
  int64_t n = 0;
  while (maxsplit < 0 || n < maxsplit) {
    if (end < sep.size()) break;
    size_t hit = s.rfind(sep, end - sep.size());
    if (hit == std::string::npos) break;
    out.push_back(s.substr(hit + sep.size(), end - hit - sep.size()));
    end = hit;
    ++n;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

bool is_line_break(uint32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

Value string_list(Interp& in, const std::vector<std::string>& parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::str(p));
  return in.make_list(std::move(items));
}

// Predicate methods (isdigit, ...): false on the empty string.
template <class F>
bool all_cps(const std::string& s, F f) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size();)
    if (!f(utf8_next(s, i))) return false;
  return true;
}

// str.islower/isupper: at least one cased character, none of the other case.
bool case_test(const std::string& s, bool want_lower) {
  bool any = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    auto cat = category(c);
    if (cat == UTF8PROC_CATEGORY_LT) return false;
    if (cat == UTF8PROC_CATEGORY_LU) {
      if (want_lower) return false;
      any = true;
    } else if (cat == UTF8PROC_CATEGORY_LL) {
      if (!want_lower) return false;
      any = true;
    }
  }
  return any;
}

// Optional start/end arguments of find/count/startswith, in code points,
// turned into a byte range of s.
void sub_range(const std::string& s, const ArgBind& b, size_t first, size_t& lo, size_t& hi) {
  lo = 0;
  hi = s.size();
  if (!b.has(first) && !b.has(first + 1)) return;
  auto cps = utf8_decode(s);
  int64_t n = static_cast<int64_t>(cps.size());
  auto clamp = [&](const Value* v, int64_t dflt) {
    if (!v || v->is_none()) return dflt;
    int64_t x = as_int(*v, "index");
    if (x < 0) x = std::max<int64_t>(0, x + n);
    return std::min(x, n);
  };
  int64_t a = clamp(b[first], 0), e = clamp(b[first + 1], n);
  auto byte_at = [&](int64_t cp_index) {
    std::string pre = utf8_encode(std::vector<uint32_t>(cps.begin(), cps.begin() + cp_index));
    return pre.size();
  };
  lo = byte_at(a);
  hi = std::max(lo, byte_at(std::max(a, e)));
}

int64_t cp_index(const std::string& s, size_t byte) { return static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, byte))); }

// Python str attributes: all of them count as "present" for attribute lookup.
const char* const kStrMethods[] = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
    "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
    "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper",
    "join", "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix", "removesuffix",
    "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
    "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"};
const char* const kDictMethods[] = {"copy", "fromkeys", "get", "items", "keys", "values"};
const char* const kDictMutators[] = {"clear", "pop", "popitem", "setdefault", "update"};
const char* const kListMethods[] = {"copy", "count", "index"};
const char* const kListMutators[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};

template <size_t N>
bool in_list(const char* const (&list)[N], const std::string& name) {
  for (const char* m : list)
    if (name == m) return true;
  return false;
}

Value str_method(Interp& in, const std::string& s, const std::string& name, Args& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgBind b(name.c_str(), args, {"chars"});
    const std::string* chars = b.has(0) && !b[0]->is_none() ? &str_arg(*b[0], name.c_str()) : nullptr;
    return Value::str(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    ArgBind b(name.c_str(), args, {"sep", "maxsplit"});
    int64_t maxsplit = b.has(1) ? as_int(*b[1], "maxsplit") : -1;
    bool right = name == "rsplit";
    if (!b.has(0) || b[0]->is_none()) return string_list(in, split_ws(s, maxsplit, right));
    return string_list(in, split_sep(s, str_arg(*b[0], "split"), maxsplit, right));
  }
  if (name == "splitlines") {
    ArgBind b("splitlines", args, {"keepends"});
    bool keep = b.has(0) && truthy(*b[0]);
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t i = 0; i < s.size();) {
      size_t b0 = i;
      uint32_t c = utf8_next(s, i);
      if (!is_line_break(c)) continue;
      if (c == '\r' && i < s.size() && s[i] == '\n') ++i;
      parts.push_back(s.substr(start, (keep ? i : b0) - start));
      start = i;
    }
    if (start < s.size()) parts.push_back(s.substr(start));
    return string_list(in, parts);
  }
  if (name == "startswith" || name == "endswith") {
    ArgBind b(name.c_str(), args, {"prefix", "start", "end"});
    if (!b.has(0)) fail(name + "() takes at least 1 argument");
    size_t lo, hi;
    sub_range(s, b, 1, lo, hi);
    std::string_view view = std::string_view(s).substr(lo, hi - lo);
    std::vector<Value> options;
    if (b[0]->is_list()) {
      options = in.iterate(*b[0]);
    } else {
      options.push_back(*b[0]);
    }
    for (auto& o : options) {
      const std::string& p = str_arg(o, name.c_str());
      if (p.size() > view.size()) continue;
      if (name == "startswith" ? view.substr(0, p.size()) == p : view.substr(view.size() - p.size()) == p)
        return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "upper") return in.make_string(py_upper(s));
  if (name == "lower" || name == "casefold") return in.make_string(py_lower(s));
  if (name == "title") return in.make_string(py_title(s));
  if (name == "capitalize") return in.make_string(py_capitalize(s));
  if (name == "swapcase") {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      uint32_t c = utf8_next(s, i);
      auto cat = category(c);
      if (cat == UTF8PROC_CATEGORY_LU) {
        utf8_append(out, to_lower(c));
      } else if (cat == UTF8PROC_CATEGORY_LL) {
        append_upper(out, c);
      } else {
        utf8_append(out, c);
      }
    }
    return in.make_string(std::move(out));
  }
  if (name == "replace") {
    ArgBind b("replace", args, {"old", "new", "count"});
    if (!b.has(0) || !b.has(1)) fail("replace() takes at least 2 arguments");
    int64_t count = b.has(2) ? as_int(*b[2], "count") : -1;
    return in.make_string(py_replace(in, s, str_arg(*b[0], "replace"), str_arg(*b[1], "replace"), count));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ArgBind b(name.c_str(), args, {"sub", "start", "end"});
    if (!b.has(0)) fail(name + "() takes at least 1 argument");
    const std::string& sub = str_arg(*b[0], name.c_str());
    size_t lo, hi;
    sub_range(s, b, 1, lo, hi);
    std::string_view view = std::string_view(s).substr(lo, hi - lo);
    if (name == "count") {
      if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(view)) + 1);
      int64_t n = 0;
      for (size_t p = view.find(sub); p != std::string_view::npos; p = view.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    }
    size_t hit = (name == "find" || name == "index") ? view.find(sub) : view.rfind(sub);
    if (hit == std::string_view::npos) {
      if (name == "index" || name == "rindex") fail("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(cp_index(s, lo + hit));
  }
  if (name == "join") {
    ArgBind b("join", args, {"iterable"});
    if (!b.has(0)) fail("join() takes exactly one argument");
    std::string out;
    size_t k = 0;
    for (auto& item : in.iterate(*b[0])) {
      if (!item.is_string())
        fail("sequence item " + std::to_string(k) + ": expected str instance, " + type_name(item) + " found");
      if (k++) out += s;
      out += item.s();
      in.check_string(out.size());
    }
    return in.make_string(std::move(out));
  }
  if (name == "format") return in.make_string(str_format(in, s, args));
  if (name == "isdigit" || name == "isdecimal") return Value::boolean(all_cps(s, is_decimal));
  if (name == "isnumeric") return Value::boolean(all_cps(s, is_numeric));
  if (name == "isalpha") return Value::boolean(all_cps(s, is_alpha));
  if (name == "isalnum") return Value::boolean(all_cps(s, [](uint32_t c) { return is_alpha(c) || is_numeric(c); }));
  if (name == "isspace") return Value::boolean(all_cps(s, py_isspace));
  if (name == "isascii") return Value::boolean(s.empty() || all_cps(s, [](uint32_t c) { return c < 0x80; }));
  if (name == "islower") return Value::boolean(case_test(s, true));
  if (name == "isupper") return Value::boolean(case_test(s, false));
  if (name == "removeprefix" || name == "removesuffix") {
    ArgBind b(name.c_str(), args, {"affix"});
    if (!b.has(0)) fail(name + "() takes exactly one argument");
    const std::string& a = str_arg(*b[0], name.c_str());
    if (name == "removeprefix" && s.compare(0, a.size(), a) == 0 && s.size() >= a.size())
      return Value::str(s.substr(a.size()));
    if (name == "removesuffix" && s.size() >= a.size() && s.compare(s.size() - a.size(), a.size(), a) == 0)
      return Value::str(s.substr(0, s.size() - a.size()));
    return Value::str(s);
  }
  if (name == "partition" || name == "rpartition") {
    ArgBind b(name.c_str(), args, {"sep"});
    if (!b.has(0)) fail(name + "() takes exactly one argument");
    const std::string& sep = str_arg(*b[0], name.c_str());
    if (sep.empty()) fail("empty separator");
    size_t hit = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (hit == std::string::npos)
      return string_list(in, name == "partition" ? std::vector<std::string>{s, "", ""}
                                                 : std::vector<std::string>{"", "", s});
    return string_list(in, {s.substr(0, hit), sep, s.substr(hit + sep.size())});
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    ArgBind b(name.c_str(), args, {"width", "fillchar"});
    if (!b.has(0)) fail(name + "() takes at least 1 argument");
    uint32_t fill = ' ';
    if (b.has(1)) {
      const std::string& f = str_arg(*b[1], name.c_str());
      if (utf8_length(f) != 1) fail("The fill character must be exactly one character long");
      size_t k = 0;
      fill = utf8_next(f, k);
    }
    char align = name == "center" ? '^' : name == "ljust" ? '<' : '>';
    return in.make_string(py_pad(in, s, as_int(*b[0], "width"), align, fill));
  }
  if (name == "zfill") {
    ArgBind b("zfill", args, {"width"});
    if (!b.has(0)) fail("zfill() takes exactly one argument");
    int64_t width = as_int(*b[0], "width");
    int64_t len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value::str(s);
    in.check_string(static_cast<size_t>(width));
    std::string out = s;
    size_t at = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    out.insert(at, static_cast<size_t>(width - len), '0');
    return in.make_string(std::move(out));
  }
  fail("str." + name + "() is not supported");
}

Value dict_method(Interp& in, const Value& self, const std::string& name, Args& args) {
  const Json& d = self.json();
  if (name == "items" || name == "keys" || name == "values") {
    ArgBind b(name.c_str(), args, {});
    std::vector<Value> items;
    items.reserve(d.size());
    for (const auto& [k, v] : d.items()) {
      if (name == "keys") {
        items.push_back(Value::str(k));
      } else if (name == "values") {
        items.push_back(Value::child(self.j, v));
      } else {
        Json pair = Json::array();
        pair.push_back(k);
        pair.push_back(v);
        items.push_back(Value::of(std::move(pair)));
      }
    }
    return in.make_list(std::move(items));
  }
  if (name == "get") {
    ArgBind b("get", args, {"key", "default"});
    if (!b.has(0)) fail("get expected at least 1 argument, got 0");
    if (b[0]->is_string()) {
      auto it = d.find(b[0]->s());
      if (it != d.end()) return Value::child(self.j, *it);
    }
    return b.has(1) ? *b[1] : Value::none();
  }
  if (name == "copy") return self;
  fail("dict." + name + "() is not supported");
}

Value list_method(Interp& in, const Value& self, const std::string& name, Args& args) {
  if (name == "copy") return self;
  ArgBind b(name.c_str(), args, {"value"});
  if (!b.has(0)) fail(name + "() takes exactly one argument (0 given)");
  int64_t count = 0, i = 0;
  for (const auto& e : self.json()) {
    if (b[0]->is_json() && json_equal(e, b[0]->json())) {
      if (name == "index") return Value::integer(i);
      ++count;
    }
    ++i;
  }
  if (name == "index") fail(repr(*b[0]) + " is not in list");
  return Value::integer(count);
}

}  // namespace

bool has_method(const Value& self, const std::string& name, bool* unsafe) {
  if (unsafe) *unsafe = false;
  if (!self.is_json()) return false;
  if (self.is_string()) return in_list(kStrMethods, name);
  if (self.is_dict()) {
    if (in_list(kDictMutators, name)) {
      if (unsafe) *unsafe = true;
      return true;
    }
    return in_list(kDictMethods, name);
  }
  if (self.is_list()) {
    if (in_list(kListMutators, name)) {
      if (unsafe) *unsafe = true;
      return true;
    }
    return in_list(kListMethods, name);
  }
  return false;
}

Value call_method(Interp& in, const Value& self, const std::string& name, Args& args) {
  if (self.kind == Value::Kind::kLoop) {
    const auto& loop = static_cast<const LoopObj&>(*self.obj);
    if (name == "cycle") {
      if (args.pos.empty()) fail("no items for cycling given");
      return args.pos[loop.index0 % args.pos.size()];
    }
    fail("loop." + name + "() is not supported");
  }
  if (self.is_string()) {
    in.charge(self.s().size());  // nearly every str method scans the string
    return str_method(in, self.s(), name, args);
  }
  if (self.is_dict()) return dict_method(in, self, name, args);
  if (self.is_list()) return list_method(in, self, name, args);
  fail(std::string("'") + type_name(self) + "' object has no method '" + name + "'");
}

}  // namespace vlm::text::jinja
