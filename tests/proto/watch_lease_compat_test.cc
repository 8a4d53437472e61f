// Wire round trip of the Watch and Lease services (bidirectional streams included) through our
// generated stubs against a real etcd 3.4.23 (or $KV_COMPAT_SERVER).
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/proto/etcd_client.h"

namespace {

using namespace kvcompat;  // NOLINT(google-build-using-namespace): test file
using grpc::StatusCode;

// At most this many responses are read while waiting for a given number of events.
constexpr int kResponsesMax = 100;

class WatchStream {
 public:
  explicit WatchStream(Server& s) {
    ctx_.set_deadline(kvtest::DeadlineIn(kStreamTimeout));
    stream_ = s.on().watch->Watch(&ctx_);
  }
  ~WatchStream() { ctx_.TryCancel(); }
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  void Send(const pb::WatchRequest& req) { REQUIRE(stream_->Write(req)); }
  void Create(const pb::WatchCreateRequest& create) {
    pb::WatchRequest req;
    *req.mutable_create_request() = create;
    Send(req);
  }
  void Cancel(std::int64_t watch_id) {
    pb::WatchRequest req;
    req.mutable_cancel_request()->set_watch_id(watch_id);
    Send(req);
  }
  void Progress() {
    pb::WatchRequest req;
    req.mutable_progress_request();
    Send(req);
  }
  // The next response; fails the test if the stream ends first (bounded by the deadline).
  pb::WatchResponse Next() {
    pb::WatchResponse resp;
    REQUIRE(stream_->Read(&resp));
    const auto unknown = UnknownFieldPaths(resp);
    INFO("WatchResponse {" << resp.ShortDebugString() << "}");
    CHECK(unknown.empty());
    return resp;
  }
  // Half-closes, cancels and returns the final status. Observed: etcd 3.4 does not end a
  // watch stream on the client's half-close (it waits for the client to cancel), unlike the
  // lease keep-alive stream, so a client has to cancel.
  grpc::Status Finish() {
    REQUIRE(stream_->WritesDone());
    ctx_.TryCancel();
    pb::WatchResponse resp;
    for (int i = 0; i < kResponsesMax && stream_->Read(&resp); ++i) {
    }
    return stream_->Finish();
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream_;
};

pb::WatchCreateRequest CreateReq(const std::string& key, const std::string& range_end = "") {
  pb::WatchCreateRequest create;
  create.set_key(key);
  create.set_range_end(range_end);
  return create;
}

void CheckCreated(const Server& s, const pb::WatchResponse& resp, std::int64_t watch_id,
                  std::int64_t revision) {
  INFO("WatchResponse {" << resp.ShortDebugString() << "}");
  s.CheckHeader(resp.header(), revision);
  CHECK(resp.watch_id() == watch_id);
  CHECK(resp.created());
  CHECK_FALSE(resp.canceled());
  CHECK(resp.compact_revision() == 0);
  CHECK(resp.cancel_reason().empty());
  CHECK_FALSE(resp.fragment());
  CHECK(resp.events_size() == 0);
}

void CheckRejected(const Server& s, const pb::WatchResponse& resp, std::int64_t revision,
                   const std::string& reason) {
  INFO("WatchResponse {" << resp.ShortDebugString() << "}");
  s.CheckHeader(resp.header(), revision);
  CHECK(resp.watch_id() == -1);
  CHECK(resp.created());
  CHECK(resp.canceled());
  CHECK(resp.cancel_reason() == reason);
  CHECK(resp.events_size() == 0);
}

// A live event response: one revision, events of one watcher.
void CheckEventResponse(const Server& s, const pb::WatchResponse& resp, std::int64_t watch_id,
                        std::int64_t revision, int events) {
  INFO("WatchResponse {" << resp.ShortDebugString() << "}");
  s.CheckHeader(resp.header(), revision);
  CHECK(resp.watch_id() == watch_id);
  CHECK_FALSE(resp.created());
  CHECK_FALSE(resp.canceled());
  CHECK(resp.compact_revision() == 0);
  CHECK_FALSE(resp.fragment());
  CHECK(resp.events_size() == events);
}

pb::LeaseGrantResponse Grant(Server& s, std::int64_t ttl, std::int64_t id = 0) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl);
  req.set_id(id);
  return Call(*s.on().lease, &pb::Lease::Stub::LeaseGrant, req);
}

pb::LeaseTimeToLiveResponse TimeToLive(Server& s, std::int64_t id, bool keys) {
  pb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(keys);
  return Call(*s.on().lease, &pb::Lease::Stub::LeaseTimeToLive, req);
}

}  // namespace

TEST_CASE("Watch stream round trip: create options, events, ids, progress, cancel, compaction",
          "[compat][watch]") {
  // Goal: every WatchRequest variant and WatchCreateRequest field is understood, and every
  // WatchResponse field (events at 11, compact_revision, cancel_reason) decodes as etcd means.
  Server s;
  Put(s, "a", "1");  // rev 2
  Put(s, "a", "2");  // rev 3
  WatchStream w(s);

  // Catch-up from revision 2 with prev_kv; the first auto id is 0.
  auto create = CreateReq("a");
  create.set_start_revision(2);
  create.set_prev_kv(true);
  w.Create(create);
  CheckCreated(s, w.Next(), 0, 3);  // the header carries the current revision
  std::vector<mvccpb::Event> events;
  for (int i = 0; i < kResponsesMax && events.size() < 2; ++i) {
    const auto resp = w.Next();
    CHECK(resp.watch_id() == 0);
    CHECK(resp.header().revision() == 3);
    events.insert(events.end(), resp.events().begin(), resp.events().end());
  }
  REQUIRE(events.size() == 2);
  CHECK(events[0].type() == mvccpb::Event::PUT);
  CheckKv(events[0].kv(), "a", "1", 2, 2, 1);
  CHECK_FALSE(events[0].has_prev_kv());  // a create has no previous kv
  CHECK(events[1].type() == mvccpb::Event::PUT);
  CheckKv(events[1].kv(), "a", "2", 2, 3, 2);
  REQUIRE(events[1].has_prev_kv());
  CheckKv(events[1].prev_kv(), "a", "1", 2, 2, 1);

  // Explicit id, a range, and a NOPUT filter.
  create = CreateReq("b", "c");
  create.set_watch_id(100);
  create.add_filters(pb::WatchCreateRequest::NOPUT);
  w.Create(create);
  CheckCreated(s, w.Next(), 100, 3);
  // Auto ids skip ids in use and continue at 1; NODELETE filter.
  create = CreateReq("z");
  create.add_filters(pb::WatchCreateRequest::NODELETE);
  w.Create(create);
  CheckCreated(s, w.Next(), 1, 3);
  // Failed creates answer created+canceled with watch_id -1 and a reason.
  create = CreateReq("y");
  create.set_watch_id(100);
  w.Create(create);
  CheckRejected(s, w.Next(), 3, "mvcc: duplicate watch ID provided on the WatchStream");
  w.Create(CreateReq("q", "p"));
  CheckRejected(s, w.Next(), 3, "mvcc: watcher range is empty");

  Put(s, "b1", "x");  // rev 4: filtered out for watcher 100, so no response
  Put(s, "z", "1");   // rev 5
  auto resp = w.Next();
  CheckEventResponse(s, resp, 1, 5, 1);
  CHECK(resp.events(0).type() == mvccpb::Event::PUT);
  CheckKv(resp.events(0).kv(), "z", "1", 5, 5, 1);
  CHECK_FALSE(resp.events(0).has_prev_kv());  // not asked for

  Call(*s.on().kv, &pb::KV::Stub::DeleteRange, DeleteReq("b1"));  // rev 6
  resp = w.Next();
  CheckEventResponse(s, resp, 100, 6, 1);
  CHECK(resp.events(0).type() == mvccpb::Event::DELETE);
  CheckKv(resp.events(0).kv(), "b1", "", 0, 6, 0);  // a tombstone: key and mod_revision only
  CHECK_FALSE(resp.events(0).has_prev_kv());

  Call(*s.on().kv, &pb::KV::Stub::DeleteRange, DeleteReq("z"));  // rev 7: NODELETE for 1
  Put(s, "a", "3");                                              // rev 8
  resp = w.Next();
  CheckEventResponse(s, resp, 0, 8, 1);
  CHECK(resp.events(0).type() == mvccpb::Event::PUT);
  CheckKv(resp.events(0).kv(), "a", "3", 2, 8, 3);
  CheckKv(resp.events(0).prev_kv(), "a", "2", 2, 3, 2);

  // A txn deleting two watched keys: one response, two events, in op order.
  Put(s, "b3", "p");  // rev 9, filtered
  Put(s, "b4", "q");  // rev 10, filtered
  pb::TxnRequest txn;
  *txn.add_success()->mutable_request_delete_range() = DeleteReq("b4");
  *txn.add_success()->mutable_request_delete_range() = DeleteReq("b3");
  Call(*s.on().kv, &pb::KV::Stub::Txn, txn);  // rev 11
  resp = w.Next();
  CheckEventResponse(s, resp, 100, 11, 2);
  CHECK(resp.events(0).type() == mvccpb::Event::DELETE);
  CheckKv(resp.events(0).kv(), "b4", "", 0, 11, 0);
  CHECK(resp.events(1).type() == mvccpb::Event::DELETE);
  CheckKv(resp.events(1).kv(), "b3", "", 0, 11, 0);

  // progress_request: watch_id -1, the current revision, nothing else.
  w.Progress();
  resp = w.Next();
  s.CheckHeader(resp.header(), 11);
  CHECK(resp.watch_id() == -1);
  CHECK_FALSE(resp.created());
  CHECK_FALSE(resp.canceled());
  CHECK(resp.events_size() == 0);

  // Cancel: the canceled watcher answers; an unknown id gets no answer at all, which the
  // progress response right after it proves.
  w.Cancel(1);
  resp = w.Next();
  s.CheckHeader(resp.header(), 11);
  CHECK(resp.watch_id() == 1);
  CHECK(resp.canceled());
  CHECK_FALSE(resp.created());
  CHECK(resp.cancel_reason().empty());
  CHECK(resp.compact_revision() == 0);
  w.Cancel(999);
  w.Progress();
  resp = w.Next();
  CHECK(resp.watch_id() == -1);
  CHECK_FALSE(resp.canceled());
  Put(s, "z", "after-cancel");  // rev 12: watcher 1 is gone

  // Compaction: a watcher that starts below the compact revision is canceled with it.
  pb::CompactionRequest compact;
  compact.set_revision(6);
  Call(*s.on().kv, &pb::KV::Stub::Compact, compact);
  create = CreateReq("a");
  create.set_start_revision(3);
  create.set_watch_id(7);
  w.Create(create);
  CheckCreated(s, w.Next(), 7, 12);
  resp = w.Next();
  INFO("WatchResponse {" << resp.ShortDebugString() << "}");
  CHECK(resp.watch_id() == 7);
  CHECK(resp.canceled());
  CHECK_FALSE(resp.created());
  CHECK(resp.compact_revision() == 6);
  CHECK(resp.events_size() == 0);
  CHECK(resp.header().revision() == 0);  // observed: no revision in this header
  CHECK(resp.header().cluster_id() == s.cluster_id());

  // Watcher 0 is still live after all that.
  Put(s, "a", "4");  // rev 13
  resp = w.Next();
  CheckEventResponse(s, resp, 0, 13, 1);
  CheckKv(resp.events(0).kv(), "a", "4", 2, 13, 4);
  CheckKv(resp.events(0).prev_kv(), "a", "3", 2, 8, 3);

  const grpc::Status status = w.Finish();
  INFO("watch stream ended with " << status.error_code() << ": " << status.error_message());
  CHECK(status.error_code() == StatusCode::CANCELLED);
}

TEST_CASE("Watch fragment splits a large catch-up response, without it one response comes",
          "[compat][watch]") {
  // Goal: WatchCreateRequest.fragment (8) is honoured and WatchResponse.fragment (7) marks
  // every part but the last, once a response exceeds the 2 MiB send limit with >= 2 events.
  Server s;
  const std::string big(1000000, 'f');
  for (int i = 1; i <= 3; ++i) Put(s, "f/" + std::to_string(i), big);  // revs 2..4
  WatchStream w(s);
  auto create = CreateReq("f/", "f0");
  create.set_start_revision(2);
  create.set_fragment(true);
  w.Create(create);
  CheckCreated(s, w.Next(), 0, 4);
  std::vector<pb::WatchResponse> parts;
  for (int i = 0; i < kResponsesMax; ++i) {
    parts.push_back(w.Next());
    if (!parts.back().fragment()) break;
  }
  REQUIRE(parts.size() >= 2);
  int events = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    INFO("part " << i);
    CHECK(parts[i].watch_id() == 0);
    CHECK(parts[i].fragment() == (i + 1 < parts.size()));
    CHECK(parts[i].events_size() >= 1);
    for (const auto& event : parts[i].events()) {
      ++events;
      CheckKv(event.kv(), "f/" + std::to_string(events), big, events + 1, events + 1, 1);
    }
  }
  CHECK(events == 3);

  create.set_fragment(false);  // same watch, not fragmented: one response with all events
  create.set_watch_id(9);
  w.Create(create);
  CheckCreated(s, w.Next(), 9, 4);
  const auto whole = w.Next();
  CHECK(whole.watch_id() == 9);
  CHECK_FALSE(whole.fragment());
  CHECK(whole.events_size() == 3);
}

TEST_CASE("Watch progress_notify gets periodic empty responses with its own watch_id",
          "[compat][watch]") {
  // Goal: WatchCreateRequest.progress_notify (4) is honoured. etcd's interval is shortened
  // with --experimental-watch-progress-notify-interval (an etcd-compatible server must accept
  // that flag too); the wait for the notification is bounded by the stream deadline.
  Server s(1, {}, {"--experimental-watch-progress-notify-interval=200ms"});
  Put(s, "p", "1");  // rev 2
  WatchStream w(s);
  auto create = CreateReq("p");
  create.set_progress_notify(true);
  w.Create(create);
  CheckCreated(s, w.Next(), 0, 2);
  const auto resp = w.Next();
  s.CheckHeader(resp.header(), 2);
  CHECK(resp.watch_id() == 0);
  CHECK_FALSE(resp.created());
  CHECK_FALSE(resp.canceled());
  CHECK(resp.events_size() == 0);
}

TEST_CASE("Lease round trip: grant, keep-alive stream, time-to-live, leases, revoke",
          "[compat][lease]") {
  // Goal: every Lease request and response field, the keep-alive stream, and etcd's
  // non-error answers for unknown leases.
  Server s;
  const auto granted = Grant(s, 30);
  s.CheckHeader(granted.header(), 1);
  CHECK(granted.id() > 0);
  CHECK(granted.ttl() == 30);
  CHECK(granted.error().empty());
  const std::int64_t lease = granted.id();

  const auto chosen = Grant(s, 1, 0x1234);
  CHECK(chosen.id() == 0x1234);
  CHECK(chosen.ttl() == 2);  // raised to the minimum TTL (1.5 election timeouts, in s)
  pb::LeaseGrantRequest grant;
  grant.set_ttl(30);
  grant.set_id(0x1234);
  CallFails(*s.on().lease, &pb::Lease::Stub::LeaseGrant, grant, StatusCode::FAILED_PRECONDITION,
            "etcdserver: lease already exists");
  grant.set_id(0);
  grant.set_ttl(9000000001);
  CallFails(*s.on().lease, &pb::Lease::Stub::LeaseGrant, grant, StatusCode::OUT_OF_RANGE,
            "etcdserver: too large lease TTL");

  Put(s, "l/1", "a", lease);  // rev 2
  Put(s, "l/2", "b", lease);  // rev 3
  Put(s, "other", "c");       // rev 4
  CheckKv(Get(s, "l/1").kvs(0), "l/1", "a", 2, 2, 1, lease);

  auto ttl = TimeToLive(s, lease, true);
  s.CheckHeader(ttl.header(), 4);
  CHECK(ttl.id() == lease);
  CHECK(ttl.ttl() >= 25);  // remaining seconds, truncated: 29 right after the grant
  CHECK(ttl.ttl() <= 30);
  CHECK(ttl.grantedttl() == 30);
  REQUIRE(ttl.keys_size() == 2);
  CHECK(std::set<std::string>(ttl.keys().begin(), ttl.keys().end()) ==
        std::set<std::string>{"l/1", "l/2"});
  ttl = TimeToLive(s, lease, false);
  CHECK(ttl.keys_size() == 0);
  CHECK(ttl.grantedttl() == 30);
  const auto unknown = TimeToLive(s, 0x999, true);
  s.CheckHeader(unknown.header(), 4);
  CHECK(unknown.id() == 0x999);
  CHECK(unknown.ttl() == -1);  // unknown lease: not an error
  CHECK(unknown.grantedttl() == 0);
  CHECK(unknown.keys_size() == 0);

  const auto leases = Call(*s.on().lease, &pb::Lease::Stub::LeaseLeases, {});
  s.CheckHeader(leases.header(), 4);
  std::set<std::int64_t> ids;
  for (const auto& l : leases.leases()) ids.insert(l.id());
  CHECK(ids == std::set<std::int64_t>{lease, 0x1234});

  {
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(kStreamTimeout));
    auto stream = s.on().lease->LeaseKeepAlive(&ctx);
    pb::LeaseKeepAliveRequest req;
    req.set_id(lease);
    REQUIRE(stream->Write(req));
    pb::LeaseKeepAliveResponse resp;
    REQUIRE(stream->Read(&resp));
    CHECK(UnknownFieldPaths(resp).empty());
    s.CheckHeader(resp.header(), 4);
    CHECK(resp.id() == lease);
    CHECK(resp.ttl() == 30);  // the full granted TTL
    req.set_id(0x999);
    REQUIRE(stream->Write(req));
    REQUIRE(stream->Read(&resp));
    CHECK(resp.id() == 0x999);
    CHECK(resp.ttl() == 0);  // unknown lease: TTL 0, the stream stays open
    req.set_id(0x1234);
    REQUIRE(stream->Write(req));
    REQUIRE(stream->Read(&resp));
    CHECK(resp.id() == 0x1234);
    CHECK(resp.ttl() == 2);
    REQUIRE(stream->WritesDone());
    for (int i = 0; i < 10 && stream->Read(&resp); ++i) {
    }
    const grpc::Status status = stream->Finish();
    INFO("keep-alive stream ended with " << status.error_code() << ": " << status.error_message());
    CHECK(status.ok());
  }

  pb::LeaseRevokeRequest revoke;
  revoke.set_id(lease);
  const auto revoked = Call(*s.on().lease, &pb::Lease::Stub::LeaseRevoke, revoke);
  s.CheckHeader(revoked.header(), 5);  // both keys deleted in one revision
  CHECK(Get(s, "l/", "l0").count() == 0);
  CHECK(Get(s, "other").count() == 1);
  CHECK(TimeToLive(s, lease, false).ttl() == -1);
  CallFails(*s.on().lease, &pb::Lease::Stub::LeaseRevoke, revoke, StatusCode::NOT_FOUND,
            "etcdserver: requested lease not found");
  CallFails(*s.on().kv, &pb::KV::Stub::Put, PutReq("l/3", "x", lease), StatusCode::NOT_FOUND,
            "etcdserver: requested lease not found");
}
