// server metrics: a small Prometheus registry (counters, gauges, histograms, with label sets)
// rendered in the text exposition format 0.0.4, plus the etcd / go-grpc-prometheus / process
// metrics kvd exports under etcd's names, HELP texts and bucket layouts.
//
// Thread-safety: every method may be called from any thread. Updating a metric (Inc, Set,
// Observe) is a few relaxed atomic operations and never locks. Registration and the first
// WithLabels() call for a label set take a mutex: callers on hot paths look a labelled series
// up once and keep the reference (references stay valid for the registry's lifetime).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace server {

// Prometheus' text format for a float, as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it
// (what client_golang emits): "0", "0.25", "2.5378816e+07", "1e-05", "+Inf", "NaN".
std::string FormatMetricValue(double value);

class Counter {
 public:
  // One atomic integer add: the cheap path for event counts.
  void Inc() { whole_.fetch_add(1, std::memory_order_relaxed); }
  // Precondition: delta >= 0 (a counter never goes down; checked). Whole numbers take the
  // integer path; fractions go to a separate double (a compare-and-swap loop).
  void Add(double delta);
  double Value() const {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
           fraction_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> whole_{0};
  std::atomic<double> fraction_{0.0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Inc() { Add(1.0); }
  void Dec() { Add(-1.0); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // upper_bounds: finite, strictly increasing bucket bounds (the +Inf bucket is implicit).
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative_counts;  // one per upper bound, then +Inf
    double sum = 0;
    uint64_t count = 0;  // == cumulative_counts.back()
  };
  // Not atomic across buckets while observations race with it; each bucket is exact.
  Snapshot Read() const;
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket (not cumulative), +Inf last
  std::atomic<double> sum_{0.0};
};

// Bucket layouts as client_golang builds them.
std::vector<double> ExponentialBuckets(double start, double factor, size_t count);
std::vector<double> DefaultBuckets();  // prometheus.DefBuckets: .005 .01 ... 5 10

enum class MetricType { kCounter, kGauge, kHistogram };

// Most label sets one family keeps. Beyond it WithLabels() returns a shared overflow series
// that is not exported, and the drop is counted in kvd_metrics_series_dropped_total.
inline constexpr size_t kSeriesPerFamilyMax = 10000;

class FamilyBase {
 public:
  FamilyBase(MetricType type, std::string name, std::string help,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  uint64_t dropped_series() const { return dropped_series_.load(std::memory_order_relaxed); }
  // Appends "# HELP", "# TYPE" and every series to *out.
  virtual void Render(std::string* out) const = 0;

 protected:
  // Orders label values by label name (the exposition order) and checks their number.
  std::vector<std::string> SortedKey(const std::vector<std::string>& values) const;
  // `{a="x",b="y"` without the closing brace (empty string for no labels), then `extra`.
  std::string LabelText(const std::vector<std::string>& sorted_values,
                        std::string_view extra) const;
  void RenderHeader(std::string* out) const;

  MetricType type_;
  std::string name_;
  std::string help_;
  std::vector<std::string> sorted_label_names_;
  std::vector<size_t> order_;  // order_[i]: index in the given names of the i-th sorted name
  std::atomic<uint64_t> dropped_series_{0};
};

// A metric with labels: one series per distinct set of label values. T is Counter, Gauge or
// Histogram.
template <typename T>
class Family : public FamilyBase {
 public:
  Family(MetricType type, std::string name, std::string help, std::vector<std::string> labels,
         std::function<std::unique_ptr<T>()> make)
      : FamilyBase(type, std::move(name), std::move(help), std::move(labels)),
        make_(std::move(make)),
        overflow_(make_()) {}

  // The series for these label values, in the order the label names were given. Creates it
  // on first use. Precondition: as many values as label names (checked).
  T& WithLabels(const std::vector<std::string>& values) {
    std::vector<std::string> key = SortedKey(values);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = series_.find(key);
    if (it != series_.end()) return *it->second;
    if (series_.size() >= kSeriesPerFamilyMax) {
      dropped_series_.fetch_add(1, std::memory_order_relaxed);
      return *overflow_;
    }
    return *series_.emplace(std::move(key), make_()).first->second;
  }

  void Render(std::string* out) const override;

 private:
  std::function<std::unique_ptr<T>()> make_;
  std::unique_ptr<T> overflow_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// The registry: owns every metric and renders them all, sorted by name.
class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registration. Preconditions (checked): a valid Prometheus name not yet registered, valid
  // label names ("le" is reserved for histograms). The returned references live as long as
  // the registry.
  Counter& AddCounter(const std::string& name, const std::string& help);
  Gauge& AddGauge(const std::string& name, const std::string& help);
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> upper_bounds);
  Family<Counter>& AddCounterFamily(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names);
  Family<Gauge>& AddGaugeFamily(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names);
  Family<Histogram>& AddHistogramFamily(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> upper_bounds);
  // A metric computed at scrape time (e.g. from /proc). type is kCounter or kGauge. The
  // callback runs on the scraping thread, with no registry lock held.
  void AddCallback(const std::string& name, const std::string& help, MetricType type,
                   std::function<double()> read);

  // Every metric in text exposition format 0.0.4 (families sorted by name).
  std::string Render() const;

 private:
  template <typename F>
  F& Insert(std::unique_ptr<F> family);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;
};

// The Content-Type of Render()'s output.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The etcd metrics kvd fills, registered under etcd 3.4's names, types, HELP texts and buckets.
struct EtcdMetrics {
  Gauge& has_leader;
  Counter& leader_changes_seen_total;
  Gauge& proposals_committed_total;  // a gauge in etcd despite the name
  Gauge& proposals_applied_total;    // a gauge in etcd despite the name
  Gauge& proposals_pending;
  Counter& proposals_failed_total;
  Histogram& wal_fsync_duration_seconds;
  Histogram& backend_commit_duration_seconds;
  Gauge& mvcc_db_total_size_in_bytes;
  Gauge& mvcc_watcher_total;
  Family<Histogram>& peer_round_trip_time_seconds;  // label: To (peer member ID in hex)
  // go-grpc-prometheus: labels grpc_type, grpc_service, grpc_method (+ grpc_code).
  Family<Counter>& grpc_server_started_total;
  Family<Counter>& grpc_server_handled_total;
  Family<Histogram>& grpc_server_handling_seconds;
};

EtcdMetrics RegisterEtcdMetrics(MetricsRegistry& registry);

// go-grpc-prometheus' grpc_type label values.
inline constexpr std::string_view kGrpcUnary = "unary";
inline constexpr std::string_view kGrpcClientStream = "client_stream";
inline constexpr std::string_view kGrpcServerStream = "server_stream";
inline constexpr std::string_view kGrpcBidiStream = "bidi_stream";

// The grpc_code label value for a gRPC status code number (0..16), e.g. 5 -> "NotFound".
// Precondition: code <= 16 (checked).
std::string_view GrpcCodeName(int code);

// Creates every series of one method at zero (started, handling, and handled for all 17
// codes), as go-grpc-prometheus does for each registered method, so that dashboards see the
// series before the first call. service is the full name, e.g. "etcdserverpb.KV".
void PreinitializeGrpcMethod(EtcdMetrics& metrics, std::string_view grpc_type,
                             std::string_view service, std::string_view method);

// process_* metrics from /proc/self, as client_golang's process collector names them.
void RegisterProcessMetrics(MetricsRegistry& registry);

}  // namespace server
