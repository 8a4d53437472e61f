#include "server/http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "server/config.h"
#include "server/thread_name.h"

namespace server {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes read from a socket per read() call.
constexpr size_t kReadChunkBytes = 16 * 1024;
// Headers per request; beyond this the request is rejected.
constexpr size_t kHeadersMax = 100;

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool ContainsTokenIgnoreCase(std::string_view list, std::string_view token) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    start = end + 1;
  }
  return false;
}

std::string SerializeResponse(const HttpResponse& response, bool head_only, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    std::string(ReasonPhrase(response.status)) + "\r\n";
  out += "Content-Type: " + response.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  if (response.status == 405) out += "Allow: GET, HEAD\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_only) out += response.body;
  return out;
}

HttpResponse TextResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  SERVER_CHECK(flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0,
               "fcntl(O_NONBLOCK) failed on fd %d: %s", fd, std::strerror(errno));
}

// The result of parsing the head of a request.
enum class Parse { kIncomplete, kComplete, kBad };

// Parses one request from the front of `buf`. On kComplete, *consumed is its size in bytes.
Parse ParseRequest(const std::string& buf, size_t bytes_max, HttpRequest* req, size_t* consumed,
                   int* error_status) {
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (buf.size() > bytes_max) {
      *error_status = 413;
      return Parse::kBad;
    }
    return Parse::kIncomplete;
  }
  *error_status = 400;
  std::string_view head(buf.data(), head_end);
  size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Parse::kBad;
  }
  req->method = std::string(request_line.substr(0, sp1));
  req->target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  req->version = std::string(request_line.substr(sp2 + 1));
  if (req->method.empty() || req->target.empty() || req->target[0] != '/') return Parse::kBad;
  if (req->version != "HTTP/1.1" && req->version != "HTTP/1.0") {
    *error_status = req->version.rfind("HTTP/", 0) == 0 ? 505 : 400;
    return Parse::kBad;
  }
  size_t q = req->target.find('?');
  req->path = req->target.substr(0, q);
  req->query = q == std::string::npos ? "" : req->target.substr(q + 1);

  req->headers.clear();
  size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t') {
      return Parse::kBad;  // no obsolete line folding either
    }
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (req->headers.size() >= kHeadersMax) {
      *error_status = 413;
      return Parse::kBad;
    }
    req->headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  if (!req->Header("Transfer-Encoding").empty()) {
    *error_status = 501;  // chunked request bodies are not supported (nothing here needs them)
    return Parse::kBad;
  }
  size_t body_bytes = 0;
  if (std::string length = req->Header("Content-Length"); !length.empty()) {
    if (length.size() > 12 ||
        !std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Parse::kBad;
    }
    body_bytes = static_cast<size_t>(std::stoull(length));
  }
  size_t total = head_end + 4 + body_bytes;
  if (total > bytes_max) {
    *error_status = 413;
    return Parse::kBad;
  }
  if (buf.size() < total) return Parse::kIncomplete;
  req->body = buf.substr(head_end + 4, body_bytes);
  *consumed = total;
  return Parse::kComplete;
}

}  // namespace

struct HttpServer::Connection {
  int fd = -1;
  std::string in;
  std::string out;
  size_t out_offset = 0;
  bool close_after_write = false;
  bool peer_closed = false;    // recv() returned 0: no more requests will come
  Clock::time_point deadline;  // the next complete request must arrive before this
};

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(std::string path, HttpHandler handler) {
  SERVER_CHECK(!started_, "HttpServer::Handle(%s) after Start()", path.c_str());
  handlers_[std::move(path)] = std::move(handler);
}

Status HttpServer::Start() {
  SERVER_CHECK(!started_, "HttpServer::Start() called twice");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  std::string port = std::to_string(options_.port);
  if (int rc = getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &result); rc != 0) {
    return {1, "cannot resolve " + options_.host + ": " + gai_strerror(rc)};
  }
  std::string error = "no address";
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
      error = std::strerror(errno);
      close(fd);
      continue;
    }
    listen_fd_ = fd;
    break;
  }
  freeaddrinfo(result);
  if (listen_fd_ < 0) {
    return {1, "listen tcp " + options_.host + ":" + port + ": " + error};
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  SERVER_CHECK(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0,
               "getsockname: %s", std::strerror(errno));
  bound_port_ = addr.ss_family == AF_INET6
                    ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                    : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  SetNonBlocking(listen_fd_);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    return {1, std::string("eventfd: ") + std::strerror(errno)};
  }
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!started_ || stopping_.exchange(true)) return;
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // the eventfd counter cannot overflow from one write; the loop also polls stopping_
  if (thread_.joinable()) thread_.join();
  for (auto& conn : connections_) close(conn->fd);
  connections_.clear();
  close(listen_fd_);
  close(wake_fd_);
  listen_fd_ = -1;
  wake_fd_ = -1;
}

void HttpServer::Loop() {
  NameThisThread("kvd-http");
  // poll() wakes at least this often to expire request deadlines.
  constexpr int kPollIntervalMs = 200;
  std::vector<pollfd> fds;
  while (!stopping_.load()) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const auto& conn : connections_) {
      // Read only when no response is pending: one buffered response per connection.
      short events = conn->out.empty() ? POLLIN : POLLOUT;
      fds.push_back({conn->fd, events, 0});
    }
    int ready = poll(fds.data(), fds.size(), kPollIntervalMs);
    if (ready < 0) {
      SERVER_CHECK(errno == EINTR, "poll: %s", std::strerror(errno));
      continue;
    }
    if (stopping_.load()) break;
    // Connections are handled in the order of fds[2..]; closed ones are removed afterwards.
    const auto now = Clock::now();
    std::vector<bool> keep(connections_.size(), true);
    for (size_t i = 0; i < connections_.size(); ++i) {
      Connection& conn = *connections_[i];
      short revents = fds[i + 2].revents;
      if (revents & (POLLERR | POLLNVAL)) {
        keep[i] = false;
      } else if (revents & POLLOUT) {
        keep[i] = WriteTo(conn);
      } else if (revents & (POLLIN | POLLHUP)) {
        keep[i] = ReadFrom(conn);
        if (keep[i] && conn.out.empty()) ProcessRequest(conn);
        if (keep[i] && !conn.out.empty()) keep[i] = WriteTo(conn);
        // A peer that half-closed without a complete request will never send one.
        if (keep[i] && conn.out.empty() && conn.peer_closed) keep[i] = false;
      }
      if (keep[i] && conn.out.empty() && now > conn.deadline) {
        keep[i] = false;  // idle keep-alive connection or a request that came too slowly
      }
    }
    size_t kept = 0;
    for (size_t i = 0; i < connections_.size(); ++i) {
      if (keep[i]) {
        connections_[kept++] = std::move(connections_[i]);
      } else {
        close(connections_[i]->fd);
      }
    }
    connections_.resize(kept);
    if (fds[1].revents & POLLIN) AcceptAll();
  }
}

void HttpServer::AcceptAll() {
  // Bounded: at most connections_max + a few refusals per wake-up.
  for (size_t attempt = 0; attempt < options_.connections_max + 16; ++attempt) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN (none left) or a transient error: poll again later
    if (connections_.size() >= options_.connections_max) {
      std::string refusal =
          SerializeResponse(TextResponse(503, "too many connections\n"), false, true);
      (void)send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    conn->deadline = Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
    connections_.push_back(std::move(conn));
  }
}

bool HttpServer::ReadFrom(Connection& conn) {
  char buf[kReadChunkBytes];
  // Read at most one chunk beyond the limit: enough to tell that a request is too large.
  while (conn.in.size() <= options_.request_bytes_max) {
    ssize_t n = recv(conn.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      conn.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {  // peer closed its side: answer what it sent, then close
      conn.peer_closed = true;
      return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    if (errno == EINTR) continue;
    return false;
  }
  return true;
}

void HttpServer::ProcessRequest(Connection& conn) {
  HttpRequest req;
  size_t consumed = 0;
  int error_status = 400;
  Parse result = ParseRequest(conn.in, options_.request_bytes_max, &req, &consumed, &error_status);
  if (result == Parse::kIncomplete) return;
  if (result == Parse::kBad) {
    conn.out = SerializeResponse(
        TextResponse(error_status, std::string(ReasonPhrase(error_status)) + "\n"), false, true);
    conn.out_offset = 0;
    conn.close_after_write = true;
    conn.in.clear();
    return;
  }
  conn.in.erase(0, consumed);
  std::string connection = req.Header("Connection");
  bool close = req.version == "HTTP/1.0" ? !ContainsTokenIgnoreCase(connection, "keep-alive")
                                         : ContainsTokenIgnoreCase(connection, "close");
  HttpResponse response;
  if (req.method != "GET" && req.method != "HEAD") {
    response = TextResponse(405, "method not allowed\n");
  } else {
    response = Dispatch(req);
  }
  close = close || conn.peer_closed;
  conn.out = SerializeResponse(response, req.method == "HEAD", close);
  conn.out_offset = 0;
  conn.close_after_write = close;
}

bool HttpServer::WriteTo(Connection& conn) {
  // Each round writes one response, then turns the next pipelined request (if complete) into
  // the next response. Bounded: the input buffer holds at most request_bytes_max + one chunk.
  while (true) {
    while (conn.out_offset < conn.out.size()) {
      ssize_t n = send(conn.fd, conn.out.data() + conn.out_offset,
                       conn.out.size() - conn.out_offset, MSG_NOSIGNAL);
      if (n > 0) {
        conn.out_offset += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    conn.out.clear();
    conn.out_offset = 0;
    if (conn.close_after_write) return false;
    conn.deadline = Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
    if (conn.in.empty()) return true;
    ProcessRequest(conn);
    if (conn.out.empty()) return true;  // the buffered request is not complete yet
  }
}

HttpResponse HttpServer::Dispatch(const HttpRequest& request) const {
  auto it = handlers_.find(request.path);
  if (it == handlers_.end()) return TextResponse(404, "404 page not found\n");
  try {
    return it->second(request);
  } catch (const std::exception& e) {
    return TextResponse(500, std::string("internal error: ") + e.what() + "\n");
  }
}

HealthStatus MemberHealth(const MemberProgress& p) {
  HealthStatus h;
  h.healthy = p.leader_id != 0;
  if (!h.healthy) h.reason = "NO_LEADER";
  return h;
}

HealthStatus MemberReadiness(const MemberProgress& p, uint64_t apply_lag_entries_max) {
  HealthStatus h = MemberHealth(p);
  if (!h.healthy) return h;
  if (p.applied_index + apply_lag_entries_max < p.commit_index) {
    h.healthy = false;
    h.reason = "applying: applied index " + std::to_string(p.applied_index) +
               " behind commit index " + std::to_string(p.commit_index);
  }
  return h;
}

void RegisterEtcdHandlers(HttpServer& server, const MetricsRegistry& registry, HealthCheck health,
                          HealthCheck ready) {
  if (!ready) ready = health;
  server.Handle("/metrics", [&registry](const HttpRequest&) {
    HttpResponse r;
    r.content_type = std::string(kMetricsContentType);
    r.body = registry.Render();
    return r;
  });
  server.Handle("/health", [health](const HttpRequest&) {
    HealthStatus status = health();
    HttpResponse r;
    if (status.healthy) {
      r.body = "{\"health\":\"true\"}";
    } else {
      r.status = 503;
      std::string reason;
      for (char c : status.reason) {  // JSON string escaping of the reason
        if (c == '"' || c == '\\') {
          reason += '\\';
          reason += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
          reason += ' ';
        } else {
          reason += c;
        }
      }
      r.body = "{\"health\":\"false\",\"reason\":\"" + reason + "\"}";
    }
    return r;
  });
  server.Handle("/livez", [](const HttpRequest&) { return TextResponse(200, "ok\n"); });
  server.Handle("/readyz", [ready](const HttpRequest&) {
    HealthStatus status = ready();
    return status.healthy ? TextResponse(200, "ok\n")
                          : TextResponse(503, "not ready: " + status.reason + "\n");
  });
  server.Handle("/version", [](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = "{\"etcdserver\":\"" + std::string(kEtcdServerVersion) + "\",\"etcdcluster\":\"" +
             std::string(kEtcdClusterVersion) + "\"}";
    return r;
  });
}

}  // namespace server
