// robustness_runner: seeded rounds of the robustness harness for as long as asked (each
// round: a fresh 3-member kvd cluster, workload + faults, then every checker), or a re-check
// of a saved history. Prints one line per round and a summary; exit code 1 if any round
// failed. scripts/robustness.sh wraps it.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "tests/robustness/harness.h"

namespace {

// "90s", "15m", "2h" or plain seconds.
std::chrono::seconds ParseDuration(const std::string& text) {
  if (text.empty()) throw CLI::ValidationError("--duration", "empty");
  std::size_t used = 0;
  const long long n = std::stoll(text, &used);
  const std::string unit = text.substr(used);
  if (unit.empty() || unit == "s") return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::seconds(n * 60);
  if (unit == "h") return std::chrono::seconds(n * 3600);
  throw CLI::ValidationError("--duration", "unit must be s, m or h: " + text);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kvd robustness harness: faults, workload and checkers on real clusters"};
  std::uint64_t seed = 1;
  std::string duration = "";
  int rounds = 0;
  int round_seconds = 60;
  std::string check;
  std::string artifacts;
  std::string kvd = KVD_BINARY;
  bool keep = false;
  std::vector<std::string> fault_names;
  std::size_t members = 3;
  app.add_option("--seed", seed, "seed of the first round (round i uses seed + i)");
  app.add_option("--duration", duration, "run rounds until this much time passed (90s, 15m, 1h)");
  app.add_option("--rounds", rounds, "number of rounds (default 1 unless --duration)");
  app.add_option("--round-seconds", round_seconds, "workload seconds per round")
      ->check(CLI::Range(5, 3600));
  app.add_option("--check", check, "only re-run the checkers on a saved history.json");
  app.add_option("--artifacts", artifacts, "where failing rounds keep their files ($TMPDIR)");
  app.add_option("--kvd", kvd, "the kvd binary");
  app.add_flag("--keep", keep, "keep the artifacts of passing rounds too");
  app.add_option("--members", members, "cluster size (3 or 5)")->check(CLI::IsMember({3, 5}));
  app.add_option("--faults", fault_names, "only these fault kinds (comma-separated; default all)")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  std::vector<kv::robustness::FaultKind> fault_kinds = kv::robustness::AllFaults();
  if (!fault_names.empty()) {
    fault_kinds.clear();
    for (const std::string& name : fault_names) {
      bool found = false;
      for (const auto k : kv::robustness::AllFaults()) {
        if (kv::robustness::ToString(k) == name) {
          fault_kinds.push_back(k);
          found = true;
        }
      }
      if (!found) {
        std::cerr << "--faults: unknown fault kind \"" << name << "\"\n";
        return 2;
      }
    }
  }

  if (!check.empty()) {
    const kv::robustness::Report report = kv::robustness::CheckSavedHistory(check);
    std::cout << report.Summary(100);
    return report.Passed() ? 0 : 1;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto limit = duration.empty() ? std::chrono::seconds(0) : ParseDuration(duration);
  if (rounds <= 0 && duration.empty()) rounds = 1;

  std::size_t ops = 0, unknown = 0, events = 0, anomalies = 0, failed = 0, inconclusive = 0;
  std::map<std::string, std::size_t> faults;
  int done = 0;
  // Bounded by --rounds or by --duration (a round starts only if the time is not up).
  while (true) {
    if (rounds > 0 && done >= rounds) break;
    if (rounds <= 0 && std::chrono::steady_clock::now() - start >= limit) break;
    kv::robustness::HarnessOptions o;
    o.kvd_binary = kvd;
    o.seed = seed + static_cast<std::uint64_t>(done);
    o.workload_duration = std::chrono::seconds(round_seconds);
    o.artifacts_root = artifacts;
    o.keep_always = keep;
    o.faults = fault_kinds;
    o.members = members;
    const kv::robustness::HarnessResult r = kv::robustness::RunRound(o);
    ++done;
    ops += r.ops_ok + r.ops_unknown;
    unknown += r.ops_unknown;
    events += r.report.events_checked;
    anomalies += r.report.anomalies.size();
    if (r.report.linearizability.verdict == kv::robustness::Verdict::kInconclusive) ++inconclusive;
    for (const auto& [kind, n] : r.faults) faults[kind] += n;
    if (!r.passed) ++failed;
    std::cout << "round " << done << " seed " << o.seed << ": " << r.Summary() << std::flush;
  }
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
  std::cout << "==== summary: " << done << " rounds in " << elapsed.count() << " s, "
            << (failed == 0 ? "all passed" : std::to_string(failed) + " FAILED") << "\n"
            << "operations: " << ops << " (" << unknown << " unknown)\n"
            << "faults:";
  std::size_t total_faults = 0;
  for (const auto& [kind, n] : faults) {
    std::cout << " " << kind << "=" << n;
    total_faults += n;
  }
  std::cout << " (total " << total_faults << ")\n"
            << "watch events checked: " << events << "\n"
            << "anomalies: " << anomalies
            << ", rounds with an inconclusive search: " << inconclusive << "\n";
  return failed == 0 ? 0 : 1;
}
