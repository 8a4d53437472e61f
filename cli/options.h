// Global flags of kvctl (etcdctl's names and defaults) and the per-invocation context that
// every subcommand receives.
#pragma once
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/status.h"

namespace cli {

enum class OutputFormat { kSimple, kJson, kTable, kFields };

struct GlobalOptions {
  std::vector<std::string> endpoints{"127.0.0.1:2379"};
  std::chrono::nanoseconds dial_timeout = std::chrono::seconds(2);
  std::chrono::nanoseconds command_timeout = std::chrono::seconds(5);
  OutputFormat write_out = OutputFormat::kSimple;
  bool hex = false;
};

// Streams of one invocation. Not owned; they outlive the command. `stderr_is_tty` enables
// progress bars (never on when stderr is not a terminal).
struct Context {
  GlobalOptions global;
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  bool stdin_is_tty = false;
  bool stderr_is_tty = false;
};

// Parses a Go time.Duration string ("2s", "500ms", "1m30s", "1.5h", "0"). nullopt when
// malformed or negative.
std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

// Parses etcdctl's output format names: simple, json, table, fields. ("protobuf" is not
// supported by kvctl and yields nullopt.)
std::optional<OutputFormat> ParseOutputFormat(std::string_view text);

// Splits a comma-separated list, dropping empty items.
std::vector<std::string> SplitComma(std::string_view text);

// Parses a lease or member ID given in hex (as etcdctl does, "%x"); nullopt if malformed.
std::optional<std::uint64_t> ParseHexId(std::string_view text);

}  // namespace cli
