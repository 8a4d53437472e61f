// kvd's HTTP endpoints against the real etcd 3.4.23: a one-member etcd is started on loopback
// ports in a temp dir, and /version, /health and /metrics (names, HELP, TYPE, buckets) are
// compared with what server::HttpServer serves. etcd is stopped (SIGTERM, then SIGKILL after
// 10 s) and the temp dir removed at the end; every socket read times out after 5 s.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.h"
#include "server/metrics.h"

namespace {

struct HttpResult {
  int status = 0;
  std::string body;
};

// One HTTP/1.0 GET (so Go answers without chunked encoding and closes). status 0 when the
// connection failed.
HttpResult Get(uint16_t port, const std::string& path) {
  HttpResult result;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval timeout{};
  timeout.tv_sec = 5;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return result;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return result;
  }
  std::string data;
  char buf[16384];
  while (data.size() < (16 << 20)) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  size_t head_end = data.find("\r\n\r\n");
  if (data.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) return result;
  result.status = std::stoi(data.substr(9, 3));
  result.body = data.substr(head_end + 4);
  return result;
}

// "# HELP" / "# TYPE" lines by family name, and the le values of each histogram.
struct Families {
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::map<std::string, std::set<std::string>> buckets;
};

Families ParseFamilies(const std::string& text) {
  Families f;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    for (const char* prefix : {"# HELP ", "# TYPE "}) {
      if (line.rfind(prefix, 0) != 0) continue;
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      auto& target = prefix[2] == 'H' ? f.help : f.type;
      target[rest.substr(0, sp)] = rest.substr(sp + 1);
    }
    size_t bucket = line.find("_bucket{");
    size_t le = line.find("le=\"");
    if (line[0] != '#' && bucket != std::string::npos && le != std::string::npos) {
      size_t close = line.find('"', le + 4);
      f.buckets[line.substr(0, bucket)].insert(line.substr(le + 4, close - le - 4));
    }
  }
  return f;
}

// A running etcd child process, stopped on destruction.
class EtcdProcess {
 public:
  EtcdProcess(const std::string& dir, uint16_t client_port, uint16_t peer_port) {
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    std::vector<std::string> args = {"/usr/bin/etcd",
                                     "--name=compat",
                                     "--data-dir=" + dir + "/data",
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char* envp[] = {nullptr};
    const std::string log = dir + "/etcd.log";
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
      execve(argv[0], argv.data(), envp);
      _exit(127);
    }
  }
  ~EtcdProcess() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {  // up to 10 s for a clean exit
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

 private:
  pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("/version, /health and /metrics families match the real etcd 3.4.23", "[compat]") {
  // Goal: byte-equal /version and healthy /health bodies, and the same HELP, TYPE and bucket
  // bounds for every etcd metric kvd registers that etcd exports in its default mode.
  REQUIRE(access("/usr/bin/etcd", X_OK) == 0);
  char tmpl[] = "/tmp/kvd-http-compat-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  const auto port = static_cast<uint16_t>(40000 + (getpid() % 10000) * 2);

  HttpResult etcd_version;
  HttpResult etcd_health;
  HttpResult etcd_metrics;
  {
    EtcdProcess etcd(dir, port, static_cast<uint16_t>(port + 1));
    // Wait (at most 20 s) until etcd has a leader and reports healthy.
    for (int i = 0; i < 200 && etcd_health.body != "{\"health\":\"true\"}"; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      etcd_health = Get(port, "/health");
    }
    etcd_version = Get(port, "/version");
    etcd_metrics = Get(port, "/metrics");
  }
  std::filesystem::remove_all(dir);
  REQUIRE(etcd_health.status == 200);
  REQUIRE(etcd_version.status == 200);
  REQUIRE(etcd_metrics.status == 200);

  server::MetricsRegistry registry;
  server::EtcdMetrics metrics = server::RegisterEtcdMetrics(registry);
  server::RegisterProcessMetrics(registry);
  server::PreinitializeGrpcMethod(metrics, server::kGrpcUnary, "etcdserverpb.KV", "Range");
  metrics.peer_round_trip_time_seconds.WithLabels({"1"}).Observe(0.001);
  server::HttpServer http({});
  server::RegisterEtcdHandlers(http, registry, [] { return server::HealthStatus{}; });
  REQUIRE(http.Start().ok());
  HttpResult kvd_version = Get(http.port(), "/version");
  HttpResult kvd_health = Get(http.port(), "/health");
  HttpResult kvd_metrics = Get(http.port(), "/metrics");
  http.Stop();

  CHECK(kvd_version.body == etcd_version.body);
  CHECK(kvd_health.body == etcd_health.body);

  Families etcd = ParseFamilies(etcd_metrics.body);
  Families kvd = ParseFamilies(kvd_metrics.body);
  // etcd exports these in its default mode; the comparison must not be vacuous.
  for (const char* name : {"etcd_server_has_leader", "etcd_server_proposals_committed_total",
                           "etcd_disk_wal_fsync_duration_seconds", "grpc_server_handled_total",
                           "process_resident_memory_bytes", "process_start_time_seconds"}) {
    INFO(name);
    CHECK(etcd.type.count(name) == 1);
  }
  size_t compared = 0;
  for (const auto& [name, type] : kvd.type) {
    if (etcd.type.count(name) == 0) continue;  // e.g. peer RTT: only with peers
    INFO(name);
    CHECK(type == etcd.type[name]);
    CHECK(kvd.help[name] == etcd.help[name]);
    if (etcd.buckets.count(name) != 0) CHECK(kvd.buckets[name] == etcd.buckets[name]);
    ++compared;
  }
  CHECK(compared >= 15);
}
