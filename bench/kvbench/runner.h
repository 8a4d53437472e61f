// kvbench::Run: drives one workload against etcd-v3-API endpoints with the gRPC callback API, so
// a thousand clients are a thousand in-flight calls on gRPC's own few threads, not a thousand
// threads.
#pragma once

#include "bench/kvbench/options.h"
#include "bench/kvbench/report.h"

namespace kvbench {

// Runs `o` (precondition: Validate(o) is empty) and returns what it measured. Throws
// std::runtime_error when the endpoints cannot be reached or the watchers cannot be set up.
// Every RPC has a deadline (o.rpc_timeout_ms); streams are cancelled at the end.
Result Run(const Options& o);

}  // namespace kvbench
