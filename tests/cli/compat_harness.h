// Runs etcdctl and kvctl as child processes against two identically prepared servers and
// normalizes what must differ between two clusters (IDs, ports, timings).
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

// The server binary: $KV_CLI_SERVER or /usr/bin/etcd.
std::filesystem::path ServerBinary();

// Runs `tool` (absolute path) with `args`, `stdin_text` on stdin and ETCDCTL_* variables
// removed (plus `env`), from `dir`. Kills it and fails the test after `timeout_ms`.
RunResult RunTool(const std::string& tool, const std::vector<std::string>& args,
                  const std::string& stdin_text, const std::filesystem::path& dir,
                  int timeout_ms = 30000,
                  const std::vector<std::pair<std::string, std::string>>& env = {});

// A single-member server (ServerBinary()) that passed the readiness probe.
std::unique_ptr<kvtest::EtcdLikeCluster> StartServer();

// Replaces cluster/member/lease IDs, ports, durations and sizes with placeholders.
std::string Normalize(const std::string& text);

// Two single-member clusters, A for etcdctl and B for kvctl.
class TwinServers {
 public:
  TwinServers();
  // Runs the same etcdctl command on both servers (preparation); requires success.
  void Prepare(const std::vector<std::string>& args, const std::string& stdin_text = "");
  RunResult Etcdctl(const std::vector<std::string>& args, const std::string& stdin_text = "");
  RunResult Kvctl(const std::vector<std::string>& args, const std::string& stdin_text = "");
  // Runs both and CHECKs equal normalized stdout and equal exit codes; returns kvctl's run.
  // `sort_lines` compares the lines (and comma lists in ETCD_INITIAL_CLUSTER) as sets, for
  // output ordered by randomly assigned member IDs.
  RunResult Compare(const std::vector<std::string>& args, const std::string& stdin_text = "",
                    bool sort_lines = false);

  const std::string& endpoint_a() const { return a_->endpoint(0); }
  const std::string& endpoint_b() const { return b_->endpoint(0); }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  kvtest::TempDir dir_{"kvctl-compat"};
  std::unique_ptr<kvtest::EtcdLikeCluster> a_;
  std::unique_ptr<kvtest::EtcdLikeCluster> b_;
};

}  // namespace clitest
