#include "raft/progress.h"

#include <algorithm>

#include "raft/types.h"

namespace raft {

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "StateProbe";
    case ProgressState::kReplicate:
      return "StateReplicate";
    case ProgressState::kSnapshot:
      return "StateSnapshot";
  }
  return "StateUnknown";
}

void Inflights::Add(uint64_t last_index) {
  RAFT_CHECK(!Full(), "inflights full, capacity " + std::to_string(capacity_));
  RAFT_CHECK(indexes_.empty() || indexes_.back() < last_index,
             "inflight index " + std::to_string(last_index) + " not increasing");
  indexes_.push_back(last_index);
}

void Inflights::FreeLE(uint64_t index) {
  while (!indexes_.empty() && indexes_.front() <= index) indexes_.pop_front();
}

void Inflights::FreeFirstOne() {
  if (!indexes_.empty()) indexes_.pop_front();
}

void Progress::BecomeProbe() {
  // From snapshot: resume right after the snapshot if it got further than match.
  if (state == ProgressState::kSnapshot) {
    const uint64_t ps = pending_snapshot;
    state = ProgressState::kProbe;
    next = std::max(match + 1, ps + 1);
  } else {
    state = ProgressState::kProbe;
    next = match + 1;
  }
  pending_snapshot = 0;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  pending_snapshot = 0;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(uint64_t n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state == ProgressState::kReplicate) {
    // Stale rejection: it refers to an index already matched.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // Probe: only the rejection of the last probe (at next-1) counts.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  probe_sent = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::ToString() const {
  std::string s = std::string(ProgressStateName(state)) + " match=" + std::to_string(match) +
                  " next=" + std::to_string(next);
  if (is_learner) s += " learner";
  if (state == ProgressState::kSnapshot) s += " pending_snap=" + std::to_string(pending_snapshot);
  if (probe_sent) s += " paused";
  if (inflights.Count() > 0) s += " inflight=" + std::to_string(inflights.Count());
  return s;
}

}  // namespace raft
