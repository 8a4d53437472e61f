// kvstore::Crc32c: CRC32C (Castagnoli), the one implementation of kvstore (raft log records,
// HashKV, the checkpoint trailer). Pure functions, any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace kvstore {

// CRC32C of `data`, extending `crc` (the CRC of the preceding bytes; 0 to start).
// Uses the SSE4.2 instruction when the CPU has it, else a table; both give the same result.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);
// The table-driven version, always (exposed so tests can compare the two).
uint32_t Crc32cPortable(std::string_view data, uint32_t crc = 0);

}  // namespace kvstore
