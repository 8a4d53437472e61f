// Unit tests of the txn script parser (etcdctl's syntax) and of argument errors that need no
// server.
#include "cli/txn_parser.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>

#include "cli/commands.h"

namespace {

TEST_CASE("Argify splits words, quoted strings and escapes like etcdctl", "[unit]") {
  // Goal: the op-line tokenizer handles quotes and Go escapes.
  auto words = cli::Argify(R"(put "a b" 'c d' e\n "x\ty" --lease=1)");
  REQUIRE(words.size() == 6);
  CHECK(words[1] == "a b");
  CHECK(words[2] == "c d");
  CHECK(words[3] == "e\\n");
  CHECK(words[4] == "x\ty");
  CHECK(words[5] == "--lease=1");
}

TEST_CASE("ParseTxnScript builds compares and both op lists", "[unit]") {
  // Goal: a full script maps to the TxnRequest etcdctl would send.
  std::istringstream in(
      "mod(\"k\") > \"5\"\nval(\"k\") != \"x y\"\nver(\"k\") < \"3\"\nc(\"k\") = \"0\"\n\n"
      "put k v --prev-kv\nget --prefix p --limit=2\n\ndel --from-key z\n\n");
  etcdserverpb::TxnRequest req;
  REQUIRE(cli::ParseTxnScript(in, nullptr, &req).ok());
  REQUIRE(req.compare_size() == 4);
  CHECK(req.compare(0).target() == etcdserverpb::Compare::MOD);
  CHECK(req.compare(0).result() == etcdserverpb::Compare::GREATER);
  CHECK(req.compare(0).mod_revision() == 5);
  CHECK(req.compare(1).value() == "x y");
  CHECK(req.compare(1).result() == etcdserverpb::Compare::NOT_EQUAL);
  CHECK(req.compare(2).version() == 3);
  CHECK(req.compare(3).target() == etcdserverpb::Compare::CREATE);
  REQUIRE(req.success_size() == 2);
  CHECK(req.success(0).request_put().key() == "k");
  CHECK(req.success(0).request_put().prev_kv());
  CHECK(req.success(1).request_range().range_end() == "q");
  CHECK(req.success(1).request_range().limit() == 2);
  REQUIRE(req.failure_size() == 1);
  CHECK(req.failure(0).request_delete_range().range_end() == std::string(1, '\0'));
}

TEST_CASE("ParseTxnScript errors name the line with etcdctl's message", "[unit]") {
  // Goal: each malformed input yields exit code 3 and "line N: <etcdctl message>".
  struct Case {
    const char* script;
    const char* message;
    int code;
  };
  const Case cases[] = {
      {"bad(\"k\") > \"0\"\n\n\n",
       "line 1: malformed comparison: bad(\"k\") > \"0\" (unknown target bad)",
       cli::kExitInvalidInput},
      {"mod(\"k\") > \"0\"\nvalue(\"k\") = nope\n\n\n",
       "line 2: malformed comparison: value(\"k\") = nope; got value(\"k\") = \"\"",
       cli::kExitInvalidInput},
      {"\n\nputt a b\n\n", "line 3: invalid txn request: putt a b", cli::kExitInvalidInput},
      {"\n\nput a\n\n", "line 3: put command needs 1 argument and input from stdin or 2 arguments",
       cli::kExitBadArgs},
      {"ver(\"k\") = \"x\"\n\n\n", "line 1: invalid txn compare request: ver(\"k\") = \"x\"",
       cli::kExitInvalidInput},
      {"ver(\"k\") ~ \"1\"\n\n\n",
       "line 1: malformed comparison: ver(\"k\") ~ \"1\" (unknown op ~)", cli::kExitInvalidInput},
      {"\n\nput a b\n", "line 4: EOF (each section must end with an empty line)",
       cli::kExitInvalidInput},
      {"\n\nget --bogus a\n\n", "line 3: invalid txn request: get --bogus a",
       cli::kExitInvalidInput},
  };
  for (const Case& c : cases) {
    std::istringstream in(c.script);
    etcdserverpb::TxnRequest req;
    cli::Status s = cli::ParseTxnScript(in, nullptr, &req);
    INFO(c.script);
    CHECK(s.exit_code == c.code);
    CHECK(s.message == c.message);
  }
}

TEST_CASE("Interactive txn prints etcdctl's prompts", "[unit]") {
  // Goal: -i writes the three section prompts in order.
  std::istringstream in("\n\n\n");
  std::ostringstream prompts;
  etcdserverpb::TxnRequest req;
  REQUIRE(cli::ParseTxnScript(in, &prompts, &req).ok());
  CHECK(prompts.str() ==
        "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n");
}

int Run(const std::vector<std::string>& args, std::string* out, std::string* err,
        const std::string& in = "") {
  std::istringstream sin(in);
  std::ostringstream sout;
  std::ostringstream serr;
  cli::Context ctx;
  ctx.in = &sin;
  ctx.out = &sout;
  ctx.err = &serr;
  int code = cli::RunKvctl(args, ctx);
  *out = sout.str();
  *err = serr.str();
  return code;
}

TEST_CASE("Argument errors exit like etcdctl without contacting a server", "[unit]") {
  // Goal: bad arguments are reported with etcdctl's text and exit code before any RPC.
  std::string out;
  std::string err;
  CHECK(Run({"get"}, &out, &err) == 128);
  CHECK(err ==
        "Error: get command needs one argument as key and an optional argument as "
        "range_end\n");
  CHECK(Run({"put"}, &out, &err) == 128);
  CHECK(Run({"get", "k", "--bogus"}, &out, &err) == 1);
  CHECK(err == "Error: unknown flag: --bogus\n");
  CHECK(Run({"get", "k", "-w", "xml"}, &out, &err) == 4);
  CHECK(err == "Error: unsupported output format\n");
  CHECK(Run({"get", "k", "-w", "fields"}, &out, &err) == 4);
  CHECK(Run({"lock"}, &out, &err) == 128);
  CHECK(Run({"elect", "-l", "e", "proposal"}, &out, &err) == 128);
  CHECK(err == "Error: proposal given but -l is set\n");
  CHECK(Run({"lease", "revoke", "xyz"}, &out, &err) == 128);
  CHECK(Run({"txn"}, &out, &err, "bad(\"k\") = \"1\"\n\n\n") == 3);
  CHECK(Run({"completion", "fish"}, &out, &err) == 128);
  CHECK(Run({"--dial-timeout=abc", "get", "k"}, &out, &err) == 1);
  CHECK(Run({"get", "--help"}, &out, &err) == 0);
  CHECK(out.find("Example:") != std::string::npos);
}

TEST_CASE("Every command's --help shows a usage line and an example", "[unit]") {
  // Goal: each command path of the tree (parents and leaves) documents itself with an example
  // that runs it, and --help exits 0 without contacting a server.
  const std::vector<std::vector<std::string>> paths = cli::CommandPaths();
  REQUIRE(paths.size() > 30);
  std::size_t checked = 0;
  for (const auto& path : paths) {
    std::vector<std::string> args = path;
    args.push_back("--help");
    std::string out;
    std::string err;
    std::string joined;
    for (const auto& p : path) joined += " " + p;
    INFO("kvctl" << joined << " --help\n" << out << err);
    CHECK(Run(args, &out, &err) == 0);
    CHECK(err.empty());
    // The help shown is this command's own: its usage names the command.
    CHECK(out.find("Usage:") != std::string::npos);
    CHECK(out.find(path.back()) != std::string::npos);
    const std::size_t example = out.find("Example:\n  ");
    REQUIRE(example != std::string::npos);
    const std::string line = out.substr(example + 11, out.find('\n', example + 11) - example - 11);
    CHECK(line.find("kvctl") != std::string::npos);
    CHECK(line.find(path.back()) != std::string::npos);
    ++checked;
  }
  CHECK(checked == paths.size());
  // Spot-check that nested commands are in the list.
  CHECK(std::find(paths.begin(), paths.end(), std::vector<std::string>{"lease", "keep-alive"}) !=
        paths.end());
  CHECK(std::find(paths.begin(), paths.end(), std::vector<std::string>{"snapshot", "save"}) !=
        paths.end());
}

TEST_CASE("Completion scripts cover every subcommand and flag", "[unit]") {
  // Goal: the generated bash/zsh scripts list nested commands and their flags.
  std::string out;
  std::string err;
  REQUIRE(Run({"completion", "bash"}, &out, &err) == 0);
  CHECK(out.find("complete -F _kvctl kvctl") != std::string::npos);
  CHECK(
      out.find("\"lease keep-alive\" | \"lease keep-alive \"*) opts=\"--help --once --endpoints") !=
      std::string::npos);
  CHECK(out.find("--print-value-only") != std::string::npos);
  CHECK(out.find("rollback") != std::string::npos);
  REQUIRE(Run({"completion", "zsh"}, &out, &err) == 0);
  CHECK(out.rfind("#compdef kvctl\n", 0) == 0);
}

}  // namespace
