// Configuration documents as trees, and their flattening into key paths: the parsers behind
// `kvctl import` (YAML subset, JSON, .properties, .env), `kvctl export` (YAML and JSON
// emitters) and the structural `kvctl diff`.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/status.h"

namespace cli {

// A parsed document. Scalars keep their text (numbers and booleans are not reinterpreted);
// a YAML null or an empty value is an empty scalar. Map order is the document's.
struct ConfigNode {
  enum class Kind { kScalar, kMap, kList };
  Kind kind = Kind::kScalar;
  std::string scalar;
  std::vector<std::pair<std::string, ConfigNode>> map;
  std::vector<ConfigNode> list;
};

enum class ConfigFormat { kYaml, kJson, kProperties, kEnv };

// Limits that bound parsing work and recursion.
inline constexpr std::size_t kConfigBytesMax = 16 * 1024 * 1024;
inline constexpr std::size_t kConfigDepthMax = 64;
inline constexpr std::size_t kConfigEntriesMax = 100000;

// By file name: .yaml/.yml, .json, .properties, .env (also a file named ".env"). False if
// the extension is unknown.
bool ConfigFormatFromPath(std::string_view path, ConfigFormat* format);

// Parses the YAML subset: block maps and lists, plain/'single'/"double" scalars, comments,
// `---`, flow [a, b] and {k: v}, and | / > block scalars. Errors name the line:
// "line 7: ...", exit code 3.
Status ParseYaml(std::string_view text, ConfigNode* root);
Status ParseJsonConfig(std::string_view text, ConfigNode* root);
// `.properties`: key=value / key: value / key value, # and ! comments, trailing-backslash
// continuation; dots in keys become path separators. Flat map result.
Status ParseProperties(std::string_view text, ConfigNode* root);
// `.env`: [export ]KEY=value with optional quotes and # comments.
Status ParseEnv(std::string_view text, ConfigNode* root);
Status ParseConfig(std::string_view text, ConfigFormat format, ConfigNode* root);

// Flattens a tree into "a/b/0/c" -> scalar. A scalar root maps to the empty path. Empty maps
// and lists produce no entries.
std::map<std::string, std::string> Flatten(const ConfigNode& root);
// Rebuilds a tree from flattened paths; lists where every child key is 0..n-1. Fails when a
// path is both a value and a parent ("a" and "a/b").
Status Unflatten(const std::map<std::string, std::string>& flat, ConfigNode* root);

// Emitters. YAML quotes scalars that would otherwise not read back as the same text.
std::string EmitYaml(const ConfigNode& root);
std::string EmitJson(const ConfigNode& root);

}  // namespace cli
