#include "bench/kvbench/report.h"

#include <cstdio>
#include <sstream>

namespace kvbench {

namespace {

constexpr double kPercentiles[] = {0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999};

std::string Secs(std::uint64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", static_cast<double>(us) / 1e6);
  return buf;
}

void RenderLatency(std::ostringstream& out, const Histogram& h, const char* title) {
  char buf[160];
  out << title << "\n";
  std::snprintf(
      buf, sizeof buf,
      "  count %llu  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
      static_cast<unsigned long long>(h.count()), static_cast<double>(h.Percentile(0.50)) / 1e3,
      static_cast<double>(h.Percentile(0.90)) / 1e3, static_cast<double>(h.Percentile(0.99)) / 1e3,
      static_cast<double>(h.Percentile(0.999)) / 1e3, static_cast<double>(h.max_us()) / 1e3);
  out << buf;
  if (h.count() == 0) return;
  out << "\nResponse time histogram (s):\n" << h.Render();
  out << "\nLatency distribution:\n";
  for (double q : kPercentiles) {
    std::snprintf(buf, sizeof buf, "  %g%% in %s secs.\n", q * 100, Secs(h.Percentile(q)).c_str());
    out << buf;
  }
}

nlohmann::json LatencyJson(const Histogram& h) {
  auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1e3; };
  return {{"count", h.count()},
          {"min_ms", ms(h.min_us())},
          {"mean_ms", h.mean_us() / 1e3},
          {"stddev_ms", h.stddev_us() / 1e3},
          {"p50_ms", ms(h.Percentile(0.50))},
          {"p90_ms", ms(h.Percentile(0.90))},
          {"p99_ms", ms(h.Percentile(0.99))},
          {"p999_ms", ms(h.Percentile(0.999))},
          {"max_ms", ms(h.max_us())}};
}

}  // namespace

std::string RenderText(const Result& r) {
  std::ostringstream out;
  char buf[200];
  const Histogram& h = r.latency;
  out << "Summary (" << WorkloadName(r.workload) << ", " << r.options.clients << " clients, "
      << r.options.conns << " conns):\n";
  std::snprintf(buf, sizeof buf,
                "  Total:\t%.4f secs.\n  Slowest:\t%s secs.\n  Fastest:\t%s secs.\n"
                "  Average:\t%.4f secs.\n  Stddev:\t%.4f secs.\n  Requests/sec:\t%.4f\n",
                r.elapsed_s, Secs(h.max_us()).c_str(), Secs(h.min_us()).c_str(), h.mean_us() / 1e6,
                h.stddev_us() / 1e6, r.throughput_per_s());
  out << buf;
  std::snprintf(buf, sizeof buf, "  Succeeded:\t%llu\n  Failed:\t%llu\n  Longest gap:\t%.1f ms\n",
                static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.errors),
                r.max_success_gap_ms);
  out << buf;
  for (const auto& [msg, n] : r.error_messages) {
    out << "  error x" << n << ": " << msg << "\n";
  }
  out << "\n";
  RenderLatency(out, h, r.workload == Workload::kWatch ? "Put latency:" : "Latency:");
  if (r.workload == Workload::kWatch) {
    std::snprintf(buf, sizeof buf,
                  "\nWatch: %llu watchers created, events of acknowledged puts %llu of %llu "
                  "expected, %llu events in all (%llu before the put's ack), %llu watch errors\n",
                  static_cast<unsigned long long>(r.watchers_created),
                  static_cast<unsigned long long>(r.events_of_acked_puts),
                  static_cast<unsigned long long>(r.events_expected),
                  static_cast<unsigned long long>(r.events_received),
                  static_cast<unsigned long long>(r.events_before_ack),
                  static_cast<unsigned long long>(r.watch_errors));
    out << buf;
    if (r.options.stalled_streams > 0) {
      std::snprintf(buf, sizeof buf, "Stalled streams (not reading): %llu, watchers created %llu\n",
                    static_cast<unsigned long long>(r.options.stalled_streams),
                    static_cast<unsigned long long>(r.stalled_created));
      out << buf;
    }
    RenderLatency(out, r.event_latency, "Put-ack to event latency:");
    RenderLatency(out, r.event_send_latency, "Put-send to event latency:");
  }
  return out.str();
}

nlohmann::json ToJson(const Result& r) {
  const Options& o = r.options;
  nlohmann::json j = {
      {"workload", WorkloadName(r.workload)},
      {"endpoints", o.endpoints},
      {"clients", o.clients},
      {"conns", o.conns},
      {"key_size", o.key_size},
      {"value_size", o.value_size},
      {"key_space_size", o.key_space_size},
      {"rate_per_s", o.rate_per_s},
      {"elapsed_s", r.elapsed_s},
      {"ok", r.ok},
      {"errors", r.errors},
      {"error_messages", r.error_messages},
      {"throughput_per_s", r.throughput_per_s()},
      {"max_success_gap_ms", r.max_success_gap_ms},
      {"latency", LatencyJson(r.latency)},
  };
  if (r.workload == Workload::kRange) j["serializable"] = o.serializable;
  if (r.workload == Workload::kWatch) {
    j["watchers"] = o.watchers;
    j["streams"] = o.watch_streams;
    j["prefix"] = o.watch_prefix;
    j["watchers_created"] = r.watchers_created;
    j["events_expected"] = r.events_expected;
    j["events_received"] = r.events_received;
    j["events_of_acked_puts"] = r.events_of_acked_puts;
    j["event_send_latency"] = LatencyJson(r.event_send_latency);
    j["events_before_ack"] = r.events_before_ack;
    j["watch_errors"] = r.watch_errors;
    j["stalled_streams"] = o.stalled_streams;
    j["stalled_created"] = r.stalled_created;
    j["event_latency"] = LatencyJson(r.event_latency);
  }
  return j;
}

}  // namespace kvbench
