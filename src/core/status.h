// Error handling at I/O and API boundaries: Expected<T> carries a value or an
// Error with a human-readable message. No exceptions cross the public API.
#pragma once
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace vlm {

// Concatenate any streamable values into one string (GCC 12 has no <format>).
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

struct Error {
  std::string message;
};

template <class... Args>
Error make_error(const Args&... args) {
  return Error{cat(args...)};
}

template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Expected(Error error) : v_(std::move(error)) {}      // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Expected<void>.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : err_(std::move(e)), failed_(true) {}  // NOLINT
  static Status Ok() { return Status(); }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool failed_ = false;
};

}  // namespace vlm

// Propagate an error from an Expected/Status expression.
#define VLM_TRY_STATUS(expr)                          \
  do {                                                \
    auto vlm_try_s_ = (expr);                         \
    if (!vlm_try_s_.ok()) return vlm_try_s_.error();  \
  } while (0)

#define VLM_CONCAT_INNER_(a, b) a##b
#define VLM_CONCAT_(a, b) VLM_CONCAT_INNER_(a, b)
// VLM_ASSIGN_OR_RETURN(auto x, f()) binds x to f()'s value or returns its error.
#define VLM_ASSIGN_OR_RETURN(decl, expr) \
  VLM_ASSIGN_OR_RETURN_IMPL_(VLM_CONCAT_(vlm_tmp_, __LINE__), decl, expr)
#define VLM_ASSIGN_OR_RETURN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.error();                \
  decl = std::move(tmp).value()
