// Differential test: the etcdctl 3.4.23 script in etcdctl_script.txt runs line by line against
// a real 3-member etcd cluster and a 3-member kvd cluster (both on loopback, temp data dirs);
// each line's stdout, stderr and exit code must match after normalization. The script format
// is described at the top of etcdctl_script.txt.
//
// Both clusters start empty and run the same commands in the same order, so revisions agree
// and are compared as they are; only what legitimately differs between two clusters (IDs,
// ports, raft terms and indexes, sizes, durations, hashes) is normalized.
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "tests/compat/script.h"
#include "tests/support/cluster.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

using compattest::ScriptLine;
using std::chrono::milliseconds;

// Upper bound for one etcdctl run, and for a long-running one to print its expected lines.
constexpr milliseconds kCommandTimeout{30000};
constexpr milliseconds kStopGrace{3000};

std::string ReadText(const std::filesystem::path& p) {
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

std::size_t CountLines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n' ? 1 : 0;
  return n;
}

struct Output {
  std::string out;
  std::string err;
  int exit_code = -1;
  bool timed_out = false;  // a plain command that did not exit, or too few lines printed
};

// One side of the comparison: a cluster, a work dir for etcdctl (snapshot files land there),
// the variables captured by `set=` and the background jobs started by `bg=`.
class Target {
 public:
  Target(std::string name, kvtest::ClusterOptions options)
      : name_(std::move(name)), dir_("difftest-" + name_) {
    cluster_ = kvtest::StartEtcdLikeCluster(std::move(options));
  }

  const std::string& name() const { return name_; }
  kvtest::EtcdLikeCluster& cluster() { return *cluster_; }

  // Runs `line` (a command, not a directive) and returns what it printed. Background jobs
  // return an empty Output; their result comes from Wait.
  Output Run(const ScriptLine& line) {
    const std::string text = Substitute(line.command);
    std::vector<std::string> args = compattest::SplitArgs(text);
    std::string endpoints = JoinEndpoints();
    if (line.Has("ep")) endpoints = cluster_->endpoint(std::stoul(line.Get("ep")));
    const int n = ++runs_;
    const auto base = dir_.path() / ("run" + std::to_string(n));
    std::ofstream(base.string() + ".in", std::ios::binary) << line.stdin_text;
    std::string cmd = "cd " + ShellQuote(dir_.str()) + " && exec /usr/bin/etcdctl " +
                      ShellQuote("--endpoints=" + endpoints);
    for (const auto& a : args) cmd += " " + ShellQuote(a);
    cmd += " <" + ShellQuote(base.string() + ".in") + " >" + ShellQuote(base.string() + ".out") +
           " 2>" + ShellQuote(base.string() + ".err");
    kvtest::ProcessOptions po;
    po.argv = {"/bin/sh", "-c", cmd};
    po.env = {{"ETCDCTL_API", "3"}};
    po.env_unset_prefixes = {"ETCDCTL_"};
    po.log_path = base.string() + ".log";
    Job job{std::make_unique<kvtest::Process>(po), base,
            line.Has("lines") ? std::stoul(line.Get("lines")) : std::size_t{0}};
    if (line.Has("bg")) {
      jobs_[line.Get("bg")] = std::move(job);
      return Output{};
    }
    Output o = Finish(job);
    if (line.Has("set")) Capture(line.Get("set"), o.out);
    return o;
  }

  // Ends the background job `name` (see Finish) and returns its output.
  Output Wait(const std::string& name) {
    auto it = jobs_.find(name);
    if (it == jobs_.end()) FAIL("no background job named " << name);
    Output o = Finish(it->second);
    jobs_.erase(it);
    return o;
  }

 private:
  struct Job {
    std::unique_ptr<kvtest::Process> process;
    std::filesystem::path base;
    std::size_t lines = 0;  // 0: runs to completion; else stopped once it printed this many
  };

  // A plain job must exit within kCommandTimeout. A `lines` job is stopped with SIGTERM as
  // soon as its stdout has that many lines (or kCommandTimeout passed: then timed_out).
  static Output Finish(Job& job) {
    Output o;
    const auto out_path = job.base.string() + ".out";
    if (job.lines == 0) {
      auto status = job.process->Wait(kCommandTimeout);
      if (!status) {
        o.timed_out = true;
        job.process->Stop(milliseconds(100));
      } else {
        o.exit_code = status->signaled ? 128 + status->value : status->value;
      }
    } else {
      const auto deadline = std::chrono::steady_clock::now() + kCommandTimeout;
      while (CountLines(ReadText(out_path)) < job.lines) {
        if (!job.process->Running()) break;
        if (std::chrono::steady_clock::now() > deadline) {
          o.timed_out = true;
          break;
        }
        std::this_thread::sleep_for(milliseconds(50));
      }
      const kvtest::ExitStatus status = job.process->Stop(kStopGrace);
      // A job that exited by itself (an error) reports its code; a stopped one reports "stopped"
      // the same way for both sides.
      o.exit_code = status.KilledBy(SIGTERM) ? -15 : (status.signaled ? 128 : 0) + status.value;
    }
    o.out = ReadText(out_path);
    o.err = ReadText(job.base.string() + ".err");
    return o;
  }

  // `spec` is NAME:REGEX; group 1 of the first match in `out` becomes $NAME.
  void Capture(const std::string& spec, const std::string& out) {
    const auto colon = spec.find(':');
    REQUIRE(colon != std::string::npos);
    std::smatch m;
    const std::regex re(spec.substr(colon + 1));
    INFO(name_ << ": set=" << spec << " found nothing in:\n" << out);
    REQUIRE(std::regex_search(out, m, re));
    vars_[spec.substr(0, colon)] = m[1].str();
  }

  std::string JoinEndpoints() const {
    std::string s;
    for (const auto& ep : cluster_->endpoints()) s += (s.empty() ? "" : ",") + ep;
    return s;
  }

  // The leader's member ID and one follower's, in hex, as this cluster's members report them
  // through Status (waits for all members to agree on a leader, bounded).
  std::pair<std::string, std::string> LeaderAndFollower() {
    const auto deadline = std::chrono::steady_clock::now() + kCommandTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<std::uint64_t> ids;
      std::uint64_t leader = 0;
      bool agreed = true;
      for (const auto& ep : cluster_->endpoints()) {
        auto stub = etcdserverpb::Maintenance::NewStub(kvtest::MakeChannel(ep));
        grpc::ClientContext ctx;
        ctx.set_deadline(kvtest::DeadlineIn(milliseconds(2000)));
        etcdserverpb::StatusResponse resp;
        if (!stub->Status(&ctx, etcdserverpb::StatusRequest(), &resp).ok() || resp.leader() == 0 ||
            (leader != 0 && resp.leader() != leader)) {
          agreed = false;
          break;
        }
        leader = resp.leader();
        ids.push_back(resp.header().member_id());
      }
      if (agreed) {
        for (std::uint64_t id : ids) {
          if (id != leader) return {Hex(leader), Hex(id)};
        }
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    FAIL(name_ << ": members did not agree on a leader");
    return {};
  }

  static std::string Hex(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
    return buf;
  }

  // Replaces $NAME with a captured variable, $EP0.. with member endpoints, $ENDPOINTS with all
  // of them, $LEADER_ID / $FOLLOWER_ID with member IDs in hex.
  std::string Substitute(const std::string& text) {
    std::map<std::string, std::string> vars = vars_;
    for (std::size_t i = 0; i < cluster_->size(); ++i) {
      vars["EP" + std::to_string(i)] = cluster_->endpoint(i);
    }
    vars["ENDPOINTS"] = JoinEndpoints();
    if (text.find("$LEADER_ID") != std::string::npos ||
        text.find("$FOLLOWER_ID") != std::string::npos) {
      auto [leader, follower] = LeaderAndFollower();
      vars["LEADER_ID"] = leader;
      vars["FOLLOWER_ID"] = follower;
    }
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
      if (text[i] == '$') {
        std::size_t j = i + 1;
        while (j < text.size() &&
               (std::isalnum(static_cast<unsigned char>(text[j])) != 0 || text[j] == '_')) {
          ++j;
        }
        const std::string var = text.substr(i + 1, j - i - 1);
        auto it = vars.find(var);
        if (it == vars.end()) FAIL(name_ << ": unknown variable $" << var << " in: " << text);
        out += it->second;
        i = j;
      } else {
        out += text[i++];
      }
    }
    return out;
  }

  std::string name_;
  kvtest::TempDir dir_;
  std::unique_ptr<kvtest::EtcdLikeCluster> cluster_;
  std::map<std::string, std::string> vars_;
  std::map<std::string, Job> jobs_;
  int runs_ = 0;
};

kvtest::ClusterOptions Options(const std::filesystem::path& binary) {
  kvtest::ClusterOptions o;
  o.binary = binary;
  o.member_count = 3;
  // The same timings for both: the minimum lease TTL (1.5 election timeouts) shows in outputs.
  o.heartbeat_interval_ms = 100;
  o.election_timeout_ms = 1000;
  o.ready_timeout = milliseconds(60000);
  return o;
}

// The side-by-side report printed for a mismatching line.
std::string Report(const ScriptLine& line, const Output& e, const Output& k) {
  std::ostringstream s;
  s << "etcdctl_script.txt:" << line.lineno << ": " << line.raw << "\n"
    << "---- etcd (exit " << e.exit_code << (e.timed_out ? ", TIMED OUT" : "") << ") stdout:\n"
    << e.out << "---- etcd stderr:\n"
    << e.err << "---- kvd (exit " << k.exit_code << (k.timed_out ? ", TIMED OUT" : "")
    << ") stdout:\n"
    << k.out << "---- kvd stderr:\n"
    << k.err << "---- normalized etcd:\n"
    << compattest::NormalizeOutput(line, e.out, e.err) << "---- normalized kvd:\n"
    << compattest::NormalizeOutput(line, k.out, k.err);
  return s.str();
}

void CompareLine(const ScriptLine& line, const Output& e, const Output& k) {
  const std::string ne = compattest::NormalizeOutput(line, e.out, e.err);
  const std::string nk = compattest::NormalizeOutput(line, k.out, k.err);
  const bool same = ne == nk && e.exit_code == k.exit_code && !e.timed_out && !k.timed_out;
  INFO(Report(line, e, k));
  // DIFFTEST_VERBOSE=1 prints every line's outputs, matching or not.
  if (const char* v = std::getenv("DIFFTEST_VERBOSE"); v != nullptr && *v == '1') {
    WARN(Report(line, e, k));
  }
  if (line.Has("known")) {
    // A documented difference (the tag says why): the line stays in the script and must still
    // differ, so the tag is removed once kvd matches.
    CHECK(!e.timed_out);
    CHECK_FALSE(same);
  } else {
    CHECK(same);
  }
}

}  // namespace

TEST_CASE("etcdctl script: etcd and kvd print the same", "[compat][difftest]") {
  // Goal: every command of etcdctl_script.txt prints the same (normalized) stdout and stderr
  // and exits with the same code on a 3-member etcd and a 3-member kvd.
  const auto script = compattest::ParseScript(ReadText(DIFFTEST_SCRIPT));
  REQUIRE(script.size() > 50);
  Target etcd("etcd", Options("/usr/bin/etcd"));
  Target kvd("kvd", Options(KVD_BINARY));
  int compared = 0;
  int skipped = 0;
  for (const ScriptLine& line : script) {
    if (line.Has("skip")) {
      ++skipped;
      continue;
    }
    if (!line.wait_job.empty()) {
      CompareLine(line, etcd.Wait(line.wait_job), kvd.Wait(line.wait_job));
      ++compared;
      continue;
    }
    const Output e = etcd.Run(line);
    const Output k = kvd.Run(line);
    if (!line.Has("bg")) {
      CompareLine(line, e, k);
      ++compared;
    }
  }
  WARN("compared " << compared << " lines, skipped " << skipped);
}
