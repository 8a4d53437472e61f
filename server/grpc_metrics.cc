#include "server/grpc_metrics.h"

#include <google/protobuf/descriptor.h>

#include "server/status.h"

namespace server {
namespace {

using grpc::experimental::InterceptionHookPoints;

std::string_view GrpcTypeOf(const google::protobuf::MethodDescriptor& m) {
  if (m.client_streaming() && m.server_streaming()) return kGrpcBidiStream;
  if (m.client_streaming()) return kGrpcClientStream;
  if (m.server_streaming()) return kGrpcServerStream;
  return kGrpcUnary;
}

// One per RPC: counts the start when created and the outcome when the status is sent.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(const GrpcMethodMetrics* metrics)
      : metrics_(metrics), start_(std::chrono::steady_clock::now()) {
    metrics_->started->Inc();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->Finished(static_cast<int>(methods->GetSendStatus().error_code()), start_);
    }
    methods->Proceed();
  }

 private:
  const GrpcMethodMetrics* metrics_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

void GrpcMethodMetrics::Finished(int code, std::chrono::steady_clock::time_point started_at) const {
  if (code >= 0 && code < static_cast<int>(handled.size())) {
    handled[static_cast<size_t>(code)]->Inc();
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_at;
  handling_seconds->Observe(took.count());
}

GrpcMethodTable::GrpcMethodTable(EtcdMetrics* metrics, const std::vector<std::string>& services,
                                 const std::vector<std::string>& handler_metered) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& service_name : services) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(service_name);
    SERVER_CHECK(service != nullptr, "gRPC service %s is not linked in", service_name.c_str());
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor& m = *service->method(i);
      const std::vector<std::string> labels = {std::string(GrpcTypeOf(m)), service_name, m.name()};
      GrpcMethodMetrics gm;
      gm.started = &metrics->grpc_server_started_total.WithLabels(labels);
      gm.handling_seconds = &metrics->grpc_server_handling_seconds.WithLabels(labels);
      for (size_t code = 0; code < gm.handled.size(); ++code) {
        std::vector<std::string> with_code = labels;
        with_code.emplace_back(GrpcCodeName(static_cast<int>(code)));
        gm.handled[code] = &metrics->grpc_server_handled_total.WithLabels(with_code);
      }
      methods_["/" + service_name + "/" + m.name()] = gm;
    }
  }
  for (const std::string& name : handler_metered) {
    auto it = methods_.find(name);
    SERVER_CHECK(it != methods_.end(), "handler-metered method %s is not served", name.c_str());
    it->second.metered_by_handler = true;
  }
}

const GrpcMethodMetrics* GrpcMethodTable::Find(std::string_view full_method) const {
  auto it = methods_.find(full_method);
  return it == methods_.end() ? nullptr : &it->second;
}

grpc::experimental::Interceptor* GrpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (info->method() == nullptr) return nullptr;
  const GrpcMethodMetrics* m = table_->Find(info->method());
  // Unknown methods (answered Unimplemented by gRPC itself) are not counted, as in
  // go-grpc-prometheus, whose labels come from the registered services only.
  return m == nullptr || m->metered_by_handler ? nullptr : new MetricsInterceptor(m);
}

std::vector<std::string> EtcdClientServices() {
  return {"etcdserverpb.KV",      "etcdserverpb.Watch",       "etcdserverpb.Lease",
          "etcdserverpb.Cluster", "etcdserverpb.Maintenance", "etcdserverpb.Auth"};
}

}  // namespace server
