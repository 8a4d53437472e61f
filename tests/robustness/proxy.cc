#include "tests/robustness/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace kv::robustness {
namespace {

// The socket inode of the 127.0.0.1 TCP connection local_port -> remote_port, or 0: an
// exact-match query over NETLINK_SOCK_DIAG (what `ss` uses; scanning /proc/net/tcp takes
// ~0.5 s on a busy machine), as an IPv4-mapped IPv6 socket (gRPC's) or a plain IPv4 one.
std::uint32_t SocketInode(std::uint16_t local_port, std::uint16_t remote_port) {
  const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return 0;
  timeval timeout{1, 0};  // the kernel answers at once; bound it anyway
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::uint32_t inode = 0;
  for (const int family : {AF_INET6, AF_INET}) {
    struct {
      nlmsghdr nlh;
      inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = static_cast<std::uint8_t>(family);
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~0U;
    msg.req.id.idiag_sport = htons(local_port);
    msg.req.id.idiag_dport = htons(remote_port);
    if (family == AF_INET6) {
      msg.req.id.idiag_src[2] = htonl(0xffff);
      msg.req.id.idiag_dst[2] = htonl(0xffff);
      msg.req.id.idiag_src[3] = htonl(INADDR_LOOPBACK);
      msg.req.id.idiag_dst[3] = htonl(INADDR_LOOPBACK);
    } else {
      msg.req.id.idiag_src[0] = htonl(INADDR_LOOPBACK);
      msg.req.id.idiag_dst[0] = htonl(INADDR_LOOPBACK);
    }
    msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) <
        0) {
      continue;
    }
    alignas(nlmsghdr) char buf[8192];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) continue;
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
    if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) continue;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
    const auto* d = reinterpret_cast<const inet_diag_msg*>(buf + NLMSG_HDRLEN);
    inode = d->idiag_inode;
    if (inode != 0) break;
  }
  close(fd);
  return inode;
}

void SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::uint16_t LocalPort(int fd, bool peer) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  const int rc = peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len);
  if (rc != 0) return 0;
  return ntohs(addr.sin_port);
}

int ConnectLoopback(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  SetNonBlocking(fd);
  return fd;
}

}  // namespace

int FindSocketOwner(std::uint16_t local_port, std::uint16_t remote_port, std::size_t members,
                    const PidOf& pid_of) {
  const std::uint32_t inode = SocketInode(local_port, remote_port);
  if (inode == 0) return -1;
  const std::string target = "socket:[" + std::to_string(inode) + "]";
  for (std::size_t m = 0; m < members; ++m) {
    const pid_t pid = pid_of(m);
    if (pid <= 0) continue;
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
    if (ec) continue;
    for (const auto& entry : it) {
      std::error_code link_ec;
      const auto link = std::filesystem::read_symlink(entry.path(), link_ec);
      if (!link_ec && link.string() == target) return static_cast<int>(m);
    }
  }
  return -1;
}

struct PeerNetwork::Proxy {
  std::uint16_t listen_port = 0;
  std::uint16_t target_port = 0;
  int listen_fd = -1;
  std::thread thread;
};

namespace {

struct Connection {
  int client = -1;  // the member that connected to the proxy
  int server = -1;  // the proxied member
  int from = -1;    // index of the connecting member, -1 if unknown
  std::uint16_t client_port = 0;
  // Identification is retried on every poll round while the opener is unknown (a member
  // connects before the harness publishes its new pid), at most this many times.
  int identify_attempts_left = 0;
  std::string up;  // client -> server bytes not yet written
  std::string down;

  void Close() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
    client = server = -1;
  }
};

// Reads from `src` into `buf` (up to `cap`); false on EOF or a hard error.
bool Pump(int src, std::string& buf, std::size_t cap) {
  char chunk[16384];
  const std::size_t room = cap - buf.size();
  const ssize_t n = read(src, chunk, std::min(room, sizeof(chunk)));
  if (n > 0) {
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

bool Drain(int dst, std::string& buf) {
  const ssize_t n = send(dst, buf.data(), buf.size(), MSG_NOSIGNAL);
  if (n > 0) {
    buf.erase(0, static_cast<std::size_t>(n));
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

}  // namespace

PeerNetwork::PeerNetwork(std::vector<std::uint16_t> listen_ports,
                         std::vector<std::uint16_t> target_ports, PidOf pid_of)
    : pid_of_(std::move(pid_of)) {
  if (listen_ports.size() != target_ports.size()) {
    throw std::runtime_error("PeerNetwork: one target port per listen port");
  }
  const std::size_t n = listen_ports.size();
  links_.assign(n, std::vector<LinkFault>(n, LinkFault::kNone));
  for (std::size_t i = 0; i < n; ++i) {
    auto p = std::make_unique<Proxy>();
    p->listen_port = listen_ports[i];
    p->target_port = target_ports[i];
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int one = 1;
    setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(p->listen_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (p->listen_fd < 0 ||
        bind(p->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(p->listen_fd, 64) != 0) {
      const std::string err = std::strerror(errno);
      if (p->listen_fd >= 0) close(p->listen_fd);
      for (auto& q : proxies_) close(q->listen_fd);
      throw std::runtime_error(
          "PeerNetwork: cannot listen on 127.0.0.1:" + std::to_string(p->listen_port) + ": " + err);
    }
    proxies_.push_back(std::move(p));
  }
  for (std::size_t i = 0; i < n; ++i) {
    proxies_[i]->thread = std::thread([this, i] { Run(i); });
  }
}

PeerNetwork::~PeerNetwork() {
  stop_.store(true);
  for (auto& p : proxies_) {
    if (p->thread.joinable()) p->thread.join();
    close(p->listen_fd);
  }
}

void PeerNetwork::SetLink(std::size_t from, std::size_t to, LinkFault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  links_.at(from).at(to) = fault;
}

void PeerNetwork::Isolate(std::size_t m, LinkFault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t j = 0; j < links_.size(); ++j) {
    if (j == m) continue;
    links_.at(m).at(j) = fault;
    links_.at(j).at(m) = fault;
  }
}

void PeerNetwork::Heal() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& row : links_) std::fill(row.begin(), row.end(), LinkFault::kNone);
}

LinkFault PeerNetwork::link(std::size_t from, std::size_t to) const {
  std::lock_guard<std::mutex> lock(mu_);
  return links_.at(from).at(to);
}

void PeerNetwork::Run(std::size_t index) {
  Proxy& p = *proxies_[index];
  std::vector<Connection> conns;
  std::vector<pollfd> fds;
  // Poll period: how fast a new fault or a stop is noticed.
  constexpr int kPollMs = 20;
  while (!stop_.load()) {
    fds.clear();
    fds.push_back({p.listen_fd, conns.size() < kConnectionsMax ? short(POLLIN) : short(0), 0});
    std::vector<std::size_t> polled;  // index into conns for fds[1 + 2k], fds[2 + 2k]
    for (std::size_t c = 0; c < conns.size(); ++c) {
      Connection& conn = conns[c];
      if (conn.from < 0 && conn.identify_attempts_left > 0) {
        conn.from = FindSocketOwner(conn.client_port, p.listen_port, proxies_.size(), pid_of_);
        if (conn.from < 0 && --conn.identify_attempts_left == 0) unidentified_.fetch_add(1);
      }
      const LinkFault fault =
          conn.from >= 0 ? link(static_cast<std::size_t>(conn.from), index) : LinkFault::kNone;
      if (fault == LinkFault::kDrop) {
        conn.Close();
        continue;
      }
      if (fault == LinkFault::kBlackhole) continue;
      short client_events = 0;
      short server_events = 0;
      if (conn.up.size() < kBufferBytes) client_events |= POLLIN;
      if (!conn.down.empty()) client_events |= POLLOUT;
      if (conn.down.size() < kBufferBytes) server_events |= POLLIN;
      if (!conn.up.empty()) server_events |= POLLOUT;
      fds.push_back({conn.client, client_events, 0});
      fds.push_back({conn.server, server_events, 0});
      polled.push_back(c);
    }
    const int ready = poll(fds.data(), fds.size(), kPollMs);
    if (ready > 0) {
      for (std::size_t k = 0; k < polled.size(); ++k) {
        Connection& conn = conns[polled[k]];
        const pollfd& cf = fds[1 + 2 * k];
        const pollfd& sf = fds[2 + 2 * k];
        bool alive = true;
        if (alive && (cf.revents & (POLLIN | POLLHUP | POLLERR))) {
          alive = Pump(conn.client, conn.up, kBufferBytes);
        }
        if (alive && (sf.revents & (POLLIN | POLLHUP | POLLERR))) {
          alive = Pump(conn.server, conn.down, kBufferBytes);
        }
        if (alive && (sf.revents & POLLOUT)) alive = Drain(conn.server, conn.up);
        if (alive && (cf.revents & POLLOUT)) alive = Drain(conn.client, conn.down);
        if (!alive) conn.Close();
      }
      if (fds[0].revents & POLLIN) {
        const int client = accept4(p.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0) {
          accepted_.fetch_add(1);
          Connection conn;
          conn.client = client;
          conn.client_port = LocalPort(client, /*peer=*/true);
          conn.from = FindSocketOwner(conn.client_port, p.listen_port, proxies_.size(), pid_of_);
          // Retried for up to ~10 s of poll rounds (kPollMs each, or less when busy).
          conn.identify_attempts_left = conn.from < 0 ? 500 : 0;
          const LinkFault fault =
              conn.from >= 0 ? link(static_cast<std::size_t>(conn.from), index) : LinkFault::kNone;
          if (fault == LinkFault::kDrop) {
            close(client);
          } else {
            conn.server = ConnectLoopback(p.target_port);
            if (conn.server < 0) {
              close(client);  // the member is down: refuse like it would
            } else {
              SetNonBlocking(client);
              conns.push_back(std::move(conn));
            }
          }
        }
      }
    }
    std::erase_if(conns, [](const Connection& c) { return c.client < 0; });
  }
  for (Connection& c : conns) c.Close();
}

}  // namespace kv::robustness
