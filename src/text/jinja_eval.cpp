// Tree-walking evaluation of chat templates with jinja2's runtime semantics:
// scoping (loops and macros get their own scope, `if` does not), Undefined,
// sandboxed attribute lookup and Python operators.
#include "text/jinja_eval.h"

#include <cmath>
#include <limits>
#include <optional>

namespace vlm::text::jinja {

void Frame::set(const std::string& name, Value v) {
  for (auto& [k, old] : vars)
    if (k == name) {
      old = std::move(v);
      return;
    }
  vars.emplace_back(name, std::move(v));
}

Interp::DepthGuard::DepthGuard(Interp& i) : in(i) {
  if (++in.depth_ > kMaxEvalDepth) fail("template recursion too deep");
}

Interp::Interp(const Template& t, std::shared_ptr<const Json> globals, const Json& fallbacks,
               const ChatTemplateLimits& limits)
    : tmpl_(t), globals_(std::move(globals)), fallbacks_(fallbacks), limits_(limits) {}

Interp::~Interp() {
  for (auto& w : namespaces_)
    if (auto ns = w.lock()) ns->attrs.clear();
  for (auto& f : closures_) {
    f->vars.clear();
    f->parent.reset();
  }
}

std::string Interp::render() {
  auto top = std::make_shared<Frame>();
  std::string out;
  exec(tmpl_.body, top, out);
  return out;
}

// ------------------------------------------------------------- budgets ----

void Interp::step() {
  if (++steps_ > limits_.max_steps) fail("template exceeded its evaluation step limit");
}

void Interp::charge(uint64_t bytes) {
  work_ += bytes;
  if (work_ > limits_.max_work_bytes) fail("template exceeded its work limit (too much data built)");
}

void Interp::check_string(size_t bytes) {
  if (bytes > limits_.max_string_bytes) fail("string too long (limit " + std::to_string(limits_.max_string_bytes) + " bytes)");
}

void Interp::emit(std::string& out, const std::string& s) {
  if (out.size() + s.size() > limits_.max_output_bytes)
    fail("template output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
  charge(s.size());
  out += s;
}

namespace {
// Approximate cost of building a JSON value (bytes plus a per-node charge that
// reflects allocation and copying), giving up once past `cap`.
constexpr uint64_t kNodeCost = 32;
uint64_t json_cost(const Json& j, uint64_t cap, int depth) {
  if (j.is_structured() && depth > kMaxValueDepth) fail("value nested too deeply");
  uint64_t c = kNodeCost;
  if (j.is_string()) return c + j.get_ref<const std::string&>().size();
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      c += k.size() + json_cost(v, cap, depth + 1);
      if (c > cap) return c;
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      c += json_cost(v, cap, depth + 1);
      if (c > cap) return c;
    }
  }
  return c;
}
}  // namespace

Json Interp::to_data(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kJson: {
      uint64_t cap = limits_.max_string_bytes;
      uint64_t c = json_cost(*v.j, cap, 1);
      if (c > cap) fail("value too large");
      charge(c);
      return *v.j;
    }
    case Value::Kind::kUndefined: return nullptr;  // jinja would keep an Undefined here
    default: fail(std::string("cannot store a ") + type_name(v) + " inside a list or dict");
  }
}

Value Interp::make_list(std::vector<Value> items) {
  if (items.size() > limits_.max_list_items) fail("list too long");
  Json arr = Json::array();
  uint64_t total = 0;
  for (auto& it : items) {
    Json d = to_data(it);
    total += json_cost(d, limits_.max_string_bytes, 1);
    if (total > limits_.max_string_bytes) fail("list too large");
    arr.push_back(std::move(d));
  }
  return Value::of(std::move(arr));
}

// ----------------------------------------------------------- statements ----

Flow Interp::exec(const Body& body, const FramePtr& f, std::string& out) {
  for (const auto& s : body) {
    Flow fl = exec_stmt(*s, f, out);
    if (fl != Flow::kNormal) return fl;
  }
  return Flow::kNormal;
}

Flow Interp::exec_stmt(const Stmt& s, const FramePtr& f, std::string& out) {
  step();
  DepthGuard guard(*this);
  try {
    switch (s.kind) {
      case StmtKind::kText: emit(out, s.text); break;
      case StmtKind::kPrint:
        for (const auto& e : s.exprs) {
          Value v = eval(*e, f);
          if (e->kind == ExprKind::kTuple && v.is_list()) {
            // A printed tuple looks like Python's tuple, not a list.
            std::string t = "(";
            for (size_t i = 0; i < v.j->size(); ++i) {
              if (i) t += ", ";
              repr_json(t, (*v.j)[i]);
            }
            t += v.j->size() == 1 ? ",)" : ")";
            emit(out, t);
          } else if (v.is_string()) {
            emit(out, v.s());
          } else {
            emit(out, to_str(v));
          }
        }
        break;
      case StmtKind::kIf: {
        size_t n = s.exprs.size();
        for (size_t i = 0; i < n; ++i)
          if (truthy(eval(*s.exprs[i], f))) return exec(s.bodies[i], f, out);
        if (s.bodies.size() > n) return exec(s.bodies[n], f, out);
        break;
      }
      case StmtKind::kFor: exec_for(s, f, out); break;
      case StmtKind::kSet: bind(s.target, eval(*s.exprs[0], f), f); break;
      case StmtKind::kSetBlock: {
        auto inner = std::make_shared<Frame>();
        inner->parent = f;
        std::string buf;
        // A break/continue inside leaves the enclosing loop before the
        // assignment happens, as in jinja2's generated code.
        if (Flow fl = exec(s.bodies[0], inner, buf); fl != Flow::kNormal) return fl;
        Value v = Value::str(std::move(buf));
        if (s.filter) v = eval_filter_chain(*s.filter, f, &v);
        bind(s.target, v, f);
        break;
      }
      case StmtKind::kMacro: {
        auto m = std::make_shared<Macro>();
        m->name = s.name;
        m->params = &s.params;
        m->defaults = &s.defaults;
        m->body = &s.bodies[0];
        m->closure = f;
        if (closures_.empty() || closures_.back() != f) closures_.push_back(f);
        Value v;
        v.kind = Value::Kind::kMacro;
        v.obj = m;
        f->set(s.name, std::move(v));
        break;
      }
      case StmtKind::kCallBlock: {
        const Expr& call = *s.exprs[0];
        auto caller = std::make_shared<Macro>();
        caller->name = "caller";
        caller->params = &s.params;
        caller->defaults = &s.defaults;
        caller->body = &s.bodies[0];
        caller->closure = f;
        if (closures_.empty() || closures_.back() != f) closures_.push_back(f);
        Value cv;
        cv.kind = Value::Kind::kMacro;
        cv.obj = caller;
        Value callee = eval(*call.kids[0], f);
        Args args;
        eval_args(call, 1, f, args);
        args.kw.emplace_back("caller", std::move(cv));
        Value r = this->call(callee, args);
        emit(out, to_str(r));
        break;
      }
      case StmtKind::kFilterBlock: {
        auto inner = std::make_shared<Frame>();
        inner->parent = f;
        std::string buf;
        if (Flow fl = exec(s.bodies[0], inner, buf); fl != Flow::kNormal) return fl;
        Value v = Value::str(std::move(buf));
        emit(out, to_str(eval_filter_chain(*s.filter, f, &v)));
        break;
      }
      case StmtKind::kWith: {
        auto inner = std::make_shared<Frame>();
        inner->parent = f;
        for (size_t i = 0; i < s.targets.size(); ++i) bind(s.targets[i], eval(*s.exprs[i], f), inner);
        return exec(s.bodies[0], inner, out);
      }
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
      case StmtKind::kBody: return exec(s.bodies[0], f, out);
    }
  } catch (JinjaError& e) {
    if (e.pos == kNoPos) e.pos = s.pos;
    throw;
  }
  return Flow::kNormal;
}

void Interp::exec_for(const Stmt& s, const FramePtr& f, std::string& out) {
  Value seq = eval(*s.exprs[0], f);
  std::vector<Value> items = iterate(seq);
  if (s.exprs[1]) {  // `for x in xs if cond`: filtered before loop.* is computed
    std::vector<Value> kept;
    for (auto& it : items) {
      if (++iterations_ > limits_.max_loop_iterations) fail("template exceeded its loop iteration limit");
      auto tf = std::make_shared<Frame>();
      tf->parent = f;
      bind(s.target, it, tf);
      if (truthy(eval(*s.exprs[1], tf))) kept.push_back(std::move(it));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto ef = std::make_shared<Frame>();
    ef->parent = f;
    exec(s.bodies[1], ef, out);
    return;
  }
  auto loop = std::make_shared<LoopObj>();
  loop->items = std::make_shared<const std::vector<Value>>(std::move(items));
  Value lv;
  lv.kind = Value::Kind::kLoop;
  lv.obj = loop;
  const auto& list = *loop->items;
  for (size_t i = 0; i < list.size(); ++i) {
    if (++iterations_ > limits_.max_loop_iterations) fail("template exceeded its loop iteration limit");
    loop->index0 = i;
    auto it = std::make_shared<Frame>();
    it->parent = f;
    it->vars.reserve(2);
    it->set("loop", lv);
    bind(s.target, list[i], it);
    if (exec(s.bodies[0], it, out) == Flow::kBreak) break;
  }
}

void Interp::bind(const Target& t, const Value& v, const FramePtr& f) {
  switch (t.kind) {
    case Target::Kind::kName: f->set(t.name, v); return;
    case Target::Kind::kNsAttr: {
      Value ns = lookup(f, t.name);
      if (ns.kind != Value::Kind::kNamespace)
        fail("cannot assign attribute on non-namespace object", t.pos);
      static_cast<Namespace&>(*ns.obj).set(t.attr, v);
      return;
    }
    case Target::Kind::kTuple: {
      std::vector<Value> parts;
      if (v.is_list() || v.is_string()) {
        parts = iterate(v);
      } else {
        fail(std::string("cannot unpack non-iterable ") + type_name(v) + " object", t.pos);
      }
      size_t n = t.items.size();
      if (parts.size() > n) fail("too many values to unpack (expected " + std::to_string(n) + ")", t.pos);
      if (parts.size() < n)
        fail("not enough values to unpack (expected " + std::to_string(n) + ", got " +
                 std::to_string(parts.size()) + ")",
             t.pos);
      for (size_t i = 0; i < n; ++i) bind(t.items[i], parts[i], f);
      return;
    }
  }
}

// ----------------------------------------------------------- variables ----

Value Interp::lookup(const FramePtr& f, const std::string& name) {
  for (const Frame* fr = f.get(); fr; fr = fr->parent.get())
    for (const auto& [k, v] : fr->vars)
      if (k == name) return v;
  if (globals_->is_object()) {
    auto it = globals_->find(name);
    if (it != globals_->end()) return Value::child(globals_, *it);
  }
  if (auto it = fallbacks_.find(name); it != fallbacks_.end()) return Value::of(*it);
  if (is_global_function(name)) {
    auto c = std::make_shared<Callable>();
    c->name = name;
    Value v;
    v.kind = Value::Kind::kCallable;
    v.obj = std::move(c);
    return v;
  }
  return Value::undefined("'" + name + "' is undefined");
}

// ---------------------------------------------------------- expressions ----

Value Interp::eval(const Expr& e, const FramePtr& f) {
  step();
  DepthGuard guard(*this);
  try {
    return eval_inner(e, f);
  } catch (JinjaError& err) {
    if (err.pos == kNoPos) err.pos = e.pos;
    throw;
  } catch (const nlohmann::json::exception& err) {
    // Not expected: every JSON access is type-checked first. Still report
    // where it happened rather than losing the position.
    throw JinjaError{std::string("internal error: ") + err.what(), e.pos};
  }
}

void Interp::eval_args(const Expr& e, size_t first, const FramePtr& f, Args& args) {
  size_t nkw = e.kwnames.size();
  size_t npos = e.kids.size() - first - nkw;
  args.pos.reserve(npos);
  for (size_t i = 0; i < npos; ++i) args.pos.push_back(eval(*e.kids[first + i], f));
  for (size_t i = 0; i < nkw; ++i)
    args.kw.emplace_back(e.kwnames[i], eval(*e.kids[first + npos + i], f));
}

Value Interp::eval_filter_chain(const Expr& e, const FramePtr& f, const Value* hole) {
  if (e.kind != ExprKind::kFilter) return eval(e, f);
  Value subject = e.kids[0] ? eval_filter_chain(*e.kids[0], f, hole) : *hole;
  Args args;
  eval_args(e, 1, f, args);
  return apply_filter(e.name, e.filter, subject, args);
}

Value Interp::eval_inner(const Expr& e, const FramePtr& f) {
  switch (e.kind) {
    case ExprKind::kConst: return Value::ref(e.value);
    case ExprKind::kName: return lookup(f, e.name);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.kids.size());
      for (const auto& k : e.kids) items.push_back(eval(*k, f));
      return make_list(std::move(items));
    }
    case ExprKind::kDict: {
      Json obj = Json::object();
      uint64_t total = 0;
      for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
        Value k = eval(*e.kids[i], f);
        Value v = eval(*e.kids[i + 1], f);
        if (!k.is_string()) fail("dict keys must be strings in chat templates", e.kids[i]->pos);
        Json d = to_data(v);
        total += json_cost(d, limits_.max_string_bytes, 1) + k.s().size();
        if (total > limits_.max_string_bytes) fail("dict too large");
        obj[k.s()] = std::move(d);
      }
      return Value::of(std::move(obj));
    }
    case ExprKind::kGetAttr: return getattr(eval(*e.kids[0], f), e.name);
    case ExprKind::kGetItem: {
      Value obj = eval(*e.kids[0], f);
      if (e.kids[1]->kind == ExprKind::kSlice) return slice(obj, *e.kids[1], f);
      return getitem(obj, eval(*e.kids[1], f));
    }
    case ExprKind::kSlice: fail("unexpected slice");
    case ExprKind::kCall: {
      Value callee = eval(*e.kids[0], f);
      Args args;
      eval_args(e, 1, f, args);
      return call(callee, args);
    }
    case ExprKind::kFilter: return eval_filter_chain(e, f, nullptr);
    case ExprKind::kTest: {
      Value subject = eval(*e.kids[0], f);
      Args args;
      eval_args(e, 1, f, args);
      return Value::boolean(apply_test(e.name, e.test, subject, args));
    }
    case ExprKind::kNot: return Value::boolean(!truthy(eval(*e.kids[0], f)));
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      Value v = eval(*e.kids[0], f);
      if (v.is_undefined()) fail(*v.hint);
      if (!v.is_number())
        fail(std::string("bad operand type for unary ") + (e.kind == ExprKind::kNeg ? "-" : "+") +
             ": '" + type_name(v) + "'");
      if (e.kind == ExprKind::kPos) return v.is_bool() ? Value::integer(as_int(v, "operand")) : v;
      if (v.is_float()) return Value::of(Json(-v.j->get<double>()));
      int64_t i = as_int(v, "operand");
      if (i == INT64_MIN) fail("integer overflow");
      return Value::integer(-i);
    }
    case ExprKind::kBinary: {
      Value a = eval(*e.kids[0], f);
      Value b = eval(*e.kids[1], f);
      return binary(e.bin, a, b);
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.kids[0], f);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.kids[i + 1], f);
        if (!compare(e.ops[i], left, right)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::kAnd: {
      Value a = eval(*e.kids[0], f);
      return truthy(a) ? eval(*e.kids[1], f) : a;
    }
    case ExprKind::kOr: {
      Value a = eval(*e.kids[0], f);
      return truthy(a) ? a : eval(*e.kids[1], f);
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& k : e.kids) {
        Value v = eval(*k, f);
        if (v.is_string()) {
          s += v.s();
        } else {
          s += to_str(v);
        }
        check_string(s.size());
      }
      return make_string(std::move(s));
    }
    case ExprKind::kCond: {
      if (truthy(eval(*e.kids[1], f))) return eval(*e.kids[0], f);
      if (e.kids[2]) return eval(*e.kids[2], f);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  fail("internal error: unknown expression");
}

// ------------------------------------------------------ attribute access ----

Value Interp::getattr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Value::Kind::kUndefined: fail(*obj.hint);
    case Value::Kind::kNamespace: {
      const Value* v = static_cast<const Namespace&>(*obj.obj).find(name);
      if (v) return *v;
      return Value::undefined("'Namespace' object has no attribute '" + name + "'");
    }
    case Value::Kind::kLoop: return loop_attr(static_cast<const LoopObj&>(*obj.obj), name, obj);
    case Value::Kind::kMacro:
    case Value::Kind::kCallable:
      return Value::undefined(std::string("'") + type_name(obj) + "' object has no attribute '" + name + "'");
    case Value::Kind::kJson: break;
  }
  // Python attributes (methods) win over keys, as in jinja2's getattr.
  bool unsafe = false;
  if (has_method(obj, name, &unsafe)) {
    if (unsafe)
      return Value::undefined("access to attribute '" + name + "' of '" + type_name(obj) +
                              "' object is unsafe.");
    auto c = std::make_shared<Callable>();
    c->name = name;
    c->self = obj;
    Value v;
    v.kind = Value::Kind::kCallable;
    v.obj = std::move(c);
    return v;
  }
  if (obj.is_dict()) {
    charge(obj.j->size());  // ordered_json finds keys by linear search
    auto it = obj.j->find(name);
    if (it != obj.j->end()) return Value::child(obj.j, *it);
  }
  return Value::undefined(std::string("'") + type_name(obj) + " object' has no attribute '" + name + "'");
}

namespace {
bool index_in(int64_t& i, size_t n) {
  if (i < 0) i += static_cast<int64_t>(n);
  return i >= 0 && static_cast<size_t>(i) < n;
}
bool all_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}
}  // namespace

Value Interp::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail(*obj.hint);
  if (obj.is_json()) {
    const Json& j = *obj.j;
    bool int_key = key.is_int() || key.is_bool();
    if (j.is_object() && key.is_string()) {
      charge(j.size());
      auto it = j.find(key.s());
      if (it != j.end()) return Value::child(obj.j, *it);
    } else if (j.is_array() && int_key) {
      int64_t i = as_int(key, "index");
      if (index_in(i, j.size())) return Value::child(obj.j, j[static_cast<size_t>(i)]);
      return Value::undefined("list object has no element " + to_str(key));
    } else if (j.is_string() && int_key) {
      int64_t i = as_int(key, "index");
      const std::string& s = j.get_ref<const std::string&>();
      charge(s.size());
      if (all_ascii(s)) {
        if (index_in(i, s.size())) return Value::str(std::string(1, s[static_cast<size_t>(i)]));
      } else {
        auto cps = utf8_decode(s);
        if (index_in(i, cps.size())) {
          std::string out;
          utf8_append(out, cps[static_cast<size_t>(i)]);
          return Value::str(std::move(out));
        }
      }
      return Value::undefined("str object has no element " + to_str(key));
    }
  }
  // Subscript failed: jinja2 falls back to the attribute of that name.
  if (key.is_string()) {
    if (obj.kind != Value::Kind::kJson || has_method(obj, key.s(), nullptr)) return getattr(obj, key.s());
    return Value::undefined(std::string("'") + type_name(obj) + " object' has no attribute '" + key.s() + "'");
  }
  return Value::undefined(std::string(type_name(obj)) + " object has no element " + repr(key));
}

Value Interp::slice(const Value& obj, const Expr& s, const FramePtr& f) {
  Value parts[3];
  for (int k = 0; k < 3; ++k)
    if (s.kids[k]) parts[k] = eval(*s.kids[k], f);
  if (obj.is_undefined()) fail(*obj.hint);
  if (!obj.is_list() && !obj.is_string()) return Value::undefined(std::string(type_name(obj)) + " object is not sliceable");
  auto idx = [&](int k, const char* what) -> std::optional<int64_t> {
    if (!s.kids[k] || parts[k].is_none()) return std::nullopt;
    if (parts[k].is_undefined()) fail(*parts[k].hint);
    return as_int(parts[k], what);
  };
  auto start = idx(0, "slice start"), stop = idx(1, "slice stop"), stp = idx(2, "slice step");
  int64_t step = stp.value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  const bool is_str = obj.is_string();
  std::vector<uint32_t> cps;
  size_t n;
  const bool ascii = is_str && all_ascii(obj.s());
  if (is_str) {
    charge(obj.s().size());
    if (!ascii) cps = utf8_decode(obj.s());
    n = ascii ? obj.s().size() : cps.size();
  } else {
    n = obj.j->size();
  }
  const int64_t len = static_cast<int64_t>(n);
  auto adjust = [&](std::optional<int64_t> v, bool is_start) -> int64_t {
    int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? len - 1 : len;
    if (!v) return (is_start == (step < 0)) ? upper : lower;
    int64_t x = *v;
    if (x < 0) {
      x += len;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  int64_t a = adjust(start, true), b = adjust(stop, false);
  std::vector<size_t> picks;
  if (step > 0) {
    for (int64_t i = a; i < b; i += step) picks.push_back(static_cast<size_t>(i));
  } else {
    for (int64_t i = a; i > b; i += step) picks.push_back(static_cast<size_t>(i));
  }
  if (is_str) {
    std::string out;
    out.reserve(picks.size());
    for (size_t i : picks) {
      if (ascii) {
        out.push_back(obj.s()[i]);
      } else {
        utf8_append(out, cps[i]);
      }
    }
    return make_string(std::move(out));
  }
  std::vector<Value> items;
  items.reserve(picks.size());
  for (size_t i : picks) items.push_back(Value::child(obj.j, (*obj.j)[i]));
  return make_list(std::move(items));
}

std::vector<Value> Interp::iterate(const Value& v) {
  std::vector<Value> out;
  switch (v.kind) {
    case Value::Kind::kUndefined: return out;
    case Value::Kind::kJson: break;
    default: fail(std::string("'") + type_name(v) + "' object is not iterable");
  }
  const Json& j = *v.j;
  if (j.is_structured() && j.size() > limits_.max_list_items) fail("too many items to iterate");
  if (j.is_structured()) charge(kNodeCost * j.size());
  if (j.is_string()) charge(kNodeCost * j.get_ref<const std::string&>().size());
  if (j.is_string() && j.get_ref<const std::string&>().size() > limits_.max_list_items &&
      utf8_length(j.get_ref<const std::string&>()) > limits_.max_list_items)
    fail("string too long to iterate");
  if (j.is_array()) {
    out.reserve(j.size());
    for (const auto& e : j) out.push_back(Value::child(v.j, e));
  } else if (j.is_object()) {
    out.reserve(j.size());
    for (const auto& [k, e] : j.items()) out.push_back(Value::str(k));
  } else if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    for (size_t i = 0; i < s.size();) {
      size_t b = i;
      utf8_next(s, i);
      out.push_back(Value::str(s.substr(b, i - b)));
    }
  } else {
    fail(std::string("'") + type_name(v) + "' object is not iterable");
  }
  return out;
}

bool Interp::contains(const Value& c, const Value& item) {
  if (c.is_undefined()) return false;
  if (!c.is_json()) fail(std::string("argument of type '") + type_name(c) + "' is not iterable");
  const Json& j = *c.j;
  // Scans are linear; charging them keeps `x in big` inside a loop bounded.
  if (j.is_string()) charge(j.get_ref<const std::string&>().size());
  if (j.is_object()) charge(j.size());
  if (j.is_array()) charge(json_cost(j, UINT64_MAX, 1));
  if (j.is_string()) {
    if (!item.is_string())
      fail(std::string("'in <string>' requires string as left operand, not ") + type_name(item));
    return j.get_ref<const std::string&>().find(item.s()) != std::string::npos;
  }
  if (j.is_object()) return item.is_string() && j.contains(item.s());
  if (j.is_array()) {
    if (!item.is_json()) return false;
    for (const auto& e : j)
      if (json_equal(e, *item.j)) return true;
    return false;
  }
  fail(std::string("argument of type '") + type_name(c) + "' is not iterable");
}

// ------------------------------------------------------------ operators ----

namespace {
const char* op_symbol(BinOp op) {
  switch (op) {
    case BinOp::kAdd: return "+";
    case BinOp::kSub: return "-";
    case BinOp::kMul: return "*";
    case BinOp::kDiv: return "/";
    case BinOp::kFloorDiv: return "//";
    case BinOp::kMod: return "%";
    case BinOp::kPow: return "** or pow()";
  }
  return "?";
}

[[noreturn]] void bad_operands(BinOp op, const Value& a, const Value& b) {
  fail(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" + type_name(a) +
       "' and '" + type_name(b) + "'");
}

// Python's float floor division and modulo.
void float_divmod(double x, double y, double& div, double& mod) {
  if (y == 0) fail("float division by zero");
  mod = std::fmod(x, y);
  div = (x - mod) / y;
  if (mod != 0) {
    if ((y < 0) != (mod < 0)) {
      mod += y;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, y);
  }
  if (div != 0) {
    double fl = std::floor(div);
    if (div - fl > 0.5) fl += 1.0;
    div = fl;
  } else {
    div = std::copysign(0.0, x / y);
  }
}
}  // namespace

Value Interp::binary(BinOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail(*a.hint);
  if (b.is_undefined()) fail(*b.hint);
  if (a.is_number() && b.is_number()) {
    const Json& x = *a.j;
    const Json& y = *b.j;
    bool ints = !x.is_number_float() && !y.is_number_float();
    if (ints) {
      int64_t p = as_int(a, "operand"), q = as_int(b, "operand"), r = 0;
      switch (op) {
        case BinOp::kAdd:
          if (__builtin_add_overflow(p, q, &r)) fail("integer overflow");
          return Value::integer(r);
        case BinOp::kSub:
          if (__builtin_sub_overflow(p, q, &r)) fail("integer overflow");
          return Value::integer(r);
        case BinOp::kMul:
          if (__builtin_mul_overflow(p, q, &r)) fail("integer overflow");
          return Value::integer(r);
        case BinOp::kDiv:
          if (q == 0) fail("division by zero");
          return Value::of(Json(static_cast<double>(p) / static_cast<double>(q)));
        case BinOp::kFloorDiv:
        case BinOp::kMod: {
          if (q == 0) fail("integer division or modulo by zero");
          if (p == INT64_MIN && q == -1) {
            if (op == BinOp::kMod) return Value::integer(0);
            fail("integer overflow");
          }
          int64_t d = p / q, m = p % q;
          if (m != 0 && ((m < 0) != (q < 0))) {
            m += q;
            d -= 1;
          }
          return Value::integer(op == BinOp::kMod ? m : d);
        }
        case BinOp::kPow: {
          if (q < 0) {
            if (p == 0) fail("0.0 cannot be raised to a negative power");
            return Value::of(Json(std::pow(static_cast<double>(p), static_cast<double>(q))));
          }
          int64_t result = 1, base = p;
          while (q > 0) {
            if (q & 1)
              if (__builtin_mul_overflow(result, base, &result)) fail("integer overflow");
            q >>= 1;
            if (q > 0 && __builtin_mul_overflow(base, base, &base)) fail("integer overflow");
          }
          return Value::integer(result);
        }
      }
    }
    double p = as_double(x), q = as_double(y);
    switch (op) {
      case BinOp::kAdd: return Value::of(Json(p + q));
      case BinOp::kSub: return Value::of(Json(p - q));
      case BinOp::kMul: return Value::of(Json(p * q));
      case BinOp::kDiv:
        if (q == 0) fail("float division by zero");
        return Value::of(Json(p / q));
      case BinOp::kFloorDiv:
      case BinOp::kMod: {
        double d, m;
        float_divmod(p, q, d, m);
        return Value::of(Json(op == BinOp::kMod ? m : d));
      }
      case BinOp::kPow:
        if (p == 0 && q < 0) fail("0.0 cannot be raised to a negative power");
        if (p < 0 && q != std::floor(q)) fail("negative number cannot be raised to a fractional power");
        return Value::of(Json(std::pow(p, q)));
    }
  }
  if (op == BinOp::kAdd) {
    if (a.is_string() && b.is_string()) {
      check_string(a.s().size() + b.s().size());
      return make_string(a.s() + b.s());
    }
    if (a.is_list() && b.is_list()) {
      if (a.j->size() + b.j->size() > limits_.max_list_items) fail("list too long");
      uint64_t cap = limits_.max_string_bytes;
      uint64_t cost = json_cost(*a.j, cap, 1) + json_cost(*b.j, cap, 1);
      if (cost > cap) fail("list too large");
      charge(cost);
      Json out = *a.j;
      for (const auto& e : *b.j) out.push_back(e);
      return Value::of(std::move(out));
    }
    if (a.is_string() || a.is_list())
      fail(std::string("can only concatenate ") + type_name(a) + " (not \"" + type_name(b) + "\") to " +
           type_name(a));
  }
  if (op == BinOp::kMul) {
    const Value* seq = (a.is_string() || a.is_list()) ? &a : (b.is_string() || b.is_list()) ? &b : nullptr;
    const Value* times = seq == &a ? &b : &a;
    if (seq && (times->is_int() || times->is_bool())) {
      int64_t n = std::max<int64_t>(0, as_int(*times, "count"));
      if (seq->is_string()) {
        const std::string& s = seq->s();
        if (n > 0 && s.size() > limits_.max_string_bytes / static_cast<uint64_t>(n)) check_string(SIZE_MAX);
        std::string out;
        out.reserve(s.size() * n);
        for (int64_t i = 0; i < n; ++i) out += s;
        return make_string(std::move(out));
      }
      size_t len = seq->j->size();
      if (n > 0 && len > limits_.max_list_items / static_cast<uint64_t>(n)) fail("list too long");
      std::vector<Value> base = iterate(*seq), items;
      items.reserve(len * n);
      for (int64_t i = 0; i < n; ++i)
        for (auto& v : base) items.push_back(v);
      return make_list(std::move(items));
    }
  }
  if (op == BinOp::kMod && a.is_string()) return make_string(percent_format(*this, a.s(), b));
  bad_operands(op, a, b);
}

bool Interp::compare(CmpOp op, const Value& a, const Value& b) {
  switch (op) {
    case CmpOp::kEq:
    case CmpOp::kNe: {
      if (a.is_json() && b.is_json() && a.j->is_structured() && b.j->is_structured())
        charge(std::min(json_cost(*a.j, UINT64_MAX, 1), json_cost(*b.j, UINT64_MAX, 1)));
      bool eq = py_equal(a, b);
      return op == CmpOp::kEq ? eq : !eq;
    }
    case CmpOp::kLt: return py_compare(a, b) < 0;
    case CmpOp::kLe: return py_compare(a, b) <= 0;
    case CmpOp::kGt: return py_compare(a, b) > 0;
    case CmpOp::kGe: return py_compare(a, b) >= 0;
    case CmpOp::kIn: return contains(b, a);
    case CmpOp::kNotIn: return !contains(b, a);
  }
  return false;
}

// ---------------------------------------------------------------- calls ----

Value Interp::call(const Value& callee, Args& args) {
  switch (callee.kind) {
    case Value::Kind::kMacro: return call_macro(static_cast<const Macro&>(*callee.obj), args);
    case Value::Kind::kCallable: {
      const auto& c = static_cast<const Callable&>(*callee.obj);
      if (c.self.kind == Value::Kind::kUndefined) return call_global(*this, c.name, args);
      return call_method(*this, c.self, c.name, args);
    }
    case Value::Kind::kUndefined: fail(*callee.hint);
    default: fail(std::string("'") + type_name(callee) + "' object is not callable");
  }
}

Value Interp::call_macro(const Macro& m, Args& args) {
  if (++call_depth_ > limits_.max_call_depth) {
    --call_depth_;
    fail("macro calls nested too deeply (limit " + std::to_string(limits_.max_call_depth) + ")");
  }
  struct Unwind {
    int& d;
    ~Unwind() { --d; }
  } unwind{call_depth_};
  auto f = std::make_shared<Frame>();
  f->parent = m.closure;
  const auto& params = *m.params;
  std::vector<bool> given(params.size(), false);
  Json varargs = Json::array();
  for (size_t i = 0; i < args.pos.size(); ++i) {
    if (i < params.size()) {
      f->set(params[i], args.pos[i]);
      given[i] = true;
    } else {
      varargs.push_back(to_data(args.pos[i]));
    }
  }
  Json kwargs = Json::object();
  for (auto& [k, v] : args.kw) {
    if (k == "caller") {
      f->set("caller", v);
      continue;
    }
    size_t i = 0;
    while (i < params.size() && params[i] != k) ++i;
    if (i == params.size()) {
      kwargs[k] = to_data(v);
      continue;
    }
    if (given[i]) fail("macro '" + m.name + "' got multiple values for argument '" + k + "'");
    f->set(params[i], v);
    given[i] = true;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (given[i]) continue;
    const auto& d = (*m.defaults)[i];
    f->set(params[i], d ? eval(*d, f) : Value::undefined("parameter '" + params[i] + "' was not provided"));
  }
  f->set("varargs", Value::of(std::move(varargs)));
  f->set("kwargs", Value::of(std::move(kwargs)));
  std::string buf;
  exec(*m.body, f, buf);
  return Value::str(std::move(buf));
}

Value Interp::apply_filter(const std::string& name, FilterFn fn, const Value& v, Args& args) {
  if (!fn) {
    bool known = false;
    find_filter(name, &known);
    fail(known ? "filter '" + name + "' is not supported" : "no filter named '" + name + "'");
  }
  return fn(*this, v, args);
}

bool Interp::apply_test(const std::string& name, TestFn fn, const Value& v, Args& args) {
  if (!fn) {
    bool known = false;
    find_test(name, &known);
    fail(known ? "test '" + name + "' is not supported" : "no test named '" + name + "'");
  }
  return fn(*this, v, args);
}

}  // namespace vlm::text::jinja
