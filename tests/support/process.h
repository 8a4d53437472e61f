// A child process owned by a test: spawned in its own process group with stdout and stderr
// appended to a log file, and killed (the whole group, SIGKILL) when the owner goes away, so
// nothing outlives a failed test. The child also gets SIGKILL if the spawning thread dies
// (PR_SET_PDEATHSIG), which covers a test process that crashes or is killed by a timeout:
// spawn from the test's main thread, not from a short-lived helper thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvtest {

struct ExitStatus {
  bool signaled = false;  // true: killed by signal `value`; false: exited with code `value`
  int value = 0;

  bool ExitedWith(int code) const { return !signaled && value == code; }
  bool KilledBy(int signal) const { return signaled && value == signal; }
  std::string ToString() const;
};

struct ProcessOptions {
  // argv[0] is the executable's path, used as is (no PATH search). Must not be empty.
  std::vector<std::string> argv;
  // Variables set in the child, replacing inherited ones of the same name.
  std::vector<std::pair<std::string, std::string>> env;
  // Inherited variables whose names start with one of these are dropped (e.g. "ETCD_", so a
  // developer's shell cannot change the flags a test passes).
  std::vector<std::string> env_unset_prefixes;
  // stdout and stderr are appended here (created if missing); stdin is /dev/null.
  std::filesystem::path log_path;
};

// Not thread-safe: one owner thread drives it. Not copyable or movable (hold it in a
// std::unique_ptr to transfer it).
class Process {
 public:
  // Spawns the child. Throws SupportError if the log cannot be opened or exec fails (the
  // exec error is reported back through a close-on-exec pipe, so a bad path fails here).
  explicit Process(ProcessOptions options);
  // SIGKILL to the process group if the child has not been reaped, then reaps it (bounded).
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::filesystem::path& log_path() const { return options_.log_path; }
  const std::vector<std::string>& argv() const { return options_.argv; }

  // Sends `signal` to the child's whole process group. Returns false if the child has
  // already been reaped (nothing to signal).
  bool Kill(int signal);

  // Waits up to `timeout` for the child to exit and reaps it; nullopt if it is still running.
  // When the child exits, any process it left in its group is SIGKILLed before the reap.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);

  // True while the child has not exited (polls without blocking).
  bool Running() { return !Wait(std::chrono::milliseconds(0)).has_value(); }

  // SIGTERM, up to `grace` for a clean exit, then SIGKILL. Returns how the child ended.
  ExitStatus Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  // The exit status once reaped.
  const std::optional<ExitStatus>& exit_status() const { return exit_status_; }

  // The last `max_bytes` of the log.
  std::string LogTail(std::size_t max_bytes = 4096) const;

 private:
  ProcessOptions options_;
  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_status_;
  std::uint64_t log_handle_ = 0;
};

}  // namespace kvtest
