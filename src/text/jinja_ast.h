// Internal to the chat-template interpreter: tokens, syntax tree, errors.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vlm::text::jinja {

// Python dicts keep insertion order and tojson/items() show it.
using Json = nlohmann::ordered_json;

constexpr uint32_t kNoPos = UINT32_MAX;

// Internal failure signal. It never leaves the interpreter: ChatTemplate turns
// it into a vlm::Error with the line and column of `pos`.
struct JinjaError {
  std::string message;
  uint32_t pos = kNoPos;  // byte offset in the normalized source
  bool raised = false;    // from raise_exception()
};

[[noreturn]] void fail(std::string message, uint32_t pos = kNoPos);

// Parser nesting caps. Every recursive routine over the tree (evaluation,
// destruction) is bounded by these, so no input can overflow the stack.
constexpr int kMaxParseNesting = 96;   // parentheses, brackets, blocks
constexpr int kMaxExprDepth = 192;     // depth of one expression tree
constexpr size_t kMaxNodes = 400'000;  // nodes in one template
constexpr size_t kMaxSourceBytes = 16u << 20;

// ---------------------------------------------------------------- tokens ----

enum class Tok : uint8_t {
  kData,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof,
};

struct Token {
  Tok type = Tok::kEof;
  uint32_t pos = 0;
  std::string text;  // data, name, string value, operator spelling
  int64_t ival = 0;
  double fval = 0;
  bool is(Tok t, const char* s) const { return type == t && text == s; }
  bool op(const char* s) const { return is(Tok::kOp, s); }
  bool name(const char* s) const { return is(Tok::kName, s); }
};

// Pull lexer reproducing jinja2's Lexer with trim_blocks=True,
// lstrip_blocks=True and keep_trailing_newline=False.
class Lexer {
 public:
  explicit Lexer(const std::string& normalized_source);
  Token next();

 private:
  enum class State : uint8_t { kRoot, kBlock, kVar, kEnd };
  void lex_root();
  bool lex_raw(size_t content_begin);
  void lex_expr_token(Token& t);
  void skip_py_space();

  const std::string& src_;
  size_t pos_ = 0;
  State state_ = State::kRoot;
  bool line_starting_ = true;
  uint32_t tag_pos_ = 0;  // where the open tag began, for "unclosed" errors
  std::vector<char> balance_;
  std::vector<Token> pending_;  // tokens decided together (data + tag begin)
};

// Newlines normalized to \n and one trailing newline dropped, as jinja2 does.
std::string normalize_source(const std::string& source);

// ------------------------------------------------------------- syntax tree ---

enum class ExprKind : uint8_t {
  kConst,
  kName,
  kList,
  kTuple,
  kDict,     // kids: k0, v0, k1, v1, ...
  kGetAttr,  // kids[0].name
  kGetItem,  // kids[0][kids[1]]
  kSlice,    // kids[0..2]: start, stop, step (each may be null)
  kCall,     // kids[0](kids[1..]); the last kwnames.size() args are keywords
  kFilter,   // kids[0]|name(kids[1..]); kids[0] null in filter/set blocks
  kTest,     // kids[0] is name(kids[1..])
  kNot,
  kNeg,
  kPos,
  kBinary,
  kCompare,  // kids[0] ops[0] kids[1] ops[1] kids[2] ...
  kAnd,
  kOr,
  kConcat,
  kCond,     // kids[0] if kids[1] else kids[2] (kids[2] may be null)
};

enum class BinOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

class Interp;
struct Value;
struct Args;
using FilterFn = Value (*)(Interp&, const Value&, Args&);
using TestFn = bool (*)(Interp&, const Value&, Args&);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  uint32_t pos = 0;
  int depth = 1;
  BinOp bin = BinOp::kAdd;
  bool nsref = false;                 // kGetAttr written as `set ns.attr`
  std::shared_ptr<const Json> value;  // kConst
  std::string name;                   // variable, attribute, filter or test
  std::vector<ExprPtr> kids;
  std::vector<std::string> kwnames;   // call/filter/test keyword names
  std::vector<CmpOp> ops;             // kCompare
  FilterFn filter = nullptr;          // resolved at parse time; null: unsupported
  TestFn test = nullptr;

  size_t num_positional() const { return kids.size() - 1 - kwnames.size(); }
};

// Assignment target: a name, a (nested) tuple of targets, or `ns.attr`.
struct Target {
  enum class Kind : uint8_t { kName, kTuple, kNsAttr };
  Kind kind = Kind::kName;
  uint32_t pos = 0;
  std::string name;
  std::string attr;
  std::vector<Target> items;
};

enum class StmtKind : uint8_t {
  kText,
  kPrint,        // exprs
  kIf,           // exprs[i] guards bodies[i]; a trailing extra body is `else`
  kFor,          // exprs: iter, filter (may be null); bodies: body, else
  kSet,          // target = exprs[0]
  kSetBlock,     // target = filter(bodies[0])
  kMacro,        // name(params = defaults) bodies[0]
  kCallBlock,    // exprs[0] is the call; caller(params) renders bodies[0]
  kFilterBlock,  // filter applied to bodies[0]
  kWith,         // targets = exprs; bodies[0]
  kBreak,
  kContinue,
  kBody,         // bodies[0] as-is ({% generation %})
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind;
  uint32_t pos = 0;
  std::string text;
  std::vector<ExprPtr> exprs;
  std::vector<Body> bodies;
  Target target;
  std::vector<Target> targets;       // kWith
  std::string name;                  // kMacro
  std::vector<std::string> params;   // kMacro, kCallBlock (caller's params)
  std::vector<ExprPtr> defaults;     // aligned with params; null: none
  ExprPtr filter;                    // kSetBlock (may be null), kFilterBlock
};

struct Template {
  std::string source;      // as given
  std::string normalized;  // what positions refer to
  Body body;
};

// Builtin lookup; *known says whether jinja2 has the name at all (a known but
// unimplemented one fails only when it runs, as jinja2 itself is lenient
// inside conditionals).
FilterFn find_filter(const std::string& name, bool* known);
TestFn find_test(const std::string& name, bool* known);

// Parses normalized source into `out.body`; throws JinjaError.
void parse_template(Template& out);

// "line L, column C" of a byte offset in the normalized source.
std::string describe_pos(const std::string& normalized, uint32_t pos);

}  // namespace vlm::text::jinja
