// External interfaces give us TestEventListenerBase; the implementation lives in kv_catch_main.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "tests/support/log_tail.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

namespace kvtest {
namespace {

constexpr std::size_t kRegisteredLogsMax = 256;

struct Entry {
  std::filesystem::path path;
  std::string label;
};

std::mutex g_mutex;
std::uint64_t g_next_handle = 1;
std::map<std::uint64_t, Entry>& Logs() {
  static std::map<std::uint64_t, Entry> logs;
  return logs;
}
// Handles already printed in the current test case (one dump per log per test case).
std::set<std::uint64_t>& Printed() {
  static std::set<std::uint64_t> printed;
  return printed;
}

void PrintTails(std::size_t max_bytes, bool only_new) {
  std::map<std::uint64_t, Entry> snapshot;
  {
    std::lock_guard lock(g_mutex);
    for (const auto& [handle, entry] : Logs()) {
      if (only_new && !Printed().insert(handle).second) continue;
      snapshot.emplace(handle, entry);
    }
  }
  for (const auto& [handle, entry] : snapshot) {
    std::cerr << "----- kvtest: tail of " << entry.label << " (" << entry.path.string()
              << ") -----\n"
              << TailOfFile(entry.path, max_bytes) << "\n----- end of " << entry.label
              << " -----\n";
  }
}

// Prints the logs of the live processes at the first failed assertion that concerns them.
class LogTailListener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    TestEventListenerBase::testCaseStarting(info);
    std::lock_guard lock(g_mutex);
    Printed().clear();
  }

  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!stats.assertionResult.isOk()) PrintTails(4096, /*only_new=*/true);
    return TestEventListenerBase::assertionEnded(stats);
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(LogTailListener)

std::string TailOfFile(const std::filesystem::path& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(cannot open " + path.string() + ")";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start =
      std::max<std::streamoff>(0, size - static_cast<std::streamoff>(max_bytes));
  in.seekg(start);
  std::ostringstream out;
  out << in.rdbuf();
  std::string text = out.str();
  if (start > 0) {
    const auto newline = text.find('\n');
    if (newline != std::string::npos) text.erase(0, newline + 1);
  }
  return text;
}

std::uint64_t RegisterLog(const std::filesystem::path& path, const std::string& label) {
  std::lock_guard lock(g_mutex);
  if (Logs().size() >= kRegisteredLogsMax) return 0;
  const std::uint64_t handle = g_next_handle++;
  Logs().emplace(handle, Entry{path, label});
  return handle;
}

void UnregisterLog(std::uint64_t handle) {
  std::lock_guard lock(g_mutex);
  Logs().erase(handle);
  Printed().erase(handle);
}

void PrintRegisteredLogTails(std::size_t max_bytes) { PrintTails(max_bytes, /*only_new=*/false); }

}  // namespace kvtest
