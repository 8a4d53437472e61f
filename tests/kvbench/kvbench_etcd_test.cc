// Runs the kvbench binary for about a second per workload against a real 1-member etcd 3.4.23
// and checks that its counts add up, against its own JSON report and against the server.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

// Runs kvbench with `args` plus --json, bounded to 120 s; returns the parsed JSON report.
nlohmann::json RunKvbench(const kvtest::TempDir& dir, const std::string& name,
                          std::vector<std::string> args) {
  const auto json_path = dir.path() / (name + ".json");
  args.insert(args.begin(), KVBENCH_BINARY);
  args.push_back("--json");
  args.push_back(json_path.string());
  kvtest::Process p({.argv = args,
                     .env = {},
                     .env_unset_prefixes = {},
                     .log_path = dir.path() / (name + ".log")});
  const auto status = p.Wait(std::chrono::seconds(120));
  INFO(p.LogTail());
  REQUIRE(status);
  REQUIRE(status->ExitedWith(0));
  std::ifstream in(json_path);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("kvbench put, range and watch counts add up against a real etcd", "[kvbench]") {
  // Goal: the reported operation and event counts match what was asked and what etcd stored.
  kvtest::ClusterOptions copts;
  copts.member_count = 1;
  auto cluster = kvtest::StartEtcdLikeCluster(copts);
  const std::string ep = cluster->endpoint(0);
  kvtest::TempDir dir("kvbench-test");

  // 300 puts over a key space of 300 keys, sequentially: every key written exactly once.
  const auto put =
      RunKvbench(dir, "put",
                 {"put", "--endpoints", ep, "--clients", "8", "--conns", "2", "--key-prefix", "/b/",
                  "--key-size", "8", "--key-space-size", "300", "--sequential-keys", "--val-size",
                  "64", "--total", "300", "--no-progress"});
  CHECK(put["workload"] == "put");
  CHECK(put["ok"] == 300);
  CHECK(put["errors"] == 0);
  CHECK(put["latency"]["count"] == 300);
  CHECK(put["latency"]["p50_ms"].get<double>() <= put["latency"]["p99_ms"].get<double>());
  CHECK(put["latency"]["p99_ms"].get<double>() <= put["latency"]["max_ms"].get<double>());
  {
    auto stub = etcdserverpb::KV::NewStub(kvtest::MakeChannel(ep));
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(std::chrono::milliseconds(5000)));
    etcdserverpb::RangeRequest req;
    req.set_key("/b/");
    req.set_range_end("/b0");
    req.set_count_only(true);
    etcdserverpb::RangeResponse resp;
    REQUIRE(stub->Range(&ctx, req, &resp).ok());
    CHECK(resp.count() == 300);
    CHECK(resp.header().revision() == 301);  // one revision per put
  }

  // Serializable reads for ~1 s, rate-limited to 200/s: about 200 reads, all successful.
  const auto range =
      RunKvbench(dir, "range",
                 {"range", "--endpoints", ep, "--clients", "4", "--key-prefix", "/b/", "--key-size",
                  "8", "--key-space-size", "300", "--consistency", "s", "--rate", "200",
                  "--duration", "1", "--no-progress"});
  CHECK(range["errors"] == 0);
  CHECK(range["serializable"] == true);
  CHECK(range["latency"]["count"] == range["ok"]);
  CHECK(range["ok"].get<int>() >= 100);
  CHECK(range["ok"].get<int>() <= 205);  // the limiter allows at most a burst of --clients

  // kvbench watch: `watchers` watchers on `prefix` over `streams` streams, 2 putters at 50/s.
  const auto watch_args = [&ep](const std::string& watchers, const std::string& streams,
                                const std::string& prefix, const std::string& total) {
    return std::vector<std::string>{"watch",
                                    "--endpoints",
                                    ep,
                                    "--watchers",
                                    watchers,
                                    "--streams",
                                    streams,
                                    "--prefix",
                                    "--key-prefix",
                                    prefix,
                                    "--key-size",
                                    "8",
                                    "--key-space-size",
                                    "10",
                                    "--clients",
                                    "2",
                                    "--rate",
                                    "50",
                                    "--total",
                                    total,
                                    "--no-progress"};
  };
  // 20 watchers on a prefix over 3 streams; 50 puts at 50/s: every watcher sees every put.
  const auto watch = RunKvbench(dir, "watch", watch_args("20", "3", "/w/", "50"));
  CHECK(watch["ok"] == 50);
  CHECK(watch["watchers_created"] == 20);
  CHECK(watch["events_expected"] == 1000);
  CHECK(watch["events_received"] == 1000);
  CHECK(watch["events_of_acked_puts"] == 1000);
  CHECK(watch["event_send_latency"]["count"] == 1000);
  CHECK(watch["watch_errors"] == 0);
  CHECK(watch["event_latency"]["count"] == 1000);
  CHECK(watch["stalled_created"] == 0);

  // The same with 2 stalled streams (slow consumers): their watchers are created and their
  // events are not counted; the reading watchers still see every put.
  std::vector<std::string> stalled_args = watch_args("4", "2", "/st/", "20");
  stalled_args.insert(stalled_args.end(), {"--stalled-streams", "2"});
  const auto stalled = RunKvbench(dir, "stalled", stalled_args);
  CHECK(stalled["ok"] == 20);
  CHECK(stalled["watchers_created"] == 4);
  CHECK(stalled["stalled_streams"] == 2);
  CHECK(stalled["stalled_created"] == 2);
  CHECK(stalled["events_expected"] == 80);
  CHECK(stalled["events_of_acked_puts"] == 80);
  CHECK(stalled["events_received"] == 80);
  CHECK(stalled["watch_errors"] == 0);
}
