// Checked invariants inside the engine: a violated invariant is a bug, not bad
// input, so it aborts with file:line and a hint rather than returning an error.
#pragma once
#include <cstdio>
#include <cstdlib>

#define VLM_CHECK(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) [[unlikely]] {                                                \
      std::fprintf(stderr, "vlm: invariant failed at %s:%d: %s\n  hint: ",     \
                   __FILE__, __LINE__, #cond);                                 \
      std::fprintf(stderr, __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                              \
      std::abort();                                                            \
    }                                                                          \
  } while (0)
