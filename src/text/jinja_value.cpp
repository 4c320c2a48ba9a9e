// Python semantics of the chat-template interpreter's values.
#include "text/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <utf8proc.h>

namespace vlm::text::jinja {

void fail(std::string message, uint32_t pos) { throw JinjaError{std::move(message), pos}; }

Value Value::undefined(std::string why) {
  Value v;
  v.hint = std::make_shared<const std::string>(std::move(why));
  return v;
}

Value Value::boolean(bool b) {
  static const auto t = std::make_shared<const Json>(true);
  static const auto f = std::make_shared<const Json>(false);
  return ref(b ? t : f);
}

Value Value::none() {
  static const auto n = std::make_shared<const Json>(nullptr);
  return ref(n);
}

ArgBind::ArgBind(const char* fn, Args& args, std::initializer_list<const char*> params)
    : slots_(params.size(), nullptr) {
  if (args.pos.size() > params.size())
    fail(std::string(fn) + "() takes at most " + std::to_string(params.size()) +
         " argument(s), " + std::to_string(args.pos.size()) + " given");
  for (size_t i = 0; i < args.pos.size(); ++i) slots_[i] = &args.pos[i];
  for (auto& [k, v] : args.kw) {
    size_t i = 0;
    for (const char* p : params) {
      if (k == p) break;
      ++i;
    }
    if (i == params.size()) fail(std::string(fn) + "() got an unexpected keyword argument '" + k + "'");
    if (slots_[i]) fail(std::string(fn) + "() got multiple values for argument '" + k + "'");
    slots_[i] = &v;
  }
}

const Value* Namespace::find(std::string_view name) const {
  for (auto& [k, v] : attrs)
    if (k == name) return &v;
  return nullptr;
}

void Namespace::set(const std::string& name, Value v) {
  for (auto& [k, old] : attrs)
    if (k == name) {
      old = std::move(v);
      return;
    }
  attrs.emplace_back(name, std::move(v));
}

// ---------------------------------------------------------------- UTF-8 ----

uint32_t utf8_next(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  uint32_t cp = len == 4 ? (b0 & 0x07) : len == 3 ? (b0 & 0x0F) : (b0 & 0x1F);
  bool ok = len != 0 && b0 <= 0xF4 && i + len <= s.size();
  for (int k = 1; ok && k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) ok = false;
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and out-of-range values are invalid too.
  if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
             cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
    ok = false;
  if (!ok) {
    ++i;
    return 0xDC00 + b0;
  }
  i += len;
  return cp;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp >= 0xDC80 && cp <= 0xDCFF) {  // an escaped invalid byte
    out.push_back(static_cast<char>(cp - 0xDC00));
  } else if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0x10FFFF) {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    utf8_append(out, 0xFFFD);
  }
}

std::vector<uint32_t> utf8_decode(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out.push_back(utf8_next(s, i));
  return out;
}

std::string utf8_encode(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t c : cps) utf8_append(out, c);
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
    } else {
      utf8_next(s, i);
    }
    ++n;
  }
  return n;
}

bool py_isspace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

size_t py_space_len(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return py_isspace(b) ? 1 : 0;
  size_t j = i;
  uint32_t cp = utf8_next(s, j);
  return py_isspace(cp) ? j - i : 0;
}

// ------------------------------------------------------ Python printing ----

const char* json_type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "NoneType";
    case Json::value_t::boolean: return "bool";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "int";
    case Json::value_t::number_float: return "float";
    case Json::value_t::string: return "str";
    case Json::value_t::array: return "list";
    case Json::value_t::object: return "dict";
    default: return "object";
  }
}

const char* type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNamespace: return "Namespace";
    case Value::Kind::kMacro: return "Macro";
    case Value::Kind::kLoop: return "LoopContext";
    case Value::Kind::kCallable: return "builtin_function_or_method";
    case Value::Kind::kJson: break;
  }
  return json_type_name(*v.j);
}

bool truthy(const Value& v) {
  if (v.kind == Value::Kind::kUndefined) return false;
  if (v.kind != Value::Kind::kJson) return true;
  const Json& j = *v.j;
  switch (j.type()) {
    case Json::value_t::null: return false;
    case Json::value_t::boolean: return j.get<bool>();
    case Json::value_t::number_integer: return j.get<int64_t>() != 0;
    case Json::value_t::number_unsigned: return j.get<uint64_t>() != 0;
    case Json::value_t::number_float: return j.get<double>() != 0.0;
    case Json::value_t::string: return !j.get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object: return !j.empty();
    default: return true;
  }
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits, laid out the way Python's repr() does:
  // positional for exponents in [-5, 16), scientific otherwise.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  std::string mant = sci.substr(0, epos);
  int exp = std::atoi(sci.c_str() + epos + 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = neg ? "-" : "";
  int decpt = exp + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(-decpt, '0') + digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits + std::string(decpt - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += e;
  }
  return out;
}

namespace {

bool py_printable(uint32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp < 0x7F) return true;
  if (cp >= 0xDC80 && cp <= 0xDCFF) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
  }
}

void repr_string(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char q = has_single && !has_double ? '"' : '\'';
  out.push_back(q);
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    if (c == static_cast<uint32_t>(q) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (py_printable(c)) {
      utf8_append(out, c);
    } else {
      char buf[16];
      if (c < 0x100)
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
      else if (c < 0x10000)
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
      else
        std::snprintf(buf, sizeof buf, "\\U%08x", c);
      out += buf;
    }
  }
  out.push_back(q);
}

void str_json(std::string& out, const Json& j, bool quote_strings) {
  switch (j.type()) {
    case Json::value_t::null: out += "None"; return;
    case Json::value_t::boolean: out += j.get<bool>() ? "True" : "False"; return;
    case Json::value_t::number_integer: out += std::to_string(j.get<int64_t>()); return;
    case Json::value_t::number_unsigned: out += std::to_string(j.get<uint64_t>()); return;
    case Json::value_t::number_float: out += float_repr(j.get<double>()); return;
    case Json::value_t::string:
      if (quote_strings) {
        repr_string(out, j.get_ref<const std::string&>());
      } else {
        out += j.get_ref<const std::string&>();
      }
      return;
    case Json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : j) {
        if (!first) out += ", ";
        first = false;
        str_json(out, e, true);
      }
      out.push_back(']');
      return;
    }
    case Json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, e] : j.items()) {
        if (!first) out += ", ";
        first = false;
        repr_string(out, k);
        out += ": ";
        str_json(out, e, true);
      }
      out.push_back('}');
      return;
    }
    default: out += "<binary>"; return;
  }
}

std::string object_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNamespace: {
      std::string out = "<Namespace {";
      auto& ns = static_cast<const Namespace&>(*v.obj);
      bool first = true;
      for (auto& [k, e] : ns.attrs) {
        if (!first) out += ", ";
        first = false;
        repr_string(out, k);
        out += ": " + repr(e);
      }
      return out + "}>";
    }
    case Value::Kind::kLoop: return "<LoopContext>";
    case Value::Kind::kMacro: return "<Macro>";
    case Value::Kind::kCallable:
      return "<built-in method " + static_cast<const Callable&>(*v.obj).name + ">";
    default: return "";
  }
}

}  // namespace

void repr_json(std::string& out, const Json& j) { str_json(out, j, true); }

std::string to_str(const Value& v) {
  if (v.kind == Value::Kind::kUndefined) return "";
  if (v.kind != Value::Kind::kJson) return object_str(v);
  if (v.j->is_string()) return v.s();
  std::string out;
  str_json(out, *v.j, false);
  return out;
}

std::string repr(const Value& v) {
  if (v.kind == Value::Kind::kUndefined) return "Undefined";
  if (v.kind != Value::Kind::kJson) return object_str(v);
  std::string out;
  str_json(out, *v.j, true);
  return out;
}

// ------------------------------------------------------------ json.dumps ----

namespace {

void dump_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c >= 0xDC80 && c <= 0xDCFF) c = 0xFFFD;  // invalid input byte
    char buf[16];
    if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
      if (c >= 0x10000) {
        uint32_t v = c - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
      }
      out += buf;
    } else {
      utf8_append(out, c);
    }
  }
  out.push_back('"');
}

void dump_json(std::string& out, const Json& j, const JsonDumpOptions& opt, int level) {
  auto newline = [&](int lvl) {
    out.push_back('\n');
    for (int k = 0; k < lvl; ++k) out += opt.indent;
  };
  switch (j.type()) {
    case Json::value_t::null: out += "null"; return;
    case Json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; return;
    case Json::value_t::number_integer: out += std::to_string(j.get<int64_t>()); return;
    case Json::value_t::number_unsigned: out += std::to_string(j.get<uint64_t>()); return;
    case Json::value_t::number_float: {
      double d = j.get<double>();
      if (std::isnan(d)) {
        out += "NaN";
      } else if (std::isinf(d)) {
        out += d < 0 ? "-Infinity" : "Infinity";
      } else {
        out += float_repr(d);
      }
      return;
    }
    case Json::value_t::string:
      dump_string(out, j.get_ref<const std::string&>(), opt.ensure_ascii);
      return;
    case Json::value_t::array: {
      if (j.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      bool first = true;
      for (const auto& e : j) {
        if (!first) out += opt.item_sep;
        first = false;
        if (opt.pretty) newline(level + 1);
        dump_json(out, e, opt, level + 1);
      }
      if (opt.pretty) newline(level);
      out.push_back(']');
      return;
    }
    case Json::value_t::object: {
      if (j.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<const std::string*, const Json*>> items;
      for (const auto& [k, e] : j.items()) items.emplace_back(&k, &e);
      if (opt.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto& a, auto& b) { return *a.first < *b.first; });
      out.push_back('{');
      bool first = true;
      for (auto& [k, e] : items) {
        if (!first) out += opt.item_sep;
        first = false;
        if (opt.pretty) newline(level + 1);
        dump_string(out, *k, opt.ensure_ascii);
        out += opt.key_sep;
        dump_json(out, *e, opt, level + 1);
      }
      if (opt.pretty) newline(level);
      out.push_back('}');
      return;
    }
    default: fail("Object of type binary is not JSON serializable");
  }
}

}  // namespace

void json_dumps(std::string& out, const Value& v, const JsonDumpOptions& opt) {
  if (!v.is_json()) fail(std::string("Object of type ") + type_name(v) + " is not JSON serializable");
  dump_json(out, *v.j, opt, 0);
}

// ------------------------------------------------------------ comparison ----

double as_double(const Json& j) {
  if (j.is_boolean()) return j.get<bool>() ? 1.0 : 0.0;
  if (j.is_number_unsigned()) return static_cast<double>(j.get<uint64_t>());
  if (j.is_number_integer()) return static_cast<double>(j.get<int64_t>());
  return j.get<double>();
}

int64_t as_int(const Value& v, const char* what) {
  if (v.is_json()) {
    if (v.j->is_boolean()) return v.j->get<bool>() ? 1 : 0;
    if (v.j->is_number_unsigned()) {
      uint64_t u = v.j->get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) fail("integer too large");
      return static_cast<int64_t>(u);
    }
    if (v.j->is_number_integer()) return v.j->get<int64_t>();
  }
  if (v.is_undefined()) fail(*v.hint);
  fail(std::string(what) + " must be an integer, not '" + type_name(v) + "'");
}

namespace {
bool is_numeric(const Json& j) { return j.is_number() || j.is_boolean(); }
bool both_integral(const Json& a, const Json& b) {
  return (a.is_number_integer() || a.is_boolean()) && (b.is_number_integer() || b.is_boolean());
}
int64_t int_of(const Json& j) {
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  return j.get<int64_t>();
}
}  // namespace

bool json_equal(const Json& a, const Json& b) {
  if (is_numeric(a) && is_numeric(b)) {
    if (both_integral(a, b)) return int_of(a) == int_of(b);
    return as_double(a) == as_double(b);
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::null: return true;
    case Json::value_t::string:
      return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case Json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!json_equal(a[i], b[i])) return false;
      return true;
    }
    case Json::value_t::object: {
      if (a.size() != b.size()) return false;
      for (const auto& [k, v] : a.items()) {
        auto it = b.find(k);
        if (it == b.end() || !json_equal(v, *it)) return false;
      }
      return true;
    }
    default: return false;
  }
}

bool py_equal(const Value& a, const Value& b) {
  if (a.is_json() && b.is_json()) return json_equal(*a.j, *b.j);
  if (a.kind != b.kind) return false;
  if (a.is_undefined()) return true;
  return a.obj == b.obj;
}

namespace {
[[noreturn]] void unorderable(const char* ta, const char* tb) {
  fail(std::string("'<' not supported between instances of '") + ta + "' and '" + tb + "'");
}
}  // namespace

int json_compare(const Json& a, const Json& b) {
  if (is_numeric(a) && is_numeric(b)) {
    if (both_integral(a, b)) {
      int64_t x = int_of(a), y = int_of(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    double x = as_double(a), y = as_double(b);
    return x < y ? -1 : x > y ? 1 : 0;  // NaN compares "equal", never errors
  }
  if (a.is_string() && b.is_string()) {
    // UTF-8 byte order is code point order.
    int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array()) {
    size_t n = std::min(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) {
      if (json_equal(a[i], b[i])) continue;
      return json_compare(a[i], b[i]);
    }
    return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
  }
  unorderable(json_type_name(a), json_type_name(b));
}

int py_compare(const Value& a, const Value& b) {
  if (a.is_undefined()) fail(*a.hint);
  if (b.is_undefined()) fail(*b.hint);
  if (!a.is_json() || !b.is_json()) unorderable(type_name(a), type_name(b));
  return json_compare(*a.j, *b.j);
}

void check_json_depth(const Json& j, int limit) {
  if (!j.is_structured()) return;
  if (limit <= 0) fail("value nested too deeply");
  for (const auto& e : j) check_json_depth(e, limit - 1);
}

}  // namespace vlm::text::jinja
