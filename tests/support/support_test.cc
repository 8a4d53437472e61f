// Unit tests of the test-support library itself: ports, temp dirs, child processes, log tails
// and the cluster launcher (driven with a fake etcd-like shell script, so no gRPC is needed).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/log_tail.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/support_error.h"
#include "tests/support/temp_dir.h"

namespace {

using std::chrono::milliseconds;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

// True if a process with this pid exists and is not a zombie.
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  const auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < line.size() &&
         line[close_paren + 2] != 'Z';
}

// Polls `condition` every 10 ms for at most `limit`; returns its last value. Bounds the time a
// test waits for something asynchronous without asserting on speed.
template <typename F>
bool Eventually(F condition, milliseconds limit = milliseconds(10000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

bool CanBind(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

kvtest::ProcessOptions Shell(const kvtest::TempDir& dir, const std::string& script) {
  kvtest::ProcessOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.log_path = dir.path() / "child.log";
  return options;
}

}  // namespace

TEST_CASE("PickFreePorts returns distinct bindable loopback ports", "[support][ports]") {
  // Goal: every port is non-zero, distinct within and across calls, and free to bind.
  const auto first = kvtest::PickFreePorts(8);
  const auto second = kvtest::PickFreePorts(8);
  std::set<std::uint16_t> all(first.begin(), first.end());
  all.insert(second.begin(), second.end());
  CHECK(all.size() == 16);
  CHECK(all.count(0) == 0);
  for (const auto port : all) CHECK(CanBind(port));
  CHECK_THROWS_AS(kvtest::PickFreePorts(0), kvtest::SupportError);
  CHECK_THROWS_AS(kvtest::PickFreePorts(65), kvtest::SupportError);
}

// Run by the next test as a child process of this binary: picks 64 ports, writes them to
// $KVTEST_PORTS_OUT, then holds them (its port locks) until killed. Hidden: not run by default.
TEST_CASE("PickFreePorts child: pick 64 ports and hold them", "[.ports-child]") {
  const char* out = std::getenv("KVTEST_PORTS_OUT");
  REQUIRE(out != nullptr);
  const auto ports = kvtest::PickFreePorts(64);
  {
    std::ofstream tmp(std::string(out) + ".tmp");
    for (const auto port : ports) tmp << port << "\n";
  }
  std::filesystem::rename(std::string(out) + ".tmp", out);  // the reader sees all or nothing
  std::this_thread::sleep_for(std::chrono::seconds(60));
}

TEST_CASE("PickFreePorts: two processes never hand out the same port", "[support][ports]") {
  // Goal: with a range of 128 ports, two test processes each picking 64 at random (the first
  // holding its ports while the second picks) get disjoint sets inside the range; without the
  // per-port locks the second would draw many of the first's ports, free again once probed.
  kvtest::TempDir dir;
  int lo = 0;
  for (lo = 20000; lo < 32000; lo += 128) {  // a window with nothing listening right now
    bool free = true;
    for (int p = lo; p < lo + 128 && free; ++p) free = CanBind(static_cast<std::uint16_t>(p));
    if (free) break;
  }
  REQUIRE(lo < 32000);
  const std::string range = std::to_string(lo) + "-" + std::to_string(lo + 127);
  std::vector<std::unique_ptr<kvtest::Process>> children;
  std::vector<std::set<int>> picked;
  for (int i = 0; i < 2; ++i) {
    const std::string out = (dir.path() / ("ports" + std::to_string(i))).string();
    kvtest::ProcessOptions o;
    o.argv = {std::filesystem::read_symlink("/proc/self/exe").string(), "[.ports-child]"};
    o.env = {{"KVTEST_PORT_RANGE", range}, {"KVTEST_PORTS_OUT", out}};
    o.log_path = dir.path() / ("child" + std::to_string(i) + ".log");
    children.push_back(std::make_unique<kvtest::Process>(o));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!std::filesystem::exists(out) && std::chrono::steady_clock::now() < deadline) {
      REQUIRE(children.back()->Running());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    INFO(children.back()->LogTail());
    REQUIRE(std::filesystem::exists(out));
    std::ifstream in(out);
    std::set<int> ports;
    for (int port = 0; in >> port;) ports.insert(port);
    CHECK(ports.size() == 64);
    for (const int port : ports) CHECK((port >= lo && port <= lo + 127));
    picked.push_back(ports);
  }
  std::vector<int> both;
  std::set_intersection(picked[0].begin(), picked[0].end(), picked[1].begin(), picked[1].end(),
                        std::back_inserter(both));
  CHECK(both.empty());
}

TEST_CASE("TempDir is created and removed recursively", "[support][tempdir]") {
  // Goal: the directory exists while owned, survives a move, and vanishes with its contents.
  std::filesystem::path path;
  {
    kvtest::TempDir dir("kvtest-unit");
    path = dir.path();
    REQUIRE(std::filesystem::is_directory(path));
    CHECK(path.filename().string().rfind("kvtest-unit-", 0) == 0);
    std::filesystem::create_directories(path / "a" / "b");
    WriteFile(path / "a" / "b" / "file", "data");
    kvtest::TempDir moved(std::move(dir));
    CHECK(moved.path() == path);
    CHECK(dir.path().empty());  // NOLINT(bugprone-use-after-move): the moved-from state
  }
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("Process reports the exit code and captures output in its log", "[support][process]") {
  // Goal: stdout and stderr land in the log, the exit code comes back, env is passed.
  kvtest::TempDir dir;
  ::setenv("KVTEST_DROP_ME", "inherited", 1);
  ::setenv("KVTEST_KEEP_ME", "kept", 1);
  auto options = Shell(dir,
                       "echo out-$KVTEST_SET-$KVTEST_KEEP_ME-${KVTEST_DROP_ME:-gone}; "
                       "echo err >&2; exit 3");
  options.env = {{"KVTEST_SET", "set"}, {"KVTEST_KEEP_ME", "overridden"}};
  options.env_unset_prefixes = {"KVTEST_DROP"};
  kvtest::Process process(options);
  const auto status = process.Wait(milliseconds(10000));
  REQUIRE(status.has_value());
  CHECK(status->ExitedWith(3));
  CHECK_FALSE(process.Running());
  CHECK_FALSE(process.Kill(SIGTERM));
  const std::string log = ReadFile(dir.path() / "child.log");
  CHECK(log.find("out-set-overridden-gone\n") != std::string::npos);
  CHECK(log.find("err\n") != std::string::npos);
  CHECK(log.find("===== kvtest: starting /bin/sh -c") == 0);
  ::unsetenv("KVTEST_DROP_ME");
  ::unsetenv("KVTEST_KEEP_ME");
}

TEST_CASE("Process Kill and Wait", "[support][process]") {
  // Goal: a running child stays running under a zero wait and dies by the signal sent.
  kvtest::TempDir dir;
  kvtest::Process process(Shell(dir, "exec sleep 1000"));
  CHECK(process.Running());
  CHECK_FALSE(process.Wait(milliseconds(0)).has_value());
  CHECK(process.Kill(SIGTERM));
  const auto status = process.Wait(milliseconds(10000));
  REQUIRE(status.has_value());
  CHECK(status->KilledBy(SIGTERM));
  CHECK(status->ToString().find("signal 15") != std::string::npos);
}

TEST_CASE("Process Stop escalates to SIGKILL when SIGTERM is ignored", "[support][process]") {
  // Goal: Stop ends a child that ignores SIGTERM, with SIGKILL after the grace period.
  kvtest::TempDir dir;
  kvtest::Process process(
      Shell(dir, "trap '' TERM; echo armed-$((40 + 2)); while :; do sleep 1; done"));
  // Wait until the trap is installed, or the SIGTERM could still kill the shell.
  REQUIRE(Eventually([&] { return process.LogTail().find("armed-42") != std::string::npos; }));
  const auto status = process.Stop(milliseconds(200));
  CHECK(status.KilledBy(SIGKILL));
}

TEST_CASE("Process destruction kills the whole process group", "[support][process]") {
  // Goal: a grandchild started in the background does not outlive the Process object.
  kvtest::TempDir dir;
  const auto pid_file = dir.path() / "grandchild.pid";
  pid_t grandchild = 0;
  {
    kvtest::Process process(Shell(dir, "sleep 1000 & echo $! > " + pid_file.string() +
                                           ".tmp && mv " + pid_file.string() + ".tmp " +
                                           pid_file.string() + "; wait"));
    REQUIRE(Eventually([&] { return std::filesystem::exists(pid_file); }));
    grandchild = static_cast<pid_t>(std::stol(ReadFile(pid_file)));
    REQUIRE(grandchild > 0);
    CHECK(Alive(grandchild));
  }
  CHECK(Eventually([&] { return !Alive(grandchild); }));
}

TEST_CASE("Process reports a failed exec at construction", "[support][process]") {
  // Goal: a missing binary throws instead of looking like a child that exits with 127.
  kvtest::TempDir dir;
  kvtest::ProcessOptions options;
  options.argv = {(dir.path() / "no-such-binary").string()};
  options.log_path = dir.path() / "x.log";
  CHECK_THROWS_AS(kvtest::Process(options), kvtest::SupportError);
  options.argv.clear();
  CHECK_THROWS_AS(kvtest::Process(options), kvtest::SupportError);
}

TEST_CASE("TailOfFile returns the last bytes from a line start", "[support][log]") {
  // Goal: the tail is bounded, starts at a line boundary, and ends with the last line.
  kvtest::TempDir dir;
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "line " + std::to_string(i) + "\n";
  WriteFile(dir.path() / "log", text);
  const std::string tail = kvtest::TailOfFile(dir.path() / "log", 100);
  CHECK(tail.size() <= 100);
  CHECK(tail.rfind("line ", 0) == 0);
  CHECK(tail.size() > 20);
  CHECK(tail.substr(tail.size() - 9) == "line 999\n");
  CHECK(kvtest::TailOfFile(dir.path() / "log", 1 << 20) == text);
  CHECK(kvtest::TailOfFile(dir.path() / "missing").find("cannot open") != std::string::npos);
}

TEST_CASE("EtcdLikeCluster passes etcd's flags and can kill, restart and rejoin members",
          "[support][cluster]") {
  // Goal: each member gets its own ports and dirs and the full --initial-cluster, readiness
  // comes from the probe, Kill/Restart cycle one member, and Rejoin wipes its data dir and
  // starts it (and later restarts) with --initial-cluster-state=existing.
  kvtest::TempDir ready_dir("kvtest-ready");
  const auto script = ready_dir.path() / "fake-etcd.sh";
  WriteFile(script,
            "#!/bin/sh\n"
            "for a in \"$@\"; do case \"$a\" in --listen-client-urls=*) url=\"${a#*=}\";; "
            "esac; done\n"
            "port=\"${url##*:}\"\n"
            "printf '%s\\n' \"$@\" > \"$KVTEST_READY_DIR/$port.tmp\"\n"
            "mv \"$KVTEST_READY_DIR/$port.tmp\" \"$KVTEST_READY_DIR/$port\"\n"
            "exec sleep 1000\n");
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  const auto flags_of = [&](const std::string& endpoint) {
    return ready_dir.path() / endpoint.substr(endpoint.find(':') + 1);
  };
  int probes = 0;
  kvtest::ClusterOptions options;
  options.binary = script;
  options.member_count = 3;
  options.heartbeat_interval_ms = 50;
  options.election_timeout_ms = 500;
  options.extra_args = {"--extra=1"};
  options.env = {{"KVTEST_READY_DIR", ready_dir.path().string()}};
  std::filesystem::path cluster_dir;
  {
    kvtest::EtcdLikeCluster cluster(options, [&](const std::string& endpoint, std::string* why) {
      ++probes;
      *why = "no flags file yet";
      return std::filesystem::exists(flags_of(endpoint));
    });
    cluster_dir = cluster.dir();
    CHECK(probes >= 3);
    REQUIRE(cluster.size() == 3);
    const auto endpoints = cluster.endpoints();
    CHECK(std::set<std::string>(endpoints.begin(), endpoints.end()).size() == 3);
    const std::string initial_cluster = "--initial-cluster=m0=" + cluster.peer_url(0) +
                                        ",m1=" + cluster.peer_url(1) + ",m2=" + cluster.peer_url(2);
    for (std::size_t i = 0; i < 3; ++i) {
      const std::string flags = ReadFile(flags_of(cluster.endpoint(i)));
      INFO(flags);
      CHECK(cluster.client_url(i) == "http://" + cluster.endpoint(i));
      CHECK(cluster.peer_url(i) != cluster.client_url(i));
      CHECK(flags.find("--name=m" + std::to_string(i) + "\n") != std::string::npos);
      CHECK(flags.find("--data-dir=" + cluster.data_dir(i).string() + "\n") != std::string::npos);
      CHECK(flags.find("--listen-client-urls=" + cluster.client_url(i) + "\n") !=
            std::string::npos);
      CHECK(flags.find("--advertise-client-urls=" + cluster.client_url(i) + "\n") !=
            std::string::npos);
      CHECK(flags.find("--listen-peer-urls=" + cluster.peer_url(i) + "\n") != std::string::npos);
      CHECK(flags.find("--initial-advertise-peer-urls=" + cluster.peer_url(i) + "\n") !=
            std::string::npos);
      CHECK(flags.find(initial_cluster + "\n") != std::string::npos);
      CHECK(flags.find("--initial-cluster-state=new\n") != std::string::npos);
      CHECK(flags.find("--initial-cluster-token=kvtest-cluster\n") != std::string::npos);
      CHECK(flags.find("--heartbeat-interval=50\n") != std::string::npos);
      CHECK(flags.find("--election-timeout=500\n") != std::string::npos);
      CHECK(flags.find("--extra=1\n") != std::string::npos);
      CHECK(cluster.Running(i));
    }

    const pid_t old_pid = cluster.process(1).pid();
    std::filesystem::remove(flags_of(cluster.endpoint(1)));
    CHECK_THROWS_AS(cluster.Restart(1), kvtest::SupportError);  // still running
    cluster.Kill(1, SIGKILL);
    CHECK_FALSE(cluster.Running(1));
    CHECK(cluster.process(1).exit_status()->KilledBy(SIGKILL));
    cluster.Restart(1);
    CHECK(cluster.Running(1));
    CHECK(cluster.process(1).pid() != old_pid);
    CHECK(std::filesystem::exists(flags_of(cluster.endpoint(1))));
    const std::string log = ReadFile(cluster.log_path(1));
    CHECK(log.find("===== kvtest: starting") != log.rfind("===== kvtest: starting"));
    CHECK(cluster.Stop(2, milliseconds(5000)).KilledBy(SIGTERM));

    CHECK_THROWS_AS(cluster.Rejoin(1), kvtest::SupportError);  // still running
    std::filesystem::create_directories(cluster.data_dir(2) / "member");
    WriteFile(cluster.data_dir(2) / "member" / "old", "old identity");
    std::filesystem::remove(flags_of(cluster.endpoint(2)));
    cluster.Rejoin(2);
    CHECK(cluster.Running(2));
    CHECK_FALSE(std::filesystem::exists(cluster.data_dir(2) / "member" / "old"));
    std::string flags = ReadFile(flags_of(cluster.endpoint(2)));
    CHECK(flags.find("--initial-cluster-state=existing\n") != std::string::npos);
    CHECK(flags.find(initial_cluster + "\n") != std::string::npos);
    cluster.Kill(2, SIGKILL);
    std::filesystem::remove(flags_of(cluster.endpoint(2)));
    cluster.Restart(2);
    flags = ReadFile(flags_of(cluster.endpoint(2)));
    CHECK(flags.find("--initial-cluster-state=existing\n") != std::string::npos);
    // The others keep theirs.
    CHECK(ReadFile(flags_of(cluster.endpoint(1))).find("--initial-cluster-state=new\n") !=
          std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(cluster_dir));
}

TEST_CASE("EtcdLikeCluster fails fast when a member exits or never gets ready",
          "[support][cluster]") {
  // Goal: a dead member and a probe that never passes both end in SupportError, bounded.
  kvtest::ClusterOptions options;
  options.binary = "/bin/false";
  options.ready_timeout = milliseconds(3000);
  const auto never = [](const std::string&, std::string* why) {
    *why = "never ready";
    return false;
  };
  CHECK_THROWS_AS(kvtest::EtcdLikeCluster(options, never), kvtest::SupportError);
  kvtest::TempDir dir;
  const auto script = dir.path() / "idle.sh";
  WriteFile(script, "#!/bin/sh\nexec sleep 1000\n");
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  options.binary = script;
  options.ready_timeout = milliseconds(300);
  try {
    kvtest::EtcdLikeCluster cluster(options, never);
    FAIL("the cluster should not have become ready");
  } catch (const kvtest::SupportError& e) {
    CHECK(std::string(e.what()).find("not ready after 300 ms: never ready") != std::string::npos);
  }
  options.binary = dir.path() / "missing";
  CHECK_THROWS_AS(kvtest::EtcdLikeCluster(options, never), kvtest::SupportError);
}
