#include "raft/storage.h"

#include <algorithm>

#include "raft/codec.h"

namespace raft {

namespace {
std::string StorageState(uint64_t first, uint64_t last) {
  return "storage first=" + std::to_string(first) + " last=" + std::to_string(last);
}
}  // namespace

MemoryStorage::MemoryStorage() { ents_.push_back(Entry{}); }

Status MemoryStorage::InitialState(HardState* hard_state, ConfState* conf_state) const {
  *hard_state = hard_state_;
  *conf_state = snapshot_.metadata.conf_state;
  return Status::Ok();
}

uint64_t MemoryStorage::FirstIndex() const { return ents_.front().index + 1; }

uint64_t MemoryStorage::LastIndex() const { return ents_.front().index + ents_.size() - 1; }

Status MemoryStorage::Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                              std::vector<Entry>* out) const {
  const uint64_t offset = ents_.front().index;
  if (lo <= offset) return {Code::kCompacted, "requested index is compacted"};
  if (hi > LastIndex() + 1) return {Code::kUnavailable, "requested entry is unavailable"};
  RAFT_CHECK(lo <= hi, "lo=" + std::to_string(lo) + " hi=" + std::to_string(hi));
  uint64_t size = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const Entry& e = ents_[i - offset];
    size += EntrySizeBytes(e);
    if (i > lo && size > max_bytes) break;
    out->push_back(e);
  }
  return Status::Ok();
}

Status MemoryStorage::Term(uint64_t i, uint64_t* term) const {
  const uint64_t offset = ents_.front().index;
  if (i < offset) return {Code::kCompacted, "requested index is compacted"};
  if (i - offset >= ents_.size()) return {Code::kUnavailable, "requested entry is unavailable"};
  *term = ents_[i - offset].term;
  return Status::Ok();
}

Status MemoryStorage::Snapshot(raft::Snapshot* out) const {
  *out = snapshot_;
  return Status::Ok();
}

void MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const uint64_t first = FirstIndex();
  const uint64_t last_new = entries.back().index;
  if (last_new < first) return;  // everything is already covered by the snapshot
  size_t skip = 0;
  if (entries.front().index < first) skip = static_cast<size_t>(first - entries.front().index);
  const uint64_t start = entries[skip].index;
  RAFT_CHECK(start <= LastIndex() + 1, "gap in append: first new index " + std::to_string(start) +
                                           ", " + StorageState(first, LastIndex()));
  const uint64_t offset = ents_.front().index;
  ents_.resize(static_cast<size_t>(start - offset));
  for (size_t k = skip; k < entries.size(); ++k) {
    RAFT_CHECK(entries[k].index == start + (k - skip), "entries not contiguous");
    ents_.push_back(entries[k]);
  }
}

Status MemoryStorage::ApplySnapshot(const raft::Snapshot& snap) {
  if (snap.metadata.index <= snapshot_.metadata.index) {
    return {Code::kSnapshotOutOfDate, "snapshot is out of date"};
  }
  snapshot_ = snap;
  ents_.clear();
  ents_.push_back(Entry{snap.metadata.term, snap.metadata.index, EntryType::kNormal, {}});
  return Status::Ok();
}

Status MemoryStorage::CreateSnapshot(uint64_t i, const ConfState& cs, std::string data,
                                     raft::Snapshot* out) {
  if (i <= snapshot_.metadata.index) return {Code::kSnapshotOutOfDate, "snapshot is out of date"};
  const uint64_t offset = ents_.front().index;
  RAFT_CHECK(i <= LastIndex(), "snapshot index " + std::to_string(i) + " beyond " +
                                   StorageState(FirstIndex(), LastIndex()));
  RAFT_CHECK(i >= offset, "snapshot index " + std::to_string(i) + " is compacted");
  snapshot_.metadata.index = i;
  snapshot_.metadata.term = ents_[i - offset].term;
  snapshot_.metadata.conf_state = cs;
  snapshot_.data = std::move(data);
  if (out != nullptr) *out = snapshot_;
  return Status::Ok();
}

Status MemoryStorage::Compact(uint64_t compact_index) {
  const uint64_t offset = ents_.front().index;
  if (compact_index <= offset) return {Code::kCompacted, "requested index is compacted"};
  RAFT_CHECK(compact_index <= LastIndex(), "compact " + std::to_string(compact_index) + " beyond " +
                                               StorageState(FirstIndex(), LastIndex()));
  // The entry at compact_index becomes the dummy: it keeps its term for Term().
  const size_t drop = static_cast<size_t>(compact_index - offset);
  Entry dummy{ents_[drop].term, ents_[drop].index, EntryType::kNormal, {}};
  std::vector<Entry> rest;
  rest.reserve(ents_.size() - drop);
  rest.push_back(std::move(dummy));
  for (size_t k = drop + 1; k < ents_.size(); ++k) rest.push_back(std::move(ents_[k]));
  ents_ = std::move(rest);
  return Status::Ok();
}

std::vector<Entry> BootstrapEntries(const std::vector<uint64_t>& voters) {
  std::vector<Entry> out;
  for (size_t i = 0; i < voters.size(); ++i) {
    ConfChange cc;
    cc.type = ConfChangeType::kAddNode;
    cc.node_id = voters[i];
    out.push_back(Entry{1, i + 1, EntryType::kConfChange, EncodeConfChange(cc)});
  }
  return out;
}

void BootstrapStorage(MemoryStorage* storage, const std::vector<uint64_t>& voters) {
  RAFT_CHECK(storage->LastIndex() == 0, "bootstrap of a non-empty storage");
  storage->Append(BootstrapEntries(voters));
  storage->SetHardState(HardState{1, kNone, voters.size()});
}

}  // namespace raft
