// The endpoint list of commands that run once per member (endpoint *, defrag): the
// --endpoints flag, or with --cluster every member's client URLs from MemberList; and the
// bounded fan-out that queries them.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "cli/options.h"
#include "cli/status.h"

namespace cli {

Status ResolveEndpoints(const Context& ctx, bool cluster, std::vector<std::string>* endpoints);

// At most this many endpoints are queried at once: each query holds a connection and a
// thread, and a cluster has few members, so a small bound keeps a long list cheap.
constexpr std::size_t kEndpointsInFlightMax = 8;

// Calls `fn(i)` for every i in [0, count) on up to `in_flight_max` threads (>= 1) and returns
// when all calls are done. `fn` must be thread-safe across distinct i; callers store results
// in slot i so that output stays in endpoint order whatever order the calls finish in.
void ForEachInParallel(std::size_t count, std::size_t in_flight_max,
                       const std::function<void(std::size_t)>& fn);

}  // namespace cli
