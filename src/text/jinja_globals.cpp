// jinja2's tests and global functions, plus transformers' globals
// (raise_exception, strftime_now) and the loop object's attributes.
#include <cmath>
#include <ctime>

#include "text/jinja_builtins.h"

namespace vlm::text::jinja {
namespace {

// ----------------------------------------------------------------- tests ----

bool t_defined(Interp&, const Value& v, Args&) { return !v.is_undefined(); }
bool t_undefined(Interp&, const Value& v, Args&) { return v.is_undefined(); }
bool t_none(Interp&, const Value& v, Args&) { return v.is_none(); }
bool t_boolean(Interp&, const Value& v, Args&) { return v.is_bool(); }
bool t_true(Interp&, const Value& v, Args&) { return v.is_bool() && v.j->get<bool>(); }
bool t_false(Interp&, const Value& v, Args&) { return v.is_bool() && !v.j->get<bool>(); }
bool t_integer(Interp&, const Value& v, Args&) { return v.is_int(); }
bool t_float(Interp&, const Value& v, Args&) { return v.is_float(); }
bool t_number(Interp&, const Value& v, Args&) { return v.is_number(); }
bool t_string(Interp&, const Value& v, Args&) { return v.is_string(); }
bool t_mapping(Interp&, const Value& v, Args&) { return v.is_dict(); }
// Undefined is iterable and a sequence in jinja2 (it has __iter__, __len__
// and __getitem__).
bool t_iterable(Interp&, const Value& v, Args&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_sequence(Interp& in, const Value& v, Args& a) { return t_iterable(in, v, a); }
bool t_callable(Interp&, const Value& v, Args&) {
  return v.is_undefined() || v.kind == Value::Kind::kMacro || v.kind == Value::Kind::kCallable;
}
bool t_escaped(Interp&, const Value&, Args&) { return false; }

Value test_arg(Args& a, const char* name) {
  ArgBind b(name, a, {"other"});
  if (!b.has(0)) fail(std::string(name) + " test requires an argument");
  return *b[0];
}
bool t_eq(Interp&, const Value& v, Args& a) { return py_equal(v, test_arg(a, "eq")); }
bool t_ne(Interp&, const Value& v, Args& a) { return !py_equal(v, test_arg(a, "ne")); }
bool t_lt(Interp&, const Value& v, Args& a) { return py_compare(v, test_arg(a, "lt")) < 0; }
bool t_le(Interp&, const Value& v, Args& a) { return py_compare(v, test_arg(a, "le")) <= 0; }
bool t_gt(Interp&, const Value& v, Args& a) { return py_compare(v, test_arg(a, "gt")) > 0; }
bool t_ge(Interp&, const Value& v, Args& a) { return py_compare(v, test_arg(a, "ge")) >= 0; }
bool t_in(Interp& in, const Value& v, Args& a) { return in.contains(test_arg(a, "in"), v); }
bool t_sameas(Interp&, const Value& v, Args& a) {
  Value o = test_arg(a, "sameas");
  if (v.is_json() && o.is_json()) {
    if (v.j == o.j) return true;
    // None, True and False are singletons in Python.
    bool singleton = (v.is_none() || v.is_bool()) && (o.is_none() || o.is_bool());
    return singleton && json_equal(*v.j, *o.j) && v.j->type() == o.j->type();
  }
  return v.kind == o.kind && v.obj == o.obj && !v.is_undefined();
}

Value mod_of(Interp&, const Value& v, int64_t d) {
  if (v.is_undefined()) fail(*v.hint);
  if (v.is_float()) {
    double m = std::fmod(v.j->get<double>(), static_cast<double>(d));
    if (m < 0) m += static_cast<double>(d);
    return Value::of(Json(m));
  }
  int64_t i = as_int(v, "value");
  int64_t m = i % d;
  if (m < 0) m += d < 0 ? -d : d;
  return Value::integer(m);
}
bool t_odd(Interp& in, const Value& v, Args&) { return json_equal(*mod_of(in, v, 2).j, Json(1)); }
bool t_even(Interp& in, const Value& v, Args&) { return json_equal(*mod_of(in, v, 2).j, Json(0)); }
bool t_divisibleby(Interp& in, const Value& v, Args& a) {
  int64_t n = as_int(test_arg(a, "divisibleby"), "divisor");
  if (n == 0) fail("integer division or modulo by zero");
  return json_equal(*mod_of(in, v, n < 0 ? -n : n).j, Json(0));
}
bool t_lower(Interp&, const Value& v, Args&) {
  std::string s = text_of(v);
  return py_lower(s) == s && py_upper(s) != s;
}
bool t_upper(Interp&, const Value& v, Args&) {
  std::string s = text_of(v);
  return py_upper(s) == s && py_lower(s) != s;
}
bool t_filter(Interp&, const Value& v, Args&) {
  bool known = false;
  return v.is_string() && find_filter(v.s(), &known) != nullptr;
}
bool t_test(Interp&, const Value& v, Args&) {
  bool known = false;
  return v.is_string() && find_test(v.s(), &known) != nullptr;
}

struct TestEntry {
  const char* name;
  TestFn fn;
};

const TestEntry kTests[] = {
    {"odd", t_odd},          {"even", t_even},         {"divisibleby", t_divisibleby},
    {"defined", t_defined},  {"undefined", t_undefined}, {"filter", t_filter},
    {"test", t_test},        {"none", t_none},         {"boolean", t_boolean},
    {"false", t_false},      {"true", t_true},         {"integer", t_integer},
    {"float", t_float},      {"lower", t_lower},       {"upper", t_upper},
    {"string", t_string},    {"mapping", t_mapping},   {"number", t_number},
    {"sequence", t_sequence}, {"iterable", t_iterable}, {"callable", t_callable},
    {"sameas", t_sameas},    {"escaped", t_escaped},   {"in", t_in},
    {"==", t_eq},            {"eq", t_eq},             {"equalto", t_eq},
    {"!=", t_ne},            {"ne", t_ne},             {">", t_gt},
    {"gt", t_gt},            {"greaterthan", t_gt},    {"ge", t_ge},
    {">=", t_ge},            {"<", t_lt},              {"lt", t_lt},
    {"lessthan", t_lt},      {"<=", t_le},             {"le", t_le},
};

// --------------------------------------------------------------- globals ----

Value g_range(Interp& in, Args& args) {
  if (!args.kw.empty()) fail("range() takes no keyword arguments");
  if (args.pos.empty() || args.pos.size() > 3) fail("range expected 1 to 3 arguments");
  int64_t start = 0, stop, step = 1;
  if (args.pos.size() == 1) {
    stop = as_int(args.pos[0], "range() argument");
  } else {
    start = as_int(args.pos[0], "range() argument");
    stop = as_int(args.pos[1], "range() argument");
    if (args.pos.size() == 3) step = as_int(args.pos[2], "range() argument");
  }
  if (step == 0) fail("range() arg 3 must not be zero");
  // The sandbox refuses ranges longer than MAX_RANGE = 100000.
  __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
  __int128 absstep = step > 0 ? step : -static_cast<__int128>(step);
  __int128 n = span <= 0 ? 0 : (span + absstep - 1) / absstep;
  if (n > 100000) fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  Json arr = Json::array();
  for (__int128 i = 0; i < n; ++i) arr.push_back(static_cast<int64_t>(start + i * step));
  in.charge(static_cast<uint64_t>(n) * 16);
  return Value::of(std::move(arr));
}

Value g_namespace(Interp& in, Args& args) {
  auto ns = std::make_shared<Namespace>();
  in.track(ns);
  if (args.pos.size() > 1) fail("namespace() takes at most one positional argument");
  if (!args.pos.empty()) {
    const Value& init = args.pos[0];
    if (init.is_dict()) {  // keys are unique already: no search per insert
      for (const auto& [k, e] : init.j->items()) ns->attrs.emplace_back(k, Value::child(init.j, e));
    } else {
      for (auto& pair : in.iterate(init)) {
        auto kv = in.iterate(pair);
        if (kv.size() != 2 || !kv[0].is_string()) fail("namespace(): expected a mapping or key/value pairs");
        in.charge(ns->attrs.size());
        ns->set(kv[0].s(), kv[1]);
      }
    }
  }
  for (auto& [k, v] : args.kw) ns->set(k, v);
  Value v;
  v.kind = Value::Kind::kNamespace;
  v.obj = std::move(ns);
  return v;
}

Value g_dict(Interp& in, Args& args) {
  Json obj = Json::object();
  if (args.pos.size() > 1) fail("dict expected at most 1 argument");
  if (!args.pos.empty()) {
    const Value& init = args.pos[0];
    if (init.is_dict()) {
      obj = in.to_data(init);
    } else {
      for (auto& pair : in.iterate(init)) {
        auto kv = in.iterate(pair);
        if (kv.size() != 2 || !kv[0].is_string()) fail("dict(): expected a mapping or key/value pairs");
        in.charge(obj.size());
        obj[kv[0].s()] = in.to_data(kv[1]);
      }
    }
  }
  for (auto& [k, v] : args.kw) obj[k] = in.to_data(v);
  return Value::of(std::move(obj));
}

Value g_raise_exception(Interp&, Args& args) {
  ArgBind b("raise_exception", args, {"message"});
  JinjaError e;
  e.message = b.has(0) ? to_str(*b[0]) : "";
  e.raised = true;
  throw e;
}

Value g_strftime_now(Interp& in, Args& args) {
  ArgBind b("strftime_now", args, {"format"});
  if (!b.has(0)) fail("strftime_now() missing required argument 'format'");
  const std::string& fmt = str_arg(*b[0], "strftime_now");
  if (fmt.empty()) return Value::str("");
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::string buf(256, '\0');
  for (int tries = 0; tries < 6; ++tries) {
    size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
    if (n > 0) {
      buf.resize(n);
      return in.make_string(std::move(buf));
    }
    buf.resize(buf.size() * 4);
  }
  return Value::str("");
}

}  // namespace

TestFn find_test(const std::string& name, bool* known) { return find_in(kTests, name, known); }

bool is_global_function(const std::string& name) {
  return name == "range" || name == "namespace" || name == "dict" || name == "raise_exception" ||
         name == "strftime_now" || name == "lipsum" || name == "cycler" || name == "joiner";
}

Value call_global(Interp& in, const std::string& name, Args& args) {
  if (name == "range") return g_range(in, args);
  if (name == "namespace") return g_namespace(in, args);
  if (name == "dict") return g_dict(in, args);
  if (name == "raise_exception") return g_raise_exception(in, args);
  if (name == "strftime_now") return g_strftime_now(in, args);
  fail("the global function '" + name + "' is not supported");
}

Value loop_attr(const LoopObj& loop, const std::string& name, const Value& self) {
  const size_t n = loop.items->size(), i = loop.index0;
  auto as = [](size_t x) { return Value::integer(static_cast<int64_t>(x)); };
  if (name == "index") return as(i + 1);
  if (name == "index0") return as(i);
  if (name == "revindex") return as(n - i);
  if (name == "revindex0") return as(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i + 1 == n);
  if (name == "length") return as(n);
  if (name == "depth") return as(static_cast<size_t>(loop.depth0) + 1);
  if (name == "depth0") return as(static_cast<size_t>(loop.depth0));
  if (name == "previtem") return i > 0 ? (*loop.items)[i - 1] : Value::undefined("there is no previous item");
  if (name == "nextitem") return i + 1 < n ? (*loop.items)[i + 1] : Value::undefined("there is no next item");
  if (name == "cycle" || name == "changed") {
    auto c = std::make_shared<Callable>();
    c->name = name;
    c->self = self;
    Value v;
    v.kind = Value::Kind::kCallable;
    v.obj = std::move(c);
    return v;
  }
  return Value::undefined("'LoopContext' object has no attribute '" + name + "'");
}

}  // namespace vlm::text::jinja
