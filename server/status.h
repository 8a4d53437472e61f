// server::Status and SERVER_CHECK: the two kinds of failure in server/. An environmental failure
// (bad flag, I/O error, port in use) comes back as a [[nodiscard]] Status; a broken invariant
// (a programming error such as registering a metric twice) aborts loudly via SERVER_CHECK.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace server {

class [[nodiscard]] Status {
 public:
  Status() = default;
  // exit_code: the process exit code a command-line front end should use for this error (etcd
  // exits 2 on flag syntax errors and 1 on validation errors); 0 means "no error".
  Status(int exit_code, std::string message)
      : exit_code_(exit_code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return exit_code_ == 0; }
  int exit_code() const { return exit_code_; }
  const std::string& message() const { return message_; }

 private:
  int exit_code_ = 0;
  std::string message_;
};

}  // namespace server

// SERVER_CHECK(cond, fmt, ...): an always-on invariant check (also in release builds).
#define SERVER_CHECK(cond, ...)                                                                  \
  do {                                                                                           \
    if (!(cond)) [[unlikely]] {                                                                  \
      std::fprintf(stderr, "server invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, "  " __VA_ARGS__);                                                    \
      std::fprintf(stderr, "\n");                                                                \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)
