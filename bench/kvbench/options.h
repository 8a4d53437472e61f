// kvbench command line: subcommands and their options, parsed and validated without touching
// the network, so tests cover them directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvbench {

enum class Workload { kPut, kRange, kTxn, kDelete, kLeaseGrant, kLeaseKeepAlive, kWatch };

// Name of a workload as printed in reports ("put", "range", "lease-keepalive", ...).
const char* WorkloadName(Workload w);

// Hard ceilings on what one run may ask for; validation rejects anything above them.
inline constexpr std::size_t kClientsMax = 100'000;
inline constexpr std::size_t kConnsMax = 1'000;
inline constexpr std::size_t kValueBytesMax = 1'536 * 1'024;  // etcd's default request limit
inline constexpr std::size_t kKeyBytesMax = 4'096;
inline constexpr std::size_t kWatchersMax = 1'000'000;
inline constexpr std::size_t kStalledStreamsMax = 10'000;
inline constexpr std::uint64_t kWatchPutsMax = 10'000'000;

struct Options {
  Workload workload = Workload::kPut;
  std::vector<std::string> endpoints{"127.0.0.1:2379"};
  std::size_t clients = 1;  // concurrent operations in flight (watch: concurrent putters)
  std::size_t conns = 1;    // gRPC connections, endpoints assigned round robin
  std::size_t key_size = 8;
  std::size_t value_size = 8;
  std::uint64_t key_space_size = 1;
  bool sequential_keys = false;  // key of operation n is n % key_space_size
  std::string key_prefix;        // every key starts with it (watch: the watched prefix)
  double rate_per_s = 0;         // 0: unlimited (watch: required, the put rate)
  std::optional<double> duration_s;
  std::optional<std::uint64_t> total;
  std::string json_path;  // empty: no JSON
  std::uint64_t rpc_timeout_ms = 5'000;
  std::uint64_t seed = 1;
  bool progress = true;  // shown only when stderr is a terminal
  // range
  bool serializable = false;
  // txn: puts per transaction
  std::size_t txn_ops = 1;
  // lease
  std::int64_t lease_ttl_s = 60;
  // watch
  std::size_t watchers = 1;
  std::size_t watch_streams = 1;
  bool watch_prefix = false;  // watch the prefix (puts spread over the key space) or one key
  // Extra streams of one watcher each (same key or prefix) that stop reading once their watcher
  // is created: slow consumers, to see whether they slow the puts. Their events are not counted.
  std::size_t stalled_streams = 0;
  double drain_timeout_s = 30;  // how long to wait for outstanding events after the last put

  // Puts the watch workload issues: total, else rate * duration (rounded up).
  std::uint64_t WatchPuts() const;
};

struct ParseResult {
  std::optional<Options> options;  // set when the run should go ahead
  int exit_code = 0;               // otherwise: 0 after --help, 2 on a usage error
  std::string message;             // help text or the error, for the caller to print
};

// Parses argv[1..] (argv[0] is the program name).
ParseResult ParseOptions(const std::vector<std::string>& argv);

// Checks the cross-option rules; returns an empty string when `o` is valid, else the reason.
std::string Validate(const Options& o);

}  // namespace kvbench
