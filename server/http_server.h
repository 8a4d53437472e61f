// server::HttpServer: a small HTTP/1.1 server for kvd's plain-HTTP endpoints (/metrics,
// /health, /livez, /readyz, /version), on plain sockets with poll() and ONE thread.
//
// Bounded everywhere: at most connections_max connections (the next one gets a 503 and is
// closed), at most request_bytes_max bytes per request (413 and close), one response buffered
// per connection (a connection is not read while its response is being written), and a
// connection must deliver each complete request within request_timeout_ms of the previous
// response (or of connecting), which also closes idle keep-alive connections.
//
// Handlers run on the server thread, so they must be quick and must not block: they see one
// request at a time and never run concurrently with each other.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "server/metrics.h"
#include "server/status.h"

namespace server {

struct HttpRequest {
  std::string method;                                        // "GET", "HEAD", ...
  std::string target;                                        // as sent: "/health?serializable=true"
  std::string path;                                          // target without the query: "/health"
  std::string query;                                         // after '?', without it ("" when none)
  std::string version;                                       // "HTTP/1.1" or "HTTP/1.0"
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;

  // The first header with this name (case-insensitive), or "" when absent.
  std::string Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // an IP literal or a name getaddrinfo resolves
  uint16_t port = 0;               // 0: any free port (see HttpServer::port())
  size_t connections_max = 64;
  size_t request_bytes_max = 64 * 1024;  // request line + headers + body
  int request_timeout_ms = 30000;
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves GET and HEAD requests for exactly this path (the query is ignored for matching).
  // Precondition: before Start() (checked).
  void Handle(std::string path, HttpHandler handler);

  // Binds, listens and starts the server thread. Fails (exit code 1) when the address cannot
  // be bound. Precondition: not started yet (checked).
  [[nodiscard]] Status Start();

  // The bound port (useful with options.port == 0). Precondition: Start() succeeded.
  uint16_t port() const { return bound_port_; }

  // Closes the listener and every connection and joins the thread. Idempotent; in-flight
  // responses are dropped.
  void Stop();

 private:
  struct Connection;
  void Loop();
  void AcceptAll();
  // Reads what is available; returns false when the connection must be closed now.
  bool ReadFrom(Connection& conn);
  // Turns at most one buffered request into a response in conn.out.
  void ProcessRequest(Connection& conn);
  // Writes what the socket takes; returns false when the connection must be closed now.
  bool WriteTo(Connection& conn);
  HttpResponse Dispatch(const HttpRequest& request) const;

  HttpServerOptions options_;
  std::map<std::string, HttpHandler> handlers_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes poll() through it
  uint16_t bound_port_ = 0;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::vector<std::unique_ptr<Connection>> connections_;  // only the server thread touches it
};

// /health and /readyz: whether this member can serve (the lead wires it to "has a leader and
// can commit"). reason is shown when unhealthy.
struct HealthStatus {
  bool healthy = true;
  std::string reason;
};
using HealthCheck = std::function<HealthStatus()>;

// What the health and readiness rules look at, read from the member at request time.
struct MemberProgress {
  uint64_t leader_id = 0;  // 0: no known leader
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
};

// Applied entries may trail the commit index by this much and still count as caught up: the
// apply loop takes committed entries in batches, so a busy member is always a little behind.
inline constexpr uint64_t kReadyApplyLagEntriesMax = 1000;

// etcd's /health rule as far as kvd has its inputs: healthy while a leader is known
// (reason "NO_LEADER" otherwise).
HealthStatus MemberHealth(const MemberProgress& p);
// /readyz: healthy, and the applied index within apply_lag_entries_max of the commit index
// (a restarted member replaying its log, or a new one receiving a snapshot, is not ready).
HealthStatus MemberReadiness(const MemberProgress& p,
                             uint64_t apply_lag_entries_max = kReadyApplyLagEntriesMax);

// Registers etcd's endpoints on `server`:
//   /metrics  registry.Render(), text format 0.0.4;
//   /health   200 {"health":"true"} or 503 {"health":"false","reason":"..."};
//   /livez    200 "ok" while the server thread runs (kvd addition; etcd 3.4 answers 404): the
//             process is alive and serving, whatever the cluster does (a liveness probe must not
//             restart members of a cluster that merely lost quorum);
//   /readyz   `ready` (or `health` when `ready` is empty), as text: 200 "ok" or 503
//             "not ready: <reason>" (kvd addition; a readiness probe);
//   /version  {"etcdserver":"3.4.23","etcdcluster":"3.4.0"}.
// registry, health and ready must outlive the server.
void RegisterEtcdHandlers(HttpServer& server, const MetricsRegistry& registry, HealthCheck health,
                          HealthCheck ready = nullptr);

}  // namespace server
