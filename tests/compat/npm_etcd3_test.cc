// The npm etcd3 client (tests/node, pinned by package-lock.json, installed by scripts/setup.sh
// with `npm ci`) drives tests/node/etcd3_smoke.js against a 3-member kvd, the same script
// against a 3-member real etcd (so its expectations are etcd's), and against a port where
// nothing listens (so the script is shown to fail).
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

using std::chrono::milliseconds;

const std::filesystem::path kNodeDir = NODE_TEST_DIR;

struct NodeRun {
  std::string output;
  int exit_code = -1;
};

// Runs the smoke script against `hosts`; the script bounds itself to 60 s, this to 120 s.
NodeRun RunSmoke(const std::vector<std::string>& hosts) {
  kvtest::TempDir dir("npm-etcd3");
  kvtest::ProcessOptions o;
  o.argv = {"/usr/bin/env", "node", (kNodeDir / "etcd3_smoke.js").string()};
  o.argv.insert(o.argv.end(), hosts.begin(), hosts.end());
  o.log_path = dir.Sub("node.log");
  kvtest::Process p(o);
  auto status = p.Wait(milliseconds(120000));
  NodeRun r;
  if (!status) {
    p.Stop(milliseconds(1000));
  } else {
    r.exit_code = status->signaled ? 128 + status->value : status->value;
  }
  std::ifstream in(o.log_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

void RequireInstalled() {
  INFO("tests/node/node_modules/etcd3 is missing: run scripts/setup.sh (npm ci in tests/node)");
  REQUIRE(std::filesystem::exists(kNodeDir / "node_modules" / "etcd3" / "package.json"));
}

kvtest::ClusterOptions Options(const std::filesystem::path& binary) {
  kvtest::ClusterOptions o;
  o.binary = binary;
  o.member_count = 3;
  o.ready_timeout = milliseconds(60000);
  return o;
}

}  // namespace

TEST_CASE("npm etcd3: get, put, delete, prefix, watch, lease, lock, election on kvd",
          "[compat][npm]") {
  // Goal: every step of etcd3_smoke.js passes on a 3-member kvd.
  RequireInstalled();
  auto cluster = kvtest::StartEtcdLikeCluster(Options(KVD_BINARY));
  const NodeRun r = RunSmoke(cluster->endpoints());
  INFO(r.output << "\nkvd logs:\n" << cluster->LogTails());
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("ok all") != std::string::npos);
}

TEST_CASE("npm etcd3: the smoke script passes on etcd and fails without a server",
          "[compat][npm]") {
  // Goal: the script's expectations are etcd 3.4.23's (it passes there), and it reports a
  // failure (exit 1, a FAIL line) when the calls cannot succeed.
  RequireInstalled();
  {
    auto cluster = kvtest::StartEtcdLikeCluster(Options("/usr/bin/etcd"));
    const NodeRun r = RunSmoke(cluster->endpoints());
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("ok all") != std::string::npos);
  }
  const NodeRun r = RunSmoke({"127.0.0.1:" + std::to_string(kvtest::PickFreePort())});
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("FAIL put and get") != std::string::npos);
}
