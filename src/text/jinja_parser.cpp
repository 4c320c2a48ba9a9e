// Recursive-descent parser for chat templates. The grammar and operator
// precedence mirror jinja2's parser.py so expressions group the same way.
#include <deque>
#include <initializer_list>

#include "text/jinja_ast.h"

namespace vlm::text::jinja {
namespace {

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::kData: return "template data";
    case Tok::kVarBegin: return "begin of print statement";
    case Tok::kVarEnd: return "end of print statement";
    case Tok::kBlockBegin: return "begin of statement block";
    case Tok::kBlockEnd: return "end of statement block";
    case Tok::kString: return "string";
    case Tok::kEof: return "end of template";
    default: return t.text;
  }
}

std::string join_quoted(std::initializer_list<const char*> names) {
  std::string out;
  size_t i = 0;
  for (const char* n : names) {
    if (i++) out += " or ";
    out += "'" + std::string(n) + "'";
  }
  return out;
}

class Parser {
 public:
  explicit Parser(Template& t) : tmpl_(t), lex_(t.normalized) { cur_ = lex_.next(); }

  void run() {
    tmpl_.body = subparse({});
    if (cur_.type != Tok::kEof) fail("unexpected " + describe(cur_), cur_.pos);
  }

 private:
  using Names = std::initializer_list<const char*>;

  struct OpenTag {
    std::string name;
    uint32_t pos;
    Names ends;
  };

  // Bounds recursion, so deeply nested input is an error, not a crash.
  struct Nest {
    Parser& p;
    Nest(Parser& parser, uint32_t pos) : p(parser) {
      if (++p.nesting_ > kMaxParseNesting) fail("template nested too deeply", pos);
    }
    ~Nest() { --p.nesting_; }
  };

  // ------------------------------------------------------------ tokens ----
  void advance() {
    if (!ahead_.empty()) {
      cur_ = std::move(ahead_.front());
      ahead_.pop_front();
    } else {
      cur_ = lex_.next();
    }
  }
  const Token& peek() {
    if (ahead_.empty()) ahead_.push_back(lex_.next());
    return ahead_.front();
  }
  bool is_op(const char* s) const { return cur_.op(s); }
  bool is_name(const char* s) const { return cur_.name(s); }
  bool skip_op(const char* s) {
    if (!is_op(s)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* s) {
    if (!is_name(s)) return false;
    advance();
    return true;
  }
  void expect_op(const char* s) {
    if (!skip_op(s)) fail("expected '" + std::string(s) + "', got '" + describe(cur_) + "'", cur_.pos);
  }
  std::string expect_name() {
    if (cur_.type != Tok::kName) fail("expected a name, got '" + describe(cur_) + "'", cur_.pos);
    std::string n = std::move(cur_.text);
    advance();
    return n;
  }
  void expect_name(const char* s) {
    if (!skip_name(s)) fail("expected '" + std::string(s) + "', got '" + describe(cur_) + "'", cur_.pos);
  }
  void expect_block_end() {
    if (cur_.type != Tok::kBlockEnd)
      fail("expected end of statement block, got '" + describe(cur_) + "'", cur_.pos);
    advance();
  }

  // ------------------------------------------------------------- nodes ----
  ExprPtr mk(ExprKind k, uint32_t pos) {
    if (++nodes_ > kMaxNodes) fail("template too large (too many nodes)", pos);
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }
  ExprPtr done(ExprPtr e) {
    int d = 1;
    for (auto& k : e->kids)
      if (k && k->depth + 1 > d) d = k->depth + 1;
    e->depth = d;
    if (d > kMaxExprDepth) fail("expression nested too deeply", e->pos);
    return e;
  }
  ExprPtr unary(ExprKind k, uint32_t pos, ExprPtr a) {
    auto e = mk(k, pos);
    e->kids.push_back(std::move(a));
    return done(std::move(e));
  }
  ExprPtr binary(ExprKind k, uint32_t pos, ExprPtr a, ExprPtr b) {
    auto e = mk(k, pos);
    e->kids.push_back(std::move(a));
    e->kids.push_back(std::move(b));
    return done(std::move(e));
  }
  ExprPtr constant(uint32_t pos, Json v) {
    auto e = mk(ExprKind::kConst, pos);
    e->value = std::make_shared<const Json>(std::move(v));
    return done(std::move(e));
  }
  StmtPtr stmt(StmtKind k, uint32_t pos) {
    if (++nodes_ > kMaxNodes) fail("template too large (too many nodes)", pos);
    auto s = std::make_unique<Stmt>();
    s->kind = k;
    s->pos = pos;
    return s;
  }

  // -------------------------------------------------------- statements ----
  Body subparse(Names ends) {
    Nest nest(*this, cur_.pos);
    Body body;
    while (true) {
      switch (cur_.type) {
        case Tok::kData: {
          auto s = stmt(StmtKind::kText, cur_.pos);
          s->text = std::move(cur_.text);
          body.push_back(std::move(s));
          advance();
          break;
        }
        case Tok::kVarBegin: {
          uint32_t pos = cur_.pos;
          advance();
          auto s = stmt(StmtKind::kPrint, pos);
          s->exprs.push_back(parse_tuple());
          if (cur_.type != Tok::kVarEnd)
            fail("expected end of print statement, got '" + describe(cur_) + "'", cur_.pos);
          advance();
          body.push_back(std::move(s));
          break;
        }
        case Tok::kBlockBegin: {
          stmt_pos_ = cur_.pos;
          advance();
          if (cur_.type == Tok::kName)
            for (const char* e : ends)
              if (cur_.text == e) return body;
          body.push_back(parse_statement());
          expect_block_end();
          break;
        }
        case Tok::kEof:
          if (!open_.empty()) {
            const OpenTag& t = open_.back();
            fail("unexpected end of template: the '" + t.name + "' block is not closed (expected " +
                     join_quoted(t.ends) + ")",
                 t.pos);
          }
          return body;
        default: fail("unexpected " + describe(cur_), cur_.pos);
      }
    }
  }

  // Parses a block body up to one of `ends`; cur_ is left on the end tag's
  // name unless `drop` consumes it.
  Body statements(const std::string& tag, uint32_t pos, Names ends, bool drop) {
    skip_op(":");
    expect_block_end();
    open_.push_back(OpenTag{tag, pos, ends});
    Body b = subparse(ends);
    open_.pop_back();
    if (drop) advance();
    return b;
  }

  [[noreturn]] void unknown_tag(const std::string& name, uint32_t pos) {
    std::string msg = "unknown tag '" + name + "'";
    if (!open_.empty()) {
      const OpenTag& t = open_.back();
      msg += "; expected " + join_quoted(t.ends) + " to close the '" + t.name + "' block at " +
             describe_pos(tmpl_.normalized, t.pos);
    }
    fail(msg, pos);
  }

  StmtPtr parse_statement() {
    if (cur_.type != Tok::kName) fail("tag name expected, got '" + describe(cur_) + "'", cur_.pos);
    const std::string tag = cur_.text;
    uint32_t pos = stmt_pos_;
    if (tag == "for") return parse_for();
    if (tag == "if") return parse_if();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "print") {
      advance();
      auto s = stmt(StmtKind::kPrint, pos);
      while (cur_.type != Tok::kBlockEnd) {
        if (!s->exprs.empty()) expect_op(",");
        s->exprs.push_back(parse_expression());
      }
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop", pos);
      advance();
      return stmt(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, pos);
    }
    if (tag == "generation") {  // transformers' assistant-mask extension
      advance();
      auto s = stmt(StmtKind::kBody, pos);
      s->bodies.push_back(statements(tag, pos, {"endgeneration"}, true));
      return s;
    }
    if (tag == "block" || tag == "extends" || tag == "include" || tag == "import" ||
        tag == "from" || tag == "autoescape")
      fail("the '" + tag + "' tag is not supported in chat templates", pos);
    unknown_tag(tag, pos);
  }

  StmtPtr parse_for() {
    uint32_t pos = stmt_pos_;
    advance();
    auto s = stmt(StmtKind::kFor, pos);
    s->target = parse_assign_target(true, false, {"in"});
    reject_loop_target(s->target);
    expect_name("in");
    s->exprs.push_back(parse_tuple(false, false, {"recursive"}));
    if (skip_name("if")) {
      s->exprs.push_back(parse_expression());
    } else {
      s->exprs.push_back(nullptr);
    }
    if (is_name("recursive")) fail("recursive for loops are not supported", cur_.pos);
    int saved_soft = soft_;
    soft_ = 0;
    ++loop_depth_;
    s->bodies.push_back(statements("for", pos, {"endfor", "else"}, false));
    --loop_depth_;
    bool has_else = is_name("else");
    advance();
    if (has_else) {
      s->bodies.push_back(statements("for", pos, {"endfor"}, true));
    } else {
      s->bodies.emplace_back();
    }
    soft_ = saved_soft;
    return s;
  }

  StmtPtr parse_if() {
    uint32_t pos = stmt_pos_;
    advance();
    auto s = stmt(StmtKind::kIf, pos);
    ++soft_;
    while (true) {
      s->exprs.push_back(parse_tuple(false, false));
      s->bodies.push_back(statements("if", pos, {"elif", "else", "endif"}, false));
      std::string t = cur_.text;
      advance();
      if (t == "elif") continue;
      if (t == "else") s->bodies.push_back(statements("if", pos, {"endif"}, true));
      break;
    }
    --soft_;
    return s;
  }

  StmtPtr parse_set() {
    uint32_t pos = stmt_pos_;
    advance();
    Target target = parse_assign_target(true, true, {});
    if (skip_op("=")) {
      auto s = stmt(StmtKind::kSet, pos);
      s->target = std::move(target);
      s->exprs.push_back(parse_tuple());
      return s;
    }
    auto s = stmt(StmtKind::kSetBlock, pos);
    s->target = std::move(target);
    if (is_op("|")) s->filter = parse_filter(nullptr, false);
    s->bodies.push_back(statements("set", pos, {"endset"}, true));
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      s.params.push_back(expect_name());
      if (skip_op("=")) {
        s.defaults.push_back(parse_expression());
      } else {
        for (auto& d : s.defaults)
          if (d) fail("non-default argument follows default argument", cur_.pos);
        s.defaults.push_back(nullptr);
      }
    }
    expect_op(")");
  }

  StmtPtr parse_macro() {
    uint32_t pos = stmt_pos_;
    advance();
    auto s = stmt(StmtKind::kMacro, pos);
    s->name = expect_name();
    parse_signature(*s);
    int saved_loop = loop_depth_, saved_soft = soft_;
    loop_depth_ = soft_ = 0;
    s->bodies.push_back(statements("macro", pos, {"endmacro"}, true));
    loop_depth_ = saved_loop;
    soft_ = saved_soft;
    return s;
  }

  StmtPtr parse_call_block() {
    uint32_t pos = stmt_pos_;
    advance();
    auto s = stmt(StmtKind::kCallBlock, pos);
    if (is_op("(")) parse_signature(*s);
    auto call = parse_expression();
    if (call->kind != ExprKind::kCall) fail("expected a call after 'call'", call->pos);
    s->exprs.push_back(std::move(call));
    int saved_loop = loop_depth_;
    loop_depth_ = 0;
    s->bodies.push_back(statements("call", pos, {"endcall"}, true));
    loop_depth_ = saved_loop;
    return s;
  }

  StmtPtr parse_filter_block() {
    uint32_t pos = stmt_pos_;
    advance();
    auto s = stmt(StmtKind::kFilterBlock, pos);
    s->filter = parse_filter(nullptr, true);
    s->bodies.push_back(statements("filter", pos, {"endfilter"}, true));
    return s;
  }

  StmtPtr parse_with() {
    uint32_t pos = stmt_pos_;
    advance();
    auto s = stmt(StmtKind::kWith, pos);
    while (cur_.type != Tok::kBlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(true, false, {}));
      expect_op("=");
      s->exprs.push_back(parse_expression());
    }
    s->bodies.push_back(statements("with", pos, {"endwith"}, true));
    return s;
  }

  Target to_target(const Expr& e, bool with_namespace) {
    Target t;
    t.pos = e.pos;
    switch (e.kind) {
      case ExprKind::kName:
        t.kind = Target::Kind::kName;
        t.name = e.name;
        return t;
      case ExprKind::kTuple:
        t.kind = Target::Kind::kTuple;
        for (auto& k : e.kids) t.items.push_back(to_target(*k, false));
        return t;
      case ExprKind::kGetAttr:
        if (with_namespace && e.nsref) {
          t.kind = Target::Kind::kNsAttr;
          t.name = e.kids[0]->name;
          t.attr = e.name;
          return t;
        }
        break;
      default: break;
    }
    fail("can't assign to this expression", e.pos);
  }

  static void reject_loop_target(const Target& t) {
    if (t.kind == Target::Kind::kName && t.name == "loop")
      fail("can't assign to special loop variable in for-loop target", t.pos);
    for (const auto& i : t.items) reject_loop_target(i);
  }

  Target parse_assign_target(bool with_tuple, bool with_namespace, Names extra_end) {
    ExprPtr e = with_tuple ? parse_tuple(true, true, extra_end, false, with_namespace)
                           : parse_primary(with_namespace);
    return to_target(*e, with_namespace);
  }

  // -------------------------------------------------------- expressions ----
  bool is_tuple_end(Names extra_end) const {
    if (cur_.type == Tok::kVarEnd || cur_.type == Tok::kBlockEnd || cur_.op(")")) return true;
    for (const char* n : extra_end)
      if (cur_.name(n)) return true;
    return false;
  }

  ExprPtr parse_tuple(bool simplified = false, bool with_condexpr = true, Names extra_end = {},
                      bool explicit_parens = false, bool with_namespace = false) {
    uint32_t pos = cur_.pos;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail("expected an expression, got '" + describe(cur_) + "'", cur_.pos);
    }
    auto e = mk(ExprKind::kTuple, pos);
    e->kids = std::move(items);
    return done(std::move(e));
  }

  ExprPtr parse_expression(bool with_condexpr = true) {
    Nest nest(*this, cur_.pos);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    uint32_t pos = cur_.pos;
    ExprPtr e = parse_or();
    while (skip_name("if")) {
      ++soft_;
      ExprPtr cond = parse_or();
      ExprPtr other;
      if (skip_name("else")) {
        Nest nest(*this, cur_.pos);
        other = parse_condexpr();
      }
      --soft_;
      auto c = mk(ExprKind::kCond, pos);
      c->kids.push_back(std::move(e));
      c->kids.push_back(std::move(cond));
      c->kids.push_back(std::move(other));
      e = done(std::move(c));
      pos = cur_.pos;
    }
    return e;
  }

  ExprPtr parse_or() {
    uint32_t pos = cur_.pos;
    ExprPtr e = parse_and();
    while (skip_name("or")) {
      e = binary(ExprKind::kOr, pos, std::move(e), parse_and());
      pos = cur_.pos;
    }
    return e;
  }

  ExprPtr parse_and() {
    uint32_t pos = cur_.pos;
    ExprPtr e = parse_not();
    while (skip_name("and")) {
      e = binary(ExprKind::kAnd, pos, std::move(e), parse_not());
      pos = cur_.pos;
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      uint32_t pos = cur_.pos;
      advance();
      Nest nest(*this, pos);
      return unary(ExprKind::kNot, pos, parse_not());
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    uint32_t pos = cur_.pos;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      CmpOp op;
      if (is_op("==")) {
        op = CmpOp::kEq;
      } else if (is_op("!=")) {
        op = CmpOp::kNe;
      } else if (is_op("<")) {
        op = CmpOp::kLt;
      } else if (is_op("<=")) {
        op = CmpOp::kLe;
      } else if (is_op(">")) {
        op = CmpOp::kGt;
      } else if (is_op(">=")) {
        op = CmpOp::kGe;
      } else if (is_name("in")) {
        op = CmpOp::kIn;
      } else if (is_name("not") && peek().name("in")) {
        advance();
        op = CmpOp::kNotIn;
      } else {
        break;
      }
      advance();
      if (!cmp) {
        cmp = mk(ExprKind::kCompare, pos);
        cmp->kids.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->kids.push_back(parse_math1());
    }
    return cmp ? done(std::move(cmp)) : std::move(first);
  }

  ExprPtr parse_math1() {
    uint32_t pos = cur_.pos;
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      BinOp op = is_op("+") ? BinOp::kAdd : BinOp::kSub;
      advance();
      auto b = binary(ExprKind::kBinary, pos, std::move(e), parse_concat());
      b->bin = op;
      e = std::move(b);
      pos = cur_.pos;
    }
    return e;
  }

  ExprPtr parse_concat() {
    uint32_t pos = cur_.pos;
    ExprPtr e = parse_math2();
    if (!is_op("~")) return e;
    auto c = mk(ExprKind::kConcat, pos);
    c->kids.push_back(std::move(e));
    while (skip_op("~")) c->kids.push_back(parse_math2());
    return done(std::move(c));
  }

  ExprPtr parse_math2() {
    uint32_t pos = cur_.pos;
    ExprPtr e = parse_pow();
    while (true) {
      BinOp op;
      if (is_op("*")) {
        op = BinOp::kMul;
      } else if (is_op("/")) {
        op = BinOp::kDiv;
      } else if (is_op("//")) {
        op = BinOp::kFloorDiv;
      } else if (is_op("%")) {
        op = BinOp::kMod;
      } else {
        break;
      }
      advance();
      auto b = binary(ExprKind::kBinary, pos, std::move(e), parse_pow());
      b->bin = op;
      e = std::move(b);
      pos = cur_.pos;
    }
    return e;
  }

  ExprPtr parse_pow() {
    uint32_t pos = cur_.pos;
    ExprPtr e = parse_unary(true);
    while (skip_op("**")) {
      auto b = binary(ExprKind::kBinary, pos, std::move(e), parse_unary(true));
      b->bin = BinOp::kPow;
      e = std::move(b);
      pos = cur_.pos;
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    uint32_t pos = cur_.pos;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      ExprKind k = is_op("-") ? ExprKind::kNeg : ExprKind::kPos;
      advance();
      Nest nest(*this, pos);
      e = unary(k, pos, parse_unary(false));
    } else {
      e = parse_primary(false);
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary(bool with_namespace) {
    uint32_t pos = cur_.pos;
    switch (cur_.type) {
      case Tok::kName: {
        std::string n = std::move(cur_.text);
        advance();
        if (n == "true" || n == "True") return constant(pos, true);
        if (n == "false" || n == "False") return constant(pos, false);
        if (n == "none" || n == "None") return constant(pos, nullptr);
        auto e = mk(ExprKind::kName, pos);
        e->name = std::move(n);
        e = done(std::move(e));
        if (with_namespace && is_op(".")) {
          advance();
          auto a = mk(ExprKind::kGetAttr, pos);
          a->name = expect_name();
          a->kids.push_back(std::move(e));
          a->nsref = true;
          return done(std::move(a));
        }
        return e;
      }
      case Tok::kString: {
        std::string s = std::move(cur_.text);
        advance();
        while (cur_.type == Tok::kString) {  // adjacent literals concatenate
          s += cur_.text;
          advance();
        }
        return constant(pos, std::move(s));
      }
      case Tok::kInt: {
        int64_t v = cur_.ival;
        advance();
        return constant(pos, v);
      }
      case Tok::kFloat: {
        double v = cur_.fval;
        advance();
        return constant(pos, v);
      }
      case Tok::kOp:
        if (cur_.text == "(") {
          advance();
          auto e = parse_tuple(false, true, {}, true);
          expect_op(")");
          return e;
        }
        if (cur_.text == "[") return parse_list();
        if (cur_.text == "{") return parse_dict();
        break;
      default: break;
    }
    fail("unexpected '" + describe(cur_) + "'", cur_.pos);
  }

  ExprPtr parse_list() {
    uint32_t pos = cur_.pos;
    expect_op("[");
    auto e = mk(ExprKind::kList, pos);
    while (!is_op("]")) {
      if (!e->kids.empty()) expect_op(",");
      if (is_op("]")) break;
      e->kids.push_back(parse_expression());
    }
    expect_op("]");
    return done(std::move(e));
  }

  ExprPtr parse_dict() {
    uint32_t pos = cur_.pos;
    expect_op("{");
    auto e = mk(ExprKind::kDict, pos);
    while (!is_op("}")) {
      if (!e->kids.empty()) expect_op(",");
      if (is_op("}")) break;
      e->kids.push_back(parse_expression());
      expect_op(":");
      e->kids.push_back(parse_expression());
    }
    expect_op("}");
    return done(std::move(e));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter(std::move(e), false);
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr base) {
    uint32_t pos = cur_.pos;
    if (skip_op(".")) {
      if (cur_.type == Tok::kName) {
        auto a = mk(ExprKind::kGetAttr, pos);
        a->name = std::move(cur_.text);
        advance();
        a->kids.push_back(std::move(base));
        return done(std::move(a));
      }
      if (cur_.type != Tok::kInt) fail("expected name or number after '.'", cur_.pos);
      auto idx = constant(cur_.pos, cur_.ival);
      advance();
      return binary(ExprKind::kGetItem, pos, std::move(base), std::move(idx));
    }
    expect_op("[");
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.empty()) fail("expected subscript expression", pos);
    ExprPtr idx;
    if (args.size() == 1) {
      idx = std::move(args[0]);
    } else {
      idx = mk(ExprKind::kTuple, pos);
      idx->kids = std::move(args);
      idx = done(std::move(idx));
    }
    return binary(ExprKind::kGetItem, pos, std::move(base), std::move(idx));
  }

  ExprPtr parse_subscribed() {
    uint32_t pos = cur_.pos;
    ExprPtr start;
    if (!is_op(":")) {
      start = parse_expression();
      if (!is_op(":")) return start;
    }
    advance();  // ':'
    auto s = mk(ExprKind::kSlice, pos);
    s->kids.push_back(std::move(start));
    if (!is_op(":") && !is_op("]") && !is_op(",")) {
      s->kids.push_back(parse_expression());
    } else {
      s->kids.push_back(nullptr);
    }
    if (skip_op(":") && !is_op("]") && !is_op(",")) {
      s->kids.push_back(parse_expression());
    } else {
      s->kids.push_back(nullptr);
    }
    return done(std::move(s));
  }

  // Appends positional then keyword arguments to e->kids.
  void parse_call_args(Expr& e) {
    expect_op("(");
    std::vector<ExprPtr> kwvalues;
    bool need_comma = false;
    while (!is_op(")")) {
      if (need_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported", cur_.pos);
      if (cur_.type == Tok::kName && peek().op("=")) {
        std::string key = std::move(cur_.text);
        advance();
        advance();
        e.kwnames.push_back(std::move(key));
        kwvalues.push_back(parse_expression());
      } else {
        if (!kwvalues.empty()) fail("positional argument follows keyword argument", cur_.pos);
        e.kids.push_back(parse_expression());
      }
      need_comma = true;
    }
    expect_op(")");
    for (auto& v : kwvalues) e.kids.push_back(std::move(v));
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = mk(ExprKind::kCall, callee->pos);
    c->kids.push_back(std::move(callee));
    parse_call_args(*c);
    return done(std::move(c));
  }

  std::string dotted_name() {
    std::string n = expect_name();
    while (skip_op(".")) n += "." + expect_name();
    return n;
  }

  ExprPtr parse_filter(ExprPtr subject, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) advance();
      start_inline = false;
      uint32_t pos = cur_.pos;
      auto f = mk(ExprKind::kFilter, pos);
      f->name = dotted_name();
      f->kids.push_back(std::move(subject));
      if (is_op("(")) parse_call_args(*f);
      bool known = false;
      f->filter = find_filter(f->name, &known);
      if (!known && soft_ == 0) fail("no filter named '" + f->name + "'", pos);
      subject = done(std::move(f));
    }
    return subject;
  }

  ExprPtr parse_test(ExprPtr subject) {
    uint32_t pos = cur_.pos;
    advance();  // 'is'
    bool negated = skip_name("not");
    auto t = mk(ExprKind::kTest, pos);
    uint32_t name_pos = cur_.pos;
    t->name = dotted_name();
    t->kids.push_back(std::move(subject));
    if (is_op("(")) {
      parse_call_args(*t);
    } else if ((cur_.type == Tok::kName || cur_.type == Tok::kString || cur_.type == Tok::kInt ||
                cur_.type == Tok::kFloat || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("you cannot chain multiple tests with 'is'", cur_.pos);
      t->kids.push_back(parse_postfix(parse_primary(false)));
    }
    bool known = false;
    t->test = find_test(t->name, &known);
    if (!known && soft_ == 0) fail("no test named '" + t->name + "'", name_pos);
    ExprPtr e = done(std::move(t));
    return negated ? unary(ExprKind::kNot, pos, std::move(e)) : std::move(e);
  }

  Template& tmpl_;
  Lexer lex_;
  Token cur_;
  std::deque<Token> ahead_;
  std::vector<OpenTag> open_;
  int nesting_ = 0;
  size_t nodes_ = 0;
  int loop_depth_ = 0;
  int soft_ = 0;  // inside if/conditional: unknown filters fail only if run
  uint32_t stmt_pos_ = 0;  // the "{%" of the statement being parsed
};

}  // namespace

void parse_template(Template& t) {
  if (t.source.size() > kMaxSourceBytes) fail("template too large", 0);
  t.normalized = normalize_source(t.source);
  Parser(t).run();
}

}  // namespace vlm::text::jinja
