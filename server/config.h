// server::Config: kvd's command line, which is etcd 3.4's command line. A user replaces `etcd`
// with `kvd` and keeps every flag and every ETCD_* environment variable; flags that kvd does not
// implement are accepted (with etcd's syntax checks) and reported in Config::ignored_flags.
//
// Parsing follows Go's flag package as etcd 3.4.23 uses it: `-flag`, `--flag`, `-flag=value`,
// `--flag value`; bool flags take no separate value; parsing stops at the first non-flag
// argument (which is then an error). Error wording and exit codes are etcd's (see
// docs/configuration.md for each rule and for what differs).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/status.h"

namespace server {

// What kvd reports as its etcd versions (/version, --version, Maintenance.Status).
inline constexpr std::string_view kEtcdServerVersion = "3.4.23";
inline constexpr std::string_view kEtcdClusterVersion = "3.4.0";
inline constexpr std::string_view kKvdVersion = "0.1.0";

// etcd's limits (embed/config.go): election timeout must stay below 50 s.
inline constexpr uint64_t kElectionTimeoutMsMax = 50000;
// --quota-backend-bytes 0 means etcd's default quota of 2 GiB.
inline constexpr uint64_t kDefaultQuotaBackendBytes = 2ULL * 1024 * 1024 * 1024;

// A parsed http(s) URL of the form scheme://host:port with nothing after the port.
struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // IPv6 literals without their brackets; may be empty for listen URLs
  uint16_t port = 0;
  std::string text;  // the URL as written (trimmed), e.g. "http://[::1]:2379"

  friend bool operator==(const Url&, const Url&) = default;
};

// Parses one URL as etcd's types.NewURLs does for a single element. Errors carry exit code 2
// and etcd's wording ("URL scheme must be http, https, unix, or unixs: ...").
[[nodiscard]] Status ParseUrl(std::string_view text, Url* out);

// Parses a comma-separated URL list (etcd sorts it by string, so do we).
[[nodiscard]] Status ParseUrlList(std::string_view text, std::vector<Url>* out);

enum class ClusterState { kNew, kExisting };
enum class LogLevel { kDebug, kInfo, kWarn, kError, kPanic, kFatal };
enum class LogFormat { kText, kJson };

std::string_view ToString(ClusterState state);
std::string_view ToString(LogLevel level);
std::string_view ToString(LogFormat format);

// One member of --initial-cluster.
struct InitialMember {
  std::string name;
  std::vector<std::string> peer_urls;  // sorted, as written (trimmed)
  uint64_t id = 0;                     // ComputeMemberId(peer_urls, token, nullopt)
};

// etcd's member ID rule (etcdserver/api/membership.NewMember): the first 8 bytes, big endian,
// of SHA-1 over the sorted peer URLs concatenated, then the cluster token, then (only for a
// member added at run time through MemberAdd) the decimal Unix time in seconds.
uint64_t ComputeMemberId(std::vector<std::string> peer_urls, std::string_view cluster_token,
                         std::optional<int64_t> unix_seconds);

// etcd's cluster ID rule (membership.RaftCluster.genID): the first 8 bytes, big endian, of
// SHA-1 over the member IDs sorted ascending, each as 8 big-endian bytes.
uint64_t ComputeClusterId(std::vector<uint64_t> member_ids);

// etcd's types.ID.String(): lowercase hex without leading zeros, e.g. "bdae9bbc11dd390d".
std::string FormatId(uint64_t id);

struct Config {
  // Member.
  std::string name = "default";
  std::string data_dir;  // "${name}.etcd" unless given
  std::string wal_dir;   // empty: inside data_dir
  uint64_t snapshot_count = 100000;
  uint64_t heartbeat_interval_ms = 100;
  uint64_t election_timeout_ms = 1000;
  std::vector<Url> listen_peer_urls;
  std::vector<Url> listen_client_urls;
  std::vector<Url> listen_metrics_urls;  // empty: metrics only on the client URLs
  int64_t quota_backend_bytes = 0;       // as given; see BackendQuotaBytes()
  uint64_t max_txn_ops = 128;
  uint64_t max_request_bytes = 1572864;
  // --experimental-watch-progress-notify-interval: how often progress_notify watchers that got
  // no events hear the current revision.
  uint64_t watch_progress_notify_interval_ms = 10 * 60 * 1000;
  // --experimental-corrupt-check-time: how often the leader compares HashKV with the other
  // members (server/corrupt_check.h); 0: never (no check after compactions either). etcd's
  // default is 0; kvd turns it on.
  uint64_t corrupt_check_period_ms = 60 * 1000;

  // Clustering.
  std::vector<Url> initial_advertise_peer_urls;
  std::vector<Url> advertise_client_urls;
  std::vector<InitialMember> initial_cluster;  // sorted by name
  ClusterState initial_cluster_state = ClusterState::kNew;
  std::string initial_cluster_token = "etcd-cluster";
  // --strict-reconfig-check: member changes that could cost the quorum are refused (etcd's
  // mayAddMember / mayRemoveMember / mayPromoteMember). Off: only etcd's validation remains.
  bool strict_reconfig_check = true;

  // Logging.
  LogLevel log_level = LogLevel::kInfo;
  std::string logger = "capnslog";  // accepted for compatibility: capnslog or zap
  std::vector<std::string> log_outputs = {"default"};
  LogFormat log_format = LogFormat::kText;  // kvd only

  // kvd only: restore a snapshot file into data_dir before starting (empty: none).
  std::string restore_path;

  // What the front end should do instead of starting a server.
  bool show_help = false;
  bool show_version = false;

  // Derived: this member's ID and the cluster ID as etcd computes them for a new cluster. For
  // --initial-cluster-state=existing etcd takes both from the running cluster instead.
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;

  // etcd flags that kvd accepts but does not implement, with the value given (only those set
  // on the command line or through the environment), in flag-name order.
  std::vector<std::pair<std::string, std::string>> ignored_flags;
  // Non-fatal findings, one line each (e.g. "unrecognized environment variable ETCD_FOO=bar").
  std::vector<std::string> warnings;

  // Raft timing. One tick is one heartbeat interval (etcd's TickMs).
  uint64_t tick_ms() const { return heartbeat_interval_ms; }
  // etcd: ElectionTicks = ElectionMs / TickMs (integer division). >= 5 after validation.
  uint64_t election_timeout_ticks() const { return election_timeout_ms / heartbeat_interval_ms; }
  // etcd's lessor minimum TTL: ceil(((3 * election_ticks) / 2) * tick_ms / 1000) seconds.
  int64_t min_lease_ttl_seconds() const;
  // The backend quota in bytes: the default 2 GiB for 0, nullopt (no quota) when negative.
  std::optional<uint64_t> BackendQuotaBytes() const;

  // A human-readable multi-line dump ("key: value" lines), for the kvd front end and logs.
  std::string Describe() const;
};

// Parses `args` (args[0] is the program name and is skipped) and `env` (environ-style
// "KEY=VALUE" strings; only ETCD_* ones matter) into *out. On error *out is unspecified and the
// Status carries a one-line message and the exit code etcd uses for the same mistake (2 for
// flag syntax, 1 for validation). When --help or --version is given, parsing stops early with
// Ok and show_help / show_version set (etcd still reports earlier flag syntax errors first).
[[nodiscard]] Status ParseConfig(std::span<const std::string> args,
                                 std::span<const std::string> env, Config* out);

// The --help text: every flag with its default, grouped as etcd groups them.
std::string UsageText();
// The --version text. The first line is etcd's ("etcd Version: 3.4.23") so scripts that parse
// `etcd --version` keep working.
std::string VersionText();

}  // namespace server
