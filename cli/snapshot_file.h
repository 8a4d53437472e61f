// Reading a snapshot file saved from kvd (`snapshot save`) for `snapshot status`. kvd's
// snapshot is its store checkpoint (docs/storage.md "Checkpoints"):
//   "KVDCKPT1" | varint n | n x (varint len, family name)
//   records: byte family_index+1 | varint key_len | key | varint value_len | value
//   "\0" | be64 record count | be32 CRC-32C of all bytes before it | "KVDCKEND"
// followed by the etcd framing: zero padding to a 512-byte multiple and a 32-byte sha256.
// etcd's own snapshots are bbolt files, which kvctl does not parse.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "cli/status.h"

namespace cli {

// etcdctl's `snapshot status` figures, for a kvd checkpoint.
struct SnapshotFileStatus {
  std::uint32_t hash = 0;         // the checkpoint's CRC-32C (verified)
  std::int64_t revision = 0;      // the store revision (meta/current_rev)
  std::int64_t total_keys = 0;    // records in every family (as etcd counts bbolt keys)
  std::uint64_t total_bytes = 0;  // checkpoint bytes, padding and sha256 trailer excluded
};

// CRC-32C (Castagnoli), continuing from `crc` (0 to start).
std::uint32_t Crc32c(std::uint32_t crc, std::string_view data);

// Parses and verifies `data`, the content of a snapshot file named `name` (for messages).
// Fails with kExitInvalidInput naming the problem when it is not an intact kvd checkpoint.
Status ParseSnapshotFile(const std::string& name, std::string_view data, SnapshotFileStatus* out);

}  // namespace cli
