// The watchable store driven the way the server drives it: an apply thread writing, a consumer
// thread creating watchers and polling (one stream slow), a worker thread running SyncStep and
// ProgressTick. Run under ASan/TSan this also checks the locking.
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/kvstore/watch_test_util.h"

// g++ 12 flags designated initializers that leave members to their default member initializers
// (CreateArgs{.key = "k"}) as missing; those defaults are intended.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kvstore::testing {
namespace {

TEST_CASE("watch threads: apply, consumer and worker threads lose and repeat nothing",
          "[watch][threads]") {
  // Goal: with real concurrency, every watcher gets exactly the revisions of its range once, in
  // order, whether it stayed live, was parked as a victim, or started by replaying history.
  WatchOptions o;
  o.stream_event_bytes_max = 1500;  // small: the slow stream gets parked often
  o.catchup_revisions_max = 7;
  Fixture f(o);
  auto fast = f.Open();
  auto slow = f.Open();
  REQUIRE(fast->HandleRequest(CreateReq({.key = "k", .range_end = "l"})).ok());
  REQUIRE(slow->HandleRequest(CreateReq({.key = "k", .range_end = "l", .prev_kv = true})).ok());
  REQUIRE(slow->HandleRequest(CreateReq({.key = "k3", .progress_notify = true})).ok());

  const int writes = 3000;
  std::atomic<bool> writer_done{false};
  std::atomic<bool> stop{false};
  std::atomic<bool> thread_error{false};  // Catch2 assertions are not thread-safe
  // watch id -> revisions seen, per stream; only the consumer thread touches these until join.
  std::map<int64_t, std::vector<int64_t>> fast_revs;
  std::map<int64_t, std::vector<int64_t>> slow_revs;
  const auto take = [](WatchStream& s, size_t max, std::map<int64_t, std::vector<int64_t>>* revs) {
    std::vector<etcdserverpb::WatchResponse> out;
    s.Poll(max, &out);
    for (const auto& r : out) {
      for (const auto& ev : r.events()) (*revs)[r.watch_id()].push_back(ev.kv().mod_revision());
    }
    return out.size();
  };

  std::thread writer([&] {
    std::mt19937_64 rng(5);
    for (int i = 0; i < writes; ++i) {
      f.history.Put("k" + std::to_string(rng() % 5), std::string(rng() % 60, 'v'));
    }
    writer_done = true;
  });
  std::thread worker([&] {
    uint64_t n = 0;
    while (!stop) {
      if (!f.store.SyncStep(40).status.ok()) thread_error = true;
      if (++n % 64 == 0) f.store.ProgressTick();
      std::this_thread::yield();
    }
  });
  std::thread consumer([&] {
    uint64_t n = 0;
    bool replay_created = false;
    while (!stop) {
      take(*fast, 64, &fast_revs);
      if (++n % 8 == 0) take(*slow, 4, &slow_revs);  // the slow consumer
      if (!replay_created && f.history.CurrentRevision() > writes / 2) {
        // A late watcher replaying from the first write, created on the consumer thread.
        Status st =
            fast->HandleRequest(CreateReq({.key = "k", .range_end = "l", .start_revision = 2}));
        if (!st.ok()) thread_error = true;
        replay_created = true;
      }
      std::this_thread::yield();
    }
  });
  writer.join();
  // Quiesce: keep the consumer and worker running until everything is delivered.
  for (uint64_t spins = 0;; ++spins) {
    REQUIRE(spins < 100000000);
    REQUIRE_FALSE(thread_error);
    if (f.store.Metrics().slow_watchers == 0 && fast->QueuedResponses() == 0 &&
        slow->QueuedResponses() == 0 && f.store.Metrics().watchers == 4) {
      break;
    }
    std::this_thread::yield();
  }
  stop = true;
  consumer.join();
  worker.join();
  take(*fast, 1u << 20, &fast_revs);
  take(*slow, 1u << 20, &slow_revs);
  REQUIRE_FALSE(thread_error);

  std::vector<int64_t> all;
  std::vector<int64_t> k3;
  for (int64_t r = 2; r < 2 + writes; ++r) {
    all.push_back(r);
    if (f.history.EventsAt(r)[0].kv().key() == "k3") k3.push_back(r);
  }
  CHECK(fast_revs[0] == all);
  CHECK(fast_revs[1] == all);  // the replaying watcher (auto id 1)
  CHECK(slow_revs[0] == all);
  CHECK(slow_revs[1] == k3);
  CHECK(f.store.Metrics().victims_parked > 0);
}

}  // namespace
}  // namespace kvstore::testing
