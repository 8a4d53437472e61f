// Unit tests of the unified line diff and the structural (path) diff.
#include "cli/diff.h"

#include <catch2/catch.hpp>

namespace {

TEST_CASE("UnifiedDiff produces diff -u hunks", "[unit]") {
  // Goal: exact hunk headers and context for a change, an insertion and far-apart edits.
  CHECK(cli::UnifiedDiff("a\nb\nc\n", "a\nb\nc\n", "x", "y").empty());
  CHECK(cli::UnifiedDiff("a\nb\nc\n", "a\nB\nc\n", "x", "y") ==
        "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
  CHECK(cli::UnifiedDiff("", "new\n", "x", "y") == "--- x\n+++ y\n@@ -0,0 +1 @@\n+new\n");
  std::string a;
  std::string b;
  for (int i = 1; i <= 20; ++i) {
    a += std::to_string(i) + "\n";
    b += (i == 2 ? "two" : i == 18 ? "eighteen" : std::to_string(i)) + std::string("\n");
  }
  CHECK(cli::UnifiedDiff(a, b, "x", "y") ==
        "--- x\n+++ y\n@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n 4\n 5\n"
        "@@ -15,6 +15,6 @@\n 15\n 16\n 17\n-18\n+eighteen\n 19\n 20\n");
}

TEST_CASE("StructuralDiff lists changed, added and removed paths", "[unit]") {
  // Goal: JSON and YAML documents compare by path regardless of formatting.
  cli::ConfigNode a;
  cli::ConfigNode b;
  REQUIRE(cli::ParseStructured("{\"port\": 80, \"tls\": {\"on\": false}, \"old\": 1}", &a));
  REQUIRE(cli::ParseStructured("port: 81\ntls:\n  on: false\nnew: [x]\n", &b));
  CHECK(cli::FormatPathChanges(cli::StructuralDiff(a, b)) ==
        "+ /new/0: x\n- /old: 1\n~ /port: 80 -> 81\n");
  CHECK(cli::StructuralDiff(a, a).empty());
}

TEST_CASE("ParseStructured rejects plain text and scalars", "[unit]") {
  // Goal: only maps and lists count as structured values.
  cli::ConfigNode n;
  CHECK(!cli::ParseStructured("just a line of text", &n));
  CHECK(!cli::ParseStructured("42", &n));
  CHECK(!cli::ParseStructured("{broken", &n));
  CHECK(cli::ParseStructured("- a\n- b\n", &n));
}

}  // namespace
