#include "tests/robustness/harness.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "proto/rpc.grpc.pb.h"
#include "tests/robustness/proxy.h"
#include "tests/support/cluster.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/http_get.h"
#include "tests/support/ports.h"

namespace kv::robustness {
namespace {

namespace pb = etcdserverpb;
using std::chrono::milliseconds;

// Deadline of one client operation: past it the outcome is unknown.
constexpr milliseconds kOpTimeout{2000};
// Lifetime of one watch connection before the watcher reconnects (and resumes).
constexpr milliseconds kWatchSegmentMin{2000};
constexpr milliseconds kWatchSegmentMax{8000};
// Bounds of the end phase (final reads, sentinel, watch sync, HashKV).
constexpr milliseconds kEndPhaseTimeout{90000};
// Operations one client records per round at most (then it stops issuing).
constexpr std::size_t kOpsPerClientMax = 200000;
// Events one watcher records per round at most (then it stops, and the round reports it).
constexpr std::size_t kEventsPerWatcherMax = 2000000;
constexpr std::int64_t kLeaseTtlSeconds = 2;
constexpr std::size_t kLeaseKeysPerClient = 2;
const std::string kSentinelKey = "~sentinel";

std::string FormatHex(std::uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(id));
  return buf;
}

std::int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string KeyName(std::size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k/%02zu", i);
  return buf;
}

// State shared by the workload threads and the scheduler.
struct Shared {
  std::vector<std::string> endpoints;
  std::atomic<bool> stop_workload{false};
  std::atomic<bool> stop_watchers{false};
  std::atomic<std::int64_t> latest_revision{1};  // highest header revision any client saw
  std::atomic<std::int64_t> audit_revision{0};   // highest revision the audit watcher has
  std::atomic<std::int64_t> sync_target{0};      // watchers sync through this, then exit

  void SawRevision(std::int64_t rev) {
    std::int64_t cur = latest_revision.load();
    while (rev > cur && !latest_revision.compare_exchange_weak(cur, rev)) {
    }
  }
};

struct Channels {
  explicit Channels(const std::vector<std::string>& endpoints) {
    for (const auto& ep : endpoints) {
      auto ch = kvtest::MakeChannel(ep);
      kv.push_back(pb::KV::NewStub(ch));
      lease.push_back(pb::Lease::NewStub(ch));
      watch.push_back(pb::Watch::NewStub(ch));
      maintenance.push_back(pb::Maintenance::NewStub(ch));
      cluster.push_back(pb::Cluster::NewStub(ch));
    }
  }
  std::vector<std::unique_ptr<pb::KV::Stub>> kv;
  std::vector<std::unique_ptr<pb::Lease::Stub>> lease;
  std::vector<std::unique_ptr<pb::Watch::Stub>> watch;
  std::vector<std::unique_ptr<pb::Maintenance::Stub>> maintenance;
  std::vector<std::unique_ptr<pb::Cluster::Stub>> cluster;
};

void Bound(grpc::ClientContext& ctx, milliseconds timeout) {
  ctx.set_deadline(kvtest::DeadlineIn(timeout));
}

// ---- clients ----

class Client {
 public:
  Client(int id, std::uint64_t seed, std::size_t keys, Shared& shared)
      : id_(id), rng_(seed), keys_(keys), shared_(shared), channels_(shared.endpoints) {}

  void Run() {
    while (!shared_.stop_workload.load() && ops_.size() < kOpsPerClientMax) {
      if (Chance(0.1)) member_ = Pick(shared_.endpoints.size());
      const double r = Uniform();
      if (r < 0.33) {
        DoPut();
      } else if (r < 0.60) {
        DoGet();
      } else if (r < 0.65) {
        DoSerializableGet();
      } else if (r < 0.80) {
        DoCas();
      } else if (r < 0.88) {
        DoDelete();
      } else {
        DoLeasePut();
      }
    }
  }

  std::vector<Op>& ops() { return ops_; }

 private:
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  bool Chance(double p) { return Uniform() < p; }
  std::size_t Pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  std::string RandomKey() { return KeyName(Pick(keys_)); }
  std::string NextValue() { return "c" + std::to_string(id_) + "-" + std::to_string(++seq_); }

  Op Start(OpKind kind, const std::string& key) {
    Op op;
    op.client = id_;
    op.kind = kind;
    op.key = key;
    op.call_ns = NowNs();
    return op;
  }

  // Records `op`: ok with the header revision, or unknown (writes) / dropped (reads).
  void Finish(Op op, const grpc::Status& status, std::int64_t header_revision) {
    if (status.ok()) {
      op.return_ns = NowNs();
      op.outcome = Outcome::kOk;
      op.revision = header_revision;
      shared_.SawRevision(header_revision);
    } else {
      op.return_ns = kNeverReturned;
      op.outcome = Outcome::kUnknown;
      op.revision = 0;
      member_ = Pick(shared_.endpoints.size());  // try another member next
      if (op.kind == OpKind::kGet) return;       // a failed read tells nothing
    }
    ops_.push_back(std::move(op));
  }

  void DoPut() {
    Op op = Start(OpKind::kPut, RandomKey());
    op.value = NextValue();
    pb::PutRequest req;
    req.set_key(op.key);
    req.set_value(op.value);
    pb::PutResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kOpTimeout);
    const grpc::Status s = channels_.kv[member_]->Put(&ctx, req, &resp);
    if (s.ok()) last_seen_[op.key] = {op.value, resp.header().revision()};
    Finish(std::move(op), s, resp.header().revision());
  }

  void DoGet() {
    Op op = Start(OpKind::kGet, RandomKey());
    pb::RangeRequest req;
    req.set_key(op.key);
    pb::RangeResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kOpTimeout);
    const grpc::Status s = channels_.kv[member_]->Range(&ctx, req, &resp);
    if (s.ok() && resp.kvs_size() > 0) {
      op.found = true;
      op.read_value = resp.kvs(0).value();
      op.read_mod_revision = resp.kvs(0).mod_revision();
      last_seen_[op.key] = {op.read_value, op.read_mod_revision};
    } else if (s.ok()) {
      last_seen_[op.key] = {"", 0};
    }
    Finish(std::move(op), s, resp.header().revision());
  }

  // Exercises serializable reads (any member, possibly stale); not part of the checked
  // history, since they promise no recency.
  void DoSerializableGet() {
    pb::RangeRequest req;
    req.set_key(RandomKey());
    req.set_serializable(true);
    pb::RangeResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kOpTimeout);
    (void)channels_.kv[member_]->Range(&ctx, req, &resp);
  }

  void DoCas() {
    Op op = Start(OpKind::kCas, RandomKey());
    op.value = NextValue();
    const auto seen = last_seen_[op.key];
    pb::TxnRequest req;
    pb::Compare* cmp = req.add_compare();
    cmp->set_key(op.key);
    cmp->set_result(pb::Compare::EQUAL);
    if (Chance(0.5) || seen.first.empty()) {
      op.cas_on = CasOn::kModRevision;
      op.cas_expected_mod_revision = seen.second;
      cmp->set_target(pb::Compare::MOD);
      cmp->set_mod_revision(seen.second);
    } else {
      op.cas_on = CasOn::kValue;
      op.cas_expected_value = seen.first;
      cmp->set_target(pb::Compare::VALUE);
      cmp->set_value(seen.first);
    }
    pb::PutRequest* put = req.add_success()->mutable_request_put();
    put->set_key(op.key);
    put->set_value(op.value);
    pb::TxnResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kOpTimeout);
    const grpc::Status s = channels_.kv[member_]->Txn(&ctx, req, &resp);
    op.cas_succeeded = s.ok() && resp.succeeded();
    if (op.cas_succeeded) last_seen_[op.key] = {op.value, resp.header().revision()};
    Finish(std::move(op), s, resp.header().revision());
  }

  void DoDelete() {
    Op op = Start(OpKind::kDelete, RandomKey());
    pb::DeleteRangeRequest req;
    req.set_key(op.key);
    pb::DeleteRangeResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kOpTimeout);
    const grpc::Status s = channels_.kv[member_]->DeleteRange(&ctx, req, &resp);
    op.deleted = resp.deleted();
    Finish(std::move(op), s, resp.header().revision());
  }

  // A put attached to this client's short lease (granted again once it may have expired),
  // so leases expire under load and delete their keys.
  void DoLeasePut() {
    const auto now = std::chrono::steady_clock::now();
    if (lease_id_ == 0 || now - lease_granted_ > std::chrono::seconds(kLeaseTtlSeconds)) {
      pb::LeaseGrantRequest req;
      req.set_ttl(kLeaseTtlSeconds);
      pb::LeaseGrantResponse resp;
      grpc::ClientContext ctx;
      Bound(ctx, kOpTimeout);
      const grpc::Status s = channels_.lease[member_]->LeaseGrant(&ctx, req, &resp);
      if (!s.ok() || !resp.error().empty()) {
        member_ = Pick(shared_.endpoints.size());
        return;
      }
      lease_id_ = resp.id();
      lease_granted_ = now;
    }
    Op op = Start(OpKind::kLeasePut,
                  "l/c" + std::to_string(id_) + "-" + std::to_string(Pick(kLeaseKeysPerClient)));
    op.value = NextValue();
    op.lease_id = lease_id_;
    pb::PutRequest req;
    req.set_key(op.key);
    req.set_value(op.value);
    req.set_lease(lease_id_);
    pb::PutResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kOpTimeout);
    const grpc::Status s = channels_.kv[member_]->Put(&ctx, req, &resp);
    if (!s.ok()) lease_id_ = 0;  // maybe expired: take a new one next time
    Finish(std::move(op), s, resp.header().revision());
  }

  int id_;
  std::mt19937_64 rng_;
  std::size_t keys_;
  Shared& shared_;
  Channels channels_;
  std::size_t member_ = 0;
  std::uint64_t seq_ = 0;
  std::map<std::string, std::pair<std::string, std::int64_t>> last_seen_;  // value, mod_rev
  std::int64_t lease_id_ = 0;
  std::chrono::steady_clock::time_point lease_granted_;
  std::vector<Op> ops_;
};

// ---- watchers ----

enum class WatcherRole {
  kAudit,   // every key from revision 1, prev_kv; never compacted (the scheduler compacts
            // behind it), so it settles unknown writes
  kRandom,  // every key from a recent revision, no prev_kv, random members
  kSlow,    // every key from a recent revision, prev_kv, reads slowly: compactions catch it
};

class Watcher {
 public:
  Watcher(int id, WatcherRole role, std::uint64_t seed, Shared& shared)
      : role_(role), rng_(seed), shared_(shared), channels_(shared.endpoints) {
    stream_.client = id;
    stream_.key = std::string(1, '\0');
    stream_.range_end = std::string(1, '\0');
    stream_.prev_kv = role != WatcherRole::kRandom;
  }

  void Run() {
    std::int64_t next = 1;
    if (role_ != WatcherRole::kAudit) {
      next = std::max<std::int64_t>(1, shared_.latest_revision.load() - 20);
    }
    std::size_t member = Pick(shared_.endpoints.size());
    // Bounded: each segment is bounded by its deadline, and the loop by the stop flag, which
    // the harness sets after the end-phase timeout at the latest.
    while (!shared_.stop_watchers.load() && !overflowed_.load()) {
      const std::int64_t target = shared_.sync_target.load();
      if (target > 0 && last_ >= target) {
        stream_.synced_through_revision = target;
        synced_.store(true);
        return;
      }
      WatchSegment seg;
      seg.start_revision = next;
      const bool ok = RunSegment(member, &seg);
      if (!seg.events.empty()) last_ = seg.events.back().kv.mod_revision;
      if (seg.compact_revision > 0) {
        next = seg.compact_revision;
      } else if (!seg.events.empty()) {
        next = last_ + 1;
      }
      stream_.segments.push_back(std::move(seg));
      if (!ok || Uniform() < 0.5) member = Pick(shared_.endpoints.size());
      if (!ok) std::this_thread::sleep_for(milliseconds(100));  // the member may be down
    }
  }

  // Valid once the thread has been joined.
  WatchStream& stream() { return stream_; }
  bool synced() const { return synced_.load(); }
  bool overflowed() const { return overflowed_.load(); }

 private:
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  std::size_t Pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }

  // One connection; false if it failed before delivering anything useful.
  bool RunSegment(std::size_t member, WatchSegment* seg) {
    grpc::ClientContext ctx;
    const auto span = std::uniform_int_distribution<std::int64_t>(kWatchSegmentMin.count(),
                                                                  kWatchSegmentMax.count())(rng_);
    Bound(ctx, milliseconds(span));
    auto stream = channels_.watch[member]->Watch(&ctx);
    pb::WatchRequest req;
    pb::WatchCreateRequest* create = req.mutable_create_request();
    create->set_key(stream_.key);
    create->set_range_end(stream_.range_end);
    create->set_start_revision(seg->start_revision);
    create->set_prev_kv(stream_.prev_kv);
    if (!stream->Write(req)) {
      stream->Finish();
      return false;
    }
    pb::WatchResponse resp;
    std::int64_t response_index = 0;
    bool created = false;
    while (stream->Read(&resp)) {
      const std::int64_t received_ns = NowNs();
      created = created || resp.created();
      if (resp.compact_revision() > 0) {
        seg->compact_revision = resp.compact_revision();
        break;
      }
      if (resp.canceled()) break;
      for (const auto& ev : resp.events()) {
        WatchEvent e;
        e.type = ev.type() == mvccpb::Event::PUT ? EventType::kPut : EventType::kDelete;
        e.kv = KeyValue{ev.kv().key(),          ev.kv().value(),   ev.kv().create_revision(),
                        ev.kv().mod_revision(), ev.kv().version(), ev.kv().lease()};
        e.has_prev = ev.has_prev_kv();
        if (e.has_prev) {
          const auto& p = ev.prev_kv();
          e.prev_kv = KeyValue{p.key(),          p.value(),   p.create_revision(),
                               p.mod_revision(), p.version(), p.lease()};
        }
        e.response_index = response_index;
        e.received_ns = received_ns;
        seg->events.push_back(std::move(e));
      }
      ++response_index;
      events_ += static_cast<std::size_t>(resp.events_size());
      if (events_ >= kEventsPerWatcherMax) {
        overflowed_.store(true);
        break;
      }
      if (!seg->events.empty()) {
        const std::int64_t last = seg->events.back().kv.mod_revision;
        if (role_ == WatcherRole::kAudit) shared_.audit_revision.store(last);
        const std::int64_t target = shared_.sync_target.load();
        if (target > 0 && last >= target) break;
      }
      if (shared_.stop_watchers.load()) break;
      if (role_ == WatcherRole::kSlow) std::this_thread::sleep_for(milliseconds(30));
    }
    ctx.TryCancel();
    stream->Finish();
    return created;
  }

  WatcherRole role_;
  std::mt19937_64 rng_;
  Shared& shared_;
  Channels channels_;
  WatchStream stream_;
  std::int64_t last_ = 0;
  std::size_t events_ = 0;
  std::atomic<bool> synced_{false};
  std::atomic<bool> overflowed_{false};
};

// ---- cluster control (caller's thread) ----

class Round {
 public:
  explicit Round(const HarnessOptions& options) : options_(options), rng_(options.seed) {}

  HarnessResult Run();

 private:
  void StartCluster();
  void RefreshPids();
  // Index of the member that reports itself leader, or -1.
  int FindLeader();
  std::size_t PickVictim(bool leader_biased);
  void InjectFault(FaultKind kind);
  // The replace-member fault (see FaultKind::kReplaceMember). Throws if the member could not be
  // added back: the round then fails with a harness error (the cluster would stay at 2).
  void ReplaceMember();
  // Arms `name` with `action` on member m over its failpoint endpoint. False when the member
  // did not answer (down or paused); throws when it refused the request (a harness bug).
  bool SetFailpoint(std::size_t m, const std::string& name, const std::string& action);
  // One remove + add + start of member m (index) through `first_asker` then the survivors.
  // Throws when the new member does not get ready (a crash while joining is a kvd bug).
  void ReplaceOnce(std::size_t m, std::size_t first_asker,
                   const std::vector<std::size_t>& survivors, const std::string& tag);
  // True once member `id` is absent from MemberList on every member in `askers` (bounded).
  bool WaitMemberGone(std::uint64_t id, const std::vector<std::size_t>& askers);
  void RecoverAll();
  void EndPhase();
  void KeepArtifacts(HarnessResult& result);
  milliseconds RandomMs(milliseconds lo, milliseconds hi) {
    return milliseconds(std::uniform_int_distribution<std::int64_t>(lo.count(), hi.count())(rng_));
  }
  void Log(const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu_);
    log_ << "[" << (NowNs() - start_ns_) / 1000000 << " ms] " << line << "\n";
  }

  const HarnessOptions& options_;
  std::mt19937_64 rng_;
  std::int64_t start_ns_ = NowNs();
  // Read by the proxy threads: declared before (so destroyed after) the network.
  std::array<std::atomic<pid_t>, 9> pids_{};
  std::unique_ptr<PeerNetwork> network_;
  std::unique_ptr<kvtest::EtcdLikeCluster> cluster_;
  std::vector<std::uint64_t> member_ids_;
  Shared shared_;
  std::unique_ptr<Channels> channels_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::unique_ptr<Watcher>> watchers_;
  std::vector<bool> paused_;
  std::vector<std::uint16_t> metrics_ports_;  // member i's metrics URL (failpoint endpoint)
  std::map<std::string, std::size_t> faults_;
  std::vector<Op> end_ops_;
  std::vector<MemberHash> hashes_;
  std::vector<Compaction> compactions_;
  std::mutex log_mu_;
  std::ostringstream log_;
};

void Round::RefreshPids() {
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    pids_[i].store(cluster_->Running(i) ? cluster_->process(i).pid() : 0);
  }
}

void Round::StartCluster() {
  const std::size_t n = options_.members;
  const auto ports = kvtest::PickFreePorts(3 * n);
  const long nl = static_cast<long>(n);
  std::vector<std::uint16_t> proxy_ports(ports.begin(), ports.begin() + nl);
  std::vector<std::uint16_t> peer_ports(ports.begin() + nl, ports.begin() + 2 * nl);
  metrics_ports_.assign(ports.begin() + 2 * nl, ports.end());
  network_ = std::make_unique<PeerNetwork>(proxy_ports, peer_ports, [this](std::size_t m) {
    return m < pids_.size() ? pids_[m].load() : 0;
  });
  kvtest::ClusterOptions o;
  o.binary = options_.kvd_binary;
  o.member_count = n;
  o.heartbeat_interval_ms = 50;
  o.election_timeout_ms = 500;
  o.ready_timeout = milliseconds(60000);
  o.peer_ports = peer_ports;
  o.advertised_peer_ports = proxy_ports;
  // Small raft snapshots so that restarted or partitioned members also catch up by snapshot.
  o.extra_args = {"--snapshot-count=2000"};
  o.env = {{"KVD_SNAPSHOT_CATCHUP_ENTRIES", "500"}, {"KVD_FAILPOINTS_HTTP", "1"}};
  o.env.insert(o.env.end(), options_.member_env.begin(), options_.member_env.end());
  // Each member's metrics URL carries the failpoint endpoint (fsync-delay, fsync-fail).
  for (std::size_t i = 0; i < n; ++i) {
    o.member_extra_args.push_back(
        {"--listen-metrics-urls=http://127.0.0.1:" + std::to_string(metrics_ports_[i])});
  }
  cluster_ = std::make_unique<kvtest::EtcdLikeCluster>(o, kvtest::EtcdReadyProbe());
  RefreshPids();
  paused_.assign(n, false);
  shared_.endpoints = cluster_->endpoints();
  channels_ = std::make_unique<Channels>(shared_.endpoints);
  for (std::size_t i = 0; i < n; ++i) {
    pb::StatusResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, milliseconds(5000));
    const grpc::Status s = channels_->maintenance[i]->Status(&ctx, pb::StatusRequest(), &resp);
    if (!s.ok())
      throw std::runtime_error("Status of member " + std::to_string(i) + ": " + s.error_message());
    member_ids_.push_back(resp.header().member_id());
  }
}

int Round::FindLeader() {
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    if (paused_[i] || pids_[i].load() == 0) continue;
    pb::StatusResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, milliseconds(1000));
    if (!channels_->maintenance[i]->Status(&ctx, pb::StatusRequest(), &resp).ok()) continue;
    for (std::size_t j = 0; j < member_ids_.size(); ++j) {
      if (member_ids_[j] == resp.leader() && resp.leader() != 0) return static_cast<int>(j);
    }
  }
  return -1;
}

std::size_t Round::PickVictim(bool leader_biased) {
  if (leader_biased && std::uniform_real_distribution<double>(0, 1)(rng_) < 0.6) {
    const int leader = FindLeader();
    if (leader >= 0) return static_cast<std::size_t>(leader);
  }
  return std::uniform_int_distribution<std::size_t>(0, cluster_->size() - 1)(rng_);
}

void Round::InjectFault(FaultKind kind) {
  ++faults_[ToString(kind)];
  switch (kind) {
    case FaultKind::kKill: {
      const std::size_t m = PickVictim(true);
      Log("kill -9 m" + std::to_string(m));
      cluster_->Kill(m, SIGKILL);
      RefreshPids();
      std::this_thread::sleep_for(RandomMs(milliseconds(200), milliseconds(2000)));
      cluster_->Restart(m, /*wait_ready=*/false);
      RefreshPids();
      cluster_->WaitReady(m);
      Log("m" + std::to_string(m) + " restarted and ready");
      break;
    }
    case FaultKind::kPause: {
      const std::size_t m = PickVictim(true);
      Log("SIGSTOP m" + std::to_string(m));
      cluster_->Kill(m, SIGSTOP);
      paused_[m] = true;
      std::this_thread::sleep_for(RandomMs(milliseconds(300), milliseconds(3000)));
      cluster_->Kill(m, SIGCONT);
      paused_[m] = false;
      Log("SIGCONT m" + std::to_string(m));
      break;
    }
    case FaultKind::kMoveLeader: {
      const int leader = FindLeader();
      if (leader < 0) {
        Log("move-leader: no leader found");
        break;
      }
      std::size_t target = static_cast<std::size_t>(leader);
      while (target == static_cast<std::size_t>(leader)) {
        target = std::uniform_int_distribution<std::size_t>(0, cluster_->size() - 1)(rng_);
      }
      pb::MoveLeaderRequest req;
      req.set_targetid(member_ids_[target]);
      pb::MoveLeaderResponse resp;
      grpc::ClientContext ctx;
      Bound(ctx, milliseconds(5000));
      const grpc::Status s =
          channels_->maintenance[static_cast<std::size_t>(leader)]->MoveLeader(&ctx, req, &resp);
      Log("move-leader m" + std::to_string(leader) + " -> m" + std::to_string(target) + ": " +
          (s.ok() ? std::string("ok") : s.error_message()));
      break;
    }
    case FaultKind::kPartition: {
      const std::size_t m = PickVictim(true);
      const bool drop = std::uniform_int_distribution<int>(0, 1)(rng_) == 0;
      Log(std::string("isolate m") + std::to_string(m) + (drop ? " (drop)" : " (blackhole)"));
      network_->Isolate(m, drop ? LinkFault::kDrop : LinkFault::kBlackhole);
      std::this_thread::sleep_for(RandomMs(milliseconds(500), milliseconds(4000)));
      network_->Heal();
      Log("heal");
      break;
    }
    case FaultKind::kAsymmetric: {
      const std::size_t from = PickVictim(true);
      // Outgoing links of `from` (it cannot be heard) or incoming ones (it cannot hear).
      const bool outgoing = std::uniform_int_distribution<int>(0, 1)(rng_) == 0;
      Log("blackhole " + std::string(outgoing ? "from m" : "to m") + std::to_string(from));
      for (std::size_t j = 0; j < cluster_->size(); ++j) {
        if (j == from) continue;
        if (outgoing) {
          network_->SetLink(from, j, LinkFault::kBlackhole);
        } else {
          network_->SetLink(j, from, LinkFault::kBlackhole);
        }
      }
      std::this_thread::sleep_for(RandomMs(milliseconds(500), milliseconds(4000)));
      network_->Heal();
      Log("heal");
      break;
    }
    case FaultKind::kReplaceMember:
      ReplaceMember();
      break;
    case FaultKind::kFsyncDelay: {
      const std::size_t m = PickVictim(true);
      const std::string action =
          "sleep(" + std::to_string(RandomMs(milliseconds(50), milliseconds(500)).count()) + ")";
      if (!SetFailpoint(m, "raftBeforeSave", action)) break;
      std::this_thread::sleep_for(RandomMs(milliseconds(1000), milliseconds(4000)));
      // A member killed meanwhile lost its failpoints anyway; otherwise this must disarm.
      if (!SetFailpoint(m, "raftBeforeSave", "off") && cluster_->Running(m)) {
        throw std::runtime_error("fsync-delay: cannot disarm the failpoint on m" +
                                 std::to_string(m));
      }
      break;
    }
    case FaultKind::kFsyncFail: {
      const std::size_t m = PickVictim(true);
      if (!SetFailpoint(m, "raftBeforeSave", "error")) break;
      // The next raft log write fails and kvd aborts; the workload's writes come quickly.
      auto ended = cluster_->process(m).Wait(milliseconds(15000));
      if (!ended && SetFailpoint(m, "raftBeforeSave", "off")) {
        Log("fsync-fail: m" + std::to_string(m) + " wrote nothing in 15 s; disarmed");
        break;
      }
      // Not disarmable: it may have aborted just after the wait ended.
      if (!ended) ended = cluster_->process(m).Wait(milliseconds(5000));
      if (!ended) {
        throw std::runtime_error("fsync-fail: m" + std::to_string(m) +
                                 " neither wrote nor could be disarmed");
      }
      if (!ended->KilledBy(SIGABRT)) {
        throw std::runtime_error("fsync-fail: m" + std::to_string(m) + " ended with " +
                                 ended->ToString() + ", expected SIGABRT");
      }
      Log("fsync-fail: m" + std::to_string(m) + " aborted (" + ended->ToString() + ")");
      RefreshPids();
      std::this_thread::sleep_for(RandomMs(milliseconds(200), milliseconds(2000)));
      cluster_->Restart(m, /*wait_ready=*/false);
      RefreshPids();
      cluster_->WaitReady(m);
      Log("m" + std::to_string(m) + " restarted and ready");
      break;
    }
    case FaultKind::kCompact: {
      const std::int64_t rev =
          std::min(shared_.audit_revision.load(), shared_.latest_revision.load()) - 5;
      if (rev <= 1) break;
      compactions_.push_back(Compaction{rev, NowNs()});
      pb::CompactionRequest req;
      req.set_revision(rev);
      req.set_physical(true);
      pb::CompactionResponse resp;
      grpc::ClientContext ctx;
      Bound(ctx, milliseconds(5000));
      const std::size_t m =
          std::uniform_int_distribution<std::size_t>(0, cluster_->size() - 1)(rng_);
      const grpc::Status s = channels_->kv[m]->Compact(&ctx, req, &resp);
      Log("compact at " + std::to_string(rev) + " via m" + std::to_string(m) + ": " +
          (s.ok() ? std::string("ok") : s.error_message()));
      break;
    }
  }
}

// Bounds of the replace-member steps. Generous: the machine is shared and slow.
constexpr milliseconds kMemberChangeRetryTimeout{30000};
constexpr milliseconds kMemberGoneTimeout{20000};
constexpr milliseconds kRemovedExitTimeout{15000};
constexpr milliseconds kMemberRpcTimeout{5000};

// Errors after which a member change may be retried: etcd's strict reconfiguration check
// (links not up long enough after a remove), an election, a deadline (the request may or may
// not have been applied: the retry tells, see the callers).
bool TransientMemberChangeError(const grpc::Status& s) {
  const std::string& m = s.error_message();
  return m == "etcdserver: unhealthy cluster" || m == "etcdserver: no leader" ||
         m == "etcdserver: leader changed" || m == "etcdserver: request timed out" ||
         m == "etcdserver: not leader" ||
         m == "etcdserver: re-configuration failed due to not enough started members" ||
         s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

bool Round::SetFailpoint(std::size_t m, const std::string& name, const std::string& action) {
  const kvtest::HttpReply r =
      kvtest::HttpGet(metrics_ports_[m], "/debug/failpoints?" + name + "=" + action);
  Log("failpoint m" + std::to_string(m) + " " + name + "=" + action + ": " +
      (r.status == 200 ? std::string("ok") : "HTTP " + std::to_string(r.status) + " " + r.body));
  if (r.status == 400) throw std::runtime_error("failpoint refused: " + r.body);
  return r.status == 200;
}

bool Round::WaitMemberGone(std::uint64_t id, const std::vector<std::size_t>& askers) {
  const auto deadline = std::chrono::steady_clock::now() + kMemberGoneTimeout;
  for (const std::size_t a : askers) {
    for (;;) {
      pb::MemberListResponse resp;
      grpc::ClientContext ctx;
      Bound(ctx, kMemberRpcTimeout);
      const grpc::Status s =
          channels_->cluster[a]->MemberList(&ctx, pb::MemberListRequest(), &resp);
      const bool gone = s.ok() && std::none_of(resp.members().begin(), resp.members().end(),
                                               [id](const pb::Member& x) { return x.id() == id; });
      if (gone) break;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  return true;
}

void Round::ReplaceMember() {
  const int leader = FindLeader();
  if (leader < 0) {
    Log("replace-member: no leader found");
    return;
  }
  std::vector<std::size_t> followers;
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    if (static_cast<int>(i) != leader) followers.push_back(i);
  }
  const std::size_t m =
      followers[std::uniform_int_distribution<std::size_t>(0, followers.size() - 1)(rng_)];
  std::vector<std::size_t> survivors;
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    if (i != m) survivors.push_back(i);
  }
  const std::string tag = "replace-member m" + std::to_string(m);
  ReplaceOnce(m, static_cast<std::size_t>(leader), survivors, tag);
}

void Round::ReplaceOnce(std::size_t m, std::size_t first_asker,
                        const std::vector<std::size_t>& survivors, const std::string& tag) {
  const std::uint64_t old_id = member_ids_[m];
  Log(tag + ": remove " + FormatHex(old_id));

  // 1. MemberRemove through the leader, retried on transient errors. "member not found" after
  //    a retry means an earlier attempt that timed out was applied.
  const auto remove_deadline = std::chrono::steady_clock::now() + kMemberChangeRetryTimeout;
  std::size_t asker = first_asker;
  std::string remove_error;
  for (int attempt = 0;; ++attempt) {
    pb::MemberRemoveRequest req;
    req.set_id(old_id);
    pb::MemberRemoveResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kMemberRpcTimeout);
    const grpc::Status s = channels_->cluster[asker]->MemberRemove(&ctx, req, &resp);
    if (s.ok() || (attempt > 0 && s.error_message() == "etcdserver: member not found")) {
      remove_error.clear();
      break;
    }
    remove_error = s.error_message();
    if (!TransientMemberChangeError(s) || std::chrono::steady_clock::now() >= remove_deadline) {
      break;
    }
    asker = survivors[static_cast<std::size_t>(attempt + 1) % survivors.size()];
    std::this_thread::sleep_for(milliseconds(200));
  }
  if (!remove_error.empty()) {
    // Nothing changed (or, after a deadline, maybe it did: the next step tells).
    Log(tag + ": MemberRemove failed: " + remove_error);
  }
  // 2. Gone from the survivors' MemberList, and the process exited (kvd stops itself).
  if (!WaitMemberGone(old_id, survivors)) {
    if (!remove_error.empty()) {
      Log(tag + ": not removed, fault skipped");
      return;
    }
    throw std::runtime_error(tag + ": removed member " + FormatHex(old_id) +
                             " still listed after " + std::to_string(kMemberGoneTimeout.count()) +
                             " ms");
  }
  Log(tag + ": gone from MemberList on the survivors");
  const auto exit = cluster_->process(m).Wait(kRemovedExitTimeout);
  if (exit) {
    Log(tag + ": exited by itself (" + exit->ToString() + ")");
  } else {
    Log(tag + ": still running " + std::to_string(kRemovedExitTimeout.count()) +
        " ms after its removal: kill -9");
    cluster_->Kill(m, SIGKILL);
  }
  RefreshPids();

  // 3. MemberAdd (a voter) with the same advertised peer URL, so the proxy in front of it
  //    keeps working. Right after a remove the strict check may answer "unhealthy cluster";
  //    after a deadline the add may have been applied: "Peer URLs already exists" then means
  //    our member is there, found by its URL in MemberList.
  const std::string peer_url = cluster_->advertised_peer_url(m);
  const auto add_deadline = std::chrono::steady_clock::now() + kMemberChangeRetryTimeout;
  std::uint64_t new_id = 0;
  asker = survivors[0];
  for (int attempt = 0; new_id == 0; ++attempt) {
    pb::MemberAddRequest req;
    req.add_peerurls(peer_url);
    pb::MemberAddResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kMemberRpcTimeout);
    const grpc::Status s = channels_->cluster[asker]->MemberAdd(&ctx, req, &resp);
    if (s.ok()) {
      new_id = resp.member().id();
      break;
    }
    if (attempt > 0 && s.error_message() == "etcdserver: Peer URLs already exists") {
      pb::MemberListResponse list;
      grpc::ClientContext lctx;
      Bound(lctx, kMemberRpcTimeout);
      if (channels_->cluster[asker]->MemberList(&lctx, pb::MemberListRequest(), &list).ok()) {
        for (const pb::Member& x : list.members()) {
          if (x.peerurls_size() > 0 && x.peerurls(0) == peer_url) new_id = x.id();
        }
      }
      if (new_id != 0) break;
    }
    if (!TransientMemberChangeError(s) &&
        s.error_message() != "etcdserver: Peer URLs already exists") {
      throw std::runtime_error(tag + ": MemberAdd failed: " + s.error_message());
    }
    if (std::chrono::steady_clock::now() >= add_deadline) {
      throw std::runtime_error(tag + ": MemberAdd still failing after " +
                               std::to_string(kMemberChangeRetryTimeout.count()) +
                               " ms: " + s.error_message());
    }
    if (attempt % 5 == 0) Log(tag + ": MemberAdd: " + s.error_message() + ", retrying");
    asker = survivors[static_cast<std::size_t>(attempt + 1) % survivors.size()];
    std::this_thread::sleep_for(milliseconds(200));
  }
  if (new_id == old_id) {
    throw std::runtime_error(tag + ": MemberAdd gave back the removed ID " + FormatHex(old_id));
  }
  member_ids_[m] = new_id;
  Log(tag + ": added back as " + FormatHex(new_id));
  // 4. Start it on an empty data dir with --initial-cluster-state=existing; publish its pid to
  //    the proxies at once (as a restart does), then wait until it serves.
  cluster_->Rejoin(m, /*wait_ready=*/false);
  RefreshPids();
  cluster_->WaitReady(m);  // throws (failing the round) if it dies or never gets ready
  Log(tag + ": rejoined and ready");
}

void Round::RecoverAll() {
  network_->Heal();
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    if (paused_[i]) {
      cluster_->Kill(i, SIGCONT);
      paused_[i] = false;
    }
  }
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    if (!cluster_->Running(i)) {
      Log("m" + std::to_string(i) + " is not running at the end: restarting");
      cluster_->Restart(i, false);
    }
  }
  RefreshPids();
  for (std::size_t i = 0; i < cluster_->size(); ++i) cluster_->WaitReady(i);
}

void Round::EndPhase() {
  const auto deadline = std::chrono::steady_clock::now() + kEndPhaseTimeout;
  auto before_deadline = [&] { return std::chrono::steady_clock::now() < deadline; };
  // 1. A linearizable read of every key ever written (recorded, so the linearizability search
  //    and CheckAcknowledgedWrites see the final state).
  std::set<std::string> keys;
  for (auto& c : clients_) {
    for (const Op& op : c->ops()) keys.insert(op.key);
  }
  std::size_t member = 0;
  for (const std::string& key : keys) {
    while (before_deadline()) {
      Op op;
      op.client = kFinalReadClient;
      op.kind = OpKind::kGet;
      op.key = key;
      op.call_ns = NowNs();
      pb::RangeRequest req;
      req.set_key(key);
      pb::RangeResponse resp;
      grpc::ClientContext ctx;
      Bound(ctx, kOpTimeout);
      const grpc::Status s = channels_->kv[member]->Range(&ctx, req, &resp);
      if (!s.ok()) {
        member = (member + 1) % cluster_->size();
        continue;
      }
      op.return_ns = NowNs();
      op.outcome = Outcome::kOk;
      op.revision = resp.header().revision();
      if (resp.kvs_size() > 0) {
        op.found = true;
        op.read_value = resp.kvs(0).value();
        op.read_mod_revision = resp.kvs(0).mod_revision();
      }
      end_ops_.push_back(std::move(op));
      break;
    }
  }
  // 2. The sentinel write: the watchers are synced once they have delivered its revision. Its
  //    failed attempts are unknown writes like any other.
  std::int64_t sentinel_rev = 0;
  for (int attempt = 0; sentinel_rev == 0 && before_deadline(); ++attempt) {
    Op op;
    op.client = kFinalReadClient;
    op.kind = OpKind::kPut;
    op.key = kSentinelKey;
    op.value = "sentinel-" + std::to_string(attempt);
    op.call_ns = NowNs();
    pb::PutRequest req;
    req.set_key(op.key);
    req.set_value(op.value);
    pb::PutResponse resp;
    grpc::ClientContext ctx;
    Bound(ctx, kOpTimeout);
    const grpc::Status s = channels_->kv[member]->Put(&ctx, req, &resp);
    if (s.ok()) {
      op.return_ns = NowNs();
      op.outcome = Outcome::kOk;
      op.revision = resp.header().revision();
      sentinel_rev = op.revision;
    } else {
      member = (member + 1) % cluster_->size();
    }
    end_ops_.push_back(std::move(op));
  }
  if (sentinel_rev == 0) throw std::runtime_error("the sentinel write never succeeded");
  shared_.sync_target.store(sentinel_rev);
  Log("sentinel at revision " + std::to_string(sentinel_rev));
  // 3. HashKV of every member at the sentinel revision.
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    while (before_deadline()) {
      pb::HashKVRequest req;
      req.set_revision(sentinel_rev);
      pb::HashKVResponse resp;
      grpc::ClientContext ctx;
      Bound(ctx, kOpTimeout);
      const grpc::Status s = channels_->maintenance[i]->HashKV(&ctx, req, &resp);
      if (s.ok()) {
        hashes_.push_back(
            MemberHash{cluster_->name(i), sentinel_rev, resp.hash(), resp.compact_revision()});
        break;
      }
      Log("HashKV m" + std::to_string(i) + ": " + s.error_message());
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  if (hashes_.size() != cluster_->size()) {
    throw std::runtime_error("HashKV did not answer on every member");
  }
}

void Round::KeepArtifacts(HarnessResult& result) {
  std::filesystem::path root = options_.artifacts_root;
  if (root.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    root = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  const std::filesystem::path dir = root / ("kvd-robustness-seed" + std::to_string(options_.seed) +
                                            "-" + std::to_string(NowNs() / 1000000));
  std::filesystem::create_directories(dir);
  History h;
  h.seed = options_.seed;
  for (auto& c : clients_) h.ops.insert(h.ops.end(), c->ops().begin(), c->ops().end());
  h.ops.insert(h.ops.end(), end_ops_.begin(), end_ops_.end());
  for (auto& w : watchers_) h.watches.push_back(w->stream());
  h.hashes = hashes_;
  h.compactions = compactions_;
  std::ofstream(dir / "history.json") << ToJson(h);
  std::ofstream(dir / "summary.txt") << result.Summary();
  std::ofstream(dir / "schedule.log") << log_.str();
  if (cluster_) {
    for (std::size_t i = 0; i < cluster_->size(); ++i) {
      std::error_code ec;
      std::filesystem::copy_file(cluster_->log_path(i), dir / (cluster_->name(i) + ".log"),
                                 std::filesystem::copy_options::overwrite_existing, ec);
    }
  }
  std::ofstream(dir / "replay.txt")
      << "seed " << options_.seed << ", workload " << options_.workload_duration.count() << " ms\n"
      << "re-check this exact history:  robustness_runner --check " << (dir / "history.json")
      << "\nre-run the seed (timing differs): scripts/robustness.sh --seed " << options_.seed
      << " --rounds 1 --round-seconds " << options_.workload_duration.count() / 1000 << "\n";
  result.artifacts_dir = dir.string();
}

HarnessResult Round::Run() {
  HarnessResult result;
  try {
    StartCluster();
    Log("cluster up, seed " + std::to_string(options_.seed));
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < options_.clients; ++c) {
      clients_.push_back(std::make_unique<Client>(static_cast<int>(c), options_.seed * 1000 + c,
                                                  options_.keys, shared_));
    }
    const WatcherRole roles[] = {WatcherRole::kAudit, WatcherRole::kRandom, WatcherRole::kSlow};
    for (std::size_t w = 0; w < 3; ++w) {
      watchers_.push_back(std::make_unique<Watcher>(static_cast<int>(100 + w), roles[w],
                                                    options_.seed * 1000 + 500 + w, shared_));
    }
    for (auto& c : clients_) threads.emplace_back([&c] { c->Run(); });
    for (auto& w : watchers_) threads.emplace_back([&w] { w->Run(); });
    // Joins every workload thread however this scope is left.
    struct Joiner {
      Shared& shared;
      std::vector<std::thread>& threads;
      ~Joiner() {
        shared.stop_workload.store(true);
        shared.stop_watchers.store(true);
        for (auto& t : threads) {
          if (t.joinable()) t.join();
        }
      }
    } joiner{shared_, threads};

    std::vector<double> weights;
    for (const FaultKind k : options_.faults) {
      weights.push_back(k == FaultKind::kReplaceMember ? kReplaceMemberWeight : 1.0);
    }
    std::discrete_distribution<std::size_t> draw(weights.begin(), weights.end());
    const auto end = std::chrono::steady_clock::now() + options_.workload_duration;
    while (std::chrono::steady_clock::now() < end && !options_.faults.empty()) {
      std::this_thread::sleep_for(RandomMs(options_.fault_gap_min, options_.fault_gap_max));
      if (std::chrono::steady_clock::now() >= end) break;
      const FaultKind kind = options_.faults[draw(rng_)];
      InjectFault(kind);
    }
    if (options_.faults.empty()) std::this_thread::sleep_until(end);
    RecoverAll();
    shared_.stop_workload.store(true);
    for (std::size_t c = 0; c < clients_.size(); ++c) threads[c].join();
    Log("workload stopped");
    EndPhase();
    // Watchers exit once synced; the stop flag bounds the wait.
    const auto sync_deadline = std::chrono::steady_clock::now() + kEndPhaseTimeout;
    for (auto& w : watchers_) {
      while (!w->synced() && !w->overflowed() && std::chrono::steady_clock::now() < sync_deadline) {
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
  } catch (const std::exception& e) {
    result.error = e.what();
    Log(std::string("harness error: ") + e.what());
  }
  shared_.stop_workload.store(true);
  shared_.stop_watchers.store(true);
  // (threads were joined by the Joiner when the try block ended)

  History h;
  h.seed = options_.seed;
  for (auto& c : clients_) h.ops.insert(h.ops.end(), c->ops().begin(), c->ops().end());
  h.ops.insert(h.ops.end(), end_ops_.begin(), end_ops_.end());
  for (auto& w : watchers_) {
    h.watches.push_back(w->stream());
    if (w->overflowed() && result.error.empty()) {
      result.error = "watch client " + std::to_string(w->stream().client) + " recorded " +
                     std::to_string(kEventsPerWatcherMax) + " events: round too long";
    }
    if (w->stream().synced_through_revision == 0 && result.error.empty()) {
      result.error = "watch client " + std::to_string(w->stream().client) +
                     " did not sync through the sentinel";
    }
  }
  h.hashes = hashes_;
  h.compactions = compactions_;
  for (const Op& op : h.ops) {
    if (op.outcome == Outcome::kOk) {
      ++result.ops_ok;
    } else {
      ++result.ops_unknown;
    }
  }
  result.report = CheckHistory(std::move(h));
  result.faults = faults_;
  if (network_) {
    result.peer_connections = network_->connections_accepted();
    result.peer_connections_unidentified = network_->unidentified_connections();
  }
  result.passed = result.error.empty() && result.report.Passed();
  if (!result.passed || options_.keep_always) KeepArtifacts(result);
  return result;
}

}  // namespace

std::string ToString(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKill:
      return "kill";
    case FaultKind::kPause:
      return "pause";
    case FaultKind::kMoveLeader:
      return "move-leader";
    case FaultKind::kPartition:
      return "partition";
    case FaultKind::kAsymmetric:
      return "asymmetric-partition";
    case FaultKind::kCompact:
      return "compact";
    case FaultKind::kReplaceMember:
      return "replace-member";
    case FaultKind::kFsyncDelay:
      return "fsync-delay";
    case FaultKind::kFsyncFail:
      return "fsync-fail";
  }
  return "?";
}

std::vector<FaultKind> AllFaults() {
  return {FaultKind::kKill,          FaultKind::kPause,      FaultKind::kMoveLeader,
          FaultKind::kPartition,     FaultKind::kAsymmetric, FaultKind::kCompact,
          FaultKind::kReplaceMember, FaultKind::kFsyncDelay, FaultKind::kFsyncFail};
}

std::string HarnessResult::Summary() const {
  std::ostringstream out;
  out << (passed ? "PASS" : "FAIL") << ": " << ops_ok << " ops ok, " << ops_unknown
      << " unknown; faults:";
  for (const auto& [kind, n] : faults) out << " " << kind << "=" << n;
  out << "; peer connections " << peer_connections << " (" << peer_connections_unidentified
      << " unidentified)";
  out << "\n";
  if (!error.empty()) out << "harness error: " << error << "\n";
  out << report.Summary();
  if (!artifacts_dir.empty()) out << "artifacts: " << artifacts_dir << "\n";
  return out.str();
}

HarnessResult RunRound(const HarnessOptions& options) {
  Round round(options);
  return round.Run();
}

Report CheckSavedHistory(const std::filesystem::path& history_json) {
  std::ifstream in(history_json);
  if (!in) throw std::runtime_error("cannot read " + history_json.string());
  std::stringstream text;
  text << in.rdbuf();
  return CheckHistory(FromJson(text.str()));
}

}  // namespace kv::robustness
