#include "server/services.h"

#include <openssl/evp.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "server/config.h"
#include "server/log.h"

namespace server {

grpc::Status ToGrpc(const kvstore::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(s.code())), s.message());
}

namespace {

// A unary call's reactor and its meter (counting nothing unless the method is handler-metered,
// grpc_metrics.h). Every way a helper below finishes a call goes through Finish, so a metered
// call is counted exactly once. Copyable: the callbacks that finish the call capture it.
struct Reply {
  grpc::ServerUnaryReactor* reactor;
  RpcMeter meter;
  void Finish(const grpc::Status& status) const {
    meter.Finished(status);
    reactor->Finish(status);
  }
};

Reply StartReply(grpc::CallbackServerContext* ctx, const GrpcMethodMetrics* metered) {
  return Reply{ctx->DefaultReactor(), RpcMeter(metered)};
}

// etcdctl's watch and keep-alive loops send "hasleader: true": etcd then refuses to serve
// without a leader instead of waiting. Also refuses every request on a learner unless
// `learner_ok`. R: grpc::ServerUnaryReactor or Reply.
template <typename R>
bool RequireLeader(Node* node, grpc::CallbackServerContext* ctx, R* r, bool learner_ok = false) {
  if (!learner_ok && RefuseOnLearner(node, r)) return false;
  const auto& md = ctx->client_metadata();
  auto it = md.find("hasleader");
  if (it != md.end() && it->second == "true" && node->leader() == 0) {
    r->Finish(ToGrpc(errors::NoLeader()));
    return false;
  }
  return true;
}

// Like etcd when a write would exceed the quota: replicate a NOSPACE alarm for this member, so
// every member refuses such writes until an operator disarms it.
void RaiseNoSpaceAlarm(Node* node) {
  kvdpb::InternalRequest alarm;
  alarm.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  alarm.mutable_alarm()->set_memberid(node->member_id());
  alarm.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  node->Propose(std::move(alarm), [](const kvstore::Status&, kvdpb::InternalResponse*) {});
}

// Proposes `req` and answers with pick(applied response) once this member applied it.
// `metered`: the method's series when its handler counts it (KvService), else null.
template <typename Resp, typename Pick>
grpc::ServerUnaryReactor* ProposeAndReply(Node* node, grpc::CallbackServerContext* ctx,
                                          kvdpb::InternalRequest req, Resp* resp, Pick pick,
                                          const GrpcMethodMetrics* metered = nullptr) {
  const Reply reply = StartReply(ctx, metered);
  if (!RequireLeader(node, ctx, &reply)) return reply.reactor;
  kvstore::Status s = node->store().CheckRequest(req);
  if (!s.ok()) {
    if (s == kvstore::errors::NoSpace()) RaiseNoSpaceAlarm(node);
    reply.Finish(ToGrpc(s));
    return reply.reactor;
  }
  node->Propose(std::move(req),
                [node, resp, reply, pick](const kvstore::Status& st, kvdpb::InternalResponse* out) {
                  if (!st.ok()) {
                    reply.Finish(ToGrpc(st));
                    return;
                  }
                  resp->Swap(pick(out));
                  node->FillHeader(resp->mutable_header());
                  reply.Finish(grpc::Status::OK);
                });
  return reply.reactor;
}

// Runs serve() once a linearizable read may be served (on a read worker), or at once when
// `serializable`. `learner_ok`: served on a learner too. `metered`: as for ProposeAndReply.
template <typename Serve>
grpc::ServerUnaryReactor* ReadAndReply(Node* node, grpc::CallbackServerContext* ctx,
                                       bool serializable, Serve serve, bool learner_ok = false,
                                       const GrpcMethodMetrics* metered = nullptr) {
  const Reply reply = StartReply(ctx, metered);
  if (!RequireLeader(node, ctx, &reply, learner_ok)) return reply.reactor;
  if (serializable) {
    reply.Finish(ToGrpc(serve()));
    return reply.reactor;
  }
  node->ReadIndex(
      [reply, serve](const kvstore::Status& s) { reply.Finish(ToGrpc(s.ok() ? serve() : s)); });
  return reply.reactor;
}

}  // namespace

// ---- KV ---------------------------------------------------------------------------------------

namespace {
constexpr const char* kRangeMethod = "/etcdserverpb.KV/Range";
constexpr const char* kPutMethod = "/etcdserverpb.KV/Put";
constexpr const char* kDeleteRangeMethod = "/etcdserverpb.KV/DeleteRange";
constexpr const char* kTxnMethod = "/etcdserverpb.KV/Txn";
}  // namespace

std::vector<std::string> KvService::MeteredMethods() {
  return {kRangeMethod, kPutMethod, kDeleteRangeMethod, kTxnMethod};
}

KvService::KvService(Node* node, const GrpcMethodTable* methods) : node_(node) {
  const auto find = [methods](std::string_view name) {
    const GrpcMethodMetrics* m = methods->Find(name);
    SERVER_CHECK(m != nullptr && m->metered_by_handler,
                 "%s must be in the method table as handler-metered", std::string(name).c_str());
    return m;
  };
  range_metrics_ = find(kRangeMethod);
  put_metrics_ = find(kPutMethod);
  delete_range_metrics_ = find(kDeleteRangeMethod);
  txn_metrics_ = find(kTxnMethod);
}

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* ctx,
                                           const etcdserverpb::RangeRequest* req,
                                           etcdserverpb::RangeResponse* resp) {
  Node* node = node_;
  return ReadAndReply(
      node_, ctx, req->serializable(),
      [node, req, resp] {
        // Served even while CORRUPT: etcd 3.4 answers client reads from applyV3Base, outside the
        // corrupt applier, so operators can still read (and back up) the data.
        kvstore::Status s = node->store().Range(*req, resp);
        if (s.ok()) node->FillHeader(resp->mutable_header());
        return s;
      },
      /*learner_ok=*/req->serializable(), range_metrics_);
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::PutRequest* req,
                                         etcdserverpb::PutResponse* resp) {
  kvdpb::InternalRequest r;
  *r.mutable_put() = *req;
  return ProposeAndReply(
      node_, ctx, std::move(r), resp,
      [](kvdpb::InternalResponse* out) { return out->mutable_put(); }, put_metrics_);
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* ctx,
                                                 const etcdserverpb::DeleteRangeRequest* req,
                                                 etcdserverpb::DeleteRangeResponse* resp) {
  kvdpb::InternalRequest r;
  *r.mutable_delete_range() = *req;
  return ProposeAndReply(
      node_, ctx, std::move(r), resp,
      [](kvdpb::InternalResponse* out) { return out->mutable_delete_range(); },
      delete_range_metrics_);
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::TxnRequest* req,
                                         etcdserverpb::TxnResponse* resp) {
  if (kvstore::MvccStore::IsReadOnlyTxn(*req)) {
    // No puts or deletes anywhere: served like Range, through ReadIndex instead of the log
    // (etcd does the same); serializable when every range of both branches is.
    bool serializable = true;
    for (const auto* branch : {&req->success(), &req->failure()}) {
      for (const auto& op : *branch) {
        serializable = serializable && op.has_request_range() && op.request_range().serializable();
      }
    }
    Node* node = node_;
    return ReadAndReply(
        node_, ctx, serializable,
        [node, req, resp] {
          kvstore::Status s = node->store().ReadOnlyTxn(*req, resp);
          if (s.ok()) node->FillHeader(resp->mutable_header());
          return s;
        },
        /*learner_ok=*/false, txn_metrics_);
  }
  kvdpb::InternalRequest r;
  *r.mutable_txn() = *req;
  return ProposeAndReply(
      node_, ctx, std::move(r), resp,
      [](kvdpb::InternalResponse* out) { return out->mutable_txn(); }, txn_metrics_);
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* ctx,
                                             const etcdserverpb::CompactionRequest* req,
                                             etcdserverpb::CompactionResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!RequireLeader(node_, ctx, reactor)) return reactor;
  kvdpb::InternalRequest r;
  *r.mutable_compaction() = *req;
  kvstore::Status s = node_->store().CheckRequest(r);
  if (!s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  Node* node = node_;
  const bool physical = req->physical();
  node_->Propose(std::move(r), [node, resp, reactor, physical](const kvstore::Status& st,
                                                               kvdpb::InternalResponse* out) {
    if (!st.ok()) {
      reactor->Finish(ToGrpc(st));
      return;
    }
    resp->Swap(out->mutable_compaction());
    node->FillHeader(resp->mutable_header());
    if (!physical) {
      reactor->Finish(grpc::Status::OK);
      return;
    }
    // physical=true: answer once the compacted revisions are gone from the store (etcd).
    node->AfterPhysicalCompaction([reactor] { reactor->Finish(grpc::Status::OK); });
  });
  return reactor;
}

// ---- Maintenance ------------------------------------------------------------------------------

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::StatusRequest* /*req*/,
                                                     etcdserverpb::StatusResponse* resp) {
  resp->set_version(std::string(kEtcdServerVersion));
  resp->set_dbsize(node_->store().SizeBytes());
  resp->set_dbsizeinuse(node_->store().SizeInUseBytes());
  resp->set_leader(node_->leader());
  resp->set_raftindex(node_->commit_index());
  resp->set_raftterm(node_->term());
  resp->set_raftappliedindex(node_->applied_index());
  resp->set_islearner(node_->is_learner());
  if (node_->leader() == 0) resp->add_errors(errors::NoLeader().message());
  for (const auto& a : node_->store().Alarms()) {
    resp->add_errors("memberID:" + std::to_string(a.memberid()) +
                     " alarm:" + etcdserverpb::AlarmType_Name(a.alarm()) + " ");
  }
  node_->FillHeader(resp->mutable_header());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::HashKVRequest* req,
                                                     etcdserverpb::HashKVResponse* resp) {
  Node* node = node_;
  return ReadAndReply(node_, ctx, true, [node, req, resp] {
    uint32_t hash = 0;
    int64_t compact_rev = 0;
    int64_t hashed_rev = 0;
    kvstore::Status s = node->store().HashKV(req->revision(), &hash, &compact_rev, &hashed_rev);
    if (!s.ok()) return s;
    resp->set_hash(hash);
    // etcd answers -1 while nothing was ever compacted.
    resp->set_compact_revision(compact_rev == 0 ? -1 : compact_rev);
    node->FillHeader(resp->mutable_header());  // etcd: the current revision, not the hashed one
    return s;
  });
}

grpc::ServerUnaryReactor* MaintenanceService::Hash(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::HashRequest* /*req*/,
                                                   etcdserverpb::HashResponse* resp) {
  // etcd hashes its whole bbolt file; kvd has none, so it answers the hash of the logical
  // key-value history (equal on replicas that applied the same entries).
  Node* node = node_;
  return ReadAndReply(node_, ctx, true, [node, resp] {
    uint32_t hash = 0;
    int64_t compact_rev = 0;
    int64_t hashed_rev = 0;
    kvstore::Status s = node->store().HashKV(0, &hash, &compact_rev, &hashed_rev);
    if (!s.ok()) return s;
    resp->set_hash(hash);
    node->FillHeader(resp->mutable_header());
    return s;
  });
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::AlarmRequest* req,
                                                    etcdserverpb::AlarmResponse* resp) {
  if (node_->is_learner()) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    (void)RefuseOnLearner(node_, reactor);
    return reactor;
  }
  if (req->action() == etcdserverpb::AlarmRequest::GET) {
    for (const auto& a : node_->store().Alarms()) {
      if (req->alarm() == etcdserverpb::NONE || req->alarm() == a.alarm()) *resp->add_alarms() = a;
    }
    node_->FillHeader(resp->mutable_header());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  kvdpb::InternalRequest r;
  *r.mutable_alarm() = *req;
  return ProposeAndReply(node_, ctx, std::move(r), resp,
                         [](kvdpb::InternalResponse* out) { return out->mutable_alarm(); });
}

namespace {

class SnapshotReactor final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  static constexpr size_t kBlobBytes = 32 * 1024;
  static constexpr uint64_t kAlignBytes = 512;

  explicit SnapshotReactor(Node* node) : node_(node), sha_(EVP_MD_CTX_new()) {
    static std::atomic<uint64_t> seq{0};
    path_ = node_->config().data_dir + "/member/snapshot-send-" + std::to_string(seq.fetch_add(1)) +
            ".tmp";
    if (node_->is_learner()) {
      Finish(ToGrpc(errors::NotSupportedForLearner()));
      return;
    }
    // Writing the checkpoint takes a while: not on a gRPC thread.
    if (!node_->workers().Post([this] { Prepare(); })) {
      Finish(ToGrpc(errors::TooManyRequests()));
    }
  }
  ~SnapshotReactor() override {
    EVP_MD_CTX_free(sha_);
    in_.close();
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream broken"));
      return;
    }
    SendNext();
  }
  void OnDone() override { delete this; }

 private:
  void Prepare() {
    kvstore::Status s = node_->store().WriteCheckpointFile(path_);
    if (!s.ok()) {
      Finish(ToGrpc(s));
      return;
    }
    std::error_code ec;
    file_bytes_ = std::filesystem::file_size(path_, ec);
    in_.open(path_, std::ios::binary);
    if (ec || !in_ || sha_ == nullptr || EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr) != 1) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the checkpoint"));
      return;
    }
    total_bytes_ = (file_bytes_ + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
    KVD_LOG("sending a snapshot of %llu bytes", static_cast<unsigned long long>(total_bytes_));
    SendNext();
  }

  void SendNext() {
    resp_.Clear();
    node_->FillHeader(resp_.mutable_header());
    if (sent_bytes_ < total_bytes_) {
      const uint64_t n = std::min<uint64_t>(kBlobBytes, total_bytes_ - sent_bytes_);
      std::string blob(n, '\0');  // the part beyond the file is the zero padding
      if (sent_bytes_ < file_bytes_) {
        const uint64_t from_file = std::min<uint64_t>(n, file_bytes_ - sent_bytes_);
        in_.read(blob.data(), static_cast<std::streamsize>(from_file));
        if (!in_) {
          Finish(grpc::Status(grpc::StatusCode::INTERNAL, "checkpoint read failed"));
          return;
        }
      }
      EVP_DigestUpdate(sha_, blob.data(), blob.size());
      sent_bytes_ += n;
      resp_.set_remaining_bytes(total_bytes_ - sent_bytes_);
      resp_.set_blob(std::move(blob));
      StartWrite(&resp_);
      return;
    }
    if (!trailer_sent_) {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_DigestFinal_ex(sha_, digest, &len);
      resp_.set_remaining_bytes(0);
      resp_.set_blob(std::string(reinterpret_cast<const char*>(digest), len));
      trailer_sent_ = true;
      StartWrite(&resp_);
      return;
    }
    Finish(grpc::Status::OK);
  }

  Node* node_;
  EVP_MD_CTX* sha_;
  std::string path_;
  std::ifstream in_;
  uint64_t file_bytes_ = 0;
  uint64_t total_bytes_ = 0;
  uint64_t sent_bytes_ = 0;
  bool trailer_sent_ = false;
  etcdserverpb::SnapshotResponse resp_;
};

}  // namespace

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* MaintenanceService::Snapshot(
    grpc::CallbackServerContext* /*ctx*/, const etcdserverpb::SnapshotRequest* /*req*/) {
  return new SnapshotReactor(node_);
}

grpc::ServerUnaryReactor* MaintenanceService::Defragment(
    grpc::CallbackServerContext* ctx, const etcdserverpb::DefragmentRequest* /*req*/,
    etcdserverpb::DefragmentResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (RefuseOnLearner(node_, reactor)) return reactor;
  Node* node = node_;
  const bool queued = node_->RunOnApplyThread([node, reactor, resp](bool run) {
    if (!run) {
      reactor->Finish(ToGrpc(errors::Stopped()));
      return;
    }
    kvstore::Status s = node->store().Defragment();
    if (s.ok()) node->FillHeader(resp->mutable_header());
    reactor->Finish(ToGrpc(s));
  });
  if (!queued) reactor->Finish(ToGrpc(errors::TooManyRequests()));
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(grpc::CallbackServerContext* ctx,
                                                         const etcdserverpb::MoveLeaderRequest* req,
                                                         etcdserverpb::MoveLeaderResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (RefuseOnLearner(node_, reactor)) return reactor;
  if (!node_->is_leader()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: not leader"));
    return reactor;
  }
  bool known = false;
  for (const MemberInfo& m : node_->Members()) known = known || m.id == req->targetid();
  if (!known || req->targetid() == node_->member_id()) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: bad leader transferee"));
    return reactor;
  }
  Node* node = node_;
  node_->MoveLeader(req->targetid(), [node, reactor, resp](const kvstore::Status& s) {
    if (s.ok()) node->FillHeader(resp->mutable_header());
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

// ---- Auth -------------------------------------------------------------------------------------

grpc::ServerUnaryReactor* AuthService::Authenticate(
    grpc::CallbackServerContext* ctx, const etcdserverpb::AuthenticateRequest* /*req*/,
    etcdserverpb::AuthenticateResponse* /*resp*/) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // etcd 3.4's interceptor refuses learners before any auth check.
  if (RefuseOnLearner(node_, reactor)) return reactor;
  reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                               "etcdserver: authentication is not enabled"));
  return reactor;
}

// ---- Lease ------------------------------------------------------------------------------------

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::LeaseGrantRequest* req,
                                                   etcdserverpb::LeaseGrantResponse* resp) {
  kvdpb::InternalRequest r;
  *r.mutable_lease_grant() = *req;
  if (req->id() == 0) r.mutable_lease_grant()->set_id(node_->NewLeaseId());
  return ProposeAndReply(node_, ctx, std::move(r), resp,
                         [](kvdpb::InternalResponse* out) { return out->mutable_lease_grant(); });
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseRevokeRequest* req,
                                                    etcdserverpb::LeaseRevokeResponse* resp) {
  kvdpb::InternalRequest r;
  *r.mutable_lease_revoke() = *req;
  return ProposeAndReply(node_, ctx, std::move(r), resp,
                         [](kvdpb::InternalResponse* out) { return out->mutable_lease_revoke(); });
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* ctx, const etcdserverpb::LeaseTimeToLiveRequest* req,
    etcdserverpb::LeaseTimeToLiveResponse* resp) {
  Node* node = node_;
  if (!node->is_leader() && node->leader() != 0) {
    // Followers hold leases without deadlines (the leader runs expiry), so the remaining TTL
    // comes from the leader, as etcd forwards LeaseTimeToLive; keys and the granted TTL are
    // read locally after a ReadIndex.
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    node->ReadIndex([node, req, resp, reactor](const kvstore::Status& rs) {
      if (!rs.ok()) {
        reactor->Finish(ToGrpc(rs));
        return;
      }
      node->ForwardLeaseTimeToLive(
          req->id(), [node, req, resp, reactor](const kvstore::Status& s, int64_t remaining) {
            if (!s.ok()) {
              reactor->Finish(ToGrpc(s));
              return;
            }
            kvstore::Status ls = node->store().LeaseTimeToLive(*req, SteadyNowMs(), resp);
            if (ls.ok()) {
              if (remaining < 0) {
                resp->set_grantedttl(0);  // revoked or expired meanwhile: etcd's "not found"
                resp->clear_keys();
              }
              resp->set_ttl(remaining);
              node->FillHeader(resp->mutable_header());
            }
            reactor->Finish(ToGrpc(ls));
          });
    });
    return reactor;
  }
  return ReadAndReply(node_, ctx, false, [node, req, resp] {
    kvstore::Status s = node->store().LeaseTimeToLive(*req, SteadyNowMs(), resp);
    if (s.ok()) node->FillHeader(resp->mutable_header());
    return s;
  });
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseLeasesRequest* /*req*/,
                                                    etcdserverpb::LeaseLeasesResponse* resp) {
  Node* node = node_;
  return ReadAndReply(node_, ctx, false, [node, resp] {
    node->store().LeaseLeases(resp);
    node->FillHeader(resp->mutable_header());
    return kvstore::Status::Ok();
  });
}

namespace {

// One keep-alive stream: read a request, answer it, read the next (one write in flight).
class KeepAliveReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  explicit KeepAliveReactor(Node* node) : node_(node) { StartRead(&req_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (node_->is_learner()) {
      Finish(ToGrpc(errors::NotSupportedForLearner()));
      return;
    }
    if (node_->leader() == 0) {
      Finish(ToGrpc(errors::NoLeader()));
      return;
    }
    resp_.Clear();
    resp_.set_id(req_.id());
    if (!node_->is_leader()) {
      // Lease deadlines live on the leader: ask it.
      node_->ForwardLeaseRenew(req_.id(), [this](const kvstore::Status& s, int64_t ttl) {
        if (!s.ok()) {
          Finish(ToGrpc(s));
          return;
        }
        resp_.set_ttl(ttl);
        node_->FillHeader(resp_.mutable_header());
        StartWrite(&resp_);
      });
      return;
    }
    if (!RenewLocally()) {
      // Maybe granted by an entry committed but not yet applied on this leader (the client
      // heard of the grant from a member that applied it first): retry once everything
      // committed before now is applied.
      node_->ReadIndex([this](const kvstore::Status& s) {
        if (s.ok()) (void)RenewLocally();
        StartWrite(&resp_);
      });
      return;
    }
    StartWrite(&resp_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    StartRead(&req_);
  }
  void OnDone() override { delete this; }

 private:
  // Leader: renews req_'s lease and fills resp_ (TTL 0 for an unknown lease: not an error, as
  // in etcd). False when the lease is unknown.
  bool RenewLocally() {
    int64_t ttl = 0;
    kvstore::Status s = node_->store().LeaseRenew(req_.id(), SteadyNowMs(), &ttl);
    resp_.set_ttl(s.ok() ? ttl : 0);
    node_->FillHeader(resp_.mutable_header());
    return s.ok();
  }

  Node* node_;
  etcdserverpb::LeaseKeepAliveRequest req_;
  etcdserverpb::LeaseKeepAliveResponse resp_;
};

}  // namespace

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext* /*ctx*/) {
  return new KeepAliveReactor(node_);
}

}  // namespace server
