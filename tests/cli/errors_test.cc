// kvctl's failure contract on a real server: an unreachable endpoint, a timeout, a bad flag,
// a malformed import file and a txn syntax error each give ONE line on stderr naming the
// problem (with the line number for files and scripts), nothing on stdout, a non-zero exit
// code, and no write at all.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/cli/compat_harness.h"

namespace {

using clitest::RunResult;
using clitest::SingleServer;

// The store's revision (from `get -w json`): it moves with any write, so an unchanged revision
// proves that nothing was written.
std::string Revision(SingleServer& s) {
  RunResult r = s.Kvctl({"get", "nothing", "-w", "json"});
  REQUIRE(r.exit_code == 0);
  auto at = r.out.find("\"revision\":");
  REQUIRE(at != std::string::npos);
  return r.out.substr(at, r.out.find_first_of(",}", at) - at);
}

// A TCP socket listening on 127.0.0.1 that never accepts: connections complete in the kernel
// backlog, but no HTTP/2 handshake ever comes back, so every RPC runs into its deadline.
class HungEndpoint {
 public:
  HungEndpoint() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    endpoint_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~HungEndpoint() { ::close(fd_); }
  HungEndpoint(const HungEndpoint&) = delete;
  HungEndpoint& operator=(const HungEndpoint&) = delete;
  const std::string& endpoint() const { return endpoint_; }

 private:
  int fd_ = -1;
  std::string endpoint_;
};

void CheckOneLineError(const RunResult& r, int exit_code, const std::string& message) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == exit_code);
  CHECK(r.out.empty());
  CHECK(r.err == "Error: " + message + "\n");
}

CLI_COMPAT_TEST(ErrorContract, "kvctl errors are one line, exit non-zero and write nothing") {
  // Goal: each failure class has its message, its exit code and leaves the store untouched.
  SingleServer s(kind);
  s.Ok({"put", "cfg/a", "1"});
  const std::string before = Revision(s);

  // Unreachable endpoint: the only endpoint refuses connections.
  RunResult dead = clitest::RunTool(
      KVCTL_PATH,
      {"--endpoints=127.0.0.1:1", "--dial-timeout=1s", "--command-timeout=1s", "put", "cfg/a", "2"},
      "", s.dir.path());
  CheckOneLineError(dead, 1, "context deadline exceeded");

  // Timeout: an endpoint that accepts connections but never answers (a listening socket that
  // is never served), as a hung member looks to a client.
  HungEndpoint hung;
  CheckOneLineError(clitest::RunTool(KVCTL_PATH,
                                     {"--endpoints=" + hung.endpoint(), "--dial-timeout=1s",
                                      "--command-timeout=1s", "put", "cfg/a", "3"},
                                     "", s.dir.path()),
                    1, "context deadline exceeded");
  s.Write("ok.env", "A=10\nB=20\n");
  CheckOneLineError(
      clitest::RunTool(KVCTL_PATH,
                       {"--endpoints=" + hung.endpoint(), "--dial-timeout=1s",
                        "--command-timeout=1s", "import", "ok.env", "--prefix", "cfg"},
                       "", s.dir.path()),
      1, "context deadline exceeded");

  // Bad flags: unknown, malformed value, bad duration.
  CheckOneLineError(s.Kvctl({"put", "cfg/a", "4", "--bogus"}), 1, "unknown flag: --bogus");
  CheckOneLineError(s.Kvctl({"--dial-timeout=soon", "put", "cfg/a", "5"}), 1,
                    "invalid argument \"soon\" for \"--dial-timeout\" flag: bad duration");
  CheckOneLineError(s.Kvctl({"put", "cfg/a", "6", "-w", "xml"}), 4, "unsupported output format");

  // Malformed import files: the first bad line is named; valid lines before it are not written.
  s.Write("bad.yaml", "a: 1\nb:\n  c: 2\n   d: 3\n");
  CheckOneLineError(s.Kvctl({"import", "bad.yaml", "--prefix", "cfg"}), 3,
                    "bad.yaml: line 4: unexpected indentation");
  s.Write("bad.env", "A=1\nB=2\nnot a pair\n");
  CheckOneLineError(s.Kvctl({"import", "bad.env", "--prefix", "cfg"}), 3,
                    "bad.env: line 3: expected KEY=value");

  // Txn syntax errors: line numbers count from the first line of the script; the valid
  // operations before the bad one are not sent.
  CheckOneLineError(s.Kvctl({"txn"}, "value(\"cfg/a\") = \"1\"\n\nput cfg/a 7\nputt cfg/b 8\n\n"),
                    3, "line 4: invalid txn request: putt cfg/b 8");
  CheckOneLineError(s.Kvctl({"txn"}, "value(\"cfg/a\") = \"1\"\nmod(\"cfg/a\") >\n\n\n"), 3,
                    "line 2: malformed comparison: mod(\"cfg/a\") >; got mod(\"cfg/a\") > \"\"");

  CHECK(Revision(s) == before);
  CHECK(s.Kvctl({"get", "--prefix", "cfg"}).out == "cfg/a\n1\n");
}

}  // namespace
