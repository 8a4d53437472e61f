#include "cli/diff.h"

#include <algorithm>
#include <map>

namespace cli {
namespace {

std::vector<std::string_view> SplitLines(std::string_view s) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < s.size()) {
    std::size_t end = s.find('\n', start);
    if (end == std::string_view::npos) end = s.size();
    lines.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

enum class Op { kKeep, kDelete, kInsert };

std::vector<Op> Script(const std::vector<std::string_view>& a,
                       const std::vector<std::string_view>& b) {
  std::size_t n = a.size();
  std::size_t m = b.size();
  std::vector<Op> ops;
  if (n > kDiffLinesMax || m > kDiffLinesMax || (n + 1) * (m + 1) > kDiffCellsMax) {
    ops.assign(n, Op::kDelete);
    ops.insert(ops.end(), m, Op::kInsert);
    return ops;
  }
  // LCS lengths of suffixes.
  std::vector<std::uint32_t> lcs((n + 1) * (m + 1), 0);
  auto at = [&](std::size_t i, std::size_t j) -> std::uint32_t& { return lcs[i * (m + 1) + j]; };
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      at(i, j) = a[i] == b[j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    }
  }
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.push_back(Op::kKeep);
      ++i;
      ++j;
    } else if (j < m && (i == n || at(i, j + 1) >= at(i + 1, j))) {
      ops.push_back(Op::kInsert);
      ++j;
    } else {
      ops.push_back(Op::kDelete);
      ++i;
    }
  }
  // Put deletions before insertions within each changed run, as diff(1) does.
  for (std::size_t k = 0; k + 1 < ops.size();) {
    if (ops[k] == Op::kKeep) {
      ++k;
      continue;
    }
    std::size_t end = k;
    while (end < ops.size() && ops[end] != Op::kKeep) ++end;
    std::stable_partition(ops.begin() + static_cast<std::ptrdiff_t>(k),
                          ops.begin() + static_cast<std::ptrdiff_t>(end),
                          [](Op o) { return o == Op::kDelete; });
    k = end;
  }
  return ops;
}

std::string Range(std::size_t start, std::size_t count) {
  if (count == 1) return std::to_string(start);
  return std::to_string(count == 0 ? start - 1 + (start == 0 ? 1 : 0) : start) + "," +
         std::to_string(count);
}

}  // namespace

std::string UnifiedDiff(std::string_view a, std::string_view b, const std::string& label_a,
                        const std::string& label_b) {
  if (a == b) return "";
  auto la = SplitLines(a);
  auto lb = SplitLines(b);
  auto ops = Script(la, lb);
  constexpr std::size_t kContext = 3;
  std::string out = "--- " + label_a + "\n+++ " + label_b + "\n";
  // Walk the script, emitting hunks around changes.
  std::size_t k = 0;
  std::size_t ia = 0;
  std::size_t ib = 0;
  // Positions (in a and b) at each op index.
  std::vector<std::pair<std::size_t, std::size_t>> pos(ops.size() + 1);
  for (std::size_t t = 0; t < ops.size(); ++t) {
    pos[t] = {ia, ib};
    if (ops[t] != Op::kInsert) ++ia;
    if (ops[t] != Op::kDelete) ++ib;
  }
  pos[ops.size()] = {ia, ib};
  while (k < ops.size()) {
    if (ops[k] == Op::kKeep) {
      ++k;
      continue;
    }
    std::size_t start = k >= kContext ? k - kContext : 0;
    std::size_t end = k;
    // Extend while the next change is within 2*context of the previous one.
    while (true) {
      while (end < ops.size() && ops[end] != Op::kKeep) ++end;
      std::size_t next = end;
      while (next < ops.size() && ops[next] == Op::kKeep) ++next;
      if (next < ops.size() && next - end <= 2 * kContext) {
        end = next;
        continue;
      }
      end = std::min(ops.size(), end + kContext);
      break;
    }
    std::size_t count_a = 0;
    std::size_t count_b = 0;
    std::string body;
    for (std::size_t t = start; t < end; ++t) {
      auto [pa, pb] = pos[t];
      if (ops[t] == Op::kKeep) {
        body += " " + std::string(la[pa]) + "\n";
        ++count_a;
        ++count_b;
      } else if (ops[t] == Op::kDelete) {
        body += "-" + std::string(la[pa]) + "\n";
        ++count_a;
      } else {
        body += "+" + std::string(lb[pb]) + "\n";
        ++count_b;
      }
    }
    out += "@@ -" + Range(pos[start].first + 1, count_a) + " +" +
           Range(pos[start].second + 1, count_b) + " @@\n" + body;
    k = end;
  }
  return out;
}

std::vector<PathChange> StructuralDiff(const ConfigNode& a, const ConfigNode& b) {
  auto fa = Flatten(a);
  auto fb = Flatten(b);
  std::vector<PathChange> changes;
  auto slash = [](const std::string& p) { return "/" + p; };
  for (const auto& [path, value] : fa) {
    auto it = fb.find(path);
    if (it == fb.end()) {
      changes.push_back({PathChange::Kind::kRemoved, slash(path), value, ""});
    } else if (it->second != value) {
      changes.push_back({PathChange::Kind::kChanged, slash(path), value, it->second});
    }
  }
  for (const auto& [path, value] : fb) {
    if (fa.count(path) == 0) changes.push_back({PathChange::Kind::kAdded, slash(path), "", value});
  }
  std::sort(changes.begin(), changes.end(),
            [](const PathChange& x, const PathChange& y) { return x.path < y.path; });
  return changes;
}

std::string FormatPathChanges(const std::vector<PathChange>& changes) {
  std::string out;
  for (const auto& c : changes) {
    switch (c.kind) {
      case PathChange::Kind::kAdded:
        out += "+ " + c.path + ": " + c.new_value + "\n";
        break;
      case PathChange::Kind::kRemoved:
        out += "- " + c.path + ": " + c.old_value + "\n";
        break;
      case PathChange::Kind::kChanged:
        out += "~ " + c.path + ": " + c.old_value + " -> " + c.new_value + "\n";
        break;
    }
  }
  return out;
}

bool ParseStructured(std::string_view value, ConfigNode* root) {
  std::size_t first = value.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return false;
  if (value[first] == '{' || value[first] == '[') {
    if (ParseJsonConfig(value, root).ok()) return root->kind != ConfigNode::Kind::kScalar;
  }
  if (!ParseYaml(value, root).ok()) return false;
  return root->kind != ConfigNode::Kind::kScalar &&
         !(root->kind == ConfigNode::Kind::kMap && root->map.empty());
}

}  // namespace cli
