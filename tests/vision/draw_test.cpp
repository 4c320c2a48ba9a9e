#include "vision/draw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "vision/font.h"

namespace vlm {
namespace {

const Rgb kBg{10, 20, 30};

Image blank(int w, int h, Rgb c = kBg) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    img.rgb[i] = c.r;
    img.rgb[i + 1] = c.g;
    img.rgb[i + 2] = c.b;
  }
  return img;
}

Rgb at(const Image& img, int x, int y) {
  const uint8_t* p = img.row(y) + size_t(x) * 3;
  return {p[0], p[1], p[2]};
}

int count(const Image& img, int x0, int y0, int x1, int y1, Rgb c) {
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) n += at(img, x, y) == c;
  return n;
}

// Box (20,30)-(60,70) on 100x80, 2 px outline drawn inwards: columns 20,21
// and 58,59, rows 30,31 and 68,69. The tag (8 px font + 2*2 padding = 12 px)
// sits above the box at rows 18..29 from column 20.
TEST(Draw, OutlineInsideUntouchedAndLabel) {
  Image img = blank(100, 80);
  draw_boxes(img, {{20, 30, 60, 70, "cat", false}});
  const Rgb c = palette_colour(0);
  for (int y = 30; y < 70; ++y) {
    EXPECT_EQ(at(img, 20, y), c) << y;
    EXPECT_EQ(at(img, 21, y), c) << y;
    EXPECT_EQ(at(img, 58, y), c) << y;
    EXPECT_EQ(at(img, 59, y), c) << y;
    EXPECT_EQ(at(img, 19, y), kBg) << y;
    EXPECT_EQ(at(img, 60, y), kBg) << y;
  }
  for (int x = 20; x < 60; ++x) {
    EXPECT_EQ(at(img, x, 30), c);
    EXPECT_EQ(at(img, x, 31), c);
    EXPECT_EQ(at(img, x, 68), c);
    EXPECT_EQ(at(img, x, 69), c);
    EXPECT_EQ(at(img, x, 70), kBg);
  }
  // Inside the outline nothing changed.
  EXPECT_EQ(count(img, 22, 32, 58, 68, kBg), 36 * 36);
  // The tag: background in the box colour, text in black or white.
  const int text_w = font::text_width("cat");
  EXPECT_EQ(text_w, 17);
  const int tag_w = text_w + 4;
  const int bg = count(img, 20, 18, 20 + tag_w, 30, c);
  const int ink = count(img, 20, 18, 20 + tag_w, 30, Rgb{0, 0, 0}) + count(img, 20, 18, 20 + tag_w, 30, Rgb{255, 255, 255});
  EXPECT_GT(ink, 20);
  EXPECT_EQ(bg + ink, tag_w * 12);
  EXPECT_EQ(at(img, 20 + tag_w, 20), kBg);  // the tag ends there
  EXPECT_EQ(at(img, 20, 17), kBg);
}

TEST(Draw, ColoursPerLabel) {
  Image img = blank(200, 100);
  draw_boxes(img, {{10, 20, 50, 60, "a", false}, {60, 20, 100, 60, "b", false}, {110, 20, 150, 60, "a", false}},
             DrawOptions{3, 1});
  EXPECT_EQ(at(img, 10, 40), palette_colour(0));
  EXPECT_EQ(at(img, 12, 40), palette_colour(0));  // 3 px
  EXPECT_EQ(at(img, 13, 40), kBg);
  EXPECT_EQ(at(img, 60, 40), palette_colour(1));
  EXPECT_EQ(at(img, 110, 40), palette_colour(0));
  std::set<std::tuple<int, int, int>> seen;
  for (size_t i = 0; i < 12; ++i) {
    const Rgb c = palette_colour(i);
    seen.insert({c.r, c.g, c.b});
  }
  EXPECT_EQ(seen.size(), 12u);
  // Neighbours in the sequence are clearly different.
  for (size_t i = 0; i < 11; ++i) {
    const Rgb a = palette_colour(i), b = palette_colour(i + 1);
    EXPECT_GT(std::abs(a.r - b.r) + std::abs(a.g - b.g) + std::abs(a.b - b.b), 120) << i;
  }
}

TEST(Draw, TagInsideWhenNoRoomAboveAndClipping) {
  Image img = blank(60, 40);
  // Touches the top edge: the tag goes just inside the top outline.
  draw_boxes(img, {{0, 0, 60, 40, "top", false}});
  EXPECT_EQ(at(img, 0, 0), palette_colour(0));
  EXPECT_EQ(at(img, 5, 2), palette_colour(0));  // tag background below the 2 px outline
  // Boxes partly or wholly outside, huge or NaN, and points off the image must not crash.
  draw_boxes(img, {{-100, -100, 1e12, 1e12, "big", false},
                   {500, 500, 600, 600, "away", false},
                   {std::nan(""), 1, 2, std::nan(""), "nan", false},
                   {-5, -5, -5, -5, "point", true},
                   {30, 20, 30, 20, "", false}});
}

TEST(Draw, PointMarker) {
  Image img = blank(100, 100);
  draw_boxes(img, {{50, 50, 50, 50, "p", true}});
  EXPECT_EQ(at(img, 50, 50), palette_colour(0));
  EXPECT_EQ(at(img, 53, 50), palette_colour(0));  // radius thickness + 2 = 4
  EXPECT_EQ(at(img, 50, 30), kBg);
  EXPECT_GT(count(img, 55, 40, 100, 60, palette_colour(0)), 30);  // its tag to the right
}

TEST(Draw, TextScaleAndNonAscii) {
  Image img = blank(40, 20);
  const int w1 = draw_text(img, 0, 0, "Hi", {255, 255, 255}, 1);
  EXPECT_EQ(w1, 11);
  Image big = blank(40, 20);
  EXPECT_EQ(draw_text(big, 0, 0, "Hi", {255, 255, 255}, 2), 22);
  // Every lit pixel at scale 1 is a 2x2 block at scale 2.
  const Rgb white{255, 255, 255};
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 11; ++x) {
      const bool lit = at(img, x, y) == white;
      EXPECT_EQ(at(big, 2 * x, 2 * y) == white, lit);
      EXPECT_EQ(at(big, 2 * x + 1, 2 * y + 1) == white, lit);
    }
  EXPECT_EQ(font::to_drawable("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac!\t\xff"), "caf? ??" "!??");  // split: "??!" is a trigraph
  // Large images get the double-size font automatically: the tag is 8*2 + 2*3 = 22 px high.
  Image large = blank(900, 300);
  draw_boxes(large, {{100, 100, 300, 200, "x", false}});
  EXPECT_EQ(at(large, 100, 100 - 22), palette_colour(0));
  EXPECT_EQ(at(large, 100, 100 - 23), kBg);
}

TEST(Font, GlyphsAreDistinctAndInked) {
  std::set<font::Glyph> seen;
  for (int c = 33; c <= 126; ++c) {
    const font::Glyph& g = font::glyph(char(c));
    int ink = 0;
    for (uint8_t row : g) {
      EXPECT_EQ(row >> font::kGlyphWidth, 0) << char(c);
      ink += __builtin_popcount(row);
    }
    EXPECT_GT(ink, 0) << char(c);
    EXPECT_TRUE(seen.insert(g).second) << "duplicate glyph " << char(c);
  }
  for (uint8_t row : font::glyph(' ')) EXPECT_EQ(row, 0);
  EXPECT_EQ(font::glyph('\x01'), font::glyph('?'));
  EXPECT_EQ(font::glyph(char(200)), font::glyph('?'));
}

}  // namespace
}  // namespace vlm
