// Status and exit codes of kvctl. Exit codes are etcdctl 3.4.23's (ctlv3/command/error.go), so
// scripts written against etcdctl keep working.
#pragma once
#include <string>
#include <utility>

namespace cli {

enum ExitCode : int {
  kExitSuccess = 0,
  kExitError = 1,
  kExitBadConnection = 2,
  kExitInvalidInput = 3,
  kExitBadFeature = 4,
  kExitInterrupted = 5,
  kExitIO = 6,
  kExitBadArgs = 128,
};

// The outcome of an environmental operation (RPC, file, user input). `message` is printed as
// "Error: <message>" by the caller; an empty message with a non-zero code prints nothing.
struct [[nodiscard]] Status {
  int exit_code = kExitSuccess;
  std::string message;

  bool ok() const { return exit_code == kExitSuccess; }
  static Status Ok() { return Status{}; }
  static Status Error(int code, std::string msg) { return Status{code, std::move(msg)}; }
};

// Aborts loudly (message, file, line) when a program invariant is broken; always on.
[[noreturn]] void CheckFailed(const char* expr, const char* file, int line);
#define KVCTL_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::cli::CheckFailed(#cond, __FILE__, __LINE__))

}  // namespace cli
