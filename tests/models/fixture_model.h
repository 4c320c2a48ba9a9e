// The fixture checkpoint in `dir`, loaded once per test binary and kept (loading is the slow part
// of these tests); a load failure fails the test run at once.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "models/model.h"

namespace vlm::testing {

inline const models::Model& fixture_model(const std::string& dir) {
  static std::map<std::string, std::unique_ptr<models::Model>> loaded;
  auto& slot = loaded[dir];
  if (!slot) {
    auto m = models::load_model(dir);
    if (!m.ok()) {
      ADD_FAILURE() << m.error().message;
      std::abort();
    }
    slot = std::move(m.value());
  }
  return *slot;
}

}  // namespace vlm::testing
