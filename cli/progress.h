// A progress bar on stderr for long work, drawn only when stderr is a terminal.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>

namespace cli {

// Not thread-safe: one thread updates it. When disabled every call is a no-op, so callers do
// not branch on isatty themselves.
class ProgressBar {
 public:
  // `total` may be 0 when unknown (then only the count is shown).
  ProgressBar(std::ostream* err, bool enabled, std::string label, std::uint64_t total);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void set_total(std::uint64_t total) { total_ = total; }
  // Redraws at most once per percent step (or per 1/64 of unknown totals' growth).
  void Update(std::uint64_t done);
  // Draws the final state and ends the line; idempotent.
  void Finish();

  // The line drawn for `done` of `total` (exposed for tests).
  static std::string Render(const std::string& label, std::uint64_t done, std::uint64_t total);

 private:
  std::ostream* err_;
  bool enabled_;
  std::string label_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  int last_permille_ = -1;
  bool finished_ = false;
};

}  // namespace cli
