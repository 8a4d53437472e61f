// Flag errors: kvd's ParseConfig against the real etcd 3.4.23 (/usr/bin/etcd, installed by
// scripts/setup.sh). For each bad command line, etcd is run in a temp dir on loopback ports and
// must fail with the same message (apart from the program name) and the same exit code.
// Each etcd run is killed after 10 s at most; the temp dir is removed afterwards.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "server/config.h"

namespace {

constexpr const char* kEtcdBinary = "/usr/bin/etcd";
constexpr size_t kOutputBytesMax = 1 << 20;

struct EtcdRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};

// Runs etcd with exactly `env` as its environment, in `cwd`, for at most 10 s.
EtcdRun RunEtcd(const std::vector<std::string>& args, const std::vector<std::string>& env,
                const std::string& cwd) {
  std::vector<std::string> argv_storage = {kEtcdBinary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = env;
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    execve(kEtcdBinary, argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  EtcdRun run;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      kill(pid, SIGKILL);  // etcd started instead of failing: the comparison below fails
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    if (run.output.size() < kOutputBytesMax) run.output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

// etcd's error line without log prefix and without " See 'etcd --help'.".
std::string EtcdError(const std::string& output) {
  static const std::regex kLogged(R"(^\d{4}-\d\d-\d\d \S+ [CE] \| [\w/]+: (.*)$)");
  static const std::regex kFlagPackage(R"(^(flag |invalid |bad flag).*$)");
  size_t pos = 0;
  while (pos < output.size()) {
    size_t end = output.find('\n', pos);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(pos, end - pos);
    pos = end + 1;
    std::smatch m;
    std::string message;
    if (std::regex_match(line, m, kLogged)) {
      message = m[1];
    } else if (std::regex_match(line, kFlagPackage)) {
      message = line;
    } else {
      continue;
    }
    const std::string see = " See 'etcd --help'.";
    if (message.size() >= see.size() && message.ends_with(see)) {
      message.resize(message.size() - see.size());
    }
    return message;
  }
  return "";
}

std::string KvdError(const std::string& message) {
  const std::string see = " See 'kvd --help'.";
  return message.ends_with(see) ? message.substr(0, message.size() - see.size()) : message;
}

}  // namespace

TEST_CASE("flag errors match the real etcd 3.4.23 message and exit code", "[compat]") {
  // Goal: for each bad command line, kvd reports etcd's exact error and exit code.
  REQUIRE(access(kEtcdBinary, X_OK) == 0);
  char tmpl[] = "/tmp/kvd-flags-compat-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  // Ports unlikely to be in use; etcd fails before serving in every case below.
  const int base = 30000 + static_cast<int>(getpid() % 10000) * 2;
  const std::string client = "http://127.0.0.1:" + std::to_string(base);
  const std::string peer = "http://127.0.0.1:" + std::to_string(base + 1);
  const std::vector<std::string> common = {"--name",
                                           "y",
                                           "--data-dir",
                                           dir + "/data",
                                           "--listen-client-urls",
                                           client,
                                           "--advertise-client-urls",
                                           client,
                                           "--listen-peer-urls",
                                           peer,
                                           "--initial-advertise-peer-urls",
                                           peer};
  const std::string other_peer = "http://127.0.0.1:" + std::to_string(base + 2);

  struct Case {
    std::vector<std::string> flags;
    std::vector<std::string> env;
  };
  const std::vector<Case> cases = {
      {{"--bogus"}, {}},
      {{"--heartbeat-interval", "abc"}, {}},
      {{"--heartbeat-interval=-1"}, {}},
      {{"--snapshot-count=1.5"}, {}},
      {{"--election-timeout", "400"}, {}},
      {{"--election-timeout", "60000"}, {}},
      {{"--heartbeat-interval", "0"}, {}},
      {{"--initial-cluster-state", "foo"}, {}},
      {{"--initial-cluster", "z=" + peer}, {}},
      {{"--initial-cluster", "y=" + other_peer}, {}},
      {{"--initial-cluster", "y=" + peer + ",y=" + other_peer}, {}},
      {{"--initial-cluster", "y=" + peer + ",z=" + peer}, {}},
      {{"--initial-cluster", "y=" + peer + ",junk"}, {}},
      {{"--listen-client-urls", "ftp://127.0.0.1:1"}, {}},
      {{"--listen-client-urls", "http://127.0.0.1"}, {}},
      {{"--listen-client-urls", "http://127.0.0.1:1/path"}, {}},
      {{"--listen-client-urls", "http://foo.example:1"}, {}},
      {{"--initial-advertise-peer-urls", "http://:1", "--initial-cluster", "y=http://:1"}, {}},
      {{"extra-argument"}, {}},
      {{"--enable-v2", "false"}, {}},
      {{"--pre-vote=maybe"}, {}},
      {{"---x"}, {}},
      {{"--logger", "foo"}, {}},
      {{"--max-concurrent-streams", "4294967296"}, {}},
      {{"--name"}, {}},
      {{}, {"ETCD_NAME=x"}},
      {{}, {"ETCD_HEARTBEAT_INTERVAL=abc"}},
      {{}, {"ETCD_INITIAL_CLUSTER_STATE=bad"}},
  };
  for (const Case& k : cases) {
    std::vector<std::string> args = common;
    args.insert(args.end(), k.flags.begin(), k.flags.end());
    std::string shown;
    for (const std::string& e : k.env) shown += e + " ";
    for (const std::string& f : k.flags) shown += f + " ";
    INFO("case: " << shown);
    EtcdRun etcd = RunEtcd(args, k.env, dir);
    INFO("etcd output: " << etcd.output.substr(0, 2000));
    std::vector<std::string> kvd_args = {"kvd"};
    kvd_args.insert(kvd_args.end(), args.begin(), args.end());
    server::Config config;
    server::Status st = server::ParseConfig(kvd_args, k.env, &config);
    CHECK_FALSE(st.ok());
    const std::string etcd_error = EtcdError(etcd.output);
    CHECK_FALSE(etcd_error.empty());  // etcd did fail, with a recognisable error line
    CHECK(KvdError(st.message()) == etcd_error);
    CHECK(st.exit_code() == etcd.exit_code);
    std::filesystem::remove_all(dir + "/data");
  }
  std::filesystem::remove_all(dir);
}
