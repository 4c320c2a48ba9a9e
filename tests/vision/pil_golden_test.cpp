// Bit-exactness against Pillow on real files: decode (+ exif_transpose +
// convert("RGB")) and Image.resize. The references were written by
// pil_golden/make.py with Pillow 9.4; they pin the JPEG settings (ISLOW,
// fancy upsampling), PIL's CMYK convention, EXIF handling and the resampler.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "vision/image.h"
#include "vision/resize.h"

using namespace vlm;

namespace {

const std::filesystem::path kDir = std::filesystem::path(__FILE__).parent_path() / "pil_golden";

std::vector<uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

int32_t le32(const uint8_t* p) {
  return int32_t(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                 uint32_t(p[3]) << 24);
}

TEST(PilGolden, DecodeMatchesPillow) {
  std::ifstream list(kDir / "files.txt");
  ASSERT_TRUE(list.good()) << kDir;
  std::string name;
  int n = 0;
  while (std::getline(list, name)) {
    if (name.empty()) continue;
    SCOPED_TRACE(name);
    const std::vector<uint8_t> ref = read_all(kDir / (name + ".rgb"));
    ASSERT_GE(ref.size(), 8u);
    auto img = load_image((kDir / name).string());
    ASSERT_TRUE(img.ok()) << img.error().message;
    ASSERT_EQ(img->width, le32(ref.data()));
    ASSERT_EQ(img->height, le32(ref.data() + 4));
    ASSERT_EQ(img->rgb.size(), ref.size() - 8);
    size_t differ = 0;
    for (size_t i = 0; i < img->rgb.size(); ++i) differ += img->rgb[i] != ref[8 + i];
    EXPECT_EQ(differ, 0u);
    ++n;
  }
  EXPECT_GE(n, 10);
}

TEST(PilGolden, ResizeMatchesPillow) {
  const std::vector<uint8_t> b = read_all(kDir / "resize.bin");
  ASSERT_GE(b.size(), 4u);
  const int count = le32(b.data());
  size_t pos = 4;
  for (int t = 0; t < count; ++t) {
    ASSERT_LE(pos + 20, b.size());
    const int w = le32(&b[pos]), h = le32(&b[pos + 4]), W = le32(&b[pos + 8]),
              H = le32(&b[pos + 12]), bicubic = le32(&b[pos + 16]);
    pos += 20;
    SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h) + " -> " + std::to_string(W) + "x" +
                 std::to_string(H) + (bicubic ? " bicubic" : " bilinear"));
    Image src;
    src.width = w;
    src.height = h;
    const size_t in_bytes = size_t(w) * h * 3, out_bytes = size_t(W) * H * 3;
    ASSERT_LE(pos + in_bytes + out_bytes, b.size());
    src.rgb.assign(b.begin() + long(pos), b.begin() + long(pos + in_bytes));
    pos += in_bytes;
    auto r = resize_pil(src, W, H, bicubic ? ResampleFilter::kBicubic : ResampleFilter::kBilinear);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(std::equal(r->rgb.begin(), r->rgb.end(), b.begin() + long(pos)));
    pos += out_bytes;
  }
  EXPECT_EQ(pos, b.size());
}

}  // namespace
