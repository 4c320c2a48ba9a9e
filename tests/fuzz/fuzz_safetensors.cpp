// libFuzzer target: arbitrary bytes as a safetensors file. Every header must be
// rejected with an Error or yield views that lie inside the buffer.
#include <cstdint>
#include <cstdlib>

#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto st = vlm::SafetensorsFile::parse(std::span<const uint8_t>(data, size));
  if (!st.ok()) return 0;
  for (const auto& [name, t] : (*st)->tensors()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    if (p < data || p + t.nbytes() > data + size) std::abort();
    volatile uint8_t sink = t.nbytes() ? p[t.nbytes() - 1] : 0;  // touch the last byte under ASan
    (void)sink;
  }
  return 0;
}
