// Unit tests of the differential script's parser and normalizer (no servers).
#include "tests/compat/script.h"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using compattest::NormalizeOutput;
using compattest::ParseScript;
using compattest::ScriptLine;
using compattest::SplitArgs;

ScriptLine Plain() { return ScriptLine{}; }

}  // namespace

TEST_CASE("script parser reads tags, stdin, directives and skips comments", "[unit][difftest]") {
  // Goal: every part of the line format lands in the right field, with line numbers.
  const auto lines = ParseScript(
      "# comment\n\n"
      "put a b\n"
      "[sort lines=3 set=L:lease\\s(\\w+)] watch x\n"
      "txn -i <<< \"value(\\\"a\\\") = \\\"b\\\"\\n\\nput a c\\n\"\n"
      "[bg=w lines=1] watch y\n"
      "@wait w\n");
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].lineno == 3);
  CHECK(lines[0].command == "put a b");
  CHECK(lines[0].tags.empty());
  CHECK(lines[1].Has("sort"));
  CHECK(lines[1].Get("lines") == "3");
  CHECK(lines[1].Get("set") == "L:lease\\s(\\w+)");
  CHECK(lines[1].command == "watch x");
  CHECK(lines[2].command == "txn -i");
  CHECK(lines[2].stdin_text == "value(\"a\") = \"b\"\n\nput a c\n");
  CHECK(lines[3].Get("bg") == "w");
  CHECK(lines[4].wait_job == "w");
  CHECK(lines[4].lineno == 7);
}

TEST_CASE("script parser rejects malformed lines", "[unit][difftest]") {
  // Goal: typos in the script fail at parse time with the line number, not mid-run.
  CHECK_THROWS_WITH(ParseScript("put a\n[bogus] get a\n"),
                    Catch::Contains(":2:") && Catch::Contains("unknown tag bogus"));
  CHECK_THROWS_AS(ParseScript("[sort get a\n"), std::invalid_argument);
  CHECK_THROWS_AS(ParseScript("[bg=x] watch a\n"), std::invalid_argument);
  CHECK_THROWS_AS(ParseScript("txn <<< no-quotes\n"), std::invalid_argument);
  CHECK_THROWS_AS(ParseScript("put 'a b\n"), std::invalid_argument);
}

TEST_CASE("SplitArgs splits like sh words", "[unit][difftest]") {
  // Goal: quotes group words, empty quotes give an empty argument, escapes work in "".
  CHECK(SplitArgs("put  'a b' \"c \\\" d\" ''") ==
        std::vector<std::string>{"put", "a b", "c \" d", ""});
  CHECK(SplitArgs("get --prefix=x") == std::vector<std::string>{"get", "--prefix=x"});
}

TEST_CASE("normalization hides cluster identity but keeps revisions and TTL relations",
          "[unit][difftest]") {
  // Goal: IDs, ports, terms and durations are replaced; revisions stay; a remaining TTL equal
  // to the granted one stays distinguishable from a lower one; etcd's JSON logs are dropped.
  const ScriptLine plain = Plain();
  const std::string a = NormalizeOutput(
      plain,
      "{\"cluster_id\":123,\"member_id\":456,\"revision\":7,\"raft_term\":2}\n"
      "lease 694d7b8b2d6f0f2a granted with TTL(100s), remaining(97s)\n"
      "http://127.0.0.1:2379 is healthy: successfully committed proposal: took = 2.1ms\n",
      "{\"level\":\"warn\",\"msg\":\"retrying\"}\nError: x\n");
  const std::string b = NormalizeOutput(
      plain,
      "{\"cluster_id\":999,\"member_id\":1,\"revision\":7,\"raft_term\":5}\n"
      "lease 1111222233334444 granted with TTL(100s), remaining(98s)\n"
      "http://127.0.0.1:40000 is healthy: successfully committed proposal: took = 13.5µs\n",
      "Error: x\n");
  CHECK(a == b);
  CHECK(a.find("\"revision\":7") != std::string::npos);
  const std::string full = NormalizeOutput(
      plain, "lease 1111222233334444 granted with TTL(100s), remaining(100s)\n", "");
  CHECK(full.find("remaining(EQs)") != std::string::npos);
  CHECK(NormalizeOutput(plain, "\"revision\":8", "") !=
        NormalizeOutput(plain, "\"revision\":7", ""));
}

TEST_CASE("normalization tags rev, nums and sort, and sorted lease key lists", "[unit][difftest]") {
  // Goal: each tag widens normalization only where asked; attached-key order never matters.
  ScriptLine rev;
  rev.tags["rev"] = "";
  CHECK(NormalizeOutput(rev, "{\"revision\":8,\"mod_revision\":3}", "") ==
        NormalizeOutput(rev, "{\"revision\":9,\"mod_revision\":4}", ""));
  ScriptLine nums;
  nums.tags["nums"] = "";
  CHECK(NormalizeOutput(nums, "a, 12, 13\n", "") == NormalizeOutput(nums, "a, 1, 2\n", ""));
  ScriptLine sorted;
  sorted.tags["sort"] = "";
  CHECK(NormalizeOutput(sorted, "b\na\n", "") == NormalizeOutput(sorted, "a\nb\n", ""));
  CHECK(NormalizeOutput(Plain(), "b\na\n", "") != NormalizeOutput(Plain(), "a\nb\n", ""));
  CHECK(NormalizeOutput(Plain(), "attached keys([k2 k1])\n\"keys\":[\"b\",\"a\"]", "") ==
        NormalizeOutput(Plain(), "attached keys([k1 k2])\n\"keys\":[\"a\",\"b\"]", ""));
}
