// Internal to the chat-template interpreter: Python string operations shared
// by filters (jinja_builtins.cpp) and str methods (jinja_strings.cpp).
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

}  // namespace vlm::text::jinja
