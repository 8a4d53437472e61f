#include "raft/log.h"

#include <algorithm>

namespace raft {

namespace {
std::string U(uint64_t v) { return std::to_string(v); }
}  // namespace

RaftLog::RaftLog(const Storage* storage, uint64_t max_committed_size_per_ready_bytes)
    : storage_(storage), max_committed_size_per_ready_bytes_(max_committed_size_per_ready_bytes) {
  RAFT_CHECK(storage_ != nullptr, "storage must not be null");
  const uint64_t first = storage_->FirstIndex();
  const uint64_t last = storage_->LastIndex();
  RAFT_CHECK(first >= 1 && last + 1 >= first, "storage first=" + U(first) + " last=" + U(last));
  unstable_.offset = last + 1;
  committed_ = first - 1;
  applied_ = first - 1;
}

void RaftLog::InitCommitApplied(uint64_t committed, uint64_t applied) {
  RAFT_CHECK(committed <= LastIndex(), "commit " + U(committed) + " beyond " + DescribeState());
  if (committed > committed_) committed_ = committed;
  if (applied > applied_) {
    RAFT_CHECK(applied <= committed_, "applied " + U(applied) + " beyond " + DescribeState());
    applied_ = applied;
  }
}

std::string RaftLog::DescribeState() const {
  return "log{first=" + U(FirstIndex()) + " last=" + U(LastIndex()) +
         " committed=" + U(committed_) + " applied=" + U(applied_) +
         " unstable.offset=" + U(unstable_.offset) +
         " unstable.len=" + U(unstable_.entries.size()) +
         " unstable.snap=" + (unstable_.snapshot ? U(unstable_.snapshot->metadata.index) : "-") +
         "}";
}

uint64_t RaftLog::FirstIndex() const {
  if (unstable_.snapshot) return unstable_.snapshot->metadata.index + 1;
  return storage_->FirstIndex();
}

uint64_t RaftLog::LastIndex() const {
  if (!unstable_.entries.empty()) return unstable_.entries.back().index;
  if (unstable_.snapshot) return unstable_.snapshot->metadata.index;
  return storage_->LastIndex();
}

Status RaftLog::Term(uint64_t i, uint64_t* term) const {
  const uint64_t dummy = FirstIndex() - 1;
  if (i < dummy) return {Code::kCompacted, "index " + U(i) + " is compacted"};
  if (i > LastIndex()) return {Code::kUnavailable, "index " + U(i) + " is unavailable"};
  if (!unstable_.entries.empty() && i >= unstable_.offset) {
    *term = unstable_.entries[i - unstable_.offset].term;
    return Status::Ok();
  }
  if (unstable_.snapshot) {
    // With a pending snapshot nothing before it is readable, and only its own index is known.
    if (i == unstable_.snapshot->metadata.index) {
      *term = unstable_.snapshot->metadata.term;
      return Status::Ok();
    }
    RAFT_CHECK(false, "term lookup " + U(i) + " inside pending snapshot " + DescribeState());
  }
  Status s = storage_->Term(i, term);
  if (s.code() == Code::kCompacted || s.code() == Code::kUnavailable) return s;
  RAFT_CHECK(s.ok(), "storage Term(" + U(i) + ") failed: " + s.ToString());
  return s;
}

uint64_t RaftLog::TermOrZero(uint64_t i) const {
  uint64_t t = 0;
  if (!Term(i, &t).ok()) return 0;
  return t;
}

uint64_t RaftLog::LastTerm() const {
  uint64_t t = 0;
  Status s = Term(LastIndex(), &t);
  RAFT_CHECK(s.ok(), "last term unavailable: " + s.ToString() + " " + DescribeState());
  return t;
}

bool RaftLog::MatchTerm(uint64_t i, uint64_t term) const {
  uint64_t t = 0;
  if (!Term(i, &t).ok()) return false;
  return t == term;
}

bool RaftLog::IsUpToDate(uint64_t last_index, uint64_t last_term) const {
  const uint64_t our_term = LastTerm();
  return last_term > our_term || (last_term == our_term && last_index >= LastIndex());
}

Status RaftLog::Slice(uint64_t lo, uint64_t hi, uint64_t max_bytes, std::vector<Entry>* out) const {
  RAFT_CHECK(lo <= hi, "slice lo=" + U(lo) + " hi=" + U(hi));
  if (lo < FirstIndex()) return {Code::kCompacted, "index " + U(lo) + " is compacted"};
  RAFT_CHECK(hi <= LastIndex() + 1, "slice hi=" + U(hi) + " beyond " + DescribeState());
  if (lo == hi) return Status::Ok();
  const size_t start_size = out->size();
  uint64_t size = 0;
  if (lo < unstable_.offset) {
    const uint64_t storage_hi = std::min(hi, unstable_.offset);
    std::vector<Entry> stored;
    Status s = storage_->Entries(lo, storage_hi, max_bytes, &stored);
    if (s.code() == Code::kCompacted) return s;
    RAFT_CHECK(s.ok(), "storage Entries(" + U(lo) + "," + U(storage_hi) +
                           ") failed: " + s.ToString() + " " + DescribeState());
    for (Entry& e : stored) {
      size += EntrySizeBytes(e);
      out->push_back(std::move(e));
    }
    // Storage stopped early because of the size limit: do not add unstable entries after a gap.
    if (out->size() - start_size < storage_hi - lo) return Status::Ok();
  }
  for (uint64_t i = std::max(lo, unstable_.offset); i < hi; ++i) {
    const Entry& e = unstable_.entries[i - unstable_.offset];
    size += EntrySizeBytes(e);
    if (out->size() > start_size && size > max_bytes) break;
    out->push_back(e);
  }
  return Status::Ok();
}

uint64_t RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return 0;
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index, uint64_t term) const {
  for (;; --index) {
    uint64_t t = 0;
    if (!Term(index, &t).ok()) return {index, 0};
    if (t <= term) return {index, t};
    if (index == 0) return {0, 0};
  }
}

std::optional<uint64_t> RaftLog::MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                             const std::vector<Entry>& entries) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const uint64_t last_new = index + entries.size();
  const uint64_t ci = FindConflict(entries);
  if (ci != 0) {
    RAFT_CHECK(ci > committed_,
               "entry " + U(ci) + " conflicts with committed entry " + DescribeState());
    std::vector<Entry> tail(entries.begin() + static_cast<std::ptrdiff_t>(ci - index - 1),
                            entries.end());
    Append(tail);
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

uint64_t RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  const uint64_t after = entries.front().index - 1;
  RAFT_CHECK(after >= committed_,
             "append after " + U(after) + " would overwrite committed " + DescribeState());
  RAFT_CHECK(after <= LastIndex(), "append leaves a gap after " + U(after) + " " + DescribeState());
  const uint64_t first = entries.front().index;
  if (first == unstable_.offset + unstable_.entries.size()) {
    // Plain append.
  } else if (first <= unstable_.offset) {
    // Replaces the whole unstable part (and shadows storage entries from `first` on).
    unstable_.offset = first;
    unstable_.entries.clear();
  } else {
    unstable_.entries.resize(static_cast<size_t>(first - unstable_.offset));
  }
  for (const Entry& e : entries) {
    RAFT_CHECK(e.index == unstable_.offset + unstable_.entries.size(),
               "non-contiguous append at " + U(e.index) + " " + DescribeState());
    unstable_.entries.push_back(e);
  }
  return LastIndex();
}

void RaftLog::CommitTo(uint64_t to_commit) {
  if (to_commit <= committed_) return;
  RAFT_CHECK(to_commit <= LastIndex(),
             "commit " + U(to_commit) + " beyond last index " + DescribeState());
  committed_ = to_commit;
}

void RaftLog::AppliedTo(uint64_t index) {
  if (index == 0) return;
  RAFT_CHECK(index <= committed_ && index >= applied_,
             "applied " + U(index) + " out of range " + DescribeState());
  applied_ = index;
}

void RaftLog::StableTo(uint64_t index, uint64_t term) {
  if (unstable_.snapshot) return;  // the snapshot must be persisted first
  if (unstable_.entries.empty() || index < unstable_.offset) return;
  const uint64_t last = unstable_.entries.back().index;
  if (index > last) return;
  // The entry may have been replaced (a newer leader truncated it) since the Ready was taken.
  if (unstable_.entries[index - unstable_.offset].term != term) return;
  unstable_.entries.erase(
      unstable_.entries.begin(),
      unstable_.entries.begin() + static_cast<std::ptrdiff_t>(index - unstable_.offset + 1));
  unstable_.offset = index + 1;
}

void RaftLog::StableSnapTo(uint64_t index) {
  if (unstable_.snapshot && unstable_.snapshot->metadata.index == index) {
    unstable_.snapshot.reset();
  }
}

void RaftLog::Restore(const Snapshot& snap) {
  RAFT_CHECK(snap.metadata.index > committed_,
             "restore to " + U(snap.metadata.index) + " behind commit " + DescribeState());
  committed_ = snap.metadata.index;
  unstable_.offset = snap.metadata.index + 1;
  unstable_.entries.clear();
  unstable_.snapshot = snap;
}

uint64_t RaftLog::PersistedLastIndex() const {
  if (unstable_.snapshot) return 0;
  return unstable_.offset - 1;
}

bool RaftLog::HasNextCommittedEntries() const {
  if (unstable_.snapshot) return false;
  const uint64_t hi = std::min(committed_, PersistedLastIndex());
  return hi > applied_;
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  std::vector<Entry> out;
  if (!HasNextCommittedEntries()) return out;
  const uint64_t hi = std::min(committed_, PersistedLastIndex());
  const uint64_t lo = std::max(applied_ + 1, FirstIndex());
  if (lo > hi) return out;
  Status s = Slice(lo, hi + 1, max_committed_size_per_ready_bytes_, &out);
  RAFT_CHECK(s.ok(), "committed entries unavailable: " + s.ToString() + " " + DescribeState());
  return out;
}

Status RaftLog::GetSnapshot(Snapshot* out) const {
  if (unstable_.snapshot) {
    *out = *unstable_.snapshot;
    return Status::Ok();
  }
  return storage_->Snapshot(out);
}

void RaftLog::CheckInvariants() const {
  RAFT_CHECK(applied_ <= committed_, "applied > committed " + DescribeState());
  RAFT_CHECK(committed_ <= LastIndex(), "committed > last " + DescribeState());
  RAFT_CHECK(FirstIndex() <= LastIndex() + 1, "first > last+1 " + DescribeState());
  if (!unstable_.entries.empty()) {
    RAFT_CHECK(unstable_.entries.front().index == unstable_.offset,
               "unstable offset mismatch " + DescribeState());
    uint64_t prev_term = 0;
    if (unstable_.offset > FirstIndex() - 1 || unstable_.snapshot) {
      prev_term = TermOrZero(unstable_.offset - 1);
    }
    for (size_t k = 0; k < unstable_.entries.size(); ++k) {
      const Entry& e = unstable_.entries[k];
      RAFT_CHECK(e.index == unstable_.offset + k, "unstable not contiguous " + DescribeState());
      RAFT_CHECK(e.term >= prev_term,
                 "log terms decrease at " + Describe(e) + " " + DescribeState());
      prev_term = e.term;
    }
  } else {
    RAFT_CHECK(unstable_.offset == LastIndex() + 1, "unstable offset " + DescribeState());
  }
}

}  // namespace raft
