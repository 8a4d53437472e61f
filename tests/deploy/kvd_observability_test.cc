// kvd's operational surface on a real member: /metrics carries etcd's metric families and
// counts gRPC calls by method and code, /livez /readyz /health answer, logs are JSON lines
// with the member ID and term, and the alert rules and dashboard only use metrics kvd exports
// (the node validator is run on the live /metrics).
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "tests/server/kvd_test_util.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/http_get.h"
#include "tests/support/log_tail.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"

namespace {

using std::chrono::milliseconds;

// The value of the series `name{labels}` exactly as rendered, or -1 when absent.
double SeriesValue(const std::string& metrics, const std::string& series) {
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::strtod(line.c_str() + series.size(), nullptr);
  }
  return -1;
}

TEST_CASE("a kvd member serves etcd's metrics, probes and JSON logs", "[observability]") {
  // Goal: gRPC calls are counted per method and code (OK and an error), every metric family
  // the issue lists is exported, the probes answer, and each log line is JSON with the member
  // id and term.
  const uint16_t metrics_port = kvtest::PickFreePort();
  kvtest::ClusterOptions o = kvdtest::KvdOptions(1);
  o.extra_args = {"--listen-metrics-urls=http://127.0.0.1:" + std::to_string(metrics_port),
                  "--log-format=json"};
  auto cluster = kvtest::StartEtcdLikeCluster(o);
  auto channel = kvtest::MakeChannel(cluster->endpoint(0));
  auto kv = etcdserverpb::KV::NewStub(channel);
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
    etcdserverpb::PutRequest req;
    req.set_key("obs/" + std::to_string(i));
    req.set_value("v");
    etcdserverpb::PutResponse resp;
    REQUIRE(kv->Put(&ctx, req, &resp).ok());
  }
  {
    // A future revision: etcd answers OutOfRange.
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
    etcdserverpb::RangeRequest req;
    req.set_key("obs/0");
    req.set_revision(1000000);
    etcdserverpb::RangeResponse resp;
    REQUIRE(kv->Range(&ctx, req, &resp).error_code() == grpc::StatusCode::OUT_OF_RANGE);
  }
  {
    // No key: refused before proposing (etcd's "key is not provided", InvalidArgument).
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
    etcdserverpb::PutRequest req;
    etcdserverpb::PutResponse resp;
    REQUIRE(kv->Put(&ctx, req, &resp).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  for (const bool read_only : {false, true}) {
    // Txn is counted by its handler on both of its paths (proposed, and read through ReadIndex).
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
    etcdserverpb::TxnRequest req;
    if (read_only) {
      req.add_success()->mutable_request_range()->set_key("obs/0");
    } else {
      req.add_success()->mutable_request_put()->set_key("obs/txn");
    }
    etcdserverpb::TxnResponse resp;
    REQUIRE(kv->Txn(&ctx, req, &resp).ok());
  }
  {
    // Maintenance methods are counted by the interceptor.
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
    etcdserverpb::StatusResponse st;
    REQUIRE(etcdserverpb::Maintenance::NewStub(channel)
                ->Status(&ctx, etcdserverpb::StatusRequest(), &st)
                .ok());
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
    etcdserverpb::DeleteRangeRequest req;
    req.set_key("obs/txn");
    etcdserverpb::DeleteRangeResponse resp;
    REQUIRE(kv->DeleteRange(&ctx, req, &resp).ok());
  }

  const kvtest::HttpReply metrics = kvtest::HttpGet(metrics_port, "/metrics");
  REQUIRE(metrics.status == 200);
  const std::string& m = metrics.body;
  const std::string put =
      "grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"";
  const std::string range =
      "grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"";
  // The ready probe of the harness also calls Range, so Range counts are lower bounds.
  CHECK(SeriesValue(m, "grpc_server_started_total{" + put + "}") == 4);
  CHECK(SeriesValue(m, "grpc_server_handled_total{grpc_code=\"OK\"," + put + "}") == 3);
  CHECK(SeriesValue(m, "grpc_server_handled_total{grpc_code=\"InvalidArgument\"," + put + "}") ==
        1);
  CHECK(SeriesValue(m, "grpc_server_handled_total{grpc_code=\"Unavailable\"," + put + "}") == 0);
  CHECK(SeriesValue(m, "grpc_server_handling_seconds_count{" + put + "}") == 4);
  for (const char* method : {"Txn", "DeleteRange"}) {
    const std::string labels = std::string("grpc_method=\"") + method +
                               "\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"";
    const double calls = std::string(method) == "Txn" ? 2 : 1;
    CHECK(SeriesValue(m, "grpc_server_started_total{" + labels + "}") == calls);
    CHECK(SeriesValue(m, "grpc_server_handled_total{grpc_code=\"OK\"," + labels + "}") == calls);
    CHECK(SeriesValue(m, "grpc_server_handling_seconds_count{" + labels + "}") == calls);
  }
  // A method counted by the interceptor (not by its handler) is still counted (the harness may
  // call Status too).
  CHECK(SeriesValue(m,
                    "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Status\","
                    "grpc_service=\"etcdserverpb.Maintenance\",grpc_type=\"unary\"}") >= 1);
  CHECK(SeriesValue(m, "grpc_server_handled_total{grpc_code=\"OutOfRange\"," + range + "}") == 1);
  // Streams are labelled with their type (series exist before the first call).
  CHECK(SeriesValue(m,
                    "grpc_server_started_total{grpc_method=\"Watch\",grpc_service=\"etcdserverpb."
                    "Watch\",grpc_type=\"bidi_stream\"}") >= 0);
  CHECK(SeriesValue(m,
                    "grpc_server_started_total{grpc_method=\"Snapshot\",grpc_service="
                    "\"etcdserverpb.Maintenance\",grpc_type=\"server_stream\"}") == 0);
  CHECK(SeriesValue(m, "etcd_server_has_leader") == 1);
  CHECK(SeriesValue(m, "etcd_server_is_leader") == 1);
  CHECK(SeriesValue(m, "etcd_debugging_mvcc_current_revision") == 6);  // 3 puts, txn, delete
  for (const char* family :
       {"etcd_server_leader_changes_seen_total", "etcd_server_proposals_committed_total",
        "etcd_server_proposals_applied_total", "etcd_server_proposals_pending",
        "etcd_server_proposals_failed_total", "etcd_disk_wal_fsync_duration_seconds",
        "etcd_disk_backend_commit_duration_seconds", "etcd_mvcc_db_total_size_in_bytes",
        "etcd_debugging_mvcc_watcher_total", "etcd_server_quota_backend_bytes",
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
        "process_start_time_seconds", "kvd_raft_term", "kvd_raft_applied_index",
        "kvd_raft_log_first_index"}) {
    INFO(family);
    CHECK(m.find("# TYPE " + std::string(family) + " ") != std::string::npos);
  }

  CHECK(kvtest::HttpGet(metrics_port, "/livez").status == 200);
  CHECK(kvtest::HttpGet(metrics_port, "/readyz").status == 200);
  const kvtest::HttpReply health = kvtest::HttpGet(metrics_port, "/health");
  CHECK(health.status == 200);
  CHECK(health.body == "{\"health\":\"true\"}");

  // The alert rules and dashboard against this live exposition.
  const std::string metrics_file = cluster->dir().string() + "/metrics.txt";
  std::ofstream(metrics_file) << m;
  kvtest::ProcessOptions p;
  p.argv = {KV_NODE, KV_SOURCE_DIR "/tests/deploy/validate_manifests.js", KV_SOURCE_DIR,
            metrics_file};
  p.log_path = cluster->dir().string() + "/validate.log";
  kvtest::Process validator(p);
  auto status = validator.Wait(milliseconds(60000));
  INFO(validator.LogTail(8000));
  REQUIRE(status);
  CHECK(status->ExitedWith(0));

  // Logs: every line of ours is JSON with the member ID and a term (gRPC's own lines are not
  // ours and are skipped: they do not start with '{').
  std::ifstream log(cluster->log_path(0));
  std::string line;
  int json_lines = 0;
  bool saw_line_with_term = false;
  while (std::getline(log, line)) {
    if (line.empty() || line[0] != '{') {
      INFO("non-JSON line: " << line);
      CHECK_FALSE(std::regex_search(line, std::regex("^[0-9]{4}-[0-9]{2}-[0-9]{2} .* kvd: ")));
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(line);
    ++json_lines;
    CHECK(j["local-member-id"].get<std::string>().size() > 0);
    CHECK(j["local-member-id"] != "0");
    CHECK(j["term"].is_number_unsigned());
    CHECK(j["level"].is_string());
    if (j["term"].get<uint64_t>() >= 1) saw_line_with_term = true;
  }
  CHECK(json_lines >= 3);
  CHECK(saw_line_with_term);
}

TEST_CASE("kvd members time their peers into etcd_network_peer_round_trip_time_seconds",
          "[observability]") {
  // Goal: every member probes each peer and the round trips land in the histogram labelled
  // with the peer's ID in hex, as etcd's dashboards expect.
  kvtest::ClusterOptions o = kvdtest::KvdOptions(3);
  const std::vector<uint16_t> metrics_ports = kvtest::PickFreePorts(3);
  for (uint16_t port : metrics_ports) {
    o.member_extra_args.push_back(
        {"--listen-metrics-urls=http://127.0.0.1:" + std::to_string(port)});
  }
  auto cluster = kvtest::StartEtcdLikeCluster(o);
  std::vector<std::string> ids;
  for (size_t i = 0; i < 3; ++i) {
    auto maint = etcdserverpb::Maintenance::NewStub(kvtest::MakeChannel(cluster->endpoint(i)));
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
    etcdserverpb::StatusResponse st;
    REQUIRE(maint->Status(&ctx, etcdserverpb::StatusRequest(), &st).ok());
    std::ostringstream hex;
    hex << std::hex << st.header().member_id();
    ids.push_back(hex.str());
  }
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 3; ++j) {
      const std::string series =
          "etcd_network_peer_round_trip_time_seconds_count{To=\"" + ids[j] + "\"}";
      std::string text;
      double count = -1;
      // Polled for up to 30 s (the first probe goes out when the peer stream starts); a
      // member's own ID is looked up once.
      const int attempts = i == j ? 1 : 150;
      for (int attempt = 0; attempt < attempts && count < 1; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(milliseconds(200));
        text = kvtest::HttpGet(metrics_ports[i], "/metrics").body;
        count = SeriesValue(text, series);
      }
      INFO("member " << i << " -> " << j << ": " << series);
      if (i == j) {
        CHECK(count == -1);  // a member does not probe itself
      } else {
        CHECK(count >= 1);
      }
    }
  }
}

}  // namespace

TEST_CASE("the failpoint endpoint exists only when asked for, and arms and disarms points",
          "[observability]") {
  // Goal: GET /debug/failpoints is absent by default; with KVD_FAILPOINTS_HTTP=1 it arms a
  // point (a delayed fsync still lets writes succeed), refuses unknown ones, and disarms.
  const uint16_t plain_port = kvtest::PickFreePort();
  {
    kvtest::ClusterOptions o = kvdtest::KvdOptions(1);
    o.extra_args = {"--listen-metrics-urls=http://127.0.0.1:" + std::to_string(plain_port)};
    auto cluster = kvtest::StartEtcdLikeCluster(o);
    CHECK(kvtest::HttpGet(plain_port, "/debug/failpoints?raftBeforeSave=error").status == 404);
  }
  const uint16_t port = kvtest::PickFreePort();
  kvtest::ClusterOptions o = kvdtest::KvdOptions(1);
  o.extra_args = {"--listen-metrics-urls=http://127.0.0.1:" + std::to_string(port)};
  o.env = {{"KVD_FAILPOINTS_HTTP", "1"}};
  auto cluster = kvtest::StartEtcdLikeCluster(o);
  kvtest::HttpReply r = kvtest::HttpGet(port, "/debug/failpoints?raftBeforeSave=sleep(20)");
  CHECK(r.status == 200);
  CHECK(r.body == "raftBeforeSave=sleep(20)\n");
  auto kv = etcdserverpb::KV::NewStub(kvtest::MakeChannel(cluster->endpoint(0)));
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
  etcdserverpb::PutRequest req;
  req.set_key("slow");
  req.set_value("v");
  etcdserverpb::PutResponse resp;
  CHECK(kv->Put(&ctx, req, &resp).ok());
  r = kvtest::HttpGet(port, "/debug/failpoints?raftBeforeSav=error");
  CHECK(r.status == 400);
  CHECK(r.body.find("unknown failpoint") != std::string::npos);
  // Percent-encoded, as an HTTP client library sends it.
  r = kvtest::HttpGet(port, "/debug/failpoints?backendBeforeCommit=sleep%2810%29");
  CHECK(r.status == 200);
  CHECK(r.body == "backendBeforeCommit=sleep(10)\nraftBeforeSave=sleep(20)\n");
  r = kvtest::HttpGet(port, "/debug/failpoints?backendBeforeCommit=sleep%2");
  CHECK(r.status == 400);
  r = kvtest::HttpGet(port, "/debug/failpoints?raftBeforeSave=off&backendBeforeCommit=off");
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(kvtest::TailOfFile(cluster->log_path(0), 1 << 16)
            .find("failpoint raftBeforeSave set to sleep(20) over HTTP") != std::string::npos);
}
