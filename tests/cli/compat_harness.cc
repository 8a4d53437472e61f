#include "tests/cli/compat_harness.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

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

std::filesystem::path ServerBinary() {
  const char* env = std::getenv("KV_CLI_SERVER");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env)
                                        : std::filesystem::path("/usr/bin/etcd");
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

std::unique_ptr<kvtest::EtcdLikeCluster> StartServer() {
  kvtest::ClusterOptions options;
  options.binary = ServerBinary();
  return kvtest::StartEtcdLikeCluster(options);
}

TwinServers::TwinServers() {
  kvtest::ClusterOptions options;
  options.binary = ServerBinary();
  a_ = kvtest::StartEtcdLikeCluster(options);
  b_ = kvtest::StartEtcdLikeCluster(options);
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
  INFO("command:" << joined << "\netcdctl stderr: " << e.err << "\nkvctl stderr: " << k.err);
  if (sort_lines) {
    CHECK(SortedLines(Normalize(k.out)) == SortedLines(Normalize(e.out)));
  } else {
    CHECK(Normalize(k.out) == Normalize(e.out));
  }
  CHECK(k.exit_code == e.exit_code);
  return k;
}

}  // namespace clitest
