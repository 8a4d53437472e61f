// kvd's log: one line per event on stderr (kvd's log goes wherever its stderr goes), as text or
// as JSON (--log-format json, or etcd's --logger=zap), each line carrying the member ID and the
// raft term current when it was written.
//
//   text: 2026-11-22 01:40:12.345678 kvd: I | member=8e9e05c52164694d term=2 | message
//   json: {"level":"info","ts":"2026-11-22T01:40:12.345678Z","caller":"kvd",
//          "local-member-id":"8e9e05c52164694d","term":2,"msg":"message"}
// The JSON field names are those of etcd 3.4's zap logger, so log pipelines that parse etcd's
// JSON logs keep working. Messages starting with "warning:" or "error:" get that level.
//
// Thread-safety: every function may be called from any thread; a line is one fwrite.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace server {

enum class LogLineFormat { kText, kJson };
enum class LogSeverity { kInfo, kWarn, kError };

// Process-wide settings. SetLogFormat before the first line for consistent output.
void SetLogFormat(LogLineFormat format);
// The member ID and a reader of the current term (called once per line; must be thread-safe
// and stay valid until ClearLogTerm). Lines before these are set show member 0 and term 0.
void SetLogMember(uint64_t member_id);
void SetLogTerm(std::function<uint64_t()> read_term);
void ClearLogTerm();

// The line as it would be written (no trailing newline). `micros_since_epoch` is the wall time.
std::string FormatLogLine(LogLineFormat format, LogSeverity severity, int64_t micros_since_epoch,
                          uint64_t member_id, uint64_t term, std::string_view message);
// Severity from the message's prefix ("warning:" -> kWarn, "error:" -> kError, else kInfo).
LogSeverity SeverityOf(std::string_view message);

// Formats with the current settings and writes one line to stderr.
void WriteLogLine(std::string_view message);
// printf-style front end of WriteLogLine (messages longer than 4 KiB are cut).
void LogPrintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace server

#define KVD_LOG(fmt, ...) ::server::LogPrintf(fmt __VA_OPT__(, ) __VA_ARGS__)
