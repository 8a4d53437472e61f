// The recorded history of a robustness run: every client operation with its invocation and
// completion times and its result, and every watch stream with the events it delivered. The
// checkers (linearizability.h, watch_checker.h) take these as input; a failing run saves them
// as JSON so the checkers can be re-run on the exact history (`robustness_runner --check`).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace kv::robustness {

// Completion time of an operation whose result is unknown (timeout, connection lost): it may
// take effect at any time after its invocation, or never.
constexpr std::int64_t kNeverReturned = std::numeric_limits<std::int64_t>::max();

enum class OpKind {
  kPut,       // Put(key, value)
  kLeasePut,  // Put(key, value, lease): like kPut for the model; the key may later vanish
  kGet,       // linearizable Range(key)
  kCas,       // Txn(if <compare> then Put(key, value))
  kDelete,    // DeleteRange(key)
};

enum class Outcome {
  kOk,       // the server answered; the result fields are valid
  kUnknown,  // no answer (deadline, unavailable, ...): may or may not have happened
};

// What a CAS txn compares: mod_revision(key) == expected_mod_revision, or value(key) ==
// expected_value (a missing key has mod_revision 0 and never equals a value).
enum class CasOn { kModRevision, kValue };

// One client operation. Times are nanoseconds on one monotonic clock (steady_clock), so
// real-time order between operations of different clients is meaningful.
struct Op {
  int client = 0;
  OpKind kind = OpKind::kPut;
  std::string key;
  std::string value;          // kPut, kLeasePut, kCas: the value written (unique per run)
  std::int64_t lease_id = 0;  // kLeasePut
  CasOn cas_on = CasOn::kModRevision;
  std::int64_t cas_expected_mod_revision = 0;
  std::string cas_expected_value;

  std::int64_t call_ns = 0;
  std::int64_t return_ns = kNeverReturned;  // kNeverReturned iff outcome == kUnknown
  Outcome outcome = Outcome::kUnknown;

  // Results (valid when outcome == kOk).
  // header.revision: for a write that changed the store, its revision. For an unknown write,
  // > 0 means a watch showed it took effect at that revision (ResolveUnknownWrites).
  std::int64_t revision = 0;
  bool found = false;                  // kGet: the key existed
  std::string read_value;              // kGet
  std::int64_t read_mod_revision = 0;  // kGet
  bool cas_succeeded = false;          // kCas
  std::int64_t deleted = 0;            // kDelete: how many keys were deleted (0 or 1)

  // True if, given outcome kOk, this operation changed the store (and got its own revision).
  bool ChangedStore() const;
};

enum class EventType { kPut, kDelete };

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

struct WatchEvent {
  EventType type = EventType::kPut;
  KeyValue kv;  // for kDelete: key and mod_revision (the delete's revision)
  bool has_prev = false;
  KeyValue prev_kv;                 // valid when has_prev
  std::int64_t response_index = 0;  // which WatchResponse of the stream carried it
  std::int64_t received_ns = 0;     // when the client received it (same clock as Op)
};

// One connection of a watch stream: created at `start_revision`, ended by a disconnect,
// the end of the run, or a compaction (the server cancelled it at `compact_revision`).
struct WatchSegment {
  std::int64_t start_revision = 0;
  std::vector<WatchEvent> events;
  std::int64_t compact_revision = 0;  // > 0: cancelled because start_revision was compacted
};

// One logical watch stream of one client: segments in order, each resuming from the last
// delivered revision + 1 (or from the compaction revision).
struct WatchStream {
  int client = 0;
  std::string key;
  std::string range_end;  // etcd semantics: "" = just key, "\0" = every key >= key
  bool prev_kv = false;
  std::vector<WatchSegment> segments;
  // The stream is known to have delivered every event up to this revision (it saw the
  // harness's final sentinel write at this revision, or a later event); 0 if unknown.
  std::int64_t synced_through_revision = 0;

  bool Covers(const std::string& k) const;
};

// A Compact request the harness issued (whether or not it succeeded): after it, events
// delivered late may lack prev_kv, as in etcd, whose watch server reads prev_kv at
// mod_revision - 1 when it sends the event and omits it if that revision is compacted.
struct Compaction {
  std::int64_t revision = 0;
  std::int64_t call_ns = 0;
};

// A member's HashKV answer at the end of a run.
struct MemberHash {
  std::string member;
  std::int64_t revision = 0;  // the revision hashed
  std::uint32_t hash = 0;
  std::int64_t compact_revision = 0;
};

// Something a checker found wrong: `kind` is a short stable tag (e.g. "stale-read",
// "watch-gap"), `detail` names the operations, events and revisions involved.
struct Anomaly {
  std::string kind;
  std::string detail;
};

struct History {
  std::vector<Op> ops;
  std::vector<WatchStream> watches;
  std::vector<MemberHash> hashes;
  std::vector<Compaction> compactions;
  std::uint64_t seed = 0;  // the fault/workload seed that produced it (for the replay hint)
};

std::string ToString(OpKind kind);
std::string Describe(const Op& op);

// JSON round trip (nlohmann-json). FromJson throws std::runtime_error on malformed input.
std::string ToJson(const History& h);
History FromJson(const std::string& text);

}  // namespace kv::robustness
