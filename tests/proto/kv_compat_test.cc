// Wire round trip of the KV service (Put, Range, Txn, DeleteRange, Compact) through our
// generated stubs against a real etcd 3.4.23 (or $KV_COMPAT_SERVER). Every field we read is
// asserted, and every response is checked for fields our schema does not know.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/proto/etcd_client.h"

namespace {

using namespace kvcompat;  // NOLINT(google-build-using-namespace): test file
using grpc::StatusCode;

std::vector<std::string> Keys(const pb::RangeResponse& resp) {
  std::vector<std::string> keys;
  for (const auto& kv : resp.kvs()) keys.push_back(kv.key());
  return keys;
}

pb::RangeResponse Sorted(Server& s, pb::RangeRequest::SortTarget target,
                         pb::RangeRequest::SortOrder order) {
  auto req = RangeReq("r/", "r0");
  req.set_sort_target(target);
  req.set_sort_order(order);
  return Range(s, req);
}

pb::RequestOp OpPut(const std::string& key, const std::string& value) {
  pb::RequestOp op;
  *op.mutable_request_put() = PutReq(key, value);
  return op;
}

pb::RequestOp OpRange(const std::string& key, const std::string& range_end = "") {
  pb::RequestOp op;
  *op.mutable_request_range() = RangeReq(key, range_end);
  return op;
}

pb::RequestOp OpDelete(const std::string& key, const std::string& range_end, bool prev_kv) {
  pb::RequestOp op;
  *op.mutable_request_delete_range() = DeleteReq(key, range_end);
  op.mutable_request_delete_range()->set_prev_kv(prev_kv);
  return op;
}

pb::Compare Cmp(const std::string& key, pb::Compare::CompareTarget target,
                pb::Compare::CompareResult result, std::int64_t number,
                const std::string& value = "") {
  pb::Compare c;
  c.set_key(key);
  c.set_target(target);
  c.set_result(result);
  switch (target) {
    case pb::Compare::VERSION:
      c.set_version(number);
      break;
    case pb::Compare::CREATE:
      c.set_create_revision(number);
      break;
    case pb::Compare::MOD:
      c.set_mod_revision(number);
      break;
    case pb::Compare::VALUE:
      c.set_value(value);
      break;
    case pb::Compare::LEASE:
      c.set_lease(number);
      break;
    default:
      FAIL("unknown compare target");
  }
  return c;
}

}  // namespace

TEST_CASE("Put round trip: prev_kv, lease, ignore_value, ignore_lease and errors", "[compat][kv]") {
  // Goal: every PutRequest field reaches the server and every PutResponse/KeyValue field
  // comes back with etcd's values and revisions.
  Server s;
  auto empty = Get(s, "foo");
  s.CheckHeader(empty.header(), 1);  // an empty store is at revision 1
  CHECK(empty.kvs_size() == 0);
  CHECK(empty.count() == 0);
  CHECK_FALSE(empty.more());

  auto req = PutReq("foo", "bar");
  req.set_prev_kv(true);
  auto put = Call(*s.on().kv, &pb::KV::Stub::Put, req);
  s.CheckHeader(put.header(), 2);
  CHECK_FALSE(put.has_prev_kv());  // a new key has no previous kv

  req.set_value("baz");
  put = Call(*s.on().kv, &pb::KV::Stub::Put, req);
  s.CheckHeader(put.header(), 3);
  REQUIRE(put.has_prev_kv());
  CheckKv(put.prev_kv(), "foo", "bar", 2, 2, 1);

  auto got = Get(s, "foo");
  s.CheckHeader(got.header(), 3);
  REQUIRE(got.kvs_size() == 1);
  CheckKv(got.kvs(0), "foo", "baz", 2, 3, 2);
  CHECK(got.count() == 1);
  CHECK_FALSE(got.more());

  pb::LeaseGrantRequest grant;
  grant.set_ttl(600);
  const std::int64_t lease = Call(*s.on().lease, &pb::Lease::Stub::LeaseGrant, grant).id();
  REQUIRE(lease > 0);

  req = PutReq("foo", "qux", lease);
  req.set_prev_kv(true);
  put = Call(*s.on().kv, &pb::KV::Stub::Put, req);
  s.CheckHeader(put.header(), 4);
  CheckKv(put.prev_kv(), "foo", "baz", 2, 3, 2);
  CheckKv(Get(s, "foo").kvs(0), "foo", "qux", 2, 4, 3, lease);

  // ignore_value keeps the value; the lease is taken from the request.
  req = PutReq("foo", "", lease);
  req.set_ignore_value(true);
  put = Call(*s.on().kv, &pb::KV::Stub::Put, req);
  s.CheckHeader(put.header(), 5);
  CHECK_FALSE(put.has_prev_kv());
  CheckKv(Get(s, "foo").kvs(0), "foo", "qux", 2, 5, 4, lease);

  // ignore_lease keeps the lease.
  req = PutReq("foo", "new");
  req.set_ignore_lease(true);
  req.set_prev_kv(true);
  put = Call(*s.on().kv, &pb::KV::Stub::Put, req);
  s.CheckHeader(put.header(), 6);
  CheckKv(put.prev_kv(), "foo", "qux", 2, 5, 4, lease);
  CheckKv(Get(s, "foo").kvs(0), "foo", "new", 2, 6, 5, lease);

  // A plain put detaches the key from its lease.
  put = Put(s, "foo", "plain");
  s.CheckHeader(put.header(), 7);
  CheckKv(Get(s, "foo").kvs(0), "foo", "plain", 2, 7, 6, 0);

  // Binary keys and values survive byte for byte.
  const std::string bin_key("\x00\xff\x80k", 4);
  const std::string bin_value("\x00\x01\xfe\xff\x00", 5);
  put = Put(s, bin_key, bin_value);
  s.CheckHeader(put.header(), 8);
  CheckKv(Get(s, bin_key).kvs(0), bin_key, bin_value, 8, 8, 1);

  req = PutReq("missing", "");
  req.set_ignore_value(true);
  CallFails(*s.on().kv, &pb::KV::Stub::Put, req, StatusCode::INVALID_ARGUMENT,
            "etcdserver: key not found");
  req = PutReq("missing", "v");
  req.set_ignore_lease(true);
  CallFails(*s.on().kv, &pb::KV::Stub::Put, req, StatusCode::INVALID_ARGUMENT,
            "etcdserver: key not found");
  req = PutReq("foo", "v");
  req.set_ignore_value(true);
  CallFails(*s.on().kv, &pb::KV::Stub::Put, req, StatusCode::INVALID_ARGUMENT,
            "etcdserver: value is provided");
  req = PutReq("foo", "v", lease);
  req.set_ignore_lease(true);
  CallFails(*s.on().kv, &pb::KV::Stub::Put, req, StatusCode::INVALID_ARGUMENT,
            "etcdserver: lease is provided");
  CallFails(*s.on().kv, &pb::KV::Stub::Put, PutReq("", "v"), StatusCode::INVALID_ARGUMENT,
            "etcdserver: key is not provided");
  CallFails(*s.on().kv, &pb::KV::Stub::Put, PutReq("foo", "v", lease + 1), StatusCode::NOT_FOUND,
            "etcdserver: requested lease not found");
  CHECK(CurrentRevision(s) == 8);  // failed puts do not bump the revision
}

TEST_CASE("Range round trip: range_end conventions, limit, sort, filters, revision",
          "[compat][kv]") {
  // Goal: every RangeRequest option is honoured as etcd does, which proves its field number,
  // and count/more/kvs come back in the right fields.
  Server s;
  Put(s, "r/c", "1");  // rev 2
  Put(s, "r/a", "3");  // rev 3
  Put(s, "r/b", "2");  // rev 4
  Put(s, "r/a", "0");  // rev 5
  Put(s, "r/b", "5");  // rev 6
  Put(s, "r/b", "4");  // rev 7
  Put(s, "q", "q");    // rev 8
  Put(s, "s", "s");    // rev 9
  // r/a: create 3 mod 5 ver 2 "0"; r/b: create 4 mod 7 ver 3 "4"; r/c: create 2 mod 2 ver 1 "1".

  auto all = Get(s, "r/", "r0");  // prefix "r/": range_end is "r/" with the last byte + 1
  s.CheckHeader(all.header(), 9);
  REQUIRE(all.kvs_size() == 3);
  CheckKv(all.kvs(0), "r/a", "0", 3, 5, 2);
  CheckKv(all.kvs(1), "r/b", "4", 4, 7, 3);
  CheckKv(all.kvs(2), "r/c", "1", 2, 2, 1);
  CHECK(all.count() == 3);
  CHECK_FALSE(all.more());

  using V = std::vector<std::string>;
  CHECK(Keys(Get(s, "r/b", std::string(1, '\0'))) == V{"r/b", "r/c", "s"});  // from key
  CHECK(Keys(Get(s, std::string(1, '\0'), std::string(1, '\0'))) ==
        V{"q", "r/a", "r/b", "r/c", "s"});  // everything
  auto inverted = Get(s, "r/c", "r/a");     // range_end <= key: empty, no error
  CHECK(inverted.kvs_size() == 0);
  CHECK(inverted.count() == 0);
  CallFails(*s.on().kv, &pb::KV::Stub::Range, RangeReq(""), StatusCode::INVALID_ARGUMENT,
            "etcdserver: key is not provided");

  // limit: count is the total before the limit; more says something was cut.
  auto req = RangeReq("r/", "r0");
  req.set_limit(2);
  auto limited = Range(s, req);
  CHECK(Keys(limited) == V{"r/a", "r/b"});
  CHECK(limited.count() == 3);
  CHECK(limited.more());
  req.set_limit(3);
  limited = Range(s, req);
  CHECK(limited.kvs_size() == 3);
  CHECK_FALSE(limited.more());

  // Sort: each target gives a different order over these three keys.
  using RR = pb::RangeRequest;
  CHECK(Keys(Sorted(s, RR::KEY, RR::NONE)) == V{"r/a", "r/b", "r/c"});
  CHECK(Keys(Sorted(s, RR::KEY, RR::ASCEND)) == V{"r/a", "r/b", "r/c"});
  CHECK(Keys(Sorted(s, RR::KEY, RR::DESCEND)) == V{"r/c", "r/b", "r/a"});
  CHECK(Keys(Sorted(s, RR::VERSION, RR::ASCEND)) == V{"r/c", "r/a", "r/b"});
  CHECK(Keys(Sorted(s, RR::VERSION, RR::DESCEND)) == V{"r/b", "r/a", "r/c"});
  CHECK(Keys(Sorted(s, RR::VERSION, RR::NONE)) == V{"r/c", "r/a", "r/b"});  // NONE = ASCEND
  CHECK(Keys(Sorted(s, RR::CREATE, RR::ASCEND)) == V{"r/c", "r/a", "r/b"});
  CHECK(Keys(Sorted(s, RR::CREATE, RR::DESCEND)) == V{"r/b", "r/a", "r/c"});
  CHECK(Keys(Sorted(s, RR::MOD, RR::ASCEND)) == V{"r/c", "r/a", "r/b"});
  CHECK(Keys(Sorted(s, RR::MOD, RR::DESCEND)) == V{"r/b", "r/a", "r/c"});
  CHECK(Keys(Sorted(s, RR::VALUE, RR::ASCEND)) == V{"r/a", "r/c", "r/b"});
  CHECK(Keys(Sorted(s, RR::VALUE, RR::DESCEND)) == V{"r/b", "r/c", "r/a"});
  CHECK(Keys(Sorted(s, RR::VALUE, RR::NONE)) == V{"r/a", "r/c", "r/b"});
  // Sorting happens before the limit.
  req = RangeReq("r/", "r0");
  req.set_sort_target(RR::MOD);
  req.set_sort_order(RR::DESCEND);
  req.set_limit(1);
  limited = Range(s, req);
  CHECK(Keys(limited) == V{"r/b"});
  CHECK(limited.count() == 3);
  CHECK(limited.more());

  // keys_only drops only the value; count_only drops the kvs.
  req = RangeReq("r/", "r0");
  req.set_keys_only(true);
  auto keys_only = Range(s, req);
  REQUIRE(keys_only.kvs_size() == 3);
  CheckKv(keys_only.kvs(1), "r/b", "", 4, 7, 3);
  CHECK(keys_only.count() == 3);
  req = RangeReq("r/", "r0");
  req.set_count_only(true);
  auto count_only = Range(s, req);
  CHECK(count_only.kvs_size() == 0);
  CHECK(count_only.count() == 3);
  CHECK_FALSE(count_only.more());

  // min/max mod/create revision filters; count stays the unfiltered total.
  req = RangeReq("r/", "r0");
  req.set_min_mod_revision(6);
  auto filtered = Range(s, req);
  CHECK(Keys(filtered) == V{"r/b"});
  CHECK(filtered.count() == 3);
  req = RangeReq("r/", "r0");
  req.set_max_mod_revision(5);
  CHECK(Keys(Range(s, req)) == V{"r/a", "r/c"});
  req = RangeReq("r/", "r0");
  req.set_min_create_revision(3);
  CHECK(Keys(Range(s, req)) == V{"r/a", "r/b"});
  req = RangeReq("r/", "r0");
  req.set_max_create_revision(3);
  CHECK(Keys(Range(s, req)) == V{"r/a", "r/c"});
  req = RangeReq("r/", "r0");
  req.set_min_mod_revision(8);
  filtered = Range(s, req);
  CHECK(filtered.kvs_size() == 0);
  CHECK(filtered.count() == 3);

  // revision: the state as of revision 4.
  req = RangeReq("r/", "r0");
  req.set_revision(4);
  auto old = Range(s, req);
  s.CheckHeader(old.header(), 9);  // the header carries the current revision
  REQUIRE(old.kvs_size() == 3);
  CheckKv(old.kvs(0), "r/a", "3", 3, 3, 1);
  CheckKv(old.kvs(1), "r/b", "2", 4, 4, 1);
  CheckKv(old.kvs(2), "r/c", "1", 2, 2, 1);
  req.set_revision(1);
  CHECK(Range(s, req).kvs_size() == 0);
  req.set_revision(10);
  CallFails(*s.on().kv, &pb::KV::Stub::Range, req, StatusCode::OUT_OF_RANGE,
            "etcdserver: mvcc: required revision is a future revision");

  // serializable: a single member serves the same data locally.
  req = RangeReq("r/", "r0");
  req.set_serializable(true);
  auto serializable = Range(s, req);
  s.CheckHeader(serializable.header(), 9);
  CHECK(Keys(serializable) == V{"r/a", "r/b", "r/c"});

  // Keys compare as unsigned bytes; a prefix ending in 0xff increments the byte before it.
  Put(s, std::string("u\x01", 2), "");
  Put(s, std::string("u\x7f", 2), "");
  Put(s, std::string("u\x80", 2), "");
  Put(s, std::string("u\xff", 2), "");
  Put(s, std::string("u\xff\x01", 3), "");
  Put(s, "v", "");
  CHECK(Keys(Get(s, "u", "v")) == V{std::string("u\x01", 2), std::string("u\x7f", 2),
                                    std::string("u\x80", 2), std::string("u\xff", 2),
                                    std::string("u\xff\x01", 3)});
  CHECK(Keys(Get(s, std::string("u\xff", 2), "v")) ==
        V{std::string("u\xff", 2), std::string("u\xff\x01", 3)});
}

TEST_CASE("Txn round trip: every compare target and result, range compares, nested txn",
          "[compat][kv]") {
  // Goal: Compare's fields (incl. the oneof and range_end = 64) and every RequestOp and
  // ResponseOp variant decode as etcd means them.
  Server s;
  pb::LeaseGrantRequest grant;
  grant.set_ttl(600);
  const std::int64_t lease = Call(*s.on().lease, &pb::Lease::Stub::LeaseGrant, grant).id();
  Put(s, "t/a", "m");         // rev 2
  Put(s, "t/a", "m");         // rev 3: t/a create 2 mod 3 version 2
  Put(s, "t/b", "z", lease);  // rev 4: t/b create 4 mod 4 version 1 lease

  using C = pb::Compare;
  struct Case {
    C compare;
    bool succeeded;
  };
  const std::vector<Case> cases = {
      {Cmp("t/a", C::VERSION, C::EQUAL, 2), true},
      {Cmp("t/a", C::VERSION, C::EQUAL, 1), false},
      {Cmp("t/a", C::VERSION, C::NOT_EQUAL, 1), true},
      {Cmp("t/a", C::VERSION, C::GREATER, 1), true},
      {Cmp("t/a", C::VERSION, C::GREATER, 2), false},
      {Cmp("t/a", C::VERSION, C::LESS, 3), true},
      {Cmp("t/a", C::VERSION, C::LESS, 2), false},
      {Cmp("t/a", C::CREATE, C::EQUAL, 2), true},
      {Cmp("t/a", C::CREATE, C::EQUAL, 3), false},
      {Cmp("t/a", C::CREATE, C::GREATER, 1), true},
      {Cmp("t/a", C::CREATE, C::LESS, 2), false},
      {Cmp("t/a", C::MOD, C::EQUAL, 3), true},
      {Cmp("t/a", C::MOD, C::EQUAL, 2), false},
      {Cmp("t/a", C::MOD, C::NOT_EQUAL, 3), false},
      {Cmp("t/a", C::MOD, C::LESS, 4), true},
      {Cmp("t/a", C::VALUE, C::EQUAL, 0, "m"), true},
      {Cmp("t/a", C::VALUE, C::EQUAL, 0, "n"), false},
      {Cmp("t/a", C::VALUE, C::GREATER, 0, "l"), true},
      {Cmp("t/a", C::VALUE, C::LESS, 0, "l"), false},
      {Cmp("t/a", C::VALUE, C::NOT_EQUAL, 0, "m"), false},
      {Cmp("t/b", C::LEASE, C::EQUAL, lease), true},
      {Cmp("t/b", C::LEASE, C::EQUAL, 0), false},
      {Cmp("t/a", C::LEASE, C::EQUAL, 0), true},
      {Cmp("t/b", C::LEASE, C::GREATER, 0), true},
      // A missing key compares as a zero KeyValue, except that VALUE is always false.
      {Cmp("t/none", C::VERSION, C::EQUAL, 0), true},
      {Cmp("t/none", C::CREATE, C::EQUAL, 0), true},
      {Cmp("t/none", C::MOD, C::EQUAL, 0), true},
      {Cmp("t/none", C::VALUE, C::EQUAL, 0, ""), false},
      {Cmp("t/none", C::VALUE, C::NOT_EQUAL, 0, "x"), false},
  };
  for (const auto& c : cases) {
    INFO("compare {" << c.compare.ShortDebugString() << "}");
    pb::TxnRequest txn;
    *txn.add_compare() = c.compare;
    *txn.add_success() = OpRange("t/a");
    *txn.add_failure() = OpRange("t/b");
    const auto resp = Call(*s.on().kv, &pb::KV::Stub::Txn, txn);
    s.CheckHeader(resp.header(), 4);  // read-only: no new revision
    CHECK(resp.succeeded() == c.succeeded);
    REQUIRE(resp.responses_size() == 1);
    REQUIRE(resp.responses(0).has_response_range());
    const auto& range = resp.responses(0).response_range();
    REQUIRE(range.kvs_size() == 1);
    if (c.succeeded) {
      CheckKv(range.kvs(0), "t/a", "m", 2, 3, 2);
    } else {
      CheckKv(range.kvs(0), "t/b", "z", 4, 4, 1, lease);
    }
  }

  // range_end compares: every key in [t/, t0) must satisfy the compare.
  auto ranged = Cmp("t/", C::VERSION, C::GREATER, 0);
  ranged.set_range_end("t0");
  pb::TxnRequest txn;
  *txn.add_compare() = ranged;
  CHECK(Call(*s.on().kv, &pb::KV::Stub::Txn, txn).succeeded());
  ranged = Cmp("t/", C::VERSION, C::GREATER, 1);  // t/b has version 1
  ranged.set_range_end("t0");
  *txn.mutable_compare(0) = ranged;
  CHECK_FALSE(Call(*s.on().kv, &pb::KV::Stub::Txn, txn).succeeded());
  ranged = Cmp("t/", C::MOD, C::LESS, 5);
  ranged.set_range_end("t0");
  *txn.mutable_compare(0) = ranged;
  txn.add_compare()->CopyFrom(Cmp("t/a", C::VALUE, C::EQUAL, 0, "m"));  // compares are ANDed
  CHECK(Call(*s.on().kv, &pb::KV::Stub::Txn, txn).succeeded());

  // A writing txn with every op type and a nested txn: one revision for all of it.
  txn.Clear();
  *txn.add_compare() = Cmp("t/a", C::VERSION, C::EQUAL, 2);
  *txn.add_success() = OpPut("t/c", "1");
  *txn.add_success() = OpPut("t/d", "2");
  *txn.add_success() = OpDelete("t/b", "", true);
  *txn.add_success() = OpRange("t/", "t0");  // sees the txn's own writes
  // Observed: every compare, nested ones included, is evaluated against the state *before*
  // the outer txn runs (etcd computes the whole execution path first), so t/c does not exist
  // yet for this compare, while the nested Range below does see it.
  pb::TxnRequest inner;
  *inner.add_compare() = Cmp("t/c", C::VERSION, C::EQUAL, 0);
  *inner.add_success() = OpRange("t/c");
  *inner.add_failure() = OpPut("t/never", "x");
  pb::RequestOp nested;
  *nested.mutable_request_txn() = inner;
  *txn.add_success() = nested;
  *txn.add_failure() = OpPut("t/failed", "x");
  const auto resp = Call(*s.on().kv, &pb::KV::Stub::Txn, txn);
  s.CheckHeader(resp.header(), 5);
  CHECK(resp.succeeded());
  REQUIRE(resp.responses_size() == 5);
  REQUIRE(resp.responses(0).has_response_put());
  CHECK(resp.responses(0).response_put().header().revision() == 5);
  CHECK_FALSE(resp.responses(0).response_put().has_prev_kv());
  REQUIRE(resp.responses(1).has_response_put());
  REQUIRE(resp.responses(2).has_response_delete_range());
  const auto& deleted = resp.responses(2).response_delete_range();
  CHECK(deleted.header().revision() == 5);
  CHECK(deleted.deleted() == 1);
  REQUIRE(deleted.prev_kvs_size() == 1);
  CheckKv(deleted.prev_kvs(0), "t/b", "z", 4, 4, 1, lease);
  REQUIRE(resp.responses(3).has_response_range());
  const auto& seen = resp.responses(3).response_range();
  CHECK(seen.header().revision() == 5);
  REQUIRE(seen.kvs_size() == 3);
  CheckKv(seen.kvs(0), "t/a", "m", 2, 3, 2);
  CheckKv(seen.kvs(1), "t/c", "1", 5, 5, 1);
  CheckKv(seen.kvs(2), "t/d", "2", 5, 5, 1);
  CHECK(seen.count() == 3);
  REQUIRE(resp.responses(4).has_response_txn());
  const auto& nested_resp = resp.responses(4).response_txn();
  CHECK(nested_resp.succeeded());
  // Observed: etcd sends the nested TxnResponse's header empty (no revision), while the ops
  // inside carry it; clients do not read it, so it is not asserted.
  REQUIRE(nested_resp.responses_size() == 1);
  REQUIRE(nested_resp.responses(0).has_response_range());
  REQUIRE(nested_resp.responses(0).response_range().kvs_size() == 1);
  CheckKv(nested_resp.responses(0).response_range().kvs(0), "t/c", "1", 5, 5, 1);
  CHECK(Get(s, "t/", "t0").count() == 3);
  CHECK(Get(s, "t/failed").count() == 0);
  CHECK(Get(s, "t/never").count() == 0);

  // The failure branch runs when the compare is false.
  txn.Clear();
  *txn.add_compare() = Cmp("t/a", C::VERSION, C::EQUAL, 9);
  *txn.add_success() = OpPut("t/x", "1");
  *txn.add_failure() = OpPut("t/y", "2");
  const auto failed = Call(*s.on().kv, &pb::KV::Stub::Txn, txn);
  s.CheckHeader(failed.header(), 6);
  CHECK_FALSE(failed.succeeded());
  REQUIRE(failed.responses_size() == 1);
  CHECK(failed.responses(0).has_response_put());
  CheckKv(Get(s, "t/y").kvs(0), "t/y", "2", 6, 6, 1);
  CHECK(Get(s, "t/x").count() == 0);

  // Validation errors.
  txn.Clear();
  *txn.add_success() = OpPut("t/dup", "1");
  *txn.add_success() = OpPut("t/dup", "2");
  CallFails(*s.on().kv, &pb::KV::Stub::Txn, txn, StatusCode::INVALID_ARGUMENT,
            "etcdserver: duplicate key given in txn request");
  txn.Clear();
  txn.add_success();  // an empty RequestOp
  CallFails(*s.on().kv, &pb::KV::Stub::Txn, txn, StatusCode::INVALID_ARGUMENT,
            "etcdserver: key not found");
  txn.Clear();
  for (int i = 0; i < 129; ++i) *txn.add_success() = OpPut("t/many" + std::to_string(i), "");
  CallFails(*s.on().kv, &pb::KV::Stub::Txn, txn, StatusCode::INVALID_ARGUMENT,
            "etcdserver: too many operations in txn request");
  CHECK(CurrentRevision(s) == 6);
}

TEST_CASE("DeleteRange with prev_kv, Compact errors, HashKV and Hash", "[compat][kv]") {
  // Goal: DeleteRangeResponse fields, compaction's exact error codes and messages, and the
  // compact_revision / hash fields of the maintenance hashes.
  Server s;
  Put(s, "d/1", "a");  // rev 2
  Put(s, "d/2", "b");  // rev 3
  Put(s, "d/3", "c");  // rev 4
  Put(s, "d/2", "B");  // rev 5

  auto del = DeleteReq("d/1", "d/3");
  del.set_prev_kv(true);
  const auto deleted = Call(*s.on().kv, &pb::KV::Stub::DeleteRange, del);
  s.CheckHeader(deleted.header(), 6);
  CHECK(deleted.deleted() == 2);
  REQUIRE(deleted.prev_kvs_size() == 2);
  CheckKv(deleted.prev_kvs(0), "d/1", "a", 2, 2, 1);
  CheckKv(deleted.prev_kvs(1), "d/2", "B", 3, 5, 2);
  const auto none = Call(*s.on().kv, &pb::KV::Stub::DeleteRange, DeleteReq("d/1"));
  s.CheckHeader(none.header(), 6);  // nothing deleted: no new revision
  CHECK(none.deleted() == 0);
  CHECK(none.prev_kvs_size() == 0);
  const auto plain = Call(*s.on().kv, &pb::KV::Stub::DeleteRange, DeleteReq("d/3"));
  s.CheckHeader(plain.header(), 7);
  CHECK(plain.deleted() == 1);
  CHECK(plain.prev_kvs_size() == 0);  // not asked for
  CallFails(*s.on().kv, &pb::KV::Stub::DeleteRange, DeleteReq(""), StatusCode::INVALID_ARGUMENT,
            "etcdserver: key is not provided");

  pb::HashKVRequest hash_req;
  hash_req.set_revision(5);
  const auto hash5 = Call(*s.on().maintenance, &pb::Maintenance::Stub::HashKV, hash_req);
  s.CheckHeader(hash5.header(), 7);
  CHECK(hash5.hash() != 0);
  CHECK(hash5.compact_revision() == -1);  // observed: -1 while nothing was ever compacted
  hash_req.set_revision(7);
  const auto hash7 = Call(*s.on().maintenance, &pb::Maintenance::Stub::HashKV, hash_req);
  CHECK(hash7.hash() != hash5.hash());
  hash_req.set_revision(0);  // 0 = latest
  CHECK(Call(*s.on().maintenance, &pb::Maintenance::Stub::HashKV, hash_req).hash() == hash7.hash());
  hash_req.set_revision(8);
  CallFails(*s.on().maintenance, &pb::Maintenance::Stub::HashKV, hash_req, StatusCode::OUT_OF_RANGE,
            "etcdserver: mvcc: required revision is a future revision");
  const auto hash = Call(*s.on().maintenance, &pb::Maintenance::Stub::Hash, {});
  s.CheckHeader(hash.header(), 7);
  CHECK(hash.hash() != 0);

  pb::CompactionRequest compact;
  compact.set_revision(8);
  CallFails(*s.on().kv, &pb::KV::Stub::Compact, compact, StatusCode::OUT_OF_RANGE,
            "etcdserver: mvcc: required revision is a future revision");
  compact.set_revision(5);
  compact.set_physical(true);
  const auto compacted = Call(*s.on().kv, &pb::KV::Stub::Compact, compact);
  s.CheckHeader(compacted.header(), 7);
  compact.set_physical(false);
  CallFails(*s.on().kv, &pb::KV::Stub::Compact, compact, StatusCode::OUT_OF_RANGE,
            "etcdserver: mvcc: required revision has been compacted");
  compact.set_revision(4);
  CallFails(*s.on().kv, &pb::KV::Stub::Compact, compact, StatusCode::OUT_OF_RANGE,
            "etcdserver: mvcc: required revision has been compacted");

  auto range = RangeReq("d/", "d0");
  range.set_revision(4);
  CallFails(*s.on().kv, &pb::KV::Stub::Range, range, StatusCode::OUT_OF_RANGE,
            "etcdserver: mvcc: required revision has been compacted");
  range.set_revision(5);  // == the compact revision is still readable
  const auto at5 = Range(s, range);
  REQUIRE(at5.kvs_size() == 3);
  CheckKv(at5.kvs(1), "d/2", "B", 3, 5, 2);

  hash_req.set_revision(5);  // HashKV needs revision > compact revision
  CallFails(*s.on().maintenance, &pb::Maintenance::Stub::HashKV, hash_req, StatusCode::OUT_OF_RANGE,
            "etcdserver: mvcc: required revision has been compacted");
  hash_req.set_revision(0);
  const auto after = Call(*s.on().maintenance, &pb::Maintenance::Stub::HashKV, hash_req);
  CHECK(after.compact_revision() == 5);
  CHECK(after.hash() != 0);
  compact.set_revision(7);  // == current is allowed
  s.CheckHeader(Call(*s.on().kv, &pb::KV::Stub::Compact, compact).header(), 7);
}
