// Log tails for failing tests. Every kvtest::Process registers its log file here while it is
// alive; when a Catch2 assertion fails, a listener linked into every test executable that uses
// this library prints the tail of each registered log once per test case, so a failing
// process-level test shows what its servers said.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace kvtest {

// The last `max_bytes` bytes of the file at `path` (cut at a line start when possible), or a
// short note if the file cannot be read. Thread-safe.
std::string TailOfFile(const std::filesystem::path& path, std::size_t max_bytes = 4096);

// Registers a log to print on assertion failure under `label`; returns a handle for
// UnregisterLog, or 0 when the registry is full (it holds at most 256 logs; a test that runs
// more processes at once simply gets no tails for the extra ones). Thread-safe.
std::uint64_t RegisterLog(const std::filesystem::path& path, const std::string& label);
void UnregisterLog(std::uint64_t handle);

// Prints the tail of every registered log to stderr now. Thread-safe.
void PrintRegisteredLogTails(std::size_t max_bytes = 4096);

}  // namespace kvtest
