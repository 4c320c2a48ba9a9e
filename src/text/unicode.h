// UTF-8 and Unicode helpers shared by the tokenizer stages. Everything here
// follows what Rust's `str`/`char` do, because that is what HF tokenizers (the
// reference we must match byte for byte) is written against.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace vlm::text::unicode {

// Decodes the code point at s[i] and advances i. The input must be valid
// UTF-8 (see to_valid_utf8); on a malformed byte it yields U+FFFD and skips
// one byte so callers can never loop forever.
char32_t next_cp(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);
size_t utf8_len(char32_t cp);

bool is_valid_utf8(std::string_view s);
// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one
// U+FFFD. Returns the input unchanged (no copy cost beyond the return) when valid.
std::string to_valid_utf8(std::string_view s);

// Length of the incomplete character at the end of `s`: a lead byte and the
// continuation bytes it allows, cut short by the end of the data. 0 if none.
size_t truncated_utf8_tail(std::string_view s);

// Unicode White_Space, which is what Rust's char::is_whitespace, the regex
// crate's \s and Oniguruma's \s all use (PCRE2's UCP \s misses U+0085).
bool is_white_space(char32_t c);
// Python's str.isspace (used by str.strip in transformers' post-decode hooks).
bool is_python_space(char32_t c);
// Rust's regex \w under Unicode: Alphabetic, marks, decimal digits,
// connector punctuation and Join_Control, approximated with general categories.
bool is_word_char(char32_t c);

enum class NormForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormForm form);
// Per-character full lowercase mapping, as HF's Lowercase normalizer does it
// (char::to_lowercase, so no final-sigma context rule).
std::string to_lower(std::string_view s);

// GPT-2 byte <-> printable-unicode table used by the ByteLevel stages.
// byte_to_unicode()[b] is the UTF-8 encoding of the char standing for byte b.
const std::array<std::string, 256>& byte_to_unicode();
// Appends the byte-level form of `bytes` (each byte as its char) to `out`.
void append_byte_level(std::string& out, std::string_view bytes);
// -1 when c is not one of the 256 byte chars.
int unicode_to_byte(char32_t c);

}  // namespace vlm::text::unicode
