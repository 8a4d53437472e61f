// server::Transport: raft messages between members over gRPC (proto/kvd_peer.proto).
//
// Outbound: one sender thread and one long-lived client stream (Peer/Stream) per peer, fed by a
// bounded queue; each stream write carries a batch of messages (raft/codec.h encoding). A
// failed write or a full queue drops the queued messages and reports the peer unreachable to
// raft (which then probes it again gently). A MsgSnap is sent through its own Peer/Snapshot call
// that streams a fresh MvccStore checkpoint after the message; the outcome goes back to raft
// through ReportSnapshot.
//
// Inbound: PeerService (gRPC callback API, no thread per stream) decodes batches and hands the
// messages to Node::Receive; snapshot chunks are written to a file in the data dir and handed
// over with Node::ReceiveSnapshot once complete.
//
// Thread-safety: Send from the raft thread; Start/Stop from the owner; the service from gRPC.
#pragma once

#include <grpcpp/support/channel_arguments.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proto/kvd_peer.grpc.pb.h"
#include "raft/types.h"
#include "server/membership.h"

namespace server {

class Node;

struct TransportLimits {
  // Messages queued per peer; more are dropped (raft retransmits).
  size_t queue_msgs_max = 4096;
  // Upper bounds of one stream write.
  size_t batch_msgs_max = 256;
  size_t batch_bytes_max = 4u << 20;
  // Checkpoint chunk size for snapshots, and the largest checkpoint accepted (bytes).
  size_t snapshot_chunk_bytes = 1u << 20;
  uint64_t snapshot_bytes_max = 16ull << 30;
  // Pause after a failed stream before reconnecting (milliseconds).
  int retry_pause_ms = 100;
  // An idle stream gets an empty batch this often (milliseconds), so a broken link (or a
  // member told it was removed) is noticed even when raft has nothing to send.
  int idle_ping_ms = 500;
  // Each peer gets a Probe call this often, timed into etcd_network_peer_round_trip_time_seconds
  // (etcd's rafthttp prober: every 4 s); at most one in flight per peer, bounded by
  // probe_timeout_ms (milliseconds).
  int probe_interval_ms = 4000;
  int probe_timeout_ms = 5000;
};

class Transport {
 public:
  // peers: member id -> "host:port" of its peer listener (this member excluded).
  Transport(Node* node, std::map<uint64_t, std::string> peers, TransportLimits limits);
  ~Transport();  // Stop()s
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  void Start();
  void Stop();
  // Cancels the snapshot streams in flight (each fails and is reported to raft as failed);
  // snapshots queued later are sent as usual. Any thread.
  void CancelSnapshotSends();
  // Raft thread: queues each message for its destination.
  void Send(std::vector<raft::Message> msgs);
  // Forwards a lease keep-alive to peer `leader`; `done` gets the granted TTL (0: no such
  // lease) or the failure, on a gRPC thread. Bounded by `timeout_ms`.
  void RenewLease(uint64_t leader, int64_t lease_id, int timeout_ms,
                  std::function<void(const grpc::Status&, int64_t ttl)> done);
  // Forwards a Cluster RPC to peer `leader`; `done` gets the leader's answer or the failure, on
  // a gRPC thread. Bounded by `timeout_ms`.
  void ForwardMemberChange(
      uint64_t leader, kvdpb::MemberChangeRequest req, int timeout_ms,
      std::function<void(const grpc::Status&, const kvdpb::MemberChangeResponse&)> done);
  // Replaces the set of peers (id -> "host:port"): starts senders for new ones, stops those
  // gone or moved. Any thread; blocks while stopped senders finish their current write.
  void SetPeers(const std::map<uint64_t, std::string>& peers);
  // Whether the connection to peer `id` is open now (its channel is READY). Any thread; cheap
  // (the raft thread asks every tick about its leader).
  bool Connected(uint64_t id);
  // How each peer's stream looks now; `healthy_for`: how long a link must have been up to
  // count as active_long_enough (etcd's HealthInterval).
  std::map<uint64_t, PeerLink> Links(std::chrono::milliseconds healthy_for);
  // Asks peer `leader` for the remaining TTL of a lease (-1: no such lease), without renewing
  // it; the same contract as RenewLease otherwise.
  void LeaseTimeToLive(uint64_t leader, int64_t lease_id, int timeout_ms,
                       std::function<void(const grpc::Status&, int64_t remaining)> done);
  // Asks `peer` for the hash of its key-value history at `revision` after a ReadIndex round
  // (kvdpb.Peer/HashKV); `done` gets the answer or the failure, on a gRPC thread (at once,
  // UNAVAILABLE, for an unknown peer). Bounded by `timeout_ms`.
  void HashKV(uint64_t peer, int64_t revision, int timeout_ms,
              std::function<void(const grpc::Status&, const kvdpb::PeerHashKVResponse&)> done);
  // To register on the peer listener (lives as long as the Transport).
  grpc::Service* service();

 private:
  struct Peer;
  class Service;
  void SenderLoop(Peer* peer);
  // Starts a Probe of `peer` when its interval has passed and none is in flight (sender
  // thread of `peer`; never blocks).
  void MaybeProbe(Peer* peer);
  void AskLeader(uint64_t leader, int64_t lease_id, bool time_to_live, int timeout_ms,
                 std::function<void(const grpc::Status&, const kvdpb::LeaseRenewResponse&)> done);
  bool SendSnapshot(Peer* peer, const raft::Message& m);
  std::unique_ptr<Peer> MakePeer(uint64_t id, const std::string& target) const;
  static void StopPeer(Peer* p);

  Node* node_;
  TransportLimits limits_;
  grpc::ChannelArguments channel_args_;
  // Guards peers_ and started_ (Send runs on the raft thread, forwards on gRPC threads, peer
  // changes on the raft thread).
  std::mutex peers_mu_;
  std::map<uint64_t, std::unique_ptr<Peer>> peers_;
  std::unique_ptr<Service> service_;
  bool started_ = false;
};

}  // namespace server
