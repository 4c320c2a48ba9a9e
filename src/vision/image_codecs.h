// Internal to src/vision: one decoder per container, each returning an
// upright RGB image (EXIF orientation already applied).
#pragma once
#include <cstdint>
#include <span>

#include "core/status.h"
#include "vision/image.h"

namespace vlm::detail {

// Refuses a header's claimed size before anything is allocated for it.
Status check_image_dimensions(int64_t width, int64_t height, const DecodeLimits& limits,
                              const char* format);
// Allocates the pixel buffer (after check_image_dimensions).
Image make_image(int width, int height);

Expected<Image> decode_png(std::span<const uint8_t> bytes, const DecodeLimits& limits);
Expected<Image> decode_jpeg(std::span<const uint8_t> bytes, const DecodeLimits& limits);
Expected<Image> decode_webp(std::span<const uint8_t> bytes, const DecodeLimits& limits);

}  // namespace vlm::detail
