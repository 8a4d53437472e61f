// The differential etcdctl script (etcdctl_script.txt): parsing and output normalization.
// Pure functions, no I/O; the format is documented at the top of the script file.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace compattest {

struct ScriptLine {
  int lineno = 0;                           // 1-based, in the script file
  std::string raw;                          // the line as written, for reports
  std::map<std::string, std::string> tags;  // [tag tag=value ...]; a bare tag maps to ""
  std::string command;     // etcdctl arguments, shell-quoted, before $VAR substitution
  std::string stdin_text;  // from `<<< "..."` (C escapes \n \t \" \\), else empty
  std::string wait_job;    // for an `@wait NAME` directive: NAME; else empty

  bool Has(const std::string& tag) const { return tags.count(tag) != 0; }
  // The value of `tag` ("" when absent or bare).
  std::string Get(const std::string& tag) const;
};

// Parses the whole script. Blank lines and lines starting with '#' are skipped. Throws
// std::invalid_argument (with the line number) on a malformed line or an unknown tag.
std::vector<ScriptLine> ParseScript(const std::string& text);

// Splits a command into arguments the way sh does for plain words, 'single' and "double"
// quotes (with \" and \\ inside double quotes). Throws std::invalid_argument on an unclosed
// quote.
std::vector<std::string> SplitArgs(const std::string& text);

// What is compared for one line: normalized stdout, then "--stderr--" and normalized stderr
// (etcdctl's JSON log lines dropped). The rules always applied replace ports, member, cluster
// and lease IDs, raft terms and indexes, hashes, sizes, durations, the server version and the
// padding of tables; tags add `rev` (revisions), `nums` (every number) and `sort` (line
// order).
std::string NormalizeOutput(const ScriptLine& line, const std::string& out, const std::string& err);

}  // namespace compattest
