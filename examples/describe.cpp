// The smallest program on the vlm library: describe an image, streaming the answer.
//   build/vlm_example_describe MODEL_DIR IMAGE [QUESTION]
#include <cstdio>
#include <string>

#include "vlm.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IMAGE [QUESTION]\n", argv[0]);
    return 2;
  }
  auto pipeline = vlm::Pipeline::load(argv[1]);
  if (!pipeline.ok()) {
    std::fprintf(stderr, "%s\n", pipeline.error().message.c_str());
    return 1;
  }
  vlm::Message m;
  m.text = argc > 3 ? argv[3] : "Describe this image.";
  m.images.push_back(argv[2]);
  vlm::GenerationOptions gen;
  gen.max_tokens = 128;
  auto answer = (*pipeline)->chat({m}, gen, [](const std::string& piece) {
    std::fputs(piece.c_str(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputs("\n", stdout);
  if (!answer.ok()) {
    std::fprintf(stderr, "%s\n", answer.error().message.c_str());
    return 1;
  }
  return 0;
}
