// Runs etcdctl and kvctl as child processes against two identically prepared servers and
// normalizes what must differ between two clusters (IDs, ports, timings). Every compat test
// runs twice, once per server kind: a single real etcd 3.4.23 (/usr/bin/etcd) and a 3-member
// kvd cluster (build/server/kvd), so that CI covers kvctl against both.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace clitest {

struct RunResult {
  std::string out;
  std::string err;
  int exit_code = -1;
};

enum class ServerKind { kEtcd, kKvd };

// "etcd" or "kvd".
const char* KindName(ServerKind kind);

// The cluster a test of `kind` starts: etcd with 1 member, kvd with 3 members (fast election
// timings), both on free 127.0.0.1 ports.
kvtest::ClusterOptions OptionsFor(ServerKind kind);

// The endpoint of the member that is the leader right now (the first member for a single
// member). Tests talk to it so that "is leader" and similar columns are the same in both
// clusters. Bounded by the cluster's ready timeout.
std::string LeaderEndpoint(const kvtest::EtcdLikeCluster& cluster);

// Defines a test body run once per server kind, as two test cases "<title> [etcd]" and
// "<title> [kvd]" (tags [compat][etcd] / [compat][kvd]), so that CTest lists and times them
// separately. The body receives `const clitest::ServerKind kind`.
#define CLI_COMPAT_TEST(fn, title)                                                 \
  static void fn(clitest::ServerKind kind);                                        \
  TEST_CASE(title " [etcd]", "[compat][etcd]") { fn(clitest::ServerKind::kEtcd); } \
  TEST_CASE(title " [kvd]", "[compat][kvd]") { fn(clitest::ServerKind::kKvd); }    \
  static void fn(const clitest::ServerKind kind)

// Runs `tool` (absolute path) with `args`, `stdin_text` on stdin and ETCDCTL_* variables
// removed (plus `env`), from `dir`. Kills it and fails the test after `timeout_ms`.
RunResult RunTool(const std::string& tool, const std::vector<std::string>& args,
                  const std::string& stdin_text, const std::filesystem::path& dir,
                  int timeout_ms = 30000,
                  const std::vector<std::pair<std::string, std::string>>& env = {});

// A server of `kind` (OptionsFor) that passed the readiness probe.
std::unique_ptr<kvtest::EtcdLikeCluster> StartServer(ServerKind kind);

// Replaces cluster/member/lease IDs, ports, durations and sizes with placeholders.
std::string Normalize(const std::string& text);

// Two identical clusters of `kind`, A for etcdctl and B for kvctl; each tool talks to its
// cluster's leader.
class TwinServers {
 public:
  explicit TwinServers(ServerKind kind);
  // Runs the same etcdctl command on both servers (preparation); requires success.
  void Prepare(const std::vector<std::string>& args, const std::string& stdin_text = "");
  RunResult Etcdctl(const std::vector<std::string>& args, const std::string& stdin_text = "");
  RunResult Kvctl(const std::vector<std::string>& args, const std::string& stdin_text = "");
  // Runs both and CHECKs equal normalized stdout and equal exit codes; returns kvctl's run.
  // `sort_lines` compares the lines (and comma lists in ETCD_INITIAL_CLUSTER) as sets, for
  // output ordered by randomly assigned member IDs.
  RunResult Compare(const std::vector<std::string>& args, const std::string& stdin_text = "",
                    bool sort_lines = false);

  const std::string& endpoint_a() const { return endpoint_a_; }
  const std::string& endpoint_b() const { return endpoint_b_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  ServerKind kind() const { return kind_; }
  kvtest::EtcdLikeCluster& cluster_b() { return *b_; }

 private:
  ServerKind kind_;
  kvtest::TempDir dir_{"kvctl-compat"};
  std::string endpoint_a_;
  std::string endpoint_b_;
  std::unique_ptr<kvtest::EtcdLikeCluster> a_;
  std::unique_ptr<kvtest::EtcdLikeCluster> b_;
};

// One cluster of `kind` and a temp dir for kvctl runs and files.
struct SingleServer {
  kvtest::TempDir dir{"kvctl-cc"};
  std::unique_ptr<kvtest::EtcdLikeCluster> cluster;
  explicit SingleServer(ServerKind kind) : cluster(StartServer(kind)) {}
  // kvctl with --endpoints set to member 0.
  RunResult Kvctl(std::vector<std::string> args, const std::string& in = "");
  // Kvctl, REQUIREd to succeed.
  void Ok(const std::vector<std::string>& args, const std::string& in = "");
  // Writes `text` to `name` in the temp dir (kvctl's working directory).
  void Write(const std::string& name, const std::string& text);
};

}  // namespace clitest
