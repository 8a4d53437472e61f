// Formatting helpers shared by the three printers, and the printer factory.
#include "cli/printer.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace cli {

std::unique_ptr<Printer> NewPrinter(OutputFormat format, const PrinterOptions& options) {
  switch (format) {
    case OutputFormat::kJson:
      return NewJsonPrinter(options);
    case OutputFormat::kTable:
      return NewTablePrinter(options);
    case OutputFormat::kSimple:
    case OutputFormat::kFields:
      break;
  }
  return NewSimplePrinter(options);
}

std::string HexWithPrefix(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 4);
  for (char c : bytes) {
    auto b = static_cast<unsigned char>(c);
    out += "\\x";
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

std::string HumanizeBytes(std::uint64_t bytes) {
  static const char* const kSizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  if (bytes < 10) return std::to_string(bytes) + " B";
  double s = static_cast<double>(bytes);
  double e = std::floor(std::log(s) / std::log(1000.0));
  auto exponent = static_cast<std::size_t>(e);
  if (exponent > 6) exponent = 6;
  double val = std::floor(s / std::pow(1000.0, e) * 10 + 0.5) / 10;
  char buf[64];
  std::snprintf(buf, sizeof(buf), val < 10 ? "%.1f %s" : "%.0f %s", val, kSizes[exponent]);
  return buf;
}

namespace {

// Go's fmtFrac/fmtInt logic, on a positive count of `unit`-sized ticks with `prec` digits.
std::string FormatFraction(std::uint64_t value, int prec, std::uint64_t* rest) {
  std::string digits;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    std::uint64_t digit = value % 10;
    print = print || digit != 0;
    if (print) digits.insert(digits.begin(), static_cast<char>('0' + digit));
    value /= 10;
  }
  *rest = value;
  if (print) return "." + digits;
  return "";
}

}  // namespace

std::string GoDurationString(std::chrono::nanoseconds d) {
  std::int64_t ns = d.count();
  if (ns == 0) return "0s";
  bool negative = ns < 0;
  std::uint64_t u = negative ? static_cast<std::uint64_t>(-ns) : static_cast<std::uint64_t>(ns);
  std::string out;
  if (u < 1000000000ULL) {
    // Sub-second: ns, µs or ms with a fraction.
    int prec = 0;
    std::string unit;
    if (u < 1000) {
      return (negative ? "-" : "") + std::to_string(u) + "ns";
    } else if (u < 1000000) {
      prec = 3;
      unit = "\xc2\xb5s";
    } else {
      prec = 6;
      unit = "ms";
    }
    std::uint64_t rest = 0;
    std::string frac = FormatFraction(u, prec, &rest);
    out = std::to_string(rest) + frac + unit;
  } else {
    std::uint64_t rest = 0;
    std::string frac = FormatFraction(u, 9, &rest);
    std::uint64_t seconds = rest % 60;
    std::uint64_t minutes_total = rest / 60;
    out = std::to_string(seconds) + frac + "s";
    if (minutes_total > 0) {
      out = std::to_string(minutes_total % 60) + "m" + out;
      if (minutes_total / 60 > 0) out = std::to_string(minutes_total / 60) + "h" + out;
    }
  }
  return (negative ? "-" : "") + out;
}

std::string HexId(std::uint64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%" PRIx64, id);
  return buf;
}

std::string HexId016(std::uint64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, id);
  return buf;
}

std::string HexIdPad16(std::uint64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%16" PRIx64, id);
  return buf;
}

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(header.size(), 0);
  for (std::size_t c = 0; c < header.size(); ++c) widths[c] = header[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  std::string border = "+";
  for (std::size_t w : widths) border += std::string(w + 2, '-') + "+";
  border += "\n";
  std::string out = border + "|";
  for (std::size_t c = 0; c < header.size(); ++c) {
    std::string title;
    for (char ch : header[c]) {
      title += (ch == '_') ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    std::size_t gap = widths[c] - title.size();
    std::size_t left = gap / 2;
    out += " " + std::string(left, ' ') + title + std::string(gap - left, ' ') + " |";
  }
  out += "\n" + border;
  for (const auto& row : rows) {
    out += "|";
    for (std::size_t c = 0; c < widths.size(); ++c) {
      std::string cell = c < row.size() ? row[c] : "";
      out += " " + std::string(widths[c] - cell.size(), ' ') + cell + " |";
    }
    out += "\n";
  }
  if (!rows.empty()) out += border;
  return out;
}

std::vector<std::string> MemberListHeader() {
  return {"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"};
}

namespace {
std::string JoinStrings(const google::protobuf::RepeatedPtrField<std::string>& items,
                        const std::string& sep) {
  std::string out;
  for (int i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items.Get(i);
  }
  return out;
}
}  // namespace

std::vector<std::vector<std::string>> MemberListRows(const etcdserverpb::MemberListResponse& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : r.members()) {
    rows.push_back({HexId(m.id()), m.name().empty() ? "unstarted" : "started", m.name(),
                    JoinStrings(m.peerurls(), ","), JoinStrings(m.clienturls(), ","),
                    m.islearner() ? "true" : "false"});
  }
  return rows;
}

std::vector<std::string> EndpointStatusHeader() {
  return {"endpoint",           "ID",         "version",   "db size",
          "is leader",          "is learner", "raft term", "raft index",
          "raft applied index", "errors"};
}

std::vector<std::vector<std::string>> EndpointStatusRows(const std::vector<EndpointStatus>& list) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : list) {
    const auto& r = s.response;
    rows.push_back({s.endpoint, HexId(r.header().member_id()), r.version(),
                    HumanizeBytes(static_cast<std::uint64_t>(r.dbsize())),
                    r.leader() == r.header().member_id() ? "true" : "false",
                    r.islearner() ? "true" : "false", std::to_string(r.raftterm()),
                    std::to_string(r.raftindex()), std::to_string(r.raftappliedindex()),
                    JoinStrings(r.errors(), ", ")});
  }
  return rows;
}

std::vector<std::string> EndpointHashKVHeader() { return {"endpoint", "hash"}; }

std::vector<std::vector<std::string>> EndpointHashKVRows(const std::vector<EndpointHashKV>& list) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : list) rows.push_back({h.endpoint, std::to_string(h.response.hash())});
  return rows;
}

}  // namespace cli
