// RaftLogStore crash test: a child process saves a deterministic stream of Readys (synced) and
// acknowledges each one through a pipe; the parent SIGKILLs it at random points, reopens the
// log and checks that it is exactly the state after the last acknowledged step or the one
// after it (the step in flight), with the prefix invariants checked on their own as well.
//
// The child is this test binary re-executed (fork + exec) with the hidden test case below:
// exec gives it a fresh RocksDB (a plain fork would inherit the parent's RocksDB background
// thread pool without its threads).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>

#include "kvstore/raft_log_store.h"
#include "tests/kvstore/raft_log_test_util.h"

extern char** environ;

using raftlogtest::Diff;
using raftlogtest::OpenLog;
using raftlogtest::TempDir;

namespace {

constexpr uint64_t kCacheBytes = 64u << 10;
constexpr int kAckTimeoutMs = 30000;

kvstore::RaftLogStoreOptions StoreOptions() {
  kvstore::RaftLogStoreOptions o;
  o.cache_bytes_max = kCacheBytes;
  return o;
}

// One step of the stream: a Ready to Save, or a Compact. A pure function of (seed, step) and
// the state before the step, so parent and child derive the same stream.
struct Step {
  bool compact = false;
  uint64_t compact_index = 0;
  std::optional<raft::HardState> hs;
  std::vector<raft::Entry> entries;
  std::optional<raft::Snapshot> snap;
};

Step MakeStep(uint64_t seed, uint64_t step, const raft::MemoryStorage& m) {
  std::mt19937_64 rng(seed * 1000003u + step);
  auto rand = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  const raft::HardState& cur = m.hard_state();
  Step s;
  const uint64_t kind = rand(0, 99);
  const uint64_t first = m.FirstIndex();
  const uint64_t last = m.LastIndex();
  uint64_t term = std::max<uint64_t>(cur.term, 1);
  if (kind < 5 && cur.commit >= first) {
    s.compact = true;
    s.compact_index = rand(first, cur.commit);
    return s;
  }
  uint64_t new_last = last;
  if (kind < 7) {
    s.snap.emplace();
    term += 1;
    s.snap->metadata =
        raft::SnapshotMetadata{last + rand(1, 20), term, raft::ConfState{{1, 2}, {}}};
    s.snap->data = "snap" + std::to_string(step);
    new_last = s.snap->metadata.index;
  } else {
    uint64_t start = new_last + 1;
    if (kind < 20 && new_last > cur.commit) {
      start = std::max(cur.commit + 1, new_last - rand(0, 3));  // replace an uncommitted suffix
      term += 1;
    }
    const uint64_t n = rand(1, 8);
    for (uint64_t k = 0; k < n; ++k) {
      s.entries.push_back(raft::Entry{term, start + k, raft::EntryType::kNormal,
                                      std::string(rand(0, 3000), static_cast<char>('a' + k))});
    }
    new_last = start + n - 1;
  }
  s.hs = raft::HardState{term, rand(0, 3), rand(std::min(cur.commit, new_last), new_last)};
  if (s.snap) s.hs->commit = std::max(s.hs->commit, s.snap->metadata.index);
  return s;
}

void ApplyToModel(const Step& s, raft::MemoryStorage* m) {
  if (s.compact) {
    (void)m->Compact(s.compact_index);
    return;
  }
  if (s.snap && !m->ApplySnapshot(*s.snap).ok()) std::abort();
  m->Append(s.entries);
  if (s.hs) m->SetHardState(*s.hs);
}

kvstore::Status ApplyToStore(const Step& s, kvstore::RaftLogStore* store) {
  if (s.compact) return store->Compact(s.compact_index);
  return store->Save(s.hs ? &*s.hs : nullptr, s.entries, s.snap ? &*s.snap : nullptr);
}

// Parent-side: reads one 8-byte ack; false on EOF (child gone) or timeout.
bool ReadAck(int fd, int timeout_ms, uint64_t* step, bool* timed_out) {
  pollfd p{fd, POLLIN, 0};
  const int r = poll(&p, 1, timeout_ms);
  if (r == 0) {
    *timed_out = true;
    return false;
  }
  uint64_t v = 0;
  if (read(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return false;
  *step = v;
  return true;
}

[[noreturn]] void ChildFail(const std::string& what) {
  std::fprintf(stderr, "raft log crash child: %s\n", what.c_str());
  std::fflush(stderr);
  _exit(3);
}

}  // namespace

TEST_CASE("RaftLogStore crash child (helper run by the crash test only)",
          "[.raft_log_crash_child]") {
  // Goal: none on its own; it is the killed child of the crash test (needs its environment).
  const char* dir = std::getenv("KV_RAFT_LOG_CRASH_DIR");
  const char* fd_s = std::getenv("KV_RAFT_LOG_CRASH_FD");
  const char* seed_s = std::getenv("KV_RAFT_LOG_CRASH_SEED");
  const char* start_s = std::getenv("KV_RAFT_LOG_CRASH_START");
  REQUIRE(dir != nullptr);
  REQUIRE(fd_s != nullptr);
  REQUIRE(seed_s != nullptr);
  REQUIRE(start_s != nullptr);
  const int fd = std::atoi(fd_s);
  const uint64_t seed = std::strtoull(seed_s, nullptr, 10);
  const uint64_t start = std::strtoull(start_s, nullptr, 10);
  raft::MemoryStorage model;
  for (uint64_t step = 1; step <= start; ++step) ApplyToModel(MakeStep(seed, step, model), &model);
  OpenLog log;
  if (kvstore::Status s = log.Reopen(dir, StoreOptions()); !s.ok()) ChildFail(s.ToString());
  if (std::string d = Diff(model, *log.store); !d.empty()) ChildFail("start state: " + d);
  // Runs until killed; the bound only stops a child whose parent vanished.
  for (uint64_t step = start + 1; step <= start + 100000; ++step) {
    Step s = MakeStep(seed, step, model);
    if (kvstore::Status st = ApplyToStore(s, log.store.get()); !st.ok()) ChildFail(st.ToString());
    ApplyToModel(s, &model);
    if (write(fd, &step, sizeof step) != static_cast<ssize_t>(sizeof step)) _exit(0);
  }
  _exit(0);
}

TEST_CASE("RaftLogStore survives SIGKILL at random points with a prefix of its Saves",
          "[raft_log][crash]") {
  // Goal: after a kill, the log is the state after the last acknowledged Save or the next one.
  const uint64_t seed = 7;
  const int rounds = 12;
  TempDir dir;
  std::mt19937_64 rng(seed);
  const std::string exe = raftlogtest::SelfExe();
  raft::MemoryStorage model;  // state after `done_steps` steps
  uint64_t done_steps = 0;
  int recovered_in_flight = 0;
  for (int round = 0; round < rounds; ++round) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    // Built before fork: the child only calls async-signal-safe functions before exec.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    env_strings.push_back("KV_RAFT_LOG_CRASH_DIR=" + dir.path());
    env_strings.push_back("KV_RAFT_LOG_CRASH_FD=" + std::to_string(fds[1]));
    env_strings.push_back("KV_RAFT_LOG_CRASH_SEED=" + std::to_string(seed));
    env_strings.push_back("KV_RAFT_LOG_CRASH_START=" + std::to_string(done_steps));
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string arg0 = exe, arg1 = "[raft_log_crash_child]";
    char* argv[] = {arg0.data(), arg1.data(), nullptr};
    const int devnull = open("/dev/null", O_WRONLY);
    REQUIRE(devnull >= 0);

    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      dup2(devnull, STDOUT_FILENO);
      execve(exe.c_str(), argv, envp.data());
      _exit(4);
    }
    close(fds[1]);
    close(devnull);
    // Kill after a random number of acks (0: possibly while it is still recovering), plus a
    // random delay so the kill lands at different points of a Save.
    const uint64_t acks_before_kill = rng() % 4 == 0 ? 0 : 1 + rng() % 60;
    uint64_t last_ack = done_steps;
    bool timed_out = false;
    bool child_gone = false;
    for (uint64_t k = 0; k < acks_before_kill; ++k) {
      if (!ReadAck(fds[0], kAckTimeoutMs, &last_ack, &timed_out)) {
        child_gone = true;
        break;
      }
    }
    usleep(static_cast<useconds_t>(rng() % 3000));
    kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    // Drain the acks written before the kill.
    while (!timed_out && ReadAck(fds[0], kAckTimeoutMs, &last_ack, &timed_out)) {
    }
    close(fds[0]);
    INFO("round " << round << " acked steps " << done_steps << ".." << last_ack);
    REQUIRE_FALSE(timed_out);
    REQUIRE_FALSE(child_gone);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);

    // The model after the last acknowledged step, and after the one that may have been in
    // flight when the kill landed.
    for (; done_steps < last_ack; ++done_steps) {
      ApplyToModel(MakeStep(seed, done_steps + 1, model), &model);
    }
    raft::MemoryStorage next = model;
    ApplyToModel(MakeStep(seed, done_steps + 1, next), &next);

    OpenLog log;
    kvstore::Status s = log.Reopen(dir.path(), StoreOptions());
    INFO(s.ToString());
    REQUIRE(s.ok());
    const kvstore::RaftLogStore& store = *log.store;
    // Prefix invariants, stated on their own.
    raft::HardState hs;
    raft::ConfState cs;
    REQUIRE(store.InitialState(&hs, &cs).ok());
    CHECK(hs.commit <= store.LastIndex());
    std::vector<raft::Entry> ents;
    REQUIRE(store.Entries(store.FirstIndex(), store.LastIndex() + 1, raft::kNoLimit, &ents).ok());
    REQUIRE(ents.size() == store.LastIndex() + 1 - store.FirstIndex());
    for (size_t k = 0; k < ents.size(); ++k) CHECK(ents[k].index == store.FirstIndex() + k);
    // Every acknowledged committed entry is still there (unless compacted since).
    raft::HardState acked_hs = model.hard_state();
    for (uint64_t i = std::max(store.FirstIndex(), model.FirstIndex()); i <= acked_hs.commit; ++i) {
      uint64_t want = 0, got = 0;
      REQUIRE(model.Term(i, &want).ok());
      REQUIRE(store.Term(i, &got).ok());
      REQUIRE(want == got);
    }
    // ...and precisely: the state is the acknowledged one or the next one.
    const std::string d_acked = Diff(model, store);
    const std::string d_next = Diff(next, store);
    INFO("vs acked: " << d_acked << "\nvs next: " << d_next);
    REQUIRE((d_acked.empty() || d_next.empty()));
    if (!d_acked.empty()) {
      model = next;
      ++done_steps;
      ++recovered_in_flight;
    }
  }
  WARN("crash rounds " << rounds << ": " << done_steps << " steps acknowledged or recovered, "
                       << recovered_in_flight << " recoveries included the step in flight");
  // The rounds made progress (kills did not all land before the first Save).
  CHECK(done_steps > 20);
}
