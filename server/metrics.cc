#include "server/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>
#include <type_traits>

#include "server/status.h"

namespace server {
namespace {

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || name.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// HELP text escaping: backslash and line feed.
std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Label value escaping: backslash, double quote and line feed.
std::string EscapeLabelValue(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// A metric whose value is read at scrape time.
class CallbackFamily : public FamilyBase {
 public:
  CallbackFamily(MetricType type, std::string name, std::string help, std::function<double()> read)
      : FamilyBase(type, std::move(name), std::move(help), {}), read_(std::move(read)) {}

  void Render(std::string* out) const override {
    RenderHeader(out);
    *out += name_ + " " + FormatMetricValue(read_()) + "\n";
  }

 private:
  std::function<double()> read_;
};

// Fields of /proc/self/stat after the command name, indexed from field 3 ("state") = 0.
std::vector<std::string> ProcSelfStat() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> fields;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  while (rest >> field) fields.push_back(field);
  return fields;
}

double StatField(size_t field_number) {
  std::vector<std::string> fields = ProcSelfStat();
  size_t index = field_number - 3;
  if (index >= fields.size()) return 0;
  return std::strtod(fields[index].c_str(), nullptr);
}

double ClockTicksPerSecond() {
  long ticks = sysconf(_SC_CLK_TCK);
  return ticks > 0 ? static_cast<double>(ticks) : 100.0;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double btime = 0;
      in >> btime;
      return btime;
    }
    in.ignore(1 << 20, '\n');  // bounded: /proc/stat lines are far shorter
  }
  return 0;
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') count += 1;
  }
  closedir(dir);
  return count;
}

double Rlimit(int resource) {
  rlimit limit{};
  if (getrlimit(resource, &limit) != 0) return 0;
  return static_cast<double>(limit.rlim_cur);  // RLIM_INFINITY renders as 1.8446744073709552e+19
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0) return std::signbit(value) ? "-0" : "0";
  std::array<char, 64> buf{};
  auto res = std::to_chars(buf.data(), buf.data() + buf.size(), value,
                           std::chars_format::scientific);  // shortest round-trip digits
  std::string sci(buf.data(), res.ptr);
  std::string out;
  if (sci[0] == '-') {
    out = "-";
    sci.erase(0, 1);
  }
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  int exp = std::stoi(sci.substr(e + 1));
  // Go's 'g' with the shortest precision switches to exponent form below 1e-4 and from 1e6.
  if (exp < -4 || exp >= 6) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exp < 0 ? "e-" : "e+";
    int abs_exp = exp < 0 ? -exp : exp;
    if (abs_exp < 10) out += "0";
    out += std::to_string(abs_exp);
  } else if (exp >= 0) {
    auto int_digits = static_cast<size_t>(exp) + 1;
    if (digits.size() <= int_digits) {
      out += digits + std::string(int_digits - digits.size(), '0');
    } else {
      out += digits.substr(0, int_digits) + "." + digits.substr(int_digits);
    }
  } else {
    out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  }
  return out;
}

void Counter::Add(double delta) {
  SERVER_CHECK(delta >= 0, "counter increment must be non-negative, got %g", delta);
  // Below 2^53 every whole double converts to uint64_t exactly.
  if (delta < 9007199254740992.0 && std::floor(delta) == delta) {
    whole_.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed);
  } else {
    fraction_.fetch_add(delta, std::memory_order_relaxed);
  }
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_.size() + 1)) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    SERVER_CHECK(std::isfinite(upper_bounds_[i]), "histogram bound %zu is not finite", i);
    SERVER_CHECK(i == 0 || upper_bounds_[i - 1] < upper_bounds_[i],
                 "histogram bounds must increase strictly (bound %zu)", i);
  }
}

void Histogram::Observe(double value) {
  // Bucket i counts observations <= upper_bounds_[i] (and > the previous bound).
  auto it = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value);
  auto index = static_cast<size_t>(it - upper_bounds_.begin());
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snap;
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snap.cumulative_counts.push_back(running);
  }
  snap.count = running;
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

std::vector<double> ExponentialBuckets(double start, double factor, size_t count) {
  SERVER_CHECK(start > 0 && factor > 1 && count > 0, "bad exponential buckets");
  std::vector<double> out;
  double bound = start;
  for (size_t i = 0; i < count; ++i) {
    out.push_back(bound);
    bound *= factor;
  }
  return out;
}

std::vector<double> DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

FamilyBase::FamilyBase(MetricType type, std::string name, std::string help,
                       std::vector<std::string> label_names)
    : type_(type), name_(std::move(name)), help_(std::move(help)) {
  SERVER_CHECK(ValidMetricName(name_), "invalid metric name '%s'", name_.c_str());
  order_.resize(label_names.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  std::sort(order_.begin(), order_.end(),
            [&](size_t a, size_t b) { return label_names[a] < label_names[b]; });
  for (size_t i : order_) {
    const std::string& label = label_names[i];
    SERVER_CHECK(ValidLabelName(label), "invalid label name '%s' in %s", label.c_str(),
                 name_.c_str());
    SERVER_CHECK(!(type_ == MetricType::kHistogram && label == "le"),
                 "'le' is reserved in histogram %s", name_.c_str());
    SERVER_CHECK(sorted_label_names_.empty() || sorted_label_names_.back() != label,
                 "duplicate label '%s' in %s", label.c_str(), name_.c_str());
    sorted_label_names_.push_back(label);
  }
}

std::vector<std::string> FamilyBase::SortedKey(const std::vector<std::string>& values) const {
  SERVER_CHECK(values.size() == order_.size(), "%s takes %zu label values, got %zu", name_.c_str(),
               order_.size(), values.size());
  std::vector<std::string> key;
  key.reserve(values.size());
  for (size_t i : order_) key.push_back(values[i]);
  return key;
}

std::string FamilyBase::LabelText(const std::vector<std::string>& sorted_values,
                                  std::string_view extra) const {
  std::string out;
  for (size_t i = 0; i < sorted_values.size(); ++i) {
    out += (i == 0 ? "{" : ",") + sorted_label_names_[i] + "=\"" +
           EscapeLabelValue(sorted_values[i]) + "\"";
  }
  if (!extra.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra;
  }
  if (!out.empty()) out += "}";
  return out;
}

void FamilyBase::RenderHeader(std::string* out) const {
  *out += "# HELP " + name_ + " " + EscapeHelp(help_) + "\n";
  *out += "# TYPE " + name_ + " " + std::string(TypeName(type_)) + "\n";
}

template <typename T>
void Family<T>::Render(std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (series_.empty()) return;  // as client_golang: a family without series is not exported
  RenderHeader(out);
  for (const auto& [key, metric] : series_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      Histogram::Snapshot snap = metric->Read();
      const std::vector<double>& bounds = metric->upper_bounds();
      for (size_t i = 0; i <= bounds.size(); ++i) {
        std::string le = i < bounds.size() ? FormatMetricValue(bounds[i]) : "+Inf";
        *out += name_ + "_bucket" + LabelText(key, "le=\"" + le + "\"") + " " +
                std::to_string(snap.cumulative_counts[i]) + "\n";
      }
      *out += name_ + "_sum" + LabelText(key, "") + " " + FormatMetricValue(snap.sum) + "\n";
      *out += name_ + "_count" + LabelText(key, "") + " " + std::to_string(snap.count) + "\n";
    } else {
      *out += name_ + LabelText(key, "") + " " + FormatMetricValue(metric->Value()) + "\n";
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

MetricsRegistry::MetricsRegistry() {
  AddCallback("kvd_metrics_series_dropped_total",
              "Label sets not exported because their metric family was full.", MetricType::kCounter,
              [this] {
                std::lock_guard<std::mutex> lock(mu_);
                double dropped = 0;
                for (const auto& [name, family] : families_) {
                  dropped += static_cast<double>(family->dropped_series());
                }
                return dropped;
              });
}

template <typename F>
F& MetricsRegistry::Insert(std::unique_ptr<F> family) {
  std::lock_guard<std::mutex> lock(mu_);
  F& ref = *family;
  bool inserted = families_.emplace(family->name(), std::move(family)).second;
  SERVER_CHECK(inserted, "metric %s registered twice", ref.name().c_str());
  return ref;
}

Counter& MetricsRegistry::AddCounter(const std::string& name, const std::string& help) {
  return AddCounterFamily(name, help, {}).WithLabels({});
}

Gauge& MetricsRegistry::AddGauge(const std::string& name, const std::string& help) {
  return AddGaugeFamily(name, help, {}).WithLabels({});
}

Histogram& MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> upper_bounds) {
  return AddHistogramFamily(name, help, {}, std::move(upper_bounds)).WithLabels({});
}

Family<Counter>& MetricsRegistry::AddCounterFamily(const std::string& name, const std::string& help,
                                                   std::vector<std::string> label_names) {
  return Insert(std::make_unique<Family<Counter>>(MetricType::kCounter, name, help,
                                                  std::move(label_names),
                                                  [] { return std::make_unique<Counter>(); }));
}

Family<Gauge>& MetricsRegistry::AddGaugeFamily(const std::string& name, const std::string& help,
                                               std::vector<std::string> label_names) {
  return Insert(std::make_unique<Family<Gauge>>(MetricType::kGauge, name, help,
                                                std::move(label_names),
                                                [] { return std::make_unique<Gauge>(); }));
}

Family<Histogram>& MetricsRegistry::AddHistogramFamily(const std::string& name,
                                                       const std::string& help,
                                                       std::vector<std::string> label_names,
                                                       std::vector<double> upper_bounds) {
  // Validate the bounds now rather than at the first WithLabels().
  Histogram probe(upper_bounds);
  return Insert(std::make_unique<Family<Histogram>>(
      MetricType::kHistogram, name, help, std::move(label_names),
      [bounds = std::move(upper_bounds)] { return std::make_unique<Histogram>(bounds); }));
}

void MetricsRegistry::AddCallback(const std::string& name, const std::string& help, MetricType type,
                                  std::function<double()> read) {
  SERVER_CHECK(type != MetricType::kHistogram, "callback %s must be a counter or gauge",
               name.c_str());
  Insert(std::make_unique<CallbackFamily>(type, name, help, std::move(read)));
}

std::string MetricsRegistry::Render() const {
  // Families are never removed, so the pointers stay valid after the lock is released; callbacks
  // then run without the registry lock.
  std::vector<const FamilyBase*> families;
  {
    std::lock_guard<std::mutex> lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  std::string out;
  for (const FamilyBase* family : families) family->Render(&out);
  return out;
}

EtcdMetrics RegisterEtcdMetrics(MetricsRegistry& r) {
  const std::vector<double> disk_buckets = ExponentialBuckets(0.001, 2, 14);
  return EtcdMetrics{
      r.AddGauge("etcd_server_has_leader",
                 "Whether or not a leader exists. 1 is existence, 0 is not."),
      r.AddCounter("etcd_server_leader_changes_seen_total", "The number of leader changes seen."),
      r.AddGauge("etcd_server_proposals_committed_total",
                 "The total number of consensus proposals committed."),
      r.AddGauge("etcd_server_proposals_applied_total",
                 "The total number of consensus proposals applied."),
      r.AddGauge("etcd_server_proposals_pending",
                 "The current number of pending proposals to commit."),
      r.AddCounter("etcd_server_proposals_failed_total",
                   "The total number of failed proposals seen."),
      r.AddHistogram("etcd_disk_wal_fsync_duration_seconds",
                     "The latency distributions of fsync called by WAL.", disk_buckets),
      r.AddHistogram("etcd_disk_backend_commit_duration_seconds",
                     "The latency distributions of commit called by backend.", disk_buckets),
      r.AddGauge("etcd_mvcc_db_total_size_in_bytes",
                 "Total size of the underlying database physically allocated in bytes."),
      r.AddGauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers."),
      r.AddHistogramFamily("etcd_network_peer_round_trip_time_seconds",
                           "Round-Trip-Time histogram between peers.", {"To"},
                           ExponentialBuckets(0.0001, 2, 14)),
      r.AddCounterFamily("grpc_server_started_total", "Total number of RPCs started on the server.",
                         {"grpc_type", "grpc_service", "grpc_method"}),
      r.AddCounterFamily(
          "grpc_server_handled_total",
          "Total number of RPCs completed on the server, regardless of success or failure.",
          {"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
      r.AddHistogramFamily("grpc_server_handling_seconds",
                           "Histogram of response latency (seconds) of gRPC that had been "
                           "application-level handled by the server.",
                           {"grpc_type", "grpc_service", "grpc_method"}, DefaultBuckets()),
  };
}

std::string_view GrpcCodeName(int code) {
  static constexpr std::array<std::string_view, 17> kNames = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  SERVER_CHECK(code >= 0 && code < static_cast<int>(kNames.size()), "bad gRPC code %d", code);
  return kNames[static_cast<size_t>(code)];
}

void PreinitializeGrpcMethod(EtcdMetrics& metrics, std::string_view grpc_type,
                             std::string_view service, std::string_view method) {
  std::vector<std::string> labels = {std::string(grpc_type), std::string(service),
                                     std::string(method)};
  (void)metrics.grpc_server_started_total.WithLabels(labels);
  (void)metrics.grpc_server_handling_seconds.WithLabels(labels);
  for (int code = 0; code <= 16; ++code) {
    std::vector<std::string> with_code = labels;
    with_code.emplace_back(GrpcCodeName(code));
    (void)metrics.grpc_server_handled_total.WithLabels(with_code);
  }
}

void RegisterProcessMetrics(MetricsRegistry& r) {
  r.AddCallback("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                MetricType::kCounter,
                [] { return (StatField(14) + StatField(15)) / ClockTicksPerSecond(); });
  r.AddCallback("process_open_fds", "Number of open file descriptors.", MetricType::kGauge,
                [] { return OpenFds(); });
  r.AddCallback("process_max_fds", "Maximum number of open file descriptors.", MetricType::kGauge,
                [] { return Rlimit(RLIMIT_NOFILE); });
  r.AddCallback("process_resident_memory_bytes", "Resident memory size in bytes.",
                MetricType::kGauge,
                [] { return StatField(24) * static_cast<double>(sysconf(_SC_PAGESIZE)); });
  r.AddCallback("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::kGauge,
                [] { return StatField(23); });
  r.AddCallback("process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.", MetricType::kGauge,
                [] { return Rlimit(RLIMIT_AS); });
  // Constant for the process' life: computed once.
  const double start_time_seconds = BootTimeSeconds() + StatField(22) / ClockTicksPerSecond();
  r.AddCallback("process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.", MetricType::kGauge,
                [start_time_seconds] { return start_time_seconds; });
}

}  // namespace server
