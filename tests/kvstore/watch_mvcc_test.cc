// The watchable store on the real MVCC store (RocksDB in a temp dir): live delivery fed by
// MvccStore's observer calls and catch-up read back through its History must agree.
#include <google/protobuf/util/message_differencer.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kvstore/engine.h"
#include "kvstore/mvcc_store.h"
#include "kvstore/watchable_store.h"
#include "tests/kvstore/watch_test_util.h"
#include "tests/support/temp_dir.h"

// g++ 12 flags designated initializers that leave members to their default member initializers
// (CreateArgs{.key = "k"}) as missing; those defaults are intended.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kvstore::testing {
namespace {

using etcdserverpb::WatchResponse;

using kvtest::TempDir;

// Records every revision the MVCC store reports and forwards it to the watchable store.
class Tee : public HistoryObserver {
 public:
  explicit Tee(HistoryObserver* next) : next_(next) {}
  void OnRevision(int64_t revision, const std::vector<mvccpb::Event>& events) override {
    revisions[revision] = events;
    next_->OnRevision(revision, events);
  }
  void OnCompacted(int64_t compact_revision) override { next_->OnCompacted(compact_revision); }
  std::map<int64_t, std::vector<mvccpb::Event>> revisions;

 private:
  HistoryObserver* next_;
};

struct Node {
  explicit Node(WatchOptions options) {
    StoreOptions so;
    REQUIRE(MvccStore::OpenDir(dir.str(), so, &engine, &mvcc).ok());
    watch = std::make_unique<WatchableStore>(mvcc.get(), std::move(options));
    tee = std::make_unique<Tee>(watch.get());
    mvcc->SetObserver(tee.get());
  }
  void Apply(const kvdpb::InternalRequest& req) {
    ApplyEntry e{++index, &req};
    std::vector<ApplyResult> res;
    REQUIRE(mvcc->Apply({&e, 1}, 0, &res).ok());
    REQUIRE(res.size() == 1);
    INFO(res[0].status.ToString());
    REQUIRE(res[0].status.ok());
  }
  void Put(const std::string& k, const std::string& v) {
    kvdpb::InternalRequest req;
    req.mutable_put()->set_key(k);
    req.mutable_put()->set_value(v);
    Apply(req);
  }
  void DeletePrefix(const std::string& k) {
    kvdpb::InternalRequest req;
    req.mutable_delete_range()->set_key(k);
    req.mutable_delete_range()->set_range_end(PrefixRangeEnd(k));
    Apply(req);
  }
  void Txn(const std::vector<std::pair<std::string, std::string>>& puts) {
    kvdpb::InternalRequest req;
    for (const auto& [k, v] : puts) {
      auto* p = req.mutable_txn()->add_success()->mutable_request_put();
      p->set_key(k);
      p->set_value(v);
    }
    Apply(req);
  }
  void Compact(int64_t rev) {
    kvdpb::InternalRequest req;
    req.mutable_compaction()->set_revision(rev);
    Apply(req);
    bool done = false;
    for (int i = 0; i < 1000 && !done; ++i) REQUIRE(mvcc->CompactStep(1000, &done).ok());
    REQUIRE(done);
  }

  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<MvccStore> mvcc;
  std::unique_ptr<WatchableStore> watch;
  std::unique_ptr<Tee> tee;
  uint64_t index = 0;
};

// The events a watcher must see: recorded revisions from `start`, in range, options applied.
std::vector<mvccpb::Event> Expected(const Tee& tee, const KeyRange& range, int64_t start,
                                    bool prev_kv, bool no_delete) {
  std::vector<mvccpb::Event> out;
  for (const auto& [rev, events] : tee.revisions) {
    if (rev < start) continue;
    for (const auto& ev : events) {
      if (!range.Contains(ev.kv().key())) continue;
      if (no_delete && ev.type() == mvccpb::Event::DELETE) continue;
      out.push_back(ev);
      const bool create =
          ev.type() == mvccpb::Event::PUT && ev.kv().create_revision() == ev.kv().mod_revision();
      if (!prev_kv || create) out.back().clear_prev_kv();
    }
  }
  return out;
}

void CheckEqual(const std::vector<mvccpb::Event>& want, const std::vector<mvccpb::Event>& got) {
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("event " << i << "\nwant " << want[i].ShortDebugString() << "\ngot  "
                  << got[i].ShortDebugString());
    CHECK(google::protobuf::util::MessageDifferencer::Equals(want[i], got[i]));
  }
}

TEST_CASE("watch on MvccStore: live, catch-up and slow watchers agree with the history",
          "[watch][mvcc]") {
  // Goal: events delivered live (OnRevision), replayed (ReadEvents) and after parking a slow
  // consumer are identical to what the real store committed, prev_kv included.
  WatchOptions o;
  o.stream_event_bytes_max = 2000;
  Node n(o);
  std::unique_ptr<WatchStream> live_s;
  std::unique_ptr<WatchStream> slow_s;
  REQUIRE(n.watch->OpenStream([] {}, &live_s).ok());
  REQUIRE(n.watch->OpenStream([] {}, &slow_s).ok());
  const KeyRange cfg{"cfg/", PrefixRangeEnd("cfg/")};
  REQUIRE(
      live_s->HandleRequest(CreateReq({.key = "cfg/", .range_end = "cfg0", .prev_kv = true})).ok());
  REQUIRE(live_s->HandleRequest(CreateReq({.key = "cfg/a", .no_delete = true})).ok());
  REQUIRE(
      slow_s->HandleRequest(CreateReq({.key = "cfg/", .range_end = "cfg0", .prev_kv = true})).ok());
  std::map<int64_t, std::vector<mvccpb::Event>> live_got;
  std::vector<mvccpb::Event> slow_got;
  const auto drain_live = [&] {
    for (const auto& r : Drain(*live_s)) {
      for (const auto& ev : r.events()) live_got[r.watch_id()].push_back(ev);
    }
  };

  std::mt19937_64 rng(7);
  const std::vector<std::string> keys{"cfg/a", "cfg/b", "cfg/c/d", "other", "cfg0"};
  for (int i = 0; i < 200; ++i) {
    const auto& k = keys[rng() % keys.size()];
    switch (rng() % 4) {
      case 0:
        n.DeletePrefix(k);  // may delete nothing: no revision
        break;
      case 1:
        if (k != "cfg/b")
          n.Txn({{k, "t" + std::to_string(i)}, {"cfg/b", "tb" + std::to_string(i)}});
        break;
      default:
        n.Put(k, std::string(static_cast<size_t>(rng() % 100), 'v'));
        break;
    }
    drain_live();
  }
  const int64_t first_rev = n.tee->revisions.begin()->first;
  CHECK(n.watch->Metrics().slow_watchers == 1);  // the unread stream's watcher was parked

  // A replaying watcher from the first write, and the slow consumer, catch up from RocksDB.
  std::unique_ptr<WatchStream> replay_s;
  REQUIRE(n.watch->OpenStream([] {}, &replay_s).ok());
  REQUIRE(
      replay_s
          ->HandleRequest(CreateReq(
              {.key = "cfg/", .range_end = "cfg0", .start_revision = first_rev, .prev_kv = true}))
          .ok());
  std::vector<mvccpb::Event> replay_got;
  for (int round = 0;; ++round) {
    REQUIRE(round < 10000);
    for (const auto& r : Drain(*slow_s)) {
      for (const auto& ev : r.events()) slow_got.push_back(ev);
    }
    for (const auto& r : Drain(*replay_s)) {
      for (const auto& ev : r.events()) replay_got.push_back(ev);
    }
    const SyncResult sr = n.watch->SyncStep(17);
    REQUIRE(sr.status.ok());
    if (round % 3 == 0) n.Put("cfg/a", "during catch-up " + std::to_string(round));
    if (sr.watchers_unsynced == 0 && slow_s->QueuedResponses() == 0 &&
        replay_s->QueuedResponses() == 0 && round > 10) {
      break;
    }
  }
  drain_live();
  const auto all_cfg = Expected(*n.tee, cfg, 0, true, false);
  CheckEqual(all_cfg, live_got[0]);
  CheckEqual(Expected(*n.tee, {"cfg/a", ""}, 0, false, true), live_got[1]);
  CheckEqual(all_cfg, slow_got);
  CheckEqual(all_cfg, replay_got);
  CHECK(n.watch->Metrics().victims_parked >= 1);
}

TEST_CASE("watch on MvccStore: compaction cancels a watcher that needs compacted revisions",
          "[watch][mvcc]") {
  // Goal: after a real compaction, a create below the compact revision is canceled with it,
  // and one at the compact revision replays from there.
  Node n(WatchOptions{});
  for (int i = 0; i < 10; ++i) n.Put("k", std::to_string(i));  // revisions 2..11
  n.Compact(6);
  std::unique_ptr<WatchStream> s;
  REQUIRE(n.watch->OpenStream([] {}, &s).ok());
  REQUIRE(s->HandleRequest(CreateReq({.key = "k", .start_revision = 5})).ok());
  REQUIRE(s->HandleRequest(CreateReq({.key = "k", .start_revision = 6, .prev_kv = true})).ok());
  while (n.watch->SyncStep(100).watchers_unsynced > 0) {
  }
  auto rs = Drain(*s);
  REQUIRE(rs.size() == 4);
  CHECK(rs[0].created());
  CHECK(rs[1].canceled());
  CHECK(rs[1].compact_revision() == 6);
  CHECK(rs[1].watch_id() == rs[0].watch_id());
  CHECK(rs[2].created());
  REQUIRE(rs[3].events_size() == 6);  // revisions 6..11
  CHECK(rs[3].events(0).kv().mod_revision() == 6);
  CHECK(rs[3].events(0).kv().value() == "4");
  CHECK(rs[3].events(5).prev_kv().value() == "8");
  CHECK(rs[3].header().revision() == 11);
}

}  // namespace
}  // namespace kvstore::testing

namespace kvstore::testing {
namespace {

// Forwards to the watchable store, and runs `before_next` once just before the next
// OnRevisionWithoutEvents is forwarded: a watcher created while a batch is applied.
class RacingObserver : public HistoryObserver {
 public:
  explicit RacingObserver(WatchableStore* next) : next_(next) {}
  void OnRevision(int64_t revision, const std::vector<mvccpb::Event>& events) override {
    ++with_events;
    next_->OnRevision(revision, events);
  }
  bool WantsEvents() const override { return next_->WantsEvents(); }
  void OnRevisionWithoutEvents(int64_t revision) override {
    ++without_events;
    if (before_next) {
      auto f = std::move(before_next);
      before_next = nullptr;
      f();
    }
    next_->OnRevisionWithoutEvents(revision);
  }
  void OnCompacted(int64_t compact_revision) override { next_->OnCompacted(compact_revision); }
  std::function<void()> before_next;
  int with_events = 0;
  int without_events = 0;

 private:
  WatchableStore* next_;
};

TEST_CASE(
    "watch on MvccStore: without watchers no events are built, and a watcher created "
    "meanwhile still gets its first revision",
    "[watch][mvcc]") {
  // Goal: with no watcher registered the store announces revisions without events; a watcher
  // registered while such a revision is applied (live from that revision) catches it up from
  // History, prev_kv included, and once watchers exist events are built again.
  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<MvccStore> mvcc;
  REQUIRE(MvccStore::OpenDir(dir.str(), StoreOptions{}, &engine, &mvcc).ok());
  WatchableStore watch(mvcc.get(), WatchOptions{});
  RacingObserver observer(&watch);
  mvcc->SetObserver(&observer);
  uint64_t index = 0;
  const auto put = [&](const std::string& k, const std::string& v) {
    kvdpb::InternalRequest req;
    req.mutable_put()->set_key(k);
    req.mutable_put()->set_value(v);
    ApplyEntry e{++index, &req};
    std::vector<ApplyResult> res;
    REQUIRE(mvcc->Apply({&e, 1}, 0, &res).ok());
    REQUIRE(res.at(0).status.ok());
  };
  put("k", "v1");  // revision 2: nobody watches
  CHECK(observer.without_events == 1);
  CHECK(observer.with_events == 0);

  std::unique_ptr<WatchStream> s;
  REQUIRE(watch.OpenStream([] {}, &s).ok());
  observer.before_next = [&] {
    // Registered after the apply asked WantsEvents (false) and before the revision is
    // announced: live from revision 3, the one being applied.
    REQUIRE(s->HandleRequest(CreateReq({.key = "k", .prev_kv = true})).ok());
  };
  put("k", "v2");  // revision 3
  CHECK(observer.without_events == 2);
  CHECK(watch.Metrics().slow_watchers == 1);
  while (watch.SyncStep(1000).watchers_unsynced > 0) {
  }
  put("k", "v3");  // revision 4: a watcher exists, events are built and delivered live
  CHECK(observer.with_events == 1);
  std::vector<WatchResponse> out;
  while (s->Poll(64, &out) > 0) {
  }
  std::vector<mvccpb::Event> got;
  for (const auto& r : out) {
    for (const auto& ev : r.events()) got.push_back(ev);
  }
  REQUIRE(got.size() == 2);
  CHECK(got[0].kv().mod_revision() == 3);
  CHECK(got[0].kv().value() == "v2");
  CHECK(got[0].prev_kv().value() == "v1");
  CHECK(got[1].kv().mod_revision() == 4);
  CHECK(got[1].prev_kv().value() == "v2");
  s.reset();
  mvcc->SetObserver(nullptr);
}

}  // namespace
}  // namespace kvstore::testing
