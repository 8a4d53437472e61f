#include "tests/compat/script.h"

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace compattest {

namespace {

const std::set<std::string>& KnownTags() {
  static const std::set<std::string> kTags = {"skip", "sort", "rev", "nums", "lines",
                                              "bg",   "set",  "ep",  "known"};
  return kTags;
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

[[noreturn]] void Bad(int lineno, const std::string& why) {
  throw std::invalid_argument("etcdctl_script.txt:" + std::to_string(lineno) + ": " + why);
}

// `quoted` is "..." with C escapes; returns the unescaped body.
std::string Unescape(const std::string& quoted, int lineno) {
  if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"') {
    Bad(lineno, "stdin after <<< must be one double-quoted string");
  }
  std::string out;
  for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
    char c = quoted[i];
    if (c == '\\' && i + 2 < quoted.size()) {
      const char n = quoted[++i];
      c = n == 'n' ? '\n' : n == 't' ? '\t' : n;
    }
    out += c;
  }
  return out;
}

std::string Replace(const std::string& text, const char* pattern, const char* with) {
  return std::regex_replace(text, std::regex(pattern), with);
}

// A lease's remaining TTL depends on when the command ran, so it is compared only as "below
// the granted TTL" (LT) or not (EQ/GT): a live lease always shows less than granted (etcd
// truncates), so a member that reports the full TTL still differs. `re` captures the
// remaining TTL in group 2 and the granted one in group `granted_group` (1 or 3).
std::string NormalizeRemaining(const std::string& s, const std::regex& re,
                               std::size_t granted_group) {
  std::string out;
  auto begin = s.cbegin();
  std::smatch m;
  while (std::regex_search(begin, s.cend(), m, re)) {
    const long long remaining = std::stoll(m[2].str());
    const long long granted = std::stoll(m[granted_group].str());
    const char* rel = remaining < granted ? "LT" : remaining == granted ? "EQ" : "GT";
    out.append(begin, m[2].first);
    out += rel;
    out.append(m[2].second, m[0].second);
    begin = m[0].second;
  }
  out.append(begin, s.cend());
  return out;
}

// Sorts the `sep`-separated items of group 1 of every match of `re`: etcd lists a lease's
// attached keys in map order, which varies from run to run.
std::string SortLists(const std::string& s, const std::regex& re, char sep) {
  std::string out;
  auto begin = s.cbegin();
  std::smatch m;
  while (std::regex_search(begin, s.cend(), m, re)) {
    std::vector<std::string> items;
    std::istringstream in(m[1].str());
    for (std::string item; std::getline(in, item, sep);) items.push_back(item);
    std::sort(items.begin(), items.end());
    out.append(begin, m[1].first);
    for (std::size_t i = 0; i < items.size(); ++i)
      out += (i == 0 ? "" : std::string(1, sep)) + items[i];
    out.append(m[1].second, m[0].second);
    begin = m[0].second;
  }
  out.append(begin, s.cend());
  return out;
}

std::string NormalizeText(const ScriptLine& line, std::string s) {
  static const std::regex kKeysSimple(R"re(attached keys\(\[([^\]]*)\]\))re");
  static const std::regex kKeysJson(R"re("keys":\[([^\]]*)\])re");
  s = SortLists(s, kKeysSimple, ' ');
  s = SortLists(s, kKeysJson, ',');
  // member add: etcdctl prints the members in the server's order (by ID; IDs differ between
  // clusters).
  static const std::regex kInitialCluster(R"re(ETCD_INITIAL_CLUSTER="([^"]*)")re");
  s = SortLists(s, kInitialCluster, ',');
  static const std::regex kSimple(R"re(TTL\((\d+)s\), remaining\((\d+)s\))re");
  static const std::regex kJson(R"re("ttl":()?(-?\d+),"granted-ttl":(\d+))re");
  static const std::regex kFields(R"re("TTL" : ()?(-?\d+)\n"GrantedTTL" : (\d+))re");
  s = NormalizeRemaining(s, kSimple, 1);
  s = NormalizeRemaining(s, kJson, 3);
  s = NormalizeRemaining(s, kFields, 3);
  // Always: what differs between any two clusters.
  s = Replace(s, R"(127\.0\.0\.1:\d+)", "127.0.0.1:PORT");
  s = Replace(s,
              R"re("(cluster_id|member_id|raft_term|ID|id|leader|memberID|raftIndex|raftTerm|)re"
              R"re(raftAppliedIndex|dbSize|dbSizeInUse|hash|lease)":\d+)re",
              "\"$1\":N");
  s = Replace(s, R"re("(ClusterID|MemberID|RaftTerm|Lease|ID)" : \d+)re", "\"$1\" : N");
  s = Replace(s, R"(\b[0-9a-f]{12,16}\b)", "HEXID");
  // etcdctl prints "Member %16x added to cluster %16x": an ID below 2^60 is space-padded.
  s = Replace(s, R"((Member|cluster) +HEXID)", "$1 HEXID");
  s = Replace(s, R"(took = \S+)", "took = DURATION");
  s = Replace(s, R"(\b\d+(\.\d+)?(ns|µs|ms)\b)", "DURATION");
  s = Replace(s, R"(\b\d+\.\d+s\b)", "DURATION");
  s = Replace(s, R"(\b\d+(\.\d+)? (B|kB|MB|GB)\b)", "SIZE");
  s = Replace(s, R"(\b3\.\d+\.\d+\b)", "VERSION");
  // Table column widths follow the (normalized) cell contents.
  s = Replace(s, R"(-+\+)", "-+");
  s = Replace(s, R"(\+-+)", "+-");
  s = Replace(s, R"( +\|)", " |");
  s = Replace(s, R"(\| +)", "| ");
  if (line.Has("rev")) {
    s = Replace(s, R"re("(revision|create_revision|mod_revision|compact_revision)":\d+)re",
                "\"$1\":N");
    s = Replace(s, R"re("(Revision|CreateRevision|ModRevision)" : \d+)re", "\"$1\" : N");
  }
  if (line.Has("nums")) s = Replace(s, R"(\b\d+\b)", "N");
  if (line.Has("sort")) {
    std::vector<std::string> lines;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    s.clear();
    for (const auto& l : lines) s += l + "\n";
  }
  return s;
}

}  // namespace

std::string ScriptLine::Get(const std::string& tag) const {
  auto it = tags.find(tag);
  return it == tags.end() ? "" : it->second;
}

std::vector<ScriptLine> ParseScript(const std::string& text) {
  std::vector<ScriptLine> lines;
  std::istringstream in(text);
  int lineno = 0;
  for (std::string raw; std::getline(in, raw);) {
    ++lineno;
    std::string rest = Trim(raw);
    if (rest.empty() || rest[0] == '#') continue;
    ScriptLine line;
    line.lineno = lineno;
    line.raw = rest;
    if (rest[0] == '[') {
      const auto close = rest.find(']');
      if (close == std::string::npos) Bad(lineno, "unclosed [tags]");
      std::istringstream tags(rest.substr(1, close - 1));
      for (std::string tag; tags >> tag;) {
        const auto eq = tag.find('=');
        const std::string name = tag.substr(0, eq);
        if (KnownTags().count(name) == 0) Bad(lineno, "unknown tag " + name);
        line.tags[name] = eq == std::string::npos ? "" : tag.substr(eq + 1);
      }
      rest = Trim(rest.substr(close + 1));
    }
    if (line.Has("bg") && !line.Has("lines")) Bad(lineno, "bg= needs lines=");
    if (rest.rfind("@wait ", 0) == 0) {
      line.wait_job = Trim(rest.substr(6));
      lines.push_back(std::move(line));
      continue;
    }
    const auto here = rest.find(" <<< ");
    if (here != std::string::npos) {
      line.stdin_text = Unescape(Trim(rest.substr(here + 5)), lineno);
      rest = Trim(rest.substr(0, here));
    }
    if (rest.empty()) Bad(lineno, "no command");
    line.command = rest;
    SplitArgs(rest);  // reject bad quoting here, not mid-run
    lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<std::string> SplitArgs(const std::string& text) {
  std::vector<std::string> args;
  std::string cur;
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t') {
      if (in_word) args.push_back(cur);
      cur.clear();
      in_word = false;
    } else if (c == '\'') {
      const auto end = text.find('\'', i + 1);
      if (end == std::string::npos) throw std::invalid_argument("unclosed ' in: " + text);
      cur += text.substr(i + 1, end - i - 1);
      i = end;
      in_word = true;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size()) ++j;
        cur += text[j];
      }
      if (j >= text.size()) throw std::invalid_argument("unclosed \" in: " + text);
      i = j;
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) args.push_back(cur);
  return args;
}

std::string NormalizeOutput(const ScriptLine& line, const std::string& out,
                            const std::string& err) {
  // etcdctl's structured log lines (retries, balancer notes) depend on timing.
  std::string kept_err;
  std::istringstream in(err);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("{\"level\":", 0) != 0) kept_err += l + "\n";
  }
  return NormalizeText(line, out) + "--stderr--\n" + NormalizeText(line, kept_err);
}

}  // namespace compattest
