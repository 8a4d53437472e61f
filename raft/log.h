// raft::RaftLog: the node's view of its log = what Storage holds (durable) followed by the
// unstable part (a snapshot and/or entries received but not yet persisted by the application).
// Internal to the library; exposed for tests. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raft/storage.h"
#include "raft/types.h"

namespace raft {

// Entries and a snapshot not yet persisted. `offset` is the index of entries[0], and always
// LastIndex()+1 of what precedes it when entries is empty.
struct Unstable {
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  uint64_t offset = 1;
};

class RaftLog {
 public:
  // Precondition: storage outlives the RaftLog.
  RaftLog(const Storage* storage, uint64_t max_committed_size_per_ready_bytes);

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  // Term of entry i. Errors: kCompacted (i < FirstIndex()-1), kUnavailable (i > LastIndex()).
  Status Term(uint64_t i, uint64_t* term) const;
  // Term of entry i, or 0 when it is compacted or unavailable.
  uint64_t TermOrZero(uint64_t i) const;
  bool MatchTerm(uint64_t i, uint64_t term) const;
  // True when a log ending at (last_index, last_term) is at least as up to date as ours (5.4.1).
  bool IsUpToDate(uint64_t last_index, uint64_t last_term) const;

  // The entries [lo, hi), at most max_bytes (at least one entry). Errors: kCompacted.
  Status Slice(uint64_t lo, uint64_t hi, uint64_t max_bytes, std::vector<Entry>* out) const;

  // Appends entries after a matching (index, log_term) prefix, truncating a conflicting suffix,
  // and commits min(committed, last new index). Returns the last new index, or nullopt when
  // the prefix does not match.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                      const std::vector<Entry>& entries);
  // Appends entries (contiguous, starting at or before LastIndex()+1, after committed) to the
  // unstable part. Returns the new last index.
  uint64_t Append(const std::vector<Entry>& entries);
  // The index of the first entry that conflicts with ours (different term) or is new; 0 when
  // every entry is already present with the same term.
  uint64_t FindConflict(const std::vector<Entry>& entries) const;
  // The largest index <= index whose term is <= term, and its term (the fast-rejection hint).
  // Returns (index, 0) when the index is compacted or unavailable.
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index, uint64_t term) const;

  void CommitTo(uint64_t to_commit);
  void AppliedTo(uint64_t index);
  // The application persisted the unstable entries up to (index, term) / the snapshot at index.
  void StableTo(uint64_t index, uint64_t term);
  void StableSnapTo(uint64_t index);
  // Replaces the log with a snapshot (pending persistence); committed = snapshot index.
  void Restore(const Snapshot& snap);

  // Last index that is durable (0 while a snapshot is pending persistence).
  uint64_t PersistedLastIndex() const;
  // Committed, persisted entries not yet handed out for applying, at most
  // max_committed_size_per_ready_bytes (at least one).
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries() const;
  bool HasPendingSnapshot() const { return unstable_.snapshot.has_value(); }
  // The snapshot to send to a follower: the unstable one or Storage's.
  Status GetSnapshot(Snapshot* out) const;

  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }
  const Unstable& unstable() const { return unstable_; }
  const Storage* storage() const { return storage_; }
  // Sets committed/applied at startup from the persisted HardState and Config::applied.
  void InitCommitApplied(uint64_t committed, uint64_t applied);

  // Aborts through RAFT_CHECK if the in-memory structure is inconsistent.
  void CheckInvariants() const;
  std::string DescribeState() const;

 private:
  const Storage* storage_;
  uint64_t max_committed_size_per_ready_bytes_;
  Unstable unstable_;
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
};

}  // namespace raft
