// go-grpc-prometheus' server metrics for kvd's gRPC services, kept by a gRPC server
// interceptor: grpc_server_started_total, grpc_server_handled_total (by grpc_code) and
// grpc_server_handling_seconds, with etcd's labels grpc_type, grpc_service, grpc_method.
//
// Every method of the given services is created at zero up front (as go-grpc-prometheus does
// for registered services), so dashboards see every series before the first call, and so an
// RPC only touches atomics: the per-method series are looked up in a map that is never
// modified after construction.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "server/metrics.h"

namespace server {

// The series of one method.
struct GrpcMethodMetrics {
  Counter* started = nullptr;
  Histogram* handling_seconds = nullptr;
  std::array<Counter*, 17> handled{};  // by gRPC status code
};

// Thread-safety: CreateServerInterceptor is called by gRPC from any thread; the map is
// read-only after construction. `metrics` must outlive the factory and every RPC.
class GrpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // services: full protobuf names from the generated descriptor pool, e.g. "etcdserverpb.KV".
  // Precondition: each is in the pool (checked).
  GrpcMetricsInterceptorFactory(EtcdMetrics* metrics, const std::vector<std::string>& services);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  // The series of "/pkg.Service/Method", or null for a method of no given service.
  const GrpcMethodMetrics* Find(const char* full_method) const;

 private:
  std::map<std::string, GrpcMethodMetrics, std::less<>> methods_;
};

// The etcd v3 services kvd serves on its client port.
std::vector<std::string> EtcdClientServices();

}  // namespace server
