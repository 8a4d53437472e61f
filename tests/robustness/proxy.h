// A fault-injecting TCP proxy in front of each member's peer port, so the harness can cut
// links between members without network namespaces or root. Members advertise the proxy's
// port as their peer URL; every connection a member opens to a peer's proxy carries that
// member's raft messages to the peer (kvd's transport: one client stream per sender), so a
// link "from -> to" is the set of connections that member `from` opened into `to`'s proxy.
// The proxy learns which member opened a connection from the kernel: the socket's inode
// (NETLINK_SOCK_DIAG, as `ss` does), then which member process holds it (/proc/<pid>/fd).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kv::robustness {

enum class LinkFault {
  kNone,
  kDrop,       // connections reset, new ones closed at once (fast failure)
  kBlackhole,  // bytes stop flowing both ways, connections stay open (a silent hang)
};

// Member index -> its current pid (0 if not running). Called from the proxy threads: must be
// thread-safe.
using PidOf = std::function<pid_t(std::size_t member)>;

// The member (index) whose process holds the 127.0.0.1 TCP socket with local port
// `local_port` connected to remote port `remote_port`, or -1. Asks the kernel (sock_diag)
// and reads /proc/<pid>/fd; thread-safe.
int FindSocketOwner(std::uint16_t local_port, std::uint16_t remote_port, std::size_t members,
                    const PidOf& pid_of);

// All proxies of one cluster: proxy i listens on listen_ports[i] and forwards to
// target_ports[i] (member i's real peer port). One thread per proxy, poll()-driven; at most
// kConnectionsMax connections per proxy (more are refused) and kBufferBytes buffered per
// direction. Thread-safe.
class PeerNetwork {
 public:
  static constexpr std::size_t kConnectionsMax = 64;
  static constexpr std::size_t kBufferBytes = 256 * 1024;

  // Binds every listen port (throws std::runtime_error if one is taken) and starts the
  // threads.
  PeerNetwork(std::vector<std::uint16_t> listen_ports, std::vector<std::uint16_t> target_ports,
              PidOf pid_of);
  ~PeerNetwork();
  PeerNetwork(const PeerNetwork&) = delete;
  PeerNetwork& operator=(const PeerNetwork&) = delete;

  std::size_t size() const { return proxies_.size(); }

  // Sets the fault on the link from member `from` to member `to` (from != to).
  void SetLink(std::size_t from, std::size_t to, LinkFault fault);
  // Member `m` can neither send nor receive (both directions of its links).
  void Isolate(std::size_t m, LinkFault fault);
  // Clears every fault.
  void Heal();
  LinkFault link(std::size_t from, std::size_t to) const;

  // Connections whose opener could not be identified within ~10 s (they are never faulted;
  // until identified, a connection is not faulted either).
  std::uint64_t unidentified_connections() const { return unidentified_.load(); }
  std::uint64_t connections_accepted() const { return accepted_.load(); }

 private:
  struct Proxy;
  void Run(std::size_t index);

  PidOf pid_of_;
  mutable std::mutex mu_;
  std::vector<std::vector<LinkFault>> links_;  // [from][to], guarded by mu_
  std::vector<std::unique_ptr<Proxy>> proxies_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> unidentified_{0};
  std::atomic<std::uint64_t> accepted_{0};
};

}  // namespace kv::robustness
