// What a fuzz target does when the code under test breaks a promise: print why and abort, so
// that libFuzzer records the input and a replay fails.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, why)                                            \
  do {                                                                        \
    if (!(condition)) {                                                       \
      std::fprintf(stderr, "fuzz check failed: %s (%s)\n", why, #condition); \
      std::abort();                                                           \
    }                                                                         \
  } while (0)
