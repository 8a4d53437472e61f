// Unit tests of MvccStore's etcd semantics: revisions, ranges, puts, deletes, txns, compaction.
#include <rocksdb/db.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <thread>

#include "kvstore/codec.h"
#include "tests/kvstore/test_util.h"

using kvstore::Code;
using kvstore::Status;
using kvtest::DelReq;
using kvtest::PutReq;
using kvtest::RangeOf;
using kvtest::TestStore;
namespace errors = kvstore::errors;
using etcdserverpb::RangeRequest;

namespace {

std::vector<std::string> Keys(const etcdserverpb::RangeResponse& r) {
  std::vector<std::string> out;
  for (const auto& kv : r.kvs()) out.push_back(kv.key());
  return out;
}

etcdserverpb::RequestOp OpPut(const std::string& k, const std::string& v) {
  etcdserverpb::RequestOp op;
  op.mutable_request_put()->set_key(k);
  op.mutable_request_put()->set_value(v);
  return op;
}

etcdserverpb::RequestOp OpDel(const std::string& k, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_delete_range()->set_key(k);
  op.mutable_request_delete_range()->set_range_end(end);
  return op;
}

etcdserverpb::RequestOp OpGet(const std::string& k, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  *op.mutable_request_range() = RangeOf(k, end);
  return op;
}

etcdserverpb::Compare Cmp(const std::string& k, etcdserverpb::Compare::CompareTarget t,
                          etcdserverpb::Compare::CompareResult r, int64_t v) {
  etcdserverpb::Compare c;
  c.set_key(k);
  c.set_target(t);
  c.set_result(r);
  switch (t) {
    case etcdserverpb::Compare::VERSION:
      c.set_version(v);
      break;
    case etcdserverpb::Compare::CREATE:
      c.set_create_revision(v);
      break;
    case etcdserverpb::Compare::MOD:
      c.set_mod_revision(v);
      break;
    case etcdserverpb::Compare::LEASE:
      c.set_lease(v);
      break;
    default:
      break;
  }
  return c;
}

}  // namespace

TEST_CASE("codec: escaped kv keys keep unsigned byte order and decode back", "[codec]") {
  // Goal: the key-major layout sorts like etcd's key order and round-trips every byte.
  std::vector<std::string> keys = {
      std::string("a"),  std::string("a\0", 2), std::string("a\0b", 3),   std::string("a\x01", 2),
      std::string("ab"), std::string("\xff"),   std::string("\xff\0", 2), std::string("\0", 1)};
  std::sort(keys.begin(), keys.end());
  for (size_t i = 0; i < keys.size(); ++i) {
    std::string k;
    int64_t main = 0, sub = 0;
    std::string enc = kvstore::codec::KvKey(keys[i], 7, 3);
    REQUIRE(kvstore::codec::DecodeKvKey(enc, &k, &main, &sub));
    CHECK(k == keys[i]);
    CHECK(main == 7);
    CHECK(sub == 3);
    if (i + 1 < keys.size()) {
      // every version of keys[i] sorts before every version of keys[i+1]
      CHECK(kvstore::codec::KvKeyAfterAll(keys[i]) < kvstore::codec::KvKey(keys[i + 1], 1000, 0));
      CHECK(kvstore::codec::KeySeek(keys[i + 1]) > kvstore::codec::KvKeyAfterAll(keys[i]));
    }
    // newer versions sort first
    CHECK(kvstore::codec::KvKey(keys[i], 9, 0) < kvstore::codec::KvKey(keys[i], 8, 5));
    CHECK(kvstore::codec::KvKey(keys[i], 9, 1) < kvstore::codec::KvKey(keys[i], 9, 0));
  }
}

TEST_CASE("codec: a record without its value is accepted only where the caller allows it",
          "[codec]") {
  // Goal: kind 02 (value kept in the kv CF) decodes for the latest CF only, with nothing after
  // the varints, and a kv CF record can never be mistaken for it.
  kvstore::codec::Record r;
  r.create_revision = 300;
  r.version = 2;
  r.lease = 7;
  r.value = "ignored";
  const std::string enc = kvstore::codec::EncodeRecordWithoutValue(r);
  CHECK(enc[0] == kvstore::codec::kKindPutValueInKv);
  kvstore::codec::Record got;
  bool in_kv = false;
  REQUIRE(kvstore::codec::DecodeRecord(enc, &got, true, &in_kv));
  CHECK(in_kv);
  CHECK(got.create_revision == 300);
  CHECK(got.version == 2);
  CHECK(got.lease == 7);
  CHECK(got.value.empty());
  CHECK_FALSE(kvstore::codec::DecodeRecord(enc, &got, true));  // not in the kv CF
  CHECK_FALSE(kvstore::codec::DecodeRecord(enc + "x", &got, true, &in_kv));
  REQUIRE(kvstore::codec::DecodeRecord(kvstore::codec::EncodeRecord(r), &got, true, &in_kv));
  CHECK_FALSE(in_kv);
  CHECK(got.value == "ignored");
}

TEST_CASE("revisions: empty store is 1, each write bumps once, no-ops do not", "[mvcc]") {
  // Goal: etcd's revision rules for puts, deletes, no-op deletes and read-only txns.
  TestStore s;
  CHECK(s->CurrentRevision() == 1);
  CHECK(s.Get("a").header().revision() == 1);
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(PutReq("a", "1"), &out).ok());
  CHECK(out.put().header().revision() == 2);
  REQUIRE(s.Do(PutReq("a", "1"), &out).ok());  // identical value still bumps
  CHECK(out.put().header().revision() == 3);
  REQUIRE(s.Do(DelReq("zzz"), &out).ok());
  CHECK(out.delete_range().deleted() == 0);
  CHECK(out.delete_range().header().revision() == 3);
  etcdserverpb::TxnRequest ro;
  *ro.add_success() = OpGet("a");
  *ro.add_success() = OpDel("nothing");
  REQUIRE(s.Do(kvtest::TxnReq(ro), &out).ok());
  CHECK(out.txn().header().revision() == 3);
  CHECK(s->CurrentRevision() == 3);
  auto kv = s.Get("a").kvs(0);
  CHECK(kv.create_revision() == 2);
  CHECK(kv.mod_revision() == 3);
  CHECK(kv.version() == 2);
  REQUIRE(s.Do(DelReq("a"), &out).ok());
  CHECK(out.delete_range().header().revision() == 4);
  REQUIRE(s.Do(PutReq("a", "x"), &out).ok());
  kv = s.Get("a").kvs(0);
  CHECK(kv.create_revision() == 5);
  CHECK(kv.version() == 1);
  // old revisions stay readable
  CHECK(s.Get("a", "", 3).kvs(0).value() == "1");
  CHECK(s.Get("a", "", 4).kvs_size() == 0);
}

TEST_CASE("range: range_end conventions and key order", "[mvcc]") {
  // Goal: single key, prefix, from-key ("\0"), all keys, and range_end <= key.
  TestStore s;
  for (std::string k : {"a", "ab", "abc", "b", "c"}) REQUIRE(s.Do(PutReq(k, "v")).ok());
  REQUIRE(s.Do(PutReq(std::string("a\0", 2), "z")).ok());
  CHECK(Keys(s.Get("ab")) == std::vector<std::string>{"ab"});
  CHECK(Keys(s.Get("ab", "ac")) == std::vector<std::string>{"ab", "abc"});
  CHECK(Keys(s.Get("b", std::string(1, '\0'))) == std::vector<std::string>{"b", "c"});
  CHECK(s.Get(std::string(1, '\0'), std::string(1, '\0')).count() == 6);
  CHECK(Keys(s.Get("a", "b")) == std::vector<std::string>{"a", std::string("a\0", 2), "ab", "abc"});
  CHECK(s.Get("c", "a").count() == 0);
  etcdserverpb::RangeResponse r;
  CHECK(s->Range(RangeOf(""), &r) == errors::KeyNotProvided());
}

TEST_CASE("range: limit, more, count before limit and filters", "[mvcc]") {
  // Goal: count counts every key in range; more says keys were cut; filters do not change count.
  TestStore s;
  REQUIRE(s.Do(PutReq("k1", "c")).ok());  // rev 2
  REQUIRE(s.Do(PutReq("k2", "b")).ok());  // rev 3
  REQUIRE(s.Do(PutReq("k3", "a")).ok());  // rev 4
  REQUIRE(s.Do(PutReq("k1", "d")).ok());  // rev 5, version 2
  auto req = RangeOf("k", "l");
  req.set_limit(1);
  etcdserverpb::RangeResponse r;
  REQUIRE(s->Range(req, &r).ok());
  CHECK(r.count() == 3);
  CHECK(r.more());
  CHECK(Keys(r) == std::vector<std::string>{"k1"});
  req.set_limit(3);
  r.Clear();
  REQUIRE(s->Range(req, &r).ok());
  CHECK_FALSE(r.more());
  req.set_limit(0);
  req.set_min_mod_revision(10);
  r.Clear();
  REQUIRE(s->Range(req, &r).ok());
  CHECK(r.kvs_size() == 0);
  CHECK(r.count() == 3);
  req = RangeOf("k", "l");
  req.set_max_create_revision(3);
  r.Clear();
  REQUIRE(s->Range(req, &r).ok());
  CHECK(Keys(r) == std::vector<std::string>{"k1", "k2"});
  req = RangeOf("k", "l");
  req.set_min_mod_revision(4);
  req.set_max_mod_revision(5);
  r.Clear();
  REQUIRE(s->Range(req, &r).ok());
  CHECK(Keys(r) == std::vector<std::string>{"k1", "k3"});
  req = RangeOf("k", "l");
  req.set_count_only(true);
  r.Clear();
  REQUIRE(s->Range(req, &r).ok());
  CHECK(r.kvs_size() == 0);
  CHECK(r.count() == 3);
  req = RangeOf("k", "l");
  req.set_keys_only(true);
  r.Clear();
  REQUIRE(s->Range(req, &r).ok());
  CHECK(r.kvs(0).value().empty());
  CHECK(r.kvs(0).version() == 2);
}

TEST_CASE("range: sort targets and orders", "[mvcc]") {
  // Goal: NONE with a non-KEY target means ASCEND; DESCEND reverses; limit applies after sort.
  TestStore s;
  REQUIRE(s.Do(PutReq("a", "3")).ok());
  REQUIRE(s.Do(PutReq("b", "1")).ok());
  REQUIRE(s.Do(PutReq("c", "2")).ok());
  REQUIRE(s.Do(PutReq("b", "4")).ok());
  auto sorted = [&](RangeRequest::SortTarget t, RangeRequest::SortOrder o, int64_t limit = 0) {
    auto req = RangeOf("a", "z");
    req.set_sort_target(t);
    req.set_sort_order(o);
    req.set_limit(limit);
    etcdserverpb::RangeResponse r;
    REQUIRE(s->Range(req, &r).ok());
    return Keys(r);
  };
  using V = std::vector<std::string>;
  CHECK(sorted(RangeRequest::VALUE, RangeRequest::NONE) == V{"c", "a", "b"});
  CHECK(sorted(RangeRequest::VALUE, RangeRequest::DESCEND) == V{"b", "a", "c"});
  CHECK(sorted(RangeRequest::KEY, RangeRequest::DESCEND) == V{"c", "b", "a"});
  CHECK(sorted(RangeRequest::MOD, RangeRequest::DESCEND, 1) == V{"b"});
  CHECK(sorted(RangeRequest::CREATE, RangeRequest::DESCEND, 2) == V{"c", "b"});
  CHECK(sorted(RangeRequest::VERSION, RangeRequest::DESCEND, 1) == V{"b"});
  etcdserverpb::RangeResponse r;
  auto bad = RangeOf("a");
  bad.set_sort_order(static_cast<RangeRequest::SortOrder>(7));
  CHECK(s->Range(bad, &r).message() == "etcdserver: invalid sort option");
}

TEST_CASE("range: compacted and future revisions", "[mvcc]") {
  // Goal: ErrCompacted below the compact revision (equal is fine), ErrFutureRev above current.
  TestStore s;
  for (int i = 0; i < 5; ++i) REQUIRE(s.Do(PutReq("k", std::to_string(i))).ok());  // revs 2..6
  etcdserverpb::RangeResponse r;
  CHECK(s->Range(RangeOf("k", "", 7), &r) == errors::FutureRev());
  CHECK(errors::FutureRev().code() == Code::kOutOfRange);
  REQUIRE(s.Do(kvtest::CompactReq(4)).ok());
  CHECK(s->Range(RangeOf("k", "", 3), &r) == errors::Compacted());
  CHECK(s.Get("k", "", 4).kvs(0).value() == "2");
  CHECK(s.Do(kvtest::CompactReq(4)) == errors::Compacted());
  CHECK(s.Do(kvtest::CompactReq(3)) == errors::Compacted());
  CHECK(s.Do(kvtest::CompactReq(9)) == errors::FutureRev());
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(kvtest::CompactReq(6), &out).ok());  // == current is allowed
  CHECK(out.compaction().header().revision() == 6);
}

TEST_CASE("put: prev_kv, ignore_value, ignore_lease and their errors", "[mvcc]") {
  // Goal: etcd's put options and exact error messages.
  TestStore s;
  kvdpb::InternalResponse out;
  auto p = PutReq("k", "");
  p.mutable_put()->set_ignore_value(true);
  CHECK(s.Do(p) == errors::KeyNotFound());
  CHECK(errors::KeyNotFound().message() == "etcdserver: key not found");
  REQUIRE(s.Do(kvtest::GrantReq(7, 100)).ok());
  REQUIRE(s.Do(PutReq("k", "v1", 7)).ok());
  REQUIRE(s.Do(p, &out).ok());  // ignore_value without ignore_lease: lease 0 detaches
  auto kv = s.Get("k").kvs(0);
  CHECK(kv.value() == "v1");
  CHECK(kv.lease() == 0);
  CHECK(kv.version() == 2);
  REQUIRE(s.Do(PutReq("k", "v1", 7)).ok());
  auto q = PutReq("k", "v2");
  q.mutable_put()->set_ignore_lease(true);
  q.mutable_put()->set_prev_kv(true);
  REQUIRE(s.Do(q, &out).ok());
  CHECK(out.put().prev_kv().value() == "v1");
  CHECK(s.Get("k").kvs(0).lease() == 7);
  REQUIRE(s.Do(PutReq("k", "v3"), &out).ok());
  CHECK(s.Get("k").kvs(0).lease() == 0);
  auto bad = PutReq("k", "x");
  bad.mutable_put()->set_ignore_value(true);
  CHECK(s.Do(bad) == errors::ValueProvided());
  bad = PutReq("k", "", 7);
  bad.mutable_put()->set_ignore_lease(true);
  CHECK(s.Do(bad) == errors::LeaseProvided());
  CHECK(s.Do(PutReq("k", "x", 99)) == errors::LeaseNotFound());
  CHECK(errors::LeaseNotFound().code() == Code::kNotFound);
  CHECK(s.Do(PutReq("", "x")) == errors::KeyNotProvided());
}

TEST_CASE("latest CF: a long value is kept in the kv CF only and every read still returns it",
          "[mvcc]") {
  // Goal: with latest_value_bytes_max, the latest CF record of a long value leaves it out, and
  // gets, ranges, prev_kv, ignore_value, value compares, deletes, events and a reopen with
  // another limit all still see the value.
  kvstore::StoreOptions opts;
  opts.latest_value_bytes_max = 8;
  TestStore s(opts);
  const std::string big(1000, 'B');
  auto latest_record = [&](const std::string& key) {
    std::string raw;
    REQUIRE(
        s.engine().db()->Get(rocksdb::ReadOptions(), s.engine().Cf("mvcc_latest"), key, &raw).ok());
    return raw;
  };
  REQUIRE(s.Do(PutReq("big", big)).ok());
  REQUIRE(s.Do(PutReq("eight", "12345678")).ok());
  // 12 bytes of revision, the kind, three one-byte varints; the 8-byte value stays.
  CHECK(latest_record("big").size() == 16);
  CHECK(latest_record("big")[12] == kvstore::codec::kKindPutValueInKv);
  CHECK(latest_record("eight").size() == 24);
  CHECK(latest_record("eight")[12] == kvstore::codec::kKindPut);

  CHECK(s.Get("big").kvs(0).value() == big);
  auto all = s.Get("a", "z");
  REQUIRE(all.kvs_size() == 2);
  CHECK(all.kvs(0).value() == big);
  CHECK(all.kvs(1).value() == "12345678");
  RangeRequest keys_only = RangeOf("a", "z");
  keys_only.set_keys_only(true);
  etcdserverpb::RangeResponse ko;
  REQUIRE(s->Range(keys_only, &ko).ok());
  CHECK(ko.kvs(0).value().empty());
  CHECK(ko.count() == 2);
  // A limit, a filter and a sort by value: values are read for the keys returned (or all of
  // them, for the sort) and come back whole.
  RangeRequest limited = RangeOf("a", "z");
  limited.set_limit(1);
  etcdserverpb::RangeResponse lr;
  REQUIRE(s->Range(limited, &lr).ok());
  REQUIRE(lr.kvs_size() == 1);
  CHECK(lr.kvs(0).value() == big);
  CHECK(lr.count() == 2);
  CHECK(lr.more());
  RangeRequest filtered = RangeOf("a", "z");
  filtered.set_min_mod_revision(3);  // "eight" only
  etcdserverpb::RangeResponse fr;
  REQUIRE(s->Range(filtered, &fr).ok());
  REQUIRE(fr.kvs_size() == 1);
  CHECK(fr.kvs(0).value() == "12345678");
  RangeRequest by_value = RangeOf("a", "z");
  by_value.set_sort_target(RangeRequest::VALUE);
  by_value.set_sort_order(RangeRequest::ASCEND);
  etcdserverpb::RangeResponse vr;
  REQUIRE(s->Range(by_value, &vr).ok());
  REQUIRE(vr.kvs_size() == 2);
  CHECK(vr.kvs(0).value() == "12345678");  // '1' < 'B'
  CHECK(vr.kvs(1).value() == big);

  kvdpb::InternalResponse out;
  auto again = PutReq("big", big + "2");
  again.mutable_put()->set_prev_kv(true);
  REQUIRE(s.Do(again, &out).ok());
  CHECK(out.put().prev_kv().value() == big);
  auto keep = PutReq("big", "");
  keep.mutable_put()->set_ignore_value(true);
  REQUIRE(s.Do(keep).ok());
  CHECK(s.Get("big").kvs(0).value() == big + "2");
  CHECK(s.Get("big").kvs(0).version() == 3);

  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  *cmp = Cmp("big", etcdserverpb::Compare::VALUE, etcdserverpb::Compare::EQUAL, 0);
  cmp->set_value(big + "2");
  *txn.add_success() = OpPut("txn", "ok");
  REQUIRE(s.Do(kvtest::TxnReq(txn), &out).ok());
  CHECK(out.txn().succeeded());

  REQUIRE(s.Do(DelReq("big", "", true), &out).ok());
  CHECK(out.delete_range().prev_kvs(0).value() == big + "2");
  std::vector<mvccpb::Event> evs;
  int64_t next = 0;
  REQUIRE(s->ReadEvents({"big", ""}, 1, s->CurrentRevision(), 100, true, &evs, &next).ok());
  REQUIRE(evs.size() == 4);
  CHECK(evs[3].type() == mvccpb::Event::DELETE);
  CHECK(evs[3].prev_kv().value() == big + "2");

  // Records of both kinds stay readable whatever limit the store is reopened with.
  REQUIRE(s.Do(PutReq("big", big)).ok());
  s.set_options(kvstore::StoreOptions());  // 512: the 8-byte value above still fits
  s.Reopen();
  CHECK(s.Get("big").kvs(0).value() == big);
  CHECK(s.Get("eight").kvs(0).value() == "12345678");
  REQUIRE(s.Do(PutReq("big", big + "3")).ok());
  CHECK(latest_record("big")[12] == kvstore::codec::kKindPutValueInKv);
  CHECK(s.Get("big").kvs(0).value() == big + "3");

  // A checkpoint carries the whole record (any kvd can restore it); the value reads back.
  const std::string ck = s.dir().Sub("ck");
  REQUIRE(s->WriteCheckpointFile(ck).ok());
  TestStore restored;
  REQUIRE(restored->RestoreCheckpointFile(ck).ok());
  std::string raw;
  REQUIRE(restored.engine()
              .db()
              ->Get(rocksdb::ReadOptions(), restored.engine().Cf("mvcc_latest"), "big", &raw)
              .ok());
  CHECK(raw.size() == 12 + 4 + big.size() + 1);
  CHECK(raw[12] == kvstore::codec::kKindPut);
  CHECK(restored.Get("big").kvs(0).value() == big + "3");
  CHECK(restored.Get("a", "z").SerializeAsString() == s.Get("a", "z").SerializeAsString());
}

TEST_CASE("delete: ranges, prev_kv and one revision for many keys", "[mvcc]") {
  // Goal: a DeleteRange removing n keys uses one revision and returns their previous values.
  TestStore s;
  for (std::string k : {"p/a", "p/b", "p/c", "q"}) REQUIRE(s.Do(PutReq(k, k)).ok());
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(DelReq("p/", "p0", true), &out).ok());
  CHECK(out.delete_range().deleted() == 3);
  CHECK(out.delete_range().prev_kvs_size() == 3);
  CHECK(out.delete_range().prev_kvs(2).value() == "p/c");
  CHECK(out.delete_range().header().revision() == 6);
  CHECK(s.Get("p/", "p0").count() == 0);
  CHECK(s.Get("p/", "p0", 5).count() == 3);
  std::vector<mvccpb::Event> evs;
  int64_t next = 0;
  REQUIRE(s->ReadEvents({"p/", "p0"}, 6, 6, 100, true, &evs, &next).ok());
  REQUIRE(evs.size() == 3);
  CHECK(evs[0].type() == mvccpb::Event::DELETE);
  CHECK(evs[0].kv().mod_revision() == 6);
  CHECK(evs[0].kv().value().empty());
  CHECK(evs[0].prev_kv().value() == "p/a");
  CHECK(next == 7);
}

TEST_CASE("txn: compares, branches, later ops see earlier writes, one revision", "[mvcc]") {
  // Goal: etcd's txn semantics incl. range_end compares and missing keys.
  TestStore s;
  REQUIRE(s.Do(PutReq("a", "1")).ok());  // rev 2
  etcdserverpb::TxnRequest t;
  *t.add_compare() = Cmp("a", etcdserverpb::Compare::VERSION, etcdserverpb::Compare::EQUAL, 1);
  *t.add_compare() = Cmp("zz", etcdserverpb::Compare::CREATE, etcdserverpb::Compare::EQUAL, 0);
  *t.add_success() = OpPut("b", "2");
  *t.add_success() = OpPut("c", "3");
  *t.add_success() = OpGet("a", "z");
  *t.add_failure() = OpDel("a");
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(kvtest::TxnReq(t), &out).ok());
  CHECK(out.txn().succeeded());
  CHECK(out.txn().header().revision() == 3);
  CHECK(out.txn().responses(2).response_range().count() == 3);
  CHECK(out.txn().responses(0).response_put().header().revision() == 3);
  CHECK(s.Get("b").kvs(0).mod_revision() == 3);
  CHECK(s.Get("c").kvs(0).mod_revision() == 3);
  // value compare on a missing key is false; compare over a range needs every key
  etcdserverpb::TxnRequest t2;
  auto vc = Cmp("nope", etcdserverpb::Compare::VALUE, etcdserverpb::Compare::NOT_EQUAL, 0);
  vc.set_value("x");
  *t2.add_compare() = vc;
  *t2.add_failure() = OpPut("f", "1");
  REQUIRE(s.Do(kvtest::TxnReq(t2), &out).ok());
  CHECK_FALSE(out.txn().succeeded());
  etcdserverpb::TxnRequest t3;
  auto rc = Cmp("a", etcdserverpb::Compare::MOD, etcdserverpb::Compare::GREATER, 2);
  rc.set_range_end("d");
  *t3.add_compare() = rc;  // a has mod 2: not all keys satisfy
  *t3.add_success() = OpPut("x", "1");
  REQUIRE(s.Do(kvtest::TxnReq(t3), &out).ok());
  CHECK_FALSE(out.txn().succeeded());
  CHECK(out.txn().responses_size() == 0);
  rc.set_result(etcdserverpb::Compare::LESS);
  rc.set_mod_revision(4);
  *t3.mutable_compare(0) = rc;
  REQUIRE(s.Do(kvtest::TxnReq(t3), &out).ok());
  CHECK(out.txn().succeeded());
}

TEST_CASE("txn: nested txns, validation errors", "[mvcc]") {
  // Goal: too many ops (nested budget), duplicate keys, empty op, missing key; nothing written.
  kvstore::StoreOptions o;
  o.max_txn_ops = 4;
  TestStore s(o);
  etcdserverpb::TxnRequest t;
  for (int i = 0; i < 5; ++i) *t.add_success() = OpPut("k" + std::to_string(i), "v");
  CHECK(s.Do(kvtest::TxnReq(t)) == errors::TooManyOps());
  etcdserverpb::TxnRequest nested;
  for (int i = 0; i < 2; ++i) *nested.add_success() = OpPut("n" + std::to_string(i), "v");
  etcdserverpb::TxnRequest outer;
  for (int i = 0; i < 3; ++i) *outer.add_success()->mutable_request_txn() = nested;
  // outer uses 3 of 4, nested txns get a budget of 1 but have 2 ops
  CHECK(s.Do(kvtest::TxnReq(outer)) == errors::TooManyOps());
  etcdserverpb::TxnRequest dup;
  *dup.add_success() = OpPut("a", "1");
  *dup.add_success() = OpPut("a", "2");
  CHECK(s.Do(kvtest::TxnReq(dup)) == errors::DuplicateKey());
  etcdserverpb::TxnRequest dup2;
  *dup2.add_success() = OpDel("a", "c");
  *dup2.add_success() = OpPut("b", "2");
  CHECK(s.Do(kvtest::TxnReq(dup2)) == errors::DuplicateKey());
  etcdserverpb::TxnRequest dels_ok;
  *dels_ok.add_success() = OpDel("a", "c");
  *dels_ok.add_success() = OpDel("b", "d");
  CHECK(s.Do(kvtest::TxnReq(dels_ok)).ok());
  etcdserverpb::TxnRequest thenelse;  // same key in then/else of a nested txn is fine
  etcdserverpb::TxnRequest inner;
  *inner.add_success() = OpPut("q", "1");
  *inner.add_failure() = OpPut("q", "2");
  *thenelse.add_success()->mutable_request_txn() = inner;
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(kvtest::TxnReq(thenelse), &out).ok());
  CHECK(out.txn().responses(0).response_txn().succeeded());
  CHECK(s.Get("q").kvs(0).value() == "1");
  etcdserverpb::TxnRequest nested_dup;  // outer put + nested put of the same key
  *nested_dup.add_success() = OpPut("q", "3");
  *nested_dup.add_success()->mutable_request_txn() = inner;
  CHECK(s.Do(kvtest::TxnReq(nested_dup)) == errors::DuplicateKey());
  etcdserverpb::TxnRequest empty_op;
  empty_op.add_success();
  CHECK(s.Do(kvtest::TxnReq(empty_op)) == errors::KeyNotFound());
  etcdserverpb::TxnRequest no_key;
  *no_key.add_success() = OpPut("", "1");
  CHECK(s.Do(kvtest::TxnReq(no_key)) == errors::KeyNotProvided());
  // an execution-time error (lease not found) fails the whole txn with nothing written
  const int64_t rev = s->CurrentRevision();
  etcdserverpb::TxnRequest half;
  *half.add_success() = OpPut("w1", "1");
  auto lp = OpPut("w2", "1");
  lp.mutable_request_put()->set_lease(12345);
  *half.add_success() = lp;
  CHECK(s.Do(kvtest::TxnReq(half)) == errors::LeaseNotFound());
  CHECK(s->CurrentRevision() == rev);
  CHECK(s.Get("w1").count() == 0);
}

TEST_CASE("txn: nested compares use the state before the txn", "[mvcc]") {
  // Goal: etcd 3.4 decides nested branches against the pre-txn state.
  TestStore s;
  etcdserverpb::TxnRequest inner;
  *inner.add_compare() = Cmp("a", etcdserverpb::Compare::VERSION, etcdserverpb::Compare::EQUAL, 0);
  *inner.add_success() = OpPut("b", "saw-no-a");
  *inner.add_failure() = OpPut("b", "saw-a");
  etcdserverpb::TxnRequest outer;
  *outer.add_success() = OpPut("a", "1");
  *outer.add_success()->mutable_request_txn() = inner;
  REQUIRE(s.Do(kvtest::TxnReq(outer)).ok());
  CHECK(s.Get("b").kvs(0).value() == "saw-no-a");
}

TEST_CASE("compaction: state at every revision >= C stays readable; steps are bounded", "[mvcc]") {
  // Goal: logical compaction at once, physical removal in bounded steps, HashKV unaffected.
  TestStore s;
  for (int i = 0; i < 20; ++i) {
    REQUIRE(s.Do(PutReq("k" + std::to_string(i % 5), std::to_string(i))).ok());
  }
  REQUIRE(s.Do(DelReq("k3")).ok());  // rev 22
  REQUIRE(s.Do(PutReq("k4", "last")).ok());
  std::vector<etcdserverpb::RangeResponse> before;
  for (int64_t r = 15; r <= s->CurrentRevision(); ++r) before.push_back(s.Get("k", "l", r));
  uint32_t h1 = 0, h2 = 0;
  int64_t c1 = 0, c2 = 0, hr = 0;
  REQUIRE(s.Do(kvtest::CompactReq(15)).ok());
  REQUIRE(s->HashKV(0, &h1, &c1, &hr).ok());
  CHECK_FALSE(s->PhysicalCompactionDone());
  bool done = false;
  int steps = 0;
  while (!done) {
    REQUIRE(s->CompactStep(2, &done).ok());
    REQUIRE(++steps < 100);
  }
  CHECK(steps >= 3);  // 5 keys, 2 per step
  CHECK(s->PhysicalCompactionDone());
  REQUIRE(s->HashKV(0, &h2, &c2, &hr).ok());
  CHECK(h1 == h2);
  CHECK(c2 == 15);
  for (int64_t r = 15; r <= s->CurrentRevision(); ++r) {
    CHECK(s.Get("k", "l", r).SerializeAsString() ==
          before[static_cast<size_t>(r - 15)].SerializeAsString());
  }
  CHECK(s->HashKV(15, &h2, &c2, &hr) == errors::Compacted());
  CHECK(s->HashKV(99, &h2, &c2, &hr) == errors::FutureRev());
  std::vector<mvccpb::Event> evs;
  int64_t next = 0;
  CHECK(s->ReadEvents({"k", "l"}, 14, 30, 100, false, &evs, &next) == errors::Compacted());
  REQUIRE(s->ReadEvents({"k", "l"}, 15, 30, 100, false, &evs, &next).ok());
  CHECK(evs.size() == 9);  // revs 15..23
  // The store survives a reopen mid-way through physical compaction.
  REQUIRE(s.Do(kvtest::CompactReq(20)).ok());
  REQUIRE(s->CompactStep(1, &done).ok());
  CHECK_FALSE(done);
  s.Reopen();
  CHECK(s->CompactRevision() == 20);
  CHECK_FALSE(s->PhysicalCompactionDone());
  while (!done) REQUIRE(s->CompactStep(100, &done).ok());
  for (int64_t r = 20; r <= s->CurrentRevision(); ++r) {
    CHECK(s.Get("k", "l", r).SerializeAsString() ==
          before[static_cast<size_t>(r - 15)].SerializeAsString());
  }
}

TEST_CASE("hashkv: equal on two stores with the same history, different on a different one",
          "[mvcc]") {
  // Goal: the hash is a function of the logical history only.
  TestStore a, b;
  for (int i = 0; i < 30; ++i) {
    auto req = PutReq("k" + std::to_string(i % 7), "v" + std::to_string(i));
    REQUIRE(a.Do(req).ok());
    REQUIRE(b.Do(req).ok());
  }
  REQUIRE(a.Do(kvtest::CompactReq(10)).ok());
  REQUIRE(b.Do(kvtest::CompactReq(10)).ok());
  bool done = false;
  while (!done) REQUIRE(a->CompactStep(100, &done).ok());  // only a compacts physically
  uint32_t ha = 0, hb = 0;
  int64_t ca = 0, cb = 0, r = 0;
  REQUIRE(a->HashKV(20, &ha, &ca, &r).ok());
  REQUIRE(b->HashKV(20, &hb, &cb, &r).ok());
  CHECK(ha == hb);
  CHECK(ca == cb);
  REQUIRE(b.Do(PutReq("k1", "different")).ok());
  REQUIRE(a.Do(PutReq("k1", "other")).ok());
  REQUIRE(a->HashKV(0, &ha, &ca, &r).ok());
  REQUIRE(b->HashKV(0, &hb, &cb, &r).ok());
  CHECK(ha != hb);
}

TEST_CASE("history: ReadEvents in order with prev_kv, stopping at revision boundaries", "[mvcc]") {
  // Goal: the History contract the watch engine relies on.
  TestStore s;
  REQUIRE(s.Do(PutReq("a", "1")).ok());  // 2
  etcdserverpb::TxnRequest t;
  *t.add_success() = OpPut("a", "2");
  *t.add_success() = OpPut("b", "1");
  REQUIRE(s.Do(kvtest::TxnReq(t)).ok());  // 3: two events
  REQUIRE(s.Do(DelReq("a")).ok());        // 4
  std::vector<mvccpb::Event> evs;
  int64_t next = 0;
  REQUIRE(s->ReadEvents({"a", "z"}, 1, 10, 1, true, &evs, &next).ok());
  REQUIRE(evs.size() == 1);
  CHECK(next == 3);
  CHECK_FALSE(evs[0].has_prev_kv());  // a create
  evs.clear();
  REQUIRE(s->ReadEvents({"a", "z"}, 3, 10, 1, true, &evs, &next).ok());
  REQUIRE(evs.size() == 2);  // a whole revision even past max_events
  CHECK(evs[0].kv().key() == "a");
  CHECK(evs[0].prev_kv().value() == "1");
  CHECK(evs[1].kv().key() == "b");
  CHECK(next == 4);
  evs.clear();
  REQUIRE(s->ReadEvents({"a", ""}, 4, 10, 10, false, &evs, &next).ok());
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].type() == mvccpb::Event::DELETE);
  CHECK_FALSE(evs[0].has_prev_kv());
  CHECK(next == 5);
}

namespace {
struct Recorder : kvstore::HistoryObserver {
  std::vector<std::pair<int64_t, size_t>> revs;
  std::vector<int64_t> compactions;
  void OnRevision(int64_t revision, const std::vector<mvccpb::Event>& events) override {
    revs.emplace_back(revision, events.size());
  }
  void OnCompacted(int64_t compact_revision) override { compactions.push_back(compact_revision); }
};
}  // namespace

TEST_CASE("delete: a bulk delete is seen by the later entries of its apply batch", "[mvcc]") {
  // Goal: a DeleteRange large enough to write its tombstones unindexed (>= 1024 keys) commits
  // before the next entry of the same Apply call, so later entries (range, put, txn, a failing
  // entry) see it; revisions, observer calls, results and the applied index stay right.
  TestStore s;
  const int n = 1500;
  for (int i = 0; i < n; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "b/%05d", i);
    REQUIRE(s.Do(PutReq(k, "v")).ok());
  }
  Recorder rec;
  s->SetObserver(&rec);
  kvdpb::InternalRequest range_req;
  *range_req.mutable_range() = RangeOf("b/", "b0");
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("b/00001");
  cmp->set_target(etcdserverpb::Compare::VERSION);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_version(0);  // true only if the bulk delete is visible
  txn.add_success()->mutable_request_put()->set_key("txn-saw-delete");
  kvdpb::InternalRequest reqs[] = {
      DelReq("b/", "b0"),       PutReq("b/00000", "again"), range_req,
      PutReq("x", "1", 99),     kvtest::TxnReq(txn),        DelReq("b/", "b0"),
      PutReq("b/00002", "last")};
  const uint64_t first = s.next_index();
  const std::vector<kvstore::ApplyResult> res = s.DoBatch(reqs);
  const int64_t del_rev = n + 2;  // the puts made revisions 2..n+1
  CHECK(res[0].response.delete_range().deleted() == n);
  CHECK(res[0].response.delete_range().header().revision() == del_rev);
  CHECK(res[1].response.put().header().revision() == del_rev + 1);
  CHECK_FALSE(res[1].response.put().has_prev_kv());
  CHECK(res[2].response.range().count() == 1);  // only the key put again after the delete
  CHECK(res[3].status.code() == kvstore::Code::kNotFound);  // unknown lease 99
  CHECK(res[4].response.txn().succeeded());
  CHECK(res[5].response.delete_range().deleted() == 1);  // b/00000, put again
  CHECK(res[6].response.put().header().revision() == del_rev + 4);
  CHECK(s->AppliedIndex() == first + std::size(reqs) - 1);
  CHECK(s->CurrentRevision() == del_rev + 4);
  const auto again = s.Get("b/00000");
  REQUIRE(again.kvs_size() == 0);  // deleted again by the second DeleteRange
  const auto last = s.Get("b/00002");
  REQUIRE(last.kvs_size() == 1);
  CHECK(last.kvs(0).version() == 1);  // a new key after the bulk delete
  CHECK(last.kvs(0).create_revision() == del_rev + 4);
  CHECK(s.Get("b/", "b0", del_rev - 1).count() == n);
  REQUIRE(rec.revs.size() == 5);
  using RevEvents = std::pair<int64_t, size_t>;
  CHECK(rec.revs[0] == RevEvents(del_rev, size_t{n}));
  CHECK(rec.revs[1] == RevEvents(del_rev + 1, 1));
  CHECK(rec.revs[4] == RevEvents(del_rev + 4, 1));
  s->SetObserver(nullptr);
  s.Reopen();  // what was committed in two writes reads back the same
  CHECK(s->AppliedIndex() == first + std::size(reqs) - 1);
  CHECK(s->CurrentRevision() == del_rev + 4);
  CHECK(s.Get("b/", "b0").count() == 1);
}

TEST_CASE("put: plain puts in one apply batch see each other and every other entry sees them",
          "[mvcc]") {
  // Goal: plain puts (written past the batch index, remembered per key until the next commit)
  // give the same versions, prev_kv and lease bookkeeping as puts applied one per batch, and
  // a txn, a range, a delete or a lease revoke later in the same batch sees every one of them.
  TestStore s;
  REQUIRE(s.Do(kvtest::GrantReq(7, 100)).ok());
  Recorder rec;
  s->SetObserver(&rec);
  auto put = [](const std::string& k, const std::string& v, int64_t lease = 0) {
    kvdpb::InternalRequest r = PutReq(k, v, lease);
    r.mutable_put()->set_prev_kv(true);
    return r;
  };
  kvdpb::InternalRequest keep_value = put("a", "");
  keep_value.mutable_put()->set_ignore_value(true);
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("a");
  cmp->set_target(etcdserverpb::Compare::VERSION);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_version(3);  // true only if the txn sees all three puts of "a" before it
  txn.add_success()->mutable_request_put()->set_key("txn-saw-puts");
  kvdpb::InternalRequest range_req;
  *range_req.mutable_range() = RangeOf("a", "z");
  kvdpb::InternalRequest reqs[] = {put("a", "1"),    put("a", "2", 7),  keep_value,
                                   put("b", "1", 7), put("c", "1", 99), kvtest::TxnReq(txn),
                                   put("a", "4"),    range_req,         kvtest::RevokeReq(7),
                                   put("b", "2"),    DelReq("a", "z"),  put("a", "5")};
  const uint64_t first = s.next_index();
  const std::vector<kvstore::ApplyResult> res = s.DoBatch(reqs);
  const int64_t r0 = 1;  // the grant made no revision
  CHECK_FALSE(res[0].response.put().has_prev_kv());
  CHECK(res[1].response.put().prev_kv().value() == "1");
  CHECK(res[1].response.put().prev_kv().version() == 1);
  CHECK(res[2].response.put().prev_kv().value() == "2");
  CHECK(res[2].response.put().prev_kv().lease() == 7);
  CHECK(res[4].status.code() == kvstore::Code::kNotFound);  // unknown lease 99: nothing written
  CHECK(res[5].response.txn().succeeded());
  CHECK(res[6].response.put().prev_kv().value() == "2");  // ignore_value kept "2"
  CHECK(res[6].response.put().prev_kv().version() == 3);
  CHECK(res[6].response.put().prev_kv().mod_revision() == r0 + 3);
  CHECK(res[6].response.put().prev_kv().create_revision() == r0 + 1);
  CHECK(res[7].response.range().count() == 3);  // a, b, txn-saw-puts
  // The revoke deletes "b", the only key left on lease 7 ("a" left it with the ignore_value put).
  CHECK(s.Get("b", "", r0 + 7).kvs_size() == 0);
  CHECK(res[9].response.put().header().revision() == r0 + 8);
  CHECK_FALSE(res[9].response.put().has_prev_kv());
  CHECK(res[10].response.delete_range().deleted() == 3);
  const auto a = s.Get("a");
  REQUIRE(a.kvs_size() == 1);
  CHECK(a.kvs(0).value() == "5");
  CHECK(a.kvs(0).version() == 1);
  CHECK(a.kvs(0).create_revision() == r0 + 10);
  CHECK(s->CurrentRevision() == r0 + 10);
  CHECK(s->AppliedIndex() == first + std::size(reqs) - 1);
  CHECK(rec.revs.size() == 10);  // every entry but the failed put and the range
  s->SetObserver(nullptr);
  s.Reopen();
  CHECK(s->CurrentRevision() == r0 + 10);
  CHECK(s.Get("a").kvs(0).value() == "5");
  CHECK(s.Get("a", "", r0 + 4).kvs(0).version() == 3);
}

TEST_CASE("observer: told once per committed revision and per compaction", "[mvcc]") {
  // Goal: HistoryObserver calls match the committed revisions of an apply batch.
  TestStore s;
  Recorder rec;
  s->SetObserver(&rec);
  kvdpb::InternalRequest reqs[] = {PutReq("a", "1"), DelReq("none"), PutReq("b", "1"),
                                   kvtest::CompactReq(2)};
  std::vector<kvstore::ApplyEntry> entries;
  for (uint64_t i = 0; i < 4; ++i) entries.push_back({i + 1, &reqs[i]});
  std::vector<kvstore::ApplyResult> res;
  REQUIRE(s->Apply(entries, 0, &res).ok());
  REQUIRE(rec.revs.size() == 2);
  CHECK(rec.revs[0] == std::make_pair<int64_t, size_t>(2, 1));
  CHECK(rec.revs[1] == std::make_pair<int64_t, size_t>(3, 1));
  CHECK(rec.compactions == std::vector<int64_t>{2});
  s->SetObserver(nullptr);
}

TEST_CASE("threads: reads at any revision stay consistent while the apply thread writes",
          "[mvcc][threads]") {
  // Goal: concurrent Range/ReadEvents see whole revisions, even during physical compaction.
  TestStore s;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int64_t> reads{0};
  auto reader = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    while (!stop.load()) {
      const int64_t cur = s->CurrentRevision();
      const int64_t rev = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(cur));
      etcdserverpb::RangeResponse r;
      Status st = s->Range(RangeOf("k", "l", rev), &r);
      if (st == errors::Compacted()) continue;
      if (!st.ok()) {
        ++bad;
        continue;
      }
      for (const auto& kv : r.kvs()) {
        // every value is the revision that wrote it
        if (kv.value() != std::to_string(kv.mod_revision()) || kv.mod_revision() > rev) ++bad;
      }
      std::vector<mvccpb::Event> evs;
      int64_t next = 0;
      st = s->ReadEvents({"k", "l"}, rev, rev, 10, true, &evs, &next);
      if (st.ok() && rev > 1 && evs.empty()) ++bad;  // every revision > 1 wrote a k* key
      if (!st.ok() && !(st == errors::Compacted())) ++bad;
      ++reads;
    }
  };
  std::thread t1(reader, 1), t2(reader, 2);
  for (int i = 0; i < 600; ++i) {
    const std::string rev = std::to_string(s->CurrentRevision() + 1);
    REQUIRE(s.Do(PutReq("k" + std::to_string(i % 17), rev)).ok());
    if (i % 50 == 49) {
      REQUIRE(s.Do(kvtest::CompactReq(s->CurrentRevision() - 20)).ok());
      bool done = false;
      while (!done) REQUIRE(s->CompactStep(3, &done).ok());
    }
  }
  stop = true;
  t1.join();
  t2.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
}

TEST_CASE("txn: a read-only txn served by ReadOnlyTxn answers what applying it answers", "[mvcc]") {
  // Goal: the ReadIndex path for txns without writes matches the log path exactly.
  TestStore s;
  REQUIRE(s.Do(PutReq("a", "1")).ok());  // rev 2
  REQUIRE(s.Do(PutReq("b", "2")).ok());  // rev 3
  REQUIRE(s.Do(PutReq("a", "3")).ok());  // rev 4
  REQUIRE(s.Do(kvtest::CompactReq(3)).ok());
  etcdserverpb::TxnRequest nested;
  *nested.add_compare() = Cmp("b", etcdserverpb::Compare::VERSION, etcdserverpb::Compare::EQUAL, 1);
  *nested.add_success() = OpGet("a", "z");
  *nested.add_failure() = OpGet("b");
  std::vector<etcdserverpb::TxnRequest> txns(5);
  *txns[0].add_compare() =
      Cmp("a", etcdserverpb::Compare::VERSION, etcdserverpb::Compare::EQUAL, 2);
  *txns[0].add_success() = OpGet("a");
  *txns[0].add_success() = OpGet("a", "z");
  *txns[0].add_failure() = OpGet("b");
  *txns[1].add_compare() =
      Cmp("a", etcdserverpb::Compare::MOD, etcdserverpb::Compare::LESS, 2);  // false
  *txns[1].add_failure() = OpGet("b");
  etcdserverpb::RequestOp nested_op;
  *nested_op.mutable_request_txn() = nested;
  *txns[1].add_failure() = nested_op;
  auto at_rev = OpGet("a");
  at_rev.mutable_request_range()->set_revision(3);
  *txns[2].add_success() = at_rev;  // an old revision still retained
  at_rev.mutable_request_range()->set_revision(2);
  *txns[3].add_success() = at_rev;  // compacted
  at_rev.mutable_request_range()->set_revision(99);
  *txns[4].add_success() = at_rev;  // future
  for (size_t i = 0; i < txns.size(); ++i) {
    INFO("txn " << i);
    REQUIRE(kvstore::MvccStore::IsReadOnlyTxn(txns[i]));
    etcdserverpb::TxnResponse direct;
    kvstore::Status rs = s->ReadOnlyTxn(txns[i], &direct);
    kvdpb::InternalResponse applied;
    kvstore::Status as = s.Do(kvtest::TxnReq(txns[i]), &applied);
    CHECK(rs.ToString() == as.ToString());
    if (rs.ok() && as.ok()) CHECK(direct.SerializeAsString() == applied.txn().SerializeAsString());
  }
  CHECK(s->CurrentRevision() == 4);
  etcdserverpb::TxnRequest writes;
  *writes.add_failure() = OpPut("c", "1");
  CHECK_FALSE(kvstore::MvccStore::IsReadOnlyTxn(writes));
  etcdserverpb::TxnRequest nested_write;
  etcdserverpb::RequestOp w;
  *w.mutable_request_txn() = writes;
  *nested_write.add_success() = w;
  CHECK_FALSE(kvstore::MvccStore::IsReadOnlyTxn(nested_write));
}
