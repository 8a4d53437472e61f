// server::KvdServer: one running kvd member: the Node (raft thread + store), the peer gRPC
// listener (kvdpb.Peer), the client gRPC listener (etcdserverpb KV, Watch, Maintenance, Cluster,
// Lease, Auth) and the optional plain-HTTP metrics listener (--listen-metrics-urls).
//
// Thread-safety: Start and Stop from one owner thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <vector>

#include "server/config.h"
#include "server/corrupt_check.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/node.h"
#include "server/services.h"
#include "server/status.h"
#include "server/watch_service.h"

namespace server {

class KvdServer {
 public:
  explicit KvdServer(Config config, NodeLimits limits = NodeLimits{});
  ~KvdServer();  // Stop()s
  KvdServer(const KvdServer&) = delete;
  KvdServer& operator=(const KvdServer&) = delete;

  // Opens the data dir, binds every listener and starts serving. Errors: exit code 1 with the
  // reason (data dir, port in use).
  Status Start();
  // The SIGTERM path: hands leadership away when leader, fails what is still waiting with
  // "etcdserver: server stopped", closes the listeners. Idempotent.
  void Stop();

  Node* node() { return node_.get(); }
  // Called (on the raft thread) once this member learns it was removed from the cluster; the
  // owner should then Stop() from its own thread and exit. Precondition: before Start().
  void SetOnRemoved(std::function<void()> fn) { on_removed_ = std::move(fn); }

 private:
  // Scrape-time gauges read from the member (leadership, quota, sizes, revisions, raft
  // progress). After node_ and metrics_ exist.
  void RegisterMemberMetrics();
  // kvd_corruption_checks_total and kvd_corruption_mismatches_total (after corrupt_checker_).
  void RegisterCorruptCheckMetrics();

  Config config_;
  NodeLimits limits_;
  // Declared before node_ so that it outlives the node's apply thread (which triggers it).
  std::unique_ptr<CorruptChecker>
      corrupt_checker_;  // null with --experimental-corrupt-check-time=0
  std::unique_ptr<Node> node_;
  std::unique_ptr<KvService> kv_;
  std::unique_ptr<MaintenanceService> maintenance_;
  std::unique_ptr<ClusterService> cluster_;
  std::unique_ptr<LeaseService> lease_;
  std::unique_ptr<WatchService> watch_;
  std::unique_ptr<AuthService> auth_;
  std::unique_ptr<grpc::Server> peer_server_;
  std::unique_ptr<grpc::Server> client_server_;
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<EtcdMetrics> etcd_metrics_;
  std::unique_ptr<GrpcMethodTable> grpc_methods_;  // series of the client services' methods
  std::vector<std::unique_ptr<HttpServer>> http_;
  std::function<void()> on_removed_;
  bool stopped_ = false;
};

}  // namespace server
