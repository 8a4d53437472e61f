// kv_test_support (linked through the harness) registers a Catch2 listener, so the runner
// needs Catch2's implementation, but not its main: robustness_runner has its own.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
