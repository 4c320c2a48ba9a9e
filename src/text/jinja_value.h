// Internal to the chat-template interpreter: runtime values and the Python
// semantics (str(), repr(), json.dumps, ==, <, truthiness) templates rely on.
#pragma once
#include "text/jinja_ast.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlm::text::jinja {

struct Object {
  virtual ~Object() = default;
};

// Data is immutable nlohmann JSON shared by pointer: element access aliases
// the parent's storage instead of copying it, which keeps `messages[i]`,
// `message['content']` and loops over large contexts cheap. Anything that
// is not data (undefined, namespace, macro, loop, function) has its own kind.
struct Value {
  enum class Kind : uint8_t { kUndefined, kJson, kNamespace, kMacro, kLoop, kCallable };
  Kind kind = Kind::kUndefined;
  std::shared_ptr<const Json> j;            // kJson, never null there
  std::shared_ptr<Object> obj;              // the object kinds
  std::shared_ptr<const std::string> hint;  // kUndefined: error if it is misused

  static Value undefined(std::string why);
  static Value of(Json v) { return ref(std::make_shared<const Json>(std::move(v))); }
  static Value ref(std::shared_ptr<const Json> p) {
    Value v;
    v.kind = Kind::kJson;
    v.j = std::move(p);
    return v;
  }
  // A value living inside `owner`'s JSON; shares its lifetime, copies nothing.
  static Value child(const std::shared_ptr<const Json>& owner, const Json& c) {
    return ref(std::shared_ptr<const Json>(owner, &c));
  }
  static Value str(std::string s) { return of(Json(std::move(s))); }
  static Value integer(int64_t i) { return of(Json(i)); }
  static Value boolean(bool b);
  static Value none();

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_json() const { return kind == Kind::kJson; }
  bool is_string() const { return is_json() && j->is_string(); }
  bool is_none() const { return is_json() && j->is_null(); }
  bool is_bool() const { return is_json() && j->is_boolean(); }
  bool is_int() const { return is_json() && (j->is_number_integer()); }
  bool is_float() const { return is_json() && j->is_number_float(); }
  bool is_number() const { return is_json() && (j->is_number() || j->is_boolean()); }
  bool is_list() const { return is_json() && j->is_array(); }
  bool is_dict() const { return is_json() && j->is_object(); }
  const Json& json() const { return *j; }
  const std::string& s() const { return j->get_ref<const std::string&>(); }
};

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

// Binds call arguments to a Python-style signature; too many or unknown
// arguments are errors naming `fn`.
class ArgBind {
 public:
  ArgBind(const char* fn, Args& args, std::initializer_list<const char*> params);
  const Value* operator[](size_t i) const { return slots_[i]; }
  bool has(size_t i) const { return slots_[i] != nullptr; }
  const Value& get(size_t i, const Value& fallback) const {
    return slots_[i] ? *slots_[i] : fallback;
  }

 private:
  std::vector<const Value*> slots_;
};

struct Namespace : Object {
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value v);
};

struct LoopObj : Object {
  std::shared_ptr<const std::vector<Value>> items;
  size_t index0 = 0;
  int depth0 = 0;
};

// Builtin functions and bound methods (`'a b'.split`, `d.items`, loop.cycle).
struct Callable : Object {
  std::string name;
  Value self;  // receiver of a bound method; undefined for globals
};

// -------------------------------------------------------------- UTF-8 -------
// Python strings are sequences of code points. Bytes that are not valid UTF-8
// decode to U+DC80..U+DCFF (like surrogateescape) and encode back to the same
// byte, so slicing or reversing never corrupts the text further.

uint32_t utf8_next(std::string_view s, size_t& i);
void utf8_append(std::string& out, uint32_t cp);
std::vector<uint32_t> utf8_decode(std::string_view s);
std::string utf8_encode(const std::vector<uint32_t>& cps);
size_t utf8_length(std::string_view s);
bool py_isspace(uint32_t cp);
// Byte length of the whitespace character at s[i], 0 if there is none.
size_t py_space_len(std::string_view s, size_t i);

// ------------------------------------------------------ Python semantics ----

const char* type_name(const Value& v);  // Python's type(v).__name__
const char* json_type_name(const Json& j);
bool truthy(const Value& v);
std::string to_str(const Value& v);     // str(v)
std::string repr(const Value& v);       // repr(v)
void repr_json(std::string& out, const Json& j);
std::string float_repr(double d);       // repr(float)

struct JsonDumpOptions {
  bool ensure_ascii = false;
  bool pretty = false;
  std::string indent;
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};
// json.dumps; undefined or non-data values inside are errors.
void json_dumps(std::string& out, const Value& v, const JsonDumpOptions& opt);

bool py_equal(const Value& a, const Value& b);
bool json_equal(const Json& a, const Json& b);
// <0, 0, >0; errors like Python for unorderable types.
int py_compare(const Value& a, const Value& b);
int json_compare(const Json& a, const Json& b);

double as_double(const Json& j);  // number or bool
int64_t as_int(const Value& v, const char* what);  // int or bool, else error

// Fails unless `j` nests at most `limit` containers deep; the nlohmann copy,
// compare and print routines recurse, so deep values must never be built.
void check_json_depth(const Json& j, int limit);
constexpr int kMaxValueDepth = 128;

}  // namespace vlm::text::jinja
