// go-grpc-prometheus' server metrics for kvd's gRPC services: grpc_server_started_total,
// grpc_server_handled_total (by grpc_code) and grpc_server_handling_seconds, with etcd's labels
// grpc_type, grpc_service, grpc_method. Kept by a gRPC server interceptor, except for the
// methods whose handlers count their own calls with an RpcMeter (the hot KV methods): with an
// interceptor on a call, gRPC runs its hooks at every batch of the call (callgrind, one member:
// 129k -> 120k instructions per put without them; docs/performance.md, 2026-12-08). A call gRPC
// itself refuses before the handler runs (too large, unparsable) is not counted for those
// methods, as in go-grpc-prometheus, which counts in the handler chain.
//
// Every method of the given services is created at zero up front (as go-grpc-prometheus does
// for registered services), so dashboards see every series before the first call, and so an
// RPC only touches atomics: the per-method series are looked up in a map that is never
// modified after construction.
#pragma once

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/metrics.h"

namespace server {

// The series of one method.
struct GrpcMethodMetrics {
  Counter* started = nullptr;
  Histogram* handling_seconds = nullptr;
  std::array<Counter*, 17> handled{};  // by gRPC status code
  bool metered_by_handler = false;     // counted by its handler's RpcMeter, not the interceptor

  // One call finished with `code`, `started_at` (steady clock) being when it was counted as
  // started. Any thread (atomics only).
  void Finished(int code, std::chrono::steady_clock::time_point started_at) const;
};

// The series of every method of the given services. Thread-safety: read-only after
// construction, so any thread may Find. `metrics` must outlive the table and every RPC.
class GrpcMethodTable {
 public:
  // services: full protobuf names from the generated descriptor pool, e.g. "etcdserverpb.KV".
  // handler_metered: full method names ("/etcdserverpb.KV/Put") whose handlers count their own
  // calls. Preconditions: each service is in the pool, each handler_metered method is one of
  // theirs (both checked).
  GrpcMethodTable(EtcdMetrics* metrics, const std::vector<std::string>& services,
                  const std::vector<std::string>& handler_metered);

  // The series of "/pkg.Service/Method", or null for a method of no given service.
  const GrpcMethodMetrics* Find(std::string_view full_method) const;

 private:
  std::map<std::string, GrpcMethodMetrics, std::less<>> methods_;
};

// Counts one call of a handler-metered method: started when constructed, handled (with its
// code and duration) at Finished, which the handler calls right before it finishes the call
// (where the interceptor counted at PRE_SEND_STATUS). With null metrics it counts nothing.
// Copyable (a handler's callbacks capture it); Finished once per call.
class RpcMeter {
 public:
  explicit RpcMeter(const GrpcMethodMetrics* metrics) : metrics_(metrics) {
    if (metrics_ != nullptr) {
      metrics_->started->Inc();
      start_ = std::chrono::steady_clock::now();
    }
  }
  void Finished(const grpc::Status& status) const {
    if (metrics_ != nullptr) metrics_->Finished(static_cast<int>(status.error_code()), start_);
  }

 private:
  const GrpcMethodMetrics* metrics_;
  std::chrono::steady_clock::time_point start_;
};

// Thread-safety: CreateServerInterceptor is called by gRPC from any thread. `table` must
// outlive the factory and every RPC.
class GrpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit GrpcMetricsInterceptorFactory(const GrpcMethodTable* table) : table_(table) {}

  // An interceptor for the table's methods that are not handler-metered; null otherwise (gRPC
  // then runs no hooks for the call).
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  const GrpcMethodTable* table_;
};

// The etcd v3 services kvd serves on its client port.
std::vector<std::string> EtcdClientServices();

}  // namespace server
