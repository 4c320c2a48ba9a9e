#include "text/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

namespace vlm::text::unicode {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there
// do not start one; `bad` then receives the length of the maximal invalid
// subpart (what from_utf8_lossy replaces with a single U+FFFD).
size_t seq_len(std::string_view s, size_t i, size_t& bad) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  bad = 1;
  if (b0 < 0x80) return 1;
  unsigned char lo = 0x80, hi = 0xBF;
  size_t need;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) {
      bad = k;
      return 0;
    }
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) {
      bad = k;
      return 0;
    }
    lo = 0x80;
    hi = 0xBF;
  }
  return need + 1;
}

}  // namespace

char32_t next_cp(std::string_view s, size_t& i) {
  size_t bad;
  const size_t n = seq_len(s, i, bad);
  if (n == 0) {
    i += 1;
    return 0xFFFD;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + i);
  char32_t cp;
  switch (n) {
    case 1: cp = p[0]; break;
    case 2: cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu); break;
    case 3: cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu); break;
    default:
      cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  }
  i += n;
  return cp;
}

size_t utf8_len(char32_t cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0, bad;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = seq_len(s, i, bad);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0, bad;
  while (i < s.size()) {
    const size_t n = seq_len(s, i, bad);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i += bad;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

size_t truncated_utf8_tail(std::string_view s) {
  // A truncated character is at most 3 bytes: find its lead byte.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t p = s.size() - back;
    if ((static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) continue;
    size_t bad;
    // Invalid only because the data ran out: the invalid part reaches the end.
    const auto lead = static_cast<unsigned char>(s[p]);
    if (lead < 0xC2 || lead > 0xF4) return 0;
    return seq_len(s, p, bad) == 0 && p + bad == s.size() ? back : 0;
  }
  return 0;
}

bool is_white_space(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_python_space(char32_t c) {
  return is_white_space(c) || (c >= 0x1C && c <= 0x1F);
}

bool is_word_char(char32_t c) {
  if (c < 0x80) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  if (c == 0x200C || c == 0x200D) return true;  // Join_Control
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

namespace {

std::string utf8proc_normalize(std::string_view s, NormForm form) {
  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormForm::NFC: options |= UTF8PROC_COMPOSE; break;
    case NormForm::NFD: options |= UTF8PROC_DECOMPOSE; break;
    case NormForm::NFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormForm::NFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                   static_cast<utf8proc_ssize_t>(s.size()), &out,
                   static_cast<utf8proc_option_t>(options));
  if (n < 0) return std::string(s);  // only on invalid UTF-8, which callers exclude
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

// Code points that are NFC_Quick_Check=Yes with combining class 0 and never
// combine with what precedes them: NFC leaves them alone and text can be cut
// before them without changing its NFC form. Hand-picked blocks only (the
// scripts that fill prompts); everything else goes through utf8proc.
bool nfc_inert(char32_t c) {
  return c < 0x300 || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0x3000 && c <= 0x3029) || (c >= 0x3041 && c <= 0x3096) ||
         (c >= 0x30A1 && c <= 0x30FA) || (c >= 0xFF01 && c <= 0xFF5E) || (c >= 0x0400 && c <= 0x0482) ||
         (c >= 0x048A && c <= 0x052F) || (c >= 0x2010 && c <= 0x2027) || (c >= 0x2030 && c <= 0x205E);
}

}  // namespace

std::string normalize(std::string_view s, NormForm form) {
  // Under NFKC/NFKD even Latin-1 changes, so only ASCII is left alone there.
  if (form != NormForm::NFC) {
    for (const char ch : s) {
      if (static_cast<unsigned char>(ch) >= 0x80) return utf8proc_normalize(s, form);
    }
    return std::string(s);
  }
  // NFC: run utf8proc only on the stretches that hold non-inert characters,
  // each from the inert character before it (which such a stretch may compose
  // with) to the next inert character.
  std::string out;
  size_t copied = 0;      // s[0, copied) is in `out` already
  size_t last_inert = 0;  // start of the latest inert char
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      last_inert = i++;
      continue;
    }
    const size_t start = i;
    if (nfc_inert(next_cp(s, i))) {
      last_inert = start;
      continue;
    }
    size_t end = i;
    while (end < s.size()) {
      size_t j = end;
      if (static_cast<unsigned char>(s[j]) < 0x80 || nfc_inert(next_cp(s, j))) break;
      end = j;
    }
    const size_t from = std::max(copied, start > 0 && last_inert < start ? last_inert : start);
    out.append(s.data() + copied, from - copied);
    out += utf8proc_normalize(s.substr(from, end - from), form);
    copied = end;
    i = end;
  }
  if (copied == 0) return std::string(s);
  out.append(s.data() + copied, s.size() - copied);
  return out;
}

std::string to_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b));
      ++i;
      continue;
    }
    const char32_t c = next_cp(s, i);
    if (c == 0x130) {
      // The one unconditional multi-char lowercase mapping (SpecialCasing.txt).
      out += "i\xCC\x87";
      continue;
    }
    append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
  }
  return out;
}

namespace {

struct ByteTables {
  std::array<std::string, 256> to_uni;
  std::array<std::array<char, 2>, 256> packed;  // to_uni without std::string, for the hot loop
  std::array<uint8_t, 256> packed_len;          // 1 or 2: all byte chars lie below U+0800
  std::array<int16_t, 512> from_uni;            // byte chars all lie below U+0200
  ByteTables() {
    from_uni.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      append_utf8(to_uni[b], cp);
      packed_len[b] = static_cast<uint8_t>(to_uni[b].size());
      packed[b] = {to_uni[b][0], to_uni[b].size() > 1 ? to_uni[b][1] : '\0'};
      from_uni[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return tables().to_uni; }

void append_byte_level(std::string& out, std::string_view bytes) {
  const ByteTables& t = tables();
  size_t n = out.size();
  out.resize(n + bytes.size() * 2);
  char* dst = out.data();
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    dst[n] = t.packed[b][0];
    dst[n + 1] = t.packed[b][1];
    n += t.packed_len[b];
  }
  out.resize(n);
}

int unicode_to_byte(char32_t c) { return c < 512 ? tables().from_uni[c] : -1; }

}  // namespace vlm::text::unicode
