#include "bench/kvbench/options.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace {

kvbench::ParseResult Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "kvbench");
  return kvbench::ParseOptions(args);
}

}  // namespace

TEST_CASE("put options parse into the options struct", "[kvbench]") {
  // Goal: every common option reaches its field.
  const auto r = Parse({"put",
                        "--endpoints",
                        "127.0.0.1:1,127.0.0.1:2",
                        "--clients",
                        "1000",
                        "--conns",
                        "100",
                        "--key-size",
                        "16",
                        "--val-size",
                        "256",
                        "--key-space-size",
                        "100000",
                        "--rate",
                        "500",
                        "--duration",
                        "2.5",
                        "--json",
                        "/tmp/x.json",
                        "--sequential-keys"});
  INFO(r.message);
  REQUIRE(r.options);
  const auto& o = *r.options;
  CHECK(o.workload == kvbench::Workload::kPut);
  CHECK(o.endpoints == std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"});
  CHECK(o.clients == 1000);
  CHECK(o.conns == 100);
  CHECK(o.key_size == 16);
  CHECK(o.value_size == 256);
  CHECK(o.key_space_size == 100000);
  CHECK(o.rate_per_s == 500);
  REQUIRE(o.duration_s);
  CHECK(*o.duration_s == 2.5);
  CHECK_FALSE(o.total);
  CHECK(o.json_path == "/tmp/x.json");
  CHECK(o.sequential_keys);
}

TEST_CASE("subcommand-specific options select the workload", "[kvbench]") {
  // Goal: range consistency, lease mode and watch options are parsed.
  auto r = Parse({"range", "--consistency", "s", "--total", "10"});
  REQUIRE(r.options);
  CHECK(r.options->workload == kvbench::Workload::kRange);
  CHECK(r.options->serializable);
  CHECK(*r.options->total == 10);
  r = Parse({"range", "--total", "10"});
  REQUIRE(r.options);
  CHECK_FALSE(r.options->serializable);
  r = Parse({"lease", "--mode", "keepalive", "--total", "5"});
  REQUIRE(r.options);
  CHECK(r.options->workload == kvbench::Workload::kLeaseKeepAlive);
  r = Parse({"lease", "--total", "5"});
  REQUIRE(r.options);
  CHECK(r.options->workload == kvbench::Workload::kLeaseGrant);
  r = Parse({"watch", "--watchers", "10000", "--streams", "100", "--prefix", "--key-prefix", "/w/",
             "--rate", "100", "--duration", "3", "--clients", "4", "--conns", "2"});
  INFO(r.message);
  REQUIRE(r.options);
  CHECK(r.options->workload == kvbench::Workload::kWatch);
  CHECK(r.options->watchers == 10000);
  CHECK(r.options->watch_streams == 100);
  CHECK(r.options->watch_prefix);
  CHECK(r.options->WatchPuts() == 300);
  CHECK(r.options->stalled_streams == 0);
  r = Parse({"watch", "--rate", "10", "--total", "10", "--stalled-streams", "7"});
  REQUIRE(r.options);
  CHECK(r.options->stalled_streams == 7);
  r = Parse({"txn", "--txn-ops", "3", "--key-space-size", "10", "--total", "1"});
  REQUIRE(r.options);
  CHECK(r.options->txn_ops == 3);
}

TEST_CASE("invalid option combinations are rejected with a reason", "[kvbench]") {
  // Goal: validation catches each rule instead of starting a run that cannot work.
  const std::vector<std::vector<std::string>> bad = {
      {"put"},                                                    // no duration or total
      {"put", "--total", "0"},                                    // zero total
      {"put", "--total", "1", "--clients", "0"},                  // no clients
      {"put", "--total", "1", "--clients", "2", "--conns", "3"},  // conns > clients
      {"put", "--total", "1", "--key-size", "2", "--key-space-size", "1000"},  // key too short
      {"put", "--total", "1", "--val-size", "2000000"},                        // value too big
      {"range", "--total", "1", "--consistency", "x"},                         // bad consistency
      {"watch", "--total", "10"},                                              // watch without rate
      {"watch", "--rate", "10", "--total", "10", "--watchers", "2", "--streams", "3"},
      {"watch", "--rate", "10", "--total", "10", "--stalled-streams", "10001"},
      {"txn", "--txn-ops", "5", "--total", "1"},    // key space < txn ops
      {"frobnicate", "--total", "1"},               // unknown subcommand
      {"put", "--total", "1", "--duration", "-1"},  // negative duration
  };
  for (const auto& args : bad) {
    INFO(args[0] << " " << (args.size() > 1 ? args[1] : ""));
    const auto r = Parse(args);
    CHECK_FALSE(r.options);
    CHECK(r.exit_code != 0);
    CHECK_FALSE(r.message.empty());
  }
}

TEST_CASE("kvbench --help prints usage and exits 0 without a run", "[kvbench]") {
  // Goal: help is not an error and does not start a run.
  const auto r = Parse({"put", "--help"});
  CHECK_FALSE(r.options);
  CHECK(r.exit_code == 0);
  CHECK(r.message.find("--clients") != std::string::npos);
}
