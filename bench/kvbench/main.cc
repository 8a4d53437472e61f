// kvbench: load generator for etcd-v3-API servers (kvd and etcd alike). See docs/performance.md.
#include <absl/synchronization/mutex.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "bench/kvbench/options.h"
#include "bench/kvbench/report.h"
#include "bench/kvbench/runner.h"

int main(int argc, char** argv) {
  // As in kvd (server/kvd_main.cc): Debian's abseil runs its deadlock detector on every gRPC
  // lock. The load generator shares the cores with the servers it measures, so it stays lean.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::vector<std::string> args(argv, argv + argc);
  const kvbench::ParseResult parsed = kvbench::ParseOptions(args);
  if (!parsed.options) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  const kvbench::Options& o = *parsed.options;
  try {
    const kvbench::Result r = kvbench::Run(o);
    std::fputs(kvbench::RenderText(r).c_str(), stdout);
    if (!o.json_path.empty()) {
      std::ofstream out(o.json_path);
      out << kvbench::ToJson(r).dump(2) << "\n";
      if (!out) {
        std::fprintf(stderr, "kvbench: cannot write %s\n", o.json_path.c_str());
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvbench: %s\n", e.what());
    return 1;
  }
  return 0;
}
