#include "server/config.h"

#include <arpa/inet.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

namespace server {
namespace {

// ---------------------------------------------------------------------------------------------
// The flag table: every flag of etcd 3.4.23 (same names, same defaults) plus kvd's own.

enum class Kind { kString, kBool, kUint, kUint32, kInt, kDuration, kUrls, kSelect };

struct FlagSpec {
  std::string_view name;
  Kind kind;
  std::string_view default_value;  // in flag syntax, "" for none
  std::string_view group;          // the --help section
  std::string_view help;
  bool implemented;               // false: accepted and reported in Config::ignored_flags
  std::string_view choices = {};  // kSelect only: "a|b|c"
};

constexpr std::string_view kMember = "Member";
constexpr std::string_view kClustering = "Clustering";
constexpr std::string_view kSecurity = "Security";
constexpr std::string_view kAuth = "Auth";
constexpr std::string_view kMonitoring = "Profiling and Monitoring";
constexpr std::string_view kLogging = "Logging";
constexpr std::string_view kProxy = "v2 Proxy (accepted, not implemented)";
constexpr std::string_view kExperimental = "Experimental feature (accepted, not implemented)";
constexpr std::string_view kUnsafe = "Unsafe feature (accepted, not implemented)";
constexpr std::string_view kDeprecated = "To be deprecated (accepted, not implemented)";
constexpr std::string_view kKvd = "kvd only";
constexpr std::string_view kOther = "Other";

const std::vector<FlagSpec>& Flags() {
  static const std::vector<FlagSpec> flags = {
      {"name", Kind::kString, "default", kMember, "Human-readable name of this member.", true},
      {"data-dir", Kind::kString, "", kMember, "Data directory (default '${name}.etcd').", true},
      {"wal-dir", Kind::kString, "", kMember, "Dedicated log directory (default: in data dir).",
       true},
      {"snapshot-count", Kind::kUint, "100000", kMember,
       "Committed entries between two snapshots of the raft log.", true},
      {"heartbeat-interval", Kind::kUint, "100", kMember,
       "Heartbeat interval in milliseconds; also the raft tick.", true},
      {"election-timeout", Kind::kUint, "1000", kMember,
       "Election timeout in milliseconds (at least 5 heartbeats, below 50000).", true},
      {"initial-election-tick-advance", Kind::kBool, "true", kMember,
       "Fast-forward election ticks on boot.", false},
      {"listen-peer-urls", Kind::kUrls, "http://localhost:2380", kMember,
       "URLs to listen on for peer traffic.", true},
      {"listen-client-urls", Kind::kUrls, "http://localhost:2379", kMember,
       "URLs to listen on for client traffic.", true},
      {"max-snapshots", Kind::kUint, "5", kMember, "Snapshot files to keep (0: all).", false},
      {"max-wals", Kind::kUint, "5", kMember, "WAL files to keep (0: all).", false},
      {"quota-backend-bytes", Kind::kInt, "0", kMember,
       "Backend size that raises the NOSPACE alarm (0: 2 GiB; negative: no quota).", true},
      {"backend-batch-interval", Kind::kDuration, "", kMember,
       "Longest time before a backend commit.", false},
      {"backend-batch-limit", Kind::kInt, "0", kMember, "Most operations before a backend commit.",
       false},
      {"max-txn-ops", Kind::kUint, "128", kMember, "Most operations in one transaction.", true},
      {"max-request-bytes", Kind::kUint, "1572864", kMember, "Largest client request in bytes.",
       true},
      {"max-concurrent-streams", Kind::kUint32, "4294967295", kMember,
       "Most concurrent gRPC streams per client.", false},
      {"grpc-keepalive-min-time", Kind::kDuration, "5s", kMember,
       "Shortest client keepalive ping interval.", false},
      {"grpc-keepalive-interval", Kind::kDuration, "2h", kMember,
       "Server-to-client keepalive ping interval (0: disabled).", false},
      {"grpc-keepalive-timeout", Kind::kDuration, "20s", kMember,
       "Wait for a keepalive ping answer (0: disabled).", false},

      {"initial-advertise-peer-urls", Kind::kUrls, "http://localhost:2380", kClustering,
       "This member's peer URLs as the other members reach them.", true},
      {"initial-cluster", Kind::kString, "default=http://localhost:2380", kClustering,
       "Bootstrap cluster: name=peer-url,... (default: ${name}=${initial-advertise-peer-urls}).",
       true},
      {"initial-cluster-state", Kind::kSelect, "new", kClustering,
       "'new' to bootstrap a cluster, 'existing' to join one.", true, "new|existing"},
      {"initial-cluster-token", Kind::kString, "etcd-cluster", kClustering,
       "Token that makes member and cluster IDs unique to this cluster.", true},
      {"advertise-client-urls", Kind::kUrls, "http://localhost:2379", kClustering,
       "This member's client URLs as clients reach them.", true},
      {"discovery", Kind::kString, "", kClustering, "Discovery URL (not supported by kvd).", false},
      {"discovery-fallback", Kind::kSelect, "proxy", kClustering, "Behaviour when discovery fails.",
       false, "exit|proxy"},
      {"discovery-proxy", Kind::kString, "", kClustering, "HTTP proxy for discovery.", false},
      {"discovery-srv", Kind::kString, "", kClustering,
       "DNS SRV domain for bootstrap (not supported by kvd).", false},
      {"discovery-srv-name", Kind::kString, "", kClustering, "Suffix of the SRV name.", false},
      {"strict-reconfig-check", Kind::kBool, "true", kClustering,
       "Reject reconfigurations that would lose quorum.", true},
      {"pre-vote", Kind::kBool, "false", kClustering, "Run a pre-vote election phase.", false},
      {"auto-compaction-retention", Kind::kString, "0", kClustering,
       "Auto compaction retention (0: disabled).", false},
      {"auto-compaction-mode", Kind::kString, "periodic", kClustering, "periodic|revision.", false},
      {"enable-v2", Kind::kBool, "false", kClustering, "Serve the v2 API.", false},

      {"cert-file", Kind::kString, "", kSecurity, "Client TLS certificate.", false},
      {"key-file", Kind::kString, "", kSecurity, "Client TLS key.", false},
      {"client-cert-auth", Kind::kBool, "false", kSecurity, "Require client certificates.", false},
      {"client-crl-file", Kind::kString, "", kSecurity, "Client CRL.", false},
      {"client-cert-allowed-hostname", Kind::kString, "", kSecurity,
       "Allowed client certificate hostname.", false},
      {"trusted-ca-file", Kind::kString, "", kSecurity, "Client CA bundle.", false},
      {"auto-tls", Kind::kBool, "false", kSecurity, "Self-signed client TLS.", false},
      {"peer-cert-file", Kind::kString, "", kSecurity, "Peer TLS certificate.", false},
      {"peer-key-file", Kind::kString, "", kSecurity, "Peer TLS key.", false},
      {"peer-client-cert-auth", Kind::kBool, "false", kSecurity,
       "Require peer client certificates.", false},
      {"peer-trusted-ca-file", Kind::kString, "", kSecurity, "Peer CA bundle.", false},
      {"peer-cert-allowed-cn", Kind::kString, "", kSecurity, "Required peer certificate CN.",
       false},
      {"peer-cert-allowed-hostname", Kind::kString, "", kSecurity,
       "Allowed peer certificate hostname.", false},
      {"peer-auto-tls", Kind::kBool, "false", kSecurity, "Self-signed peer TLS.", false},
      {"peer-crl-file", Kind::kString, "", kSecurity, "Peer CRL.", false},
      {"cipher-suites", Kind::kString, "", kSecurity, "TLS cipher suites.", false},
      {"cors", Kind::kString, "*", kSecurity, "CORS origins.", false},
      {"host-whitelist", Kind::kString, "*", kSecurity, "Accepted HTTP Host names.", false},

      {"auth-token", Kind::kString, "simple", kAuth, "Auth token type (simple or jwt).", false},
      {"bcrypt-cost", Kind::kUint, "10", kAuth, "bcrypt cost for passwords.", false},
      {"auth-token-ttl", Kind::kUint, "300", kAuth, "Auth token TTL in seconds.", false},

      {"enable-pprof", Kind::kBool, "false", kMonitoring, "Go profiling endpoints.", false},
      {"metrics", Kind::kSelect, "basic", kMonitoring, "Metrics detail: basic or extensive.", false,
       "basic|extensive"},
      {"listen-metrics-urls", Kind::kUrls, "", kMonitoring,
       "Extra URLs serving /metrics and /health.", true},

      {"logger", Kind::kString, "capnslog", kLogging,
       "capnslog or zap (accepted for compatibility).", true},
      {"log-outputs", Kind::kString, "default", kLogging,
       "Comma-separated log targets (accepted for compatibility).", true},
      {"log-level", Kind::kString, "info", kLogging, "debug, info, warn, error, panic or fatal.",
       true},

      {"proxy", Kind::kSelect, "off", kProxy, "v2 proxy mode.", false, "off|readonly|on"},
      {"proxy-failure-wait", Kind::kUint, "5000", kProxy, "ms.", false},
      {"proxy-refresh-interval", Kind::kUint, "30000", kProxy, "ms.", false},
      {"proxy-dial-timeout", Kind::kUint, "1000", kProxy, "ms.", false},
      {"proxy-write-timeout", Kind::kUint, "5000", kProxy, "ms.", false},
      {"proxy-read-timeout", Kind::kUint, "0", kProxy, "ms.", false},

      {"experimental-initial-corrupt-check", Kind::kBool, "false", kExperimental, "", false},
      {"experimental-corrupt-check-time", Kind::kDuration, "1m0s", kExperimental,
       "Leader's cross-member HashKV check period (kvd: on by default; 0s: off).", true},
      {"experimental-enable-v2v3", Kind::kString, "", kExperimental, "", false},
      {"experimental-backend-bbolt-freelist-type", Kind::kString, "array", kExperimental, "",
       false},
      {"experimental-enable-lease-checkpoint", Kind::kBool, "false", kExperimental, "", false},
      {"experimental-compaction-batch-limit", Kind::kInt, "1000", kExperimental, "", false},
      {"experimental-peer-skip-client-san-verification", Kind::kBool, "false", kExperimental, "",
       false},
      {"experimental-watch-progress-notify-interval", Kind::kDuration, "10m", kExperimental, "",
       true},
      {"experimental-warning-apply-duration", Kind::kDuration, "100ms", kExperimental, "", false},

      {"force-new-cluster", Kind::kBool, "false", kUnsafe, "", false},

      {"debug", Kind::kBool, "false", kDeprecated, "Same as --log-level=debug.", false},
      {"log-package-levels", Kind::kString, "", kDeprecated, "", false},

      {"log-format", Kind::kSelect, "text", kKvd, "Log line format: text or json.", true,
       "text|json"},
      {"restore", Kind::kString, "", kKvd,
       "Snapshot file to restore into the data dir before starting.", true},

      {"config-file", Kind::kString, "", kOther, "YAML configuration file (not supported).", false},
      {"version", Kind::kBool, "false", kOther, "Print the version and exit.", true},
  };
  return flags;
}

const FlagSpec* FindFlag(std::string_view name) {
  for (const FlagSpec& f : Flags()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string EnvName(std::string_view flag) {
  std::string out = "ETCD_";
  for (char c : flag) {
    out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

// Go's %q for the plain ASCII strings that appear in flag values.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Go's strconv.ParseUint / ParseInt with base 0 (0x, 0o, 0b, leading-0 octal, underscores
// between digits) and time.ParseDuration, as Go's flag package uses them.

enum class NumError { kNone, kSyntax, kRange };

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

NumError ParseGoUint(std::string_view s, uint64_t max_value, uint64_t* out) {
  if (s.empty()) return NumError::kSyntax;
  unsigned base = 10;
  bool prefixed = false;  // a 0x/0o/0b prefix: an underscore may follow it directly
  if (s.size() >= 2 && s[0] == '0') {
    char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
    if (p == 'x' || p == 'o' || p == 'b') {
      base = p == 'x' ? 16U : (p == 'o' ? 8U : 2U);
      s.remove_prefix(2);
      prefixed = true;
    } else {
      base = 8;  // legacy octal: the leading 0 is itself a digit
    }
  }
  if (s.empty()) return NumError::kSyntax;
  uint64_t value = 0;
  bool prev_digit = false;
  bool any_digit = false;
  bool after_prefix = prefixed;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_') {
      bool next_digit = i + 1 < s.size() && s[i + 1] != '_';
      if (!(prev_digit || after_prefix) || !next_digit) return NumError::kSyntax;
      prev_digit = false;
      after_prefix = false;
      continue;
    }
    int d = DigitValue(c);
    if (d >= static_cast<int>(base)) return NumError::kSyntax;
    auto digit = static_cast<uint64_t>(d);
    if (value > (max_value - digit) / base) return NumError::kRange;
    value = value * base + digit;
    prev_digit = true;
    any_digit = true;
    after_prefix = false;
  }
  if (!any_digit) return NumError::kSyntax;
  *out = value;
  return NumError::kNone;
}

NumError ParseGoInt(std::string_view s, int64_t* out) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  uint64_t magnitude = 0;
  const uint64_t limit = negative ? (1ULL << 63) : (1ULL << 63) - 1;
  NumError err = ParseGoUint(s, limit, &magnitude);
  if (err != NumError::kNone) return err;
  if (negative) {
    *out = magnitude == (1ULL << 63) ? INT64_MIN : -static_cast<int64_t>(magnitude);
  } else {
    *out = static_cast<int64_t>(magnitude);
  }
  return NumError::kNone;
}

// Returns false when `s` is not a Go duration ("300ms", "1h30m", "0", "-1.5s").
bool ParseGoDuration(std::string_view s, double* nanoseconds) {
  if (s.empty()) return false;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    *nanoseconds = 0;
    return true;
  }
  if (s.empty()) return false;
  double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    std::string number;
    bool digits = false;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) {
      if (s[i] != '.') digits = true;
      number.push_back(s[i]);
      ++i;
    }
    if (!digits || std::count(number.begin(), number.end(), '.') > 1) return false;
    size_t unit_start = i;
    while (i < s.size() && s[i] != '.' && !std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(unit_start, i - unit_start);
    double scale = 0;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "h") {
      scale = 3600e9;
    } else {
      return false;
    }
    total += std::stod(number) * scale;
    s.remove_prefix(i);
  }
  if (total > 9.223372036854775807e18) return false;
  *nanoseconds = negative ? -total : total;
  return true;
}

bool ParseGoBool(std::string_view s, bool* out) {
  static constexpr std::array<std::string_view, 6> kTrue = {"1", "t", "T", "TRUE", "true", "True"};
  static constexpr std::array<std::string_view, 6> kFalse = {"0",     "f",     "F",
                                                             "FALSE", "false", "False"};
  if (std::find(kTrue.begin(), kTrue.end(), s) != kTrue.end()) {
    *out = true;
    return true;
  }
  if (std::find(kFalse.begin(), kFalse.end(), s) != kFalse.end()) {
    *out = false;
    return true;
  }
  return false;
}

// Checks `value` against the flag's type. Returns "" when valid, otherwise the reason in the
// words Go's flag package (or etcd's custom flag type) uses.
std::string CheckValue(const FlagSpec& flag, std::string_view value) {
  switch (flag.kind) {
    case Kind::kString:
      return "";
    case Kind::kBool: {
      bool b = false;
      return ParseGoBool(value, &b) ? "" : "parse error";
    }
    case Kind::kUint: {
      uint64_t v = 0;
      NumError err = ParseGoUint(value, UINT64_MAX, &v);
      return err == NumError::kNone
                 ? ""
                 : (err == NumError::kRange ? "value out of range" : "parse error");
    }
    case Kind::kUint32: {
      // etcd's own uint32 flag type passes strconv's error through unchanged.
      uint64_t v = 0;
      NumError err = ParseGoUint(value, UINT32_MAX, &v);
      if (err == NumError::kNone) return "";
      return "strconv.ParseUint: parsing " + Quote(value) + ": " +
             (err == NumError::kRange ? "value out of range" : "invalid syntax");
    }
    case Kind::kInt: {
      int64_t v = 0;
      NumError err = ParseGoInt(value, &v);
      return err == NumError::kNone
                 ? ""
                 : (err == NumError::kRange ? "value out of range" : "parse error");
    }
    case Kind::kDuration: {
      double ns = 0;
      return ParseGoDuration(value, &ns) ? "" : "parse error";
    }
    case Kind::kUrls: {
      std::vector<Url> urls;
      Status st = ParseUrlList(value, &urls);
      return st.ok() ? "" : st.message();
    }
    case Kind::kSelect: {
      for (const std::string& choice : Split(flag.choices, '|')) {
        if (choice == value) return "";
      }
      return "invalid value";
    }
  }
  return "parse error";
}

uint64_t Uint(std::string_view s) {
  uint64_t v = 0;
  NumError err = ParseGoUint(s, UINT64_MAX, &v);
  SERVER_CHECK(err == NumError::kNone, "value '%.*s' was validated as a uint",
               static_cast<int>(s.size()), s.data());
  return v;
}

int64_t Int(std::string_view s) {
  int64_t v = 0;
  NumError err = ParseGoInt(s, &v);
  SERVER_CHECK(err == NumError::kNone, "value '%.*s' was validated as an int",
               static_cast<int>(s.size()), s.data());
  return v;
}

std::vector<Url> Urls(std::string_view s) {
  std::vector<Url> urls;
  if (s.empty()) return urls;  // only --listen-metrics-urls has an empty default
  Status st = ParseUrlList(s, &urls);
  SERVER_CHECK(st.ok(), "URL list was validated: %s", st.message().c_str());
  return urls;
}

bool IsIpLiteral(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

std::string JoinUrls(const std::vector<Url>& urls) {
  std::string out;
  for (const Url& u : urls) {
    if (!out.empty()) out += ",";
    out += u.text;
  }
  return out;
}

std::string GoQuotedList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += " ";
    out += Quote(items[i]);
  }
  return out + "]";
}

Status VerifyError(const std::string& what) {
  return {1, "error verifying flags, " + what + ". See 'kvd --help'."};
}

// Where a flag's value came from.
enum class Source { kDefault, kCommandLine, kEnv };
struct FlagValue {
  std::string value;
  Source source = Source::kDefault;
};

// Go's flag.FlagSet.Parse over args[1..]. Fills `values`, reports the first positional
// argument (if any) in *positional and whether -h/-help was seen.
Status ParseCommandLine(std::span<const std::string> args, std::map<std::string, FlagValue>* values,
                        std::optional<std::string>* positional, bool* help) {
  size_t i = 1;
  while (i < args.size()) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') break;  // first non-flag argument ("-" included)
    size_t dashes = 1;
    if (arg[1] == '-') {
      dashes = 2;
      if (arg.size() == 2) {  // "--" ends the flags
        ++i;
        break;
      }
    }
    std::string body = arg.substr(dashes);
    if (body.empty() || body[0] == '-' || body[0] == '=') {
      return {2, "bad flag syntax: " + arg};
    }
    ++i;
    std::string name = body;
    std::optional<std::string> value;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    const FlagSpec* flag = FindFlag(name);
    if (flag == nullptr) {
      if (name == "help" || name == "h") {
        *help = true;
        return Status::Ok();
      }
      return {2, "flag provided but not defined: -" + name};
    }
    if (flag->kind == Kind::kBool) {
      if (value.has_value()) {
        bool b = false;
        if (!ParseGoBool(*value, &b)) {
          return {2, "invalid boolean value " + Quote(*value) + " for -" + name + ": parse error"};
        }
      } else {
        value = "true";
      }
    } else if (!value.has_value()) {
      if (i >= args.size()) return {2, "flag needs an argument: -" + name};
      value = args[i];
      ++i;
    }
    if (std::string why = CheckValue(*flag, *value); !why.empty()) {
      return {2, "invalid value " + Quote(*value) + " for flag -" + name + ": " + why};
    }
    (*values)[name] = {*value, Source::kCommandLine};
  }
  if (i < args.size()) *positional = args[i];
  return Status::Ok();
}

// etcd's pkg/flags.SetFlagsFromEnv: ETCD_<FLAG> fills every flag not given on the command
// line; a variable for a flag that is also on the command line is an error; unknown ETCD_*
// variables are warnings. Empty values are ignored, as in etcd.
Status ApplyEnv(std::span<const std::string> env, std::map<std::string, FlagValue>* values,
                std::vector<std::string>* warnings) {
  std::map<std::string, std::string> etcd_env;
  for (const std::string& kv : env) {
    if (kv.rfind("ETCD_", 0) != 0) continue;
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    etcd_env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  std::set<std::string> used;
  std::vector<std::string> conflicts;
  for (const FlagSpec& flag : Flags()) {
    std::string key = EnvName(flag.name);
    auto it = etcd_env.find(key);
    if (it == etcd_env.end() || it->second.empty()) continue;
    used.insert(key);
    FlagValue& slot = (*values)[std::string(flag.name)];
    if (slot.source == Source::kCommandLine) {
      conflicts.push_back(key);
      continue;
    }
    if (std::string why = CheckValue(flag, it->second); !why.empty()) {
      return VerifyError("invalid value " + Quote(it->second) + " for " + key + ": " + why);
    }
    slot = {it->second, Source::kEnv};
  }
  if (!conflicts.empty()) {
    return {1, "conflicting environment variable " + Quote(conflicts.front()) +
                   " is shadowed by corresponding command-line flag (either unset environment "
                   "variable or disable flag)"};
  }
  for (const auto& [key, value] : etcd_env) {
    if (used.count(key) == 0 && !value.empty()) {
      warnings->push_back("unrecognized environment variable " + key + "=" + value);
    }
  }
  return Status::Ok();
}

// Bind URLs must name an IP (or "localhost"), as etcd's checkBindURLs requires.
Status CheckBindUrls(const std::vector<Url>& urls) {
  for (const Url& u : urls) {
    if (u.host == "localhost") continue;
    if (!IsIpLiteral(u.host)) {
      return VerifyError("expected IP in URL for binding (" + u.text + ")");
    }
  }
  return Status::Ok();
}

Status CheckHostUrls(std::string_view flag, const std::vector<Url>& urls) {
  for (const Url& u : urls) {
    if (u.host.empty()) {
      return VerifyError(std::string(flag) + " " + Quote(JoinUrls(urls)) +
                         " must be \"host:port\" (unexpected empty host (" + u.text + "))");
    }
  }
  return Status::Ok();
}

// etcd's types.NewURLsMap over --initial-cluster: "name=url,name=url2,...", one entry per URL.
Status ParseInitialCluster(const std::string& text, std::map<std::string, std::vector<Url>>* out) {
  std::map<std::string, std::vector<std::string>> raw;
  for (const std::string& item : Split(text, ',')) {
    if (item.empty()) continue;
    std::string name = item;
    std::string url;
    if (size_t eq = item.find('='); eq != std::string::npos) {
      name = item.substr(0, eq);
      url = item.substr(eq + 1);
    }
    raw[name].push_back(url);
  }
  for (const auto& [name, url_texts] : raw) {
    std::vector<Url> urls;
    for (const std::string& u : url_texts) {
      Url parsed;
      if (Status st = ParseUrl(u, &parsed); !st.ok()) {
        return {1, "error setting up initial cluster: " + st.message()};
      }
      urls.push_back(parsed);
    }
    std::sort(urls.begin(), urls.end(), [](const Url& a, const Url& b) { return a.text < b.text; });
    (*out)[name] = urls;
  }
  return Status::Ok();
}

// etcd's ServerConfig.advertiseMatchesCluster, comparing URL strings (kvd does not resolve
// host names: "localhost" and "127.0.0.1" differ here, while etcd would resolve them).
Status AdvertiseMatchesCluster(const std::string& name, const std::vector<Url>& in_cluster,
                               const std::vector<Url>& advertised) {
  std::vector<std::string> init;
  std::vector<std::string> ap;
  for (const Url& u : in_cluster) init.push_back(u.text);
  for (const Url& u : advertised) ap.push_back(u.text);
  std::sort(init.begin(), init.end());
  std::sort(ap.begin(), ap.end());
  if (init == ap) return Status::Ok();
  std::string detail;
  if (init.size() != ap.size()) {
    detail = "len(" + GoQuotedList(ap) + ") != len(" + GoQuotedList(init) + ")";
  } else {
    for (size_t i = 0; i < init.size(); ++i) {
      if (init[i] != ap[i]) {
        detail = "resolved urls: " + Quote(ap[i]) + " != " + Quote(init[i]);
        break;
      }
    }
  }
  std::set<std::string> init_set(init.begin(), init.end());
  std::set<std::string> ap_set(ap.begin(), ap.end());
  std::string missing;
  for (const std::string& u : init_set) {
    if (ap_set.count(u) == 0) missing += (missing.empty() ? "" : ",") + name + "=" + u;
  }
  std::string ap_joined;
  for (const std::string& u : ap) ap_joined += (ap_joined.empty() ? "" : ",") + u;
  if (!missing.empty()) {
    return {1, "--initial-cluster has " + missing +
                   " but missing from --initial-advertise-peer-urls=" + ap_joined + " (" + detail +
                   ")"};
  }
  for (const std::string& u : ap_set) {
    if (init_set.count(u) == 0) missing += (missing.empty() ? "" : ",") + u;
  }
  std::string cluster_joined;
  for (const std::string& u : ap)
    cluster_joined += (cluster_joined.empty() ? "" : ",") + name + "=" + u;
  return {1, "--initial-advertise-peer-urls has " + missing +
                 " but missing from --initial-cluster=" + cluster_joined};
}

std::optional<LogLevel> ParseLogLevel(std::string_view s) {
  if (s == "debug") return LogLevel::kDebug;
  if (s == "info") return LogLevel::kInfo;
  if (s == "warn") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  if (s == "panic") return LogLevel::kPanic;
  if (s == "fatal") return LogLevel::kFatal;
  return std::nullopt;
}

}  // namespace

// -----------------------------------------------------------------------------------------------

Status ParseUrl(std::string_view text, Url* out) {
  std::string in = Trim(text);
  const std::string scheme_error = "URL scheme must be http, https, unix, or unixs: " + in;
  size_t sep = in.find("://");
  if (sep == std::string::npos) return {2, scheme_error};
  std::string scheme = in.substr(0, sep);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme == "unix" || scheme == "unixs") {
    return {2, "URL scheme " + scheme + " (unix sockets) is not supported by kvd: " + in};
  }
  if (scheme != "http" && scheme != "https") return {2, scheme_error};
  std::string rest = in.substr(sep + 3);
  size_t path = rest.find_first_of("/?#");
  if (path != std::string::npos) return {2, "URL must not contain a path: " + in};
  const std::string form_error = "URL address does not have the form \"host:port\": " + in;
  std::string host;
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return {2, form_error};
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) return {2, form_error};
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string::npos) return {2, form_error};  // "too many colons"
  }
  if (host.find('@') != std::string::npos) return {2, form_error};
  uint64_t port_value = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (port_value = std::stoull(port)) > 65535) {
    return {2, "URL port must be a number from 0 to 65535: " + in};
  }
  out->scheme = scheme;
  out->host = host;
  out->port = static_cast<uint16_t>(port_value);
  out->text = in;
  return Status::Ok();
}

Status ParseUrlList(std::string_view text, std::vector<Url>* out) {
  std::vector<Url> urls;
  for (const std::string& item : Split(text, ',')) {
    Url u;
    if (Status st = ParseUrl(item, &u); !st.ok()) return st;
    urls.push_back(u);
  }
  std::sort(urls.begin(), urls.end(), [](const Url& a, const Url& b) { return a.text < b.text; });
  *out = std::move(urls);
  return Status::Ok();
}

std::string_view ToString(ClusterState state) {
  return state == ClusterState::kNew ? "new" : "existing";
}

std::string_view ToString(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kPanic:
      return "panic";
    case LogLevel::kFatal:
      return "fatal";
  }
  return "info";
}

std::string_view ToString(LogFormat format) { return format == LogFormat::kJson ? "json" : "text"; }

uint64_t ComputeMemberId(std::vector<std::string> peer_urls, std::string_view cluster_token,
                         std::optional<int64_t> unix_seconds) {
  std::sort(peer_urls.begin(), peer_urls.end());
  std::string input;
  for (const std::string& u : peer_urls) input += u;
  input += cluster_token;
  if (unix_seconds.has_value()) input += std::to_string(*unix_seconds);
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
  uint64_t id = 0;
  for (size_t i = 0; i < 8; ++i) id = (id << 8) | digest[i];
  return id;
}

uint64_t ComputeClusterId(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  std::vector<unsigned char> input;
  input.reserve(member_ids.size() * 8);
  for (uint64_t id : member_ids) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      input.push_back(static_cast<unsigned char>((id >> shift) & 0xFF));
    }
  }
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(input.data(), input.size(), digest.data());
  uint64_t id = 0;
  for (size_t i = 0; i < 8; ++i) id = (id << 8) | digest[i];
  return id;
}

std::string FormatId(uint64_t id) {
  std::ostringstream out;
  out << std::hex << id;
  return out.str();
}

int64_t Config::min_lease_ttl_seconds() const {
  const uint64_t min_ttl_ms = (3 * election_timeout_ticks()) / 2 * heartbeat_interval_ms;
  return static_cast<int64_t>((min_ttl_ms + 999) / 1000);
}

std::optional<uint64_t> Config::BackendQuotaBytes() const {
  if (quota_backend_bytes < 0) return std::nullopt;
  if (quota_backend_bytes == 0) return kDefaultQuotaBackendBytes;
  return static_cast<uint64_t>(quota_backend_bytes);
}

std::string Config::Describe() const {
  std::ostringstream out;
  auto urls = [](const std::vector<Url>& list) { return JoinUrls(list); };
  out << "name: " << name << "\n"
      << "data-dir: " << data_dir << "\n"
      << "wal-dir: " << wal_dir << "\n"
      << "member-id: " << FormatId(member_id) << "\n"
      << "cluster-id: " << FormatId(cluster_id) << "\n"
      << "listen-client-urls: " << urls(listen_client_urls) << "\n"
      << "advertise-client-urls: " << urls(advertise_client_urls) << "\n"
      << "listen-peer-urls: " << urls(listen_peer_urls) << "\n"
      << "initial-advertise-peer-urls: " << urls(initial_advertise_peer_urls) << "\n"
      << "listen-metrics-urls: " << urls(listen_metrics_urls) << "\n"
      << "initial-cluster:";
  for (const InitialMember& m : initial_cluster) {
    out << " " << m.name << "=";
    for (size_t i = 0; i < m.peer_urls.size(); ++i) out << (i ? "," : "") << m.peer_urls[i];
    out << "(" << FormatId(m.id) << ")";
  }
  out << "\n"
      << "initial-cluster-state: " << ToString(initial_cluster_state) << "\n"
      << "initial-cluster-token: " << initial_cluster_token << "\n"
      << "strict-reconfig-check: " << (strict_reconfig_check ? "true" : "false") << "\n"
      << "heartbeat-interval-ms: " << heartbeat_interval_ms << "\n"
      << "election-timeout-ms: " << election_timeout_ms << "\n"
      << "election-timeout-ticks: " << election_timeout_ticks() << "\n"
      << "min-lease-ttl-seconds: " << min_lease_ttl_seconds() << "\n"
      << "snapshot-count: " << snapshot_count << "\n"
      << "quota-backend-bytes: "
      << (BackendQuotaBytes() ? std::to_string(*BackendQuotaBytes()) : "none") << "\n"
      << "max-request-bytes: " << max_request_bytes << "\n"
      << "max-txn-ops: " << max_txn_ops << "\n"
      << "corrupt-check-period-ms: " << corrupt_check_period_ms << "\n"
      << "log-level: " << ToString(log_level) << "\n"
      << "log-format: " << ToString(log_format) << "\n"
      << "restore: " << restore_path << "\n";
  for (const auto& [flag, value] : ignored_flags) {
    out << "ignored flag: --" << flag << "=" << value << "\n";
  }
  for (const std::string& w : warnings) out << "warning: " << w << "\n";
  return out.str();
}

Status ParseConfig(std::span<const std::string> args, std::span<const std::string> env,
                   Config* out) {
  *out = Config{};
  std::map<std::string, FlagValue> values;
  for (const FlagSpec& f : Flags()) values[std::string(f.name)] = {std::string(f.default_value)};

  std::optional<std::string> positional;
  bool help = false;
  if (Status st = ParseCommandLine(args, &values, &positional, &help); !st.ok()) return st;
  if (help) {
    out->show_help = true;
    return Status::Ok();
  }
  if (positional.has_value()) return VerifyError("'" + *positional + "' is not a valid flag");
  bool version = false;
  if (ParseGoBool(values["version"].value, &version) && version) {
    out->show_version = true;
    return Status::Ok();
  }
  if (Status st = ApplyEnv(env, &values, &out->warnings); !st.ok()) return st;

  auto value = [&](std::string_view name) -> const std::string& {
    return values[std::string(name)].value;
  };
  auto is_set = [&](std::string_view name) {
    return values[std::string(name)].source != Source::kDefault;
  };

  // Flags kvd refuses rather than ignores: ignoring them would silently do something else.
  if (!value("config-file").empty()) {
    return VerifyError("--config-file is not supported by kvd; pass flags or ETCD_* variables");
  }
  if (!value("discovery").empty() || !value("discovery-srv").empty()) {
    return VerifyError("discovery is not supported by kvd; bootstrap with --initial-cluster");
  }
  for (const FlagSpec& f : Flags()) {
    if (!f.implemented && is_set(f.name)) {
      out->ignored_flags.emplace_back(std::string(f.name), value(f.name));
    }
  }
  std::sort(out->ignored_flags.begin(), out->ignored_flags.end());

  Config& c = *out;
  c.name = value("name");
  c.data_dir = value("data-dir").empty() ? c.name + ".etcd" : value("data-dir");
  c.wal_dir = value("wal-dir");
  c.snapshot_count = Uint(value("snapshot-count"));
  c.heartbeat_interval_ms = Uint(value("heartbeat-interval"));
  c.election_timeout_ms = Uint(value("election-timeout"));
  {
    double progress_ns = 0;
    const std::string& progress = value("experimental-watch-progress-notify-interval");
    SERVER_CHECK(ParseGoDuration(progress, &progress_ns), "value '%s' was validated as a duration",
                 progress.c_str());
    if (progress_ns < 1e6) {
      return VerifyError("--experimental-watch-progress-notify-interval must be at least 1ms");
    }
    c.watch_progress_notify_interval_ms = static_cast<uint64_t>(progress_ns / 1e6);
  }
  {
    double corrupt_ns = 0;
    const std::string& corrupt = value("experimental-corrupt-check-time");
    SERVER_CHECK(ParseGoDuration(corrupt, &corrupt_ns), "value '%s' was validated as a duration",
                 corrupt.c_str());
    if (corrupt_ns < 0) {
      return VerifyError("--experimental-corrupt-check-time must not be negative");
    }
    // Below a millisecond (but not 0) counts as 1 ms: the checker's time unit.
    c.corrupt_check_period_ms =
        corrupt_ns == 0 ? 0 : std::max<uint64_t>(1, static_cast<uint64_t>(corrupt_ns / 1e6));
  }
  c.listen_peer_urls = Urls(value("listen-peer-urls"));
  c.listen_client_urls = Urls(value("listen-client-urls"));
  c.listen_metrics_urls = Urls(value("listen-metrics-urls"));
  c.quota_backend_bytes = Int(value("quota-backend-bytes"));
  c.max_txn_ops = Uint(value("max-txn-ops"));
  c.max_request_bytes = Uint(value("max-request-bytes"));
  c.initial_advertise_peer_urls = Urls(value("initial-advertise-peer-urls"));
  c.advertise_client_urls = Urls(value("advertise-client-urls"));
  c.initial_cluster_state =
      value("initial-cluster-state") == "new" ? ClusterState::kNew : ClusterState::kExisting;
  c.initial_cluster_token = value("initial-cluster-token");
  {
    const std::string& strict = value("strict-reconfig-check");
    SERVER_CHECK(ParseGoBool(strict, &c.strict_reconfig_check),
                 "value '%s' was validated as a bool", strict.c_str());
  }
  c.logger = value("logger");
  c.log_outputs = Split(value("log-outputs"), ',');
  c.log_format = value("log-format") == "json" ? LogFormat::kJson : LogFormat::kText;
  c.restore_path = value("restore");

  std::optional<LogLevel> level = ParseLogLevel(value("log-level"));
  if (!level.has_value()) {
    return {2, "invalid value " + Quote(value("log-level")) +
                   " for flag -log-level: unknown level " + Quote(value("log-level"))};
  }
  c.log_level = *level;
  bool debug = false;
  if (ParseGoBool(value("debug"), &debug) && debug) c.log_level = LogLevel::kDebug;

  // etcd's embed.Config.Validate, in etcd's order.
  if (c.logger != "capnslog" && c.logger != "zap") {
    return VerifyError("unknown logger option " + Quote(c.logger));
  }
  if (Status st = CheckBindUrls(c.listen_peer_urls); !st.ok()) return st;
  if (Status st = CheckBindUrls(c.listen_client_urls); !st.ok()) return st;
  if (Status st = CheckBindUrls(c.listen_metrics_urls); !st.ok()) return st;
  if (Status st = CheckHostUrls("--initial-advertise-peer-urls", c.initial_advertise_peer_urls);
      !st.ok()) {
    return st;
  }
  if (Status st = CheckHostUrls("--advertise-client-urls", c.advertise_client_urls); !st.ok()) {
    return st;
  }
  if (c.heartbeat_interval_ms == 0) {
    return VerifyError("--heartbeat-interval must be >0 (set to 0ms)");
  }
  if (c.election_timeout_ms == 0) return VerifyError("--election-timeout must be >0 (set to 0ms)");
  if (5 * c.heartbeat_interval_ms > c.election_timeout_ms) {
    return VerifyError("--election-timeout[" + std::to_string(c.election_timeout_ms) +
                       "ms] should be at least as 5 times as --heartbeat-interval[" +
                       std::to_string(c.heartbeat_interval_ms) + "ms]");
  }
  if (c.election_timeout_ms > kElectionTimeoutMsMax) {
    return VerifyError("--election-timeout[" + std::to_string(c.election_timeout_ms) +
                       "ms] is too long, and should be set less than " +
                       std::to_string(kElectionTimeoutMsMax) + "ms");
  }
  if (is_set("listen-client-urls") && !is_set("advertise-client-urls")) {
    return VerifyError(
        "--advertise-client-urls is required when --listen-client-urls is set explicitly");
  }

  // etcd's UpdateDefaultClusterFromName: `--name abc` alone means abc=<advertise peer URLs>.
  std::string initial_cluster = value("initial-cluster");
  if (c.name != "default" && initial_cluster == "default=http://localhost:2380") {
    initial_cluster.clear();
    for (const Url& u : c.initial_advertise_peer_urls) {
      initial_cluster += (initial_cluster.empty() ? "" : ",") + c.name + "=" + u.text;
    }
  }
  std::map<std::string, std::vector<Url>> cluster;
  if (Status st = ParseInitialCluster(initial_cluster, &cluster); !st.ok()) return st;

  // etcd's ServerConfig.VerifyBootstrap / VerifyJoinExisting, in etcd's order.
  auto self = cluster.find(c.name);
  if (self == cluster.end()) {
    return {1,
            "couldn't find local name " + Quote(c.name) + " in the initial cluster configuration"};
  }
  if (Status st = AdvertiseMatchesCluster(c.name, self->second, c.initial_advertise_peer_urls);
      !st.ok()) {
    return st;
  }
  std::set<std::string> seen_urls;
  for (const auto& [member, urls] : cluster) {
    for (const Url& u : urls) {
      if (!seen_urls.insert(u.text).second) {
        std::vector<std::string> pairs;
        for (const auto& [m2, urls2] : cluster) {
          for (const Url& u2 : urls2) pairs.push_back(m2 + "=" + u2.text);
        }
        std::sort(pairs.begin(), pairs.end());
        std::string joined;
        for (const std::string& p : pairs) joined += (joined.empty() ? "" : ",") + p;
        return {1, "initial cluster " + joined + " has duplicate url"};
      }
    }
  }

  std::vector<uint64_t> ids;
  for (const auto& [member, urls] : cluster) {
    InitialMember m;
    m.name = member;
    for (const Url& u : urls) m.peer_urls.push_back(u.text);
    m.id = ComputeMemberId(m.peer_urls, c.initial_cluster_token, std::nullopt);
    ids.push_back(m.id);
    if (m.name == c.name) c.member_id = m.id;
    c.initial_cluster.push_back(std::move(m));
  }
  c.cluster_id = ComputeClusterId(ids);
  if (c.quota_backend_bytes > 8LL * 1024 * 1024 * 1024) {
    c.warnings.push_back("quota-backend-bytes exceeds the recommended maximum of 8 GiB");
  }
  return Status::Ok();
}

std::string UsageText() {
  std::ostringstream out;
  out << "Usage:\n\n  kvd [flags]\n    Start a kvd server (an etcd 3.4 compatible member).\n\n"
         "  kvd --version\n    Show the version of kvd.\n\n"
         "  kvd -h | --help\n    Show this help.\n\n"
         "Every flag can also be set through its environment variable ETCD_<FLAG_NAME> (e.g.\n"
         "ETCD_INITIAL_CLUSTER); setting both for the same flag is an error.\n";
  std::string_view group;
  for (const FlagSpec& f : Flags()) {
    if (f.group != group) {
      group = f.group;
      out << "\n" << group << ":\n";
    }
    std::string def(f.default_value);
    if (f.name == "data-dir") def = "${name}.etcd";
    if (f.name == "max-concurrent-streams") def = "math.MaxUint32";
    out << "  --" << f.name << " '" << def << "'\n";
    if (!f.help.empty()) out << "    " << f.help << "\n";
  }
  return out.str();
}

std::string VersionText() {
  std::ostringstream out;
  out << "etcd Version: " << kEtcdServerVersion << "\n"
      << "kvd Version: " << kKvdVersion << "\n"
      << "API: etcd v3 gRPC, cluster version " << kEtcdClusterVersion << "\n";
  return out.str();
}

}  // namespace server
