// Where the tests find ../shared/data, and what they do when it is missing: fail with a clear
// message when CI=true (CI always has the data beside the checkout), skip elsewhere.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace messplus::testing {

// $MESSPLUS_DATA_DIR, else <source>/../shared/data.
inline std::string SharedDataDir() {
  if (const char* env = std::getenv("MESSPLUS_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return (std::filesystem::path(MESSPLUS_SOURCE_DIR) / ".." / "shared" / "data").string();
}

inline bool RunningInCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace messplus::testing

// Use at the top of a test body: resolves `path` (relative to the data dir) or ends the test.
#define MESSPLUS_REQUIRE_SHARED_DATA(var, relative)                                     \
  const std::string var = ::messplus::testing::SharedDataDir() + "/" + (relative);      \
  if (!std::filesystem::exists(var)) {                                                  \
    if (::messplus::testing::RunningInCi()) {                                           \
      GTEST_FAIL() << "shared data missing: " << var                                    \
                   << " (CI=true: ../shared/data must sit beside the checkout, or set " \
                      "MESSPLUS_DATA_DIR)";                                             \
    }                                                                                   \
    GTEST_SKIP() << "shared data not found at " << var << " (set MESSPLUS_DATA_DIR)";   \
  }
