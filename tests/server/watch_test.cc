// Integration tests of the Watch service: real kvd processes on loopback ports with temp data
// dirs (tests/support), watched through etcdctl 3.4.23 and through the etcd v3 gRPC stub. Every
// wait is bounded (gRPC deadlines, child timeouts); the cluster objects kill their processes and
// remove their data even when an assertion fails.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "tests/server/kvd_test_util.h"
#include "tests/support/cluster.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"

namespace {

using std::chrono::milliseconds;

using kvdtest::KvdOptions;

// Puts k=v on `ep` and returns the revision of the write (0 on failure, with INFO).
int64_t Put(const std::string& ep, const std::string& k, const std::string& v) {
  auto stub = etcdserverpb::KV::NewStub(kvtest::MakeChannel(ep));
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
  etcdserverpb::PutRequest req;
  req.set_key(k);
  req.set_value(v);
  etcdserverpb::PutResponse resp;
  grpc::Status s = stub->Put(&ctx, req, &resp);
  INFO("put " << k << ": " << s.error_message());
  REQUIRE(s.ok());
  return resp.header().revision();
}

int64_t Delete(const std::string& ep, const std::string& k) {
  auto stub = etcdserverpb::KV::NewStub(kvtest::MakeChannel(ep));
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
  etcdserverpb::DeleteRangeRequest req;
  req.set_key(k);
  etcdserverpb::DeleteRangeResponse resp;
  grpc::Status s = stub->DeleteRange(&ctx, req, &resp);
  INFO("delete " << k << ": " << s.error_message());
  REQUIRE(s.ok());
  REQUIRE(resp.deleted() == 1);
  return resp.header().revision();
}

void Compact(const std::string& ep, int64_t revision) {
  auto stub = etcdserverpb::KV::NewStub(kvtest::MakeChannel(ep));
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(true);
  etcdserverpb::CompactionResponse resp;
  grpc::Status s = stub->Compact(&ctx, req, &resp);
  INFO("compact: " << s.error_message());
  REQUIRE(s.ok());
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command under a 10 s timeout and returns its output.
std::string Shell(const std::string& cmd) {
  std::string full = "timeout 10 " + cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return "popen failed";
  std::string out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

// Polls /metrics (up to ~5 s) until it contains `line`.
bool WaitForMetric(uint16_t port, const std::string& line) {
  std::string out;
  for (int i = 0; i < 50; ++i) {
    out = Shell("curl -s http://127.0.0.1:" + std::to_string(port) + "/metrics");
    if (out.find(line) != std::string::npos) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  UNSCOPED_INFO("last /metrics:\n" << out.substr(0, 4000));
  return false;
}

// A Watch stream through the generated stub. Every Read is bounded by the context deadline.
class WatchClient {
 public:
  explicit WatchClient(const std::string& ep)
      : stub_(etcdserverpb::Watch::NewStub(kvtest::MakeChannel(ep))) {
    ctx_.set_deadline(kvtest::DeadlineIn(milliseconds(30000)));
    stream_ = stub_->Watch(&ctx_);
  }
  ~WatchClient() {
    // Cancel (like a client going away), then collect the status so the call is released.
    ctx_.TryCancel();
    (void)stream_->Finish();
  }

  void Create(const std::string& key, int64_t start_revision, bool prev_kv) {
    etcdserverpb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(key);
    c->set_start_revision(start_revision);
    c->set_prev_kv(prev_kv);
    REQUIRE(stream_->Write(req));
  }
  void WritesDone() { REQUIRE(stream_->WritesDone()); }
  void Cancel(int64_t watch_id) {
    etcdserverpb::WatchRequest req;
    req.mutable_cancel_request()->set_watch_id(watch_id);
    REQUIRE(stream_->Write(req));
  }
  etcdserverpb::WatchResponse Next() {
    etcdserverpb::WatchResponse r;
    REQUIRE(stream_->Read(&r));
    return r;
  }
  // Reads responses until `count` events arrived (all for `watch_id`) and returns the events.
  std::vector<mvccpb::Event> Events(int64_t watch_id, size_t count) {
    std::vector<mvccpb::Event> out;
    while (out.size() < count) {
      etcdserverpb::WatchResponse r = Next();
      REQUIRE(r.watch_id() == watch_id);
      REQUIRE_FALSE(r.canceled());
      REQUIRE(r.events_size() > 0);
      for (const auto& e : r.events()) out.push_back(e);
    }
    REQUIRE(out.size() == count);
    return out;
  }

 private:
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      stream_;
};

}  // namespace

TEST_CASE("etcdctl watch on one member sees puts and deletes made through the others",
          "[integration]") {
  // Goal: events applied on a member reach an etcdctl 3.4.23 watch (hasleader stream) served by
  // another member, in order and in etcdctl's output format.
  auto c = kvtest::StartEtcdLikeCluster(KvdOptions(3));
  // Start the watch just after this write, so nothing is missed however long etcdctl takes.
  const int64_t base = Put(c->endpoint(1), "other", "x");
  kvtest::ProcessOptions po;
  po.argv = {"/usr/bin/timeout",
             "20",
             "/usr/bin/etcdctl",
             "--dial-timeout=3s",
             "--endpoints=" + c->endpoint(0),
             "watch",
             "wkey",
             "--rev=" + std::to_string(base + 1)};
  po.env = {{"ETCDCTL_API", "3"}};
  po.env_unset_prefixes = {"ETCDCTL_", "ETCD_"};
  po.log_path = c->dir() / "etcdctl-watch.log";
  kvtest::Process watch(po);

  Put(c->endpoint(1), "wkey", "v1");
  Put(c->endpoint(2), "unwatched", "u");
  Put(c->endpoint(2), "wkey", "v2");
  Delete(c->endpoint(1), "wkey");

  const std::string want = "PUT\nwkey\nv1\nPUT\nwkey\nv2\nDELETE\nwkey\n";
  std::string out;
  for (int i = 0; i < 200 && out.find(want) == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    out = ReadFile(po.log_path);
    if (!watch.Running()) break;
  }
  INFO("etcdctl watch output:\n" << out << "\n" << c->LogTails());
  CHECK(out.find(want) != std::string::npos);
  CHECK(out.find("unwatched") == std::string::npos);
  // etcdctl watch runs until interrupted: it is still running, the stream was not ended.
  CHECK(watch.Running());
  watch.Stop(milliseconds(2000));
}

TEST_CASE("watch stream: replay from a past revision then live, prev_kv, cancel, compaction",
          "[integration]") {
  // Goal: the gRPC pump delivers WatchableStore's semantics end to end on a real member.
  kvtest::ClusterOptions o = KvdOptions(1);
  const uint16_t metrics_port = kvtest::PickFreePort();
  o.extra_args = {"--listen-metrics-urls=http://127.0.0.1:" + std::to_string(metrics_port)};
  auto c = kvtest::StartEtcdLikeCluster(o);
  const std::string ep = c->endpoint(0);
  const int64_t r1 = Put(ep, "k", "v1");
  const int64_t r2 = Put(ep, "k", "v2");
  const int64_t r3 = Delete(ep, "k");

  WatchClient w(ep);
  w.Create("k", r1, /*prev_kv=*/true);
  etcdserverpb::WatchResponse created = w.Next();
  CHECK(created.created());
  CHECK(created.watch_id() == 0);
  CHECK(created.header().revision() == r3);
  CHECK(created.header().cluster_id() != 0);
  CHECK(created.header().member_id() != 0);
  CHECK(created.header().raft_term() != 0);

  // History, replayed in order, with prev_kv on the non-create events.
  std::vector<mvccpb::Event> past = w.Events(0, 3);
  CHECK(past[0].type() == mvccpb::Event::PUT);
  CHECK(past[0].kv().value() == "v1");
  CHECK(past[0].kv().mod_revision() == r1);
  CHECK_FALSE(past[0].has_prev_kv());
  CHECK(past[1].kv().value() == "v2");
  CHECK(past[1].prev_kv().value() == "v1");
  CHECK(past[2].type() == mvccpb::Event::DELETE);
  CHECK(past[2].kv().mod_revision() == r3);
  CHECK(past[2].prev_kv().value() == "v2");

  // Live: one response per revision, header revision = that revision (each read before the
  // next put: a response still queued would take the next revision's events too).
  const int64_t r4 = Put(ep, "k", "v3");
  etcdserverpb::WatchResponse live = w.Next();
  REQUIRE(live.events_size() == 1);
  CHECK(live.header().revision() == r4);
  CHECK(live.events(0).kv().value() == "v3");
  CHECK_FALSE(live.events(0).has_prev_kv());  // the key did not exist before
  const int64_t r5 = Put(ep, "k", "v4");
  live = w.Next();
  REQUIRE(live.events_size() == 1);
  CHECK(live.header().revision() == r5);
  CHECK(live.events(0).prev_kv().value() == "v3");

  // Cancel: answered, and later writes to k are no longer delivered (the next response is the
  // second watcher's event on another key).
  w.Cancel(0);
  etcdserverpb::WatchResponse canceled = w.Next();
  CHECK(canceled.canceled());
  CHECK(canceled.watch_id() == 0);
  w.Create("k2", 0, /*prev_kv=*/false);
  etcdserverpb::WatchResponse created2 = w.Next();
  CHECK(created2.created());
  const int64_t second_id = created2.watch_id();
  Put(ep, "k", "after-cancel");
  const int64_t r7 = Put(ep, "k2", "x");
  etcdserverpb::WatchResponse next = w.Next();
  CHECK(next.watch_id() == second_id);
  REQUIRE(next.events_size() == 1);
  CHECK(next.events(0).kv().key() == "k2");
  CHECK(next.header().revision() == r7);

  // Compaction: a watch from a compacted revision is created, then canceled with the compact
  // revision.
  Compact(ep, r5);
  w.Create("k", r2, /*prev_kv=*/false);
  etcdserverpb::WatchResponse created3 = w.Next();
  CHECK(created3.created());
  const int64_t third_id = created3.watch_id();
  etcdserverpb::WatchResponse compacted = w.Next();
  CHECK(compacted.watch_id() == third_id);
  CHECK(compacted.canceled());
  CHECK(compacted.compact_revision() == r5);
  CHECK(compacted.events_size() == 0);

  // The watcher gauge counts the one live watcher (k2): canceled and compacted ones are gone.
  // Six events went out so far: three replayed, three live.
  CHECK(WaitForMetric(metrics_port, "etcd_debugging_mvcc_watcher_total 1\n"));
  CHECK(WaitForMetric(metrics_port, "etcd_debugging_mvcc_watch_stream_total 1\n"));
  CHECK(WaitForMetric(metrics_port, "etcd_debugging_mvcc_events_total 6\n"));
  CHECK(WaitForMetric(metrics_port, "etcd_debugging_mvcc_slow_watcher_total 0\n"));

  // Half-close: like etcd, the server keeps the stream and its watchers.
  w.WritesDone();
  const int64_t r9 = Put(ep, "k2", "after-half-close");
  etcdserverpb::WatchResponse after = w.Next();
  CHECK(after.watch_id() == second_id);
  REQUIRE(after.events_size() == 1);
  CHECK(after.events(0).kv().value() == "after-half-close");
  CHECK(after.header().revision() == r9);
}

// Sends `bytes` as the first message of a Watch stream on `ep` and returns how the server ends
// the stream (it must end it: a Read after the write fails).
grpc::Status WatchWithRawRequest(const std::string& ep, const std::string& bytes) {
  grpc::GenericStub generic(kvtest::MakeChannel(ep));
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(milliseconds(10000)));
  auto call = generic.PrepareCall(&ctx, "/etcdserverpb.Watch/Watch", &cq);
  const auto step = [&cq](intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&got, &ok));
    CHECK(reinterpret_cast<intptr_t>(got) == tag);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  REQUIRE(step(1));
  grpc::Slice slice(bytes.data(), bytes.size());
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  (void)step(2);  // may fail once the server has finished the stream
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  CHECK_FALSE(step(3));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  REQUIRE(step(4));
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

TEST_CASE("two streams of many watchers each get every event once, in revision order",
          "[integration]") {
  // Goal: streams taking turns at the kick thread (writes_per_turn) and responses coalescing
  // while queued lose, repeat and reorder nothing for any watcher.
  auto c = kvtest::StartEtcdLikeCluster(KvdOptions(1));
  const std::string ep = c->endpoint(0);
  constexpr int kWatchers = 40;
  constexpr int kPuts = 30;
  std::vector<std::unique_ptr<WatchClient>> streams;
  for (int i = 0; i < 2; ++i) {
    streams.push_back(std::make_unique<WatchClient>(ep));
    for (int w = 0; w < kWatchers; ++w) streams.back()->Create("t", 0, /*prev_kv=*/false);
    for (int w = 0; w < kWatchers; ++w) REQUIRE(streams.back()->Next().created());
  }
  std::vector<int64_t> revisions;
  for (int i = 0; i < kPuts; ++i) revisions.push_back(Put(ep, "t", std::to_string(i)));
  for (auto& stream : streams) {
    std::map<int64_t, std::vector<int64_t>> seen;  // watch id -> mod revisions received
    size_t events = 0;
    while (events < static_cast<size_t>(kWatchers * kPuts)) {
      etcdserverpb::WatchResponse r = stream->Next();
      REQUIRE(r.events_size() > 0);
      for (const auto& ev : r.events()) {
        seen[r.watch_id()].push_back(ev.kv().mod_revision());
        CHECK(ev.kv().mod_revision() <= r.header().revision());
      }
      events += static_cast<size_t>(r.events_size());
    }
    REQUIRE(seen.size() == static_cast<size_t>(kWatchers));
    for (const auto& [id, got] : seen) {
      INFO("watch id " << id);
      CHECK(got == revisions);
    }
  }
}

TEST_CASE("a watch request that does not parse ends its stream as etcd does, nothing else",
          "[integration]") {
  // Goal: the raw (ByteBuffer) Watch method parses requests itself: bytes that are no
  // WatchRequest end that stream with etcd's code and message (real etcd is the oracle), and
  // the member keeps serving other streams.
  const std::string garbage = "\xff\xff\xff";  // a truncated varint: no message parses from it
  kvtest::ClusterOptions etcd_options;
  etcd_options.member_count = 1;
  grpc::Status etcd_status;
  {
    auto etcd = kvtest::StartEtcdLikeCluster(etcd_options);
    etcd_status = WatchWithRawRequest(etcd->endpoint(0), garbage);
  }
  auto c = kvtest::StartEtcdLikeCluster(KvdOptions(1));
  const std::string ep = c->endpoint(0);
  const grpc::Status status = WatchWithRawRequest(ep, garbage);
  CHECK(status.error_code() == grpc::StatusCode::INTERNAL);
  CHECK(status.error_code() == etcd_status.error_code());
  // etcd appends Go's protobuf error ("unexpected EOF" here), which C++ protobuf does not give.
  const std::string prefix = "grpc: failed to unmarshal the received message";
  CHECK(etcd_status.error_message().rfind(prefix, 0) == 0);
  CHECK(status.error_message().rfind(prefix, 0) == 0);

  // A well-formed stream on the same member still works.
  WatchClient w(ep);
  w.Create("k", 0, /*prev_kv=*/false);
  CHECK(w.Next().created());
  const int64_t r = Put(ep, "k", "v");
  std::vector<mvccpb::Event> events = w.Events(0, 1);
  CHECK(events[0].kv().mod_revision() == r);
}

TEST_CASE("a hasleader watch stream is refused without a leader; SIGTERM finishes streams",
          "[integration]") {
  // Goal: etcdctl's "hasleader: true" streams fail with Unavailable "etcdserver: no leader" when
  // the member lost its leader, while a plain stream is still served until the member stops.
  auto c = kvtest::StartEtcdLikeCluster(KvdOptions(3));
  c->Kill(1, SIGKILL);
  c->Kill(2, SIGKILL);
  // Without a quorum the member loses its leader within an election timeout (check quorum).
  uint64_t leader = 1;
  for (int i = 0; i < 100 && leader != 0; ++i) {
    auto stub = etcdserverpb::Maintenance::NewStub(kvtest::MakeChannel(c->endpoint(0)));
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(1000)));
    etcdserverpb::StatusResponse st;
    if (stub->Status(&ctx, etcdserverpb::StatusRequest(), &st).ok()) leader = st.leader();
    if (leader != 0) std::this_thread::sleep_for(milliseconds(100));
  }
  REQUIRE(leader == 0);

  {
    auto stub = etcdserverpb::Watch::NewStub(kvtest::MakeChannel(c->endpoint(0)));
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(10000)));
    ctx.AddMetadata("hasleader", "true");
    auto stream = stub->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key("k");
    (void)stream->Write(req);  // may fail once the server has finished the stream
    etcdserverpb::WatchResponse resp;
    CHECK_FALSE(stream->Read(&resp));
    grpc::Status s = stream->Finish();
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(s.error_message() == "etcdserver: no leader");
  }
  {
    auto stub = etcdserverpb::Watch::NewStub(kvtest::MakeChannel(c->endpoint(0)));
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(milliseconds(15000)));
    auto stream = stub->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key("k");
    REQUIRE(stream->Write(req));
    etcdserverpb::WatchResponse created;
    REQUIRE(stream->Read(&created));
    CHECK(created.created());

    // SIGTERM: the member finishes its open watch streams itself (they never end otherwise).
    const kvtest::ExitStatus exit = c->Stop(0);
    CHECK(exit.ExitedWith(0));
    etcdserverpb::WatchResponse resp;
    CHECK_FALSE(stream->Read(&resp));
    grpc::Status s = stream->Finish();
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(s.error_message() == "etcdserver: server stopped");
  }
}
