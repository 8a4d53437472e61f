#include "tests/support/process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <thread>

#include "tests/support/log_tail.h"
#include "tests/support/support_error.h"

extern char** environ;

namespace kvtest {
namespace {

// How often Wait polls the child; short enough not to slow tests down, long enough not to
// burn a core that other engineers share.
constexpr std::chrono::milliseconds kWaitPoll{5};
// How long the destructor waits for a SIGKILLed child (it can only be slower than this if it
// is stuck in the kernel).
constexpr std::chrono::milliseconds kReapAfterKill{10000};
constexpr std::size_t kArgsMax = 1024;

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::vector<std::string> BuildEnvironment(const ProcessOptions& options) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string var(*entry);
    const std::string name = var.substr(0, var.find('='));
    bool drop = false;
    for (const auto& prefix : options.env_unset_prefixes) drop = drop || StartsWith(name, prefix);
    for (const auto& [key, value] : options.env) drop = drop || name == key;
    if (!drop) env.push_back(var);
  }
  for (const auto& [key, value] : options.env) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace

std::string ExitStatus::ToString() const {
  return signaled ? "killed by signal " + std::to_string(value) + " (" + strsignal(value) + ")"
                  : "exited with code " + std::to_string(value);
}

Process::Process(ProcessOptions options) : options_(std::move(options)) {
  if (options_.argv.empty() || options_.argv.size() > kArgsMax) {
    throw SupportError("Process: argv must hold 1 to 1024 strings");
  }
  {
    // A marker in the log separates the runs of a restarted server.
    std::string marker = "===== kvtest: starting";
    for (const auto& arg : options_.argv) marker += " " + arg;
    marker += "\n";
    Fd log(::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (log.get() < 0) {
      throw SupportError("open " + options_.log_path.string() + ": " + std::strerror(errno));
    }
    if (::write(log.get(), marker.data(), marker.size()) < 0) {
      throw SupportError("write " + options_.log_path.string() + ": " + std::strerror(errno));
    }
  }
  // Everything the child needs is prepared before fork: after fork in a multithreaded
  // process the child may only make async-signal-safe calls until exec.
  std::vector<std::string> args = options_.argv;
  std::vector<std::string> env = BuildEnvironment(options_);
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_env = CStrings(env);
  Fd log(::open(options_.log_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  Fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (log.get() < 0 || null_in.get() < 0) {
    throw SupportError("open log or /dev/null: " + std::string(std::strerror(errno)));
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw SupportError(std::string("pipe2: ") + std::strerror(errno));
  }
  Fd err_read(pipe_fds[0]);
  Fd err_write(pipe_fds[1]);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) throw SupportError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);  // gRPC ignores SIGPIPE; exec would keep that
    ::dup2(null_in.get(), STDIN_FILENO);
    ::dup2(log.get(), STDOUT_FILENO);
    ::dup2(log.get(), STDERR_FILENO);
    ::execve(c_args[0], c_args.data(), c_env.data());
    const int exec_errno = errno;
    [[maybe_unused]] const ssize_t written =
        ::write(err_write.get(), &exec_errno, sizeof exec_errno);
    ::_exit(127);
  }
  // Also from the parent, so the group exists before we might signal it.
  ::setpgid(pid, pid);
  pid_ = pid;
  err_write.Close();
  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(err_read.get(), &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    Wait(kReapAfterKill);
    throw SupportError("exec " + options_.argv[0] + ": " + std::strerror(exec_errno));
  }
  log_handle_ =
      RegisterLog(options_.log_path, options_.argv[0] + " (pid " + std::to_string(pid_) + ")");
}

Process::~Process() {
  if (!exit_status_) {
    ::kill(-pid_, SIGKILL);
    try {
      if (!Wait(kReapAfterKill)) {
        std::cerr << "kvtest: pid " << pid_ << " survived SIGKILL for 10 s; leaving it\n";
      }
    } catch (const SupportError& e) {
      std::cerr << "kvtest: " << e.what() << "\n";  // a destructor must not throw
    }
  }
  UnregisterLog(log_handle_);
}

bool Process::Kill(int signal) {
  if (exit_status_) return false;
  // The unreaped leader keeps its pid, and so the group id, reserved: no risk of hitting a
  // recycled group.
  return ::kill(-pid_, signal) == 0;
}

std::optional<ExitStatus> Process::Wait(std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    siginfo_t info{};
    // WNOWAIT: look without reaping, so the group id stays reserved while we clean it up.
    const int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == pid_) break;
    if (rc != 0 && errno != EINTR) {
      throw SupportError("waitid " + std::to_string(pid_) + ": " + std::strerror(errno));
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kWaitPoll);
  }
  ::kill(-pid_, SIGKILL);  // whatever the child left behind in its group
  int status = 0;
  pid_t reaped = 0;
  do {
    reaped = ::waitpid(pid_, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  if (reaped != pid_) {
    throw SupportError("waitpid " + std::to_string(pid_) + ": " + std::strerror(errno));
  }
  ExitStatus result;
  if (WIFSIGNALED(status)) {
    result.signaled = true;
    result.value = WTERMSIG(status);
  } else {
    result.value = WEXITSTATUS(status);
  }
  exit_status_ = result;
  return exit_status_;
}

ExitStatus Process::Stop(std::chrono::milliseconds grace) {
  Kill(SIGTERM);
  if (auto status = Wait(grace)) return *status;
  Kill(SIGKILL);
  if (auto status = Wait(kReapAfterKill)) return *status;
  throw SupportError("pid " + std::to_string(pid_) + " survived SIGKILL for 10 s");
}

std::string Process::LogTail(std::size_t max_bytes) const {
  return TailOfFile(options_.log_path, max_bytes);
}

}  // namespace kvtest
