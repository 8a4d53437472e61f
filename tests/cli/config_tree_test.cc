// Unit tests of the file flatteners (YAML subset, JSON, .properties, .env), their error line
// numbers, and the emit/unflatten round trip.
#include "cli/config_tree.h"

#include <catch2/catch.hpp>

namespace {

using Flat = std::map<std::string, std::string>;

Flat FlatYaml(const std::string& text) {
  cli::ConfigNode root;
  cli::Status s = cli::ParseYaml(text, &root);
  INFO(s.message);
  REQUIRE(s.ok());
  return cli::Flatten(root);
}

std::string YamlError(const std::string& text) {
  cli::ConfigNode root;
  cli::Status s = cli::ParseYaml(text, &root);
  CHECK(s.exit_code == cli::kExitInvalidInput);
  return s.message;
}

TEST_CASE("YAML maps, lists, scalars, quotes and comments flatten to paths", "[unit]") {
  // Goal: the common YAML subset maps to the expected key paths and values.
  Flat f = FlatYaml(
      "---\n# top comment\nserver:\n  port: 8080   # trailing\n  host: \"a:b # not\"\n"
      "  name: 'it''s'\nlist:\n- one\n- two: 2\n  three: 3\n-\n  - nested\nempty:\n"
      "nulls: ~\nflow: [1, \"two\", {k: v}]\nmap: {a: 1, b: [x]}\nurl: http://x:1/y\n");
  Flat expected{{"server/port", "8080"}, {"server/host", "a:b # not"},
                {"server/name", "it's"}, {"list/0", "one"},
                {"list/1/two", "2"},     {"list/1/three", "3"},
                {"list/2/0", "nested"},  {"empty", ""},
                {"nulls", ""},           {"flow/0", "1"},
                {"flow/1", "two"},       {"flow/2/k", "v"},
                {"map/a", "1"},          {"map/b/0", "x"},
                {"url", "http://x:1/y"}};
  CHECK(f == expected);
}

TEST_CASE("YAML block scalars keep their lines", "[unit]") {
  // Goal: | keeps newlines, > folds them, following keys resume.
  Flat f = FlatYaml("a: |\n  line1\n  line2\nb: >\n  x\n  y\nc: 1\n");
  CHECK(f["a"] == "line1\nline2\n");
  CHECK(f["b"] == "x y\n");
  CHECK(f["c"] == "1");
}

TEST_CASE("Malformed YAML names the line", "[unit]") {
  // Goal: each error carries the 1-based line of the problem.
  CHECK(YamlError("a: 1\nb:\n  c: 2\n   d: 3\n") == "line 4: unexpected indentation");
  CHECK(YamlError("a: 1\n\tb: 2\n") == "line 2: tab character in indentation");
  CHECK(YamlError("a: 1\na: 2\n") == "line 2: duplicate key \"a\"");
  CHECK(YamlError("a: \"open\n") == "line 1: unterminated double-quoted string");
  CHECK(YamlError("a:\n  - x\n  y: 1\n") == "line 3: unexpected indentation");
  CHECK(YamlError("a: [1, 2\n") == "line 1: expected ',' or ']' in flow collection");
  CHECK(YamlError("k: v\njust text\n") == "line 2: expected \"key: value\", got \"just text\"");
}

TEST_CASE("JSON flattens and reports the error line", "[unit]") {
  // Goal: JSON objects/arrays flatten with scalars as text; syntax errors give the line.
  cli::ConfigNode root;
  REQUIRE(cli::ParseJsonConfig(R"({"a": {"b": [1, true, null, "s"]}, "c": 1.5})", &root).ok());
  Flat expected{{"a/b/0", "1"}, {"a/b/1", "true"}, {"a/b/2", ""}, {"a/b/3", "s"}, {"c", "1.5"}};
  CHECK(cli::Flatten(root) == expected);
  cli::Status s = cli::ParseJsonConfig("{\n  \"a\": 1,\n  \"b\": \n}\n", &root);
  CHECK(s.exit_code == cli::kExitInvalidInput);
  CHECK(s.message.rfind("line 4: invalid JSON", 0) == 0);
}

TEST_CASE(".properties and .env parse with continuations, quotes and errors", "[unit]") {
  // Goal: both flat formats map to keys; malformed lines are reported by number.
  cli::ConfigNode root;
  REQUIRE(cli::ParseProperties("! c\n# c\na.b=1\na.c : two words\nd e\\\n   f\nesc=x\\ty\n", &root)
              .ok());
  Flat expected{{"a/b", "1"}, {"a/c", "two words"}, {"d", "ef"}, {"esc", "x\ty"}};
  CHECK(cli::Flatten(root) == expected);
  cli::Status dup = cli::ParseProperties("a=1\n\na=2\n", &root);
  CHECK(dup.message == "line 3: duplicate key \"a\"");
  cli::Status nested = cli::ParseProperties("a=1\na.b=2\n", &root);
  CHECK(!nested.ok());

  REQUIRE(
      cli::ParseEnv("export A=1\nB=\"q \\\"x\\\"\" # c\nC='lit $x'\nD=plain # c\n", &root).ok());
  Flat env{{"A", "1"}, {"B", "q \"x\""}, {"C", "lit $x"}, {"D", "plain"}};
  CHECK(cli::Flatten(root) == env);
  CHECK(cli::ParseEnv("A=1\nB\n", &root).message == "line 2: expected KEY=value");
  CHECK(cli::ParseEnv("A=\"open\n", &root).message == "line 1: unterminated quoted value");
  CHECK(cli::ParseEnv("A B=1\n", &root).message == "line 1: invalid character in key \"A B\"");
}

TEST_CASE("Unflatten and the emitters round-trip through the parsers", "[unit]") {
  // Goal: flat -> tree -> YAML/JSON text -> parse -> flat is the identity, including values
  // that need quoting in YAML.
  Flat flat{{"a/b", "1"},  {"a/list/0", "x"},   {"a/list/1", "- dash"}, {"a/list/10", "ten"},
            {"c", ""},     {"d", "key: value"}, {"e", "# hash"},        {"f", "multi\nline"},
            {"g", "null"}, {"h", " padded "},   {"i", "\"quoted\""}};
  for (int i = 2; i < 10; ++i) flat["a/list/" + std::to_string(i)] = std::to_string(i);
  cli::ConfigNode tree;
  REQUIRE(cli::Unflatten(flat, &tree).ok());
  cli::ConfigNode back;
  std::string yaml = cli::EmitYaml(tree);
  INFO(yaml);
  REQUIRE(cli::ParseYaml(yaml, &back).ok());
  CHECK(cli::Flatten(back) == flat);
  REQUIRE(cli::ParseJsonConfig(cli::EmitJson(tree), &back).ok());
  CHECK(cli::Flatten(back) == flat);
  cli::ConfigNode bad;
  CHECK(!cli::Unflatten({{"a", "1"}, {"a/b", "2"}}, &bad).ok());
}

TEST_CASE("File formats are chosen by extension", "[unit]") {
  // Goal: known extensions map to their parser; others are rejected.
  cli::ConfigFormat f;
  REQUIRE(cli::ConfigFormatFromPath("dir/app.yml", &f));
  CHECK(f == cli::ConfigFormat::kYaml);
  REQUIRE(cli::ConfigFormatFromPath(".env", &f));
  CHECK(f == cli::ConfigFormat::kEnv);
  REQUIRE(cli::ConfigFormatFromPath("x.properties", &f));
  CHECK(f == cli::ConfigFormat::kProperties);
  CHECK(!cli::ConfigFormatFromPath("x.txt", &f));
}

}  // namespace
