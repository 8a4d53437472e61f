// raft::types: the plain data the Raft library exchanges with its host (entries, messages, hard
// and soft state, snapshots, membership), the Status returned for environmental failures, and
// RAFT_CHECK for broken invariants. No protobuf: raft/codec.h gives the wire/disk encoding.
//
// Conventions: index 0 and term 0 mean "none" (the log starts at index 1); node id 0 means
// "no node" (kNone). All sizes are in bytes unless the name says otherwise.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace raft {

inline constexpr uint64_t kNone = 0;
inline constexpr uint64_t kNoLimit = UINT64_MAX;

// ---- Status -------------------------------------------------------------------------------

enum class Code : int {
  kOk = 0,
  // Storage: the requested index is older than the first retained entry (it was compacted).
  kCompacted,
  // Storage: the requested index is newer than the last entry.
  kUnavailable,
  // Storage: no snapshot can be produced right now; the leader retries later.
  kSnapshotTemporarilyUnavailable,
  // Storage: the snapshot given is older than the one already held.
  kSnapshotOutOfDate,
  // RawNode: a proposal was dropped (no leader, leadership transfer in progress, this node is
  // not a member, a conf change is already pending, ...). The message says which.
  kProposalDropped,
  // RawNode: the uncommitted-bytes limit or another bounded queue is full; retry later.
  kResourceExhausted,
  // RawNode: a message named a node that is not in the configuration.
  kPeerNotFound,
  // RawNode: a local-only message type arrived from the network.
  kStepLocalMsg,
  // RawNode/codec: the input is malformed.
  kInvalidArgument,
  // codec: the bytes are not a valid encoding (truncated, bad version, bad field).
  kCorrupt,
};

// The result of an operation that can fail for environmental reasons. Broken invariants never
// come back as a Status: they abort through RAFT_CHECK.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Code code);

// Aborts with file, line, the failed condition and a description of the offending state when
// `cond` is false. Always on (also in release builds): a broken Raft invariant means data
// corruption, and continuing would spread it. `...` is a std::string expression evaluated only
// on failure.
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond,
                              const std::string& state);
#define RAFT_CHECK(cond, ...)                                                   \
  do {                                                                          \
    if (!(cond)) ::raft::CheckFailed(__FILE__, __LINE__, #cond, (__VA_ARGS__)); \
  } while (false)

// ---- Log entries ----------------------------------------------------------------------------

enum class EntryType : uint8_t {
  kNormal = 0,      // data is an application command (empty data = leader's no-op)
  kConfChange = 1,  // data is an encoded ConfChange (raft/codec.h EncodeConfChange)
};

struct Entry {
  uint64_t term = 0;
  uint64_t index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// The size an entry counts for in every byte limit (messages, uncommitted bytes, Ready
// batches): its payload plus a fixed per-entry overhead, so empty entries are not free.
inline uint64_t EntrySizeBytes(const Entry& e) { return e.data.size() + 24; }

// ---- Membership -----------------------------------------------------------------------------

// The voters and learners of a configuration. Ids are sorted ascending and unique; a node is
// never both a voter and a learner.
struct ConfState {
  std::vector<uint64_t> voters;
  std::vector<uint64_t> learners;

  friend bool operator==(const ConfState&, const ConfState&) = default;
};

enum class ConfChangeType : uint8_t {
  kAddNode = 0,         // add a voter, or promote a learner to voter
  kRemoveNode = 1,      // remove a voter or a learner
  kAddLearnerNode = 2,  // add a learner (a voter cannot be demoted this way)
};

// A single-server membership change. `context` is opaque to raft (e.g. the node's URL).
struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddNode;
  uint64_t node_id = kNone;
  std::string context;

  friend bool operator==(const ConfChange&, const ConfChange&) = default;
};

// ---- Snapshots ------------------------------------------------------------------------------

struct SnapshotMetadata {
  uint64_t index = 0;  // last log index covered by the snapshot
  uint64_t term = 0;   // term of that entry
  ConfState conf_state;

  friend bool operator==(const SnapshotMetadata&, const SnapshotMetadata&) = default;
};

struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;  // the application's state machine image, opaque to raft

  bool empty() const { return metadata.index == 0; }
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

// ---- State ----------------------------------------------------------------------------------

// Must be durable before messages that depend on it are sent (see Ready in raw_node.h).
struct HardState {
  uint64_t term = 0;
  uint64_t vote = kNone;
  uint64_t commit = 0;

  bool empty() const { return term == 0 && vote == kNone && commit == 0; }
  friend bool operator==(const HardState&, const HardState&) = default;
};

enum class StateType : uint8_t { kFollower = 0, kCandidate, kLeader, kPreCandidate };
const char* StateName(StateType s);

// Volatile state, useful for logging and routing; never needs persisting.
struct SoftState {
  uint64_t lead = kNone;
  StateType raft_state = StateType::kFollower;

  friend bool operator==(const SoftState&, const SoftState&) = default;
};

// The answer to a ReadIndex request: once the local applied index reaches `index`, a read
// of the state machine is linearizable with respect to every write acknowledged before the
// request was made. `request_ctx` is the caller's context, unchanged.
struct ReadState {
  uint64_t index = 0;
  std::string request_ctx;

  friend bool operator==(const ReadState&, const ReadState&) = default;
};

// ---- Messages -------------------------------------------------------------------------------

enum class MessageType : uint8_t {
  kMsgHup = 0,         // local: start an election (campaign)
  kMsgBeat,            // local: leader should broadcast heartbeats
  kMsgProp,            // local or forwarded proposal
  kMsgApp,             // leader -> follower: append entries
  kMsgAppResp,         // follower -> leader
  kMsgVote,            // candidate -> all
  kMsgVoteResp,        //
  kMsgSnap,            // leader -> follower: install snapshot
  kMsgHeartbeat,       // leader -> follower
  kMsgHeartbeatResp,   //
  kMsgUnreachable,     // local: a peer could not be reached
  kMsgSnapStatus,      // local: result of sending a snapshot (reject = failure)
  kMsgCheckQuorum,     // local: leader checks it still hears from a quorum
  kMsgTransferLeader,  // local or forwarded: transfer leadership to `from`
  kMsgTimeoutNow,      // leader -> transferee: campaign now
  kMsgReadIndex,       // local or forwarded: linearizable read request
  kMsgReadIndexResp,   // leader -> follower
  kMsgPreVote,         // pre-candidate -> all
  kMsgPreVoteResp,     //
  kNumMessageTypes,    // not a message: the count, for validation
};
const char* MessageTypeName(MessageType t);

// True for message types that are exchanged between nodes (the others are local to a node).
bool IsNetworkMessage(MessageType t);
// True for responses (MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp,
// MsgReadIndexResp).
bool IsResponseMessage(MessageType t);

struct Message {
  MessageType type = MessageType::kMsgHup;
  uint64_t to = kNone;
  uint64_t from = kNone;
  uint64_t term = 0;
  // MsgApp: term of the entry at `index` (the entry before `entries`). MsgVote/MsgPreVote:
  // term of the candidate's last entry. Rejected MsgAppResp: term of the follower's entry at
  // `reject_hint` (the fast-rejection hint).
  uint64_t log_term = 0;
  // MsgApp: index of the entry before `entries`. MsgAppResp: last index appended (accept) or
  // the rejected MsgApp's index (reject). MsgVote: candidate's last index.
  uint64_t index = 0;
  std::vector<Entry> entries;
  uint64_t commit = 0;
  bool has_snapshot = false;  // MsgSnap only
  Snapshot snapshot;
  bool reject = false;
  uint64_t reject_hint = 0;
  // Opaque: ReadIndex request context, heartbeat read round, campaign-transfer marker.
  std::string context;

  friend bool operator==(const Message&, const Message&) = default;
};

// Human-readable one-line descriptions, for traces and RAFT_CHECK messages.
std::string Describe(const Entry& e);
std::string Describe(const Message& m);
std::string Describe(const HardState& hs);
std::string Describe(const ConfState& cs);
std::string Describe(const ConfChange& cc);

}  // namespace raft
