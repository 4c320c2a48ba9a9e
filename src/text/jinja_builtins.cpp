// jinja2's filters, with transformers' tojson (ensure_ascii=False).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "text/jinja_builtins.h"

namespace vlm::text::jinja {
namespace {

const Value kEmptyStr = Value::str("");

bool flag(const ArgBind& b, size_t i) { return b.has(i) && truthy(*b[i]); }

// jinja2's make_attrgetter: "a.b.0" walks items, digits become indices.
std::vector<Value> attr_path(const Value& attribute) {
  std::vector<Value> parts;
  if (attribute.is_int()) {
    parts.push_back(attribute);
    return parts;
  }
  std::string a = text_of(attribute);
  size_t start = 0;
  while (true) {
    size_t dot = a.find('.', start);
    std::string p = a.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !p.empty() && p.size() < 18 && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
    parts.push_back(digits ? Value::integer(std::stoll(p)) : Value::str(p));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

Value get_path(Interp& in, Value item, const std::vector<Value>& path, const Value* dflt = nullptr) {
  for (const auto& p : path) {
    item = in.getitem(item, p);
    if (dflt && item.is_undefined()) item = *dflt;
  }
  return item;
}

Value lower_if_str(const Value& v) { return v.is_string() ? Value::str(py_lower(v.s())) : v; }

int64_t length_of(Interp& in, const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) {
    in.charge(v.s().size());
    return static_cast<int64_t>(utf8_length(v.s()));
  }
  if (v.is_list() || v.is_dict()) return static_cast<int64_t>(v.j->size());
  if (v.kind == Value::Kind::kNamespace) return static_cast<int64_t>(static_cast<const Namespace&>(*v.obj).attrs.size());
  fail(std::string("object of type '") + type_name(v) + "' has no len()");
}

// --------------------------------------------------------------- filters ----

Value f_abs(Interp&, const Value& v, Args& args) {
  ArgBind b("abs", args, {});
  if (v.is_float()) return Value::of(Json(std::fabs(v.j->get<double>())));
  if (v.is_int() || v.is_bool()) {
    int64_t i = as_int(v, "abs");
    if (i == INT64_MIN) fail("integer overflow");
    return Value::integer(i < 0 ? -i : i);
  }
  if (v.is_undefined()) fail(*v.hint);
  fail(std::string("bad operand type for abs(): '") + type_name(v) + "'");
}

Value f_attr(Interp& in, const Value& v, Args& args) {
  ArgBind b("attr", args, {"name"});
  if (!b.has(0)) fail("attr() requires a name");
  const std::string& name = str_arg(*b[0], "attr");
  if (v.is_json() && !has_method(v, name, nullptr))
    return Value::undefined(std::string("'") + type_name(v) + " object' has no attribute '" + name + "'");
  return in.getattr(v, name);
}

Value f_capitalize(Interp& in, const Value& v, Args& args) {
  ArgBind b("capitalize", args, {});
  return in.make_string(py_capitalize(text_of(v)));
}

Value f_center(Interp& in, const Value& v, Args& args) {
  ArgBind b("center", args, {"width"});
  int64_t w = b.has(0) ? as_int(*b[0], "width") : 80;
  return in.make_string(py_pad(in, text_of(v), w, '^', ' '));
}

Value f_length(Interp& in, const Value& v, Args& args) {
  ArgBind b("length", args, {});
  return Value::integer(length_of(in, v));
}

Value f_default(Interp&, const Value& v, Args& args) {
  ArgBind b("default", args, {"default_value", "boolean"});
  if (v.is_undefined() || (flag(b, 1) && !truthy(v))) return b.get(0, kEmptyStr);
  return v;
}

Value f_dictsort(Interp& in, const Value& v, Args& args) {
  ArgBind b("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) fail("dictsort: expected a mapping, got '" + std::string(type_name(v)) + "'");
  bool cs = flag(b, 0), rev = flag(b, 2);
  std::string by = b.has(1) ? str_arg(*b[1], "dictsort") : "key";
  if (by != "key" && by != "value") fail("You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<Value, Value>> items;  // sort key, pair
  for (const auto& [k, e] : v.j->items()) {
    Json pair = Json::array({k, e});
    Value key = by == "key" ? Value::str(k) : Value::child(v.j, e);
    items.emplace_back(cs ? key : lower_if_str(key), Value::of(std::move(pair)));
  }
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    return rev ? py_compare(y.first, x.first) < 0 : py_compare(x.first, y.first) < 0;
  });
  std::vector<Value> out;
  for (auto& [k, p] : items) out.push_back(std::move(p));
  return in.make_list(std::move(out));
}

Value f_escape(Interp& in, const Value& v, Args& args) {
  ArgBind b("escape", args, {});
  std::string s = text_of(v), out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return in.make_string(std::move(out));
}

Value f_first(Interp& in, const Value& v, Args& args) {
  ArgBind b("first", args, {});
  if (v.is_list()) {
    if (v.j->empty()) return Value::undefined("No first item, sequence was empty.");
    return Value::child(v.j, v.j->front());
  }
  auto items = in.iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Interp& in, const Value& v, Args& args) {
  ArgBind b("last", args, {});
  if (v.is_list()) {
    if (v.j->empty()) return Value::undefined("No last item, sequence was empty.");
    return Value::child(v.j, v.j->back());
  }
  auto items = in.iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

// Python's float(str): surrounding whitespace, underscores between digits,
// inf/nan spellings.
bool parse_py_float(const std::string& raw, double& out) {
  std::string s = py_strip(raw, nullptr, true, true);
  std::string low = py_lower(s);
  std::string body = (!low.empty() && (low[0] == '+' || low[0] == '-')) ? low.substr(1) : low;
  double sign = (!low.empty() && low[0] == '-') ? -1 : 1;
  if (body == "inf" || body == "infinity") {
    out = sign * INFINITY;
    return true;
  }
  if (body == "nan") {
    out = NAN;
    return true;
  }
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      bool ok = i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
                std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (!ok) return false;
      continue;
    }
    if (!std::strchr("0123456789+-.eE", s[i])) return false;
    clean.push_back(s[i]);
  }
  if (clean.empty()) return false;
  char* end = nullptr;
  out = std::strtod(clean.c_str(), &end);
  return end && *end == '\0';
}

// Python's int(str, base).
bool parse_py_int(const std::string& raw, int64_t base, int64_t& out) {
  std::string s = py_strip(raw, nullptr, true, true);
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  auto prefixed = [&](char p) {
    return i + 1 < s.size() && s[i] == '0' && (s[i + 1] | 0x20) == p;
  };
  if (base == 0) {
    base = prefixed('x') ? 16 : prefixed('o') ? 8 : prefixed('b') ? 2 : 10;
    if (base != 10) i += 2;
  } else if ((base == 16 && prefixed('x')) || (base == 8 && prefixed('o')) || (base == 2 && prefixed('b'))) {
    i += 2;
  }
  if (base < 2 || base > 36 || i >= s.size()) return false;
  uint64_t v = 0;
  bool any = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_' && any && i + 1 < s.size() && s[i + 1] != '_') continue;
    int d = (c >= '0' && c <= '9') ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'z' ? (c | 0x20) - 'a' + 10 : 99;
    if (d >= base) return false;
    if (v > (static_cast<uint64_t>(INT64_MAX) - d) / base) return false;
    v = v * base + d;
    any = true;
  }
  if (!any) return false;
  out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

Value f_float(Interp&, const Value& v, Args& args) {
  ArgBind b("float", args, {"default"});
  Value dflt = b.has(0) ? *b[0] : Value::of(Json(0.0));
  if (v.is_undefined()) fail(*v.hint);
  if (v.is_number()) return Value::of(Json(as_double(*v.j)));
  double d;
  if (v.is_string() && parse_py_float(v.s(), d)) return Value::of(Json(d));
  return dflt;
}

Value f_int(Interp&, const Value& v, Args& args) {
  ArgBind b("int", args, {"default", "base"});
  Value dflt = b.has(0) ? *b[0] : Value::integer(0);
  int64_t base = b.has(1) ? as_int(*b[1], "base") : 10;
  if (v.is_undefined()) fail(*v.hint);
  if (v.is_int() || v.is_bool()) return Value::integer(as_int(v, "int"));
  if (v.is_float()) {
    double d = v.j->get<double>();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return dflt;
    return Value::integer(static_cast<int64_t>(std::trunc(d)));
  }
  if (v.is_string()) {
    int64_t i;
    if (parse_py_int(v.s(), base, i)) return Value::integer(i);
    double d;  // "42.23"|int is 42
    if (parse_py_float(v.s(), d) && std::isfinite(d) && std::fabs(d) < 9.2e18)
      return Value::integer(static_cast<int64_t>(std::trunc(d)));
  }
  return dflt;
}

Value f_format(Interp& in, const Value& v, Args& args) {
  if (!args.pos.empty() && !args.kw.empty()) fail("can't handle positional and keyword arguments at the same time");
  Value rhs;
  if (!args.kw.empty()) {
    Json obj = Json::object();
    for (auto& [k, a] : args.kw) obj[k] = in.to_data(a);
    rhs = Value::of(std::move(obj));
  } else if (args.pos.size() == 1 && !args.pos[0].is_list()) {
    rhs = args.pos[0];
  } else {
    rhs = in.make_list(args.pos);
  }
  return in.make_string(percent_format(in, text_of(v), rhs));
}

Value f_indent(Interp& in, const Value& v, Args& args) {
  ArgBind b("indent", args, {"width", "first", "blank"});
  std::string ind;
  if (b.has(0) && b[0]->is_string()) {
    ind = b[0]->s();
  } else {
    int64_t w = b.has(0) ? as_int(*b[0], "width") : 4;
    if (w > 10000) fail("indent width too large");
    ind = std::string(static_cast<size_t>(std::max<int64_t>(0, w)), ' ');
  }
  std::string s = text_of(v) + "\n";
  std::vector<std::string> lines;  // str.splitlines() on \n, \r\n and \r
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.push_back(s.substr(start, i - start));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  std::string out;
  for (size_t k = 0; k < lines.size(); ++k) {
    if (k) out += "\n";
    if (k && (flag(b, 2) || !lines[k].empty())) out += ind;
    out += lines[k];
    in.check_string(out.size());
  }
  if (flag(b, 1)) out = ind + out;
  return in.make_string(std::move(out));
}

Value f_join(Interp& in, const Value& v, Args& args) {
  ArgBind b("join", args, {"d", "attribute"});
  std::string sep = b.has(0) ? text_of(*b[0]) : "";
  std::vector<Value> path;
  if (b.has(1) && !b[1]->is_none()) path = attr_path(*b[1]);
  std::string out;
  size_t k = 0;
  for (auto& item : in.iterate(v)) {
    if (k++) out += sep;
    Value x = path.empty() ? item : get_path(in, item, path);
    out += text_of(x);
    in.check_string(out.size());
  }
  return in.make_string(std::move(out));
}

Value f_list(Interp& in, const Value& v, Args& args) {
  ArgBind b("list", args, {});
  if (v.is_list()) return v;
  return in.make_list(in.iterate(v));
}

Value f_lower(Interp& in, const Value& v, Args& args) {
  ArgBind b("lower", args, {});
  return in.make_string(py_lower(text_of(v)));
}

Value f_upper(Interp& in, const Value& v, Args& args) {
  ArgBind b("upper", args, {});
  return in.make_string(py_upper(text_of(v)));
}

Value f_items(Interp& in, const Value& v, Args& args) {
  ArgBind b("items", args, {});
  if (v.is_undefined()) return in.make_list({});
  if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
  Args none;
  return call_method(in, v, "items", none);
}

Value f_map(Interp& in, const Value& v, Args& args) {
  if (!truthy(v)) return in.make_list({});
  std::vector<Value> out;
  if (args.pos.empty()) {
    Value attribute, dflt;
    bool has_default = false;
    for (auto& [k, a] : args.kw) {
      if (k == "attribute") {
        attribute = a;
      } else if (k == "default") {
        dflt = a;
        has_default = true;
      } else {
        fail("Unexpected keyword argument '" + k + "'");
      }
    }
    if (attribute.is_undefined()) fail("map requires a filter argument");
    auto path = attr_path(attribute);
    for (auto& item : in.iterate(v)) out.push_back(get_path(in, item, path, has_default ? &dflt : nullptr));
    return in.make_list(std::move(out));
  }
  std::string name = str_arg(args.pos[0], "map");
  bool known = false;
  FilterFn fn = find_filter(name, &known);
  Args rest;
  rest.pos.assign(args.pos.begin() + 1, args.pos.end());
  rest.kw = args.kw;
  for (auto& item : in.iterate(v)) {
    Args a = rest;
    out.push_back(in.apply_filter(name, fn, item, a));
  }
  return in.make_list(std::move(out));
}

Value min_max(Interp& in, const Value& v, Args& args, bool want_max) {
  ArgBind b(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  auto items = in.iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  std::vector<Value> path;
  if (b.has(1) && !b[1]->is_none()) path = attr_path(*b[1]);
  auto key = [&](const Value& x) {
    Value k = path.empty() ? x : get_path(in, x, path);
    return flag(b, 0) ? k : lower_if_str(k);
  };
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    int c = py_compare(k, best_key);
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = k;
    }
  }
  return items[best];
}
Value f_max(Interp& in, const Value& v, Args& args) { return min_max(in, v, args, true); }
Value f_min(Interp& in, const Value& v, Args& args) { return min_max(in, v, args, false); }

// select / reject / selectattr / rejectattr.
Value select_impl(Interp& in, const Value& v, Args& args, bool by_attr, bool keep_when) {
  if (!truthy(v)) return in.make_list({});
  size_t off = 0;
  std::vector<Value> path;
  if (by_attr) {
    if (args.pos.empty()) fail("Missing parameter for attribute name");
    path = attr_path(args.pos[0]);
    off = 1;
  }
  std::string test;
  TestFn fn = nullptr;
  if (args.pos.size() > off) {
    test = str_arg(args.pos[off], "select");
    bool known = false;
    fn = find_test(test, &known);
    if (!known) fail("no test named '" + test + "'");
  }
  Args rest;
  if (args.pos.size() > off + 1) rest.pos.assign(args.pos.begin() + static_cast<long>(off) + 1, args.pos.end());
  rest.kw = args.kw;
  std::vector<Value> out;
  for (auto& item : in.iterate(v)) {
    Value x = by_attr ? get_path(in, item, path) : item;
    bool ok;
    if (test.empty()) {
      ok = truthy(x);
    } else {
      Args a = rest;
      ok = in.apply_test(test, fn, x, a);
    }
    if (ok == keep_when) out.push_back(item);
  }
  return in.make_list(std::move(out));
}
Value f_select(Interp& in, const Value& v, Args& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interp& in, const Value& v, Args& a) { return select_impl(in, v, a, false, false); }
Value f_selectattr(Interp& in, const Value& v, Args& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interp& in, const Value& v, Args& a) { return select_impl(in, v, a, true, false); }

Value f_replace(Interp& in, const Value& v, Args& args) {
  ArgBind b("replace", args, {"old", "new", "count"});
  if (!b.has(0) || !b.has(1)) fail("replace() requires 'old' and 'new'");
  int64_t count = b.has(2) && !b[2]->is_none() ? as_int(*b[2], "count") : -1;
  return in.make_string(py_replace(in, text_of(v), text_of(*b[0]), text_of(*b[1]), count));
}

Value f_reverse(Interp& in, const Value& v, Args& args) {
  ArgBind b("reverse", args, {});
  if (v.is_string()) {
    auto cps = utf8_decode(v.s());
    std::reverse(cps.begin(), cps.end());
    return in.make_string(utf8_encode(cps));
  }
  auto items = in.iterate(v);
  std::reverse(items.begin(), items.end());
  return in.make_list(std::move(items));
}

// Python's round(x, n) on floats: correctly rounded, ties to even.
double py_round(double x, int64_t n) {
  if (!std::isfinite(x)) return x;
  if (n > 300) return x;
  if (n >= 0) {
    char buf[704];  // 309 integer digits + '.' + 300 decimals + sign fit
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(n), x);
    return std::strtod(buf, nullptr);
  }
  if (n < -308) return 0.0 * x;
  double p = std::pow(10.0, static_cast<double>(-n));
  return std::nearbyint(x / p) * p;
}

Value f_round(Interp&, const Value& v, Args& args) {
  ArgBind b("round", args, {"precision", "method"});
  int64_t prec = b.has(0) ? as_int(*b[0], "precision") : 0;
  std::string method = b.has(1) ? str_arg(*b[1], "round") : "common";
  if (method != "common" && method != "ceil" && method != "floor")
    fail("method must be common, ceil or floor");
  if (v.is_undefined()) fail(*v.hint);
  if (!v.is_number()) fail(std::string("type ") + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float()) {  // round(int, n) stays an int
      int64_t i = as_int(v, "round");
      if (prec >= 0) return Value::integer(i);
      if (prec < -18) return Value::integer(0);
      int64_t p = 1;
      for (int64_t k = 0; k < -prec; ++k) p *= 10;
      int64_t q = i / p, r = i % p;
      if (r < 0) {
        r += p;
        q -= 1;
      }
      if (2 * r > p || (2 * r == p && (q & 1))) ++q;
      int64_t out;
      if (__builtin_mul_overflow(q, p, &out)) fail("integer overflow");
      return Value::integer(out);
    }
    return Value::of(Json(py_round(v.j->get<double>(), prec)));
  }
  double x = as_double(*v.j);
  double p = std::pow(10.0, static_cast<double>(prec));
  double r = method == "ceil" ? std::ceil(x * p) : std::floor(x * p);
  return Value::of(Json(r / p));
}

Value f_safe(Interp& in, const Value& v, Args& args) {
  ArgBind b("safe", args, {});
  if (v.is_string()) return v;
  return in.make_string(to_str(v));
}

Value f_sort(Interp& in, const Value& v, Args& args) {
  ArgBind b("sort", args, {"reverse", "case_sensitive", "attribute"});
  bool rev = flag(b, 0), cs = flag(b, 1);
  std::vector<std::vector<Value>> paths;  // "age,name" sorts by several keys
  if (b.has(2) && !b[2]->is_none()) {
    if (b[2]->is_string()) {
      std::string all = b[2]->s();
      size_t start = 0;
      while (true) {
        size_t comma = all.find(',', start);
        paths.push_back(attr_path(Value::str(all.substr(start, comma == std::string::npos ? std::string::npos : comma - start))));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      paths.push_back(attr_path(*b[2]));
    }
  }
  auto items = in.iterate(v);
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i) {
    Value k;
    if (paths.empty()) {
      k = cs ? items[i] : lower_if_str(items[i]);
    } else {
      std::vector<Value> ks;
      for (auto& p : paths) {
        Value x = get_path(in, items[i], p);
        ks.push_back(cs ? x : lower_if_str(x));
      }
      k = ks.size() == 1 ? ks[0] : in.make_list(ks);
    }
    keyed.emplace_back(std::move(k), i);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return rev ? py_compare(y.first, x.first) < 0 : py_compare(x.first, y.first) < 0;
  });
  std::vector<Value> out;
  for (auto& [k, i] : keyed) out.push_back(items[i]);
  return in.make_list(std::move(out));
}

Value f_string(Interp& in, const Value& v, Args& args) {
  ArgBind b("string", args, {});
  if (v.is_string()) return v;
  return in.make_string(to_str(v));
}

Value f_sum(Interp& in, const Value& v, Args& args) {
  ArgBind b("sum", args, {"attribute", "start"});
  std::vector<Value> path;
  if (b.has(0) && !b[0]->is_none()) path = attr_path(*b[0]);
  Value acc = b.has(1) ? *b[1] : Value::integer(0);
  Args none;
  for (auto& item : in.iterate(v)) {
    Value x = path.empty() ? item : get_path(in, item, path);
    if (!acc.is_number() || !x.is_number()) {
      if (acc.is_string() || x.is_undefined() || acc.is_undefined())
        fail(x.is_undefined() ? *x.hint : "sum() can't sum strings");
      if (!(acc.is_list() && x.is_list()))
        fail(std::string("unsupported operand type(s) for +: '") + type_name(acc) + "' and '" + type_name(x) + "'");
    }
    if (acc.is_list()) {
      std::vector<Value> merged = in.iterate(acc);
      for (auto& e : in.iterate(x)) merged.push_back(e);
      acc = in.make_list(std::move(merged));
    } else if (acc.is_float() || x.is_float()) {
      acc = Value::of(Json(as_double(*acc.j) + as_double(*x.j)));
    } else {
      int64_t r;
      if (__builtin_add_overflow(as_int(acc, "sum"), as_int(x, "sum"), &r)) fail("integer overflow");
      acc = Value::integer(r);
    }
  }
  return acc;
}

// jinja2's title filter: words start after whitespace, '-', and opening
// brackets, unlike Python's str.title().
Value f_title(Interp& in, const Value& v, Args& args) {
  ArgBind b("title", args, {});
  std::string s = text_of(v), out;
  bool word_start = true;
  for (size_t i = 0; i < s.size();) {
    size_t begin = i;
    uint32_t c = utf8_next(s, i);
    bool sep = py_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      out.append(s, begin, i - begin);
      word_start = true;
    } else if (word_start) {
      out += py_upper(std::string_view(s).substr(begin, i - begin));
      word_start = false;
    } else {
      out += py_lower(std::string_view(s).substr(begin, i - begin));
    }
  }
  return in.make_string(std::move(out));
}

Value f_trim(Interp& in, const Value& v, Args& args) {
  ArgBind b("trim", args, {"chars"});
  const std::string* chars = b.has(0) && !b[0]->is_none() ? &str_arg(*b[0], "trim") : nullptr;
  return in.make_string(py_strip(text_of(v), chars, true, true));
}

// A key equal for values Python's set treats as equal (1 == 1.0 == True).
std::string hash_key(const Value& v) {
  if (v.is_undefined()) return "u";
  if (!v.is_json() || v.j->is_structured())
    fail(std::string("unhashable type: '") + type_name(v) + "'");
  if (v.is_string()) return "s" + v.s();
  if (v.is_none()) return "n";
  double d = as_double(*v.j);
  if (v.is_float() && !(std::nearbyint(d) == d && std::fabs(d) < 9.2e18)) return "f" + float_repr(d);
  return "i" + std::to_string(v.is_float() ? static_cast<int64_t>(d) : as_int(v, "value"));
}

Value f_unique(Interp& in, const Value& v, Args& args) {
  ArgBind b("unique", args, {"case_sensitive", "attribute"});
  std::vector<Value> path;
  if (b.has(1) && !b[1]->is_none()) path = attr_path(*b[1]);
  std::vector<Value> out;
  std::unordered_set<std::string> seen;
  for (auto& item : in.iterate(v)) {
    Value k = path.empty() ? item : get_path(in, item, path);
    if (!flag(b, 0)) k = lower_if_str(k);
    if (seen.insert(hash_key(k)).second) out.push_back(item);
  }
  return in.make_list(std::move(out));
}

Value f_wordcount(Interp&, const Value& v, Args& args) {
  ArgBind b("wordcount", args, {});
  std::string s = text_of(v);
  int64_t n = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = utf8_next(s, i);
    bool w = c == '_' || (c < 0x80 ? std::isalnum(static_cast<int>(c)) != 0 : !py_isspace(c));
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::integer(n);
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False).
Value f_tojson(Interp& in, const Value& v, Args& args) {
  ArgBind b("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions opt;
  opt.ensure_ascii = flag(b, 0);
  if (b.has(1) && !b[1]->is_none()) {
    opt.pretty = true;
    opt.item_sep = ",";
    if (b[1]->is_string()) {
      opt.indent = b[1]->s();
    } else {
      int64_t w = as_int(*b[1], "indent");
      if (w > 1000) fail("indent too large");
      opt.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, w)), ' ');
    }
  }
  if (b.has(2) && !b[2]->is_none()) {
    auto seps = in.iterate(*b[2]);
    if (seps.size() != 2) fail("separators must be a pair of strings");
    opt.item_sep = str_arg(seps[0], "tojson");
    opt.key_sep = str_arg(seps[1], "tojson");
  }
  opt.sort_keys = flag(b, 3);
  if (v.is_json()) check_json_depth(*v.j, kMaxValueDepth);
  std::string out;
  json_dumps(out, v, opt);
  return in.make_string(std::move(out));
}

struct FilterEntry {
  const char* name;
  FilterFn fn;
};

const FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", nullptr},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"filesizeformat", nullptr},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_escape},
    {"format", f_format},
    {"groupby", nullptr},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"pprint", nullptr},
    {"random", nullptr},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"slice", nullptr},
    {"sort", f_sort},
    {"string", f_string},
    {"striptags", nullptr},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", nullptr},
    {"unique", f_unique},
    {"upper", f_upper},
    {"urlencode", nullptr},
    {"urlize", nullptr},
    {"wordcount", f_wordcount},
    {"wordwrap", nullptr},
    {"xmlattr", nullptr},
};

}  // namespace

FilterFn find_filter(const std::string& name, bool* known) { return find_in(kFilters, name, known); }

}  // namespace vlm::text::jinja
