// libFuzzer target: arbitrary bytes through the Qwen tokenizer.
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
//     -DVLM_TESTDATA="\"$PWD/testdata\"" tests/fuzz/fuzz_tokenizer.cpp \
//     src/text/tokenizer*.cpp src/text/bpe.cpp src/text/unicode.cpp -lpcre2-8 -lutf8proc
// VLM_TOKENIZER_DIR picks another tokenizer folder (then the lossless round
// trip below is not checked, since only byte-level BPE guarantees it).
// Checks, besides memory safety: byte-level BPE loses nothing, so decoding the
// ids gives back the NFC form of the (UTF-8-repaired) input, and streaming
// decode prints exactly what a full decode does.
#include "text/tokenizer.h"
#include "text/unicode.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#ifndef VLM_TESTDATA
#define VLM_TESTDATA "testdata"
#endif

namespace {

const char* const kDirOverride = std::getenv("VLM_TOKENIZER_DIR");

const vlm::text::Tokenizer& tokenizer() {
  static const std::unique_ptr<vlm::text::Tokenizer> tok = [] {
    const char* env = kDirOverride;
    const std::string dir = env ? env : VLM_TESTDATA "/fixtures/qwen2_vl/model";
    auto t = vlm::text::Tokenizer::load(dir);
    if (!t.ok()) {
      std::fprintf(stderr, "fuzz_tokenizer: %s\n", t.error().message.c_str());
      std::abort();
    }
    return std::move(t).value();
  }();
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vlm::text::Tokenizer& tok = tokenizer();
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tok.encode(input, true);
  for (const int32_t id : ids) {
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  }
  const std::string text = tok.decode(ids, false);
  namespace u = vlm::text::unicode;
  if (!kDirOverride && text != u::normalize(u::to_valid_utf8(input), u::NormForm::NFC)) std::abort();

  vlm::text::StreamDecoder stream(tok, /*skip_special=*/false);
  std::string streamed;
  for (const int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  if (streamed != text) std::abort();
  (void)tok.decode(ids, true);
  return 0;
}
