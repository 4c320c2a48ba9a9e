// A 5x8 bitmap font for printable ASCII (32..126), drawn for this project:
// 7 rows above the baseline plus one descender row (g, j, p, q, y, ',', '_'),
// enough for box labels without a font dependency.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace vlm::font {

inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 8;
inline constexpr int kAdvance = kGlyphWidth + 1;  // one blank column between glyphs

using Glyph = std::array<uint8_t, kGlyphHeight>;  // one byte per row, bit 4 = leftmost column

// The glyph of a printable ASCII character; anything else gets '?'.
const Glyph& glyph(char c);

// What the font can draw: printable ASCII kept, each other UTF-8 code point
// (or stray byte, or control character) replaced by one '?'.
std::string to_drawable(std::string_view utf8);

// Width in pixels of text already passed through to_drawable, at scale 1.
inline int text_width(std::string_view drawable) {
  return drawable.empty() ? 0 : int(drawable.size()) * kAdvance - 1;
}

}  // namespace vlm::font
