// Drawing labelled boxes onto an RGB8 image (grounding overlays). Everything
// is clipped to the image, so boxes partly or wholly outside are harmless.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vision/image.h"

namespace vlm {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// A box in pixel-edge coordinates: pixel (i, j) covers [i, i+1) x [j, j+1),
// so (0, 0, W, H) is the whole image.
struct DrawBox {
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  std::string label;  // UTF-8; drawn in printable ASCII, other characters as '?'
  bool is_point = false;  // a marker at (x1, y1)
};

struct DrawOptions {
  int thickness = 0;   // outline width in px; 0: 2, or 3 when the longer side is >= 1000
  int text_scale = 0;  // font scale; 0: 1, 2 from a longer side of 800, 3 from 2400
};

// Distinct, saturated colours: hues a golden angle apart, so neighbours in
// the sequence are far apart on the colour wheel.
Rgb palette_colour(size_t index);

// [x0, x1) x [y0, y1), clipped.
void fill_rect(Image& img, int x0, int y0, int x1, int y1, Rgb c);
// Outline of [x0, x1) x [y0, y1) drawn inwards, `thickness` pixels wide.
void draw_rect_outline(Image& img, int x0, int y0, int x1, int y1, Rgb c, int thickness);
// Text with its top-left corner at (x, y); returns the width in pixels.
int draw_text(Image& img, int x, int y, std::string_view utf8, Rgb c, int scale);

// Boxes with their labels on a filled tag (above the box when there is room,
// else just inside its top edge). The same label always gets the same
// colour; labels are coloured in order of first appearance.
void draw_boxes(Image& img, const std::vector<DrawBox>& boxes, const DrawOptions& opt = {});

}  // namespace vlm
