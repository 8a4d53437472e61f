// server::ParseConfig: etcd 3.4.23's flags, ETCD_* variables, validation and derived values.
// Expected messages, exit codes and IDs were taken from the real etcd 3.4.23 binary (see
// docs/configuration.md).
#include "server/config.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace {

using server::Config;
using server::Status;

// The loopback flags most tests share: one member "y" on 127.0.0.1.
const std::vector<std::string> kLoopback = {
    "--listen-client-urls",          "http://127.0.0.1:23791", "--advertise-client-urls",
    "http://127.0.0.1:23791",        "--listen-peer-urls",     "http://127.0.0.1:23801",
    "--initial-advertise-peer-urls", "http://127.0.0.1:23801"};

std::vector<std::string> Args(std::vector<std::string> flags, bool loopback = false) {
  std::vector<std::string> args = {"kvd"};
  if (loopback) args.insert(args.end(), kLoopback.begin(), kLoopback.end());
  args.insert(args.end(), flags.begin(), flags.end());
  return args;
}

Status Parse(const std::vector<std::string>& args, Config* config,
             const std::vector<std::string>& env = {}) {
  return server::ParseConfig(args, env, config);
}

// Expects an error with this exact message and exit code.
void ExpectError(const std::vector<std::string>& args, const std::string& message, int exit_code,
                 const std::vector<std::string>& env = {}) {
  Config config;
  Status st = Parse(args, &config, env);
  INFO("message: " << st.message());
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() == message);
  CHECK(st.exit_code() == exit_code);
}

}  // namespace

TEST_CASE("no flags gives etcd 3.4's defaults", "[config]") {
  // Goal: every default equals etcd's (names, URLs, numbers, derived IDs).
  Config c;
  REQUIRE(Parse({"kvd"}, &c).ok());
  CHECK(c.name == "default");
  CHECK(c.data_dir == "default.etcd");
  CHECK(c.wal_dir.empty());
  REQUIRE(c.listen_client_urls.size() == 1);
  CHECK(c.listen_client_urls[0].text == "http://localhost:2379");
  CHECK(c.listen_client_urls[0].host == "localhost");
  CHECK(c.listen_client_urls[0].port == 2379);
  CHECK(c.advertise_client_urls[0].text == "http://localhost:2379");
  CHECK(c.listen_peer_urls[0].text == "http://localhost:2380");
  CHECK(c.initial_advertise_peer_urls[0].text == "http://localhost:2380");
  CHECK(c.listen_metrics_urls.empty());
  REQUIRE(c.initial_cluster.size() == 1);
  CHECK(c.initial_cluster[0].name == "default");
  CHECK(c.initial_cluster[0].peer_urls == std::vector<std::string>{"http://localhost:2380"});
  CHECK(c.initial_cluster_state == server::ClusterState::kNew);
  CHECK(c.initial_cluster_token == "etcd-cluster");
  CHECK(c.heartbeat_interval_ms == 100);
  CHECK(c.election_timeout_ms == 1000);
  CHECK(c.snapshot_count == 100000);
  CHECK(c.quota_backend_bytes == 0);
  CHECK(c.BackendQuotaBytes() == std::optional<uint64_t>(2ULL << 30));
  CHECK(c.max_request_bytes == 1572864);
  CHECK(c.max_txn_ops == 128);
  CHECK(c.log_level == server::LogLevel::kInfo);
  CHECK(c.log_format == server::LogFormat::kText);
  CHECK(c.logger == "capnslog");
  CHECK(c.ignored_flags.empty());
  CHECK(c.warnings.empty());
  CHECK_FALSE(c.show_help);
  CHECK_FALSE(c.show_version);
  CHECK(c.member_id == server::ComputeMemberId({"http://localhost:2380"}, "etcd-cluster", {}));
  CHECK(c.cluster_id == server::ComputeClusterId({c.member_id}));
}

TEST_CASE("member and cluster IDs equal the real etcd's", "[config]") {
  // Goal: IDs printed by etcd 3.4.23 for the same flags ("starting member X in cluster Y").
  Config c;
  REQUIRE(Parse(Args({"--name", "y"}, true), &c).ok());
  CHECK(server::FormatId(c.member_id) == "bdae9bbc11dd390d");
  CHECK(server::FormatId(c.cluster_id) == "d1cfaf999eb97a2a");

  Config two_urls;
  REQUIRE(Parse(Args({"--name", "y", "--initial-advertise-peer-urls",
                      "http://127.0.0.2:23801,http://127.0.0.1:23801"},
                     true),
                &two_urls)
              .ok());
  CHECK(server::FormatId(two_urls.member_id) == "cab8180fe39ce826");
  CHECK(server::FormatId(two_urls.cluster_id) == "1a11d7eca9877c7a");

  Config empty_token;
  REQUIRE(Parse(Args({"--name", "y", "--initial-cluster-token", ""}, true), &empty_token).ok());
  CHECK(server::FormatId(empty_token.member_id) == "3122ec752e8571b3");
  CHECK(server::FormatId(empty_token.cluster_id) == "cfe6c11bb2fc6241");
}

TEST_CASE("IDs of a three-member cluster are distinct and order-independent", "[config]") {
  // Goal: each member gets its own ID, every member computes the same cluster ID, and the
  // order of --initial-cluster does not matter.
  const std::string cluster =
      "a=http://127.0.0.1:1001,b=http://127.0.0.1:1002,c=http://127.0.0.1:1003";
  const std::string reordered =
      "c=http://127.0.0.1:1003,a=http://127.0.0.1:1001,b=http://127.0.0.1:1002";
  std::vector<uint64_t> member_ids;
  uint64_t cluster_id = 0;
  for (int i = 1; i <= 3; ++i) {
    std::string name(1, static_cast<char>('a' + i - 1));
    std::string url = "http://127.0.0.1:100" + std::to_string(i);
    Config c;
    REQUIRE(Parse({"kvd", "--name", name, "--initial-advertise-peer-urls", url,
                   "--listen-peer-urls", url, "--initial-cluster", i == 2 ? reordered : cluster},
                  &c)
                .ok());
    REQUIRE(c.initial_cluster.size() == 3);
    CHECK(c.initial_cluster[static_cast<size_t>(i - 1)].name == name);
    CHECK(c.member_id == server::ComputeMemberId({url}, "etcd-cluster", {}));
    member_ids.push_back(c.member_id);
    if (cluster_id == 0) cluster_id = c.cluster_id;
    CHECK(c.cluster_id == cluster_id);
  }
  CHECK(member_ids[0] != member_ids[1]);
  CHECK(member_ids[1] != member_ids[2]);
  CHECK(member_ids[0] != member_ids[2]);
  CHECK(server::ComputeClusterId({member_ids[2], member_ids[0], member_ids[1]}) == cluster_id);
}

TEST_CASE("member IDs for runtime MemberAdd include the time", "[config]") {
  // Goal: the optional Unix time changes the ID deterministically, and the token matters.
  const std::vector<std::string> urls = {"http://10.0.0.1:2380"};
  uint64_t without_time = server::ComputeMemberId(urls, "t", std::nullopt);
  uint64_t at_1000 = server::ComputeMemberId(urls, "t", 1000);
  CHECK(at_1000 == server::ComputeMemberId(urls, "t", 1000));
  CHECK(at_1000 != without_time);
  CHECK(at_1000 != server::ComputeMemberId(urls, "t", 1001));
  CHECK(without_time != server::ComputeMemberId(urls, "u", std::nullopt));
  // etcd hashes the concatenation, so the time behaves like a token suffix.
  CHECK(at_1000 == server::ComputeMemberId(urls, "t1000", std::nullopt));
}

TEST_CASE("flag syntaxes of Go's flag package are accepted", "[config]") {
  // Goal: --f v, --f=v, -f v and -f=v all set the flag; the last repetition wins.
  for (const auto& form :
       std::vector<std::vector<std::string>>{{"--snapshot-count", "42"},
                                             {"--snapshot-count=42"},
                                             {"-snapshot-count", "42"},
                                             {"-snapshot-count=42"},
                                             {"--snapshot-count", "7", "--snapshot-count", "42"}}) {
    Config c;
    REQUIRE(Parse(Args(form), &c).ok());
    CHECK(c.snapshot_count == 42);
  }
  Config dash_value;
  REQUIRE(Parse(Args({"--initial-cluster-token", "-tok"}), &dash_value).ok());
  CHECK(dash_value.initial_cluster_token == "-tok");  // a value may start with '-'
}

TEST_CASE("numbers are parsed like Go's strconv with base 0", "[config]") {
  // Goal: hex, octal, binary and underscores work; signs, fractions and junk are parse errors.
  Config c;
  REQUIRE(
      Parse(Args({"--snapshot-count", "0x10", "--max-txn-ops", "0o17", "--max-request-bytes",
                  "1_000_000", "--heartbeat-interval", "0b1100100", "--quota-backend-bytes", "-1"}),
            &c)
          .ok());
  CHECK(c.snapshot_count == 16);
  CHECK(c.max_txn_ops == 15);
  CHECK(c.max_request_bytes == 1000000);
  CHECK(c.heartbeat_interval_ms == 100);
  CHECK(c.quota_backend_bytes == -1);
  CHECK_FALSE(c.BackendQuotaBytes().has_value());

  ExpectError(Args({"--heartbeat-interval", "abc"}),
              "invalid value \"abc\" for flag -heartbeat-interval: parse error", 2);
  ExpectError(Args({"--heartbeat-interval=-1"}),
              "invalid value \"-1\" for flag -heartbeat-interval: parse error", 2);
  ExpectError(Args({"--snapshot-count=1.5"}),
              "invalid value \"1.5\" for flag -snapshot-count: parse error", 2);
  ExpectError(Args({"--snapshot-count=1__0"}),
              "invalid value \"1__0\" for flag -snapshot-count: parse error", 2);
  ExpectError(Args({"--snapshot-count=18446744073709551616"}),
              "invalid value \"18446744073709551616\" for flag -snapshot-count: value out of range",
              2);
  ExpectError(Args({"--max-concurrent-streams=4294967296"}),
              "invalid value \"4294967296\" for flag -max-concurrent-streams: "
              "strconv.ParseUint: parsing \"4294967296\": value out of range",
              2);
  ExpectError(Args({"--quota-backend-bytes=9223372036854775808"}),
              "invalid value \"9223372036854775808\" for flag -quota-backend-bytes: value out of "
              "range",
              2);
}

TEST_CASE("bool and duration flags follow Go's rules", "[config]") {
  // Goal: bare bool means true, =false works, a separate value is a positional argument, and
  // durations use Go's syntax.
  Config c;
  REQUIRE(Parse(Args({"--pre-vote", "--enable-v2=false", "--grpc-keepalive-min-time", "1h30m",
                      "--experimental-warning-apply-duration=1.5s"}),
                &c)
              .ok());
  CHECK(c.ignored_flags == std::vector<std::pair<std::string, std::string>>{
                               {"enable-v2", "false"},
                               {"experimental-warning-apply-duration", "1.5s"},
                               {"grpc-keepalive-min-time", "1h30m"},
                               {"pre-vote", "true"}});
  ExpectError(Args({"--enable-v2", "false"}),
              "error verifying flags, 'false' is not a valid flag. See 'kvd --help'.", 1);
  ExpectError(Args({"--pre-vote=maybe"}),
              "invalid boolean value \"maybe\" for -pre-vote: parse error", 2);
  ExpectError(Args({"--grpc-keepalive-min-time", "5"}),
              "invalid value \"5\" for flag -grpc-keepalive-min-time: parse error", 2);
  ExpectError(Args({"--grpc-keepalive-min-time", "5x"}),
              "invalid value \"5x\" for flag -grpc-keepalive-min-time: parse error", 2);
}

TEST_CASE("flag syntax errors use Go's wording and exit code 2", "[config]") {
  // Goal: unknown flags, missing values and bad syntax are rejected like etcd does.
  ExpectError(Args({"--bogus"}), "flag provided but not defined: -bogus", 2);
  ExpectError(Args({"-bogus=1"}), "flag provided but not defined: -bogus", 2);
  ExpectError(Args({"--name"}), "flag needs an argument: -name", 2);
  ExpectError(Args({"---name", "x"}), "bad flag syntax: ---name", 2);
  ExpectError(Args({"--=x"}), "bad flag syntax: --=x", 2);
  ExpectError(Args({"extra"}),
              "error verifying flags, 'extra' is not a valid flag. See 'kvd --help'.", 1);
  ExpectError(Args({"--", "--name", "x"}),
              "error verifying flags, '--name' is not a valid flag. See 'kvd --help'.", 1);
  ExpectError(Args({"--initial-cluster-state", "foo"}),
              "invalid value \"foo\" for flag -initial-cluster-state: invalid value", 2);
  ExpectError(Args({"--log-level", "foo"}),
              "invalid value \"foo\" for flag -log-level: unknown level \"foo\"", 2);
}

TEST_CASE("help and version stop parsing", "[config]") {
  // Goal: -h/--help/-help and --version are reported, and earlier syntax errors still win.
  for (const char* flag : {"-h", "--help", "-help", "--h"}) {
    Config c;
    REQUIRE(Parse(Args({flag, "--bogus"}), &c).ok());
    CHECK(c.show_help);
  }
  Config v;
  REQUIRE(Parse(Args({"--name", "x", "--version"}), &v).ok());
  CHECK(v.show_version);
  ExpectError(Args({"--bogus", "--version"}), "flag provided but not defined: -bogus", 2);
  CHECK(server::VersionText().rfind("etcd Version: 3.4.23\n", 0) == 0);
  const std::string usage = server::UsageText();
  for (const char* flag : {"--name 'default'", "--data-dir '${name}.etcd'",
                           "--initial-cluster 'default=http://localhost:2380'",
                           "--max-request-bytes '1572864'", "--log-format 'text'"}) {
    CHECK(usage.find(flag) != std::string::npos);
  }
}

TEST_CASE("URL values are validated like etcd's types.NewURLs", "[config]") {
  // Goal: scheme, host:port form, path, and port range errors, with etcd's wording.
  ExpectError(Args({"--listen-client-urls", "ftp://127.0.0.1:1"}),
              "invalid value \"ftp://127.0.0.1:1\" for flag -listen-client-urls: URL scheme must "
              "be http, https, unix, or unixs: ftp://127.0.0.1:1",
              2);
  ExpectError(Args({"--listen-client-urls", "http://127.0.0.1"}),
              "invalid value \"http://127.0.0.1\" for flag -listen-client-urls: URL address does "
              "not have the form \"host:port\": http://127.0.0.1",
              2);
  ExpectError(Args({"--listen-client-urls", "http://127.0.0.1:1/path"}),
              "invalid value \"http://127.0.0.1:1/path\" for flag -listen-client-urls: URL must "
              "not contain a path: http://127.0.0.1:1/path",
              2);
  ExpectError(Args({"--listen-client-urls", "http://127.0.0.1:99999"}),
              "invalid value \"http://127.0.0.1:99999\" for flag -listen-client-urls: URL port "
              "must be a number from 0 to 65535: http://127.0.0.1:99999",
              2);
  ExpectError(Args({"--listen-client-urls", "unix://sock:1"}),
              "invalid value \"unix://sock:1\" for flag -listen-client-urls: URL scheme unix (unix "
              "sockets) is not supported by kvd: unix://sock:1",
              2);

  server::Url v6;
  REQUIRE(server::ParseUrl(" https://[::1]:2379 ", &v6).ok());
  CHECK(v6.scheme == "https");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 2379);
  CHECK(v6.text == "https://[::1]:2379");
  std::vector<server::Url> list;
  REQUIRE(server::ParseUrlList("http://b:2,http://a:1", &list).ok());
  REQUIRE(list.size() == 2);
  CHECK(list[0].text == "http://a:1");  // sorted, as etcd sorts
  CHECK_FALSE(server::ParseUrlList("http://a:1,", &list).ok());
}

TEST_CASE("listen and advertise URLs get etcd's semantic checks", "[config]") {
  // Goal: bind URLs need an IP (or localhost), advertise URLs need a host, and an explicit
  // listen-client-urls needs advertise-client-urls.
  ExpectError(Args({"--listen-client-urls", "http://foo.example:1", "--advertise-client-urls",
                    "http://foo.example:1"}),
              "error verifying flags, expected IP in URL for binding (http://foo.example:1). See "
              "'kvd --help'.",
              1);
  ExpectError(Args({"--name", "y", "--initial-advertise-peer-urls", "http://:23801"}),
              "error verifying flags, --initial-advertise-peer-urls \"http://:23801\" must be "
              "\"host:port\" (unexpected empty host (http://:23801)). See 'kvd --help'.",
              1);
  ExpectError(Args({"--listen-client-urls", "http://127.0.0.1:23791"}),
              "error verifying flags, --advertise-client-urls is required when "
              "--listen-client-urls is set explicitly. See 'kvd --help'.",
              1);
  Config c;
  REQUIRE(Parse(Args({"--listen-client-urls", "http://0.0.0.0:2379,http://[::]:2379",
                      "--advertise-client-urls", "http://node1.example:2379"}),
                &c)
              .ok());
  CHECK(c.listen_client_urls.size() == 2);
}

TEST_CASE("election timeout and heartbeat follow etcd's rules", "[config]") {
  // Goal: the 5x rule, the 50 s cap and the zero checks, with etcd's messages.
  ExpectError(Args({"--election-timeout", "400"}),
              "error verifying flags, --election-timeout[400ms] should be at least as 5 times as "
              "--heartbeat-interval[100ms]. See 'kvd --help'.",
              1);
  ExpectError(Args({"--election-timeout", "60000"}),
              "error verifying flags, --election-timeout[60000ms] is too long, and should be set "
              "less than 50000ms. See 'kvd --help'.",
              1);
  ExpectError(Args({"--heartbeat-interval", "0"}),
              "error verifying flags, --heartbeat-interval must be >0 (set to 0ms). See 'kvd "
              "--help'.",
              1);
  ExpectError(Args({"--election-timeout", "0"}),
              "error verifying flags, --election-timeout must be >0 (set to 0ms). See 'kvd "
              "--help'.",
              1);
  Config edge;
  REQUIRE(Parse(Args({"--heartbeat-interval", "200", "--election-timeout", "1000"}), &edge).ok());
  CHECK(edge.election_timeout_ticks() == 5);
}

TEST_CASE("raft timing is derived as etcd derives it", "[config]") {
  // Goal: tick = heartbeat, election ticks = integer division, min lease TTL =
  // ceil(((3 * ticks) / 2) * tick) in seconds.
  struct Case {
    std::string heartbeat, election;
    uint64_t ticks;
    int64_t min_ttl;
  };
  for (const Case& k : std::vector<Case>{{"100", "1000", 10, 2},
                                         {"50", "500", 10, 1},
                                         {"100", "1050", 10, 2},
                                         {"300", "3000", 10, 5},
                                         {"100", "500", 5, 1},
                                         {"1000", "10000", 10, 15}}) {
    Config c;
    REQUIRE(Parse(Args({"--heartbeat-interval", k.heartbeat, "--election-timeout", k.election}), &c)
                .ok());
    CHECK(c.tick_ms() == std::stoull(k.heartbeat));
    CHECK(c.election_timeout_ticks() == k.ticks);
    CHECK(c.min_lease_ttl_seconds() == k.min_ttl);
  }
}

TEST_CASE("initial cluster must contain this member with its advertised peer URLs", "[config]") {
  // Goal: etcd's bootstrap checks and messages (missing name, URL mismatch, duplicates, junk).
  ExpectError(Args({"--name", "y", "--initial-cluster", "z=http://127.0.0.1:23801"}, true),
              "couldn't find local name \"y\" in the initial cluster configuration", 1);
  ExpectError(Args({"--name", "y", "--initial-cluster", "y=http://127.0.0.1:23802"}, true),
              "--initial-cluster has y=http://127.0.0.1:23802 but missing from "
              "--initial-advertise-peer-urls=http://127.0.0.1:23801 (resolved urls: "
              "\"http://127.0.0.1:23801\" != \"http://127.0.0.1:23802\")",
              1);
  ExpectError(Args({"--name", "y", "--initial-cluster",
                    "y=http://127.0.0.1:23801,y=http://127.0.0.1:23802"},
                   true),
              "--initial-cluster has y=http://127.0.0.1:23802 but missing from "
              "--initial-advertise-peer-urls=http://127.0.0.1:23801 "
              "(len([\"http://127.0.0.1:23801\"]) != len([\"http://127.0.0.1:23801\" "
              "\"http://127.0.0.1:23802\"]))",
              1);
  ExpectError(Args({"--name", "y", "--initial-cluster", "y=http://127.0.0.1:23801",
                    "--initial-advertise-peer-urls", "http://127.0.0.1:23801,http://127.0.0.2:1"},
                   true),
              "--initial-advertise-peer-urls has http://127.0.0.2:1 but missing from "
              "--initial-cluster=y=http://127.0.0.1:23801,y=http://127.0.0.2:1",
              1);
  ExpectError(
      Args(
          {"--name", "y", "--initial-cluster", "y=http://127.0.0.1:23801,z=http://127.0.0.1:23801"},
          true),
      "initial cluster y=http://127.0.0.1:23801,z=http://127.0.0.1:23801 has duplicate url", 1);
  ExpectError(
      Args({"--name", "y", "--initial-cluster", "y=http://127.0.0.1:23801,garbage"}, true),
      "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: ", 1);
  // The default name with a non-default advertise URL does not match the default cluster.
  ExpectError(Args({}, true),
              "--initial-cluster has default=http://localhost:2380 but missing from "
              "--initial-advertise-peer-urls=http://127.0.0.1:23801 (resolved urls: "
              "\"http://127.0.0.1:23801\" != \"http://localhost:2380\")",
              1);
}

TEST_CASE("a lone --name implies a one-member initial cluster", "[config]") {
  // Goal: etcd's UpdateDefaultClusterFromName: name=<each advertise peer URL>, also when the
  // default cluster string is given explicitly.
  for (const auto& extra : std::vector<std::vector<std::string>>{
           {}, {"--initial-cluster", "default=http://localhost:2380"}}) {
    std::vector<std::string> flags = {"--name", "y"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    Config c;
    REQUIRE(Parse(Args(flags, true), &c).ok());
    REQUIRE(c.initial_cluster.size() == 1);
    CHECK(c.initial_cluster[0].name == "y");
    CHECK(c.initial_cluster[0].peer_urls == std::vector<std::string>{"http://127.0.0.1:23801"});
    CHECK(c.data_dir == "y.etcd");
  }
}

TEST_CASE("initial cluster state existing is accepted", "[config]") {
  // Goal: 'existing' parses (IDs then come from the cluster; ours stay deterministic).
  Config c;
  REQUIRE(Parse(Args({"--name", "y", "--initial-cluster-state=existing"}, true), &c).ok());
  CHECK(c.initial_cluster_state == server::ClusterState::kExisting);
  CHECK(server::FormatId(c.member_id) == "bdae9bbc11dd390d");
}

TEST_CASE("ETCD_* environment variables set flags", "[config]") {
  // Goal: every flag reads ETCD_<UPPER_SNAKE>; empty values are ignored; unknown ETCD_*
  // variables are warnings; other variables are ignored.
  Config c;
  REQUIRE(Parse(Args({}), &c,
                {"ETCD_NAME=y", "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:23801",
                 "ETCD_LISTEN_PEER_URLS=http://127.0.0.1:23801", "ETCD_DATA_DIR=/tmp/d",
                 "ETCD_HEARTBEAT_INTERVAL=50", "ETCD_ELECTION_TIMEOUT=500",
                 "ETCD_WAL_DIR=", "ETCD_PRE_VOTE=true", "ETCD_FOO=bar", "ETCDCTL_API=3",
                 "PATH=/bin", "ETCD_LOG_FORMAT=json", "ETCD_INITIAL_CLUSTER_STATE=existing"})
              .ok());
  CHECK(c.name == "y");
  CHECK(c.data_dir == "/tmp/d");
  CHECK(c.wal_dir.empty());
  CHECK(c.heartbeat_interval_ms == 50);
  CHECK(c.election_timeout_ms == 500);
  CHECK(c.log_format == server::LogFormat::kJson);
  CHECK(c.initial_cluster_state == server::ClusterState::kExisting);
  CHECK(server::FormatId(c.member_id) == "bdae9bbc11dd390d");
  CHECK(c.ignored_flags == std::vector<std::pair<std::string, std::string>>{{"pre-vote", "true"}});
  CHECK(c.warnings == std::vector<std::string>{"unrecognized environment variable ETCD_FOO=bar"});
}

TEST_CASE("a flag set both on the command line and in the environment is refused", "[config]") {
  // Goal: etcd 3.4.23 exits 1 with this message instead of letting either win.
  ExpectError(Args({"--name", "y"}),
              "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding "
              "command-line flag (either unset environment variable or disable flag)",
              1, {"ETCD_NAME=x"});
  // An empty variable does not conflict.
  Config c;
  REQUIRE(Parse(Args({"--snapshot-count", "5"}), &c, {"ETCD_SNAPSHOT_COUNT="}).ok());
  CHECK(c.snapshot_count == 5);
}

TEST_CASE("bad environment values use etcd's wording", "[config]") {
  // Goal: a bad ETCD_* value is a validation error naming the variable (exit 1).
  ExpectError(Args({}),
              "error verifying flags, invalid value \"abc\" for ETCD_HEARTBEAT_INTERVAL: parse "
              "error. See 'kvd --help'.",
              1, {"ETCD_HEARTBEAT_INTERVAL=abc"});
  ExpectError(Args({}),
              "error verifying flags, invalid value \"bad\" for ETCD_INITIAL_CLUSTER_STATE: "
              "invalid value. See 'kvd --help'.",
              1, {"ETCD_INITIAL_CLUSTER_STATE=bad"});
  ExpectError(Args({}),
              "error verifying flags, --advertise-client-urls is required when "
              "--listen-client-urls is set explicitly. See 'kvd --help'.",
              1, {"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:1"});
}

TEST_CASE("logging flags are validated", "[config]") {
  // Goal: every etcd log level parses, --debug means debug, --logger accepts capnslog|zap.
  for (const auto& [text, level] :
       std::vector<std::pair<std::string, server::LogLevel>>{{"debug", server::LogLevel::kDebug},
                                                             {"info", server::LogLevel::kInfo},
                                                             {"warn", server::LogLevel::kWarn},
                                                             {"error", server::LogLevel::kError},
                                                             {"panic", server::LogLevel::kPanic},
                                                             {"fatal", server::LogLevel::kFatal}}) {
    Config c;
    REQUIRE(
        Parse(Args({"--log-level", text, "--logger", "zap", "--log-outputs", "stderr,stdout"}), &c)
            .ok());
    CHECK(c.log_level == level);
    CHECK(server::ToString(c.log_level) == text);
    CHECK(c.log_outputs == std::vector<std::string>{"stderr", "stdout"});
  }
  Config debug;
  REQUIRE(Parse(Args({"--debug"}), &debug).ok());
  CHECK(debug.log_level == server::LogLevel::kDebug);
  ExpectError(Args({"--logger", "foo"}),
              "error verifying flags, unknown logger option \"foo\". See 'kvd --help'.", 1);
  ExpectError(Args({"--log-format", "xml"}),
              "invalid value \"xml\" for flag -log-format: invalid value", 2);
}

TEST_CASE("unsupported bootstrap modes are refused, kvd flags are parsed", "[config]") {
  // Goal: --config-file and discovery fail loudly; --restore and --listen-metrics-urls parse.
  ExpectError(Args({"--config-file", "/etc/etcd.yml"}),
              "error verifying flags, --config-file is not supported by kvd; pass flags or ETCD_* "
              "variables. See 'kvd --help'.",
              1);
  ExpectError(Args({"--discovery", "https://discovery.etcd.io/x"}),
              "error verifying flags, discovery is not supported by kvd; bootstrap with "
              "--initial-cluster. See 'kvd --help'.",
              1);
  Config c;
  REQUIRE(Parse(Args({"--restore", "/tmp/snap.db", "--listen-metrics-urls", "http://127.0.0.1:2381",
                      "--quota-backend-bytes", "1024"}),
                &c)
              .ok());
  CHECK(c.restore_path == "/tmp/snap.db");
  REQUIRE(c.listen_metrics_urls.size() == 1);
  CHECK(c.listen_metrics_urls[0].port == 2381);
  CHECK(c.BackendQuotaBytes() == std::optional<uint64_t>(1024));
  ExpectError(Args({"--listen-metrics-urls", "http://metrics.example:2381"}),
              "error verifying flags, expected IP in URL for binding "
              "(http://metrics.example:2381). See 'kvd --help'.",
              1);
}

TEST_CASE("Describe lists the effective configuration", "[config]") {
  // Goal: the kvd front end's dump shows IDs, derived timing and ignored flags.
  Config c;
  REQUIRE(Parse(Args({"--name", "y", "--cert-file", "x.pem"}, true), &c).ok());
  const std::string text = c.Describe();
  CHECK(text.find("member-id: bdae9bbc11dd390d\n") != std::string::npos);
  CHECK(text.find("cluster-id: d1cfaf999eb97a2a\n") != std::string::npos);
  CHECK(text.find("election-timeout-ticks: 10\n") != std::string::npos);
  CHECK(text.find("ignored flag: --cert-file=x.pem\n") != std::string::npos);
}

TEST_CASE("flag --experimental-watch-progress-notify-interval is implemented", "[config]") {
  // Goal: the watch progress interval defaults to etcd's 10 min, takes Go durations, is not
  // reported as ignored, and refuses a zero interval.
  Config d;
  REQUIRE(Parse({"kvd"}, &d).ok());
  CHECK(d.watch_progress_notify_interval_ms == 600000);
  Config c;
  REQUIRE(Parse(Args({"--experimental-watch-progress-notify-interval=200ms"}), &c).ok());
  CHECK(c.watch_progress_notify_interval_ms == 200);
  CHECK(c.ignored_flags.empty());
  Config e;
  CHECK_FALSE(Parse(Args({"--experimental-watch-progress-notify-interval=0"}), &e).ok());
}

TEST_CASE("flag --experimental-corrupt-check-time is implemented, on by default", "[config]") {
  // Goal: kvd checks every minute unless told otherwise, takes Go durations (0s turns the check
  // off), is not reported as ignored, and refuses bad or negative durations like etcd would.
  Config d;
  REQUIRE(Parse({"kvd"}, &d).ok());
  CHECK(d.corrupt_check_period_ms == 60000);
  Config c;
  REQUIRE(Parse(Args({"--experimental-corrupt-check-time=1m30s"}), &c).ok());
  CHECK(c.corrupt_check_period_ms == 90000);
  CHECK(c.ignored_flags.empty());
  CHECK(c.Describe().find("corrupt-check-period-ms: 90000\n") != std::string::npos);
  Config off;
  REQUIRE(Parse(Args({"--experimental-corrupt-check-time", "0s"}), &off).ok());
  CHECK(off.corrupt_check_period_ms == 0);
  Config tiny;
  REQUIRE(Parse(Args({"--experimental-corrupt-check-time=10us"}), &tiny).ok());
  CHECK(tiny.corrupt_check_period_ms == 1);
  ExpectError(Args({"--experimental-corrupt-check-time=5"}),
              "invalid value \"5\" for flag -experimental-corrupt-check-time: parse error", 2);
  ExpectError(Args({"--experimental-corrupt-check-time", "1x"}),
              "invalid value \"1x\" for flag -experimental-corrupt-check-time: parse error", 2);
  ExpectError(Args({"--experimental-corrupt-check-time=-1s"}),
              "error verifying flags, --experimental-corrupt-check-time must not be negative. "
              "See 'kvd --help'.",
              1);
}

TEST_CASE("flag --strict-reconfig-check is implemented, on by default", "[config]") {
  // Goal: the check is on unless the flag or ETCD_STRICT_RECONFIG_CHECK turns it off, and the
  // flag is not reported as ignored.
  Config d;
  REQUIRE(Parse({"kvd"}, &d).ok());
  CHECK(d.strict_reconfig_check);
  CHECK(d.Describe().find("strict-reconfig-check: true\n") != std::string::npos);
  Config off;
  REQUIRE(Parse(Args({"--strict-reconfig-check=false"}), &off).ok());
  CHECK_FALSE(off.strict_reconfig_check);
  CHECK(off.ignored_flags.empty());
  CHECK(off.Describe().find("strict-reconfig-check: false\n") != std::string::npos);
  Config on;
  REQUIRE(Parse(Args({"--strict-reconfig-check"}), &on).ok());
  CHECK(on.strict_reconfig_check);
  Config env_off;
  REQUIRE(Parse({"kvd"}, &env_off, {"ETCD_STRICT_RECONFIG_CHECK=false"}).ok());
  CHECK_FALSE(env_off.strict_reconfig_check);
}
