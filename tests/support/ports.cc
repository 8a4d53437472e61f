#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "tests/support/support_error.h"

namespace kvtest {
namespace {

// Ports handed out by this process. Bounded: forgotten once it holds this many entries, by
// which time the early ports are long out of use.
constexpr std::size_t kRememberedPortsMax = 4096;
// A kernel that keeps returning ports we already handed out is broken; stop after this many.
constexpr std::size_t kAttemptsPerPort = 32;
constexpr std::size_t kPortsPerCallMax = 64;

std::mutex g_mutex;
std::set<std::uint16_t>& HandedOut() {
  static std::set<std::uint16_t> ports;
  return ports;
}

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

// Binds a fresh socket to 127.0.0.1:0 and returns it with the port the kernel chose.
std::uint16_t BindEphemeral(std::vector<Fd>& keep_open) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw SupportError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    throw SupportError(std::string("bind 127.0.0.1:0: ") + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw SupportError(std::string("getsockname: ") + std::strerror(errno));
  }
  keep_open.push_back(std::move(fd));
  return ntohs(addr.sin_port);
}

}  // namespace

std::vector<std::uint16_t> PickFreePorts(std::size_t count) {
  if (count == 0 || count > kPortsPerCallMax) {
    throw SupportError("PickFreePorts: count must be in [1, 64], got " + std::to_string(count));
  }
  std::lock_guard lock(g_mutex);
  auto& handed_out = HandedOut();
  if (handed_out.size() + count > kRememberedPortsMax) handed_out.clear();
  std::vector<Fd> keep_open;
  std::vector<std::uint16_t> ports;
  for (std::size_t attempt = 0; ports.size() < count; ++attempt) {
    if (attempt >= count * kAttemptsPerPort) {
      throw SupportError("PickFreePorts: the kernel keeps returning ports already in use");
    }
    const std::uint16_t port = BindEphemeral(keep_open);
    if (handed_out.insert(port).second) ports.push_back(port);
  }
  return ports;
}

std::uint16_t PickFreePort() { return PickFreePorts(1).front(); }

}  // namespace kvtest
