// A connection to an etcd v3 cluster through the public gRPC API only (KV, Watch, Lease,
// Cluster, Maintenance), with etcdctl's timeouts and metadata.
#pragma once
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cli/options.h"
#include "cli/status.h"
#include "proto/rpc.grpc.pb.h"

namespace cli {

// Not thread-safe except where noted: one command drives it from one thread (a watch or
// keep-alive stream may be read by one extra thread).
class Client {
 public:
  // Connects to the first endpoint that accepts a connection within `dial_timeout`. When none
  // does, the client still targets the first endpoint so that calls fail with etcdctl's
  // "context deadline exceeded" once the command timeout passes.
  static std::unique_ptr<Client> Dial(const std::vector<std::string>& endpoints,
                                      std::chrono::nanoseconds dial_timeout,
                                      std::chrono::nanoseconds command_timeout);

  // A context with the command deadline and etcdctl's `client-api-version` metadata. Calls
  // wait for the connection (wait_for_ready) until the deadline, as clientv3 retries do.
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // The same without a deadline, for long-running streams (watch, keep-alive, snapshot).
  std::unique_ptr<grpc::ClientContext> NewStreamContext() const;

  const std::string& endpoint() const { return endpoint_; }
  etcdserverpb::KV::Stub& kv() { return *kv_; }
  etcdserverpb::Watch::Stub& watch() { return *watch_; }
  etcdserverpb::Lease::Stub& lease() { return *lease_; }
  etcdserverpb::Cluster::Stub& cluster() { return *cluster_; }
  etcdserverpb::Maintenance::Stub& maintenance() { return *maintenance_; }

 private:
  Client(std::string endpoint, std::shared_ptr<grpc::Channel> channel,
         std::chrono::nanoseconds command_timeout);

  std::string endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
  std::chrono::nanoseconds command_timeout_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Cluster::Stub> cluster_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance_;
};

// "http://host:port" or "host:port" -> "host:port".
std::string StripScheme(const std::string& endpoint);

// An RPC failure as etcdctl reports it: the server's message ("etcdserver: ..."), or
// "context deadline exceeded" for deadline and connection failures. Exit code 1.
Status RpcError(const grpc::Status& status);

}  // namespace cli
