// The gRPC half of the test support (target kv_test_support_grpc, built only with
// KV_BUILD_SERVER_STACK): channels to an etcd-compatible server and the readiness probe that
// EtcdLikeCluster uses with the real etcd and with kvd.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "tests/support/cluster.h"

namespace kvtest {

// A plaintext channel to `endpoint` ("127.0.0.1:port") that reconnects quickly (100 ms to
// 1 s backoff instead of gRPC's 1 s to 120 s), so restarts in tests are picked up at once.
// Receive size is unlimited, as in clientv3; send is capped at 2 MiB, as in clientv3.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& endpoint);

// Now + timeout, for grpc::ClientContext::set_deadline.
std::chrono::system_clock::time_point DeadlineIn(std::chrono::milliseconds timeout);

// Ready = Maintenance/Status succeeds and names a leader, and a linearizable
// KV/Range{key:"health"} succeeds (what `etcdctl endpoint health` checks). Each RPC is bounded
// by `rpc_timeout`. Uses a fresh channel per call, so no backoff state carries over.
ReadyProbe EtcdReadyProbe(std::chrono::milliseconds rpc_timeout = std::chrono::milliseconds(1000));

// An EtcdLikeCluster with EtcdReadyProbe.
std::unique_ptr<EtcdLikeCluster> StartEtcdLikeCluster(ClusterOptions options);

}  // namespace kvtest
