#include "tests/support/etcd_grpc.h"

#include "proto/rpc.grpc.pb.h"
#include "proto/rpc.pb.h"

namespace kvtest {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(2 * 1024 * 1024);
  // Private subchannels: a channel made after a server restart must not inherit the
  // backoff state of an older channel to the same address.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

std::chrono::system_clock::time_point DeadlineIn(std::chrono::milliseconds timeout) {
  return std::chrono::system_clock::now() + timeout;
}

ReadyProbe EtcdReadyProbe(std::chrono::milliseconds rpc_timeout) {
  return [rpc_timeout](const std::string& endpoint, std::string* why) {
    auto channel = MakeChannel(endpoint);
    {
      auto stub = etcdserverpb::Maintenance::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(DeadlineIn(rpc_timeout));
      ctx.set_wait_for_ready(true);  // a refused connect is retried until the deadline
      etcdserverpb::StatusResponse resp;
      const grpc::Status status = stub->Status(&ctx, etcdserverpb::StatusRequest(), &resp);
      if (!status.ok()) {
        *why = "Status: " + status.error_message();
        return false;
      }
      if (resp.leader() == 0) {
        *why = "Status: no leader yet";
        return false;
      }
    }
    auto stub = etcdserverpb::KV::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineIn(rpc_timeout));
    etcdserverpb::RangeRequest req;
    req.set_key("health");
    etcdserverpb::RangeResponse resp;
    const grpc::Status status = stub->Range(&ctx, req, &resp);
    if (!status.ok()) {
      *why = "Range(health): " + status.error_message();
      return false;
    }
    return true;
  };
}

std::unique_ptr<EtcdLikeCluster> StartEtcdLikeCluster(ClusterOptions options) {
  return std::make_unique<EtcdLikeCluster>(std::move(options), EtcdReadyProbe());
}

}  // namespace kvtest
