#include "server/transport.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "raft/codec.h"
#include "server/log.h"
#include "server/node.h"
#include "server/thread_name.h"

namespace server {

struct Transport::Peer {
  uint64_t id = 0;
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<kvdpb::Peer::Stub> stub;  // shared with async calls in flight
  std::mutex mu;
  std::condition_variable cv;
  std::deque<raft::Message> queue;  // bounded by limits_.queue_msgs_max
  bool stop = false;
  grpc::ClientContext* active = nullptr;         // the call in progress, for Stop to cancel
  grpc::ClientContext* snapshot_call = nullptr;  // set while a snapshot is being sent
  // When the current stream's first write succeeded; nullopt while the link is down.
  std::optional<std::chrono::steady_clock::time_point> up_since;
  std::thread thread;
  // Probes (sender thread only, except `in_flight`, which the call's completion clears; shared
  // so that a completion after the peer is gone is harmless).
  std::chrono::steady_clock::time_point next_probe{};
  std::shared_ptr<std::atomic<bool>> probe_in_flight = std::make_shared<std::atomic<bool>>(false);
};

// ---- inbound ----------------------------------------------------------------------------------

class Transport::Service final : public kvdpb::Peer::CallbackService {
 public:
  Service(Node* node, const TransportLimits& limits) : node_(node), limits_(limits) {}

  grpc::ServerReadReactor<kvdpb::PeerBatch>* Stream(grpc::CallbackServerContext* /*ctx*/,
                                                    kvdpb::PeerAck* /*ack*/) override {
    return new StreamReactor(node_);
  }
  grpc::ServerReadReactor<kvdpb::SnapshotChunk>* Snapshot(grpc::CallbackServerContext* /*ctx*/,
                                                          kvdpb::PeerAck* /*ack*/) override {
    return new SnapshotReactor(node_, limits_);
  }
  grpc::ServerUnaryReactor* Probe(grpc::CallbackServerContext* ctx, const kvdpb::PeerHello* /*req*/,
                                  kvdpb::PeerAck* /*resp*/) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* MemberChange(grpc::CallbackServerContext* ctx,
                                         const kvdpb::MemberChangeRequest* req,
                                         kvdpb::MemberChangeResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (!HelloOk(node_, req->hello())) {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch"));
    } else if (!node_->is_leader()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not leader"));
    } else {
      node_->ChangeMembershipAsLeader(*req, [reactor, resp](kvdpb::MemberChangeResponse r) {
        resp->Swap(&r);
        reactor->Finish(grpc::Status::OK);
      });
    }
    return reactor;
  }
  grpc::ServerUnaryReactor* Members(grpc::CallbackServerContext* ctx,
                                    const kvdpb::MembersRequest* /*req*/,
                                    kvdpb::MembersResponse* resp) override {
    *resp->mutable_state() = node_->membership().ToProto();
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* ctx,
                                   const kvdpb::PeerHashKVRequest* req,
                                   kvdpb::PeerHashKVResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (!HelloOk(node_, req->hello())) {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch"));
      return reactor;
    }
    // After a ReadIndex round this member has applied at least what the asking leader had
    // applied when it hashed its own store (so the same compaction, and the revision exists).
    // The hash is computed on the read worker that serves the round, never on a gRPC thread.
    Node* node = node_;
    const int64_t revision = req->revision();
    node_->ReadIndex([node, revision, resp, reactor](const kvstore::Status& s) {
      if (!s.ok()) {
        reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, s.message()));
        return;
      }
      uint32_t hash = 0;
      int64_t compact_rev = 0;
      int64_t hashed_rev = 0;
      // HashKV refuses rev == compact revision (etcd's rule), yet a leader that compacted at
      // its current revision asks for exactly that: hash the latest revision instead, which is
      // comparable only if nothing was written since.
      const bool at_compact = revision == node->store().CompactRevision();
      kvstore::Status hs =
          node->store().HashKV(at_compact ? 0 : revision, &hash, &compact_rev, &hashed_rev);
      if (hs.ok() && hashed_rev != revision) {
        hs = {kvstore::Code::kOutOfRange, "revision moved on to " + std::to_string(hashed_rev)};
      }
      if (!hs.ok()) {
        reactor->Finish(
            grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(hs.code())), hs.message()));
        return;
      }
      resp->set_hash(hash);
      resp->set_compact_revision(compact_rev);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }
  grpc::ServerUnaryReactor* LeaseRenew(grpc::CallbackServerContext* ctx,
                                       const kvdpb::LeaseRenewRequest* req,
                                       kvdpb::LeaseRenewResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (!HelloOk(node_, req->hello())) {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch"));
    } else if (!node_->is_leader()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not leader"));
    } else if (!AnswerLease(node_, *req, resp)) {
      // An unknown lease may be granted by an entry this leader committed but has not applied
      // yet (the client heard of the grant from a member that applied it first): answer again
      // once everything committed before now is applied here.
      Node* node = node_;
      node_->ReadIndex([node, req, resp, reactor](const kvstore::Status& s) {
        if (s.ok()) (void)AnswerLease(node, *req, resp);
        reactor->Finish(grpc::Status::OK);
      });
    } else {
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

 private:
  // Renews the lease (or, for time_to_live, reads its remaining TTL) on this leader and fills
  // `resp`; false when the lease is unknown here.
  static bool AnswerLease(Node* node, const kvdpb::LeaseRenewRequest& req,
                          kvdpb::LeaseRenewResponse* resp) {
    if (req.time_to_live()) {
      etcdserverpb::LeaseTimeToLiveRequest q;
      q.set_id(req.id());
      etcdserverpb::LeaseTimeToLiveResponse r;
      const bool found = node->store().LeaseTimeToLive(q, SteadyNowMs(), &r).ok() && r.ttl() >= 0;
      resp->set_ttl(found ? r.grantedttl() : 0);
      resp->set_remaining_ttl(found ? r.ttl() : -1);
      return found;
    }
    int64_t ttl = 0;
    const bool found = node->store().LeaseRenew(req.id(), SteadyNowMs(), &ttl).ok();
    resp->set_ttl(found ? ttl : 0);
    return found;
  }

  // Validates a stream's hello: same cluster, addressed to this member.
  static bool HelloOk(Node* node, const kvdpb::PeerHello& h) {
    return h.cluster_id() == node->cluster_id() && h.to_id() == node->member_id();
  }

  class StreamReactor final : public grpc::ServerReadReactor<kvdpb::PeerBatch> {
   public:
    explicit StreamReactor(Node* node) : node_(node) { StartRead(&batch_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      if (batch_.has_hello()) {
        if (!HelloOk(node_, batch_.hello())) {
          KVD_LOG("peer stream from %s rejected: cluster or member id mismatch",
                  FormatId(batch_.hello().from_id()).c_str());
          Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch"));
          return;
        }
        node_->LearnPeer(batch_.hello());
        greeted_ = true;
        from_ = batch_.hello().from_id();
      }
      if (!greeted_) {
        Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no hello"));
        return;
      }
      // etcd's rafthttp answers a removed member 410 Gone; the sender then stops itself.
      if (node_->membership().IsRemoved(from_)) {
        Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, kMemberRemovedMessage));
        return;
      }
      for (const std::string& bytes : batch_.messages()) {
        raft::Message m;
        if (!raft::DecodeMessage(bytes, &m).ok() || m.to != node_->member_id()) continue;
        (void)node_->Receive(std::move(m));  // a full queue drops it; raft retransmits
      }
      batch_.Clear();
      StartRead(&batch_);
    }
    void OnDone() override { delete this; }

   private:
    Node* node_;
    kvdpb::PeerBatch batch_;
    bool greeted_ = false;
    uint64_t from_ = 0;
  };

  class SnapshotReactor final : public grpc::ServerReadReactor<kvdpb::SnapshotChunk> {
   public:
    SnapshotReactor(Node* node, const TransportLimits& limits) : node_(node), limits_(limits) {
      static std::atomic<uint64_t> seq{0};
      path_ = node_->config().data_dir + "/member/snap-recv-" + std::to_string(::getpid()) + "-" +
              std::to_string(seq.fetch_add(1)) + ".tmp";
      StartRead(&chunk_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        out_.close();
        if (!have_msg_ || !out_) return Fail("incomplete snapshot");
        if (!node_->ReceiveSnapshot(std::move(msg_), path_)) return Fail("node busy");
        Finish(grpc::Status::OK);
        return;
      }
      if (!have_msg_) {
        if (!chunk_.has_hello() || !HelloOk(node_, chunk_.hello())) return Fail("bad hello");
        if (!raft::DecodeMessage(chunk_.message(), &msg_).ok() ||
            msg_.type != raft::MessageType::kMsgSnap) {
          return Fail("bad snapshot message");
        }
        out_.open(path_, std::ios::binary | std::ios::trunc);
        if (!out_) return Fail("cannot create " + path_);
        have_msg_ = true;
      }
      bytes_ += chunk_.data().size();
      if (bytes_ > limits_.snapshot_bytes_max) return Fail("snapshot too large");
      out_.write(chunk_.data().data(), static_cast<std::streamsize>(chunk_.data().size()));
      if (!out_) return Fail("write " + path_);
      chunk_.Clear();
      StartRead(&chunk_);
    }
    void OnDone() override { delete this; }

   private:
    void Fail(const std::string& why) {
      KVD_LOG("snapshot receive failed: %s", why.c_str());
      out_.close();
      std::error_code ec;
      std::filesystem::remove(path_, ec);
      Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why));
    }

    Node* node_;
    TransportLimits limits_;
    std::string path_;
    std::ofstream out_;
    kvdpb::SnapshotChunk chunk_;
    raft::Message msg_;
    bool have_msg_ = false;
    uint64_t bytes_ = 0;
  };

  Node* node_;
  TransportLimits limits_;
};

// ---- outbound ---------------------------------------------------------------------------------

Transport::Transport(Node* node, std::map<uint64_t, std::string> peers, TransportLimits limits)
    : node_(node), limits_(limits), service_(std::make_unique<Service>(node, limits)) {
  // Reconnect fast: a restarted member must rejoin within a few heartbeats, not gRPC's 1-120 s.
  channel_args_.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  channel_args_.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  channel_args_.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  channel_args_.SetMaxSendMessageSize(-1);
  // Detect a peer that stopped answering (paused, partitioned) within seconds even while a
  // stream is blocked on flow control: a snapshot send holds the store's read gate (see
  // MvccStore::WriteCheckpoint), which a restore on this member would otherwise wait on for as
  // long as the peer stays stopped. The peer server accepts pings every 5 s (SetKeepalive).
  channel_args_.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10 * 1000);
  channel_args_.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5 * 1000);
  channel_args_.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  channel_args_.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  for (auto& [id, target] : peers) peers_.emplace(id, MakePeer(id, target));
}

std::unique_ptr<Transport::Peer> Transport::MakePeer(uint64_t id, const std::string& target) const {
  auto p = std::make_unique<Peer>();
  p->id = id;
  p->target = target;
  p->channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), channel_args_);
  p->stub = kvdpb::Peer::NewStub(p->channel);
  return p;
}

bool Transport::Connected(uint64_t id) {
  std::shared_ptr<grpc::Channel> channel;
  {
    std::lock_guard<std::mutex> lk(peers_mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return false;
    channel = it->second->channel;
  }
  // READY: the connection is open. It leaves READY as soon as gRPC sees the socket close (the
  // peer's process died), without waiting for a write to fail.
  return channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
}

void Transport::StopPeer(Peer* p) {
  {
    std::lock_guard<std::mutex> lk(p->mu);
    p->stop = true;
    if (p->active != nullptr) p->active->TryCancel();
  }
  p->cv.notify_all();
  if (p->thread.joinable()) p->thread.join();
}

void Transport::SetPeers(const std::map<uint64_t, std::string>& peers) {
  std::vector<std::unique_ptr<Peer>> gone;
  {
    std::lock_guard<std::mutex> lk(peers_mu_);
    for (auto it = peers_.begin(); it != peers_.end();) {
      auto want = peers.find(it->first);
      if (want == peers.end() || want->second != it->second->target) {
        gone.push_back(std::move(it->second));
        it = peers_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [id, target] : peers) {
      if (peers_.count(id) > 0) continue;
      auto p = MakePeer(id, target);
      if (started_) {
        Peer* raw = p.get();
        p->thread = std::thread([this, raw] { SenderLoop(raw); });
      }
      KVD_LOG("peer %s at %s added", FormatId(id).c_str(), target.c_str());
      peers_.emplace(id, std::move(p));
    }
  }
  for (auto& p : gone) {
    KVD_LOG("peer %s at %s removed", FormatId(p->id).c_str(), p->target.c_str());
    StopPeer(p.get());
  }
}

std::map<uint64_t, PeerLink> Transport::Links(std::chrono::milliseconds healthy_for) {
  const auto now = std::chrono::steady_clock::now();
  std::map<uint64_t, PeerLink> out;
  std::lock_guard<std::mutex> lk(peers_mu_);
  for (auto& [id, p] : peers_) {
    std::lock_guard<std::mutex> plk(p->mu);
    PeerLink l;
    l.active = p->up_since.has_value();
    l.active_long_enough = l.active && now - *p->up_since >= healthy_for;
    out[id] = l;
  }
  return out;
}

Transport::~Transport() { Stop(); }

grpc::Service* Transport::service() { return service_.get(); }

void Transport::Start() {
  std::lock_guard<std::mutex> lk(peers_mu_);
  SERVER_CHECK(!started_, "transport started twice");
  started_ = true;
  for (auto& [id, p] : peers_) {
    Peer* raw = p.get();
    p->thread = std::thread([this, raw] { SenderLoop(raw); });
  }
}

void Transport::CancelSnapshotSends() {
  std::lock_guard<std::mutex> peers_lk(peers_mu_);
  for (auto& [id, p] : peers_) {
    std::lock_guard<std::mutex> lk(p->mu);
    if (p->snapshot_call != nullptr) {
      KVD_LOG("canceling the snapshot being sent to %s", FormatId(id).c_str());
      p->snapshot_call->TryCancel();
    }
  }
}

void Transport::Stop() {
  std::map<uint64_t, std::unique_ptr<Peer>> peers;
  {
    std::lock_guard<std::mutex> lk(peers_mu_);
    peers.swap(peers_);
  }
  for (auto& [id, p] : peers) {
    std::lock_guard<std::mutex> lk(p->mu);
    p->stop = true;
    if (p->active != nullptr) p->active->TryCancel();
    p->cv.notify_all();
  }
  for (auto& [id, p] : peers) {
    if (p->thread.joinable()) p->thread.join();
  }
}

void Transport::Send(std::vector<raft::Message> msgs) {
  std::vector<uint64_t> unreachable;
  {
    std::lock_guard<std::mutex> plk(peers_mu_);
    for (raft::Message& m : msgs) {
      auto it = peers_.find(m.to);
      if (it == peers_.end()) continue;  // not a peer we know (removed member)
      Peer& p = *it->second;
      bool full = false;
      {
        std::lock_guard<std::mutex> lk(p.mu);
        if (p.queue.size() >= limits_.queue_msgs_max) {
          full = true;
        } else {
          p.queue.push_back(std::move(m));
        }
      }
      if (full) {
        unreachable.push_back(p.id);
      } else {
        p.cv.notify_one();
      }
    }
  }
  for (uint64_t id : unreachable) node_->ReportUnreachable(id);
}

void Transport::MaybeProbe(Peer* peer) {
  EtcdMetrics* metrics = node_->metrics();
  const auto now = std::chrono::steady_clock::now();
  if (metrics == nullptr || now < peer->next_probe || peer->probe_in_flight->exchange(true)) {
    return;
  }
  peer->next_probe = now + std::chrono::milliseconds(limits_.probe_interval_ms);
  struct Call {
    std::shared_ptr<kvdpb::Peer::Stub> stub;  // keeps the channel alive until completion
    std::shared_ptr<std::atomic<bool>> in_flight;
    Histogram* rtt = nullptr;
    grpc::ClientContext ctx;
    kvdpb::PeerHello req;
    kvdpb::PeerAck resp;
    std::chrono::steady_clock::time_point started;
  };
  auto* call = new Call();  // owned by the completion callback below
  call->stub = peer->stub;
  call->in_flight = peer->probe_in_flight;
  call->rtt = &metrics->peer_round_trip_time_seconds.WithLabels({FormatId(peer->id)});
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(limits_.probe_timeout_ms));
  call->req = node_->Hello(peer->id);
  call->started = now;
  call->stub->async()->Probe(&call->ctx, &call->req, &call->resp, [call](grpc::Status s) {
    // Only answered probes are round trips; a peer that is down shows as no new samples.
    if (s.ok()) {
      call->rtt->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - call->started).count());
    }
    call->in_flight->store(false);
    delete call;
  });
}

void Transport::SenderLoop(Peer* peer) {
  NameThisThread("kvd-send");
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientWriter<kvdpb::PeerBatch>> writer;
  kvdpb::PeerAck ack;
  auto close_stream = [&] {
    if (writer) {
      grpc::Status st = writer->Finish();
      writer.reset();
      if (st.error_message() == kMemberRemovedMessage) node_->ReportRemoved();
    }
    std::lock_guard<std::mutex> lk(peer->mu);
    peer->active = nullptr;
    peer->up_since.reset();
    ctx.reset();
  };
  bool logged_down = false;
  // Open the stream at once, even with nothing to send: its hello tells the peer this member's
  // name and client URLs (a follower otherwise never talks to the other followers).
  bool need_hello = true;
  for (;;) {
    std::vector<raft::Message> batch;
    {
      std::unique_lock<std::mutex> lk(peer->mu);
      // Idle for idle_ping_ms: fall through and write an empty batch, which checks the link
      // (and lets a member that was removed hear about it).
      (void)peer->cv.wait_for(lk, std::chrono::milliseconds(limits_.idle_ping_ms),
                              [&] { return peer->stop || !peer->queue.empty() || need_hello; });
      if (peer->stop) break;
      MaybeProbe(peer);
      size_t bytes = 0;
      while (!peer->queue.empty() && batch.size() < limits_.batch_msgs_max &&
             bytes < limits_.batch_bytes_max) {
        // A snapshot goes alone, through its own call.
        if (peer->queue.front().type == raft::MessageType::kMsgSnap && !batch.empty()) break;
        batch.push_back(std::move(peer->queue.front()));
        peer->queue.pop_front();
        for (const auto& e : batch.back().entries) bytes += raft::EntrySizeBytes(e);
        if (batch.back().type == raft::MessageType::kMsgSnap) break;
      }
    }
    if (batch.size() == 1 && batch[0].type == raft::MessageType::kMsgSnap) {
      const bool ok = SendSnapshot(peer, batch[0]);
      node_->ReportSnapshot(peer->id, ok);
      continue;
    }
    kvdpb::PeerBatch out;
    if (!writer) {
      ctx = std::make_unique<grpc::ClientContext>();
      {
        std::lock_guard<std::mutex> lk(peer->mu);
        if (peer->stop) break;
        peer->active = ctx.get();
      }
      writer = peer->stub->Stream(ctx.get(), &ack);
      *out.mutable_hello() = node_->Hello(peer->id);
    }
    for (const raft::Message& m : batch) out.add_messages(raft::EncodeMessage(m));
    if (writer->Write(out)) {
      need_hello = false;
      {
        std::lock_guard<std::mutex> lk(peer->mu);
        if (!peer->up_since) peer->up_since = std::chrono::steady_clock::now();
      }
      if (logged_down) KVD_LOG("peer %s is reachable again", FormatId(peer->id).c_str());
      logged_down = false;
      continue;
    }
    // The stream broke: whatever is queued would go to a dead stream too. Drop it, tell raft,
    // pause, and reconnect on the next message.
    close_stream();
    {
      std::lock_guard<std::mutex> lk(peer->mu);
      peer->queue.clear();
    }
    if (!logged_down)
      KVD_LOG("peer %s unreachable at %s", FormatId(peer->id).c_str(), peer->target.c_str());
    logged_down = true;
    need_hello = true;  // reconnect (and re-introduce ourselves) after the pause
    node_->ReportUnreachable(peer->id);
    std::unique_lock<std::mutex> lk(peer->mu);
    peer->cv.wait_for(lk, std::chrono::milliseconds(limits_.retry_pause_ms),
                      [&] { return peer->stop; });
    if (peer->stop) break;
  }
  close_stream();
}

void Transport::RenewLease(uint64_t leader, int64_t lease_id, int timeout_ms,
                           std::function<void(const grpc::Status&, int64_t ttl)> done) {
  AskLeader(leader, lease_id, false, timeout_ms,
            [done = std::move(done)](const grpc::Status& s, const kvdpb::LeaseRenewResponse& r) {
              done(s, r.ttl());
            });
}

void Transport::LeaseTimeToLive(uint64_t leader, int64_t lease_id, int timeout_ms,
                                std::function<void(const grpc::Status&, int64_t remaining)> done) {
  AskLeader(leader, lease_id, true, timeout_ms,
            [done = std::move(done)](const grpc::Status& s, const kvdpb::LeaseRenewResponse& r) {
              done(s, r.remaining_ttl());
            });
}

void Transport::AskLeader(
    uint64_t leader, int64_t lease_id, bool time_to_live, int timeout_ms,
    std::function<void(const grpc::Status&, const kvdpb::LeaseRenewResponse&)> done) {
  std::shared_ptr<kvdpb::Peer::Stub> stub;
  {
    std::lock_guard<std::mutex> lk(peers_mu_);
    auto it = peers_.find(leader);
    if (it != peers_.end()) stub = it->second->stub;
  }
  if (!stub) {
    done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"),
         kvdpb::LeaseRenewResponse());
    return;
  }
  struct Call {
    std::shared_ptr<kvdpb::Peer::Stub> stub;
    grpc::ClientContext ctx;
    kvdpb::LeaseRenewRequest req;
    kvdpb::LeaseRenewResponse resp;
    std::function<void(const grpc::Status&, const kvdpb::LeaseRenewResponse&)> done;
  };
  auto* call = new Call();  // owned by the completion callback below
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  *call->req.mutable_hello() = node_->Hello(leader);
  call->req.set_id(lease_id);
  call->req.set_time_to_live(time_to_live);
  call->done = std::move(done);
  call->stub = stub;
  stub->async()->LeaseRenew(&call->ctx, &call->req, &call->resp, [call](grpc::Status s) {
    call->done(s, call->resp);
    delete call;
  });
}

void Transport::ForwardMemberChange(
    uint64_t leader, kvdpb::MemberChangeRequest req, int timeout_ms,
    std::function<void(const grpc::Status&, const kvdpb::MemberChangeResponse&)> done) {
  std::shared_ptr<kvdpb::Peer::Stub> stub;
  {
    std::lock_guard<std::mutex> lk(peers_mu_);
    auto it = peers_.find(leader);
    if (it != peers_.end()) stub = it->second->stub;
  }
  if (!stub) {
    done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"), {});
    return;
  }
  struct Call {
    std::shared_ptr<kvdpb::Peer::Stub> stub;
    grpc::ClientContext ctx;
    kvdpb::MemberChangeRequest req;
    kvdpb::MemberChangeResponse resp;
    std::function<void(const grpc::Status&, const kvdpb::MemberChangeResponse&)> done;
  };
  auto* call = new Call();  // owned by the completion callback below
  call->stub = stub;
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  call->req = std::move(req);
  *call->req.mutable_hello() = node_->Hello(leader);
  call->done = std::move(done);
  stub->async()->MemberChange(&call->ctx, &call->req, &call->resp, [call](grpc::Status s) {
    call->done(s, call->resp);
    delete call;
  });
}

void Transport::HashKV(
    uint64_t peer, int64_t revision, int timeout_ms,
    std::function<void(const grpc::Status&, const kvdpb::PeerHashKVResponse&)> done) {
  std::shared_ptr<kvdpb::Peer::Stub> stub;
  {
    std::lock_guard<std::mutex> lk(peers_mu_);
    auto it = peers_.find(peer);
    if (it != peers_.end()) stub = it->second->stub;
  }
  if (!stub) {
    done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "unknown peer"), {});
    return;
  }
  struct Call {
    std::shared_ptr<kvdpb::Peer::Stub> stub;
    grpc::ClientContext ctx;
    kvdpb::PeerHashKVRequest req;
    kvdpb::PeerHashKVResponse resp;
    std::function<void(const grpc::Status&, const kvdpb::PeerHashKVResponse&)> done;
  };
  auto* call = new Call();  // owned by the completion callback below
  call->stub = stub;
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  *call->req.mutable_hello() = node_->Hello(peer);
  call->req.set_revision(revision);
  call->done = std::move(done);
  stub->async()->HashKV(&call->ctx, &call->req, &call->resp, [call](grpc::Status s) {
    call->done(s, call->resp);
    delete call;
  });
}

bool Transport::SendSnapshot(Peer* peer, const raft::Message& m) {
  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lk(peer->mu);
    if (peer->stop) return false;
    peer->active = &ctx;
    peer->snapshot_call = &ctx;
  }
  kvdpb::PeerAck ack;
  auto writer = peer->stub->Snapshot(&ctx, &ack);
  kvdpb::SnapshotChunk first;
  *first.mutable_hello() = node_->Hello(peer->id);
  first.set_message(raft::EncodeMessage(m));
  bool ok = writer->Write(first);
  if (ok) {
    kvstore::Status s = node_->store().WriteCheckpoint(
        [&](std::string_view piece) -> kvstore::Status {
          kvdpb::SnapshotChunk c;
          c.set_data(std::string(piece));
          if (!writer->Write(c)) return {kvstore::Code::kUnavailable, "peer stream broken"};
          return kvstore::Status::Ok();
        },
        limits_.snapshot_chunk_bytes);
    ok = s.ok();
    if (!ok) KVD_LOG("snapshot to %s failed: %s", FormatId(peer->id).c_str(), s.message().c_str());
  }
  if (ok) ok = writer->WritesDone();
  grpc::Status st = writer->Finish();
  {
    std::lock_guard<std::mutex> lk(peer->mu);
    peer->active = nullptr;
    peer->snapshot_call = nullptr;
  }
  ok = ok && st.ok();
  KVD_LOG("snapshot at index %llu to %s: %s",
          static_cast<unsigned long long>(m.snapshot.metadata.index), FormatId(peer->id).c_str(),
          ok ? "sent" : st.error_message().c_str());
  return ok;
}

}  // namespace server
