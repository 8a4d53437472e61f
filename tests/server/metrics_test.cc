// server metrics: the registry's text exposition output is parsed back and checked.
#include "server/metrics.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

// One parsed sample line: name{labels} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

// A parsed exposition: HELP and TYPE per family and every sample in order.
struct Exposition {
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::vector<Sample> samples;
  std::vector<std::string> family_order;  // families in the order of their TYPE lines

  // The value of the sample with this name and exactly these labels ("" if absent).
  std::string Value(const std::string& name,
                    const std::map<std::string, std::string>& labels = {}) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return "";
  }
  size_t Count(const std::string& name) const {
    size_t n = 0;
    for (const Sample& s : samples) n += s.name == name ? size_t{1} : size_t{0};
    return n;
  }
};

std::string Unescape(const std::string& s, bool label) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      if (n == 'n') {
        out.push_back('\n');
      } else if (n == '\\' || (label && n == '"')) {
        out.push_back(n);
      } else {
        FAIL("bad escape \\" << n);
      }
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Parses the text format strictly enough to catch malformed output (REQUIREs on errors).
Exposition ParseExposition(const std::string& text) {
  Exposition e;
  REQUIRE((text.empty() || text.back() == '\n'));
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    INFO("line: " << line);
    REQUIRE_FALSE(line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      REQUIRE(sp != std::string::npos);
      e.help[rest.substr(0, sp)] = Unescape(rest.substr(sp + 1), false);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      REQUIRE(sp != std::string::npos);
      e.type[rest.substr(0, sp)] = rest.substr(sp + 1);
      e.family_order.push_back(rest.substr(0, sp));
      continue;
    }
    REQUIRE(line[0] != '#');
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name.push_back(line[i++]);
    REQUIRE(i < line.size());
    if (line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        size_t eq = line.find('=', i);
        REQUIRE(eq != std::string::npos);
        std::string key = line.substr(i, eq - i);
        REQUIRE(line[eq + 1] == '"');
        size_t j = eq + 2;
        std::string raw;
        while (line[j] != '"') {
          if (line[j] == '\\') raw.push_back(line[j++]);
          raw.push_back(line[j++]);
          REQUIRE(j < line.size());
        }
        s.labels[key] = Unescape(raw, true);
        i = j + 1;
        if (line[i] == ',') ++i;
      }
      ++i;
    }
    REQUIRE(line[i] == ' ');
    s.value = line.substr(i + 1);
    REQUIRE_FALSE(s.value.empty());
    e.samples.push_back(s);
  }
  return e;
}

double ToDouble(const std::string& s) {
  REQUIRE_FALSE(s.empty());
  return std::stod(s);
}

}  // namespace

TEST_CASE("values are formatted like Go's strconv 'g' shortest", "[metrics]") {
  // Goal: the exact strings client_golang (and so etcd) writes for the same values.
  using server::FormatMetricValue;
  CHECK(FormatMetricValue(0) == "0");
  CHECK(FormatMetricValue(7) == "7");
  CHECK(FormatMetricValue(20000) == "20000");
  CHECK(FormatMetricValue(123456) == "123456");
  CHECK(FormatMetricValue(1e6) == "1e+06");
  CHECK(FormatMetricValue(1234567) == "1.234567e+06");
  CHECK(FormatMetricValue(2.5378816e+07) == "2.5378816e+07");
  CHECK(FormatMetricValue(1.79531080498e+09) == "1.79531080498e+09");
  CHECK(FormatMetricValue(0.04) == "0.04");
  CHECK(FormatMetricValue(0.0001) == "0.0001");
  CHECK(FormatMetricValue(0.00001) == "1e-05");
  CHECK(FormatMetricValue(8.192) == "8.192");
  CHECK(FormatMetricValue(-2.5) == "-2.5");
  CHECK(FormatMetricValue(0.1 + 0.2) == "0.30000000000000004");
  CHECK(FormatMetricValue(18446744073709551615.0) == "1.8446744073709552e+19");
  CHECK(FormatMetricValue(INFINITY) == "+Inf");
  CHECK(FormatMetricValue(-INFINITY) == "-Inf");
  CHECK(FormatMetricValue(NAN) == "NaN");
}

TEST_CASE("counters and gauges render with HELP and TYPE, sorted by name", "[metrics]") {
  // Goal: the basic exposition shape and that updates show up.
  server::MetricsRegistry r;
  server::Gauge& g = r.AddGauge("b_gauge", "A gauge.");
  server::Counter& c = r.AddCounter("a_total", "A counter.");
  c.Inc();
  c.Add(2.5);
  g.Set(10);
  g.Dec();
  g.Add(-0.5);
  Exposition e = ParseExposition(r.Render());
  CHECK(e.help["a_total"] == "A counter.");
  CHECK(e.type["a_total"] == "counter");
  CHECK(e.type["b_gauge"] == "gauge");
  CHECK(e.Value("a_total") == "3.5");
  CHECK(e.Value("b_gauge") == "8.5");
  CHECK(c.Value() == 3.5);
  REQUIRE(e.family_order.size() >= 2);
  CHECK(std::is_sorted(e.family_order.begin(), e.family_order.end()));
}

TEST_CASE("labels are sorted by name and escaped", "[metrics]") {
  // Goal: label pairs in name order, values escaped (\\, \", \n), HELP escaped (\\, \n), and
  // series ordered by label values.
  server::MetricsRegistry r;
  auto& family = r.AddCounterFamily("req_total", "Requests.\nSecond \\ line.", {"zone", "code"});
  family.WithLabels({"a\"b", "200"}).Inc();
  family.WithLabels({"back\\slash\nnl", "500"}).Add(2);
  family.WithLabels({"a\"b", "200"}).Inc();  // same series again
  const std::string text = r.Render();
  CHECK(text.find("# HELP req_total Requests.\\nSecond \\\\ line.\n") != std::string::npos);
  CHECK(text.find("req_total{code=\"200\",zone=\"a\\\"b\"} 2\n") != std::string::npos);
  Exposition e = ParseExposition(text);
  CHECK(e.help["req_total"] == "Requests.\nSecond \\ line.");
  CHECK(e.Value("req_total", {{"code", "200"}, {"zone", "a\"b"}}) == "2");
  CHECK(e.Value("req_total", {{"code", "500"}, {"zone", "back\\slash\nnl"}}) == "2");
  CHECK(e.Count("req_total") == 2);
}

TEST_CASE("a labelled family without series is not exported", "[metrics]") {
  // Goal: like client_golang, no HELP/TYPE lines for a family that has no series yet.
  server::MetricsRegistry r;
  auto& family = r.AddGaugeFamily("empty_gauge", "Nothing yet.", {"x"});
  CHECK(r.Render().find("empty_gauge") == std::string::npos);
  family.WithLabels({"1"}).Set(1);
  CHECK(ParseExposition(r.Render()).Value("empty_gauge", {{"x", "1"}}) == "1");
}

TEST_CASE("histograms render cumulative buckets, +Inf, sum and count", "[metrics]") {
  // Goal: bucket bounds are inclusive (le), counts are cumulative, and _count equals +Inf.
  server::MetricsRegistry r;
  server::Histogram& h = r.AddHistogram("lat_seconds", "Latency.", {0.1, 0.5, 1});
  for (double v : {0.05, 0.1, 0.3, 0.5, 0.7, 2.0, 3.0}) h.Observe(v);
  auto& family = r.AddHistogramFamily("rtt_seconds", "RTT.", {"To"}, {1, 2});
  family.WithLabels({"peer1"}).Observe(1.5);
  Exposition e = ParseExposition(r.Render());
  CHECK(e.type["lat_seconds"] == "histogram");
  CHECK(e.Value("lat_seconds_bucket", {{"le", "0.1"}}) == "2");
  CHECK(e.Value("lat_seconds_bucket", {{"le", "0.5"}}) == "4");
  CHECK(e.Value("lat_seconds_bucket", {{"le", "1"}}) == "5");
  CHECK(e.Value("lat_seconds_bucket", {{"le", "+Inf"}}) == "7");
  CHECK(e.Value("lat_seconds_count") == "7");
  CHECK(ToDouble(e.Value("lat_seconds_sum")) == Approx(6.65));
  CHECK(e.Value("rtt_seconds_bucket", {{"To", "peer1"}, {"le", "1"}}) == "0");
  CHECK(e.Value("rtt_seconds_bucket", {{"To", "peer1"}, {"le", "2"}}) == "1");
  CHECK(e.Value("rtt_seconds_bucket", {{"To", "peer1"}, {"le", "+Inf"}}) == "1");
  CHECK(e.Value("rtt_seconds_sum", {{"To", "peer1"}}) == "1.5");
  server::Histogram::Snapshot snap = h.Read();
  CHECK(snap.count == 7);
  CHECK(snap.cumulative_counts == std::vector<uint64_t>{2, 4, 5, 7});
}

TEST_CASE("concurrent updates are not lost", "[metrics]") {
  // Goal: counters, gauges and histograms are exact under concurrent updates.
  server::MetricsRegistry r;
  server::Counter& c = r.AddCounter("c_total", "c");
  server::Gauge& g = r.AddGauge("g", "g");
  server::Histogram& h = r.AddHistogram("h", "h", {1});
  auto& family = r.AddCounterFamily("f_total", "f", {"k"});
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      server::Counter& mine = family.WithLabels({std::to_string(t % 2)});
      for (int i = 0; i < kIterations; ++i) {
        c.Inc();
        g.Inc();
        h.Observe(i % 2 == 0 ? 0.5 : 2.0);
        mine.Inc();
      }
    });
  }
  for (auto& t : threads) t.join();
  Exposition e = ParseExposition(r.Render());
  CHECK(e.Value("c_total") == "80000");
  CHECK(e.Value("g") == "80000");
  CHECK(e.Value("h_bucket", {{"le", "1"}}) == "40000");
  CHECK(e.Value("h_count") == "80000");
  CHECK(e.Value("f_total", {{"k", "0"}}) == "40000");
  CHECK(e.Value("f_total", {{"k", "1"}}) == "40000");
}

TEST_CASE("a full family drops new label sets and counts them", "[metrics]") {
  // Goal: the series bound holds; drops go to an unexported series and are counted.
  server::MetricsRegistry r;
  auto& family = r.AddCounterFamily("many_total", "many", {"id"});
  for (size_t i = 0; i < server::kSeriesPerFamilyMax + 3; ++i) {
    family.WithLabels({std::to_string(i)}).Inc();
  }
  Exposition e = ParseExposition(r.Render());
  CHECK(e.Count("many_total") == server::kSeriesPerFamilyMax);
  CHECK(e.Value("kvd_metrics_series_dropped_total") == "3");
  CHECK(family.dropped_series() == 3);
}

TEST_CASE("etcd's metrics are registered with etcd's names, types and buckets", "[metrics]") {
  // Goal: names, TYPE and HELP as etcd 3.4.23 exports them, and its bucket layouts.
  server::MetricsRegistry r;
  server::EtcdMetrics m = server::RegisterEtcdMetrics(r);
  m.has_leader.Set(1);
  m.leader_changes_seen_total.Inc();
  m.proposals_committed_total.Set(12);
  m.wal_fsync_duration_seconds.Observe(0.003);
  m.peer_round_trip_time_seconds.WithLabels({"8e9e05c52164694d"}).Observe(0.00015);
  server::PreinitializeGrpcMethod(m, server::kGrpcUnary, "etcdserverpb.KV", "Range");
  m.grpc_server_handled_total.WithLabels({"unary", "etcdserverpb.KV", "Range", "OK"}).Inc();
  Exposition e = ParseExposition(r.Render());

  const std::map<std::string, std::string> expected_types = {
      {"etcd_server_has_leader", "gauge"},
      {"etcd_server_leader_changes_seen_total", "counter"},
      {"etcd_server_proposals_committed_total", "gauge"},
      {"etcd_server_proposals_applied_total", "gauge"},
      {"etcd_server_proposals_pending", "gauge"},
      {"etcd_server_proposals_failed_total", "counter"},
      {"etcd_disk_wal_fsync_duration_seconds", "histogram"},
      {"etcd_disk_backend_commit_duration_seconds", "histogram"},
      {"etcd_mvcc_db_total_size_in_bytes", "gauge"},
      {"etcd_debugging_mvcc_watcher_total", "gauge"},
      {"etcd_network_peer_round_trip_time_seconds", "histogram"},
      {"grpc_server_started_total", "counter"},
      {"grpc_server_handled_total", "counter"},
      {"grpc_server_handling_seconds", "histogram"}};
  for (const auto& [name, type] : expected_types) {
    INFO(name);
    CHECK(e.type[name] == type);
  }
  CHECK(e.help["etcd_server_has_leader"] ==
        "Whether or not a leader exists. 1 is existence, 0 is not.");
  CHECK(e.help["etcd_disk_wal_fsync_duration_seconds"] ==
        "The latency distributions of fsync called by WAL.");
  CHECK(e.help["grpc_server_handled_total"] ==
        "Total number of RPCs completed on the server, regardless of success or failure.");
  CHECK(e.Value("etcd_server_has_leader") == "1");
  CHECK(e.Value("etcd_server_proposals_committed_total") == "12");
  // etcd's disk buckets: 0.001 * 2^i for i < 14, i.e. up to 8.192.
  CHECK(e.Value("etcd_disk_wal_fsync_duration_seconds_bucket", {{"le", "0.002"}}) == "0");
  CHECK(e.Value("etcd_disk_wal_fsync_duration_seconds_bucket", {{"le", "0.004"}}) == "1");
  CHECK(e.Value("etcd_disk_wal_fsync_duration_seconds_bucket", {{"le", "8.192"}}) == "1");
  CHECK(e.Count("etcd_disk_backend_commit_duration_seconds_bucket") == 15);
  CHECK(e.Value("etcd_network_peer_round_trip_time_seconds_bucket",
                {{"To", "8e9e05c52164694d"}, {"le", "0.0002"}}) == "1");
  CHECK(e.Value("etcd_network_peer_round_trip_time_seconds_bucket",
                {{"To", "8e9e05c52164694d"}, {"le", "0.0001"}}) == "0");
  // go-grpc-prometheus: every code pre-created at zero, label names as it spells them.
  CHECK(e.Count("grpc_server_handled_total") == 17);
  CHECK(e.Value("grpc_server_handled_total", {{"grpc_code", "OK"},
                                              {"grpc_method", "Range"},
                                              {"grpc_service", "etcdserverpb.KV"},
                                              {"grpc_type", "unary"}}) == "1");
  CHECK(e.Value("grpc_server_handled_total", {{"grpc_code", "Unauthenticated"},
                                              {"grpc_method", "Range"},
                                              {"grpc_service", "etcdserverpb.KV"},
                                              {"grpc_type", "unary"}}) == "0");
  CHECK(e.Value("grpc_server_started_total", {{"grpc_method", "Range"},
                                              {"grpc_service", "etcdserverpb.KV"},
                                              {"grpc_type", "unary"}}) == "0");
  CHECK(e.Value("grpc_server_handling_seconds_bucket", {{"grpc_method", "Range"},
                                                        {"grpc_service", "etcdserverpb.KV"},
                                                        {"grpc_type", "unary"},
                                                        {"le", "0.005"}}) == "0");
  CHECK(server::GrpcCodeName(5) == "NotFound");
  CHECK(server::GrpcCodeName(16) == "Unauthenticated");
}

TEST_CASE("process metrics come from /proc", "[metrics]") {
  // Goal: the client_golang process metrics exist with plausible values for this process.
  server::MetricsRegistry r;
  server::RegisterProcessMetrics(r);
  std::vector<char> ballast(8 << 20, 1);  // touched memory, so RSS is clearly non-zero
  Exposition e = ParseExposition(r.Render());
  CHECK(e.type["process_cpu_seconds_total"] == "counter");
  CHECK(e.type["process_resident_memory_bytes"] == "gauge");
  CHECK(ToDouble(e.Value("process_resident_memory_bytes")) >= static_cast<double>(ballast.size()));
  CHECK(ToDouble(e.Value("process_virtual_memory_bytes")) >=
        ToDouble(e.Value("process_resident_memory_bytes")));
  CHECK(ToDouble(e.Value("process_open_fds")) >= 3);
  CHECK(ToDouble(e.Value("process_max_fds")) >= ToDouble(e.Value("process_open_fds")));
  CHECK(ToDouble(e.Value("process_cpu_seconds_total")) >= 0);
  const double now_seconds =
      static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
  const double start = ToDouble(e.Value("process_start_time_seconds"));
  CHECK(start <= now_seconds + 1);
  CHECK(start > now_seconds - 24 * 3600);  // this test process started recently
  CHECK_FALSE(e.Value("process_virtual_memory_max_bytes").empty());
}
