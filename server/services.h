// kvd's etcd v3 gRPC services (package etcdserverpb), on the gRPC callback API: a handler never
// blocks a gRPC thread. Writes go through Node::Propose and finish when applied; linearizable
// reads through Node::ReadIndex; serializable reads and status queries are served at once.
// Every response carries a full header (cluster_id, member_id, revision, raft_term), errors
// carry etcd's codes and messages.
//
// Thread-safety: the services are called by gRPC from any thread; they only use Node's
// thread-safe methods. The Node must outlive the gRPC server.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "server/grpc_metrics.h"
#include "server/node.h"

namespace server {

// kvstore::Status codes are numbered like gRPC's.
grpc::Status ToGrpc(const kvstore::Status& s);
// Finishes `r` with etcd's "rpc not supported for learner" and returns true when this member is
// a learner (etcd serves only serializable Range and Status there). R: anything with
// Finish(grpc::Status), e.g. grpc::ServerUnaryReactor.
template <typename R>
bool RefuseOnLearner(Node* node, R* r) {
  if (!node->is_learner()) return false;
  r->Finish(ToGrpc(errors::NotSupportedForLearner()));
  return true;
}

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  // The methods this service counts itself in the gRPC metrics (grpc_metrics.h says why):
  // Range, Put, DeleteRange, Txn.
  static std::vector<std::string> MeteredMethods();
  // `methods`: the table those are marked handler-metered in (checked). Not null; it must
  // outlive every RPC.
  KvService(Node* node, const GrpcMethodTable* methods);
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::PutRequest* req,
                                etcdserverpb::PutResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::DeleteRangeRequest* req,
                                        etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::CompactionRequest* req,
                                    etcdserverpb::CompactionResponse* resp) override;

 private:
  Node* node_;
  const GrpcMethodMetrics* range_metrics_ = nullptr;
  const GrpcMethodMetrics* put_metrics_ = nullptr;
  const GrpcMethodMetrics* delete_range_metrics_ = nullptr;
  const GrpcMethodMetrics* txn_metrics_ = nullptr;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(Node* node) : node_(node) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::StatusRequest* req,
                                   etcdserverpb::StatusResponse* resp) override;
  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* ctx,
                                 const etcdserverpb::HashRequest* req,
                                 etcdserverpb::HashResponse* resp) override;
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::HashKVRequest* req,
                                   etcdserverpb::HashKVResponse* resp) override;
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::AlarmRequest* req,
                                  etcdserverpb::AlarmResponse* resp) override;
  // etcd's snapshot stream: the store checkpoint (MvccStore::WriteCheckpointFile) zero-padded
  // to a multiple of 512 bytes, in 32 KiB blobs with remaining_bytes counting down, then one
  // blob with the SHA-256 of everything sent before it (remaining_bytes 0). etcdctl checks
  // exactly that shape. A restore must drop the trailer and the zero padding after the
  // checkpoint's own end.
  // Runs MvccStore::Defragment on the apply thread (it is an apply-thread call; etcd also
  // blocks its backend while defragmenting).
  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::DefragmentRequest* req,
                                       etcdserverpb::DefragmentResponse* resp) override;
  // Leader only ("etcdserver: not leader"); the target must be another member
  // ("etcdserver: bad leader transferee"). Answers once the target leads.
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MoveLeaderRequest* req,
                                       etcdserverpb::MoveLeaderResponse* resp) override;
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* ctx, const etcdserverpb::SnapshotRequest* req) override;

 private:
  Node* node_;
};

// etcd's Cluster service (server/cluster_service.cc). Changes go through
// Node::ChangeMembership (forwarded to the leader, replicated as raft conf changes); every
// response has cluster_id, member_id and raft_term in its header (etcd sets no revision there)
// and the member list after the change.
class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(Node* node) : node_(node) {}
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MemberListRequest* req,
                                       etcdserverpb::MemberListResponse* resp) override;
  // Invalid or missing peer URLs: InvalidArgument "etcdserver: given member URLs are invalid".
  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* ctx,
                                      const etcdserverpb::MemberAddRequest* req,
                                      etcdserverpb::MemberAddResponse* resp) override;
  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::MemberRemoveRequest* req,
                                         etcdserverpb::MemberRemoveResponse* resp) override;
  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::MemberUpdateRequest* req,
                                         etcdserverpb::MemberUpdateResponse* resp) override;
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* ctx,
                                          const etcdserverpb::MemberPromoteRequest* req,
                                          etcdserverpb::MemberPromoteResponse* resp) override;

 private:
  Node* node_;
};

// Auth is not implemented: it is never enabled, so Authenticate answers as etcd does with auth
// disabled (etcdctl --user then proceeds without a token); the other RPCs are UNIMPLEMENTED.
class AuthService final : public etcdserverpb::Auth::CallbackService {
 public:
  explicit AuthService(Node* node) : node_(node) {}
  grpc::ServerUnaryReactor* Authenticate(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::AuthenticateRequest* req,
                                         etcdserverpb::AuthenticateResponse* resp) override;

 private:
  Node* node_;
};

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  explicit LeaseService(Node* node) : node_(node) {}
  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* ctx,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseLeasesRequest* req,
                                        etcdserverpb::LeaseLeasesResponse* resp) override;
  // Keep-alives are answered by the leader (lease deadlines live there); a follower answers
  // Unavailable "etcdserver: not leader"-style errors until forwarding exists.
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* ctx) override;

 private:
  Node* node_;
};

}  // namespace server
