// etcdctl vs kvctl on two identically prepared servers: lease, member, endpoint, snapshot,
// defrag, alarm and move-leader commands.
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <sstream>

#include "tests/cli/compat_harness.h"

namespace {

using clitest::RunResult;
using clitest::TwinServers;

std::string FirstWord2(const std::string& s) {
  // "lease 694d7b8b2d6f0f2a granted ..." -> the ID.
  auto start = s.find(' ');
  auto end = s.find(' ', start + 1);
  return s.substr(start + 1, end - start - 1);
}

TEST_CASE("kvctl lease commands match etcdctl", "[compat]") {
  // Goal: grant/revoke/timetolive/list/keep-alive --once output (IDs normalized) and errors.
  TwinServers s;
  RunResult ge = s.Etcdctl({"lease", "grant", "300"});
  RunResult gk = s.Kvctl({"lease", "grant", "300"});
  REQUIRE(ge.exit_code == 0);
  REQUIRE(gk.exit_code == 0);
  CHECK(clitest::Normalize(gk.out) == clitest::Normalize(ge.out));
  std::string id_a = FirstWord2(ge.out);
  std::string id_b = FirstWord2(gk.out);
  REQUIRE(id_b.size() == 16);
  s.Etcdctl({"put", "--lease=" + id_a, "lk", "v"});
  s.Kvctl({"put", "--lease=" + id_b, "lk", "v"});
  // Commands that name the lease: each tool gets its own server's ID.
  auto compare_with_id = [&](std::vector<std::string> args) {
    std::vector<std::string> a = args;
    std::vector<std::string> b = args;
    for (auto& x : a) x = x == "ID" ? id_a : x;
    for (auto& x : b) x = x == "ID" ? id_b : x;
    RunResult e = s.Etcdctl(a);
    RunResult k = s.Kvctl(b);
    INFO("lease command " << args[1] << "\n" << e.err << "\n" << k.err);
    std::string eo = clitest::Normalize(e.out);
    std::string ko = clitest::Normalize(k.out);
    // remaining(TTL) may tick between the two runs.
    std::regex remaining(R"re(remaining\(\d+s\)|"ttl":\d+)re");
    CHECK(std::regex_replace(ko, remaining, "R") == std::regex_replace(eo, remaining, "R"));
    CHECK(k.exit_code == e.exit_code);
  };
  compare_with_id({"lease", "timetolive", "ID"});
  compare_with_id({"lease", "timetolive", "ID", "--keys"});
  compare_with_id({"lease", "timetolive", "ID", "--keys", "-w", "json"});
  compare_with_id({"lease", "timetolive", "ID", "-w", "table"});
  compare_with_id({"lease", "keep-alive", "--once", "ID"});
  compare_with_id({"lease", "keep-alive", "--once", "ID", "-w", "json"});
  s.Compare({"lease", "list"});
  s.Compare({"lease", "list", "-w", "json"});
  s.Compare({"lease", "grant", "100", "-w", "json"});
  compare_with_id({"lease", "revoke", "ID"});
  compare_with_id({"lease", "revoke", "ID"});
  s.Compare({"lease", "timetolive", "1234"});
  s.Compare({"lease", "timetolive", "1234", "-w", "json"});
  s.Compare({"lease", "keep-alive", "--once", "1234"});
  s.Compare({"lease", "revoke", "zz"});
  s.Compare({"lease", "grant", "x"});
  s.Compare({"lease", "grant"});
  s.Compare({"get", "lk"});
}

TEST_CASE("kvctl member commands match etcdctl", "[compat]") {
  // Goal: member list in every format, add --learner / update / promote / remove output and
  // their errors (IDs and ports normalized).
  TwinServers s;
  s.Compare({"member", "list"});
  s.Compare({"member", "list", "-w", "json"});
  s.Compare({"member", "list", "-w", "table"});
  RunResult add = s.Compare(
      {"member", "add", "learner1", "--learner", "--peer-urls=http://127.0.0.1:1"}, "", true);
  CHECK(add.out.find("ETCD_INITIAL_CLUSTER_STATE=\"existing\"") != std::string::npos);
  s.Compare({"member", "list"}, "", true);
  s.Compare({"member", "list", "-w", "table"}, "", true);
  // Each server's learner ID, from its own member list.
  auto learner_id = [](const RunResult& list) {
    std::istringstream in(list.out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("unstarted") != std::string::npos) return line.substr(0, line.find(','));
    }
    return std::string();
  };
  std::string id_a = learner_id(s.Etcdctl({"member", "list"}));
  std::string id_b = learner_id(s.Kvctl({"member", "list"}));
  REQUIRE(!id_a.empty());
  REQUIRE(!id_b.empty());
  auto both = [&](const std::vector<std::string>& prefix, const std::vector<std::string>& suffix) {
    std::vector<std::string> a = prefix;
    std::vector<std::string> b = prefix;
    a.push_back(id_a);
    b.push_back(id_b);
    a.insert(a.end(), suffix.begin(), suffix.end());
    b.insert(b.end(), suffix.begin(), suffix.end());
    RunResult e = s.Etcdctl(a);
    RunResult k = s.Kvctl(b);
    INFO(e.err << "\n" << k.err);
    CHECK(clitest::Normalize(k.out) == clitest::Normalize(e.out));
    CHECK(k.exit_code == e.exit_code);
  };
  both({"member", "update"}, {"--peer-urls=http://127.0.0.1:2"});
  both({"member", "promote"}, {});
  both({"member", "remove"}, {});
  s.Compare({"member", "remove", "1234"});
  s.Compare({"member", "remove", "zz"});
  s.Compare({"member", "remove"});
  s.Compare({"member", "add"});
  s.Compare({"member", "add", "x"});
  s.Compare({"member", "update", "1234"});
  s.Compare({"member", "add", "x", "--learner", "--peer-urls=http://127.0.0.1:3", "-w", "table"});
  s.Compare({"member", "list"}, "", true);
}

TEST_CASE("kvctl endpoint, defrag, alarm, snapshot and move-leader match etcdctl", "[compat]") {
  // Goal: per-endpoint maintenance commands with --cluster and every format, and errors.
  TwinServers s;
  s.Prepare({"put", "a", "1"});
  s.Prepare({"put", "b", "2"});
  for (const char* w : {"simple", "json", "table"}) {
    s.Compare({"endpoint", "status", "-w", w});
    s.Compare({"endpoint", "status", "--cluster", "-w", w});
    s.Compare({"endpoint", "hashkv", "-w", w});
    s.Compare({"endpoint", "hashkv", "--cluster", "--rev=2", "-w", w});
    s.Compare({"endpoint", "health", "-w", w});
    s.Compare({"endpoint", "health", "--cluster", "-w", w});
    s.Compare({"alarm", "list", "-w", w});
    s.Compare({"alarm", "disarm", "-w", w});
  }
  s.Compare({"defrag"});
  s.Compare({"defrag", "--cluster"});
  s.Compare({"move-leader", "1234"});
  s.Compare({"move-leader"});
  s.Compare({"move-leader", "zz"});
  s.Compare({"snapshot", "save"});
  RunResult snap = s.Compare({"snapshot", "save", "snap.db"});
  CHECK(snap.out == "Snapshot saved at snap.db\n");
  CHECK(std::filesystem::file_size(s.dir() / "snap.db") % 512 == 32);
  CHECK(!std::filesystem::exists(s.dir() / "snap.db.part"));
  // A dead endpoint: health reports it (stderr) and exits 1 in both.
  RunResult e = clitest::RunTool("/usr/bin/etcdctl",
                                 {"--endpoints=127.0.0.1:1", "--command-timeout=1s",
                                  "--dial-timeout=1s", "endpoint", "health"},
                                 "", s.dir());
  RunResult k = clitest::RunTool(KVCTL_PATH,
                                 {"--endpoints=127.0.0.1:1", "--command-timeout=1s",
                                  "--dial-timeout=1s", "endpoint", "health"},
                                 "", s.dir());
  CHECK(k.exit_code == e.exit_code);
  CHECK(k.err.find("127.0.0.1:1 is unhealthy: failed to commit proposal") != std::string::npos);
}

}  // namespace
