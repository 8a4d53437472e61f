// etcd's Cluster service (etcdserver/api/v3rpc/member.go): MemberList from this member's view,
// MemberAdd/Remove/Update/Promote through Node::ChangeMembership.
#include <algorithm>
#include <memory>

#include "server/config.h"
#include "server/services.h"

namespace server {
namespace {

void FillClusterHeader(Node* node, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(node->cluster_id());
  h->set_member_id(node->member_id());
  h->set_raft_term(node->term());
}

void ToEtcdMember(const kvdpb::MemberRecord& r, etcdserverpb::Member* out) {
  out->set_id(r.id());
  out->set_name(r.name());
  for (const auto& u : r.peer_urls()) out->add_peerurls(u);
  for (const auto& u : r.client_urls()) out->add_clienturls(u);
  out->set_islearner(r.is_learner());
}

// etcd's types.NewURLs: at least one URL, each scheme://host:port without a path; sorted.
bool ParsePeerUrls(const google::protobuf::RepeatedPtrField<std::string>& in,
                   std::vector<std::string>* out) {
  if (in.empty()) return false;
  for (const std::string& text : in) {
    Url u;
    if (!ParseUrl(text, &u).ok()) return false;
    out->push_back(u.text);
  }
  std::sort(out->begin(), out->end());
  return true;
}

// Runs `req` through Node::ChangeMembership and finishes with fill(response) on success.
template <typename Resp, typename Fill>
grpc::ServerUnaryReactor* Change(Node* node, grpc::CallbackServerContext* ctx,
                                 kvdpb::MemberChangeRequest req, Resp* resp, Fill fill) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (RefuseOnLearner(node, reactor)) return reactor;
  node->ChangeMembership(
      std::move(req), [node, reactor, resp, fill](kvdpb::MemberChangeResponse r) {
        if (r.code() != 0) {
          reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(r.code()), r.message()));
          return;
        }
        FillClusterHeader(node, resp->mutable_header());
        for (const auto& m : r.members()) ToEtcdMember(m, resp->add_members());
        fill(r);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::MemberListRequest* /*req*/,
                                                     etcdserverpb::MemberListResponse* resp) {
  if (node_->is_learner()) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    (void)RefuseOnLearner(node_, reactor);
    return reactor;
  }
  google::protobuf::RepeatedPtrField<kvdpb::MemberRecord> records;
  ToRecords(node_->Members(), &records);
  for (const auto& r : records) ToEtcdMember(r, resp->add_members());
  FillClusterHeader(node_, resp->mutable_header());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::MemberAddRequest* req,
                                                    etcdserverpb::MemberAddResponse* resp) {
  kvdpb::MemberChangeRequest change;
  change.set_op(kvdpb::MEMBER_ADD);
  std::vector<std::string> urls;
  if (!ParsePeerUrls(req->peerurls(), &urls)) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, errors::MemberBadUrls().message()));
    return reactor;
  }
  for (const auto& u : urls) change.add_peer_urls(u);
  change.set_is_learner(req->islearner());
  return Change(node_, ctx, std::move(change), resp, [resp](const kvdpb::MemberChangeResponse& r) {
    // etcd answers with the ID, peer URLs and learner flag only.
    etcdserverpb::Member* m = resp->mutable_member();
    m->set_id(r.member().id());
    for (const auto& u : r.member().peer_urls()) m->add_peerurls(u);
    m->set_islearner(r.member().is_learner());
  });
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(grpc::CallbackServerContext* ctx,
                                                       const etcdserverpb::MemberRemoveRequest* req,
                                                       etcdserverpb::MemberRemoveResponse* resp) {
  kvdpb::MemberChangeRequest change;
  change.set_op(kvdpb::MEMBER_REMOVE);
  change.set_id(req->id());
  return Change(node_, ctx, std::move(change), resp, [](const kvdpb::MemberChangeResponse&) {});
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(grpc::CallbackServerContext* ctx,
                                                       const etcdserverpb::MemberUpdateRequest* req,
                                                       etcdserverpb::MemberUpdateResponse* resp) {
  kvdpb::MemberChangeRequest change;
  change.set_op(kvdpb::MEMBER_UPDATE);
  change.set_id(req->id());
  std::vector<std::string> urls;
  // etcd 3.4 stores whatever it is given here; kvd refuses URLs its transport could not dial.
  if (!ParsePeerUrls(req->peerurls(), &urls)) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, errors::MemberBadUrls().message()));
    return reactor;
  }
  for (const auto& u : urls) change.add_peer_urls(u);
  return Change(node_, ctx, std::move(change), resp, [](const kvdpb::MemberChangeResponse&) {});
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* ctx, const etcdserverpb::MemberPromoteRequest* req,
    etcdserverpb::MemberPromoteResponse* resp) {
  kvdpb::MemberChangeRequest change;
  change.set_op(kvdpb::MEMBER_PROMOTE);
  change.set_id(req->id());
  return Change(node_, ctx, std::move(change), resp, [](const kvdpb::MemberChangeResponse&) {});
}

}  // namespace server
