// Integration tests of cluster membership (issue #4): real kvd processes on loopback, driven
// through the etcd v3 Cluster API and through etcdctl 3.4.23 (compared with a real etcd).
// Members added at run time are started here with --initial-cluster-state=existing. Every wait
// is bounded; processes are killed and temp dirs removed even when an assertion fails.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proto/rpc.grpc.pb.h"
#include "tests/server/kvd_test_util.h"
#include "tests/support/cluster.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/log_tail.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kRpcTimeout{8000};

// One channel per endpoint for the whole test (fewer connection attempts on a loaded machine).
std::shared_ptr<grpc::Channel> Channel(const std::string& ep) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<grpc::Channel>> channels;
  std::lock_guard<std::mutex> lk(mu);
  auto& ch = channels[ep];
  if (!ch) ch = kvtest::MakeChannel(ep);
  return ch;
}

// Runs `call(ctx)` with a fresh context (deadline `timeout`), again (up to 5 times) while the
// channel could not even connect: the test channels' 100 ms connect timeout can expire on a
// loaded machine, and such a request never reached the server, so repeating it is safe.
template <typename Call>
grpc::Status WithConnectRetry(milliseconds timeout, Call call) {
  grpc::Status st;
  for (int attempt = 0; attempt < 5; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(timeout));
    // Wait for the connection instead of failing at once: the request is only sent once
    // connected, so it is never applied twice.
    ctx.set_wait_for_ready(true);
    st = call(&ctx);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE ||
        st.error_message().rfind("failed to connect", 0) != 0) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return st;
}

// ---- Cluster RPCs ----

struct Members {
  grpc::Status status;
  etcdserverpb::ResponseHeader header;
  std::vector<etcdserverpb::Member> members;
  etcdserverpb::Member added;  // MemberAdd only

  const etcdserverpb::Member* Find(uint64_t id) const {
    for (const auto& m : members) {
      if (m.id() == id) return &m;
    }
    return nullptr;
  }
};

template <typename Resp>
Members Collect(const grpc::Status& st, const Resp& resp) {
  Members out;
  out.status = st;
  out.header = resp.header();
  out.members.assign(resp.members().begin(), resp.members().end());
  return out;
}

Members MemberList(const std::string& ep) {
  auto stub = etcdserverpb::Cluster::NewStub(Channel(ep));
  etcdserverpb::MemberListResponse resp;
  grpc::Status st = WithConnectRetry(kRpcTimeout, [&](grpc::ClientContext* ctx) {
    return stub->MemberList(ctx, etcdserverpb::MemberListRequest(), &resp);
  });
  return Collect(st, resp);
}

Members MemberAdd(const std::string& ep, const std::vector<std::string>& urls, bool learner) {
  auto stub = etcdserverpb::Cluster::NewStub(Channel(ep));
  etcdserverpb::MemberAddRequest req;
  for (const auto& u : urls) req.add_peerurls(u);
  req.set_islearner(learner);
  etcdserverpb::MemberAddResponse resp;
  grpc::Status st = WithConnectRetry(
      kRpcTimeout, [&](grpc::ClientContext* ctx) { return stub->MemberAdd(ctx, req, &resp); });
  Members out = Collect(st, resp);
  out.added = resp.member();
  return out;
}

Members MemberRemove(const std::string& ep, uint64_t id) {
  auto stub = etcdserverpb::Cluster::NewStub(Channel(ep));
  etcdserverpb::MemberRemoveRequest req;
  req.set_id(id);
  etcdserverpb::MemberRemoveResponse resp;
  grpc::Status st = WithConnectRetry(
      kRpcTimeout, [&](grpc::ClientContext* ctx) { return stub->MemberRemove(ctx, req, &resp); });
  return Collect(st, resp);
}

Members MemberUpdate(const std::string& ep, uint64_t id, const std::vector<std::string>& urls) {
  auto stub = etcdserverpb::Cluster::NewStub(Channel(ep));
  etcdserverpb::MemberUpdateRequest req;
  req.set_id(id);
  for (const auto& u : urls) req.add_peerurls(u);
  etcdserverpb::MemberUpdateResponse resp;
  grpc::Status st = WithConnectRetry(
      kRpcTimeout, [&](grpc::ClientContext* ctx) { return stub->MemberUpdate(ctx, req, &resp); });
  return Collect(st, resp);
}

Members MemberPromote(const std::string& ep, uint64_t id) {
  auto stub = etcdserverpb::Cluster::NewStub(Channel(ep));
  etcdserverpb::MemberPromoteRequest req;
  req.set_id(id);
  etcdserverpb::MemberPromoteResponse resp;
  grpc::Status st = WithConnectRetry(
      kRpcTimeout, [&](grpc::ClientContext* ctx) { return stub->MemberPromote(ctx, req, &resp); });
  return Collect(st, resp);
}

// Repeats `call` while it fails with `retry_message` (e.g. the strict reconfiguration check
// waiting for a new member's link to be up long enough), up to `timeout`.
Members RetryWhile(const std::function<Members()>& call, const std::string& retry_message,
                   milliseconds timeout = milliseconds(20000)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    Members m = call();
    if (m.status.error_message() != retry_message || Clock::now() >= deadline) return m;
    std::this_thread::sleep_for(milliseconds(200));
  }
}

// Repeats `call` while it fails for a reason that passes (strict reconfiguration check waiting
// for links, an election in progress), up to `timeout`.
Members RetryTransient(const std::function<Members()>& call,
                       milliseconds timeout = milliseconds(20000)) {
  const std::set<std::string> transient = {"etcdserver: unhealthy cluster", "etcdserver: no leader",
                                           "etcdserver: leader changed"};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    Members m = call();
    if (transient.count(m.status.error_message()) == 0 || Clock::now() >= deadline) return m;
    std::this_thread::sleep_for(milliseconds(200));
  }
}

// Checks the header every Cluster response carries (etcd sets no revision there).
void CheckHeader(const Members& m) {
  CHECK(m.header.cluster_id() != 0);
  CHECK(m.header.member_id() != 0);
  CHECK(m.header.raft_term() != 0);
}

// ---- KV and status ----

grpc::Status Put(const std::string& ep, const std::string& k, const std::string& v,
                 milliseconds timeout = milliseconds(5000)) {
  auto stub = etcdserverpb::KV::NewStub(Channel(ep));
  etcdserverpb::PutRequest req;
  req.set_key(k);
  req.set_value(v);
  etcdserverpb::PutResponse resp;
  return WithConnectRetry(timeout,
                          [&](grpc::ClientContext* ctx) { return stub->Put(ctx, req, &resp); });
}

std::string Get(const std::string& ep, const std::string& k, bool serializable,
                grpc::Status* status, milliseconds timeout = milliseconds(5000)) {
  auto stub = etcdserverpb::KV::NewStub(Channel(ep));
  etcdserverpb::RangeRequest req;
  req.set_key(k);
  req.set_serializable(serializable);
  etcdserverpb::RangeResponse resp;
  *status = WithConnectRetry(
      timeout, [&](grpc::ClientContext* ctx) { return stub->Range(ctx, req, &resp); });
  return resp.kvs_size() > 0 ? resp.kvs(0).value() : "";
}

etcdserverpb::StatusResponse MemberStatus(const std::string& ep, grpc::Status* status) {
  auto stub = etcdserverpb::Maintenance::NewStub(Channel(ep));
  etcdserverpb::StatusResponse resp;
  *status = WithConnectRetry(milliseconds(2000), [&](grpc::ClientContext* ctx) {
    return stub->Status(ctx, etcdserverpb::StatusRequest(), &resp);
  });
  return resp;
}

// Polls `pred` every 100 ms up to `timeout`.
bool Eventually(const std::function<bool()>& pred, milliseconds timeout = milliseconds(15000)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return pred();
}

// The leader's member ID as `ep` sees it (0: none or unreachable).
uint64_t LeaderOf(const std::string& ep) {
  grpc::Status st;
  auto resp = MemberStatus(ep, &st);
  return st.ok() ? resp.leader() : 0;
}

// ---- members started by the test ----

// A kvd started by the test (not part of the EtcdLikeCluster), e.g. one that joins.
struct ExtraMember {
  std::string name;
  uint16_t client_port = 0;
  uint16_t peer_port = 0;
  std::unique_ptr<kvtest::Process> process;

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port); }
  std::string client_url() const { return "http://127.0.0.1:" + std::to_string(client_port); }
  std::string peer_url() const { return "http://127.0.0.1:" + std::to_string(peer_port); }
};

ExtraMember NewExtra(const std::string& name) {
  ExtraMember m;
  m.name = name;
  const auto ports = kvtest::PickFreePorts(2);
  m.client_port = ports[0];
  m.peer_port = ports[1];
  return m;
}

// etcdctl member add's ETCD_INITIAL_CLUSTER: every member's name (the new one's given name)
// with its peer URLs.
std::string InitialClusterFor(const Members& added, const std::string& new_name) {
  std::string out;
  for (const auto& m : added.members) {
    const std::string name = m.id() == added.added.id() ? new_name : m.name();
    for (const auto& u : m.peerurls()) out += (out.empty() ? "" : ",") + name + "=" + u;
  }
  return out;
}

// Starts `m` with --initial-cluster-state=existing in `dir` (same timings as KvdOptions).
void StartJoiner(ExtraMember* m, const std::filesystem::path& dir,
                 const std::string& initial_cluster) {
  kvtest::ProcessOptions po;
  po.argv = {KVD_BINARY,
             "--name=" + m->name,
             "--data-dir=" + (dir / (m->name + ".data")).string(),
             "--listen-client-urls=" + m->client_url(),
             "--advertise-client-urls=" + m->client_url(),
             "--listen-peer-urls=" + m->peer_url(),
             "--initial-advertise-peer-urls=" + m->peer_url(),
             "--initial-cluster=" + initial_cluster,
             "--initial-cluster-state=existing",
             "--heartbeat-interval=50",
             "--election-timeout=500"};
  po.env_unset_prefixes = {"ETCD_", "ETCDCTL_"};
  po.log_path = dir / (m->name + ".log");
  m->process = std::make_unique<kvtest::Process>(std::move(po));
}

// Ready: Status names a leader and a linearizable read succeeds (as EtcdReadyProbe).
bool WaitReady(const std::string& ep, kvtest::Process* p, milliseconds timeout) {
  auto probe = kvtest::EtcdReadyProbe();
  return Eventually(
      [&] {
        std::string why;
        return p->Running() && probe(ep, &why);
      },
      timeout);
}

// Runs a shell command (bounded by `timeout 20`) and returns its combined output.
std::string Shell(const std::string& cmd) {
  std::string full = "timeout 20 " + cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return "popen failed";
  std::string out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

std::string Etcdctl(const std::string& ep, const std::string& args) {
  return Shell(
      "env ETCDCTL_API=3 /usr/bin/etcdctl --dial-timeout=3s --command-timeout=8s "
      "--endpoints=" +
      ep + " " + args);
}

}  // namespace

TEST_CASE("a learner is added, catches up, is promoted and serves linearizable reads",
          "[integration]") {
  // Goal: MemberAdd(isLearner) through a follower, a learner joining with existing, promotion
  // refused while it lags and for a voter, and a promoted member serving linearizable reads.
  auto c = kvtest::StartEtcdLikeCluster(kvdtest::KvdOptions(3));
  REQUIRE(Put(c->endpoint(0), "before", "1").ok());
  ExtraMember l = NewExtra("learner");

  const Members added = RetryWhile([&] { return MemberAdd(c->endpoint(1), {l.peer_url()}, true); },
                                   "etcdserver: unhealthy cluster");
  REQUIRE(added.status.error_message() == "");
  CheckHeader(added);
  CHECK(added.added.id() != 0);
  CHECK(added.added.islearner());
  CHECK(added.added.name().empty());
  REQUIRE(added.added.peerurls_size() == 1);
  CHECK(added.added.peerurls(0) == l.peer_url());
  REQUIRE(added.members.size() == 4);
  const etcdserverpb::Member* listed = added.Find(added.added.id());
  REQUIRE(listed != nullptr);
  CHECK(listed->islearner());
  CHECK(listed->name().empty());  // unstarted
  CHECK(listed->clienturls_size() == 0);

  // Every member knows it (the follower that handled the add answered after applying it).
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(Eventually([&] {
      const Members m = MemberList(c->endpoint(i));
      return m.status.ok() && m.members.size() == 4 && m.Find(added.added.id()) != nullptr &&
             m.Find(added.added.id())->islearner();
    }));
  }
  // Not started, so not in sync with the leader.
  const Members early = MemberPromote(c->endpoint(0), added.added.id());
  CHECK(early.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(early.status.error_message() ==
        "etcdserver: can only promote a learner member which is in sync with leader");

  StartJoiner(&l, c->dir(), InitialClusterFor(added, l.name));
  // The learner learns the cluster from the others and catches up (serializable reads are
  // served locally).
  CHECK(Eventually([&] {
    grpc::Status st;
    return Get(l.endpoint(), "before", true, &st) == "1";
  }));
  // Its name and client URL show once it started.
  CHECK(Eventually([&] {
    const Members m = MemberList(c->endpoint(2));
    const etcdserverpb::Member* x = m.Find(added.added.id());
    return x != nullptr && x->name() == "learner" && x->clienturls_size() == 1 &&
           x->clienturls(0) == l.client_url();
  }));

  // A learner serves only serializable Range and Status, like etcd 3.4.
  {
    grpc::Status lin;
    (void)Get(l.endpoint(), "before", false, &lin);
    CHECK(lin.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(lin.error_message() == "etcdserver: rpc not supported for learner");
    const grpc::Status put = Put(l.endpoint(), "on-learner", "x");
    CHECK(put.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(put.error_message() == "etcdserver: rpc not supported for learner");
    CHECK(MemberList(l.endpoint()).status.error_message() ==
          "etcdserver: rpc not supported for learner");
    {
      // Refused before the auth check, as etcd's interceptor does.
      auto auth = etcdserverpb::Auth::NewStub(Channel(l.endpoint()));
      grpc::ClientContext actx;
      actx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      etcdserverpb::AuthenticateRequest areq;
      areq.set_name("root");
      areq.set_password("secret");
      etcdserverpb::AuthenticateResponse aresp;
      CHECK(auth->Authenticate(&actx, areq, &aresp).error_message() ==
            "etcdserver: rpc not supported for learner");
    }
    auto maint = etcdserverpb::Maintenance::NewStub(Channel(l.endpoint()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    etcdserverpb::StatusResponse status;
    REQUIRE(maint->Status(&ctx, etcdserverpb::StatusRequest(), &status).ok());
    CHECK(status.islearner());
  }

  const Members promoted =
      RetryWhile([&] { return MemberPromote(c->endpoint(2), added.added.id()); },
                 "etcdserver: can only promote a learner member which is in sync with leader");
  REQUIRE(promoted.status.error_message() == "");
  CheckHeader(promoted);
  REQUIRE(promoted.Find(added.added.id()) != nullptr);
  CHECK_FALSE(promoted.Find(added.added.id())->islearner());

  const Members again = MemberPromote(c->endpoint(0), added.added.id());
  CHECK(again.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(again.status.error_message() == "etcdserver: can only promote a learner member");

  REQUIRE(Put(c->endpoint(0), "after", "2").ok());
  grpc::Status st;
  // The promotion reaches the new voter when it applies the conf change.
  CHECK(Eventually([&] { return Get(l.endpoint(), "after", false, &st) == "2"; }));
  CHECK(st.ok());
  // The new voter takes writes too.
  CHECK(Put(l.endpoint(), "from-new", "3").ok());
  CHECK(Get(c->endpoint(0), "from-new", false, &st) == "3");
}

TEST_CASE("membership errors carry etcd's codes and messages", "[integration]") {
  // Goal: every refusal of the Cluster service, and a member started with existing but never
  // added, behave as in etcd 3.4.
  auto c = kvtest::StartEtcdLikeCluster(kvdtest::KvdOptions(3));
  const std::string ep = c->endpoint(0);

  Members r = MemberAdd(ep, {"not-a-url"}, false);
  CHECK(r.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(r.status.error_message() == "etcdserver: given member URLs are invalid");
  r = MemberAdd(ep, {}, true);
  CHECK(r.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(r.status.error_message() == "etcdserver: given member URLs are invalid");

  // Learner or voter, an add first needs every voter connected for a while (etcd's
  // mayAddMember), then the URL checks.
  r = RetryWhile([&] { return MemberAdd(ep, {c->peer_url(2)}, true); },
                 "etcdserver: unhealthy cluster");
  CHECK(r.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(r.status.error_message() == "etcdserver: Peer URLs already exists");
  r = RetryWhile([&] { return MemberAdd(c->endpoint(1), {c->peer_url(2)}, false); },
                 "etcdserver: unhealthy cluster");
  CHECK(r.status.error_message() == "etcdserver: Peer URLs already exists");

  const uint64_t unknown = 0x1234abcd;
  r = MemberRemove(ep, unknown);
  CHECK(r.status.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(r.status.error_message() == "etcdserver: member not found");
  r = MemberUpdate(ep, unknown, {"http://127.0.0.1:1"});
  CHECK(r.status.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(r.status.error_message() == "etcdserver: member not found");
  r = MemberPromote(ep, unknown);
  CHECK(r.status.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(r.status.error_message() == "etcdserver: member not found");

  grpc::Status st;
  const uint64_t id2 = MemberStatus(c->endpoint(2), &st).header().member_id();
  REQUIRE(st.ok());
  r = MemberPromote(c->endpoint(1), id2);
  CHECK(r.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(r.status.error_message() == "etcdserver: can only promote a learner member");
  r = MemberUpdate(ep, id2, {c->peer_url(1)});
  CHECK(r.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(r.status.error_message() == "etcdserver: Peer URLs already exists");

  // etcd 3.4 allows one learner.
  const Members learner = MemberAdd(ep, {"http://127.0.0.1:9"}, true);
  REQUIRE(learner.status.ok());
  r = MemberAdd(ep, {"http://127.0.0.1:10"}, true);
  CHECK(r.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(r.status.error_message() == "etcdserver: too many learner members in cluster");
  // A learner is removed without any quorum check; its ID can never come back.
  r = MemberRemove(c->endpoint(2), learner.added.id());
  REQUIRE(r.status.ok());
  CHECK(r.members.size() == 3);
  r = MemberRemove(ep, learner.added.id());
  CHECK(r.status.error_message() == "etcdserver: member not found");

  // A member that starts with existing without being added first is refused and exits.
  ExtraMember stranger = NewExtra("stranger");
  std::string initial;
  for (std::size_t i = 0; i < 3; ++i) initial += c->name(i) + "=" + c->peer_url(i) + ",";
  StartJoiner(&stranger, c->dir(), initial + "stranger=" + stranger.peer_url());
  const auto exit = stranger.process->Wait(milliseconds(30000));
  REQUIRE(exit.has_value());
  CHECK(exit->ExitedWith(1));
  CHECK(stranger.process->LogTail().find("member count is unequal") != std::string::npos);

  // With a voter down, etcd's strict reconfiguration check refuses to add a voter or to
  // remove a live voter (quorum would hang on the dead one), but removing the dead one is fine.
  const int leader_index = [&] {
    const uint64_t lead = LeaderOf(ep);
    for (std::size_t i = 0; i < 3; ++i) {
      if (MemberStatus(c->endpoint(i), &st).header().member_id() == lead)
        return static_cast<int>(i);
    }
    return -1;
  }();
  REQUIRE(leader_index >= 0);
  const std::size_t dead = (static_cast<std::size_t>(leader_index) + 1) % 3;
  const std::size_t alive = (static_cast<std::size_t>(leader_index) + 2) % 3;
  const uint64_t dead_id = MemberStatus(c->endpoint(dead), &st).header().member_id();
  const uint64_t alive_id = MemberStatus(c->endpoint(alive), &st).header().member_id();
  c->Kill(dead, SIGKILL);
  // The leader notices the broken link at its next heartbeat (50 ms); until then an add could
  // still pass, which would wreck the rest of this test.
  std::this_thread::sleep_for(milliseconds(1000));
  CHECK(Eventually([&] {
    return MemberAdd(c->endpoint(alive), {"http://127.0.0.1:11"}, false).status.error_message() ==
           "etcdserver: unhealthy cluster";
  }));
  r = MemberAdd(c->endpoint(alive), {"http://127.0.0.1:11"}, false);
  CHECK(r.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(r.status.error_message() == "etcdserver: unhealthy cluster");
  r = MemberRemove(c->endpoint(alive), alive_id);
  CHECK(r.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(r.status.error_message() == "etcdserver: unhealthy cluster");
  r = MemberRemove(c->endpoint(alive), dead_id);
  CHECK(r.status.error_message() == "");
  CHECK(r.members.size() == 2);
  CHECK(Put(c->endpoint(alive), "still", "serving").ok());
}

TEST_CASE("with --strict-reconfig-check=false a member change is accepted while a voter is down",
          "[integration]") {
  // Goal: the flag turns etcd's strict reconfiguration check off: with a voter down, adding a
  // learner is accepted (with the check on, the same add is refused "etcdserver: unhealthy
  // cluster": this test fails when run with --strict-reconfig-check=true).
  kvtest::ClusterOptions o = kvdtest::KvdOptions(3);
  o.extra_args = {"--strict-reconfig-check=false"};
  auto c = kvtest::StartEtcdLikeCluster(o);
  grpc::Status st;
  REQUIRE(Eventually([&] { return LeaderOf(c->endpoint(0)) != 0; }));
  const uint64_t lead = LeaderOf(c->endpoint(0));
  std::size_t follower = 3;
  for (std::size_t i = 0; i < 3 && follower == 3; ++i) {
    if (MemberStatus(c->endpoint(i), &st).header().member_id() != lead) follower = i;
  }
  REQUIRE(follower < 3);
  const std::size_t alive = follower == 0 ? 1 : 0;
  c->Kill(follower, SIGKILL);
  // Past the point where the leader has seen the link break (the default check would refuse).
  std::this_thread::sleep_for(milliseconds(1000));
  const Members r = MemberAdd(c->endpoint(alive), {"http://127.0.0.1:11"}, true);
  CHECK(r.status.error_message() == "");
  CHECK(r.members.size() == 4);
  CHECK(Put(c->endpoint(alive), "still", "serving").ok());
}

TEST_CASE("grow 3 -> 5 and shrink back to 3 (removing a follower and the leader) under writes",
          "[integration]") {
  // Goal: voters join with existing and removed members (the leader included) stop and exit,
  // while a client writes continuously; no acknowledged write is lost.
  auto c = kvtest::StartEtcdLikeCluster(kvdtest::KvdOptions(3));
  std::vector<std::string> endpoints = c->endpoints();
  std::mutex mu;  // guards endpoints and acked
  std::vector<std::string> acked;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load() && i < 100000; ++i) {
      std::string ep;
      {
        std::lock_guard<std::mutex> lk(mu);
        ep = endpoints[static_cast<std::size_t>(i) % endpoints.size()];
      }
      const std::string key = "w" + std::to_string(i);
      if (Put(ep, key, "v" + std::to_string(i), milliseconds(3000)).ok()) {
        std::lock_guard<std::mutex> lk(mu);
        acked.push_back(key);
      }
    }
  });
  struct StopWriter {
    std::atomic<bool>* stop;
    std::thread* t;
    ~StopWriter() {
      stop->store(true);
      if (t->joinable()) t->join();
    }
  } stop_writer{&stop, &writer};

  std::vector<ExtraMember> extra;
  extra.reserve(2);
  for (const char* name : {"m3", "m4"}) {
    extra.push_back(NewExtra(name));
    ExtraMember& m = extra.back();
    const Members added =
        RetryWhile([&] { return MemberAdd(c->endpoint(0), {m.peer_url()}, false); },
                   "etcdserver: unhealthy cluster");
    REQUIRE(added.status.error_message() == "");
    CHECK_FALSE(added.added.islearner());
    StartJoiner(&m, c->dir(), InitialClusterFor(added, m.name));
    REQUIRE(WaitReady(m.endpoint(), m.process.get(), milliseconds(30000)));
    std::lock_guard<std::mutex> lk(mu);
    endpoints.push_back(m.endpoint());
  }
  for (const std::string& ep : endpoints) {
    CHECK(Eventually([&] {
      const Members m = MemberList(ep);
      if (!m.status.ok() || m.members.size() != 5) return false;
      return std::all_of(m.members.begin(), m.members.end(),
                         [](const etcdserverpb::Member& x) { return !x.name().empty(); });
    }));
  }

  // Remove the leader, asking another member.
  std::vector<std::string> all = endpoints;
  const uint64_t lead = LeaderOf(all[0]);
  REQUIRE(lead != 0);
  std::string lead_ep, other_ep;
  for (const std::string& ep : all) {
    grpc::Status st;
    (MemberStatus(ep, &st).header().member_id() == lead ? lead_ep : other_ep) = ep;
  }
  REQUIRE_FALSE(lead_ep.empty());
  Members r = RetryTransient([&] { return MemberRemove(other_ep, lead); });
  REQUIRE(r.status.error_message() == "");
  CHECK(r.members.size() == 4);
  CHECK(r.Find(lead) == nullptr);
  {
    std::lock_guard<std::mutex> lk(mu);
    endpoints.erase(std::find(endpoints.begin(), endpoints.end(), lead_ep));
  }
  // Then a follower (m3 unless it was the leader).
  const std::string follower_ep =
      lead_ep == extra[0].endpoint() ? extra[1].endpoint() : extra[0].endpoint();
  grpc::Status st;
  const uint64_t follower = MemberStatus(follower_ep, &st).header().member_id();
  REQUIRE(st.ok());
  std::string ask_ep;
  {
    std::lock_guard<std::mutex> lk(mu);
    for (const std::string& ep : endpoints) {
      if (ep != follower_ep) ask_ep = ep;
    }
  }
  r = RetryTransient([&] { return MemberRemove(ask_ep, follower); });
  REQUIRE(r.status.error_message() == "");
  CHECK(r.members.size() == 3);
  {
    std::lock_guard<std::mutex> lk(mu);
    endpoints.erase(std::find(endpoints.begin(), endpoints.end(), follower_ep));
  }

  // Both removed members exit on their own, saying why.
  auto process_of = [&](const std::string& ep) -> kvtest::Process* {
    for (auto& m : extra) {
      if (m.endpoint() == ep) return m.process.get();
    }
    for (std::size_t i = 0; i < c->size(); ++i) {
      if (c->endpoint(i) == ep) return &c->process(i);
    }
    return nullptr;
  };
  for (const std::string& ep : {lead_ep, follower_ep}) {
    kvtest::Process* p = process_of(ep);
    REQUIRE(p != nullptr);
    INFO("removed member " << ep);
    const auto exit = p->Wait(milliseconds(20000));
    REQUIRE(exit.has_value());
    CHECK(exit->ExitedWith(0));
    CHECK(p->LogTail(16384).find("the member has been permanently removed from the cluster") !=
          std::string::npos);
  }

  // The rest keep serving; writes go on for a moment, then every acknowledged one is there.
  std::vector<std::string> left;
  {
    std::lock_guard<std::mutex> lk(mu);
    left = endpoints;
  }
  REQUIRE(left.size() == 3);
  REQUIRE(Put(left[0], "after-shrink", "ok").ok());
  std::this_thread::sleep_for(milliseconds(500));
  stop.store(true);
  writer.join();
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lk(mu);
    keys = acked;
  }
  REQUIRE(keys.size() > 20);
  for (const std::string& ep : left) {
    const Members m = MemberList(ep);
    CHECK(m.members.size() == 3);
    CHECK(m.Find(lead) == nullptr);
    CHECK(m.Find(follower) == nullptr);
  }
  std::size_t missing = 0;
  for (const std::string& k : keys) {
    grpc::Status gst;
    if (Get(left[1], k, false, &gst) != "v" + k.substr(1)) ++missing;
  }
  CHECK(missing == 0);
}

TEST_CASE("a member's peer URLs are updated and it restarts on the new ones", "[integration]") {
  // Goal: MemberUpdate replicates new peer URLs; the other members dial the member there.
  auto c = kvtest::StartEtcdLikeCluster(kvdtest::KvdOptions(3));
  grpc::Status st;
  const uint64_t id2 = MemberStatus(c->endpoint(2), &st).header().member_id();
  REQUIRE(st.ok());
  const std::string new_peer = "http://127.0.0.1:" + std::to_string(kvtest::PickFreePort());
  const Members r = MemberUpdate(c->endpoint(0), id2, {new_peer});
  REQUIRE(r.status.error_message() == "");
  CheckHeader(r);
  REQUIRE(r.Find(id2) != nullptr);
  REQUIRE(r.Find(id2)->peerurls_size() == 1);
  CHECK(r.Find(id2)->peerurls(0) == new_peer);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(Eventually([&] {
      const Members m = MemberList(c->endpoint(i));
      return m.Find(id2) != nullptr && m.Find(id2)->peerurls_size() == 1 &&
             m.Find(id2)->peerurls(0) == new_peer;
    }));
  }

  // Restart member 2 listening on the new URL (its data dir keeps its identity).
  REQUIRE(c->Stop(2).ExitedWith(0));
  kvtest::ProcessOptions po;
  po.argv = {KVD_BINARY,
             "--name=" + c->name(2),
             "--data-dir=" + c->data_dir(2).string(),
             "--listen-client-urls=" + c->client_url(2),
             "--advertise-client-urls=" + c->client_url(2),
             "--listen-peer-urls=" + new_peer,
             "--initial-advertise-peer-urls=" + new_peer,
             "--initial-cluster=" + c->name(2) + "=" + new_peer,
             "--heartbeat-interval=50",
             "--election-timeout=500"};
  po.env_unset_prefixes = {"ETCD_", "ETCDCTL_"};
  po.log_path = c->dir() / "m2-moved.log";
  kvtest::Process moved(std::move(po));
  REQUIRE(WaitReady(c->endpoint(2), &moved, milliseconds(30000)));
  REQUIRE(Put(c->endpoint(0), "moved", "yes").ok());
  CHECK(Eventually([&] {
    grpc::Status gst;
    return Get(c->endpoint(2), "moved", true, &gst) == "yes";
  }));
  const Members m = MemberList(c->endpoint(2));
  REQUIRE(m.Find(id2) != nullptr);
  CHECK(m.Find(id2)->peerurls(0) == new_peer);
  CHECK(m.Find(id2)->name() == c->name(2));
}

namespace {

// etcdctl output with member/cluster IDs and loopback ports replaced, lines sorted (member
// order follows the random IDs).
std::string Normalize(const std::string& out) {
  std::string s = std::regex_replace(out, std::regex("\\b[0-9a-f]{12,16}\\b"), "<ID>");
  s = std::regex_replace(s, std::regex("127\\.0\\.0\\.1:[0-9]+"), "<ADDR>");
  // clientv3's retry interceptor logs a warning line with a timestamp and a client UUID.
  s = std::regex_replace(s, std::regex("\"ts\":\"[^\"]*\""), "\"ts\":\"<TS>\"");
  s = std::regex_replace(s, std::regex("client-[0-9a-f-]+"), "client-<UUID>");
  // Table widths follow the ID lengths (leading zeros are not printed).
  s = std::regex_replace(s, std::regex(" +"), " ");
  s = std::regex_replace(s, std::regex("-+"), "-");
  std::istringstream in(s);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    // ETCD_INITIAL_CLUSTER lists the members in ID order: sort its entries.
    std::smatch m;
    if (std::regex_match(line, m, std::regex("ETCD_INITIAL_CLUSTER=\"(.*)\""))) {
      std::vector<std::string> parts;
      std::istringstream ps(m[1].str());
      for (std::string p; std::getline(ps, p, ',');) parts.push_back(p);
      std::sort(parts.begin(), parts.end());
      line = "ETCD_INITIAL_CLUSTER=";
      for (const auto& p : parts) line += p + ";";
    }
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string joined;
  for (const auto& l : lines) joined += l + "\n";
  return joined;
}

// Runs the same member commands against a one-member cluster of `binary`; returns each output.
std::vector<std::string> MemberCommands(const std::string& binary) {
  kvtest::ClusterOptions o = kvdtest::KvdOptions(1);
  o.binary = binary;
  auto c = kvtest::StartEtcdLikeCluster(o);
  const std::string ep = c->endpoint(0);
  const std::string learner_url = "http://127.0.0.1:" + std::to_string(kvtest::PickFreePort());
  const std::string moved_url = "http://127.0.0.1:" + std::to_string(kvtest::PickFreePort());
  std::vector<std::string> out;
  out.push_back(Etcdctl(ep, "member list"));
  const std::string add = Etcdctl(ep, "member add newbie --learner --peer-urls=" + learner_url);
  out.push_back(add);
  std::smatch match;
  std::string id;
  // etcdctl prints the ID with %16x: an ID below 2^60 is padded with spaces.
  if (std::regex_search(add, match, std::regex("Member +([0-9a-f]+) added"))) id = match[1];
  out.push_back(Etcdctl(ep, "member list"));
  out.push_back(Etcdctl(ep, "member list -w table"));
  out.push_back(Etcdctl(ep, "member update " + id + " --peer-urls=" + moved_url));
  out.push_back(Etcdctl(ep, "member promote " + id));
  out.push_back(Etcdctl(ep, "member remove " + id));
  out.push_back(Etcdctl(ep, "member remove " + id));
  out.push_back(Etcdctl(ep, "member list"));
  return out;
}

}  // namespace

TEST_CASE("etcdctl member add/list/update/promote/remove print the same for kvd and etcd",
          "[integration]") {
  // Goal: etcdctl 3.4.23's output against kvd has etcd's shape (IDs and ports normalized).
  const std::vector<std::string> etcd = MemberCommands("/usr/bin/etcd");
  const std::vector<std::string> kvd = MemberCommands(KVD_BINARY);
  REQUIRE(etcd.size() == kvd.size());
  for (std::size_t i = 0; i < etcd.size(); ++i) {
    INFO("command " << i << "\netcd:\n" << etcd[i] << "kvd:\n" << kvd[i]);
    CHECK(Normalize(kvd[i]) == Normalize(etcd[i]));
  }
  // The outputs are not trivially equal (the commands did something).
  CHECK(kvd[1].find("added to cluster") != std::string::npos);
  CHECK(kvd[5].find("in sync with leader") != std::string::npos);
  CHECK(kvd[7].find("member not found") != std::string::npos);
}
