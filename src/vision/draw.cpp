#include "vision/draw.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "vision/font.h"

namespace vlm {
namespace {

void put(Image& img, int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  uint8_t* p = img.row(y) + size_t(x) * 3;
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

// Pixel-edge coordinate to a pixel index, saturating so that NaN or huge
// values from a caller cannot overflow an int.
int to_px(double v) {
  if (!(v == v)) return 0;
  return int(std::clamp(std::floor(v), -1e6, 1e6));
}
int to_px_end(double v) {
  if (!(v == v)) return 0;
  return int(std::clamp(std::ceil(v), -1e6, 1e6));
}

Rgb text_colour_on(Rgb bg) {
  // Rec. 601 luma: dark text on light tags, white on dark ones.
  const int luma = (299 * bg.r + 587 * bg.g + 114 * bg.b) / 1000;
  return luma >= 140 ? Rgb{0, 0, 0} : Rgb{255, 255, 255};
}

void fill_disc(Image& img, int cx, int cy, int radius, Rgb c) {
  for (int dy = -radius; dy <= radius; ++dy)
    for (int dx = -radius; dx <= radius; ++dx)
      if (dx * dx + dy * dy <= radius * radius + radius) put(img, cx + dx, cy + dy, c);
}

}  // namespace

Rgb palette_colour(size_t index) {
  const double hue = std::fmod(double(index % 360) * 137.50776405, 360.0) / 60.0;
  const double s = 0.85, v = 0.95;
  const int sector = int(hue) % 6;
  const double f = hue - std::floor(hue);
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r, g, b;
  switch (sector) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
  return {uint8_t(std::lround(r * 255)), uint8_t(std::lround(g * 255)), uint8_t(std::lround(b * 255))};
}

void fill_rect(Image& img, int x0, int y0, int x1, int y1, Rgb c) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, img.width);
  y1 = std::min(y1, img.height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) put(img, x, y, c);
}

void draw_rect_outline(Image& img, int x0, int y0, int x1, int y1, Rgb c, int thickness) {
  if (x1 <= x0 || y1 <= y0 || thickness <= 0) return;
  const int t = thickness;
  fill_rect(img, x0, y0, x1, std::min(y0 + t, y1), c);  // top
  fill_rect(img, x0, std::max(y1 - t, y0), x1, y1, c);  // bottom
  fill_rect(img, x0, y0, std::min(x0 + t, x1), y1, c);  // left
  fill_rect(img, std::max(x1 - t, x0), y0, x1, y1, c);  // right
}

int draw_text(Image& img, int x, int y, std::string_view utf8, Rgb c, int scale) {
  scale = std::max(scale, 1);
  const std::string text = font::to_drawable(utf8);
  for (size_t i = 0; i < text.size(); ++i) {
    const font::Glyph& g = font::glyph(text[i]);
    const int gx = x + int(i) * font::kAdvance * scale;
    if (gx >= img.width) break;
    for (int row = 0; row < font::kGlyphHeight; ++row)
      for (int col = 0; col < font::kGlyphWidth; ++col)
        if (g[row] >> (font::kGlyphWidth - 1 - col) & 1)
          fill_rect(img, gx + col * scale, y + row * scale, gx + (col + 1) * scale, y + (row + 1) * scale, c);
  }
  return font::text_width(text) * scale;
}

void draw_boxes(Image& img, const std::vector<DrawBox>& boxes, const DrawOptions& opt) {
  if (img.empty()) return;
  const int longer = std::max(img.width, img.height);
  const int thick = opt.thickness > 0 ? opt.thickness : longer >= 1000 ? 3 : 2;
  const int scale = opt.text_scale > 0 ? opt.text_scale : 1 + (longer >= 800) + (longer >= 2400);
  const int pad = scale + 1;
  const int tag_h = font::kGlyphHeight * scale + 2 * pad;

  std::map<std::string, size_t> colour_of;
  auto colour = [&](const std::string& label) {
    auto [it, added] = colour_of.emplace(label, colour_of.size());
    return palette_colour(it->second);
  };

  // Outlines first, then all tags, so no outline crosses a label's text.
  struct Tag {
    int x, y;
    Rgb c;
    std::string text;
  };
  std::vector<Tag> tags;
  for (const DrawBox& b : boxes) {
    const Rgb c = colour(b.label);
    int x0 = to_px(b.x1), y0 = to_px(b.y1), x1 = to_px_end(b.x2), y1 = to_px_end(b.y2);
    int tag_x, tag_y;
    if (b.is_point) {
      const int r = thick + 2;
      const int cx = std::clamp(x0, 0, img.width - 1), cy = std::clamp(y0, 0, img.height - 1);
      fill_disc(img, cx, cy, r + 1, text_colour_on(c));  // a rim that shows on any background
      fill_disc(img, cx, cy, r, c);
      tag_x = cx + r + 3;
      tag_y = cy - tag_h / 2;
    } else {
      if (x1 <= x0) x1 = x0 + 1;  // keep degenerate boxes visible
      if (y1 <= y0) y1 = y0 + 1;
      draw_rect_outline(img, x0, y0, x1, y1, c, thick);
      tag_x = x0;
      tag_y = y0 - tag_h >= 0 ? y0 - tag_h : y0 + thick;
    }
    if (!b.label.empty()) tags.push_back({tag_x, tag_y, c, b.label});
  }
  for (const Tag& t : tags) {
    const std::string text = font::to_drawable(t.text);
    const int w = font::text_width(text) * scale + 2 * pad;
    // Keep the tag on the image when the box touches the right or bottom edge.
    const int x = std::max(0, std::min(t.x, img.width - w));
    const int y = std::max(0, std::min(t.y, img.height - tag_h));
    fill_rect(img, x, y, x + w, y + tag_h, t.c);
    draw_text(img, x + pad, y + pad, text, text_colour_on(t.c), scale);
  }
}

}  // namespace vlm
