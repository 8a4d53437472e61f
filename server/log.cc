#include "server/log.h"

#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "server/config.h"

namespace server {
namespace {

std::atomic<LogLineFormat> g_format{LogLineFormat::kText};
std::atomic<uint64_t> g_member_id{0};
std::mutex g_term_mu;
std::function<uint64_t()> g_read_term;  // guarded by g_term_mu

// Longest message LogPrintf formats; longer ones are cut (a log line is not a data channel).
constexpr size_t kMessageBytesMax = 4096;

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

int64_t NowMicros() {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  return static_cast<int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

}  // namespace

void SetLogFormat(LogLineFormat format) { g_format.store(format); }
void SetLogMember(uint64_t member_id) { g_member_id.store(member_id); }

void SetLogTerm(std::function<uint64_t()> read_term) {
  std::lock_guard<std::mutex> lock(g_term_mu);
  g_read_term = std::move(read_term);
}

void ClearLogTerm() { SetLogTerm(nullptr); }

LogSeverity SeverityOf(std::string_view message) {
  if (message.starts_with("warning:")) return LogSeverity::kWarn;
  if (message.starts_with("error:")) return LogSeverity::kError;
  return LogSeverity::kInfo;
}

std::string FormatLogLine(LogLineFormat format, LogSeverity severity, int64_t micros_since_epoch,
                          uint64_t member_id, uint64_t term, std::string_view message) {
  const time_t seconds = static_cast<time_t>(micros_since_epoch / 1000000);
  const long micros = static_cast<long>(micros_since_epoch % 1000000);
  tm t{};
  ::gmtime_r(&seconds, &t);
  char day[32];
  char ts[48];
  const std::string member = FormatId(member_id);
  if (format == LogLineFormat::kJson) {
    std::strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &t);
    std::snprintf(ts, sizeof(ts), "%s.%06ldZ", day, micros);
    const char* level = severity == LogSeverity::kWarn    ? "warn"
                        : severity == LogSeverity::kError ? "error"
                                                          : "info";
    return std::string("{\"level\":\"") + level + "\",\"ts\":\"" + ts +
           "\",\"caller\":\"kvd\",\"local-member-id\":\"" + member +
           "\",\"term\":" + std::to_string(term) + ",\"msg\":\"" + JsonEscape(message) + "\"}";
  }
  std::strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &t);
  std::snprintf(ts, sizeof(ts), "%s.%06ld", day, micros);
  const char* level = severity == LogSeverity::kWarn    ? "W"
                      : severity == LogSeverity::kError ? "E"
                                                        : "I";
  std::string line = std::string(ts) + " kvd: " + level + " | member=" + member +
                     " term=" + std::to_string(term) + " | ";
  // One event, one line: embedded line feeds would split it.
  for (char c : message) line.push_back(c == '\n' ? ' ' : c);
  return line;
}

void WriteLogLine(std::string_view message) {
  uint64_t term = 0;
  {
    std::lock_guard<std::mutex> lock(g_term_mu);
    if (g_read_term) term = g_read_term();
  }
  std::string line = FormatLogLine(g_format.load(), SeverityOf(message), NowMicros(),
                                   g_member_id.load(), term, message);
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void LogPrintf(const char* fmt, ...) {
  char buf[kMessageBytesMax];
  va_list args;
  va_start(args, fmt);
  int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  if (n < 0) return;
  WriteLogLine(std::string_view(buf, std::min(static_cast<size_t>(n), sizeof(buf) - 1)));
}

}  // namespace server
