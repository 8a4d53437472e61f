// server::HttpServer on 127.0.0.1 with port 0, driven by a raw-socket client. Every socket
// read has a 5 s receive timeout, so a broken server fails the test instead of hanging it.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/config.h"

namespace {

// A connected client socket, closed on destruction.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval timeout{};
    timeout.tv_sec = 5;
    REQUIRE(setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) == 0);
    REQUIRE(setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) == 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~Client() { close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      sent += static_cast<size_t>(n);
    }
  }

  // Reads until `bytes` are buffered; false on EOF, error or timeout.
  bool Fill(size_t bytes) {
    char buf[4096];
    while (buffer_.size() < bytes) {
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      buffer_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  struct Response {
    int status = 0;
    std::string head;  // status line and headers
    std::string body;
    std::string Header(const std::string& name) const {
      size_t pos = head.find("\r\n" + name + ": ");
      if (pos == std::string::npos) return "";
      size_t start = pos + name.size() + 4;
      return head.substr(start, head.find("\r\n", start) - start);
    }
  };

  // Reads one response; `head_only` for responses to HEAD (no body despite Content-Length).
  Response Read(bool head_only = false) {
    Response r;
    size_t end = std::string::npos;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      REQUIRE(Fill(buffer_.size() + 1));
    }
    r.head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    REQUIRE(r.head.rfind("HTTP/1.1 ", 0) == 0);
    r.status = std::stoi(r.head.substr(9, 3));
    std::string length = r.Header("Content-Length");
    REQUIRE_FALSE(length.empty());
    size_t body_bytes = head_only ? 0 : std::stoul(length);
    REQUIRE(Fill(body_bytes));
    r.body = buffer_.substr(0, body_bytes);
    buffer_.erase(0, body_bytes);
    return r;
  }

  Response Get(const std::string& target) {
    Send("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    return Read();
  }

  // True when the server closed the connection (EOF) with nothing more to read.
  bool ClosedByServer() {
    char c = 0;
    return buffer_.empty() && recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

// A server with etcd's handlers over a registry with one counter, and a switchable health.
struct Fixture {
  explicit Fixture(server::HttpServerOptions options = {}) : http(options) {
    requests = &registry.AddCounter("test_requests_total", "Requests seen by the test.");
    requests->Add(3);
    server::RegisterEtcdHandlers(http, registry, [this] {
      return server::HealthStatus{healthy.load(), "no \"leader\""};
    });
    server::Status st = http.Start();
    INFO(st.message());
    REQUIRE(st.ok());
    REQUIRE(http.port() != 0);
  }
  server::MetricsRegistry registry;
  server::Counter* requests = nullptr;
  std::atomic<bool> healthy{true};
  server::HttpServer http;
};

}  // namespace

TEST_CASE("/version answers etcd 3.4.23's JSON", "[http]") {
  // Goal: the same body and content type as the real etcd's /version.
  Fixture f;
  Client c(f.http.port());
  Client::Response r = c.Get("/version");
  CHECK(r.status == 200);
  CHECK(r.body == "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}");
  CHECK(r.Header("Content-Type") == "application/json");
}

TEST_CASE("/health reflects the health callback", "[http]") {
  // Goal: 200 {"health":"true"} when healthy, 503 with an escaped reason when not; the query
  // string is ignored for routing.
  Fixture f;
  Client c(f.http.port());
  Client::Response ok = c.Get("/health");
  CHECK(ok.status == 200);
  CHECK(ok.body == "{\"health\":\"true\"}");
  f.healthy = false;
  Client::Response bad = c.Get("/health?serializable=true");
  CHECK(bad.status == 503);
  CHECK(bad.body == "{\"health\":\"false\",\"reason\":\"no \\\"leader\\\"\"}");
  Client::Response ready = c.Get("/readyz");
  CHECK(ready.status == 503);
  CHECK(ready.body == "not ready: no \"leader\"\n");
  f.healthy = true;
  CHECK(c.Get("/readyz").status == 200);
  Client::Response live = c.Get("/livez");
  CHECK(live.status == 200);
  CHECK(live.body == "ok\n");
}

TEST_CASE("/metrics serves the registry in text format 0.0.4", "[http]") {
  // Goal: Prometheus' content type and the registry's current values.
  Fixture f;
  Client c(f.http.port());
  Client::Response r = c.Get("/metrics");
  CHECK(r.status == 200);
  CHECK(r.Header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r.body.find("# TYPE test_requests_total counter\ntest_requests_total 3\n") !=
        std::string::npos);
  f.requests->Inc();
  CHECK(c.Get("/metrics").body.find("\ntest_requests_total 4\n") != std::string::npos);
}

TEST_CASE("unknown paths get 404 and other methods 405", "[http]") {
  // Goal: Go's 404 body for unknown paths; only GET and HEAD are served; HEAD has no body.
  Fixture f;
  Client c(f.http.port());
  Client::Response missing = c.Get("/v2/keys");
  CHECK(missing.status == 404);
  CHECK(missing.body == "404 page not found\n");
  c.Send("POST /health HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
  Client::Response post = c.Read();
  CHECK(post.status == 405);
  CHECK(post.Header("Allow") == "GET, HEAD");
  c.Send("HEAD /version HTTP/1.1\r\n\r\n");
  Client::Response head = c.Read(true);
  CHECK(head.status == 200);
  CHECK(head.Header("Content-Length") == "45");
  // The connection is still usable after a HEAD: the next response parses cleanly.
  CHECK(c.Get("/livez").body == "ok\n");
}

TEST_CASE("keep-alive, pipelining and Connection: close", "[http]") {
  // Goal: HTTP/1.1 keeps the connection; pipelined requests are answered in order; close and
  // HTTP/1.0 end the connection after the response.
  Fixture f;
  {
    Client c(f.http.port());
    CHECK(c.Get("/livez").status == 200);
    CHECK(c.Get("/version").status == 200);
    c.Send("GET /livez HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /version HTTP/1.1\r\n\r\n");
    CHECK(c.Read().status == 200);
    CHECK(c.Read().status == 404);
    CHECK(c.Read().body.find("etcdserver") != std::string::npos);
    // A burst of pipelined requests in one write is answered completely and in order.
    std::string burst;
    for (int i = 0; i < 200; ++i)
      burst += i % 2 == 0 ? "GET /livez HTTP/1.1\r\n\r\n" : "GET /x HTTP/1.1\r\n\r\n";
    c.Send(burst);
    int in_order = 0;
    for (int i = 0; i < 200; ++i) in_order += c.Read().status == (i % 2 == 0 ? 200 : 404) ? 1 : 0;
    CHECK(in_order == 200);
  }
  {
    Client c(f.http.port());
    c.Send("GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n");
    Client::Response r = c.Read();
    CHECK(r.status == 200);
    CHECK(r.Header("Connection") == "close");
    CHECK(c.ClosedByServer());
  }
  {
    Client c(f.http.port());
    c.Send("GET /livez HTTP/1.0\r\n\r\n");
    CHECK(c.Read().status == 200);
    CHECK(c.ClosedByServer());
  }
  {
    Client c(f.http.port());
    c.Send("GET /livez HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    CHECK(c.Read().status == 200);
    CHECK(c.Get("/livez").status == 200);
  }
}

TEST_CASE("a request split across many writes is assembled", "[http]") {
  // Goal: partial reads are buffered until the request is complete.
  Fixture f;
  Client c(f.http.port());
  const std::string request = "GET /version HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
  for (char ch : request) c.Send(std::string(1, ch));
  CHECK(c.Read().status == 200);
}

TEST_CASE("malformed and oversized requests are rejected and closed", "[http]") {
  // Goal: 400 for garbage, 505 for an unknown HTTP version, 413 beyond request_bytes_max,
  // 501 for chunked bodies; each closes the connection.
  server::HttpServerOptions options;
  options.request_bytes_max = 1024;
  Fixture f(options);
  struct Case {
    std::string request;
    int status;
  };
  for (const Case& k : std::vector<Case>{
           {"garbage\r\n\r\n", 400},
           {"GET /livez HTTP/2.0\r\n\r\n", 505},
           {"GET livez HTTP/1.1\r\n\r\n", 400},
           {"GET /livez HTTP/1.1\r\nno-colon-header\r\n\r\n", 400},
           {"GET /livez HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400},
           {"GET /livez HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n", 413},
           {"GET /livez HTTP/1.1\r\nX-Big: " + std::string(2000, 'a'), 413},
           {"GET /livez HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413},
           {"POST /livez HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501}}) {
    INFO(k.request.substr(0, 60));
    Client c(f.http.port());
    c.Send(k.request);
    Client::Response r = c.Read();
    CHECK(r.status == k.status);
    CHECK(r.Header("Connection") == "close");
    CHECK(c.ClosedByServer());
  }
}

TEST_CASE("connections beyond the limit are refused with 503", "[http]") {
  // Goal: the connection bound holds and freed slots are reused.
  server::HttpServerOptions options;
  options.connections_max = 2;
  Fixture f(options);
  auto first = std::make_unique<Client>(f.http.port());
  Client second(f.http.port());
  CHECK(first->Get("/livez").status == 200);  // both are accepted and served
  CHECK(second.Get("/livez").status == 200);
  {
    Client third(f.http.port());
    Client::Response r = third.Read();
    CHECK(r.status == 503);
    CHECK(third.ClosedByServer());
  }
  first.reset();  // frees a slot; the server notices the close on its next poll
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    Client again(f.http.port());
    again.Send("GET /livez HTTP/1.1\r\n\r\n");
    served = again.Read().status == 200;
  }
  CHECK(served);
}

TEST_CASE("a connection that sends no complete request is closed", "[http]") {
  // Goal: request_timeout_ms bounds idle and slow connections.
  server::HttpServerOptions options;
  options.request_timeout_ms = 100;
  Fixture f(options);
  Client idle(f.http.port());
  CHECK(idle.ClosedByServer());
  Client slow(f.http.port());
  slow.Send("GET /livez HTTP/1.1\r\n");  // never finished
  CHECK(slow.ClosedByServer());
}

TEST_CASE("Stop closes open connections and a busy port fails Start", "[http]") {
  // Goal: clean shutdown with clients attached; binding a used port is a Status, not a crash.
  server::MetricsRegistry registry;
  server::HttpServer http({});
  server::RegisterEtcdHandlers(http, registry, [] { return server::HealthStatus{}; });
  REQUIRE(http.Start().ok());
  server::HttpServerOptions same_port;
  same_port.port = http.port();
  server::HttpServer clash(same_port);
  server::Status st = clash.Start();
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("listen tcp 127.0.0.1:" + std::to_string(http.port())) == 0);

  Client c(http.port());
  CHECK(c.Get("/livez").status == 200);
  http.Stop();
  CHECK(c.ClosedByServer());
  http.Stop();  // idempotent
}

TEST_CASE("handlers see the parsed request", "[http]") {
  // Goal: method, path, query, version, headers (case-insensitive) and body reach the handler;
  // a throwing handler becomes a 500.
  server::HttpServer http({});
  server::HttpRequest seen;
  http.Handle("/echo", [&seen](const server::HttpRequest& req) {
    seen = req;
    server::HttpResponse r;
    r.body = req.Header("x-token");
    return r;
  });
  http.Handle("/throw", [](const server::HttpRequest&) -> server::HttpResponse {
    throw std::runtime_error("boom");
  });
  REQUIRE(http.Start().ok());
  Client c(http.port());
  c.Send("GET /echo?a=1&b=2 HTTP/1.1\r\nX-Token:  abc \r\nContent-Length: 3\r\n\r\nxyz");
  Client::Response r = c.Read();
  CHECK(r.status == 200);
  CHECK(r.body == "abc");
  Client::Response boom = c.Get("/throw");
  CHECK(boom.status == 500);
  CHECK(boom.body == "internal error: boom\n");
  http.Stop();  // joins the server thread: `seen` is safe to read from here on
  CHECK(seen.method == "GET");
  CHECK(seen.target == "/echo?a=1&b=2");
  CHECK(seen.path == "/echo");
  CHECK(seen.query == "a=1&b=2");
  CHECK(seen.version == "HTTP/1.1");
  CHECK(seen.body == "xyz");
}
