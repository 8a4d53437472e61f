// Apply batching is invisible: one random stream of entries applied in batches of random sizes
// and one entry per Apply gives the same results, the same observer calls (events included)
// and byte-identical column families. Guards the apply batch's shortcuts (plain puts written
// past the batch index, bulk deletes, commits forced in the middle of a batch).
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/table_properties.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kvstore/history.h"
#include "kvstore/mvcc_store.h"
#include "tests/kvstore/test_util.h"
#include "tests/support/temp_dir.h"

namespace {

// Every revision the observer is told of, in order, events serialized; compactions apart (one
// write reports only the newest of the compactions it holds).
struct CallLog : kvstore::HistoryObserver {
  bool want_events = true;
  std::vector<std::string> calls;
  std::vector<int64_t> compactions;
  bool WantsEvents() const override { return want_events; }
  void OnRevision(int64_t rev, const std::vector<mvccpb::Event>& events) override {
    std::string s = "rev " + std::to_string(rev) + ":";
    for (const auto& e : events) s += " " + e.ShortDebugString();
    calls.push_back(s);
  }
  void OnRevisionWithoutEvents(int64_t rev) override {
    calls.push_back("rev " + std::to_string(rev));
  }
  void OnCompacted(int64_t rev) override { compactions.push_back(rev); }
};

std::string DumpFamilies(kvstore::Engine& engine) {
  std::string out;
  for (const auto& family : kvstore::MvccStore::ColumnFamilies()) {
    std::unique_ptr<rocksdb::Iterator> it(
        engine.db()->NewIterator(rocksdb::ReadOptions(), engine.Cf(family)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      out += family + " " + it->key().ToString() + " = " + it->value().ToString() + "\n";
    }
    REQUIRE(it->status().ok());
  }
  return out;
}

// A stream over five keys: mostly plain puts (prev_kv, ignore_value, ignore_lease, leases that
// exist or not), mixed with lease grants, revokes and checkpoints, txns, deletes, ranges and
// compactions.
std::vector<kvdpb::InternalRequest> RandomStream(std::mt19937_64& rng, int n) {
  auto in = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const char* keys[] = {"a", "b", "c", "d", "e"};
  std::vector<kvdpb::InternalRequest> out;
  for (int i = 0; i < n; ++i) {
    kvdpb::InternalRequest r;
    const int p = in(0, 99);
    if (p < 70) {
      auto* put = r.mutable_put();
      put->set_key(keys[in(0, 4)]);
      put->set_value("v" + std::to_string(i));
      const int lease = in(0, 9);  // none, one of leases 1..4, or 99 which is never granted
      put->set_lease(lease < 5 ? 0 : (lease < 9 ? lease - 4 : 99));
      put->set_prev_kv(in(0, 1) == 1);
      if (in(0, 6) == 0) {
        put->set_ignore_value(true);
        put->clear_value();
      }
      if (in(0, 6) == 0) {
        put->set_ignore_lease(true);
        put->set_lease(0);
      }
    } else if (p < 78) {
      r.mutable_lease_grant()->set_id(in(1, 4));
      r.mutable_lease_grant()->set_ttl(100);
    } else if (p < 84) {
      r.mutable_lease_revoke()->set_id(in(1, 4));
    } else if (p < 90) {
      auto* txn = r.mutable_txn();
      auto* cmp = txn->add_compare();
      cmp->set_key(keys[in(0, 4)]);
      cmp->set_target(etcdserverpb::Compare::VERSION);
      cmp->set_result(etcdserverpb::Compare::GREATER);
      cmp->set_version(in(0, 3));
      auto* put = txn->add_success()->mutable_request_put();
      put->set_key(keys[in(0, 4)]);
      put->set_value("t" + std::to_string(i));
      put->set_prev_kv(true);
      auto* range = txn->add_failure()->mutable_request_range();
      range->set_key("a");
      range->set_range_end("z");
    } else if (p < 94) {
      r.mutable_delete_range()->set_key(keys[in(0, 4)]);
      if (in(0, 1) == 1) r.mutable_delete_range()->set_range_end("z");
      r.mutable_delete_range()->set_prev_kv(in(0, 1) == 1);
    } else if (p < 97) {
      r.mutable_range()->set_key("a");
      r.mutable_range()->set_range_end("z");
    } else if (p < 98) {
      r.mutable_compaction()->set_revision(in(1, i + 1));
    } else {
      r.mutable_lease_checkpoint()->add_checkpoints()->set_id(in(1, 4));
    }
    out.push_back(std::move(r));
  }
  return out;
}

struct Opened {
  std::unique_ptr<kvstore::Engine> engine;
  std::unique_ptr<kvstore::MvccStore> store;
  CallLog log;
};

}  // namespace

TEST_CASE("apply: batches of any size give the results, events and bytes of one entry per Apply",
          "[mvcc][batch]") {
  // Goal: no apply-batch shortcut changes what a client, a watcher or the disk sees.
  constexpr int kEntries = 2000;
  for (const uint64_t seed : {1u, 2u, 3u, 4u}) {
    for (const bool want_events : {true, false}) {
      // Seeds 3 and 4 keep values of more than 3 bytes in the kv CF only (values here are "v"
      // or "t" and the entry number: 2 to 5 bytes), so both kinds of latest record meet the
      // batch shortcuts.
      kvstore::StoreOptions opts;
      if (seed >= 3) opts.latest_value_bytes_max = 3;
      INFO("seed " << seed << (want_events ? " with events" : " without events"));
      std::mt19937_64 rng(seed);
      const std::vector<kvdpb::InternalRequest> reqs = RandomStream(rng, kEntries);
      kvtest::TempDir dir("batch-equivalence");
      Opened batched, single;
      REQUIRE(kvstore::MvccStore::OpenDir(dir.Sub("batched"), opts, &batched.engine, &batched.store)
                  .ok());
      REQUIRE(
          kvstore::MvccStore::OpenDir(dir.Sub("single"), opts, &single.engine, &single.store).ok());
      batched.log.want_events = single.log.want_events = want_events;
      batched.store->SetObserver(&batched.log);
      single.store->SetObserver(&single.log);

      std::vector<kvstore::ApplyResult> got_batched, got_single;
      for (size_t i = 0; i < reqs.size();) {
        const size_t n = std::uniform_int_distribution<size_t>(1, 60)(rng);
        std::vector<kvstore::ApplyEntry> entries;
        for (size_t j = i; j < reqs.size() && j < i + n; ++j) entries.push_back({j + 1, &reqs[j]});
        std::vector<kvstore::ApplyResult> res;
        REQUIRE(batched.store->Apply(entries, 0, &res).ok());
        for (auto& r : res) got_batched.push_back(std::move(r));
        i += entries.size();
      }
      for (size_t i = 0; i < reqs.size(); ++i) {
        const kvstore::ApplyEntry e{i + 1, &reqs[i]};
        std::vector<kvstore::ApplyResult> res;
        REQUIRE(single.store->Apply({&e, 1}, 0, &res).ok());
        got_single.push_back(std::move(res.at(0)));
      }

      REQUIRE(got_batched.size() == reqs.size());
      REQUIRE(got_single.size() == reqs.size());
      for (size_t i = 0; i < reqs.size(); ++i) {
        INFO("entry " << i << ": " << reqs[i].ShortDebugString());
        REQUIRE(got_batched[i].status == got_single[i].status);
        REQUIRE(got_batched[i].response.ShortDebugString() ==
                got_single[i].response.ShortDebugString());
      }
      CHECK(batched.log.calls == single.log.calls);
      // Each compaction reported for a batch is one the entries made, in order, and both end
      // at the same one.
      REQUIRE_FALSE(single.log.compactions.empty());
      REQUIRE_FALSE(batched.log.compactions.empty());
      CHECK(batched.log.compactions.back() == single.log.compactions.back());
      CHECK(std::includes(single.log.compactions.begin(), single.log.compactions.end(),
                          batched.log.compactions.begin(), batched.log.compactions.end()));
      CHECK(batched.store->CurrentRevision() == single.store->CurrentRevision());
      CHECK(batched.store->AppliedIndex() == single.store->AppliedIndex());
      CHECK(DumpFamilies(*batched.engine) == DumpFamilies(*single.engine));
      batched.store->SetObserver(nullptr);
      single.store->SetObserver(nullptr);
    }
  }
}

TEST_CASE("apply: values kept out of the latest CF change no response, event or kv record",
          "[mvcc][batch]") {
  // Goal: a store that keeps every value in the kv CF only (latest_value_bytes_max 0) answers,
  // announces (events with prev_kv, lease revokes included) and records exactly what a store
  // that copies them into the latest CF does; only the latest CF differs.
  constexpr int kEntries = 2000;
  for (const uint64_t seed : {1u, 2u}) {
    for (const bool want_events : {true, false}) {
      INFO("seed " << seed << (want_events ? " with events" : " without events"));
      std::mt19937_64 rng(seed);
      const std::vector<kvdpb::InternalRequest> reqs = RandomStream(rng, kEntries);
      kvtest::TempDir dir("latest-values");
      kvstore::StoreOptions out_of_line;
      out_of_line.latest_value_bytes_max = 0;
      Opened inline_store, kv_only;
      REQUIRE(kvstore::MvccStore::OpenDir(dir.Sub("inline"), {}, &inline_store.engine,
                                          &inline_store.store)
                  .ok());
      REQUIRE(kvstore::MvccStore::OpenDir(dir.Sub("kv-only"), out_of_line, &kv_only.engine,
                                          &kv_only.store)
                  .ok());
      inline_store.log.want_events = kv_only.log.want_events = want_events;
      inline_store.store->SetObserver(&inline_store.log);
      kv_only.store->SetObserver(&kv_only.log);
      for (size_t i = 0; i < reqs.size();) {
        const size_t n = std::uniform_int_distribution<size_t>(1, 60)(rng);
        std::vector<kvstore::ApplyEntry> entries;
        for (size_t j = i; j < reqs.size() && j < i + n; ++j) entries.push_back({j + 1, &reqs[j]});
        std::vector<kvstore::ApplyResult> a, b;
        REQUIRE(inline_store.store->Apply(entries, 0, &a).ok());
        REQUIRE(kv_only.store->Apply(entries, 0, &b).ok());
        REQUIRE(a.size() == b.size());
        for (size_t k = 0; k < a.size(); ++k) {
          INFO("entry " << i + k << ": " << reqs[i + k].ShortDebugString());
          REQUIRE(a[k].status == b[k].status);
          REQUIRE(a[k].response.ShortDebugString() == b[k].response.ShortDebugString());
        }
        i += entries.size();
      }
      CHECK(inline_store.log.calls == kv_only.log.calls);
      // Everything but the latest CF is byte for byte the same.
      auto without_latest = [](const std::string& dump) {
        std::string out;
        std::istringstream in(dump);
        for (std::string line; std::getline(in, line);) {
          if (line.rfind("mvcc_latest ", 0) != 0) out += line + "\n";
        }
        return out;
      };
      CHECK(without_latest(DumpFamilies(*inline_store.engine)) ==
            without_latest(DumpFamilies(*kv_only.engine)));
      CHECK(DumpFamilies(*inline_store.engine) != DumpFamilies(*kv_only.engine));
      inline_store.store->SetObserver(nullptr);
      kv_only.store->SetObserver(nullptr);
    }
  }
}

TEST_CASE("apply: a bulk delete leaves what the same delete inside a txn leaves", "[mvcc][batch]") {
  // Goal: a DeleteRange of >= 1024 keys (written past the batch index into a batch reserved up
  // front, its latest-CF deletes one range tombstone from the first to just after the last
  // victim) gives the results, events and logical column families of the same delete done key
  // by key inside a txn, keeps the writes of the entries before it in the same Apply, and
  // removes nothing outside its range: a bounded range, one ending exactly at a live key right
  // after its last victim, and an open-ended one.
  auto keys = [](const std::string& prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      char k[16];
      std::snprintf(k, sizeof k, "%05d", i);
      out.push_back(prefix + k);
    }
    return out;
  };
  auto in_txn = [](const kvdpb::InternalRequest& del) {
    etcdserverpb::TxnRequest txn;
    *txn.add_success()->mutable_request_delete_range() = del.delete_range();
    return kvtest::TxnReq(txn);
  };
  std::vector<kvdpb::InternalRequest> load = {kvtest::GrantReq(7, 100)};
  // Around the ranges: "b" and "b." sort before "b/", "b0" is the bounded range's end,
  // "b/01299\x01" is its last victim (the tombstone ends at "b/01299\x01\0"), "e" is after the
  // "d/" keys and inside the open-ended range.
  for (const char* k : {"b", "b.", "b0", "b/01299\x01", "c", "e"}) {
    load.push_back(kvtest::PutReq(k, "n"));
  }
  int i = 0;
  for (const auto& k : keys("b/", 1300)) {
    load.push_back(kvtest::PutReq(k, "v", i++ % 10 == 0 ? 7 : 0));  // some with a lease
  }
  for (const auto& k : keys("d/", 1100)) load.push_back(kvtest::PutReq(k, "w"));
  // A range ending exactly at the successor of its last victim, a live key: a tombstone that
  // ended any later would delete it.
  const std::string f_end = std::string("f/01099") + '\0';
  for (const auto& k : keys("f/", 1100)) load.push_back(kvtest::PutReq(k, "x"));
  load.push_back(kvtest::PutReq(f_end, "n"));
  // A txn's put is written to the batch index and commits nothing, so the bulk delete after it
  // in the same Apply starts from a batch that already holds a write.
  etcdserverpb::TxnRequest put_a;
  put_a.add_success()->mutable_request_put()->set_key("a");
  const kvdpb::InternalRequest before = kvtest::TxnReq(put_a);
  const kvdpb::InternalRequest bounded = kvtest::DelReq("b/", "b0");
  const kvdpb::InternalRequest open_ended = kvtest::DelReq("d/", std::string(1, '\0'));
  const kvdpb::InternalRequest exact = kvtest::DelReq("f/", f_end);
  const std::vector<kvdpb::InternalRequest> bulk = {before, bounded, kvtest::PutReq("c", "after"),
                                                    exact, open_ended};
  const std::vector<kvdpb::InternalRequest> txns = {
      before, in_txn(bounded), kvtest::PutReq("c", "after"), in_txn(exact), in_txn(open_ended)};

  kvtest::TempDir dir("bulk-delete");
  Opened a, b;
  REQUIRE(kvstore::MvccStore::OpenDir(dir.Sub("bulk"), {}, &a.engine, &a.store).ok());
  REQUIRE(kvstore::MvccStore::OpenDir(dir.Sub("txn"), {}, &b.engine, &b.store).ok());
  auto apply = [](Opened& o, const std::vector<kvdpb::InternalRequest>& reqs, uint64_t first) {
    std::vector<kvstore::ApplyEntry> entries;
    for (size_t j = 0; j < reqs.size(); ++j) entries.push_back({first + j, &reqs[j]});
    std::vector<kvstore::ApplyResult> res;
    REQUIRE(o.store->Apply(entries, 0, &res).ok());
    REQUIRE(res.size() == reqs.size());
    for (const auto& r : res) REQUIRE(r.status.ok());
    return res;
  };
  apply(a, load, 1);
  apply(b, load, 1);
  a.store->SetObserver(&a.log);
  b.store->SetObserver(&b.log);
  const auto got_a = apply(a, bulk, load.size() + 1);
  const auto got_b = apply(b, txns, load.size() + 1);
  CHECK(got_a[1].response.delete_range().deleted() == 1301);
  CHECK(got_b[1].response.txn().responses(0).response_delete_range().deleted() == 1301);
  CHECK(got_a[3].response.delete_range().deleted() == 1100);
  CHECK(got_b[3].response.txn().responses(0).response_delete_range().deleted() == 1100);
  CHECK(got_a[4].response.delete_range().deleted() == 1102);  // d/, e, and f/01099\0
  CHECK(got_b[4].response.txn().responses(0).response_delete_range().deleted() == 1102);
  CHECK(a.log.calls == b.log.calls);
  CHECK(a.store->CurrentRevision() == b.store->CurrentRevision());
  CHECK(a.store->AppliedIndex() == b.store->AppliedIndex());
  const std::string dump = DumpFamilies(*a.engine);
  CHECK(dump == DumpFamilies(*b.engine));
  // What is left at the newest revision: the neighbours and the two puts around the deletes.
  etcdserverpb::RangeResponse left;
  REQUIRE(a.store->Range(kvtest::RangeOf(std::string(1, '\0'), std::string(1, '\0')), &left).ok());
  std::vector<std::string> left_keys;
  for (const auto& kv : left.kvs()) left_keys.push_back(kv.key());
  CHECK(left_keys == std::vector<std::string>{"a", "b", "b.", "b0", "c"});
  // The bulk path ran: mvcc_latest holds range tombstones in `a` (one per bulk delete, the flush
  // splits overlapping ones into fragments) and none in `b`, whose deletes went key by key.
  auto range_deletions = [](Opened& o) {
    rocksdb::ColumnFamilyHandle* cf = o.engine->Cf("mvcc_latest");
    REQUIRE(o.engine->db()->Flush(rocksdb::FlushOptions(), cf).ok());
    rocksdb::TablePropertiesCollection props;
    REQUIRE(o.engine->db()->GetPropertiesOfAllTables(cf, &props).ok());
    uint64_t n = 0;
    for (const auto& [file, p] : props) n += p->num_range_deletions;
    return n;
  };
  CHECK(range_deletions(a) >= 3);
  CHECK(range_deletions(b) == 0);
  a.store->SetObserver(nullptr);
  b.store->SetObserver(nullptr);
}
