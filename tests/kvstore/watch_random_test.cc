// Seeded randomized test of the watchable store against a model: random writes, watchers with
// random ranges / start revisions / options, cancels, compactions, slow consumers and catch-up.
// Every response is checked in stream order, and at the end every surviving watcher must have
// seen exactly the history's events for its range from its start revision.
//
// Replay one seed: KV_WATCH_SEED=<seed> ./kvstore_watch_test '[watch-random]'
#include <google/protobuf/util/message_differencer.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/kvstore/watch_test_util.h"

// g++ 12 flags designated initializers that leave members to their default member initializers
// (CreateArgs{.key = "k"}) as missing; those defaults are intended.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kvstore::testing {
namespace {

using etcdserverpb::WatchResponse;

const std::string kNul(1, '\0');
const std::vector<std::string> kKeys{"a", "ab", "abc", "b", "ba", "c", "\xff", "\xff\xff", "a\xff"};

struct ModelWatcher {
  CreateArgs args;
  KeyRange range;
  int64_t start = 0;  // effective first revision
  // Next history event to compare against: (revision, index within revision).
  int64_t cur_rev = 0;
  size_t cur_idx = 0;
  int64_t last_delivered_rev = 0;
  bool user_canceled = false;  // cancel sent, response not seen yet
  std::vector<mvccpb::Event> fragments;
  bool in_fragment = false;
};

struct PendingCreate {
  CreateArgs args;
  int64_t header_rev;
};

// The client side of one stream as the checker sees it, in response order.
struct ModelStream {
  std::unique_ptr<WatchStream> stream;
  std::deque<PendingCreate> pending;
  std::map<int64_t, ModelWatcher> active;
  int64_t next_auto = 0;
  int progress_requested = 0;
  int progress_answered = 0;
  int poll_every = 1;                   // slow consumers poll rarely
  std::map<int64_t, int> cancels_sent;  // by watch id, not answered yet
};

class Checker {
 public:
  Checker(uint64_t seed, const WatchOptions& options, FakeHistory* history)
      : seed_(seed), options_(options), history_(history) {}

  // The next event `w` must see, without consuming it.
  std::optional<mvccpb::Event> NextExpected(ModelWatcher& w) {
    const int64_t current = history_->CurrentRevision();
    if (w.cur_rev < std::max<int64_t>(w.start, 2)) {
      w.cur_rev = std::max<int64_t>(w.start, 2);
      w.cur_idx = 0;
    }
    while (w.cur_rev <= current) {
      const auto& evs = history_->EventsAt(w.cur_rev);
      for (; w.cur_idx < evs.size(); ++w.cur_idx) {
        const auto& ev = evs[w.cur_idx];
        if (!w.range.Contains(ev.kv().key())) continue;
        if (ev.type() == mvccpb::Event::PUT && w.args.no_put) continue;
        if (ev.type() == mvccpb::Event::DELETE && w.args.no_delete) continue;
        mvccpb::Event want = ev;
        if (!w.args.prev_kv || (ev.type() == mvccpb::Event::PUT &&
                                ev.kv().create_revision() == ev.kv().mod_revision())) {
          want.clear_prev_kv();
        }
        return want;
      }
      ++w.cur_rev;
      w.cur_idx = 0;
    }
    return std::nullopt;
  }

  void Consume(ModelWatcher& w, const mvccpb::Event& got) {
    auto want = NextExpected(w);
    INFO(Replay());
    REQUIRE(want.has_value());
    INFO("want " << want->ShortDebugString() << "\ngot  " << got.ShortDebugString());
    REQUIRE(google::protobuf::util::MessageDifferencer::Equals(*want, got));
    w.last_delivered_rev = w.cur_rev;
    ++w.cur_idx;
  }

  void OnResponse(ModelStream& s, const WatchResponse& r) {
    INFO(Replay() << "\nresponse " << r.ShortDebugString());
    REQUIRE(r.has_header());
    if (r.created()) {
      REQUIRE_FALSE(s.pending.empty());
      const PendingCreate p = s.pending.front();
      s.pending.pop_front();
      REQUIRE(r.header().revision() == p.header_rev);
      REQUIRE(r.events_size() == 0);
      KeyRange range{p.args.key.empty() ? kNul : p.args.key, p.args.range_end};
      std::string reason;
      if (range.IsEmpty()) {
        reason = "mvcc: watcher range is empty";
      } else if (p.args.watch_id != 0 && s.active.count(p.args.watch_id) != 0) {
        reason = "mvcc: duplicate watch ID provided on the WatchStream";
      } else if (s.active.size() >= options_.watchers_per_stream_max) {
        reason = "kvd: too many watchers on this watch stream";
      }
      if (!reason.empty()) {
        REQUIRE(r.canceled());
        REQUIRE(r.watch_id() == -1);
        REQUIRE(r.cancel_reason() == reason);
        return;
      }
      REQUIRE_FALSE(r.canceled());
      int64_t id = p.args.watch_id;
      if (id == 0) {
        while (s.active.count(s.next_auto) != 0) ++s.next_auto;
        id = s.next_auto++;
      }
      REQUIRE(r.watch_id() == id);
      ModelWatcher w;
      w.args = p.args;
      w.range = range;
      const int64_t start = std::max<int64_t>(p.args.start_revision, 0);
      w.start = (start == 0) ? p.header_rev + 1 : start;
      s.active.emplace(id, std::move(w));
      return;
    }
    if (r.watch_id() == -1) {
      REQUIRE(r.events_size() == 0);
      REQUIRE(r.header().revision() <= history_->CurrentRevision());
      ++s.progress_answered;
      return;
    }
    auto it = s.active.find(r.watch_id());
    REQUIRE(it != s.active.end());
    ModelWatcher& w = it->second;
    if (r.canceled()) {
      if (r.compact_revision() != 0) {
        REQUIRE(r.header().revision() == 0);
        REQUIRE(compactions_.count(r.compact_revision()) == 1);
        // It was canceled because the revision it needed next was compacted.
        REQUIRE(std::max(w.start, w.last_delivered_rev + 1) < r.compact_revision());
      } else {
        // Only after a cancel request for this id (an explicit id may have been reused after a
        // compaction cancel the client had not read yet when it sent the cancel).
        REQUIRE(s.cancels_sent[r.watch_id()] > 0);
        --s.cancels_sent[r.watch_id()];
      }
      REQUIRE_FALSE(w.in_fragment);
      ++finished_;
      s.active.erase(it);
      return;
    }
    if (r.events_size() == 0) {
      REQUIRE(w.args.progress_notify);  // a progress notification
      REQUIRE_FALSE(w.in_fragment);
      return;
    }
    REQUIRE(r.header().revision() >= r.events(r.events_size() - 1).kv().mod_revision());
    if (r.fragment() || w.in_fragment) REQUIRE(w.args.fragment);
    for (const auto& ev : r.events()) w.fragments.push_back(ev);
    if (w.args.fragment && r.events_size() > 1) {
      REQUIRE(r.ByteSizeLong() < options_.fragment_bytes_threshold);
    }
    if (r.fragment()) {
      w.in_fragment = true;
      return;
    }
    w.in_fragment = false;
    std::set<int64_t> revs;
    delivered_events_ += w.fragments.size();
    for (const auto& ev : w.fragments) {
      revs.insert(ev.kv().mod_revision());
      Consume(w, ev);
    }
    w.fragments.clear();
    REQUIRE(static_cast<int64_t>(revs.size()) <= options_.catchup_revisions_max);
    // Atomic per revision: nothing of the last revision is left for a later response.
    auto next = NextExpected(w);
    if (next.has_value()) REQUIRE(next->kv().mod_revision() > w.last_delivered_rev);
  }

  // The watcher has seen everything up to the current revision.
  void CheckComplete(ModelWatcher& w) {
    auto next = NextExpected(w);
    INFO(Replay() << "\nwatcher " << w.args.key << " .. " << w.args.range_end);
    REQUIRE_FALSE(w.in_fragment);
    REQUIRE_FALSE(next.has_value());
  }

  std::string Replay() const {
    std::ostringstream os;
    os << "replay: KV_WATCH_SEED=" << seed_ << " ./kvstore_watch_test '[watch-random]'";
    return os.str();
  }

  std::set<int64_t> compactions_;
  size_t finished_ = 0;
  size_t delivered_events_ = 0;

 private:
  uint64_t seed_;
  WatchOptions options_;
  FakeHistory* history_;
};

void RunSeed(uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto pick = [&](uint64_t n) { return static_cast<size_t>(rng() % n); };
  const auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };

  WatchOptions o;
  o.stream_event_bytes_max = 200 + pick(3000);
  o.catchup_revisions_max = static_cast<int64_t>(1 + pick(6));
  o.fragment_bytes_threshold = 150 + pick(400);
  o.watchers_per_stream_max = 4 + pick(12);
  o.stream_control_responses_max = 100000;
  Fixture f(o);
  Checker checker(seed, o, &f.history);
  INFO(checker.Replay());

  std::vector<ModelStream> streams(3);
  for (size_t i = 0; i < streams.size(); ++i) {
    streams[i].stream = f.Open();
    REQUIRE(streams[i].stream != nullptr);
    streams[i].poll_every = i == 0 ? 1 : static_cast<int>(2 + pick(20));
  }
  const auto poll = [&](ModelStream& s, size_t max) {
    std::vector<WatchResponse> out;
    s.stream->Poll(max, &out);
    for (const auto& r : out) checker.OnResponse(s, r);
  };
  const auto random_range = [&](CreateArgs* a) {
    const std::string& k = kKeys[pick(kKeys.size())];
    switch (pick(6)) {
      case 0:
        a->key = k;
        break;
      case 1:
        a->key = k;
        a->range_end = PrefixRangeEnd(k);
        break;
      case 2:
        a->key = k;
        a->range_end = kKeys[pick(kKeys.size())];  // may be empty: rejected
        break;
      case 3:
        a->key = k;
        a->range_end = kNul;
        break;
      case 4:
        a->key = chance(50) ? kNul : "";
        a->range_end = kNul;
        break;
      default:
        a->key = "";
        break;
    }
  };

  const int steps = 400;
  for (int step = 0; step < steps; ++step) {
    const size_t op = pick(100);
    ModelStream& s = streams[pick(streams.size())];
    if (op < 40) {
      std::vector<FakeHistory::Op> ops;
      const size_t n = 1 + pick(3);
      std::set<std::string> used;
      for (size_t i = 0; i < n; ++i) {
        const std::string& k = kKeys[pick(kKeys.size())];
        if (!used.insert(k).second) continue;
        ops.push_back({!chance(25), k, std::string(pick(120), static_cast<char>('a' + pick(26)))});
      }
      f.history.Apply(ops);
    } else if (op < 55) {
      CreateArgs a;
      random_range(&a);
      const int64_t cur = f.history.CurrentRevision();
      a.start_revision =
          chance(40) ? 0 : static_cast<int64_t>(pick(static_cast<uint64_t>(cur + 4)));
      if (chance(20)) a.watch_id = static_cast<int64_t>(100 + pick(4));
      a.prev_kv = chance(40);
      a.fragment = chance(40);
      a.no_put = chance(10);
      a.no_delete = chance(10);
      a.progress_notify = chance(20);
      REQUIRE(s.stream->HandleRequest(CreateReq(a)).ok());
      s.pending.push_back({a, f.store.ObservedRevision()});
    } else if (op < 62) {
      // Cancel a watcher the checker knows, or an unknown id (no response expected).
      int64_t id = 1000 + static_cast<int64_t>(pick(10));
      if (!s.active.empty() && chance(80)) {
        auto it = s.active.begin();
        std::advance(it, static_cast<long>(pick(s.active.size())));
        id = it->first;
      }
      auto it = s.active.find(id);
      if (it != s.active.end()) {
        if (it->second.user_canceled) continue;
        it->second.user_canceled = true;
      } else if (id < 1000) {
        continue;
      }
      ++s.cancels_sent[id];
      REQUIRE(s.stream->HandleRequest(CancelReq(id)).ok());
    } else if (op < 65) {
      const int64_t cur = f.history.CurrentRevision();
      const int64_t c = cur - static_cast<int64_t>(pick(5));
      if (c > f.history.CompactRevision()) {
        f.history.Compact(c);
        checker.compactions_.insert(c);
      }
    } else if (op < 68) {
      REQUIRE(s.stream->HandleRequest(ProgressReq()).ok());
      ++s.progress_requested;
    } else if (op < 70) {
      f.store.ProgressTick();
    } else if (op < 85) {
      REQUIRE(f.store.SyncStep(1 + pick(20)).status.ok());
    } else {
      for (auto& st : streams) {
        if (step % st.poll_every == 0) poll(st, 1 + pick(30));
      }
    }
  }

  // Quiesce: consumers read everything, catch-up runs until every watcher is synced.
  for (int round = 0;; ++round) {
    REQUIRE(round < 100000);
    for (auto& st : streams) poll(st, 1000);
    const SyncResult r = f.store.SyncStep(50);
    REQUIRE(r.status.ok());
    bool queued = false;
    for (auto& st : streams) queued = queued || st.stream->QueuedResponses() > 0;
    if (r.watchers_unsynced == 0 && !queued) break;
  }
  size_t live = 0;
  for (auto& st : streams) {
    REQUIRE(st.pending.empty());
    CHECK(st.progress_answered == st.progress_requested);
    for (auto& [id, w] : st.active) {
      checker.CheckComplete(w);
      ++live;
    }
  }
  CHECK(f.store.Metrics().watchers == live);
}

TEST_CASE("watch randomized: every watcher sees exactly its history", "[watch][watch-random]") {
  // Goal: no gap, duplicate, reordering or split revision under random load, for many seeds.
  if (const char* env = std::getenv("KV_WATCH_SEED"); env != nullptr) {
    RunSeed(std::strtoull(env, nullptr, 10));
    return;
  }
  for (uint64_t seed = 1; seed <= 200; ++seed) RunSeed(seed);
}

}  // namespace
}  // namespace kvstore::testing
