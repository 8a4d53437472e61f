// kvtest::SupportError: how the test-support library reports an environmental failure (cannot
// bind, cannot spawn, a server that never became ready). Test code runs under Catch2, which
// turns an escaping exception into a failed test case with the message printed, and unwinds the
// RAII helpers (processes, temp dirs) on the way out; a status return value would have to be
// checked by every caller for the same effect.
#pragma once

#include <stdexcept>
#include <string>

namespace kvtest {

class SupportError : public std::runtime_error {
 public:
  explicit SupportError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace kvtest
