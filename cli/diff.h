// Diffs between two versions of a value: a unified line diff, and for JSON/YAML documents a
// structural diff of changed paths.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "cli/config_tree.h"

namespace cli {

// Above this many lines per side (or cells of the LCS table) the line diff degrades to
// "replace everything", keeping time and memory bounded.
inline constexpr std::size_t kDiffLinesMax = 20000;
inline constexpr std::size_t kDiffCellsMax = 16 * 1024 * 1024;

// A unified diff (3 lines of context) with "--- label_a" / "+++ label_b" headers; empty when
// the texts are equal.
std::string UnifiedDiff(std::string_view a, std::string_view b, const std::string& label_a,
                        const std::string& label_b);

struct PathChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  Kind kind;
  std::string path;  // "/server/port"
  std::string old_value;
  std::string new_value;
};

// Changed paths between two trees, sorted by path.
std::vector<PathChange> StructuralDiff(const ConfigNode& a, const ConfigNode& b);
// "~ /a/b: 1 -> 2", "+ /c: x", "- /d: y", one per line.
std::string FormatPathChanges(const std::vector<PathChange>& changes);

// Parses `value` as a JSON document (object or array), else as YAML holding a map or list.
// False for anything else (plain text, a single scalar, malformed input).
bool ParseStructured(std::string_view value, ConfigNode* root);

}  // namespace cli
