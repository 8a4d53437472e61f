#include "server/kvd_server.h"

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "kvstore/failpoint.h"
#include "server/grpc_metrics.h"
#include "server/log.h"

namespace server {
namespace {

std::string ListenAddress(const Url& u) {
  const std::string host = u.host.empty() ? "0.0.0.0" : u.host;
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(u.port);
}

// gRPC sets SO_REUSEPORT on listeners by default, and then a second kvd (or anything else with
// SO_REUSEPORT) started on the same port listens too and the kernel splits new connections
// between the two: clients of one cluster would silently talk to another. Off, the second
// bind fails and kvd refuses to start, as etcd does.
void RefuseSharedPorts(grpc::ServerBuilder& b) {
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

// Keepalive policy for Go clients (reference 3.13): they ping every 10 s on idle streams, which
// gRPC-core's defaults (5 min minimum, 2 strikes) would answer with GOAWAY too_many_pings.
void SetKeepalive(grpc::ServerBuilder& b) {
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2 * 60 * 60 * 1000);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
}

// A query-string component with %XX escapes (and '+' for space) decoded; nullopt for a
// malformed escape.
std::optional<std::string> PercentDecode(std::string_view in) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] != '%') {
      out.push_back(in[i]);
    } else {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex(in[i + 1]);
      const int lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return out;
}

}  // namespace

KvdServer::KvdServer(Config config, NodeLimits limits)
    : config_(std::move(config)), limits_(limits) {}

KvdServer::~KvdServer() { Stop(); }

Status KvdServer::Start() {
  SetLogMember(config_.member_id);
  Status s = Node::Open(config_, limits_, &node_);
  if (!s.ok()) return s;
  {
    Node* node = node_.get();
    SetLogTerm([node] { return node->term(); });
  }

  // Peers first, so that members starting together find each other's listeners.
  {
    grpc::ServerBuilder b;
    for (const Url& u : config_.listen_peer_urls) {
      b.AddListeningPort(ListenAddress(u), grpc::InsecureServerCredentials());
    }
    b.RegisterService(node_->peer_service());
    b.SetMaxReceiveMessageSize(64 << 20);
    SetKeepalive(b);
    RefuseSharedPorts(b);
    peer_server_ = b.BuildAndStart();
    if (!peer_server_) return Status(1, "kvd: cannot listen on the peer URLs (port in use?)");
  }
  metrics_ = std::make_unique<MetricsRegistry>();
  RegisterProcessMetrics(*metrics_);
  etcd_metrics_ = std::make_unique<EtcdMetrics>(RegisterEtcdMetrics(*metrics_));
  node_->SetMetrics(etcd_metrics_.get());
  RegisterMemberMetrics();
  if (on_removed_) node_->SetOnRemoved(on_removed_);
  if (config_.corrupt_check_period_ms > 0) {
    CorruptCheckOptions co;
    co.period = std::chrono::milliseconds(config_.corrupt_check_period_ms);
    // etcd's request timeout: 5 s + 2 x election timeout.
    co.peer_timeout = std::chrono::milliseconds(5000 + 2 * config_.election_timeout_ms);
    corrupt_checker_ = std::make_unique<CorruptChecker>(node_.get(), co);
    CorruptChecker* checker = corrupt_checker_.get();
    node_->SetOnCompactionApplied([checker] { checker->Trigger(); });
    RegisterCorruptCheckMetrics();
  }
  node_->Start();
  if (corrupt_checker_) corrupt_checker_->Start();

  grpc_methods_ = std::make_unique<GrpcMethodTable>(etcd_metrics_.get(), EtcdClientServices(),
                                                    KvService::MeteredMethods());
  kv_ = std::make_unique<KvService>(node_.get(), grpc_methods_.get());
  maintenance_ = std::make_unique<MaintenanceService>(node_.get());
  cluster_ = std::make_unique<ClusterService>(node_.get());
  lease_ = std::make_unique<LeaseService>(node_.get());
  WatchServiceOptions wo;
  wo.progress_interval = std::chrono::milliseconds(config_.watch_progress_notify_interval_ms);
  wo.watchers_gauge = &etcd_metrics_->mvcc_watcher_total;
  watch_ = std::make_unique<WatchService>(node_.get(), wo);
  auth_ = std::make_unique<AuthService>(node_.get());
  {
    grpc::ServerBuilder b;
    for (const Url& u : config_.listen_client_urls) {
      b.AddListeningPort(ListenAddress(u), grpc::InsecureServerCredentials());
    }
    b.RegisterService(kv_.get());
    b.RegisterService(maintenance_.get());
    b.RegisterService(cluster_.get());
    b.RegisterService(lease_.get());
    b.RegisterService(watch_.get());
    b.RegisterService(auth_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> icpt;
    icpt.push_back(std::make_unique<GrpcMetricsInterceptorFactory>(grpc_methods_.get()));
    b.experimental().SetInterceptorCreators(std::move(icpt));
    // etcd: max receive = --max-request-bytes + 512 KiB (gRPC overhead); max send unlimited.
    b.SetMaxReceiveMessageSize(static_cast<int>(config_.max_request_bytes + 512 * 1024));
    b.SetMaxSendMessageSize(-1);
    SetKeepalive(b);
    RefuseSharedPorts(b);
    client_server_ = b.BuildAndStart();
    if (!client_server_) return Status(1, "kvd: cannot listen on the client URLs (port in use?)");
  }

  for (const Url& u : config_.listen_metrics_urls) {
    HttpServerOptions ho;
    ho.host = u.host.empty() ? "0.0.0.0" : u.host;
    ho.port = u.port;
    auto http = std::make_unique<HttpServer>(ho);
    Node* node = node_.get();
    auto progress = [node] {
      MemberProgress p;
      // applied before commit: a commit read later is never older than the applied one.
      p.applied_index = node->applied_index();
      p.commit_index = node->commit_index();
      p.leader_id = node->leader();
      return p;
    };
    RegisterEtcdHandlers(
        *http, *metrics_, [progress] { return MemberHealth(progress()); },
        [progress] { return MemberReadiness(progress()); });
    if (const char* v = std::getenv("KVD_FAILPOINTS_HTTP"); v != nullptr && v == std::string("1")) {
      // Test-only (docs/robustness.md): GET /debug/failpoints?NAME=ACTION[&...] arms points,
      // ACTION "off" disarms; the answer lists what is armed. 400 on an unknown name/action.
      http->Handle("/debug/failpoints", [](const HttpRequest& req) {
        HttpResponse r;
        std::string_view q = req.query;
        while (!q.empty()) {
          const size_t amp = q.find('&');
          const std::optional<std::string> decoded = PercentDecode(q.substr(0, amp));
          q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
          const std::string_view item = decoded ? std::string_view(*decoded) : std::string_view();
          const size_t eq = item.find('=');
          kvstore::Status fs =
              !decoded || eq == std::string_view::npos
                  ? kvstore::Status(kvstore::Code::kInvalidArgument,
                                    "expected NAME=ACTION (percent-encoded)")
                  : kvstore::failpoint::Set(item.substr(0, eq), item.substr(eq + 1));
          if (!fs.ok()) {
            r.status = 400;
            r.body = fs.message() + "\n";
            return r;
          }
          if (eq != std::string_view::npos) {
            KVD_LOG("failpoint %.*s set to %.*s over HTTP", static_cast<int>(eq), item.data(),
                    static_cast<int>(item.size() - eq - 1), item.data() + eq + 1);
          }
        }
        r.body = kvstore::failpoint::List();
        return r;
      });
    }
    s = http->Start();
    if (!s.ok()) return s;
    http_.push_back(std::move(http));
  }
  KVD_LOG("member %s (%s) serving clients on %zu URL(s), peers on %zu URL(s)",
          FormatId(node_->member_id()).c_str(), config_.name.c_str(),
          config_.listen_client_urls.size(), config_.listen_peer_urls.size());
  return Status::Ok();
}

void KvdServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (node_ && node_->is_leader()) {
    // Like etcd on SIGTERM: hand leadership over so the cluster does not wait for an election.
    const bool moved =
        node_->TransferLeadershipAway(std::chrono::milliseconds(2 * config_.election_timeout_ms));
    KVD_LOG("leadership transfer before stopping: %s",
            moved ? "done" : "not done (no connected voter, or timed out)");
  }
  for (auto& h : http_) h->Stop();
  // Before the node: a check in flight is abandoned and proposes nothing more.
  if (corrupt_checker_) corrupt_checker_->Stop();
  // The node first: it fails every waiting request, so each client reactor finishes and the
  // client server's shutdown does not wait on them.
  if (node_) node_->Stop();
  // Watch streams never end by themselves: finish them so the shutdown need not cancel them.
  if (watch_) watch_->Stop();
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(1);
  if (client_server_) client_server_->Shutdown(deadline);
  if (peer_server_) peer_server_->Shutdown(deadline);
  KVD_LOG("member %s stopped", FormatId(node_ ? node_->member_id() : config_.member_id).c_str());
  ClearLogTerm();
}

void KvdServer::RegisterCorruptCheckMetrics() {
  CorruptChecker* checker = corrupt_checker_.get();
  metrics_->AddCallback(
      "kvd_corruption_checks_total", "Cross-member HashKV checks this member completed as leader.",
      MetricType::kCounter, [checker] { return static_cast<double>(checker->checks_completed()); });
  metrics_->AddCallback(
      "kvd_corruption_mismatches_total",
      "Members whose HashKV differed from this leader's (each raised a CORRUPT alarm).",
      MetricType::kCounter, [checker] { return static_cast<double>(checker->mismatches_found()); });
}

void KvdServer::RegisterMemberMetrics() {
  MetricsRegistry& r = *metrics_;
  Node* node = node_.get();
  r.AddCallback("etcd_server_is_leader",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.", MetricType::kGauge,
                [node] { return node->is_leader() ? 1.0 : 0.0; });
  const std::optional<uint64_t> quota = config_.BackendQuotaBytes();
  // No quota (negative flag): report the largest int64, which no database reaches.
  const double quota_bytes = quota ? static_cast<double>(*quota) : 9223372036854775807.0;
  r.AddCallback("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.",
                MetricType::kGauge, [quota_bytes] { return quota_bytes; });
  r.AddCallback("etcd_mvcc_db_total_size_in_use_in_bytes",
                "Total size of the underlying database logically in use in bytes.",
                MetricType::kGauge,
                [node] { return static_cast<double>(node->store().SizeInUseBytes()); });
  r.AddCallback("etcd_debugging_mvcc_current_revision", "The current revision of store.",
                MetricType::kGauge,
                [node] { return static_cast<double>(node->store().CurrentRevision()); });
  r.AddCallback("etcd_debugging_mvcc_compact_revision",
                "The revision of the last compaction in store.", MetricType::kGauge,
                [node] { return static_cast<double>(node->store().CompactRevision()); });
  // Watch counters as etcd 3.4 names them, plus kvd's responses count: events / responses is
  // how many events a watch message carries on average (coalescing, docs/watch.md).
  const auto watch = [node](uint64_t kvstore::WatchMetrics::*field) {
    return [node, field] { return static_cast<double>(node->watchable().Metrics().*field); };
  };
  r.AddCallback("etcd_debugging_mvcc_events_total", "Total number of events sent by this member.",
                MetricType::kCounter, watch(&kvstore::WatchMetrics::events_sent));
  r.AddCallback("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.",
                MetricType::kGauge, watch(&kvstore::WatchMetrics::streams));
  r.AddCallback("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.",
                MetricType::kGauge, watch(&kvstore::WatchMetrics::slow_watchers));
  r.AddCallback("kvd_watch_responses_sent_total",
                "Watch responses handed to gRPC by this member (one message each).",
                MetricType::kCounter, watch(&kvstore::WatchMetrics::responses_sent));
  r.AddGaugeFamily("etcd_server_version",
                   "Which version is running. 1 for 'server_version' label with current version.",
                   {"server_version"})
      .WithLabels({std::string(kEtcdServerVersion)})
      .Set(1);
  r.AddGaugeFamily("etcd_server_id",
                   "Server or member ID in hexadecimal format. 1 for 'server_id' label with "
                   "current ID.",
                   {"server_id"})
      .WithLabels({FormatId(config_.member_id)})
      .Set(1);
  r.AddCallback("kvd_raft_term", "The current raft term of this member.", MetricType::kGauge,
                [node] { return static_cast<double>(node->term()); });
  r.AddCallback("kvd_raft_commit_index", "The highest raft log index this member knows committed.",
                MetricType::kGauge, [node] { return static_cast<double>(node->commit_index()); });
  r.AddCallback("kvd_raft_applied_index",
                "The highest raft log index applied to this member's store.", MetricType::kGauge,
                [node] { return static_cast<double>(node->applied_index()); });
  r.AddCallback("kvd_raft_log_first_index",
                "The first raft log index this member still holds; older entries were compacted "
                "behind a snapshot.",
                MetricType::kGauge,
                [node] { return static_cast<double>(node->log_first_index()); });
}

}  // namespace server
