#include "raft/types.h"

namespace raft {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kCompacted:
      return "Compacted";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kSnapshotTemporarilyUnavailable:
      return "SnapshotTemporarilyUnavailable";
    case Code::kSnapshotOutOfDate:
      return "SnapshotOutOfDate";
    case Code::kProposalDropped:
      return "ProposalDropped";
    case Code::kResourceExhausted:
      return "ResourceExhausted";
    case Code::kPeerNotFound:
      return "PeerNotFound";
    case Code::kStepLocalMsg:
      return "StepLocalMsg";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kCorrupt:
      return "Corrupt";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

void CheckFailed(const char* file, int line, const char* cond, const std::string& state) {
  std::fprintf(stderr, "RAFT_CHECK failed at %s:%d: %s\n  state: %s\n", file, line, cond,
               state.c_str());
  std::fflush(stderr);
  std::abort();
}

const char* StateName(StateType s) {
  switch (s) {
    case StateType::kFollower:
      return "StateFollower";
    case StateType::kCandidate:
      return "StateCandidate";
    case StateType::kLeader:
      return "StateLeader";
    case StateType::kPreCandidate:
      return "StatePreCandidate";
  }
  return "StateUnknown";
}

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kMsgHup:
      return "MsgHup";
    case MessageType::kMsgBeat:
      return "MsgBeat";
    case MessageType::kMsgProp:
      return "MsgProp";
    case MessageType::kMsgApp:
      return "MsgApp";
    case MessageType::kMsgAppResp:
      return "MsgAppResp";
    case MessageType::kMsgVote:
      return "MsgVote";
    case MessageType::kMsgVoteResp:
      return "MsgVoteResp";
    case MessageType::kMsgSnap:
      return "MsgSnap";
    case MessageType::kMsgHeartbeat:
      return "MsgHeartbeat";
    case MessageType::kMsgHeartbeatResp:
      return "MsgHeartbeatResp";
    case MessageType::kMsgUnreachable:
      return "MsgUnreachable";
    case MessageType::kMsgSnapStatus:
      return "MsgSnapStatus";
    case MessageType::kMsgCheckQuorum:
      return "MsgCheckQuorum";
    case MessageType::kMsgTransferLeader:
      return "MsgTransferLeader";
    case MessageType::kMsgTimeoutNow:
      return "MsgTimeoutNow";
    case MessageType::kMsgReadIndex:
      return "MsgReadIndex";
    case MessageType::kMsgReadIndexResp:
      return "MsgReadIndexResp";
    case MessageType::kMsgPreVote:
      return "MsgPreVote";
    case MessageType::kMsgPreVoteResp:
      return "MsgPreVoteResp";
    case MessageType::kNumMessageTypes:
      break;
  }
  return "MsgUnknown";
}

bool IsNetworkMessage(MessageType t) {
  switch (t) {
    case MessageType::kMsgHup:
    case MessageType::kMsgBeat:
    case MessageType::kMsgUnreachable:
    case MessageType::kMsgSnapStatus:
    case MessageType::kMsgCheckQuorum:
    case MessageType::kNumMessageTypes:
      return false;
    default:
      return true;
  }
}

bool IsResponseMessage(MessageType t) {
  return t == MessageType::kMsgAppResp || t == MessageType::kMsgVoteResp ||
         t == MessageType::kMsgPreVoteResp || t == MessageType::kMsgHeartbeatResp ||
         t == MessageType::kMsgReadIndexResp;
}

namespace {
std::string Ids(const std::vector<uint64_t>& ids) {
  std::string s;
  for (uint64_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return "(" + s + ")";
}
}  // namespace

std::string Describe(const Entry& e) {
  std::string s = std::to_string(e.term) + "/" + std::to_string(e.index);
  if (e.type == EntryType::kConfChange) return s + " ConfChange";
  return s + " " + (e.data.empty() ? "(empty)" : "\"" + e.data + "\"");
}

std::string Describe(const Message& m) {
  std::string s = std::to_string(m.from) + "->" + std::to_string(m.to) + " " +
                  MessageTypeName(m.type) + " Term:" + std::to_string(m.term) +
                  " Log:" + std::to_string(m.log_term) + "/" + std::to_string(m.index);
  if (m.reject) s += " Rejected (Hint: " + std::to_string(m.reject_hint) + ")";
  if (m.commit != 0) s += " Commit:" + std::to_string(m.commit);
  if (!m.entries.empty()) {
    s += " Entries:[";
    for (size_t i = 0; i < m.entries.size(); ++i) s += (i ? " " : "") + Describe(m.entries[i]);
    s += "]";
  }
  if (m.has_snapshot) {
    s += " Snapshot: Index:" + std::to_string(m.snapshot.metadata.index) +
         " Term:" + std::to_string(m.snapshot.metadata.term) + " " +
         Describe(m.snapshot.metadata.conf_state);
  }
  if (!m.context.empty()) {
    bool printable = m.context.size() <= 32;
    for (char c : m.context) printable = printable && c >= 0x20 && c < 0x7f;
    s += " Context:" + (printable ? m.context : std::to_string(m.context.size()) + "B");
  }
  return s;
}

std::string Describe(const HardState& hs) {
  return "Term:" + std::to_string(hs.term) + " Vote:" + std::to_string(hs.vote) +
         " Commit:" + std::to_string(hs.commit);
}

std::string Describe(const ConfState& cs) {
  return "Voters:" + Ids(cs.voters) + " Learners:" + Ids(cs.learners);
}

std::string Describe(const ConfChange& cc) {
  const char* t = cc.type == ConfChangeType::kAddNode      ? "AddNode"
                  : cc.type == ConfChangeType::kRemoveNode ? "RemoveNode"
                                                           : "AddLearnerNode";
  return std::string(t) + " " + std::to_string(cc.node_id);
}

}  // namespace raft
