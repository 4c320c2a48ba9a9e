// Internal to the chat-template interpreter: helpers shared by filters
// (jinja_builtins.cpp), tests and globals (jinja_globals.cpp) and str methods
// (jinja_strings.cpp).
#pragma once
#include "text/jinja_eval.h"

#include <string>
#include <string_view>
#include <vector>

namespace vlm::text::jinja {

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title()
std::string py_capitalize(std::string_view s);  // str.capitalize()
// str.strip/lstrip/rstrip; `chars` null strips whitespace.
std::string py_strip(std::string_view s, const std::string* chars, bool left, bool right);
// str.replace(old, new, count); count < 0 replaces all.
std::string py_replace(Interp& in, const std::string& s, const std::string& old,
                       const std::string& repl, int64_t count);
// str.center/ljust/rjust.
std::string py_pad(Interp& in, const std::string& s, int64_t width, char align, uint32_t fill);

// String argument or a TypeError naming `fn`.
const std::string& str_arg(const Value& v, const char* fn);

// str(v) without copying when v already is a string's text.
inline std::string text_of(const Value& v) { return v.is_string() ? v.s() : to_str(v); }

// Name lookup in a builtin table; *known reports whether the name is there.
template <class Entry, size_t N>
auto find_in(const Entry (&table)[N], const std::string& name, bool* known) -> decltype(table[0].fn) {
  for (const auto& e : table)
    if (name == e.name) {
      if (known) *known = true;
      return e.fn;
    }
  if (known) *known = false;
  return nullptr;
}

}  // namespace vlm::text::jinja
