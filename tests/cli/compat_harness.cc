#include "tests/cli/compat_harness.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "proto/rpc.grpc.pb.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/process.h"

namespace clitest {

namespace {

std::string ReadFileText(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

int run_counter = 0;

}  // namespace

const char* KindName(ServerKind kind) { return kind == ServerKind::kKvd ? "kvd" : "etcd"; }

kvtest::ClusterOptions OptionsFor(ServerKind kind) {
  kvtest::ClusterOptions options;
  if (kind == ServerKind::kEtcd) {
    options.binary = "/usr/bin/etcd";
    options.member_count = 1;
    return options;
  }
  options.binary = KVD_BINARY;
  options.member_count = 3;
  // Fast timings (as tests/server's KvdOptions) so the first election is quick; the loaded
  // test machine gets a generous readiness bound.
  options.heartbeat_interval_ms = 50;
  options.election_timeout_ms = 500;
  options.ready_timeout = std::chrono::milliseconds(60000);
  return options;
}

std::string LeaderEndpoint(const kvtest::EtcdLikeCluster& cluster) {
  if (cluster.size() == 1) return cluster.endpoint(0);
  const auto deadline = std::chrono::steady_clock::now() + cluster.options().ready_timeout;
  // Bounded by the deadline; each round by the RPC deadlines.
  while (std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < cluster.size(); ++i) {
      auto stub = etcdserverpb::Maintenance::NewStub(kvtest::MakeChannel(cluster.endpoint(i)));
      grpc::ClientContext ctx;
      ctx.set_deadline(kvtest::DeadlineIn(std::chrono::milliseconds(2000)));
      etcdserverpb::StatusResponse resp;
      if (stub->Status(&ctx, {}, &resp).ok() && resp.leader() != 0 &&
          resp.leader() == resp.header().member_id()) {
        return cluster.endpoint(i);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("no leader in the cluster\n" << cluster.LogTails());
  return {};
}

RunResult RunTool(const std::string& tool, const std::vector<std::string>& args,
                  const std::string& stdin_text, const std::filesystem::path& dir, int timeout_ms,
                  const std::vector<std::pair<std::string, std::string>>& env) {
  int n = ++run_counter;
  auto base = dir / ("run" + std::to_string(n));
  std::ofstream(base.string() + ".in", std::ios::binary) << stdin_text;
  std::string cmd = "cd " + ShellQuote(dir.string()) + " && exec " + ShellQuote(tool);
  for (const auto& a : args) cmd += " " + ShellQuote(a);
  cmd += " <" + ShellQuote(base.string() + ".in") + " >" + ShellQuote(base.string() + ".out") +
         " 2>" + ShellQuote(base.string() + ".err");
  kvtest::ProcessOptions options;
  options.argv = {"/bin/sh", "-c", cmd};
  options.env = env;
  options.env_unset_prefixes = {"ETCDCTL_"};
  options.log_path = base.string() + ".log";
  kvtest::Process process(options);
  auto status = process.Wait(std::chrono::milliseconds(timeout_ms));
  if (!status) {
    process.Stop(std::chrono::milliseconds(100));
    FAIL("timed out: " << cmd);
  }
  RunResult r;
  r.out = ReadFileText(base.string() + ".out");
  r.err = ReadFileText(base.string() + ".err");
  r.exit_code = status->signaled ? 128 + status->value : status->value;
  return r;
}

std::string Normalize(const std::string& text) {
  static const std::vector<std::pair<std::regex, std::string>> kRules = {
      {std::regex(R"re("(cluster_id|member_id|ID|id|leader|memberID)":\d+)re"), "\"$1\":N"},
      {std::regex(R"re("(dbSize|dbSizeInUse)":\d+)re"), "\"$1\":N"},
      {std::regex(R"re(127\.0\.0\.1:\d+)re"), "127.0.0.1:PORT"},
      {std::regex(R"re(\b[0-9a-f]{10,16}\b)re"), "HEXID"},
      {std::regex(R"re([ \t]+HEXID\b)re"), " HEXID"},
      {std::regex(R"re(\d+(\.\d+)?(ns|µs|ms|s)\b)re"), "DURATION"},
      {std::regex(R"re(\d+(\.\d)? (B|kB|MB))re"), "SIZE"},
      {std::regex(R"re(-+\+)re"), "-+"},
      {std::regex(R"re( +\|)re"), " |"},
      {std::regex(R"re(\| +)re"), "| "},
  };
  std::string out = text;
  for (const auto& [re, replacement] : kRules) out = std::regex_replace(out, re, replacement);
  return out;
}

std::unique_ptr<kvtest::EtcdLikeCluster> StartServer(ServerKind kind) {
  return kvtest::StartEtcdLikeCluster(OptionsFor(kind));
}

TwinServers::TwinServers(ServerKind kind) : kind_(kind) {
  a_ = kvtest::StartEtcdLikeCluster(OptionsFor(kind));
  b_ = kvtest::StartEtcdLikeCluster(OptionsFor(kind));
  endpoint_a_ = LeaderEndpoint(*a_);
  endpoint_b_ = LeaderEndpoint(*b_);
}

void TwinServers::Prepare(const std::vector<std::string>& args, const std::string& stdin_text) {
  for (const std::string* ep : {&endpoint_a(), &endpoint_b()}) {
    std::vector<std::string> full{"--endpoints=" + *ep};
    full.insert(full.end(), args.begin(), args.end());
    RunResult r = RunTool("/usr/bin/etcdctl", full, stdin_text, dir());
    INFO("prepare: etcdctl " << args.front() << "\n" << r.err);
    REQUIRE(r.exit_code == 0);
  }
}

RunResult TwinServers::Etcdctl(const std::vector<std::string>& args,
                               const std::string& stdin_text) {
  std::vector<std::string> full{"--endpoints=" + endpoint_a()};
  full.insert(full.end(), args.begin(), args.end());
  return RunTool("/usr/bin/etcdctl", full, stdin_text, dir());
}

RunResult TwinServers::Kvctl(const std::vector<std::string>& args, const std::string& stdin_text) {
  std::vector<std::string> full{"--endpoints=" + endpoint_b()};
  full.insert(full.end(), args.begin(), args.end());
  return RunTool(KVCTL_PATH, full, stdin_text, dir());
}

namespace {

std::string SortedLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::string key = "ETCD_INITIAL_CLUSTER=\"";
    if (line.rfind(key, 0) == 0 && line.size() > key.size()) {
      std::string body = line.substr(key.size(), line.size() - key.size() - 1);
      std::vector<std::string> items;
      std::istringstream parts(body);
      std::string item;
      while (std::getline(parts, item, ',')) items.push_back(item);
      std::sort(items.begin(), items.end());
      line = key;
      for (const auto& i : items) line += i + ",";
    }
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

RunResult TwinServers::Compare(const std::vector<std::string>& args, const std::string& stdin_text,
                               bool sort_lines) {
  RunResult e = Etcdctl(args, stdin_text);
  RunResult k = Kvctl(args, stdin_text);
  std::string joined;
  for (const auto& a : args) joined += " " + a;
  INFO("server: " << KindName(kind_) << "\ncommand:" << joined << "\netcdctl stderr: " << e.err
                  << "\nkvctl stderr: " << k.err);
  if (sort_lines) {
    CHECK(SortedLines(Normalize(k.out)) == SortedLines(Normalize(e.out)));
  } else {
    CHECK(Normalize(k.out) == Normalize(e.out));
  }
  CHECK(k.exit_code == e.exit_code);
  return k;
}

RunResult SingleServer::Kvctl(std::vector<std::string> args, const std::string& in) {
  args.insert(args.begin(), "--endpoints=" + cluster->endpoint(0));
  return RunTool(KVCTL_PATH, args, in, dir.path());
}

void SingleServer::Ok(const std::vector<std::string>& args, const std::string& in) {
  RunResult r = Kvctl(args, in);
  INFO(args.front() << ": " << r.err);
  REQUIRE(r.exit_code == 0);
}

void SingleServer::Write(const std::string& name, const std::string& text) {
  std::ofstream(dir.path() / name, std::ios::binary) << text;
}

}  // namespace clitest
