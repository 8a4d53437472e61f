// EtcdLikeCluster: N members of a server that takes etcd's command-line flags (the real
// /usr/bin/etcd, or our kvd), on 127.0.0.1 with free ports and one temp dir, so the same test
// can drive either. This part needs no gRPC: readiness is decided by a caller-supplied probe
// (kv_test_support_grpc provides one that issues Status and Range RPCs).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace kvtest {

struct ClusterOptions {
  std::filesystem::path binary = "/usr/bin/etcd";
  std::size_t member_count = 1;  // 1 to 9
  // Passed as --heartbeat-interval / --election-timeout (milliseconds, etcd's defaults).
  int heartbeat_interval_ms = 100;
  int election_timeout_ms = 1000;
  // Upper bound on the wait for every member to pass the readiness probe.
  std::chrono::milliseconds ready_timeout{30000};
  std::string cluster_token = "kvtest-cluster";
  // Appended to every member's command line.
  std::vector<std::string> extra_args;
  // Optional: member i's command line also gets member_extra_args[i] (e.g. its own metrics
  // port). Empty, or member_count entries.
  std::vector<std::vector<std::string>> member_extra_args;
  // Set in every member's environment (inherited ETCD_* and ETCDCTL_* variables are dropped).
  std::vector<std::pair<std::string, std::string>> env;
  // Optional, for a proxy in front of each member's peer port (tests/robustness): if not
  // empty (member_count entries each), member i listens for peers on peer_ports[i] and
  // advertises 127.0.0.1:advertised_peer_ports[i] (--initial-advertise-peer-urls and
  // --initial-cluster), so every peer reaches it through whatever listens there.
  std::vector<std::uint16_t> peer_ports;
  std::vector<std::uint16_t> advertised_peer_ports;
};

// Returns true when the member serving `endpoint` ("127.0.0.1:port") is ready; fills `why`
// with the reason otherwise. Called repeatedly until it succeeds or the wait times out, so it
// must bound its own time (e.g. gRPC deadlines) to well under a second.
using ReadyProbe = std::function<bool(const std::string& endpoint, std::string* why)>;

// Not thread-safe; one owner thread. Destruction kills every member and removes the data.
class EtcdLikeCluster {
 public:
  // Starts every member and waits until all of them pass `probe`. Throws SupportError (with
  // the members' log tails in the message) if a member exits or the wait times out.
  EtcdLikeCluster(ClusterOptions options, ReadyProbe probe);
  ~EtcdLikeCluster();
  EtcdLikeCluster(const EtcdLikeCluster&) = delete;
  EtcdLikeCluster& operator=(const EtcdLikeCluster&) = delete;

  std::size_t size() const { return members_.size(); }
  const ClusterOptions& options() const { return options_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

  // Member i (0-based): "127.0.0.1:<client port>", the client and peer URLs, its --name.
  const std::string& endpoint(std::size_t i) const;
  std::vector<std::string> endpoints() const;
  std::string client_url(std::size_t i) const;
  std::string peer_url(std::size_t i) const;
  // The peer URL the others use to reach member i (peer_url(i) unless advertised_peer_ports).
  std::string advertised_peer_url(std::size_t i) const;
  const std::string& name(std::size_t i) const;
  std::filesystem::path data_dir(std::size_t i) const;
  std::filesystem::path log_path(std::size_t i) const;

  // True while member i's process is alive.
  bool Running(std::size_t i);
  // Sends `signal` to member i and, for SIGKILL, waits for it to die. For other signals the
  // process is left running if it chooses to; see Stop.
  void Kill(std::size_t i, int signal);
  // SIGTERM, then SIGKILL after `grace`; returns how it ended.
  ExitStatus Stop(std::size_t i, std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // Starts member i again with the same flags, ports and data dir (a dead member only). If
  // `wait_ready`, waits for the probe on that member (which needs a quorum to be up).
  void Restart(std::size_t i, bool wait_ready = true);
  // Starts member i (a dead member only) as a NEW member of the running cluster: its data dir
  // is wiped and it starts with --initial-cluster-state=existing (and keeps that flag on later
  // restarts). Precondition: the cluster already has a member with advertised_peer_url(i)
  // (Cluster/MemberAdd) and its --initial-cluster (every member's name and advertised peer URL,
  // unchanged) matches the cluster's membership. `wait_ready` as in Restart.
  void Rejoin(std::size_t i, bool wait_ready = true);
  // Member i's environment gets `env` too (after options().env) from its next start on, until
  // changed again (e.g. KVD_FAILPOINTS for one member).
  void SetMemberEnv(std::size_t i, std::vector<std::pair<std::string, std::string>> env) {
    At(i).extra_env = std::move(env);
  }
  // Waits until member i passes the probe; throws SupportError on timeout or exit.
  void WaitReady(std::size_t i);

  // Member i's process (precondition: running or not yet reaped since the last start).
  Process& process(std::size_t i);
  // The tails of all members' logs, labelled, for failure messages.
  std::string LogTails(std::size_t max_bytes_each = 2048) const;

 private:
  struct Member {
    std::string name;
    std::uint16_t client_port = 0;
    std::uint16_t peer_port = 0;
    std::uint16_t advertised_peer_port = 0;
    std::string endpoint;
    bool existing = false;  // started by Rejoin: --initial-cluster-state=existing
    std::vector<std::pair<std::string, std::string>> extra_env;  // see SetMemberEnv
    std::unique_ptr<Process> process;
  };

  std::vector<std::string> Args(std::size_t i) const;
  void Spawn(std::size_t i);
  Member& At(std::size_t i);
  const Member& At(std::size_t i) const;

  ClusterOptions options_;
  ReadyProbe probe_;
  TempDir dir_;
  std::vector<Member> members_;
};

}  // namespace kvtest
