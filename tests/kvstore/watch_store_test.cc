// One test case per rule of etcd's watch semantics, against an in-memory History.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/kvstore/watch_test_util.h"

// g++ 12 flags designated initializers that leave members to their default member initializers
// (CreateArgs{.key = "k"}) as missing; those defaults are intended.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace kvstore::testing {
namespace {

using etcdserverpb::WatchResponse;

// Returns the created response expected as the only response, and its watch id.
int64_t CreateOk(WatchStream& s, const CreateArgs& a) {
  REQUIRE(s.HandleRequest(CreateReq(a)).ok());
  auto rs = Drain(s);
  REQUIRE(rs.size() >= 1);
  REQUIRE(rs[0].created());
  REQUIRE_FALSE(rs[0].canceled());
  return rs[0].watch_id();
}

std::vector<std::string> Keys(const WatchResponse& r) {
  std::vector<std::string> keys;
  for (const auto& ev : r.events()) keys.push_back(ev.kv().key());
  return keys;
}

TEST_CASE("watch ids: auto ids count up from 0 and skip ids in use", "[watch]") {
  // Goal: etcd's per-stream id assignment (0, explicit 100, then 1, 2, skipping explicit 3).
  Fixture f;
  auto s = f.Open();
  CHECK(CreateOk(*s, {.key = "a"}) == 0);
  CHECK(CreateOk(*s, {.key = "a", .watch_id = 100}) == 100);
  CHECK(CreateOk(*s, {.key = "a"}) == 1);
  CHECK(CreateOk(*s, {.key = "a", .watch_id = 3}) == 3);
  CHECK(CreateOk(*s, {.key = "a"}) == 2);
  CHECK(CreateOk(*s, {.key = "a"}) == 4);  // 3 is in use
  // Ids are per stream: another stream starts again at 0.
  auto s2 = f.Open();
  CHECK(CreateOk(*s2, {.key = "a"}) == 0);
  CHECK(f.store.Metrics().watchers == 7);
}

TEST_CASE("watch create: duplicate id and empty range give created+canceled with id -1",
          "[watch]") {
  // Goal: the two etcd rejection shapes, with the exact reasons and a header at current rev.
  Fixture f;
  f.history.Put("x", "1");
  auto s = f.Open();
  CreateOk(*s, {.key = "a", .watch_id = 7});
  REQUIRE(s->HandleRequest(CreateReq({.key = "b", .watch_id = 7})).ok());
  REQUIRE(s->HandleRequest(CreateReq({.key = "b", .range_end = "a"})).ok());
  REQUIRE(s->HandleRequest(CreateReq({.key = "b", .range_end = "b"})).ok());
  auto rs = Drain(*s);
  REQUIRE(rs.size() == 3);
  for (const auto& r : rs) {
    CHECK(r.created());
    CHECK(r.canceled());
    CHECK(r.watch_id() == -1);
    CHECK(r.header().revision() == 2);
  }
  CHECK(rs[0].cancel_reason() == "mvcc: duplicate watch ID provided on the WatchStream");
  CHECK(rs[1].cancel_reason() == "mvcc: watcher range is empty");
  CHECK(rs[2].cancel_reason() == "mvcc: watcher range is empty");
  CHECK(f.store.Metrics().watchers == 1);
}

TEST_CASE("watch create: server-side rejections keep FIFO order with other creates", "[watch]") {
  // Goal: RejectCreate queues etcd's rejection shape between the neighbouring creates' answers.
  Fixture f;
  auto s = f.Open();
  REQUIRE(s->HandleRequest(CreateReq({.key = "a"})).ok());
  REQUIRE(s->RejectCreate("etcdserver: permission denied").ok());
  REQUIRE(s->HandleRequest(CreateReq({.key = "b"})).ok());
  auto rs = Drain(*s);
  REQUIRE(rs.size() == 3);
  CHECK(rs[0].watch_id() == 0);
  CHECK(rs[1].created());
  CHECK(rs[1].canceled());
  CHECK(rs[1].watch_id() == -1);
  CHECK(rs[1].cancel_reason() == "etcdserver: permission denied");
  CHECK(rs[1].header().revision() == 1);
  CHECK(rs[2].watch_id() == 1);
  CHECK(f.store.Metrics().watchers == 2);
}

TEST_CASE("watch create: an empty key means \"\\0\"", "[watch]") {
  // Goal: key "" with range_end "\0" watches every key; key "" alone watches the key "\0".
  Fixture f;
  auto s = f.Open();
  const int64_t all = CreateOk(*s, {.key = "", .range_end = std::string(1, '\0')});
  const int64_t nul = CreateOk(*s, {.key = ""});
  f.history.Put("zzz", "1");
  f.history.Put(std::string(1, '\0'), "2");
  std::map<int64_t, std::vector<std::string>> keys;
  for (const auto& r : Drain(*s)) {
    for (const auto& k : Keys(r)) keys[r.watch_id()].push_back(k);
  }
  CHECK(keys[all] == std::vector<std::string>{"zzz", std::string(1, '\0')});
  CHECK(keys[nul] == std::vector<std::string>{std::string(1, '\0')});
}

TEST_CASE("watch create: created comes first, header at current revision", "[watch]") {
  // Goal: the created response precedes every event and carries the current revision, even
  // with a past start_revision whose replay is ready at once.
  Fixture f;
  f.history.Put("k", "1");  // rev 2
  f.history.Put("k", "2");  // rev 3
  auto s = f.Open();
  REQUIRE(s->HandleRequest(CreateReq({.key = "k", .start_revision = 2})).ok());
  f.history.Put("k", "3");  // rev 4: arrives while the watcher still catches up
  REQUIRE(f.store.SyncStep(100).status.ok());
  auto rs = Drain(*s);
  REQUIRE(rs.size() >= 2);
  CHECK(rs[0].created());
  CHECK(rs[0].header().revision() == 3);
  CHECK(rs[0].events_size() == 0);
  std::vector<int64_t> revs;
  for (size_t i = 1; i < rs.size(); ++i) {
    for (const auto& ev : rs[i].events()) revs.push_back(ev.kv().mod_revision());
  }
  CHECK(revs == std::vector<int64_t>{2, 3, 4});
}

TEST_CASE("watch start_revision: 0 is future only, past replays inclusive, future waits",
          "[watch]") {
  // Goal: the three start_revision cases.
  Fixture f;
  f.history.Put("k", "1");  // 2
  f.history.Put("k", "2");  // 3
  auto s = f.Open();
  const int64_t now = CreateOk(*s, {.key = "k"});
  const int64_t past = CreateOk(*s, {.key = "k", .start_revision = 3});
  const int64_t future = CreateOk(*s, {.key = "k", .start_revision = 6});
  REQUIRE(f.store.SyncStep(100).status.ok());
  for (int i = 0; i < 4; ++i) f.history.Put("k", "v");  // 4..7
  REQUIRE(f.store.SyncStep(100).status.ok());
  std::map<int64_t, std::vector<int64_t>> got;
  for (const auto& r : Drain(*s)) {
    for (const auto& ev : r.events()) got[r.watch_id()].push_back(ev.kv().mod_revision());
  }
  CHECK(got[now] == std::vector<int64_t>{4, 5, 6, 7});
  CHECK(got[past] == std::vector<int64_t>{3, 4, 5, 6, 7});
  CHECK(got[future] == std::vector<int64_t>{6, 7});
}

TEST_CASE("watch cancel: existing id answered, unknown id ignored", "[watch]") {
  // Goal: cancel semantics and that a canceled watcher gets nothing more.
  Fixture f;
  auto s = f.Open();
  const int64_t id = CreateOk(*s, {.key = "k", .watch_id = 9});
  f.history.Put("k", "1");  // 2
  REQUIRE(s->HandleRequest(CancelReq(id)).ok());
  REQUIRE(s->HandleRequest(CancelReq(42)).ok());
  f.history.Put("k", "2");
  auto rs = Drain(*s);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].events_size() == 1);
  CHECK(rs[1].watch_id() == id);
  CHECK(rs[1].canceled());
  CHECK_FALSE(rs[1].created());
  CHECK(rs[1].header().revision() == 2);
  CHECK(f.store.Metrics().watchers == 0);
  // The id is free again.
  CHECK(CreateOk(*s, {.key = "k", .watch_id = 9}) == 9);
}

TEST_CASE("watch progress_request: watch_id -1 at the current revision, only when asked",
          "[watch]") {
  // Goal: progress requests are answered once with the broadcast id; nothing unsolicited.
  Fixture f;
  auto s = f.Open();
  CreateOk(*s, {.key = "k"});
  f.history.Put("other", "1");
  CHECK(Drain(*s).empty());
  REQUIRE(s->HandleRequest(ProgressReq()).ok());
  auto rs = Drain(*s);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].watch_id() == -1);
  CHECK(rs[0].header().revision() == 2);
  CHECK(rs[0].events_size() == 0);
}

TEST_CASE("watch progress_notify: ticks reach quiet synced progress watchers only", "[watch]") {
  // Goal: ProgressTick sends {watch_id, current rev} to synced progress_notify watchers that had
  // no events since the last tick; never to others.
  Fixture f;
  f.history.Put("k", "1");  // 2
  auto s = f.Open();
  const int64_t quiet = CreateOk(*s, {.key = "q", .progress_notify = true});
  const int64_t busy = CreateOk(*s, {.key = "k", .progress_notify = true});
  CreateOk(*s, {.key = "k"});                                                // no notify
  CreateOk(*s, {.key = "k", .start_revision = 2, .progress_notify = true});  // unsynced
  f.history.Put("k", "2");                                                   // 3
  Drain(*s);
  f.store.ProgressTick();
  auto rs = Drain(*s);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].watch_id() == quiet);
  CHECK(rs[0].header().revision() == 3);
  CHECK(rs[0].events_size() == 0);
  // Next tick: the busy watcher had no events since the previous tick, so it gets one too.
  f.store.ProgressTick();
  std::vector<int64_t> ids;
  for (const auto& r : Drain(*s)) ids.push_back(r.watch_id());
  CHECK(ids == std::vector<int64_t>{quiet, busy});
}

TEST_CASE("watch filters: NOPUT and NODELETE, fully filtered responses not sent", "[watch]") {
  // Goal: filters drop event types and a response left empty is not sent.
  Fixture f;
  auto s = f.Open();
  const int64_t noput = CreateOk(*s, {.key = "a", .range_end = "z", .no_put = true});
  const int64_t nodel = CreateOk(*s, {.key = "a", .range_end = "z", .no_delete = true});
  // Drained after each revision: a consumer that keeps up gets one response per revision.
  std::vector<WatchResponse> rs;
  const auto drain = [&] {
    for (auto& r : Drain(*s)) rs.push_back(std::move(r));
  };
  f.history.Put("b", "1");  // 2
  drain();
  f.history.Apply({{true, "c", "1"}, {false, "b", ""}});  // 3: put c, delete b
  drain();
  f.history.Delete("c");  // 4
  drain();
  std::set<std::pair<int64_t, int64_t>> seen;  // (watch id, revision)
  for (const auto& r : rs) {
    for (const auto& ev : r.events()) {
      if (r.watch_id() == noput) CHECK(ev.type() == mvccpb::Event::DELETE);
      if (r.watch_id() == nodel) CHECK(ev.type() == mvccpb::Event::PUT);
    }
    CHECK(r.events_size() == 1);
    seen.emplace(r.watch_id(), r.header().revision());
  }
  CHECK(seen ==
        std::set<std::pair<int64_t, int64_t>>{{nodel, 2}, {noput, 3}, {nodel, 3}, {noput, 4}});
}

TEST_CASE("watch prev_kv: present when asked on non-creates only, stripped otherwise", "[watch]") {
  // Goal: prev_kv semantics on live and catch-up delivery.
  Fixture f;
  auto s = f.Open();
  const int64_t with = CreateOk(*s, {.key = "k", .prev_kv = true});
  const int64_t without = CreateOk(*s, {.key = "k"});
  f.history.Put("k", "1");  // 2 create
  f.history.Put("k", "2");  // 3 update
  f.history.Delete("k");    // 4 delete
  f.history.Put("k", "3");  // 5 re-create
  auto rs = Drain(*s);
  const int64_t replay = CreateOk(*s, {.key = "k", .start_revision = 2, .prev_kv = true});
  REQUIRE(f.store.SyncStep(100).status.ok());
  for (auto& r : Drain(*s)) rs.push_back(r);
  std::map<int64_t, std::vector<std::string>> prev;  // watch id -> prev value or "-"
  for (const auto& r : rs) {
    for (const auto& ev : r.events()) {
      prev[r.watch_id()].push_back(ev.has_prev_kv() ? ev.prev_kv().value() : "-");
    }
  }
  const std::vector<std::string> expected{"-", "1", "2", "-"};
  CHECK(prev[with] == expected);
  CHECK(prev[replay] == expected);
  CHECK(prev[without] == std::vector<std::string>{"-", "-", "-", "-"});
}

TEST_CASE("watch compaction: cancel with compact_revision and header revision 0", "[watch]") {
  // Goal: a watcher whose next revision is compacted gets {canceled, compact_revision} after
  // its created response, with a zero-revision header, and is removed.
  Fixture f;
  for (int i = 0; i < 5; ++i) f.history.Put("k", "v");  // 2..6
  f.history.Compact(4);
  auto s = f.Open();
  REQUIRE(s->HandleRequest(CreateReq({.key = "k", .start_revision = 3})).ok());
  auto rs = Drain(*s);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].created());
  CHECK(rs[1].canceled());
  CHECK(rs[1].compact_revision() == 4);
  CHECK(rs[1].watch_id() == rs[0].watch_id());
  CHECK(rs[1].has_header());
  CHECK(rs[1].header().revision() == 0);
  CHECK(f.store.Metrics().watchers == 0);
  const int64_t ok_at_compact = CreateOk(*s, {.key = "k", .start_revision = 4});
  CHECK(f.store.Metrics().watchers == 1);

  // A watcher still catching up when a compaction passes it is canceled too.
  f.history.Compact(6);
  rs = Drain(*s);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].watch_id() == ok_at_compact);
  CHECK(rs[0].compact_revision() == 6);
  CHECK(f.store.Metrics().watchers == 0);
  CHECK(f.store.Metrics().compaction_cancels == 2);
}

TEST_CASE("watch fragment: large responses split only when asked and with >= 2 events", "[watch]") {
  // Goal: fragmenting rules: parts below the threshold, all but the last flagged, order kept.
  WatchOptions o;
  o.fragment_bytes_threshold = 300;
  Fixture f(o);
  auto s = f.Open();
  const int64_t frag = CreateOk(*s, {.key = "a", .range_end = "z", .fragment = true});
  const int64_t whole = CreateOk(*s, {.key = "a", .range_end = "z"});
  std::vector<FakeHistory::Op> ops;
  for (char c = 'a'; c < 'f'; ++c) ops.push_back({true, std::string(1, c), std::string(100, c)});
  f.history.Apply(ops);                        // 2: five ~110-byte events
  f.history.Put("b", std::string(1000, 'x'));  // 3: one event above the threshold
  auto rs = Drain(*s);
  std::vector<WatchResponse> frags;
  std::vector<WatchResponse> wholes;
  for (auto& r : rs) (r.watch_id() == frag ? frags : wholes).push_back(r);
  REQUIRE(wholes.size() == 2);
  CHECK(wholes[0].watch_id() == whole);
  CHECK(wholes[0].events_size() == 5);
  CHECK_FALSE(wholes[0].fragment());
  REQUIRE(frags.size() >= 4);  // at least 3 parts for rev 2, then 1 for rev 3
  std::vector<std::string> keys;
  for (size_t i = 0; i + 1 < frags.size(); ++i) {
    CHECK(frags[i].header().revision() == 2);
    CHECK(frags[i].fragment() == (i + 2 < frags.size()));
    CHECK(frags[i].ByteSizeLong() < 300);
    for (const auto& k : Keys(frags[i])) keys.push_back(k);
  }
  CHECK(keys == std::vector<std::string>{"a", "b", "c", "d", "e"});
  CHECK(frags.back().events_size() == 1);  // a single large event is never split
  CHECK_FALSE(frags.back().fragment());
  CHECK(frags.back().header().revision() == 3);
}

TEST_CASE("watch live delivery: one response per revision and per watcher", "[watch]") {
  // Goal: synced watchers of a consumer that keeps up get all events of a revision in one
  // response with header = that revision, in sub-revision order, and each watcher its own.
  Fixture f;
  auto s = f.Open();
  const int64_t w1 = CreateOk(*s, {.key = "k", .range_end = "l"});
  const int64_t w2 = CreateOk(*s, {.key = "k2"});
  std::map<int64_t, std::vector<WatchResponse>> by_id;
  f.history.Apply({{true, "k2", "a"}, {true, "k1", "b"}});  // 2
  for (const auto& r : Drain(*s)) by_id[r.watch_id()].push_back(r);
  f.history.Put("k3", "c");  // 3
  for (const auto& r : Drain(*s)) by_id[r.watch_id()].push_back(r);
  REQUIRE(by_id[w1].size() == 2);
  REQUIRE(by_id[w2].size() == 1);
  CHECK(by_id[w1][0].header().revision() == 2);
  CHECK(Keys(by_id[w1][0]) == std::vector<std::string>{"k2", "k1"});
  CHECK(by_id[w1][1].header().revision() == 3);
  CHECK(Keys(by_id[w1][1]) == std::vector<std::string>{"k3"});
  CHECK(by_id[w2][0].header().revision() == 2);
  CHECK(Keys(by_id[w2][0]) == std::vector<std::string>{"k2"});
}

TEST_CASE("watch coalescing: a consumer that is behind gets one response per watcher", "[watch]") {
  // Goal: revisions queued while nothing is polled merge into each watcher's queued response
  // (events in revision order, header = newest revision, watchers in first-queued order), and
  // the merged bytes are exactly the message a client parses.
  Fixture f;
  auto s = f.Open();
  const int64_t a = CreateOk(*s, {.key = "k", .range_end = "l"});
  const int64_t b = CreateOk(*s, {.key = "k2"});
  f.history.Put("k1", "1");                                 // 2: a
  f.history.Apply({{true, "k2", "2"}, {true, "k3", "3"}});  // 3: a (2 events), b
  f.history.Put("k2", "4");                                 // 4: a, b
  CHECK(s->QueuedResponses() == 2);
  const auto before = f.store.Metrics();
  std::vector<EncodedWatchResponse> encoded;
  REQUIRE(s->PollEncoded(64, &encoded) == 2);
  std::vector<WatchResponse> rs;
  for (const auto& e : encoded) {
    std::string bytes;
    e.AppendTo(&bytes);
    CHECK(bytes.size() == e.ByteSize());
    REQUIRE(rs.emplace_back().ParseFromString(bytes));
  }
  CHECK(rs[0].watch_id() == a);
  CHECK(rs[0].header().revision() == 4);
  CHECK(Keys(rs[0]) == std::vector<std::string>{"k1", "k2", "k3", "k2"});
  std::vector<int64_t> revs;
  for (const auto& ev : rs[0].events()) revs.push_back(ev.kv().mod_revision());
  CHECK(revs == std::vector<int64_t>{2, 3, 3, 4});
  CHECK(rs[1].watch_id() == b);
  CHECK(rs[1].header().revision() == 4);
  CHECK(Keys(rs[1]) == std::vector<std::string>{"k2", "k2"});
  const auto after = f.store.Metrics();
  CHECK(after.responses_sent - before.responses_sent == 2);
  CHECK(after.events_sent - before.events_sent == 6);
}

TEST_CASE(
    "watch coalescing: never into a polled response, across a progress response, or "
    "past its bounds",
    "[watch]") {
  // Goal: a merge only ever extends the watcher's last queued events response: one already
  // polled, one followed by the watcher's progress notification, one that would exceed
  // coalesce_bytes_max or span catchup_revisions_max revisions starts a new response.
  const auto revisions_of = [](const std::vector<WatchResponse>& rs) {
    std::vector<std::vector<int64_t>> out;
    for (const auto& r : rs) {
      auto& revs = out.emplace_back();
      for (const auto& ev : r.events()) revs.push_back(ev.kv().mod_revision());
      if (r.events_size() == 0) revs.push_back(-r.header().revision());  // progress: -rev
    }
    return out;
  };
  // One watcher on k, `puts` puts of k (revisions 2, 3, ...) with nothing polled meanwhile.
  const auto unpolled_puts = [&](const WatchOptions& o, int puts) {
    Fixture f(o);
    auto s = f.Open();
    CreateOk(*s, {.key = "k"});
    for (int i = 0; i < puts; ++i) f.history.Put("k", "v");
    return revisions_of(Drain(*s));
  };
  SECTION("polled") {
    Fixture f;
    auto s = f.Open();
    CreateOk(*s, {.key = "k"});
    f.history.Put("k", "1");  // 2
    std::vector<WatchResponse> first;
    REQUIRE(s->Poll(1, &first) == 1);  // being written: 3 must not join it
    f.history.Put("k", "2");           // 3
    f.history.Put("k", "3");           // 4
    CHECK(revisions_of(first) == std::vector<std::vector<int64_t>>{{2}});
    CHECK(revisions_of(Drain(*s)) == std::vector<std::vector<int64_t>>{{3, 4}});
  }
  SECTION("progress") {
    Fixture f;
    auto s = f.Open();
    CreateOk(*s, {.key = "k", .progress_notify = true});
    f.history.Put("k", "1");  // 2
    f.store.ProgressTick();   // had events: nothing
    f.store.ProgressTick();   // quiet since the last tick: progress at 2
    f.history.Put("k", "2");  // 3: after the progress response
    CHECK(revisions_of(Drain(*s)) == std::vector<std::vector<int64_t>>{{2}, {-2}, {3}});
  }
  SECTION("bytes") {
    Fixture probe;
    auto ps = probe.Open();
    CreateOk(*ps, {.key = "k"});
    probe.history.Put("k", "v");  // 2
    probe.history.Put("k", "v");  // 3
    std::vector<EncodedWatchResponse> two;
    REQUIRE(ps->PollEncoded(8, &two) == 1);
    WatchOptions o;
    o.coalesce_bytes_max = two[0].ByteSize();  // exactly two puts of "v" fit
    CHECK(unpolled_puts(o, 5) == std::vector<std::vector<int64_t>>{{2, 3}, {4, 5}, {6}});
    WatchOptions off;
    off.coalesce_bytes_max = 0;
    CHECK(unpolled_puts(off, 3) == std::vector<std::vector<int64_t>>{{2}, {3}, {4}});
  }
  SECTION("revisions") {
    WatchOptions o;
    o.catchup_revisions_max = 3;
    CHECK(unpolled_puts(o, 7) == std::vector<std::vector<int64_t>>{{2, 3, 4}, {5, 6, 7}, {8}});
  }
  SECTION("fragment threshold") {
    WatchOptions o;
    o.fragment_bytes_threshold = 40;  // below it for the merged response as well
    Fixture f(o);
    auto s = f.Open();
    CreateOk(*s, {.key = "k", .fragment = true});
    for (int i = 0; i < 6; ++i) f.history.Put("k", "v");  // 2..7
    std::vector<EncodedWatchResponse> encoded;
    while (s->PollEncoded(8, &encoded) > 0) {
    }
    size_t events = 0;
    for (const auto& e : encoded) {
      CHECK(e.ByteSize() < 40);
      events += e.events.size();
    }
    CHECK(events == 6);
    CHECK(encoded.size() < 6);  // some did merge
  }
}

TEST_CASE("watch encoded form: one revision's events are encoded once and shared", "[watch]") {
  // Goal: PollEncoded hands out head + event bytes that parse to the response etcd sends, the
  // bytes of an event are shared by every watcher getting it in the same shape (and differ for
  // prev_kv), and header_filler completes the head.
  WatchOptions o;
  o.header_filler = [](etcdserverpb::ResponseHeader* h) {
    h->set_cluster_id(7);
    h->set_member_id(9);
    h->set_raft_term(3);
  };
  Fixture f(o);
  auto s1 = f.Open();
  auto s2 = f.Open();
  const int64_t a = CreateOk(*s1, {.key = "k", .range_end = "l"});
  const int64_t b = CreateOk(*s2, {.key = "k1", .watch_id = 5});
  const int64_t c = CreateOk(*s2, {.key = "k1", .watch_id = 6, .prev_kv = true});
  std::vector<EncodedWatchResponse> e1, e2;
  const auto poll = [&] {  // after each revision: no coalescing
    while (s1->PollEncoded(64, &e1) > 0) {
    }
    while (s2->PollEncoded(64, &e2) > 0) {
    }
  };
  f.history.Put("k1", "v1");  // 2
  poll();
  f.history.Apply({{true, "k2", "x"}, {true, "k1", "v2"}});  // 3
  poll();
  REQUIRE(e1.size() == 2);  // a: revisions 2 and 3
  REQUIRE(e2.size() == 4);  // b and c: revisions 2 and 3 each
  const auto decode = [](const EncodedWatchResponse& e) {
    std::string bytes;
    e.AppendTo(&bytes);
    CHECK(bytes.size() == e.ByteSize());
    WatchResponse r;
    REQUIRE(r.ParseFromString(bytes));
    return r;
  };
  const WatchResponse a3 = decode(e1[1]);
  CHECK(a3.watch_id() == a);
  CHECK(a3.header().revision() == 3);
  CHECK(a3.header().cluster_id() == 7);
  CHECK(a3.header().member_id() == 9);
  CHECK(a3.header().raft_term() == 3);
  CHECK(Keys(a3) == std::vector<std::string>{"k2", "k1"});
  REQUIRE(e1[1].events.size() == 2);
  // The same revision-3 put of k1 without prev_kv: the very same bytes for a and b.
  std::map<int64_t, std::vector<const EncodedWatchResponse*>> by_id;
  for (const auto& e : e2) by_id[decode(e).watch_id()].push_back(&e);
  REQUIRE(by_id[b].size() == 2);
  REQUIRE(by_id[c].size() == 2);
  CHECK(by_id[b][1]->events.at(0).get() == e1[1].events.at(1).get());
  CHECK(by_id[b][0]->events.at(0).get() == e1[0].events.at(0).get());
  // With prev_kv: other bytes, and the previous value inside.
  CHECK(by_id[c][1]->events.at(0).get() != by_id[b][1]->events.at(0).get());
  const WatchResponse c3 = decode(*by_id[c][1]);
  REQUIRE(c3.events_size() == 1);
  CHECK(c3.events(0).prev_kv().value() == "v1");
  CHECK(decode(*by_id[b][1]).events(0).has_prev_kv() == false);
  // Byte-identical to the message built field by field (canonical field order).
  WatchResponse expected;
  expected.mutable_header()->set_cluster_id(7);
  expected.mutable_header()->set_member_id(9);
  expected.mutable_header()->set_revision(3);
  expected.mutable_header()->set_raft_term(3);
  expected.set_watch_id(c);
  *expected.add_events() = c3.events(0);
  std::string got;
  by_id[c][1]->AppendTo(&got);
  CHECK(got == expected.SerializeAsString());
}

TEST_CASE("watch catch-up: batches up to catchup_revisions_max revisions per response", "[watch]") {
  // Goal: unsynced watchers get many revisions per response with header = current revision,
  // nothing before SyncStep, and then go live.
  WatchOptions o;
  o.catchup_revisions_max = 2;
  Fixture f(o);
  for (int i = 0; i < 5; ++i) f.history.Put("k", std::to_string(i));  // 2..6
  auto s = f.Open();
  const int64_t id = CreateOk(*s, {.key = "k", .start_revision = 2});
  CHECK(f.store.Metrics().slow_watchers == 1);
  f.history.Put("k", "live");  // 7, not delivered live while unsynced
  CHECK(Drain(*s).empty());
  while (f.store.SyncStep(1000).watchers_unsynced > 0) {
  }
  CHECK(f.store.Metrics().slow_watchers == 0);
  f.history.Put("k", "live2");  // 8, live
  auto rs = Drain(*s);
  std::vector<std::vector<int64_t>> batches;
  for (const auto& r : rs) {
    CHECK(r.watch_id() == id);
    std::vector<int64_t> revs;
    for (const auto& ev : r.events()) revs.push_back(ev.kv().mod_revision());
    batches.push_back(revs);
    CHECK(r.header().revision() == (revs.back() == 8 ? 8 : 7));
  }
  CHECK(batches == std::vector<std::vector<int64_t>>{{2, 3}, {4, 5}, {6, 7}, {8}});
}

TEST_CASE("watch slow consumer: parked as victim, caught up with no gap or duplicate", "[watch]") {
  // Goal: a full stream queue parks only its own watcher; others stay live; the victim later
  // receives exactly the missed revisions once, even with writes racing the catch-up.
  WatchOptions o;
  o.stream_event_bytes_max = 400;
  Fixture f(o);
  auto slow = f.Open();
  auto fast = f.Open();
  CreateOk(*slow, {.key = "k", .range_end = "l"});
  CreateOk(*fast, {.key = "k", .range_end = "l"});
  std::vector<int64_t> fast_revs;
  std::vector<int64_t> slow_revs;
  const auto collect = [](WatchStream& s, std::vector<int64_t>* revs) {
    for (const auto& r : Drain(s)) {
      for (const auto& ev : r.events()) revs->push_back(ev.kv().mod_revision());
    }
  };
  for (int i = 0; i < 40; ++i) {
    f.history.Put("k" + std::to_string(i % 3), std::string(20, 'v'));  // 2..41
    collect(*fast, &fast_revs);
  }
  CHECK(f.store.Metrics().slow_watchers == 1);
  CHECK(f.store.Metrics().victims_parked == 1);
  // Catch up while writing more; the slow consumer reads a little between steps.
  int steps = 0;
  for (int i = 0; i < 20 || f.store.Metrics().slow_watchers > 0; ++i) {
    REQUIRE(++steps < 1000);
    if (i < 20) f.history.Put("k1", "x");  // 42..61
    collect(*slow, &slow_revs);
    collect(*fast, &fast_revs);
    REQUIRE(f.store.SyncStep(3).status.ok());
  }
  f.history.Put("k2", "last");  // 62, live for both
  collect(*slow, &slow_revs);
  collect(*fast, &fast_revs);
  std::vector<int64_t> all;
  for (int64_t r = 2; r <= 62; ++r) all.push_back(r);
  CHECK(fast_revs == all);
  CHECK(slow_revs == all);
}

TEST_CASE("watch slow fan-out: victims of one prefix share their catch-up reads", "[watch]") {
  // Goal: many watchers parked at the same revision catch up completely, with one History read
  // serving all watchers that need the same revisions.
  WatchOptions o;
  o.stream_event_bytes_max = 300;
  Fixture f(o);
  std::vector<std::unique_ptr<WatchStream>> streams;
  for (int i = 0; i < 50; ++i) {
    streams.push_back(f.Open());
    CreateOk(*streams.back(), {.key = "cfg/", .range_end = "cfg0"});
  }
  for (int i = 0; i < 40; ++i) f.history.Put("cfg/x", std::string(30, 'v'));  // 2..41
  CHECK(f.store.Metrics().slow_watchers == 50);
  std::vector<std::vector<int64_t>> revs(streams.size());
  const auto drain_all = [&] {
    for (size_t i = 0; i < streams.size(); ++i) {
      for (const auto& r : Drain(*streams[i])) {
        for (const auto& ev : r.events()) revs[i].push_back(ev.kv().mod_revision());
      }
    }
  };
  size_t reads = 0;
  size_t shared = 0;
  for (int step = 0; f.store.Metrics().slow_watchers > 0; ++step) {
    REQUIRE(step < 1000);
    drain_all();
    const SyncResult r = f.store.SyncStep(10000);
    REQUIRE(r.status.ok());
    reads += r.reads;
    shared += r.reads_shared;
  }
  drain_all();
  std::vector<int64_t> all;
  for (int64_t r = 2; r <= 41; ++r) all.push_back(r);
  for (const auto& got : revs) CHECK(got == all);
  CHECK(shared > 0);
  CHECK(reads < shared);
}

TEST_CASE("watch history replaced: live watchers catch up from the restored history", "[watch]") {
  // Goal: after a restore that skipped OnRevision calls, live watchers get the skipped revisions
  // from History (or a compaction cancel when those are gone) and then continue live.
  Fixture f;
  auto s = f.Open();
  const int64_t a = CreateOk(*s, {.key = "a"});
  const int64_t b = CreateOk(*s, {.key = "b", .start_revision = 5});
  f.history.Put("a", "1");  // 2, live
  f.history.set_observer(nullptr);
  for (int i = 0; i < 4; ++i) f.history.Put(i % 2 == 0 ? "a" : "b", "r");  // 3..6 unseen
  f.history.set_observer(&f.store);
  f.store.OnHistoryReplaced();
  CHECK(f.store.Metrics().slow_watchers == 2);
  CHECK(f.store.ObservedRevision() == 6);
  while (f.store.SyncStep(100).watchers_unsynced > 0) {
  }
  f.history.Put("b", "live");  // 7
  std::map<int64_t, std::vector<int64_t>> got;
  for (const auto& r : Drain(*s)) {
    for (const auto& ev : r.events()) got[r.watch_id()].push_back(ev.kv().mod_revision());
  }
  CHECK(got[a] == std::vector<int64_t>{2, 3, 5});
  CHECK(got[b] == std::vector<int64_t>{6, 7});

  // Restored past a compaction the watcher needed: it is canceled.
  f.history.set_observer(nullptr);
  f.history.Put("a", "x");  // 8
  f.history.Put("a", "y");  // 9
  f.history.Compact(9);
  f.history.set_observer(&f.store);
  f.store.OnHistoryReplaced();
  REQUIRE(f.store.SyncStep(100).status.ok());
  std::vector<int64_t> canceled;
  for (const auto& r : Drain(*s)) {
    if (r.canceled()) {
      CHECK(r.compact_revision() == 9);
      canceled.push_back(r.watch_id());
    }
  }
  std::sort(canceled.begin(), canceled.end());
  CHECK(canceled == std::vector<int64_t>{a, b});
}

TEST_CASE("watch bounds: queue bytes, control responses, watchers and streams are limited",
          "[watch]") {
  // Goal: every limit is enforced with a clear rejection instead of growth.
  WatchOptions o;
  o.stream_event_bytes_max = 1000;
  o.stream_control_responses_max = 4;
  o.watchers_per_stream_max = 3;
  o.watchers_total_max = 4;
  o.streams_max = 2;
  Fixture f(o);
  auto s1 = f.Open();
  auto s2 = f.Open();
  REQUIRE(s1 != nullptr);
  REQUIRE(s2 != nullptr);
  CHECK(f.Open() == nullptr);  // streams_max

  for (int i = 0; i < 3; ++i) CreateOk(*s1, {.key = "k"});
  REQUIRE(s1->HandleRequest(CreateReq({.key = "k"})).ok());
  auto rs = Drain(*s1);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].canceled());
  CHECK(rs[0].watch_id() == -1);
  CHECK(rs[0].cancel_reason() == "kvd: too many watchers on this watch stream");
  CreateOk(*s2, {.key = "k"});
  REQUIRE(s2->HandleRequest(CreateReq({.key = "k"})).ok());
  rs = Drain(*s2);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].cancel_reason() == "kvd: too many watchers on this member");

  // Control responses: a client that never reads is cut off.
  for (int i = 0; i < 4; ++i) REQUIRE(s2->HandleRequest(ProgressReq()).ok());
  Status st = s2->HandleRequest(ProgressReq());
  CHECK(st.code() == Code::kResourceExhausted);
  CHECK(s2->QueuedResponses() == 4);

  // Event bytes: the queue never holds more than the bound plus one response.
  for (int i = 0; i < 50; ++i) f.history.Put("k", std::string(100, 'v'));
  size_t bytes = 0;
  for (const auto& r : Drain(*s1)) bytes += r.ByteSizeLong();
  CHECK(bytes <= 1000 + 200);
  CHECK(bytes >= 500);
  CHECK(f.store.Metrics().slow_watchers == 4);
}

TEST_CASE("watch streams: closing removes watchers and silences notify", "[watch]") {
  // Goal: stream lifetime: notify on empty->non-empty, header filler at Poll, cleanup on close.
  WatchOptions o;
  o.header_filler = [](etcdserverpb::ResponseHeader* h) {
    h->set_cluster_id(11);
    h->set_member_id(22);
    h->set_raft_term(33);
  };
  Fixture f(o);
  std::atomic<int> notified{0};
  std::unique_ptr<WatchStream> s;
  REQUIRE(f.store.OpenStream([&] { ++notified; }, &s).ok());
  REQUIRE(s->HandleRequest(CreateReq({.key = "k"})).ok());
  CHECK(notified == 1);
  f.history.Put("k", "1");
  CHECK(notified == 1);  // queue was not empty
  auto rs = Drain(*s);
  REQUIRE(rs.size() == 2);
  CHECK(rs[1].header().cluster_id() == 11);
  CHECK(rs[1].header().member_id() == 22);
  CHECK(rs[1].header().raft_term() == 33);
  CHECK(rs[1].header().revision() == 2);
  f.history.Put("k", "2");
  CHECK(notified == 2);
  CHECK(f.store.Metrics().streams == 1);
  CHECK(f.store.Metrics().events_sent == 1);
  s.reset();
  CHECK(f.store.Metrics().streams == 0);
  CHECK(f.store.Metrics().watchers == 0);
  f.history.Put("k", "3");
  CHECK(notified == 2);
}

TEST_CASE("watch streams: notify runs without locks, so it may poll", "[watch]") {
  // Goal: a notify callback that drains its stream right away (no deadlock, nothing lost).
  Fixture f;
  std::unique_ptr<WatchStream> s;
  std::vector<etcdserverpb::WatchResponse> got;
  WatchStream* raw = nullptr;
  REQUIRE(f.store
              .OpenStream(
                  [&] {
                    while (raw->Poll(16, &got) > 0) {
                    }
                  },
                  &s)
              .ok());
  raw = s.get();
  REQUIRE(s->HandleRequest(CreateReq({.key = "k"})).ok());
  for (int i = 0; i < 5; ++i) f.history.Put("k", std::to_string(i));
  REQUIRE(got.size() == 6);
  CHECK(got[0].created());
  CHECK(got[5].events(0).kv().value() == "4");
  CHECK(s->QueuedResponses() == 0);
}

TEST_CASE("watch index: key, prefix and range watchers match exactly KeyRange::Contains",
          "[watch]") {
  // Goal: the fan-out index agrees with the range definition on edge cases (0xff bytes,
  // from-key, all keys, arbitrary ranges).
  Fixture f;
  auto s = f.Open();
  const std::string nul(1, '\0');
  const std::vector<KeyRange> ranges{
      {"a", ""},  {"a", "b"},   {"ab", "ac"}, {"a\xff", "b"}, {"\xff\xff", nul}, {"b", nul},
      {nul, nul}, {"a", "abc"}, {"ab", "b"},  {"abc", "abd"}, {"\xff", nul},     {"a\xff\xff", "b"},
  };
  std::map<int64_t, KeyRange> by_id;
  for (const auto& r : ranges) by_id[CreateOk(*s, {.key = r.key, .range_end = r.range_end})] = r;
  const std::vector<std::string> keys{"a",         "ab",        "abc",  "abd",         "a\xff",
                                      "a\xff\xff", "b",         "\xff", "c",           "\xff\xff",
                                      "aa",        "a\xff\x01", nul,    "\xff\xff\xff"};
  for (const auto& k : keys) {
    const int64_t rev = f.history.Put(k, "v");
    std::set<int64_t> got;
    for (const auto& r : Drain(*s)) {
      CHECK(r.header().revision() == rev);
      got.insert(r.watch_id());
    }
    std::set<int64_t> want;
    for (const auto& [id, r] : by_id) {
      if (r.Contains(k)) want.insert(id);
    }
    INFO("key " << k);
    CHECK(got == want);
  }
}

TEST_CASE("watch fan-out: 10,000 watchers on one prefix each get every revision", "[watch]") {
  // Goal: large fan-out is delivered completely (speed is measured in bench/storage).
  Fixture f;
  std::vector<std::unique_ptr<WatchStream>> streams;
  for (int i = 0; i < 10; ++i) streams.push_back(f.Open());
  for (int i = 0; i < 10000; ++i) {
    REQUIRE(streams[static_cast<size_t>(i % 10)]
                ->HandleRequest(CreateReq({.key = "cfg/", .range_end = "cfg0"}))
                .ok());
  }
  for (auto& s : streams) Drain(*s);
  for (int i = 0; i < 5; ++i) f.history.Put("cfg/" + std::to_string(i), "v");
  size_t events = 0;
  for (auto& s : streams) {
    for (const auto& r : Drain(*s)) events += static_cast<size_t>(r.events_size());
  }
  CHECK(events == 50000);
  CHECK(f.store.Metrics().slow_watchers == 0);
}

}  // namespace
}  // namespace kvstore::testing
