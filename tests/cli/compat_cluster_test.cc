// etcdctl vs kvctl on two identically prepared servers: lease, member, endpoint, snapshot,
// defrag, alarm and move-leader commands.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

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

CLI_COMPAT_TEST(LeaseCommands, "kvctl lease commands match etcdctl") {
  // Goal: grant/revoke/timetolive/list/keep-alive --once output (IDs normalized) and errors.
  TwinServers s(kind);
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

// `member list -w json` on both servers with the members sorted by name (their order follows
// random IDs).
void CompareMemberJson(TwinServers& s) {
  RunResult e = s.Etcdctl({"member", "list", "-w", "json"});
  RunResult k = s.Kvctl({"member", "list", "-w", "json"});
  INFO(e.err << "\n" << k.err);
  REQUIRE(e.exit_code == 0);
  REQUIRE(k.exit_code == 0);
  auto canonical = [](const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text);
    auto& members = j["members"];
    std::sort(members.begin(), members.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
      return a.value("name", "") < b.value("name", "");
    });
    return clitest::Normalize(j.dump());
  };
  CHECK(canonical(k.out) == canonical(e.out));
}

CLI_COMPAT_TEST(MemberCommands, "kvctl member commands match etcdctl") {
  // Goal: member list in every format, add --learner / update / promote / remove output and
  // their errors (IDs and ports normalized).
  TwinServers s(kind);
  // Members are listed by their random IDs, so a multi-member list is compared as a set.
  s.Compare({"member", "list"}, "", true);
  s.Compare({"member", "list", "-w", "table"}, "", true);
  CompareMemberJson(s);
  // An add (learner too) needs every voter connected for a while: until then the server says
  // "unhealthy cluster". Probe both twins with an existing peer URL, refused either way.
  for (bool kvctl : {false, true}) {
    auto run = [&](const std::vector<std::string>& args) {
      return kvctl ? s.Kvctl(args) : s.Etcdctl(args);
    };
    RunResult list = run({"member", "list", "-w", "json"});
    REQUIRE(list.exit_code == 0);
    const std::string url =
        nlohmann::json::parse(list.out)["members"][0]["peerURLs"][0].get<std::string>();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      RunResult probe = run({"member", "add", "probe", "--learner", "--peer-urls=" + url});
      REQUIRE(probe.exit_code != 0);
      if (probe.err.find("unhealthy cluster") == std::string::npos) break;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
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

// `snapshot status` of the snapshot.db that kvctl saved from server B: the figures on kvd (the
// revision is the server's), a clear refusal of etcd's bbolt format.
void CheckSnapshotStatus(TwinServers& s) {
  RunResult status = s.Kvctl({"snapshot", "status", "snap.db"});
  if (s.kind() == clitest::ServerKind::kEtcd) {
    CHECK(status.exit_code == 3);
    CHECK(status.err ==
          "Error: snap.db: not a kvd snapshot (etcd's bbolt snapshots are not supported; use "
          "etcdctl snapshot status)\n");
    return;
  }
  RunResult get = s.Kvctl({"get", "a", "-w", "json"});
  std::smatch rev;
  REQUIRE(std::regex_search(get.out, rev, std::regex(R"re("revision":(\d+))re")));
  INFO(status.err);
  REQUIRE(status.exit_code == 0);
  // hash, revision, total keys, total size: "%x, %d, %d, <humanized bytes>".
  std::smatch m;
  REQUIRE(std::regex_match(
      status.out, m, std::regex(R"re(([0-9a-f]{1,8}), (\d+), (\d+), \d+(\.\d)? (B|kB|MB)\n)re")));
  CHECK(m[2].str() == rev[1].str());
  CHECK(std::stoll(m[3].str()) >= 2);
  RunResult json = s.Kvctl({"snapshot", "status", "snap.db", "-w", "json"});
  CHECK(json.out.find("{\"hash\":" + std::to_string(std::stoull(m[1].str(), nullptr, 16)) +
                      ",\"revision\":" + rev[1].str() + ",\"totalKey\":" + m[3].str() +
                      ",\"totalSize\":") == 0);
  RunResult table = s.Kvctl({"snapshot", "status", "snap.db", "-w", "table"});
  CHECK(table.out.find("| REVISION | TOTAL KEYS | TOTAL SIZE |") != std::string::npos);
  // A damaged copy is refused with the reason, not reported with wrong figures.
  std::string bytes;
  {
    std::ifstream in(s.dir() / "snap.db", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  REQUIRE(bytes.size() > 40);
  bytes[20] = static_cast<char>(bytes[20] ^ 0x55);
  std::ofstream(s.dir() / "bad.db", std::ios::binary) << bytes;
  RunResult bad = s.Kvctl({"snapshot", "status", "bad.db"});
  CHECK(bad.exit_code == 3);
  CHECK(bad.err.find("Error: bad.db: ") == 0);
  CHECK(s.Kvctl({"snapshot", "status", "missing.db"}).exit_code == 1);
}

// Several endpoints given in a scrambled order, one of them dead: kvctl queries them in
// parallel yet prints them in the order given, and names the dead one.
void CheckEndpointOrder(TwinServers& s) {
  std::vector<std::string> order = s.cluster_b().endpoints();
  std::reverse(order.begin(), order.end());
  order.insert(order.begin() + 1, "127.0.0.1:1");
  std::string flag = "--endpoints=";
  for (std::size_t i = 0; i < order.size(); ++i) flag += (i == 0 ? "" : ",") + order[i];
  auto endpoints_in = [](const std::string& text) {
    std::vector<std::string> found;
    std::regex ep(R"re(127\.0\.0\.1:\d+)re");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), ep); it != std::sregex_iterator();
         ++it) {
      found.push_back(it->str());
    }
    return found;
  };
  std::vector<std::string> live = order;
  live.erase(live.begin() + 1);
  for (const char* cmd : {"status", "hashkv"}) {
    RunResult r = clitest::RunTool(
        KVCTL_PATH, {flag, "--dial-timeout=1s", "--command-timeout=2s", "endpoint", cmd}, "",
        s.dir());
    INFO("endpoint " << cmd << "\n" << r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(endpoints_in(r.out) == live);
    CHECK(r.err.find(" of endpoint 127.0.0.1:1 (context deadline exceeded)\n") !=
          std::string::npos);
  }
  RunResult h = clitest::RunTool(
      KVCTL_PATH, {flag, "--dial-timeout=1s", "--command-timeout=2s", "endpoint", "health"}, "",
      s.dir());
  CHECK(h.exit_code == 1);
  CHECK(endpoints_in(h.out + h.err).size() == order.size());
  CHECK(h.err.find("127.0.0.1:1 is unhealthy") != std::string::npos);
}

CLI_COMPAT_TEST(MaintenanceCommands,
                "kvctl endpoint, defrag, alarm, snapshot and move-leader match etcdctl") {
  // Goal: per-endpoint maintenance commands with --cluster and every format, and errors.
  TwinServers s(kind);
  s.Prepare({"put", "a", "1"});
  s.Prepare({"put", "b", "2"});
  for (const char* w : {"simple", "json", "table"}) {
    s.Compare({"endpoint", "status", "-w", w});
    s.Compare({"endpoint", "status", "--cluster", "-w", w}, "", true);
    s.Compare({"endpoint", "hashkv", "-w", w});
    s.Compare({"endpoint", "hashkv", "--cluster", "--rev=2", "-w", w}, "", true);
    s.Compare({"endpoint", "health", "-w", w});
    s.Compare({"endpoint", "health", "--cluster", "-w", w}, "", true);
    s.Compare({"alarm", "list", "-w", w});
    s.Compare({"alarm", "disarm", "-w", w});
  }
  CheckEndpointOrder(s);
  s.Compare({"defrag"});
  s.Compare({"defrag", "--cluster"}, "", true);
  s.Compare({"move-leader", "1234"});
  s.Compare({"move-leader"});
  s.Compare({"move-leader", "zz"});
  s.Compare({"snapshot", "save"});
  RunResult snap = s.Compare({"snapshot", "save", "snap.db"});
  CHECK(snap.out == "Snapshot saved at snap.db\n");
  CHECK(std::filesystem::file_size(s.dir() / "snap.db") % 512 == 32);
  CHECK(!std::filesystem::exists(s.dir() / "snap.db.part"));
  s.Compare({"snapshot", "status"});
  CheckSnapshotStatus(s);
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
