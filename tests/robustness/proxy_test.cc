// Unit tests of the peer proxy: bytes flow through it, it names the process that opened a
// connection, and a dropped or blackholed link stops the bytes of that direction only.
// Network only on 127.0.0.1; every blocking call has a timeout.
#include "tests/robustness/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/support/ports.h"

namespace {

using namespace kv::robustness;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

int Listen(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(listen(fd, 8) == 0);
  return fd;
}

int Connect(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

// Accepts within `timeout_ms`, or -1.
int AcceptWithin(int listen_fd, int timeout_ms) {
  pollfd p{listen_fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return -1;
  return accept(listen_fd, nullptr, nullptr);
}

// Reads what arrives within `timeout_ms` (up to `want` bytes); "" on timeout, "<eof>" on EOF.
std::string ReadWithin(int fd, std::size_t want, int timeout_ms) {
  std::string out;
  while (out.size() < want) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return out;
    char buf[256];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return out.empty() ? "<eof>" : out;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

void Send(int fd, const std::string& s) {
  REQUIRE(send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()));
}

TEST_CASE("the peer proxy forwards, names the opener and applies link faults", "[robustness]") {
  // Goal: member 0 (this process) -> member 1's proxy carries bytes both ways; a blackhole
  // holds them until healed; a drop closes the connection and refuses new ones.
  const auto ports = kvtest::PickFreePorts(4);
  Fd target;
  target.fd = Listen(ports[1]);
  const pid_t self = getpid();
  PeerNetwork net({ports[2], ports[0]}, {ports[3], ports[1]},
                  [self](std::size_t m) { return m == 0 ? self : pid_t{0}; });

  Fd client;
  client.fd = Connect(ports[0]);  // into member 1's proxy
  Fd server;
  server.fd = AcceptWithin(target.fd, 5000);
  REQUIRE(server.fd >= 0);
  Send(client.fd, "ping");
  CHECK(ReadWithin(server.fd, 4, 5000) == "ping");
  Send(server.fd, "pong");
  CHECK(ReadWithin(client.fd, 4, 5000) == "pong");
  CHECK(net.unidentified_connections() == 0);

  net.SetLink(0, 1, LinkFault::kBlackhole);
  CHECK(net.link(0, 1) == LinkFault::kBlackhole);
  CHECK(net.link(1, 0) == LinkFault::kNone);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the proxy polls every 20 ms
  Send(client.fd, "held");
  CHECK(ReadWithin(server.fd, 4, 300).empty());
  net.Heal();
  CHECK(ReadWithin(server.fd, 4, 5000) == "held");

  net.SetLink(0, 1, LinkFault::kDrop);
  CHECK(ReadWithin(client.fd, 1, 5000) == "<eof>");
  Fd again;
  again.fd = Connect(ports[0]);
  CHECK(ReadWithin(again.fd, 1, 5000) == "<eof>");
  CHECK(AcceptWithin(target.fd, 200) < 0);

  net.Heal();
  Fd healed;
  healed.fd = Connect(ports[0]);
  Fd server2;
  server2.fd = AcceptWithin(target.fd, 5000);
  REQUIRE(server2.fd >= 0);
  Send(healed.fd, "back");
  CHECK(ReadWithin(server2.fd, 4, 5000) == "back");
}

TEST_CASE("a fault on another link leaves the connection alone", "[robustness]") {
  // Goal: blocking 1 -> 0 or isolating member 2 does not touch member 0's link to member 1.
  const auto ports = kvtest::PickFreePorts(2);
  const auto proxy_ports = kvtest::PickFreePorts(3);
  const auto unused = kvtest::PickFreePorts(2);
  Fd target;
  target.fd = Listen(ports[1]);
  const pid_t self = getpid();
  PeerNetwork net({proxy_ports[0], proxy_ports[1], proxy_ports[2]},
                  {unused[0], ports[1], unused[1]},
                  [self](std::size_t m) { return m == 0 ? self : pid_t{0}; });
  net.SetLink(1, 0, LinkFault::kDrop);
  net.Isolate(2, LinkFault::kBlackhole);
  Fd client;
  client.fd = Connect(proxy_ports[1]);
  Fd server;
  server.fd = AcceptWithin(target.fd, 5000);
  REQUIRE(server.fd >= 0);
  Send(client.fd, "free");
  CHECK(ReadWithin(server.fd, 4, 5000) == "free");
  CHECK(net.connections_accepted() == 1);
}

}  // namespace
