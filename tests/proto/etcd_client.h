// Helpers for the wire round-trip tests: a server under test (the real etcd by default, or any
// etcd-flag-compatible binary named by KV_COMPAT_SERVER), our generated stubs, unary calls with
// deadlines, and the checks every response goes through.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "proto/rpc.pb.h"
#include "tests/support/cluster.h"
#include "tests/support/etcd_grpc.h"

namespace kvcompat {

namespace pb = etcdserverpb;

// Every unary call and every stream is bounded by this deadline.
constexpr std::chrono::milliseconds kRpcTimeout{5000};
constexpr std::chrono::milliseconds kStreamTimeout{20000};

// $KV_COMPAT_SERVER, or /usr/bin/etcd. The test fails (never skips) if it does not exist.
std::filesystem::path ServerBinary();

// Dotted paths of every field in `msg`, recursively, that our .proto files do not declare
// (protobuf keeps those as unknown fields). A field that the server sends under a number we
// do not know shows up here, so a wrong field number cannot pass silently.
std::vector<std::string> UnknownFieldPaths(const google::protobuf::Message& msg);

// The stubs of all six etcd services on one channel.
struct Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& channel);
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Lease::Stub> lease;
  std::unique_ptr<pb::Cluster::Stub> cluster;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;
  std::unique_ptr<pb::Auth::Stub> auth;
};

template <typename Stub, typename Req, typename Resp>
using UnaryMethod = grpc::Status (Stub::*)(grpc::ClientContext*, const Req&, Resp*);

// Issues a unary call with kRpcTimeout and returns its status; `resp` gets the response.
template <typename Stub, typename Req, typename Resp>
grpc::Status CallStatus(Stub& stub, UnaryMethod<Stub, Req, Resp> method, const Req& req,
                        Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(kRpcTimeout));
  return (stub.*method)(&ctx, req, resp);
}

// Issues a unary call that must succeed, and checks that the response has no unknown fields.
template <typename Stub, typename Req, typename Resp>
Resp Call(Stub& stub, UnaryMethod<Stub, Req, Resp> method, const Req& req) {
  Resp resp;
  const grpc::Status status = CallStatus(stub, method, req, &resp);
  INFO(Req::descriptor()->name() << " {" << req.ShortDebugString() << "} failed with code "
                                 << status.error_code() << ": " << status.error_message());
  REQUIRE(status.ok());
  const auto unknown = UnknownFieldPaths(resp);
  INFO(Resp::descriptor()->name() << " {" << resp.ShortDebugString() << "}");
  CHECK(unknown.empty());
  return resp;
}

// Issues a unary call that must fail with exactly `code` and `message`.
template <typename Stub, typename Req, typename Resp>
void CallFails(Stub& stub, UnaryMethod<Stub, Req, Resp> method, const Req& req,
               grpc::StatusCode code, const std::string& message) {
  Resp resp;
  const grpc::Status status = CallStatus(stub, method, req, &resp);
  INFO(Req::descriptor()->name() << " {" << req.ShortDebugString() << "}");
  CHECK(status.error_code() == code);
  CHECK(status.error_message() == message);
}

// A running server (1 or more members) plus what every header is checked against.
class Server {
 public:
  // Starts `members` members of `binary` (empty: ServerBinary()), each with `extra_args`.
  explicit Server(std::size_t members = 1, const std::filesystem::path& binary = {},
                  const std::vector<std::string>& extra_args = {});

  kvtest::EtcdLikeCluster& cluster() { return *cluster_; }
  // Stubs connected to member i.
  Stubs& on(std::size_t i = 0) { return *stubs_.at(i); }
  std::uint64_t cluster_id() const { return cluster_id_; }
  std::uint64_t member_id(std::size_t i = 0) const { return member_ids_.at(i); }
  // Reconnects member i's stubs (after a restart).
  void Reconnect(std::size_t i);

  // Checks cluster_id, member_id (of member `member`), raft_term >= 1, and the revision.
  void CheckHeader(const pb::ResponseHeader& header, std::int64_t revision,
                   std::size_t member = 0) const;

 private:
  std::unique_ptr<kvtest::EtcdLikeCluster> cluster_;
  std::vector<std::unique_ptr<Stubs>> stubs_;
  std::uint64_t cluster_id_ = 0;
  std::vector<std::uint64_t> member_ids_;
};

// Checks every field of a KeyValue.
void CheckKv(const mvccpb::KeyValue& kv, const std::string& key, const std::string& value,
             std::int64_t create_revision, std::int64_t mod_revision, std::int64_t version,
             std::int64_t lease = 0);

// Request builders.
pb::PutRequest PutReq(const std::string& key, const std::string& value, std::int64_t lease = 0);
pb::RangeRequest RangeReq(const std::string& key, const std::string& range_end = "");
pb::DeleteRangeRequest DeleteReq(const std::string& key, const std::string& range_end = "");

// Shorthands for calls that must succeed.
pb::PutResponse Put(Server& s, const std::string& key, const std::string& value,
                    std::int64_t lease = 0);
pb::RangeResponse Range(Server& s, const pb::RangeRequest& req);
pb::RangeResponse Get(Server& s, const std::string& key, const std::string& range_end = "");
// The current store revision (header of a Range).
std::int64_t CurrentRevision(Server& s);

}  // namespace kvcompat
