// kvbench results: what a run measured, and how it is printed (etcd-benchmark-style text) and
// written (JSON). Pure: no gRPC.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/kvbench/histogram.h"
#include "bench/kvbench/options.h"

namespace kvbench {

struct Result {
  Workload workload = Workload::kPut;
  Options options;
  double elapsed_s = 0;      // first operation start to last completion
  std::uint64_t ok = 0;      // operations that succeeded
  std::uint64_t errors = 0;  // operations that failed (any gRPC status but OK)
  std::map<std::string, std::uint64_t> error_messages;  // "<code>: <message>" -> count (capped)
  Histogram latency;                                    // successful operations, microseconds
  // Longest stretch without a successful operation completing (from the start, between
  // completions, and up to the end), ms: the unavailability window of a failover.
  double max_success_gap_ms = 0;

  // watch only
  std::uint64_t watchers_created = 0;
  std::uint64_t events_expected = 0;       // acknowledged puts x watchers
  std::uint64_t events_received = 0;       // all events of our puts
  std::uint64_t events_of_acked_puts = 0;  // events of acknowledged puts (vs events_expected)
  std::uint64_t events_before_ack = 0;     // arrived before the put's ack (counted as 0 latency)
  std::uint64_t watch_errors = 0;          // canceled watchers, broken streams
  std::uint64_t stalled_created = 0;       // watchers of the stalled streams that were created
  Histogram event_latency;                 // put acknowledgement -> event receipt, microseconds
  Histogram event_send_latency;            // put sent -> event receipt, microseconds

  double throughput_per_s() const {
    return elapsed_s > 0 ? static_cast<double>(ok) / elapsed_s : 0.0;
  }
};

// The human-readable report (summary, histogram, percentiles).
std::string RenderText(const Result& r);
// The machine-readable report; latencies in milliseconds.
nlohmann::json ToJson(const Result& r);

}  // namespace kvbench
