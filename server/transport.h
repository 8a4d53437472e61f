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
  // Raft thread: queues each message for its destination.
  void Send(std::vector<raft::Message> msgs);
  // Forwards a lease keep-alive to peer `leader`; `done` gets the granted TTL (0: no such
  // lease) or the failure, on a gRPC thread. Bounded by `timeout_ms`.
  void RenewLease(uint64_t leader, int64_t lease_id, int timeout_ms,
                  std::function<void(const grpc::Status&, int64_t ttl)> done);
  // Asks peer `leader` for the remaining TTL of a lease; `done` gets it (-1: no such lease) or
  // the failure, on a gRPC thread. Bounded by `timeout_ms`.
  void LeaseTimeToLive(uint64_t leader, int64_t lease_id, int timeout_ms,
                       std::function<void(const grpc::Status&, int64_t ttl)> done);
  // To register on the peer listener (lives as long as the Transport).
  grpc::Service* service();

 private:
  struct Peer;
  class Service;
  void SenderLoop(Peer* peer);
  bool SendSnapshot(Peer* peer, const raft::Message& m);

  Node* node_;
  TransportLimits limits_;
  std::map<uint64_t, std::unique_ptr<Peer>> peers_;
  std::unique_ptr<Service> service_;
  bool started_ = false;
};

}  // namespace server
