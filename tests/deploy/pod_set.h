// PodSet: plays a kvd StatefulSet on one machine without Kubernetes. Pod <ordinal> runs
// deploy/kubernetes/entrypoint.sh with KVD_HOSTNAME=kvd-<ordinal>, and its "DNS name" is the
// loopback address 127.0.0.<11 + ordinal> (KVD_PEER_HOST_FORMAT / KVD_HOST_OFFSET), so every
// pod listens on the same ports at its own address, as pods do, with no /etc/hosts edits.
// The server and CLI are kvd/kvctl or, to check the entrypoint's logic against the reference,
// etcd/etcdctl 3.4.23 (the entrypoint only uses etcd's flags and etcdctl's commands).
//
// Not thread-safe; one owner thread. Destruction kills every pod and removes the data.
#pragma once

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace deploytest {

struct PodSetOptions {
  std::string server_binary;  // kvd or /usr/bin/etcd
  std::string ctl_binary;     // kvctl or /usr/bin/etcdctl
  std::string entrypoint;     // deploy/kubernetes/entrypoint.sh
  int core_replicas = 3;
  // Extra server flags (after the entrypoint's own).
  std::vector<std::string> server_args = {"--heartbeat-interval=50", "--election-timeout=500"};
};

class PodSet {
 public:
  static constexpr int kPodsMax = 8;

  explicit PodSet(PodSetOptions options) : options_(std::move(options)), dir_("kvd-sts") {
    const std::vector<std::uint16_t> ports = kvtest::PickFreePorts(3);
    client_port_ = ports[0];
    peer_port_ = ports[1];
    metrics_port_ = ports[2];
    pods_.resize(kPodsMax);
  }

  static std::string Host(int ordinal) { return "127.0.0." + std::to_string(11 + ordinal); }
  std::string Endpoint(int ordinal) const {
    return Host(ordinal) + ":" + std::to_string(client_port_);
  }
  std::string DataDir(int ordinal) const {
    return dir_.Sub("pod-" + std::to_string(ordinal) + "/data");
  }
  uint16_t metrics_port() const { return metrics_port_; }

  // The environment the StatefulSet gives the container, plus the test's overrides.
  std::vector<std::pair<std::string, std::string>> Env(int ordinal) const {
    return {{"KVD_HOSTNAME", "kvd-" + std::to_string(ordinal)},
            {"KVD_REPLICAS", std::to_string(options_.core_replicas)},
            {"KVD_PEER_HOST_FORMAT", "127.0.0.%d"},
            {"KVD_HOST_OFFSET", "11"},
            {"KVD_LISTEN_HOST", Host(ordinal)},
            {"KVD_CLIENT_PORT", std::to_string(client_port_)},
            {"KVD_PEER_PORT", std::to_string(peer_port_)},
            {"KVD_METRICS_PORT", std::to_string(metrics_port_)},
            {"KVD_DATA_DIR", DataDir(ordinal)},
            {"KVD_BIN", options_.server_binary},
            {"KVCTL_BIN", options_.ctl_binary},
            {"KVD_JOIN_TIMEOUT_SECONDS", "60"},
            {"KVD_PROMOTE_TIMEOUT_SECONDS", "120"},
            {"ETCDCTL_API", "3"}};
  }

  // Starts pod `ordinal` (the container's main process: the entrypoint, which execs the server).
  void Start(int ordinal) {
    kvtest::ProcessOptions p;
    p.argv = {"/bin/bash", options_.entrypoint, "run"};
    p.argv.insert(p.argv.end(), options_.server_args.begin(), options_.server_args.end());
    p.env = Env(ordinal);
    p.env_unset_prefixes = {"ETCD_", "ETCDCTL_", "KVD_"};
    p.log_path = dir_.Sub("pod-" + std::to_string(ordinal) + ".log");
    pods_.at(static_cast<size_t>(ordinal)) = std::make_unique<kvtest::Process>(p);
  }

  // Runs the preStop hook of pod `ordinal` to completion; returns its exit status.
  kvtest::ExitStatus PreStop(int ordinal) {
    kvtest::ProcessOptions p;
    p.argv = {"/bin/bash", options_.entrypoint, "pre-stop"};
    p.env = Env(ordinal);
    p.env_unset_prefixes = {"ETCD_", "ETCDCTL_", "KVD_"};
    p.log_path = dir_.Sub("pod-" + std::to_string(ordinal) + "-prestop.log");
    kvtest::Process hook(p);
    auto status = hook.Wait(std::chrono::seconds(60));
    if (!status) {
      hook.Kill(SIGKILL);
      FAIL("preStop hook of pod " << ordinal << " hung:\n" << hook.LogTail());
    }
    INFO("preStop log:\n" << hook.LogTail());
    return *status;
  }

  // SIGTERM (as the kubelet sends after preStop), SIGKILL after the grace period.
  kvtest::ExitStatus Stop(int ordinal) {
    auto& pod = pods_.at(static_cast<size_t>(ordinal));
    REQUIRE(pod);
    kvtest::ExitStatus status = pod->Stop(std::chrono::seconds(10));
    pod.reset();
    return status;
  }

  bool Running(int ordinal) {
    auto& pod = pods_.at(static_cast<size_t>(ordinal));
    return pod && pod->Running();
  }

  std::string LogTail(int ordinal) const {
    const auto& pod = pods_.at(static_cast<size_t>(ordinal));
    return pod ? pod->LogTail(20000) : std::string("(not running)");
  }

  // Waits (bounded) until pod `ordinal` answers Status with a leader and a linearizable Range.
  void WaitReady(int ordinal, std::chrono::seconds timeout = std::chrono::seconds(90)) {
    const kvtest::ReadyProbe probe = kvtest::EtcdReadyProbe();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string why;
    while (std::chrono::steady_clock::now() < deadline) {
      if (probe(Endpoint(ordinal), &why)) return;
      if (!Running(ordinal)) FAIL("pod " << ordinal << " exited:\n" << LogTail(ordinal));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    FAIL("pod " << ordinal << " not ready after " << timeout.count() << " s (" << why << "):\n"
                << LogTail(ordinal));
  }

  // The member list as pod `ordinal` answers it (empty on failure).
  std::vector<etcdserverpb::Member> Members(int ordinal) const {
    auto stub = etcdserverpb::Cluster::NewStub(kvtest::MakeChannel(Endpoint(ordinal)));
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(std::chrono::seconds(5)));
    etcdserverpb::MemberListResponse resp;
    if (!stub->MemberList(&ctx, {}, &resp).ok()) return {};
    return {resp.members().begin(), resp.members().end()};
  }

  // Voting members (not learners) with a name, as pod `ordinal` sees them.
  int StartedVoters(int ordinal) const {
    int n = 0;
    for (const auto& m : Members(ordinal)) n += (!m.islearner() && !m.name().empty()) ? 1 : 0;
    return n;
  }

  grpc::Status Put(int ordinal, const std::string& key, const std::string& value) const {
    auto stub = etcdserverpb::KV::NewStub(kvtest::MakeChannel(Endpoint(ordinal)));
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(std::chrono::seconds(10)));
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    etcdserverpb::PutResponse resp;
    return stub->Put(&ctx, req, &resp);
  }

  // The value of `key` served by pod `ordinal` from its own store (serializable), or nullopt.
  std::optional<std::string> LocalGet(int ordinal, const std::string& key) const {
    auto stub = etcdserverpb::KV::NewStub(kvtest::MakeChannel(Endpoint(ordinal)));
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(std::chrono::seconds(5)));
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_serializable(true);
    etcdserverpb::RangeResponse resp;
    if (!stub->Range(&ctx, req, &resp).ok() || resp.kvs_size() != 1) return std::nullopt;
    return resp.kvs(0).value();
  }

 private:
  PodSetOptions options_;
  kvtest::TempDir dir_;
  std::uint16_t client_port_ = 0;
  std::uint16_t peer_port_ = 0;
  std::uint16_t metrics_port_ = 0;
  std::vector<std::unique_ptr<kvtest::Process>> pods_;
};

// Polls `cond` every 200 ms for at most `timeout`.
template <typename F>
bool Eventually(F cond, std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return cond();
}

}  // namespace deploytest
