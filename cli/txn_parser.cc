#include "cli/txn_parser.h"

#include <charconv>
#include <functional>

#include "cli/requests.h"

namespace cli {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Go's strconv.Unquote for a double-quoted string at the start of `s` (subset: the common
// escapes and \xNN). On success sets *consumed to the length of the quoted text.
bool UnquoteGo(std::string_view s, std::string* out, std::size_t* consumed) {
  out->clear();
  if (s.empty()) return false;
  char quote = s[0];
  if (quote == '`') {
    std::size_t end = s.find('`', 1);
    if (end == std::string_view::npos) return false;
    *out = std::string(s.substr(1, end - 1));
    *consumed = end + 1;
    return true;
  }
  if (quote != '"') return false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      *consumed = i + 1;
      return true;
    }
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= s.size()) return false;
    switch (s[i]) {
      case 'n':
        out->push_back('\n');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '"':
        out->push_back('"');
        break;
      case '\'':
        out->push_back('\'');
        break;
      case 'a':
        out->push_back('\a');
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'v':
        out->push_back('\v');
        break;
      case 'x': {
        if (i + 2 >= s.size()) return false;
        unsigned value = 0;
        auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16);
        if (r.ec != std::errc() || r.ptr != s.data() + i + 3) return false;
        out->push_back(static_cast<char>(value));
        i += 2;
        break;
      }
      default:
        return false;
    }
  }
  return false;
}

std::string QuoteGo(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
  return out + "\"";
}

bool ParseInt64(std::string_view s, int base, std::int64_t* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// A tiny flag parser for the ops inside a txn: --name, --name=value, --name value.
struct FlagSpec {
  std::string name;
  bool is_bool = false;
  std::function<bool(const std::string&)> set;
};

bool ParseFlags(const std::vector<std::string>& words, const std::vector<FlagSpec>& specs,
                std::vector<std::string>* positional) {
  for (std::size_t i = 1; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.rfind("--", 0) != 0 || w.size() == 2) {
      positional->push_back(w);
      continue;
    }
    std::string name = w.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) return false;
    if (spec->is_bool) {
      if (!has_value) value = "true";
    } else if (!has_value) {
      if (i + 1 >= words.size()) return false;
      value = words[++i];
    }
    if (!spec->set(value)) return false;
  }
  return true;
}

std::function<bool(const std::string&)> SetBool(bool* b) {
  return [b](const std::string& v) {
    if (v == "true" || v == "1" || v == "t" || v == "TRUE" || v == "True") {
      *b = true;
    } else if (v == "false" || v == "0" || v == "f" || v == "FALSE" || v == "False") {
      *b = false;
    } else {
      return false;
    }
    return true;
  };
}
std::function<bool(const std::string&)> SetString(std::string* s) {
  return [s](const std::string& v) {
    *s = v;
    return true;
  };
}
std::function<bool(const std::string&)> SetInt(std::int64_t* i) {
  return [i](const std::string& v) { return ParseInt64(v, 10, i); };
}

Status Invalid(std::string message) { return Status::Error(kExitInvalidInput, std::move(message)); }

}  // namespace

std::vector<std::string> Argify(std::string_view line) {
  std::vector<std::string> words;
  std::size_t i = 0;
  // Bounded: every iteration consumes at least one character.
  while (i < line.size()) {
    if (IsSpace(line[i])) {
      ++i;
      continue;
    }
    if (line[i] == '"') {
      std::string word;
      std::size_t consumed = 0;
      if (UnquoteGo(line.substr(i), &word, &consumed)) {
        words.push_back(word);
        i += consumed;
        continue;
      }
    } else if (line[i] == '\'') {
      std::size_t end = line.find('\'', i + 1);
      if (end != std::string_view::npos) {
        words.emplace_back(line.substr(i + 1, end - i - 1));
        i = end + 1;
        continue;
      }
    }
    std::size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    words.emplace_back(line.substr(start, i - start));
  }
  return words;
}

Status ParseCompare(std::string_view line, etcdserverpb::Compare* cmp) {
  std::string whole(line);
  std::size_t lparen = line.find('(');
  if (lparen == std::string_view::npos) return Invalid("malformed comparison: " + whole);
  std::string target(line.substr(0, lparen));
  std::string_view rest = line.substr(lparen + 1);
  // Go's Sscanf("%q) %s %q"): quoted key, ')', space-separated op, quoted value.
  std::string key;
  std::string op;
  std::string value;
  int matched = 0;
  std::size_t consumed = 0;
  if (UnquoteGo(rest, &key, &consumed)) {
    matched = 1;
    rest.remove_prefix(consumed);
    if (!rest.empty() && rest.front() == ')') {
      rest = Trim(rest.substr(1));
      std::size_t sp = 0;
      while (sp < rest.size() && !IsSpace(rest[sp])) ++sp;
      op = std::string(rest.substr(0, sp));
      if (!op.empty()) matched = 2;
      rest = Trim(rest.substr(sp));
      if (matched == 2 && UnquoteGo(rest, &value, &consumed)) matched = 3;
    }
  }
  if (matched != 3) {
    if (matched < 3) value.clear();
    if (matched < 1) key.clear();
    return Invalid("malformed comparison: " + whole + "; got " + target + "(" + QuoteGo(key) +
                   ") " + op + " " + QuoteGo(value));
  }
  cmp->Clear();
  cmp->set_key(key);
  if (op == "=") {
    cmp->set_result(etcdserverpb::Compare::EQUAL);
  } else if (op == "!=") {
    cmp->set_result(etcdserverpb::Compare::NOT_EQUAL);
  } else if (op == ">") {
    cmp->set_result(etcdserverpb::Compare::GREATER);
  } else if (op == "<") {
    cmp->set_result(etcdserverpb::Compare::LESS);
  } else {
    return Invalid("malformed comparison: " + whole + " (unknown op " + op + ")");
  }
  std::int64_t number = 0;
  if (target == "ver" || target == "version") {
    if (!ParseInt64(value, 10, &number)) return Invalid("invalid txn compare request: " + whole);
    cmp->set_target(etcdserverpb::Compare::VERSION);
    cmp->set_version(number);
  } else if (target == "c" || target == "create") {
    if (!ParseInt64(value, 10, &number)) return Invalid("invalid txn compare request: " + whole);
    cmp->set_target(etcdserverpb::Compare::CREATE);
    cmp->set_create_revision(number);
  } else if (target == "m" || target == "mod") {
    if (!ParseInt64(value, 10, &number)) return Invalid("invalid txn compare request: " + whole);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_mod_revision(number);
  } else if (target == "val" || target == "value") {
    cmp->set_target(etcdserverpb::Compare::VALUE);
    cmp->set_value(value);
  } else if (target == "lease") {
    // etcdctl 3.4.23 panics here; 3.5 parses the lease ID as decimal.
    if (!ParseInt64(value, 10, &number)) return Invalid("invalid txn compare request: " + whole);
    cmp->set_target(etcdserverpb::Compare::LEASE);
    cmp->set_lease(number);
  } else {
    return Invalid("malformed comparison: " + whole + " (unknown target " + target + ")");
  }
  return Status::Ok();
}

Status ParseRequestOp(std::string_view line, etcdserverpb::RequestOp* op) {
  std::string whole(line);
  std::vector<std::string> words = Argify(line);
  if (words.size() < 2) return Invalid("invalid txn compare request: " + whole);
  const Status bad = Invalid("invalid txn request: " + whole);
  op->Clear();
  if (words[0] == "put") {
    PutArgs a;
    std::vector<FlagSpec> specs{{"lease", false, SetString(&a.lease)},
                                {"prev-kv", true, SetBool(&a.prev_kv)},
                                {"ignore-value", true, SetBool(&a.ignore_value)},
                                {"ignore-lease", true, SetBool(&a.ignore_lease)}};
    if (!ParseFlags(words, specs, &a.args)) return bad;
    Status s = BuildPut(a, nullptr, op->mutable_request_put());
    if (!s.ok()) return s;  // etcdctl exits with the command's own code
    return Status::Ok();
  }
  if (words[0] == "get") {
    GetArgs a;
    std::vector<FlagSpec> specs{{"consistency", false, SetString(&a.consistency)},
                                {"order", false, SetString(&a.order)},
                                {"sort-by", false, SetString(&a.sort_by)},
                                {"prefix", true, SetBool(&a.prefix)},
                                {"from-key", true, SetBool(&a.from_key)},
                                {"limit", false, SetInt(&a.limit)},
                                {"rev", false, SetInt(&a.rev)},
                                {"keys-only", true, SetBool(&a.keys_only)},
                                {"count-only", true, SetBool(&a.count_only)},
                                {"print-value-only", true, SetBool(&a.print_value_only)}};
    if (!ParseFlags(words, specs, &a.args)) return bad;
    Status s = BuildRange(a, op->mutable_request_range());
    if (!s.ok()) return s;  // etcdctl exits with the command's own code
    return Status::Ok();
  }
  if (words[0] == "del") {
    DelArgs a;
    std::vector<FlagSpec> specs{{"prefix", true, SetBool(&a.prefix)},
                                {"from-key", true, SetBool(&a.from_key)},
                                {"prev-kv", true, SetBool(&a.prev_kv)}};
    if (!ParseFlags(words, specs, &a.args)) return bad;
    Status s = BuildDelete(a, op->mutable_request_delete_range());
    if (!s.ok()) return s;  // etcdctl exits with the command's own code
    return Status::Ok();
  }
  return bad;
}

Status ParseTxnScript(std::istream& in, std::ostream* prompts, etcdserverpb::TxnRequest* req) {
  req->Clear();
  std::size_t line_number = 0;
  // Reads one line; false at end of input (etcdctl: "EOF") or on an over-long line.
  auto read_line = [&](std::string* line, Status* error) {
    if (line_number >= kTxnLinesMax) {
      *error = Invalid("line " + std::to_string(line_number + 1) + ": more than " +
                       std::to_string(kTxnLinesMax) + " lines");
      return false;
    }
    ++line_number;
    if (!std::getline(in, *line) || in.eof()) {
      // A last line without '\n' is an EOF error in etcdctl too (bufio ReadString).
      *error = Invalid("line " + std::to_string(line_number) +
                       ": EOF (each section must end with an empty line)");
      return false;
    }
    if (line->size() > kTxnLineBytesMax) {
      *error = Invalid("line " + std::to_string(line_number) + ": line too long");
      return false;
    }
    return true;
  };
  auto with_line = [&](const Status& s) {
    return Status::Error(s.exit_code, "line " + std::to_string(line_number) + ": " + s.message);
  };
  std::string line;
  Status error;
  if (prompts != nullptr) *prompts << "compares:\n" << std::flush;
  while (true) {
    if (!read_line(&line, &error)) return error;
    std::string_view trimmed = Trim(line);
    if (trimmed.empty()) break;
    Status s = ParseCompare(trimmed, req->add_compare());
    if (!s.ok()) return with_line(s);
  }
  for (int section = 0; section < 2; ++section) {
    if (prompts != nullptr) {
      *prompts << (section == 0 ? "success requests (get, put, del):\n"
                                : "failure requests (get, put, del):\n")
               << std::flush;
    }
    while (true) {
      if (!read_line(&line, &error)) return error;
      std::string_view trimmed = Trim(line);
      if (trimmed.empty()) break;
      auto* op = section == 0 ? req->add_success() : req->add_failure();
      Status s = ParseRequestOp(trimmed, op);
      if (!s.ok()) return with_line(s);
    }
  }
  return Status::Ok();
}

}  // namespace cli
