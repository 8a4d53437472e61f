#include "cli/progress.h"

namespace cli {

namespace {
constexpr int kBarWidth = 30;
}

ProgressBar::ProgressBar(std::ostream* err, bool enabled, std::string label, std::uint64_t total)
    : err_(err), enabled_(enabled && err != nullptr), label_(std::move(label)), total_(total) {}

ProgressBar::~ProgressBar() { Finish(); }

std::string ProgressBar::Render(const std::string& label, std::uint64_t done, std::uint64_t total) {
  std::string line = label + " [";
  if (total == 0) {
    line += std::string(kBarWidth, '?') + "] " + std::to_string(done);
    return line;
  }
  std::uint64_t clamped = done > total ? total : done;
  auto filled = static_cast<int>(clamped * static_cast<std::uint64_t>(kBarWidth) / total);
  line += std::string(static_cast<std::size_t>(filled), '#') +
          std::string(static_cast<std::size_t>(kBarWidth - filled), ' ');
  line += "] " + std::to_string(clamped * 100 / total) + "% (" + std::to_string(done) + "/" +
          std::to_string(total) + ")";
  return line;
}

void ProgressBar::Update(std::uint64_t done) {
  if (!enabled_ || finished_) return;
  done_ = done;
  int permille = total_ == 0 ? static_cast<int>(done % 1000)
                             : static_cast<int>((done > total_ ? total_ : done) * 100 / total_);
  if (permille == last_permille_) return;
  last_permille_ = permille;
  *err_ << "\r" << Render(label_, done_, total_) << std::flush;
}

void ProgressBar::Finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  *err_ << "\r" << Render(label_, total_ == 0 ? done_ : total_, total_) << "\n" << std::flush;
}

}  // namespace cli
