// Crash tests: a forked child applies a deterministic stream of entries (or restores a
// checkpoint) and is killed with SIGKILL at a random moment; the reopened store must be exactly
// the model replayed up to the store's applied index (or report the interrupted restore).
// Env: KV_CRASH_ROUNDS (kills per test, default 8), KV_CRASH_SEED.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "kvstore/failpoint.h"
#include "tests/kvstore/model.h"
#include "tests/kvstore/test_util.h"

namespace {

int64_t EnvInt(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoll(v, nullptr, 10) : def;
}

// Entry `i` of the deterministic stream (a function of i alone, so parent and child agree).
kvdpb::InternalRequest StreamEntry(uint64_t seed, uint64_t i) {
  std::mt19937_64 rng(seed * 1'000'003 + i);
  auto pick = [&](int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); };
  auto key = [&]() { return "key/" + std::to_string(pick(37)); };
  const int64_t lease = 1 + static_cast<int64_t>(i / 40) % 4;
  kvdpb::InternalRequest r;
  int64_t p = pick(100);
  if (p < 50) {
    r = kvtest::PutReq(key(), "v" + std::to_string(i), pick(5) == 0 ? lease : 0);
  } else if (p < 62) {
    std::string k = key();
    r = kvtest::DelReq(k, pick(2) ? "" : k + "5");
  } else if (p < 77) {
    auto* t = r.mutable_txn();
    auto* c = t->add_compare();
    c->set_key(key());
    c->set_target(etcdserverpb::Compare::VERSION);
    c->set_result(etcdserverpb::Compare::GREATER);
    c->set_version(pick(3));
    auto* put = t->add_success()->mutable_request_put();
    put->set_key("txn/" + std::to_string(pick(9)));
    put->set_value("t" + std::to_string(i));
    t->add_success()->mutable_request_delete_range()->set_key(key());
    t->add_failure()->mutable_request_range()->set_key(key());
  } else if (p < 84) {
    r = kvtest::GrantReq(lease, 100);
  } else if (p < 90) {
    r = kvtest::RevokeReq(lease);
  } else if (p < 95) {
    r = kvtest::CompactReq(static_cast<int64_t>(i / 3));
  } else {
    *r.mutable_range() = kvtest::RangeOf("key/", "key0");
  }
  return r;
}

// Child body: resume after the applied index (re-feeding a few applied entries, which must be
// skipped) and apply batches until killed or `max_entries` is reached.
[[noreturn]] void ChildApply(const std::string& db, uint64_t seed, uint64_t max_entries) {
  std::unique_ptr<kvstore::Engine> engine;
  std::unique_ptr<kvstore::MvccStore> store;
  if (!kvstore::MvccStore::OpenDir(db, {}, &engine, &store).ok()) _exit(3);
  std::mt19937_64 rng(seed ^ store->AppliedIndex());
  uint64_t next = store->AppliedIndex() > 3 ? store->AppliedIndex() - 3 : 1;
  while (next <= max_entries) {
    std::vector<kvdpb::InternalRequest> reqs;
    std::vector<kvstore::ApplyEntry> entries;
    const size_t n = 1 + rng() % 8;
    reqs.reserve(n);
    for (size_t k = 0; k < n; ++k) reqs.push_back(StreamEntry(seed, next + k));
    for (size_t k = 0; k < n; ++k) entries.push_back({next + k, &reqs[k]});
    std::vector<kvstore::ApplyResult> res;
    if (!store->Apply(entries, 0, &res).ok()) _exit(4);
    next += n;
    if (rng() % 4 == 0) {
      bool done = false;
      if (!store->CompactStep(5, &done).ok()) _exit(5);
    }
  }
  _exit(0);
}

void KillAfter(pid_t pid, int64_t delay_ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

}  // namespace

TEST_CASE("crash: SIGKILL during apply leaves the store equal to the model at its index",
          "[crash]") {
  // Goal: every kill point recovers to a consistent applied index with the exact model state.
  const auto seed = static_cast<uint64_t>(EnvInt("KV_CRASH_SEED", 7));
  const int64_t rounds = EnvInt("KV_CRASH_ROUNDS", 8);
  const uint64_t max_entries = 20'000;
  kvtest::TempDir dir;
  const std::string db = dir.Sub("db");
  std::mt19937_64 rng(seed);
  kvtest::Model model;
  uint64_t last_applied = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    INFO("seed " << seed << " round " << round << " (replay: KV_CRASH_SEED=" << seed << ")");
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ChildApply(db, seed, max_entries);
    KillAfter(pid, 30 + static_cast<int64_t>(rng() % 300));
    std::unique_ptr<kvstore::Engine> engine;
    std::unique_ptr<kvstore::MvccStore> store;
    kvstore::Status st = kvstore::MvccStore::OpenDir(db, {}, &engine, &store);
    REQUIRE(st.ok());
    const uint64_t applied = store->AppliedIndex();
    CHECK(applied >= last_applied);
    last_applied = applied;
    for (uint64_t i = model.applied + 1; i <= applied; ++i) {
      kvdpb::InternalResponse out;
      (void)model.Apply(i, StreamEntry(seed, i), &out);
    }
    REQUIRE(store->CurrentRevision() == model.rev);
    REQUIRE(store->CompactRevision() == model.compact);
    for (int64_t r = std::max<int64_t>(model.compact, model.rev - 20); r <= model.rev; ++r) {
      etcdserverpb::RangeRequest rr;
      rr.set_key(std::string(1, '\0'));
      rr.set_range_end(std::string(1, '\0'));
      rr.set_revision(r);
      etcdserverpb::RangeResponse a, b;
      REQUIRE(store->Range(rr, &a).ok());
      REQUIRE(model.Range(rr, model.rev, &b).ok());
      REQUIRE(a.SerializeAsString() == b.SerializeAsString());
    }
    const int64_t from = std::max<int64_t>(model.compact, model.rev - 50);
    std::vector<mvccpb::Event> evs;
    int64_t next = from;
    while (next <= model.rev) {
      REQUIRE(store
                  ->ReadEvents({std::string(1, '\0'), std::string(1, '\0')}, next, model.rev, 1000,
                               true, &evs, &next)
                  .ok());
    }
    auto want = model.Events(std::string(1, '\0'), std::string(1, '\0'), from, model.rev, true);
    REQUIRE(evs.size() == want.size());
    for (size_t i = 0; i < evs.size(); ++i) {
      REQUIRE(evs[i].SerializeAsString() == want[i].SerializeAsString());
    }
    etcdserverpb::LeaseLeasesResponse l;
    store->LeaseLeases(&l);
    REQUIRE(static_cast<size_t>(l.leases_size()) == model.leases.size());
  }
  CHECK(last_applied > 0);
}

TEST_CASE("crash: SIGKILL during checkpoint restore is detected on reopen", "[crash]") {
  // Goal: an interrupted restore never opens as a silently partial store.
  const int64_t rounds = EnvInt("KV_CRASH_ROUNDS", 8);
  kvtest::TempDir dir;
  std::string ck = dir.Sub("ck");
  uint32_t want_hash = 0;
  {
    kvtest::TestStore src;
    for (int i = 0; i < 3000; ++i) {
      REQUIRE(src.Do(kvtest::PutReq("k" + std::to_string(i % 997), std::string(200, 'x'))).ok());
    }
    REQUIRE(src->WriteCheckpointFile(ck).ok());
    int64_t c = 0, r = 0;
    REQUIRE(src->HashKV(0, &want_hash, &c, &r).ok());
  }
  const std::string db = dir.Sub("db");
  {
    kvtest::TestStore seed_store;  // gives the target some prior content
    (void)seed_store;
  }
  std::mt19937_64 rng(11);
  int interrupted = 0, completed = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::unique_ptr<kvstore::Engine> engine;
      if (!kvstore::Engine::Open(db, {}, kvstore::MvccStore::ColumnFamilies(), &engine).ok()) {
        _exit(3);
      }
      for (int i = 0; i < 1000; ++i) {
        if (!kvstore::MvccStore::RestoreCheckpoint(engine.get(), ck).ok()) _exit(4);
      }
      _exit(0);
    }
    KillAfter(pid, 5 + static_cast<int64_t>(rng() % 200));
    std::unique_ptr<kvstore::Engine> engine;
    std::unique_ptr<kvstore::MvccStore> store;
    REQUIRE(kvstore::Engine::Open(db, {}, kvstore::MvccStore::ColumnFamilies(), &engine).ok());
    kvstore::Status st = kvstore::MvccStore::Open(engine.get(), {}, &store);
    if (!st.ok()) {
      ++interrupted;
      CHECK(st.code() == kvstore::Code::kDataLoss);
      CHECK(st.message().find("interrupted checkpoint restore") != std::string::npos);
      // kvd's way back: the restore named by the marker is run again from its file.
      std::string resumed;
      REQUIRE(kvstore::MvccStore::ResumeInterruptedRestore(engine.get(), &resumed).ok());
      CHECK(resumed == ck);
      REQUIRE(kvstore::MvccStore::Open(engine.get(), {}, &store).ok());
    } else {
      ++completed;
    }
    uint32_t h = 0;
    int64_t c = 0, r = 0;
    if (store->CurrentRevision() > 1) {  // a restore finished at least once
      REQUIRE(store->HashKV(0, &h, &c, &r).ok());
      CHECK(h == want_hash);
    }
  }
  CHECK(interrupted + completed == rounds);
}

TEST_CASE("crash: an interrupted restore whose checkpoint file is gone is still refused",
          "[crash]") {
  // Goal: ResumeInterruptedRestore only finishes a restore it can verify; without the file
  // (or with a damaged one) the marker stays and Open keeps refusing the partial store.
  kvtest::TempDir dir;
  std::string ck = dir.Sub("ck");
  {
    kvtest::TestStore src;
    for (int i = 0; i < 50; ++i) {
      REQUIRE(src.Do(kvtest::PutReq("k" + std::to_string(i), "v")).ok());
    }
    REQUIRE(src->WriteCheckpointFile(ck).ok());
  }
  const std::string db = dir.Sub("db");
  {
    // An interrupted restore: the marker written, the families emptied, then the process ends
    // (restoreAfterDrop=error stops it at exactly that point, so the marker surely exists).
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::unique_ptr<kvstore::Engine> engine;
      if (!kvstore::Engine::Open(db, {}, kvstore::MvccStore::ColumnFamilies(), &engine).ok()) {
        _exit(3);
      }
      if (!kvstore::failpoint::Set("restoreAfterDrop", "error").ok()) _exit(4);
      const bool failed = !kvstore::MvccStore::RestoreCheckpoint(engine.get(), ck).ok();
      _exit(failed ? 0 : 5);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
  }
  std::unique_ptr<kvstore::Engine> engine;
  std::unique_ptr<kvstore::MvccStore> store;
  REQUIRE(kvstore::Engine::Open(db, {}, kvstore::MvccStore::ColumnFamilies(), &engine).ok());
  REQUIRE(kvstore::MvccStore::Open(engine.get(), {}, &store).code() == kvstore::Code::kDataLoss);
  // A damaged file: verification fails, nothing is touched, the marker stays.
  {
    std::fstream f(ck, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(40);
    const int byte = f.get();
    REQUIRE(byte != EOF);
    f.seekp(40);
    f.put(static_cast<char>(byte ^ 0xff));
  }
  std::string resumed;
  CHECK_FALSE(kvstore::MvccStore::ResumeInterruptedRestore(engine.get(), &resumed).ok());
  CHECK(resumed.empty());
  CHECK(kvstore::MvccStore::Open(engine.get(), {}, &store).code() == kvstore::Code::kDataLoss);
  // No file at all: nothing resumed, and Open still names the marker.
  std::filesystem::remove(ck);
  REQUIRE(kvstore::MvccStore::ResumeInterruptedRestore(engine.get(), &resumed).ok());
  CHECK(resumed.empty());
  kvstore::Status st = kvstore::MvccStore::Open(engine.get(), {}, &store);
  CHECK(st.code() == kvstore::Code::kDataLoss);
  CHECK(st.message().find("interrupted checkpoint restore") != std::string::npos);
}
