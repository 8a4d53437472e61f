#include "bench/kvbench/options.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <sstream>

#include "bench/kvbench/keys.h"

namespace kvbench {

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kPut:
      return "put";
    case Workload::kRange:
      return "range";
    case Workload::kTxn:
      return "txn";
    case Workload::kDelete:
      return "delete";
    case Workload::kLeaseGrant:
      return "lease-grant";
    case Workload::kLeaseKeepAlive:
      return "lease-keepalive";
    case Workload::kWatch:
      return "watch";
  }
  return "?";
}

std::uint64_t Options::WatchPuts() const {
  if (total) return *total;
  if (duration_s && rate_per_s > 0) {
    return static_cast<std::uint64_t>(std::ceil(*duration_s * rate_per_s));
  }
  return 0;
}

std::string Validate(const Options& o) {
  std::ostringstream why;
  if (o.endpoints.empty()) return "--endpoints must name at least one endpoint";
  for (const auto& e : o.endpoints) {
    if (e.empty()) return "--endpoints has an empty entry";
  }
  if (o.clients == 0 || o.clients > kClientsMax) {
    return "--clients must be 1.." + std::to_string(kClientsMax);
  }
  if (o.conns == 0 || o.conns > kConnsMax) return "--conns must be 1.." + std::to_string(kConnsMax);
  if (o.conns > o.clients) return "--conns must not exceed --clients";
  if (o.value_size > kValueBytesMax) {
    return "--val-size must be at most " + std::to_string(kValueBytesMax);
  }
  if (o.key_size == 0 || o.key_size > kKeyBytesMax) {
    return "--key-size must be 1.." + std::to_string(kKeyBytesMax);
  }
  if (o.key_space_size == 0) return "--key-space-size must be at least 1";
  if (o.key_size < o.key_prefix.size() + MinDigits(o.key_space_size)) {
    why << "--key-size " << o.key_size << " cannot hold the prefix '" << o.key_prefix << "' and "
        << MinDigits(o.key_space_size) << " digits for --key-space-size " << o.key_space_size;
    return why.str();
  }
  if (!(o.rate_per_s >= 0) || std::isinf(o.rate_per_s)) return "--rate must be >= 0";
  if (!o.duration_s && !o.total) return "give --duration or --total";
  if (o.duration_s && !(*o.duration_s > 0)) return "--duration must be > 0";
  if (o.total && *o.total == 0) return "--total must be > 0";
  if (o.rpc_timeout_ms == 0) return "--timeout-ms must be > 0";
  if (o.workload == Workload::kTxn && (o.txn_ops == 0 || o.txn_ops > 128)) {
    return "--txn-ops must be 1..128";
  }
  if (o.workload == Workload::kTxn && o.key_space_size < o.txn_ops) {
    return "--key-space-size must be at least --txn-ops (a txn may not put a key twice)";
  }
  if ((o.workload == Workload::kLeaseGrant || o.workload == Workload::kLeaseKeepAlive) &&
      o.lease_ttl_s <= 0) {
    return "--ttl must be > 0";
  }
  if (o.workload == Workload::kWatch) {
    if (o.watchers == 0 || o.watchers > kWatchersMax) {
      return "--watchers must be 1.." + std::to_string(kWatchersMax);
    }
    if (o.watch_streams == 0 || o.watch_streams > o.watchers) {
      return "--streams must be 1..--watchers";
    }
    if (!(o.rate_per_s > 0)) return "watch needs --rate (puts per second)";
    if (o.stalled_streams > kStalledStreamsMax) {
      return "--stalled-streams must be 0.." + std::to_string(kStalledStreamsMax);
    }
    const std::uint64_t puts = o.WatchPuts();
    if (puts == 0 || puts > kWatchPutsMax) {
      return "watch puts (--total, or --rate x --duration) must be 1.." +
             std::to_string(kWatchPutsMax);
    }
    if (!(o.drain_timeout_s > 0)) return "--drain-timeout must be > 0";
  }
  return {};
}

namespace {

// Options every subcommand takes.
void AddCommon(CLI::App* sub, Options* o, std::string* endpoints, double* duration,
               std::uint64_t* total) {
  sub->add_option("--endpoints", *endpoints, "comma-separated host:port list")
      ->capture_default_str();
  sub->add_option("--clients", o->clients, "concurrent operations in flight")
      ->capture_default_str();
  sub->add_option("--conns", o->conns, "gRPC connections (round robin over endpoints)")
      ->capture_default_str();
  sub->add_option("--key-size", o->key_size, "key bytes")->capture_default_str();
  sub->add_option("--val-size", o->value_size, "value bytes")->capture_default_str();
  sub->add_option("--key-space-size", o->key_space_size, "distinct keys")->capture_default_str();
  sub->add_flag("--sequential-keys", o->sequential_keys, "key of op n is n % key-space-size");
  sub->add_option("--key-prefix", o->key_prefix, "prefix of every key");
  sub->add_option("--rate", o->rate_per_s, "operations per second, 0 = unlimited")
      ->capture_default_str();
  sub->add_option("--duration", *duration, "seconds to run");
  sub->add_option("--total", *total, "operations to issue");
  sub->add_option("--json", o->json_path, "also write the result as JSON to this file");
  sub->add_option("--timeout-ms", o->rpc_timeout_ms, "deadline of each RPC")->capture_default_str();
  sub->add_option("--seed", o->seed, "random seed")->capture_default_str();
  sub->add_flag("!--no-progress", o->progress, "no progress bar");
}

}  // namespace

ParseResult ParseOptions(const std::vector<std::string>& argv) {
  ParseResult result;
  Options o;
  std::string endpoints = "127.0.0.1:2379";
  double duration = 0;
  std::uint64_t total = 0;
  std::string consistency = "l";
  std::string lease_mode = "grant";

  CLI::App app("kvbench: etcd v3 API load generator (drives kvd and etcd alike)");
  app.require_subcommand(1);
  auto* put = app.add_subcommand("put", "Put random keys");
  auto* range = app.add_subcommand("range", "Range (get) single keys");
  auto* txn = app.add_subcommand("txn", "Txn: compare version, then put --txn-ops keys");
  auto* del = app.add_subcommand("delete", "DeleteRange single keys");
  auto* lease = app.add_subcommand("lease", "LeaseGrant, or LeaseKeepAlive on one lease each");
  auto* watch = app.add_subcommand(
      "watch", "N watchers over M streams; latency from a put's ack to each watcher's event");
  for (auto* sub : {put, range, txn, del, lease, watch}) {
    AddCommon(sub, &o, &endpoints, &duration, &total);
  }
  range->add_option("--consistency", consistency, "l (linearizable) or s (serializable)")
      ->check(CLI::IsMember({"l", "s"}))
      ->capture_default_str();
  txn->add_option("--txn-ops", o.txn_ops, "puts per transaction")->capture_default_str();
  lease->add_option("--mode", lease_mode, "grant or keepalive")
      ->check(CLI::IsMember({"grant", "keepalive"}))
      ->capture_default_str();
  lease->add_option("--ttl", o.lease_ttl_s, "lease TTL in seconds")->capture_default_str();
  watch->add_option("--watchers", o.watchers, "watchers in total")->capture_default_str();
  watch->add_option("--streams", o.watch_streams, "watch streams the watchers share")
      ->capture_default_str();
  watch->add_flag("--prefix", o.watch_prefix, "watch --key-prefix as a prefix, not one key");
  watch
      ->add_option("--stalled-streams", o.stalled_streams,
                   "extra streams of one watcher each that stop reading once created")
      ->capture_default_str();
  watch->add_option("--drain-timeout", o.drain_timeout_s, "seconds to wait for late events")
      ->capture_default_str();

  std::vector<const char*> cargv;
  cargv.reserve(argv.size());
  for (const auto& a : argv) cargv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargv.size()), cargv.data());
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    result.exit_code = app.exit(e, out, err);
    result.message = out.str() + err.str();
    return result;
  }

  if (put->parsed()) o.workload = Workload::kPut;
  if (range->parsed()) o.workload = Workload::kRange;
  if (txn->parsed()) o.workload = Workload::kTxn;
  if (del->parsed()) o.workload = Workload::kDelete;
  if (lease->parsed()) {
    o.workload = lease_mode == "grant" ? Workload::kLeaseGrant : Workload::kLeaseKeepAlive;
  }
  if (watch->parsed()) o.workload = Workload::kWatch;
  o.serializable = consistency == "s";
  o.endpoints.clear();
  std::stringstream ss(endpoints);
  for (std::string e; std::getline(ss, e, ',');) o.endpoints.push_back(e);
  if (app.get_subcommands().front()->count("--duration") > 0) o.duration_s = duration;
  if (app.get_subcommands().front()->count("--total") > 0) o.total = total;

  if (std::string why = Validate(o); !why.empty()) {
    result.exit_code = 2;
    result.message = "kvbench: " + why + "\n";
    return result;
  }
  result.options = o;
  return result;
}

}  // namespace kvbench
