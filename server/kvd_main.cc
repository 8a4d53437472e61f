// kvd's entry point: parses etcd's flags and ETCD_* variables, then runs one member until
// SIGTERM or SIGINT (exit code 0 after a clean stop). Usage, version and configuration errors
// behave as etcd's (exit code 2 for flag syntax errors, 1 for validation errors).
#include <absl/synchronization/mutex.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kvstore/failpoint.h"
#include "server/config.h"
#include "server/kvd_server.h"
#include "server/log.h"
#include "server/restore.h"

extern char** environ;

int main(int argc, char** argv) {
  // Debian builds abseil without NDEBUG, so every absl::Mutex lock (gRPC takes several per RPC
  // and per watch event) also runs abseil's lock-order deadlock detector (GraphCycles alone was
  // ~1% of kvd's samples under a watch fan-out). kvd does not use absl::Mutex itself; off is
  // abseil's release default.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv, argv + argc);
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);

  server::Config config;
  server::Status st = server::ParseConfig(args, env, &config);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    if (st.exit_code() == 2) std::fprintf(stderr, "Run 'kvd --help' for the list of flags.\n");
    return st.exit_code();
  }
  if (config.show_help) {
    std::fputs(server::UsageText().c_str(), stdout);
    return 0;
  }
  if (config.show_version) {
    std::fputs(server::VersionText().c_str(), stdout);
    return 0;
  }
  // etcd 3.4's zap logger writes JSON: --logger=zap selects it as --log-format=json does.
  server::SetLogFormat(config.log_format == server::LogFormat::kJson || config.logger == "zap"
                           ? server::LogLineFormat::kJson
                           : server::LogLineFormat::kText);
  server::SetLogMember(config.member_id);
  for (const std::string& w : config.warnings) KVD_LOG("warning: %s", w.c_str());

  // Fault injection for tests (kvstore/failpoint.h): armed only when the environment asks.
  if (const char* fp = std::getenv("KVD_FAILPOINTS"); fp != nullptr && *fp != '\0') {
    if (kvstore::Status fs = kvstore::failpoint::SetFromSpec(fp); !fs.ok()) {
      std::fprintf(stderr, "kvd: KVD_FAILPOINTS: %s\n", fs.message().c_str());
      return 2;
    }
    KVD_LOG("warning: failpoints armed from KVD_FAILPOINTS: %s", fp);
  }

  // Block the stop signals in every thread (they inherit the mask); this one waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (!config.restore_path.empty()) {
    bool restored = false;
    st = server::RestoreSnapshotFile(config, config.restore_path, &restored);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.message().c_str());
      return 1;
    }
  }

  server::NodeLimits limits;
  // Environment knobs of NodeLimits until flags exist in server/config: each is read only when
  // set, as a decimal number.
  auto env_u64 = [](const char* name, uint64_t* out) {
    if (const char* v = std::getenv(name); v != nullptr) *out = std::strtoull(v, nullptr, 10);
  };
  // etcd 3.5's --experimental-snapshot-catchup-entries (entries kept behind a raft snapshot for
  // slow followers; default 5000); 0 keeps the default.
  uint64_t catchup_entries = 0;
  env_u64("KVD_SNAPSHOT_CATCHUP_ENTRIES", &catchup_entries);
  if (catchup_entries > 0) limits.log_retain_entries = catchup_entries;
  // The byte rule (snapshot_trigger_bytes, log_retain_bytes); a trigger of 0 turns it off,
  // which leaves etcd's entry-count rule alone (for comparisons and tests).
  env_u64("KVD_SNAPSHOT_TRIGGER_BYTES", &limits.snapshot_trigger_bytes);
  env_u64("KVD_SNAPSHOT_CATCHUP_BYTES", &limits.log_retain_bytes);
  server::KvdServer server(config, limits);
  // A removed member stops like etcd does, through the same path as SIGTERM.
  static std::atomic<bool> removed{false};
  server.SetOnRemoved([] {
    removed.store(true);
    ::kill(::getpid(), SIGTERM);
  });
  st = server.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return st.exit_code() == 0 ? 1 : st.exit_code();
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (removed.load()) {
    KVD_LOG("the member has been permanently removed from the cluster, stopping");
  } else {
    KVD_LOG("received signal %d, stopping", sig);
  }
  server.Stop();
  return 0;
}
