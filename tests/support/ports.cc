#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "tests/support/support_error.h"

namespace kvtest {
namespace {

// Ports are drawn from [kPortFirst, the kernel's first ephemeral port): the kernel never hands
// those to outgoing connections, which could otherwise take a picked port before the server
// binds it.
constexpr int kPortFirst = 10000;
constexpr int kPortRangeMin = 1024;  // below this many, fall back to binding port 0
// A lock held per handed-out port (one fd each), so concurrent test processes never hand out
// the same port. Bounded (an fd each, well under the usual limit of 1024): the oldest is released
// past this many, by which time its port is long out of use.
constexpr std::size_t kHeldLocksMax = 256;
constexpr std::size_t kAttemptsPerPort = 256;
constexpr std::size_t kPortsPerCallMax = 64;

std::mutex g_mutex;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct State {
  int first = 0;  // the range to draw from, [first, last]; first == 0: bind port 0 instead
  int last = 0;
  std::filesystem::path lock_dir;
  std::deque<std::pair<std::uint16_t, Fd>> held;  // ports handed out, oldest first
  std::mt19937 rng{std::random_device{}()};
};

// KVTEST_PORT_RANGE=lo-hi overrides the range (tests of this file use it to force contention).
void ChooseRange(State* s) {
  int lo = kPortFirst;
  int hi = -1;
  if (const char* env = std::getenv("KVTEST_PORT_RANGE"); env != nullptr && *env != '\0') {
    if (std::sscanf(env, "%d-%d", &lo, &hi) != 2 || lo < 1 || hi > 65535 || lo > hi) {
      throw SupportError(std::string("KVTEST_PORT_RANGE must be lo-hi, got ") + env);
    }
  } else {
    int eph_lo = 0, eph_hi = 0;
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    hi = (in >> eph_lo >> eph_hi) ? eph_lo - 1 : 32767;
    if (hi - lo + 1 < kPortRangeMin) return;  // no room below the ephemeral range
  }
  const char* tmp = std::getenv("TMPDIR");
  std::filesystem::path dir = std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
  dir /= "kvtest-ports";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw SupportError("cannot create " + dir.string() + ": " + ec.message());
  s->first = lo;
  s->last = hi;
  s->lock_dir = dir;
}

State& GetState() {
  static State* state = [] {
    auto* s = new State();  // never destroyed: the locks live as long as the process
    ChooseRange(s);
    return s;
  }();
  return *state;
}

// Binds a fresh socket to 127.0.0.1:`port` (0: the kernel chooses); -1 if the port is taken.
int BindProbe(std::uint16_t port, std::vector<Fd>& keep_open) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw SupportError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (port != 0 && (errno == EADDRINUSE || errno == EACCES)) return -1;
    throw SupportError("bind 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw SupportError(std::string("getsockname: ") + std::strerror(errno));
  }
  keep_open.push_back(std::move(fd));
  return ntohs(addr.sin_port);
}

// Takes the cross-process lock of `port`; an invalid Fd when another process holds it.
Fd LockPort(const State& s, std::uint16_t port) {
  const std::string path = (s.lock_dir / (std::to_string(port) + ".lock")).string();
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666));
  if (fd.get() < 0) throw SupportError("open " + path + ": " + std::strerror(errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Fd(-1);
    throw SupportError("flock " + path + ": " + std::strerror(errno));
  }
  return fd;
}

bool Held(const State& s, std::uint16_t port) {
  return std::any_of(s.held.begin(), s.held.end(), [&](const auto& h) { return h.first == port; });
}

void Hold(State& s, std::uint16_t port, Fd lock) {
  while (s.held.size() >= kHeldLocksMax) s.held.pop_front();
  s.held.emplace_back(port, std::move(lock));
}

}  // namespace

std::vector<std::uint16_t> PickFreePorts(std::size_t count) {
  if (count == 0 || count > kPortsPerCallMax) {
    throw SupportError("PickFreePorts: count must be in [1, 64], got " + std::to_string(count));
  }
  std::lock_guard lock(g_mutex);
  State& s = GetState();
  std::vector<Fd> keep_open;  // probe sockets, closed once every port is picked
  std::vector<std::uint16_t> ports;
  for (std::size_t attempt = 0; ports.size() < count; ++attempt) {
    if (attempt >= count * kAttemptsPerPort) {
      throw SupportError("PickFreePorts: no free port found in " + std::to_string(attempt) +
                         " attempts");
    }
    if (s.first == 0) {  // no range below the ephemeral ports: let the kernel choose
      const auto port = static_cast<std::uint16_t>(BindProbe(0, keep_open));
      if (Held(s, port)) continue;
      Hold(s, port, Fd(-1));
      ports.push_back(port);
      continue;
    }
    const auto port =
        static_cast<std::uint16_t>(std::uniform_int_distribution<int>(s.first, s.last)(s.rng));
    if (Held(s, port)) continue;
    Fd port_lock = LockPort(s, port);
    if (port_lock.get() < 0) continue;             // another test process holds it
    if (BindProbe(port, keep_open) < 0) continue;  // in use by something else
    Hold(s, port, std::move(port_lock));
    ports.push_back(port);
  }
  return ports;
}

std::uint16_t PickFreePort() { return PickFreePorts(1).front(); }

}  // namespace kvtest
