#include "raft/raw_node.h"

#include "raft/codec.h"

namespace raft {

bool CanSendBeforePersist(const Message& m) {
  switch (m.type) {
    case MessageType::kMsgApp:
    case MessageType::kMsgSnap:
    case MessageType::kMsgHeartbeat:
    case MessageType::kMsgTimeoutNow:
    case MessageType::kMsgReadIndexResp:
      return true;
    default:
      return false;
  }
}

RawNode::RawNode(const Config& config) : raft_(config) {
  prev_soft_ = raft_.soft_state();
  prev_hard_ = raft_.hard_state();
}

void RawNode::Tick() { raft_.Tick(); }

raft::Status RawNode::Campaign() {
  Message m;
  m.type = MessageType::kMsgHup;
  m.from = raft_.id();
  return raft_.Step(m);
}

raft::Status RawNode::Propose(std::string data) {
  Message m;
  m.type = MessageType::kMsgProp;
  m.from = raft_.id();
  Entry e;
  e.data = std::move(data);
  m.entries.push_back(std::move(e));
  return raft_.Step(m);
}

raft::Status RawNode::ProposeBatch(std::vector<std::string>* datas) {
  RAFT_CHECK(!datas->empty(), "ProposeBatch without entries");
  Message m;
  m.type = MessageType::kMsgProp;
  m.from = raft_.id();
  m.entries.resize(datas->size());
  for (size_t i = 0; i < datas->size(); ++i) m.entries[i].data = std::move((*datas)[i]);
  raft::Status s = raft_.Step(m);
  if (!s.ok()) {
    // Step took the message by const reference: the payloads are intact, hand them back.
    for (size_t i = 0; i < datas->size(); ++i) (*datas)[i] = std::move(m.entries[i].data);
  }
  return s;
}

raft::Status RawNode::ProposeConfChange(const ConfChange& cc) {
  if (cc.node_id == kNone) return {Code::kInvalidArgument, "conf change without node id"};
  Message m;
  m.type = MessageType::kMsgProp;
  m.from = raft_.id();
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = EncodeConfChange(cc);
  m.entries.push_back(std::move(e));
  return raft_.Step(m);
}

ConfState RawNode::ApplyConfChange(const ConfChange& cc) { return raft_.ApplyConfChange(cc); }

raft::Status RawNode::Step(const Message& m) {
  if (!IsNetworkMessage(m.type)) return {Code::kStepLocalMsg, "local message from the network"};
  if (IsResponseMessage(m.type) && raft_.progress().find(m.from) == raft_.progress().end() &&
      raft_.state() == StateType::kLeader) {
    return {Code::kPeerNotFound, "response from unknown node " + std::to_string(m.from)};
  }
  return raft_.Step(m);
}

raft::Status RawNode::ReadIndex(std::string ctx) {
  Message m;
  m.type = MessageType::kMsgReadIndex;
  m.from = raft_.id();
  m.context = std::move(ctx);
  return raft_.Step(m);
}

raft::Status RawNode::TransferLeader(uint64_t transferee) {
  Message m;
  m.type = MessageType::kMsgTransferLeader;
  m.from = transferee;
  return raft_.Step(m);
}

void RawNode::ReportUnreachable(uint64_t id) {
  Message m;
  m.type = MessageType::kMsgUnreachable;
  m.from = id;
  (void)raft_.Step(m);
}

void RawNode::ReportSnapshot(uint64_t id, bool ok) {
  Message m;
  m.type = MessageType::kMsgSnapStatus;
  m.from = id;
  m.reject = !ok;
  (void)raft_.Step(m);
}

bool RawNode::HasReady() const {
  if (ready_outstanding_) return false;
  if (raft_.soft_state() != prev_soft_) return true;
  const HardState hs = raft_.hard_state();
  if (!hs.empty() && hs != prev_hard_) return true;
  const RaftLog& log = raft_.log();
  if (log.HasPendingSnapshot() || !log.unstable().entries.empty()) return true;
  if (raft_.HasPendingMsgsOrReads()) return true;
  return log.HasNextCommittedEntries();
}

raft::Ready RawNode::Ready() {
  RAFT_CHECK(!ready_outstanding_, "Ready() called twice without Advance()");
  raft::Ready rd;
  const SoftState ss = raft_.soft_state();
  if (ss != prev_soft_) rd.soft_state = ss;
  const HardState hs = raft_.hard_state();
  if (!hs.empty() && hs != prev_hard_) rd.hard_state = hs;
  const RaftLog& log = raft_.log();
  if (log.HasPendingSnapshot()) rd.snapshot = *log.unstable().snapshot;
  rd.entries = log.unstable().entries;
  rd.committed_entries = log.NextCommittedEntries();
  rd.messages.swap(raft_.msgs());
  rd.read_states.swap(raft_.read_states());
  // As etcd-io/raft's MustSync: a hard state whose term and vote are unchanged only moved the
  // commit index, which is not a promise to anyone (a restarted node relearns it from the
  // leader), so it may be written without an fsync. Entries, snapshots, terms and votes are.
  const bool term_or_vote_changed = rd.hard_state && (rd.hard_state->term != prev_hard_.term ||
                                                      rd.hard_state->vote != prev_hard_.vote);
  rd.must_sync = term_or_vote_changed || !rd.entries.empty() || !rd.snapshot.empty();
  ready_outstanding_ = true;
  // Only what Advance() needs; the messages and payloads stay with the caller.
  last_ready_ = raft::Ready();
  last_ready_.soft_state = rd.soft_state;
  last_ready_.hard_state = rd.hard_state;
  last_ready_.snapshot.metadata = rd.snapshot.metadata;
  if (!rd.entries.empty()) last_ready_.entries.push_back(rd.entries.back());
  if (!rd.committed_entries.empty()) {
    last_ready_.committed_entries.push_back(rd.committed_entries.back());
  }
  return rd;
}

void RawNode::Advance() {
  RAFT_CHECK(ready_outstanding_, "Advance() without Ready()");
  ready_outstanding_ = false;
  const raft::Ready& rd = last_ready_;
  if (rd.soft_state) prev_soft_ = *rd.soft_state;
  if (rd.hard_state) prev_hard_ = *rd.hard_state;
  if (!rd.snapshot.empty()) {
    raft_.OnSnapshotPersisted(rd.snapshot.metadata.index);
    raft_.OnApplied(rd.snapshot.metadata.index);
  }
  if (!rd.entries.empty()) raft_.OnPersisted(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed_entries.empty()) raft_.OnApplied(rd.committed_entries.back().index);
}

NodeStatus RawNode::Status() const { return raft_.GetStatus(); }

}  // namespace raft
