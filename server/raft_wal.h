// server::RaftWal: the durable raft log of one member, as a raft::Storage. An append-only file of
// checksummed records (hard states, entries, snapshot and compaction marks) replayed into a
// raft::MemoryStorage at Open.
//
// Interim: kvstore::RaftLogStore (branch logstore) will replace it with a RocksDB column family
// of the node's Engine; the raft thread only uses the methods below, which RaftLogStore is to
// offer too (Save / CreateSnapshot / Compact), so the switch is local to server/node.cc.
//
// Durability: Save writes one buffer and fdatasyncs before returning (the Ready contract's
// step 1). A torn last record (crash mid-write) fails its length or CRC check at Open and is cut
// off: the log reopens as a prefix of what was written, and everything Save acknowledged is in
// it.
//
// Thread-safety: none. The raft thread is the only caller (RawNode reads and Save alike).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "raft/storage.h"
#include "server/status.h"

namespace server {

class RaftWal final : public raft::Storage {
 public:
  // Opens (creating if missing) the log in `dir`/raft.wal and replays it. Errors: I/O (exit
  // code 1, message names the file).
  static Status Open(const std::string& dir, std::unique_ptr<RaftWal>* out);
  ~RaftWal() override;
  RaftWal(const RaftWal&) = delete;
  RaftWal& operator=(const RaftWal&) = delete;

  // True for a log that has never been written (a member that must bootstrap).
  bool IsEmpty() const;

  // raft::Storage, answered from memory.
  raft::Status InitialState(raft::HardState* hard_state,
                            raft::ConfState* conf_state) const override;
  raft::Status Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                       std::vector<raft::Entry>* out) const override;
  raft::Status Term(uint64_t i, uint64_t* term) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  raft::Status Snapshot(raft::Snapshot* out) const override;

  // Step 1 of the Ready contract, durably: `snapshot` (if non-null and !empty()) replaces the
  // log, then `entries` are appended (replacing a conflicting suffix), then `hard_state` (if
  // non-null and !empty()) is recorded. One write + fdatasync.
  Status Save(const raft::HardState* hard_state, const std::vector<raft::Entry>& entries,
              const raft::Snapshot* snapshot);
  // Records a snapshot at applied index `index` (<= LastIndex(), > current snapshot index).
  Status CreateSnapshot(uint64_t index, const raft::ConfState& conf_state, std::string data);
  // Drops entries up to and including `index` (<= the snapshot index), then rewrites the file
  // so that it holds only the retained log (its size stays bounded by the retained entries).
  Status Compact(uint64_t index);

  // Bytes in the file (for metrics and tests).
  uint64_t FileBytes() const { return file_bytes_; }

 private:
  RaftWal() = default;
  Status Replay();
  Status AppendRecords(const std::string& records);
  Status Rewrite();

  std::string dir_;
  std::string path_;
  int fd_ = -1;
  uint64_t file_bytes_ = 0;
  raft::MemoryStorage mem_;
};

}  // namespace server
