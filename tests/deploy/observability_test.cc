// Unit tests of kvd's operational surface that need no running member: log line formats,
// the health and readiness rules, and the /health, /livez, /readyz handlers on a real
// HttpServer bound to 127.0.0.1.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "server/http_server.h"
#include "server/log.h"
#include "server/metrics.h"
#include "tests/support/http_get.h"

namespace {

using server::LogLineFormat;
using server::LogSeverity;

// 2026-11-22 01:40:12.345678 UTC in microseconds.
constexpr int64_t kSomeMicros = 1795311612345678;

TEST_CASE("json log lines carry etcd's zap fields, member id and term", "[log]") {
  // Goal: a JSON line parses, and has level, ts, local-member-id, term and the exact message.
  const std::string line =
      server::FormatLogLine(LogLineFormat::kJson, LogSeverity::kWarn, kSomeMicros,
                            0x8e9e05c52164694dULL, 7, "warning: disk \"slow\"\n\tsecond\\line");
  CHECK(line.find('\n') == std::string::npos);
  nlohmann::json j = nlohmann::json::parse(line);
  CHECK(j["level"] == "warn");
  CHECK(j["ts"] == "2026-11-22T01:40:12.345678Z");
  CHECK(j["caller"] == "kvd");
  CHECK(j["local-member-id"] == "8e9e05c52164694d");
  CHECK(j["term"] == 7);
  CHECK(j["msg"] == "warning: disk \"slow\"\n\tsecond\\line");
}

TEST_CASE("json log lines escape control characters", "[log]") {
  // Goal: bytes below 0x20 come out as \u escapes and survive a JSON round trip.
  const std::string message = std::string("a\x01") + "b";
  const std::string line =
      server::FormatLogLine(LogLineFormat::kJson, LogSeverity::kInfo, kSomeMicros, 1, 0, message);
  CHECK(line.find("\\u0001") != std::string::npos);
  CHECK(nlohmann::json::parse(line)["msg"] == message);
}

TEST_CASE("text log lines are one line with member and term", "[log]") {
  // Goal: the text format keeps the timestamp prefix, shows level, member, term, and folds
  // line feeds so one event stays one line.
  const std::string line = server::FormatLogLine(LogLineFormat::kText, LogSeverity::kError,
                                                 kSomeMicros, 0xabc, 3, "error: a\nb");
  CHECK(line == "2026-11-22 01:40:12.345678 kvd: E | member=abc term=3 | error: a b");
}

TEST_CASE("log severity comes from the message prefix", "[log]") {
  // Goal: warning:/error: prefixes map to their levels, anything else is info.
  CHECK(server::SeverityOf("warning: x") == LogSeverity::kWarn);
  CHECK(server::SeverityOf("error: x") == LogSeverity::kError);
  CHECK(server::SeverityOf("member started") == LogSeverity::kInfo);
  CHECK(server::SeverityOf("warn") == LogSeverity::kInfo);
}

TEST_CASE("health needs a leader, readiness also needs the applied index caught up", "[health]") {
  // Goal: the two probe rules differ exactly on apply lag, and both fail without a leader.
  server::MemberProgress p;
  p.leader_id = 0;
  p.commit_index = 10;
  p.applied_index = 10;
  CHECK_FALSE(server::MemberHealth(p).healthy);
  CHECK(server::MemberHealth(p).reason == "NO_LEADER");
  CHECK_FALSE(server::MemberReadiness(p).healthy);

  p.leader_id = 42;
  CHECK(server::MemberHealth(p).healthy);
  CHECK(server::MemberReadiness(p).healthy);

  p.commit_index = 5000;
  p.applied_index = 10;
  CHECK(server::MemberHealth(p).healthy);
  const server::HealthStatus r = server::MemberReadiness(p, 100);
  CHECK_FALSE(r.healthy);
  CHECK(r.reason.find("applied index 10 behind commit index 5000") != std::string::npos);

  p.applied_index = 4900;  // exactly at the allowed lag
  CHECK(server::MemberReadiness(p, 100).healthy);
  p.applied_index = 4899;
  CHECK_FALSE(server::MemberReadiness(p, 100).healthy);
}

TEST_CASE("/livez, /readyz and /health answer from their own checks", "[http]") {
  // Goal: on a member with a leader that is still applying, /health and /livez are 200 while
  // /readyz is 503 with the reason; without a leader /health is etcd's 503 JSON.
  server::MetricsRegistry registry;
  server::MemberProgress progress;
  progress.leader_id = 7;
  progress.commit_index = 100000;
  progress.applied_index = 1;
  server::HttpServerOptions options;
  options.port = 0;
  server::HttpServer http(options);
  server::RegisterEtcdHandlers(
      http, registry, [&progress] { return server::MemberHealth(progress); },
      [&progress] { return server::MemberReadiness(progress); });
  REQUIRE(http.Start().ok());

  kvtest::HttpReply health = kvtest::HttpGet(http.port(), "/health");
  CHECK(health.status == 200);
  CHECK(health.body == "{\"health\":\"true\"}");
  CHECK(kvtest::HttpGet(http.port(), "/livez").status == 200);
  kvtest::HttpReply ready = kvtest::HttpGet(http.port(), "/readyz");
  CHECK(ready.status == 503);
  CHECK(ready.body.find("behind commit index 100000") != std::string::npos);
  http.Stop();

  // The same member after losing its leader (a second server: handlers are set before Start).
  progress.leader_id = 0;
  progress.applied_index = progress.commit_index;
  server::HttpServer http2(options);
  server::RegisterEtcdHandlers(
      http2, registry, [&progress] { return server::MemberHealth(progress); },
      [&progress] { return server::MemberReadiness(progress); });
  REQUIRE(http2.Start().ok());
  health = kvtest::HttpGet(http2.port(), "/health");
  CHECK(health.status == 503);
  CHECK(nlohmann::json::parse(health.body)["health"] == "false");
  CHECK(kvtest::HttpGet(http2.port(), "/livez").status == 200);
  CHECK(kvtest::HttpGet(http2.port(), "/readyz").status == 503);
}

}  // namespace
