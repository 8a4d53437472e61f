#include "cli/config_tree.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace cli {
namespace {

Status LineError(std::size_t line, const std::string& what) {
  return Status::Error(kExitInvalidInput, "line " + std::to_string(line) + ": " + what);
}

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// ---------------------------------------------------------------------------------------------
// YAML subset.

struct YamlLine {
  std::size_t number = 0;  // 1-based
  std::size_t indent = 0;
  std::string text;  // without indentation; comments kept (stripped by the scalar reader)
};

// Removes a trailing " # comment" outside quotes.
std::string StripComment(std::string_view s) {
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote != 0) {
      if (c == '\\' && quote == '"') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if ((c == '"' || c == '\'') && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '[' ||
                                    s[i - 1] == '{' || s[i - 1] == ',' || s[i - 1] == ':')) {
      quote = c;
    } else if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
      return std::string(TrimView(s.substr(0, i)));
    }
  }
  return std::string(TrimView(s));
}

class YamlParser {
 public:
  explicit YamlParser(std::string_view text) : text_(text) {}

  Status Parse(ConfigNode* root) {
    Status s = Split();
    if (!s.ok()) return s;
    *root = ConfigNode{};
    if (lines_.empty()) {
      root->kind = ConfigNode::Kind::kMap;
      return Status::Ok();
    }
    s = ParseNode(lines_[0].indent, 0, root);
    if (!s.ok()) return s;
    if (pos_ < lines_.size()) {
      return LineError(lines_[pos_].number, "unexpected content (bad indentation?)");
    }
    return Status::Ok();
  }

 private:
  Status Split() {
    std::size_t number = 0;
    std::size_t start = 0;
    // Bounded by the text length: each iteration consumes one line.
    while (start <= text_.size()) {
      std::size_t end = text_.find('\n', start);
      if (end == std::string_view::npos) end = text_.size();
      std::string_view raw = text_.substr(start, end - start);
      ++number;
      start = end + 1;
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      std::size_t indent = 0;
      while (indent < raw.size() && raw[indent] == ' ') ++indent;
      if (indent < raw.size() && raw[indent] == '\t') {
        return LineError(number, "tab character in indentation");
      }
      std::string_view rest = raw.substr(indent);
      all_lines_.push_back({number, indent, std::string(rest)});
      std::string stripped = StripComment(rest);
      if (stripped.empty() || stripped == "---" || stripped == "...") continue;
      if (lines_.size() >= kConfigEntriesMax) return LineError(number, "document too large");
      lines_.push_back({number, indent, std::string(rest)});
      if (end == text_.size()) break;
    }
    return Status::Ok();
  }

  static bool IsListItem(const std::string& t) { return t == "-" || t.rfind("- ", 0) == 0; }

  // Finds the ':' that separates a mapping key (outside quotes, followed by space or end).
  static std::size_t FindMapColon(std::string_view t) {
    char quote = 0;
    if (!t.empty() && (t[0] == '"' || t[0] == '\'')) {
      quote = t[0];
      std::size_t i = 1;
      for (; i < t.size(); ++i) {
        if (quote == '"' && t[i] == '\\') {
          ++i;
        } else if (t[i] == quote) {
          break;
        }
      }
      if (i + 1 < t.size() && t[i + 1] == ':' && (i + 2 == t.size() || t[i + 2] == ' ')) {
        return i + 1;
      }
      return std::string_view::npos;
    }
    if (!t.empty() && (t[0] == '[' || t[0] == '{')) return std::string_view::npos;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i] == '#' && i > 0 && t[i - 1] == ' ') return std::string_view::npos;
      if (t[i] == ':' && (i + 1 == t.size() || t[i + 1] == ' ' || t[i + 1] == '\t')) return i;
    }
    return std::string_view::npos;
  }

  Status ParseNode(std::size_t indent, std::size_t depth, ConfigNode* node) {
    if (depth > kConfigDepthMax) return LineError(lines_[pos_].number, "nesting too deep");
    const YamlLine& line = lines_[pos_];
    if (IsListItem(line.text)) return ParseList(indent, depth, node);
    if (FindMapColon(StripComment(line.text)) != std::string_view::npos) {
      return ParseMap(indent, depth, node);
    }
    // A lone scalar (only valid as the whole document or a nested value on its own line).
    Status s = ParseScalarOrFlow(StripComment(line.text), line.number, depth, node);
    ++pos_;
    return s;
  }

  Status ParseMap(std::size_t indent, std::size_t depth, ConfigNode* node) {
    node->kind = ConfigNode::Kind::kMap;
    while (pos_ < lines_.size()) {
      const YamlLine line = lines_[pos_];
      if (line.indent < indent) break;
      if (line.indent > indent) return LineError(line.number, "unexpected indentation");
      if (IsListItem(line.text)) break;
      std::string text = StripComment(line.text);
      std::size_t colon = FindMapColon(text);
      if (colon == std::string::npos) {
        return LineError(line.number, "expected \"key: value\", got \"" + text + "\"");
      }
      std::string key;
      Status s =
          ParseScalarText(TrimView(std::string_view(text).substr(0, colon)), line.number, &key);
      if (!s.ok()) return s;
      for (const auto& [existing, unused] : node->map) {
        if (existing == key) return LineError(line.number, "duplicate key \"" + key + "\"");
      }
      std::string rest(TrimView(std::string_view(text).substr(colon + 1)));
      ConfigNode value;
      ++pos_;
      if (rest.empty()) {
        if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
          s = ParseNode(lines_[pos_].indent, depth + 1, &value);
        } else if (pos_ < lines_.size() && lines_[pos_].indent == indent &&
                   IsListItem(lines_[pos_].text)) {
          s = ParseList(indent, depth + 1, &value);
        }
      } else if (rest == "|" || rest == ">" || rest == "|-" || rest == ">-") {
        s = ParseBlockScalar(rest, indent, line.number, &value);
      } else {
        s = ParseScalarOrFlow(rest, line.number, depth, &value);
      }
      if (!s.ok()) return s;
      node->map.emplace_back(std::move(key), std::move(value));
    }
    return Status::Ok();
  }

  Status ParseList(std::size_t indent, std::size_t depth, ConfigNode* node) {
    node->kind = ConfigNode::Kind::kList;
    while (pos_ < lines_.size()) {
      YamlLine& line = lines_[pos_];
      if (line.indent != indent || !IsListItem(line.text)) {
        if (line.indent > indent) return LineError(line.number, "unexpected indentation");
        break;
      }
      ConfigNode item;
      std::string content = line.text.size() > 1 ? line.text.substr(2) : "";
      std::size_t extra = 0;
      while (extra < content.size() && content[extra] == ' ') ++extra;
      content = content.substr(extra);
      std::string stripped = StripComment(content);
      Status s = Status::Ok();
      if (stripped.empty()) {
        ++pos_;
        if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
          s = ParseNode(lines_[pos_].indent, depth + 1, &item);
        }
      } else if (IsListItem(stripped) || FindMapColon(stripped) != std::string::npos) {
        // "- key: value" (or "- - x"): the item is a nested node starting on this line, at
        // the column of its content.
        line.indent = indent + 2 + extra;
        line.text = content;
        s = ParseNode(line.indent, depth + 1, &item);
      } else {
        s = ParseScalarOrFlow(stripped, line.number, depth, &item);
        ++pos_;
      }
      if (!s.ok()) return s;
      node->list.push_back(std::move(item));
    }
    return Status::Ok();
  }

  // | and > block scalars: every following line indented deeper than the key.
  Status ParseBlockScalar(const std::string& style, std::size_t key_indent, std::size_t number,
                          ConfigNode* node) {
    // Work on the raw lines (comments and blank lines are content here).
    std::size_t raw = number;  // all_lines_ index of the line after the key
    std::vector<std::string> body;
    std::size_t body_indent = std::string::npos;
    while (raw < all_lines_.size()) {
      const YamlLine& l = all_lines_[raw];
      if (!l.text.empty() && l.indent <= key_indent) break;
      if (!l.text.empty() && body_indent == std::string::npos) body_indent = l.indent;
      if (!l.text.empty() && l.indent < body_indent) {
        return LineError(l.number, "bad indentation in block scalar");
      }
      body.push_back(l.text.empty() ? "" : std::string(l.indent - body_indent, ' ') + l.text);
      ++raw;
    }
    while (!body.empty() && body.back().empty()) body.pop_back();
    std::string value;
    for (std::size_t i = 0; i < body.size(); ++i) {
      if (i > 0)
        value += (style[0] == '>' && !body[i].empty() && !body[i - 1].empty()) ? " " : "\n";
      value += body[i];
    }
    if (style.size() == 1 && !body.empty()) value += "\n";
    node->kind = ConfigNode::Kind::kScalar;
    node->scalar = value;
    // Skip the consumed significant lines.
    std::size_t last_number = raw;  // 1-based number of the last consumed line
    while (pos_ < lines_.size() && lines_[pos_].number <= last_number) ++pos_;
    return Status::Ok();
  }

  static Status ParseScalarText(std::string_view t, std::size_t number, std::string* out) {
    out->clear();
    if (t.empty()) return Status::Ok();
    if (t.front() == '\'') {
      for (std::size_t i = 1; i < t.size(); ++i) {
        if (t[i] == '\'') {
          if (i + 1 < t.size() && t[i + 1] == '\'') {
            out->push_back('\'');
            ++i;
            continue;
          }
          if (i + 1 != t.size()) return LineError(number, "text after closing quote");
          return Status::Ok();
        }
        out->push_back(t[i]);
      }
      return LineError(number, "unterminated single-quoted string");
    }
    if (t.front() == '"') {
      for (std::size_t i = 1; i < t.size(); ++i) {
        char c = t[i];
        if (c == '"') {
          if (i + 1 != t.size()) return LineError(number, "text after closing quote");
          return Status::Ok();
        }
        if (c != '\\') {
          out->push_back(c);
          continue;
        }
        if (++i >= t.size()) break;
        switch (t[i]) {
          case 'n':
            out->push_back('\n');
            break;
          case 't':
            out->push_back('\t');
            break;
          case 'r':
            out->push_back('\r');
            break;
          case '0':
            out->push_back('\0');
            break;
          case '"':
            out->push_back('"');
            break;
          case '\\':
            out->push_back('\\');
            break;
          case '/':
            out->push_back('/');
            break;
          default:
            return LineError(number, std::string("unknown escape \\") + t[i]);
        }
      }
      return LineError(number, "unterminated double-quoted string");
    }
    if (t == "~" || t == "null" || t == "Null" || t == "NULL") return Status::Ok();
    *out = std::string(t);
    return Status::Ok();
  }

  // Flow collections: [a, b] and {k: v}, nested; or a scalar.
  Status ParseScalarOrFlow(std::string_view t, std::size_t number, std::size_t depth,
                           ConfigNode* node) {
    if (!t.empty() && (t.front() == '[' || t.front() == '{')) {
      std::size_t i = 0;
      Status s = ParseFlow(t, &i, number, depth, node);
      if (!s.ok()) return s;
      while (i < t.size() && t[i] == ' ') ++i;
      if (i != t.size()) return LineError(number, "text after flow collection");
      return Status::Ok();
    }
    node->kind = ConfigNode::Kind::kScalar;
    return ParseScalarText(t, number, &node->scalar);
  }

  Status ParseFlow(std::string_view t, std::size_t* i, std::size_t number, std::size_t depth,
                   ConfigNode* node) {
    if (depth > kConfigDepthMax) return LineError(number, "nesting too deep");
    auto skip = [&] {
      while (*i < t.size() && t[*i] == ' ') ++*i;
    };
    skip();
    if (*i >= t.size()) return LineError(number, "unexpected end of flow collection");
    char open = t[*i];
    if (open == '[' || open == '{') {
      char close = open == '[' ? ']' : '}';
      node->kind = open == '[' ? ConfigNode::Kind::kList : ConfigNode::Kind::kMap;
      ++*i;
      skip();
      if (*i < t.size() && t[*i] == close) {
        ++*i;
        return Status::Ok();
      }
      // Bounded: each iteration consumes an element or fails.
      while (true) {
        if (open == '{') {
          std::string key_text;
          Status s = FlowScalar(t, i, ":", number, &key_text);
          if (!s.ok()) return s;
          if (*i >= t.size() || t[*i] != ':') return LineError(number, "expected ':' in flow map");
          ++*i;
          ConfigNode value;
          s = ParseFlow(t, i, number, depth + 1, &value);
          if (!s.ok()) return s;
          node->map.emplace_back(key_text, std::move(value));
        } else {
          ConfigNode item;
          Status s = ParseFlow(t, i, number, depth + 1, &item);
          if (!s.ok()) return s;
          node->list.push_back(std::move(item));
        }
        skip();
        if (*i < t.size() && t[*i] == ',') {
          ++*i;
          continue;
        }
        if (*i < t.size() && t[*i] == close) {
          ++*i;
          return Status::Ok();
        }
        return LineError(number, std::string("expected ',' or '") + close + "' in flow collection");
      }
    }
    node->kind = ConfigNode::Kind::kScalar;
    return FlowScalar(t, i, ",]}", number, &node->scalar);
  }

  static Status FlowScalar(std::string_view t, std::size_t* i, std::string_view stops,
                           std::size_t number, std::string* out) {
    while (*i < t.size() && t[*i] == ' ') ++*i;
    std::size_t start = *i;
    if (*i < t.size() && (t[*i] == '"' || t[*i] == '\'')) {
      char q = t[*i];
      ++*i;
      while (*i < t.size() && t[*i] != q) {
        if (q == '"' && t[*i] == '\\') ++*i;
        ++*i;
      }
      if (*i >= t.size()) return LineError(number, "unterminated quoted string");
      ++*i;
    } else {
      while (*i < t.size() && stops.find(t[*i]) == std::string_view::npos) ++*i;
    }
    std::string_view raw = TrimView(t.substr(start, *i - start));
    return ParseScalarText(raw, number, out);
  }

  std::string_view text_;
  std::vector<YamlLine> all_lines_;
  std::vector<YamlLine> lines_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------

void FromJson(const nlohmann::ordered_json& j, ConfigNode* node) {
  if (j.is_object()) {
    node->kind = ConfigNode::Kind::kMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      ConfigNode child;
      FromJson(it.value(), &child);
      node->map.emplace_back(it.key(), std::move(child));
    }
  } else if (j.is_array()) {
    node->kind = ConfigNode::Kind::kList;
    for (const auto& item : j) {
      ConfigNode child;
      FromJson(item, &child);
      node->list.push_back(std::move(child));
    }
  } else {
    node->kind = ConfigNode::Kind::kScalar;
    if (j.is_string()) {
      node->scalar = j.get<std::string>();
    } else if (!j.is_null()) {
      node->scalar = j.dump();
    }
  }
}

void FlattenInto(const ConfigNode& node, const std::string& path,
                 std::map<std::string, std::string>* out) {
  auto join = [&](const std::string& child) { return path.empty() ? child : path + "/" + child; };
  switch (node.kind) {
    case ConfigNode::Kind::kScalar:
      (*out)[path] = node.scalar;
      break;
    case ConfigNode::Kind::kMap:
      for (const auto& [k, v] : node.map) FlattenInto(v, join(k), out);
      break;
    case ConfigNode::Kind::kList:
      for (std::size_t i = 0; i < node.list.size(); ++i) {
        FlattenInto(node.list[i], join(std::to_string(i)), out);
      }
      break;
  }
}

bool NeedsYamlQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* const kSpecial[] = {"~", "null", "Null", "NULL"};
  for (const char* w : kSpecial) {
    if (s == w) return true;
  }
  if (s.front() == ' ' || s.back() == ' ') return true;
  const std::string_view leading = "-?:,[]{}#&*!|>'\"%@`";
  if (leading.find(s.front()) != std::string_view::npos) return true;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (s[i] == ':' && (i + 1 == s.size() || s[i + 1] == ' ')) return true;
    if (s[i] == '#' && i > 0 && s[i - 1] == ' ') return true;
  }
  return false;
}

std::string YamlScalar(const std::string& s) {
  if (!NeedsYamlQuotes(s)) return s;
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
      case '\0':
        out += "\\0";
        break;
      default:
        out.push_back(c);
    }
  }
  return out + "\"";
}

void EmitYamlNode(const ConfigNode& node, std::size_t indent, std::string* out) {
  std::string pad(indent, ' ');
  if (node.kind == ConfigNode::Kind::kMap) {
    for (const auto& [k, v] : node.map) {
      *out += pad + YamlScalar(k) + ":";
      if (v.kind == ConfigNode::Kind::kScalar) {
        *out += " " + YamlScalar(v.scalar) + "\n";
      } else if ((v.kind == ConfigNode::Kind::kMap && v.map.empty()) ||
                 (v.kind == ConfigNode::Kind::kList && v.list.empty())) {
        *out += v.kind == ConfigNode::Kind::kMap ? " {}\n" : " []\n";
      } else {
        *out += "\n";
        EmitYamlNode(v, indent + 2, out);
      }
    }
  } else if (node.kind == ConfigNode::Kind::kList) {
    for (const auto& item : node.list) {
      if (item.kind == ConfigNode::Kind::kScalar) {
        *out += pad + "- " + YamlScalar(item.scalar) + "\n";
      } else {
        *out += pad + "-\n";
        EmitYamlNode(item, indent + 2, out);
      }
    }
  } else {
    *out += pad + YamlScalar(node.scalar) + "\n";
  }
}

nlohmann::ordered_json ToJson(const ConfigNode& node) {
  switch (node.kind) {
    case ConfigNode::Kind::kMap: {
      auto obj = nlohmann::ordered_json::object();
      for (const auto& [k, v] : node.map) obj[k] = ToJson(v);
      return obj;
    }
    case ConfigNode::Kind::kList: {
      auto arr = nlohmann::ordered_json::array();
      for (const auto& item : node.list) arr.push_back(ToJson(item));
      return arr;
    }
    case ConfigNode::Kind::kScalar:
      break;
  }
  return node.scalar;
}

}  // namespace

bool ConfigFormatFromPath(std::string_view path, ConfigFormat* format) {
  std::string_view name = path.substr(
      path.find_last_of('/') == std::string_view::npos ? 0 : path.find_last_of('/') + 1);
  if (EndsWith(name, ".yaml") || EndsWith(name, ".yml")) {
    *format = ConfigFormat::kYaml;
  } else if (EndsWith(name, ".json")) {
    *format = ConfigFormat::kJson;
  } else if (EndsWith(name, ".properties")) {
    *format = ConfigFormat::kProperties;
  } else if (EndsWith(name, ".env")) {
    *format = ConfigFormat::kEnv;
  } else {
    return false;
  }
  return true;
}

Status ParseYaml(std::string_view text, ConfigNode* root) {
  if (text.size() > kConfigBytesMax) return Status::Error(kExitInvalidInput, "file too large");
  return YamlParser(text).Parse(root);
}

Status ParseJsonConfig(std::string_view text, ConfigNode* root) {
  if (text.size() > kConfigBytesMax) return Status::Error(kExitInvalidInput, "file too large");
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    std::size_t byte = e.byte == 0 ? 0 : e.byte - 1;
    if (byte > text.size()) byte = text.size();
    auto line = static_cast<std::size_t>(
        std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(byte), '\n') + 1);
    std::string what = e.what();
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    return LineError(line, "invalid JSON: " + what);
  }
  *root = ConfigNode{};
  FromJson(j, root);
  return Status::Ok();
}

Status ParseProperties(std::string_view text, ConfigNode* root) {
  *root = ConfigNode{};
  root->kind = ConfigNode::Kind::kMap;
  std::map<std::string, std::string> flat;
  std::size_t number = 0;
  std::size_t start = 0;
  std::string logical;
  std::size_t logical_line = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(start, end - start);
    ++number;
    start = end + 1;
    std::string_view line = TrimView(raw);
    if (logical.empty()) {
      if (line.empty() || line.front() == '#' || line.front() == '!') {
        if (end == text.size()) break;
        continue;
      }
      logical_line = number;
    }
    std::size_t backslashes = 0;
    while (backslashes < line.size() && line[line.size() - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 1) {
      logical += std::string(line.substr(0, line.size() - 1));
      if (end == text.size()) return LineError(number, "continuation at end of file");
      continue;
    }
    logical += std::string(line);
    // Split at the first unescaped '=', ':' or whitespace.
    std::string key;
    std::size_t i = 0;
    for (; i < logical.size(); ++i) {
      char c = logical[i];
      if (c == '\\' && i + 1 < logical.size()) {
        key.push_back(logical[++i]);
        continue;
      }
      if (c == '=' || c == ':' || c == ' ' || c == '\t') break;
      key.push_back(c);
    }
    if (key.empty()) return LineError(logical_line, "missing key");
    while (i < logical.size() && (logical[i] == ' ' || logical[i] == '\t')) ++i;
    if (i < logical.size() && (logical[i] == '=' || logical[i] == ':')) ++i;
    while (i < logical.size() && (logical[i] == ' ' || logical[i] == '\t')) ++i;
    std::string value;
    for (; i < logical.size(); ++i) {
      char c = logical[i];
      if (c != '\\' || i + 1 >= logical.size()) {
        value.push_back(c);
        continue;
      }
      char e = logical[++i];
      switch (e) {
        case 'n':
          value.push_back('\n');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'r':
          value.push_back('\r');
          break;
        default:
          value.push_back(e);
      }
    }
    std::replace(key.begin(), key.end(), '.', '/');
    if (flat.count(key) > 0) return LineError(logical_line, "duplicate key \"" + key + "\"");
    if (flat.size() >= kConfigEntriesMax) return LineError(logical_line, "too many entries");
    flat[key] = value;
    logical.clear();
    if (end == text.size()) break;
  }
  return Unflatten(flat, root);
}

Status ParseEnv(std::string_view text, ConfigNode* root) {
  *root = ConfigNode{};
  root->kind = ConfigNode::Kind::kMap;
  std::size_t number = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = TrimView(text.substr(start, end - start));
    ++number;
    start = end + 1;
    if (!line.empty() && line.front() != '#') {
      if (line.rfind("export ", 0) == 0) line = TrimView(line.substr(7));
      std::size_t eq = line.find('=');
      if (eq == std::string_view::npos) return LineError(number, "expected KEY=value");
      std::string key(TrimView(line.substr(0, eq)));
      if (key.empty()) return LineError(number, "missing key");
      for (char c : key) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) {
          return LineError(number, "invalid character in key \"" + key + "\"");
        }
      }
      std::string_view raw = TrimView(line.substr(eq + 1));
      std::string value;
      if (!raw.empty() && (raw.front() == '"' || raw.front() == '\'')) {
        char q = raw.front();
        std::size_t i = 1;
        bool closed = false;
        for (; i < raw.size(); ++i) {
          if (q == '"' && raw[i] == '\\' && i + 1 < raw.size()) {
            char e = raw[++i];
            value.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
            continue;
          }
          if (raw[i] == q) {
            closed = true;
            break;
          }
          value.push_back(raw[i]);
        }
        if (!closed) return LineError(number, "unterminated quoted value");
        std::string_view after = TrimView(raw.substr(i + 1));
        if (!after.empty() && after.front() != '#') {
          return LineError(number, "text after closing quote");
        }
      } else {
        std::size_t hash = raw.find(" #");
        value = std::string(TrimView(raw.substr(0, hash)));
      }
      for (const auto& [existing, unused] : root->map) {
        if (existing == key) return LineError(number, "duplicate key \"" + key + "\"");
      }
      if (root->map.size() >= kConfigEntriesMax) return LineError(number, "too many entries");
      ConfigNode v;
      v.scalar = value;
      root->map.emplace_back(key, std::move(v));
    }
    if (end == text.size()) break;
  }
  return Status::Ok();
}

Status ParseConfig(std::string_view text, ConfigFormat format, ConfigNode* root) {
  switch (format) {
    case ConfigFormat::kYaml:
      return ParseYaml(text, root);
    case ConfigFormat::kJson:
      return ParseJsonConfig(text, root);
    case ConfigFormat::kProperties:
      return ParseProperties(text, root);
    case ConfigFormat::kEnv:
      return ParseEnv(text, root);
  }
  return Status::Error(kExitInvalidInput, "unknown format");
}

std::map<std::string, std::string> Flatten(const ConfigNode& root) {
  std::map<std::string, std::string> out;
  FlattenInto(root, "", &out);
  return out;
}

Status Unflatten(const std::map<std::string, std::string>& flat, ConfigNode* root) {
  *root = ConfigNode{};
  root->kind = ConfigNode::Kind::kMap;
  // Build maps first; lists are detected afterwards.
  for (const auto& [path, value] : flat) {
    ConfigNode* node = root;
    std::size_t start = 0;
    // Bounded by the path length.
    while (true) {
      std::size_t slash = path.find('/', start);
      std::string part =
          path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      if (node->kind == ConfigNode::Kind::kScalar) {
        return Status::Error(kExitInvalidInput,
                             "key \"" + path + "\" is nested under a key that has a value");
      }
      ConfigNode* child = nullptr;
      for (auto& [k, v] : node->map) {
        if (k == part) child = &v;
      }
      if (child == nullptr) {
        node->map.emplace_back(part, ConfigNode{});
        child = &node->map.back().second;
        child->kind =
            slash == std::string::npos ? ConfigNode::Kind::kScalar : ConfigNode::Kind::kMap;
      } else if (slash == std::string::npos || child->kind == ConfigNode::Kind::kScalar) {
        return Status::Error(kExitInvalidInput,
                             "key \"" + path + "\" is both a value and a parent of other keys");
      }
      if (slash == std::string::npos) {
        child->scalar = value;
        break;
      }
      node = child;
      start = slash + 1;
    }
  }
  // Maps whose keys are exactly 0..n-1 become lists (std::map ordered "10" before "2", so
  // sort numerically).
  std::vector<ConfigNode*> stack{root};
  while (!stack.empty()) {
    ConfigNode* node = stack.back();
    stack.pop_back();
    if (node->kind != ConfigNode::Kind::kMap) continue;
    bool is_list = !node->map.empty();
    std::vector<ConfigNode*> by_index(node->map.size(), nullptr);
    for (auto& [k, v] : node->map) {
      if (k.empty() || k.size() > 9 ||
          !std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          (k.size() > 1 && k[0] == '0')) {
        is_list = false;
        break;
      }
      std::size_t index = std::stoul(k);
      if (index >= by_index.size() || by_index[index] != nullptr) {
        is_list = false;
        break;
      }
      by_index[index] = &v;
    }
    if (is_list && node != root) {
      std::vector<ConfigNode> items;
      for (ConfigNode* item : by_index) items.push_back(std::move(*item));
      node->map.clear();
      node->kind = ConfigNode::Kind::kList;
      node->list = std::move(items);
      for (auto& item : node->list) stack.push_back(&item);
    } else {
      for (auto& [k, v] : node->map) stack.push_back(&v);
    }
  }
  return Status::Ok();
}

std::string EmitYaml(const ConfigNode& root) {
  std::string out;
  EmitYamlNode(root, 0, &out);
  return out;
}

std::string EmitJson(const ConfigNode& root) {
  return ToJson(root).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace cli
