// KVD_LOG: one timestamped line on stderr (kvd's log goes wherever its stderr goes).
// Thread-safe: one fprintf per line.
#pragma once

#include <sys/time.h>

#include <cstdio>
#include <ctime>

namespace server {

// "2026-11-22 01:40:12.345678" (UTC) into buf.
inline void LogTimestamp(char (&buf)[40]) {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  tm t{};
  ::gmtime_r(&tv.tv_sec, &t);
  char day[24];
  std::strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &t);
  std::snprintf(buf, sizeof(buf), "%s.%06ld", day, static_cast<long>(tv.tv_usec));
}

}  // namespace server

#define KVD_LOG(fmt, ...)                                                              \
  do {                                                                                 \
    char kvd_log_ts_[40];                                                              \
    ::server::LogTimestamp(kvd_log_ts_);                                               \
    std::fprintf(stderr, "%s kvd: " fmt "\n", kvd_log_ts_ __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)
