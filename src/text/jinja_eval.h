// Internal to the chat-template interpreter: the tree-walking evaluator.
#pragma once
#include "text/chat_template.h"
#include "text/jinja_ast.h"
#include "text/jinja_value.h"

#include <memory>
#include <string>
#include <vector>

namespace vlm::text::jinja {

struct Frame {
  std::shared_ptr<Frame> parent;
  std::vector<std::pair<std::string, Value>> vars;
  void set(const std::string& name, Value v);
};
using FramePtr = std::shared_ptr<Frame>;

struct Macro : Object {
  std::string name;
  const std::vector<std::string>* params = nullptr;
  const std::vector<ExprPtr>* defaults = nullptr;
  const Body* body = nullptr;
  FramePtr closure;  // definitions see the variables of the scope they were made in
};

enum class Flow : uint8_t { kNormal, kBreak, kContinue };

class Interp {
 public:
  // `globals` are the render context; `fallbacks` apply where it lacks a name.
  Interp(const Template& t, std::shared_ptr<const Json> globals, const Json& fallbacks,
         const ChatTemplateLimits& limits);
  ~Interp();
  std::string render();
  // Namespaces can end up holding themselves; tracked so ~Interp can break it.
  void track(const std::shared_ptr<Namespace>& ns) { namespaces_.push_back(ns); }

  // Python/jinja2 operations, shared with the builtins.
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value call(const Value& callee, Args& args);
  Value apply_filter(const std::string& name, FilterFn fn, const Value& v, Args& args);
  bool apply_test(const std::string& name, TestFn fn, const Value& v, Args& args);
  std::vector<Value> iterate(const Value& v);
  bool contains(const Value& container, const Value& item);

  // Budget checks: each fails with a clear message instead of letting a
  // template allocate or loop without bound.
  void charge(uint64_t bytes);
  void check_string(size_t bytes);
  // A deep copy of `v`'s data, sized and charged; non-data values are errors.
  Json to_data(const Value& v);
  Value make_list(std::vector<Value> items);
  Value make_string(std::string s) {
    check_string(s.size());
    charge(s.size());
    return Value::str(std::move(s));
  }

  const ChatTemplateLimits& limits() const { return limits_; }

 private:
  Value eval(const Expr& e, const FramePtr& f);
  Value eval_inner(const Expr& e, const FramePtr& f);
  Flow exec(const Body& body, const FramePtr& f, std::string& out);
  Flow exec_stmt(const Stmt& s, const FramePtr& f, std::string& out);
  void exec_for(const Stmt& s, const FramePtr& f, std::string& out);
  Value lookup(const FramePtr& f, const std::string& name);
  void bind(const Target& t, const Value& v, const FramePtr& f);
  void eval_args(const Expr& e, size_t first, const FramePtr& f, Args& args);
  Value eval_filter_chain(const Expr& e, const FramePtr& f, const Value* hole);
  Value call_macro(const Macro& m, Args& args);
  Value binary(BinOp op, const Value& a, const Value& b);
  bool compare(CmpOp op, const Value& a, const Value& b);
  Value slice(const Value& obj, const Expr& s, const FramePtr& f);
  void emit(std::string& out, const std::string& s);
  void step();

  struct DepthGuard {
    Interp& in;
    explicit DepthGuard(Interp& i);
    ~DepthGuard() { --in.depth_; }
  };

  const Template& tmpl_;
  std::shared_ptr<const Json> globals_;
  const Json& fallbacks_;
  const ChatTemplateLimits& limits_;
  uint64_t steps_ = 0;
  uint64_t iterations_ = 0;
  uint64_t work_ = 0;
  int depth_ = 0;
  int call_depth_ = 0;
  // A macro lives in a frame and keeps that frame as its closure: a cycle of
  // shared_ptrs that ~Interp cuts so nothing outlives the render.
  std::vector<FramePtr> closures_;
  std::vector<std::weak_ptr<Namespace>> namespaces_;
};

// Builtins (jinja_builtins.cpp).
Value call_global(Interp& in, const std::string& name, Args& args);
bool is_global_function(const std::string& name);
// Bound-method support: whether `name` is an attribute of the receiver's
// Python type; *unsafe marks the mutating ones the sandbox refuses.
bool has_method(const Value& self, const std::string& name, bool* unsafe);
Value call_method(Interp& in, const Value& self, const std::string& name, Args& args);
Value loop_attr(const LoopObj& loop, const std::string& name, const Value& self);
// printf-style formatting: "fmt" % args.
std::string percent_format(Interp& in, const std::string& fmt, const Value& args);

// Limits on the C++ recursion of evaluation; kept well inside a 1 MiB stack.
constexpr int kMaxEvalDepth = 500;

}  // namespace vlm::text::jinja
