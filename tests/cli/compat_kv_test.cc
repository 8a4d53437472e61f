// etcdctl vs kvctl, same arguments, on two identically prepared servers: KV commands (get,
// put, del, txn, watch, compaction) and global-flag / error behaviour.
#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/cli/compat_harness.h"
#include "tests/support/process.h"

namespace {

using clitest::RunResult;
using clitest::TwinServers;

void PrepareKeys(TwinServers& s) {
  s.Prepare({"put", "foo", "bar"});
  s.Prepare({"put", "foo2", "b z"});
  s.Prepare({"put", "fop", "1"});
  s.Prepare({"put", "zeta", "last"});
  s.Prepare({"put", "foo", "bar2"});
  s.Prepare({"put", "\xff\xfe", "bin"});
}

CLI_COMPAT_TEST(GetCommand, "kvctl get matches etcdctl for every flag and format") {
  // Goal: byte-identical stdout and exit codes of `get` across flags, formats and errors.
  TwinServers s(kind);
  PrepareKeys(s);
  const std::vector<std::vector<std::string>> cases = {
      {"get", "foo"},
      {"get", "foo", "-w", "json"},
      {"get", "foo", "-w", "table"},
      {"get", "foo", "--hex"},
      {"get", "--prefix", "fo"},
      {"get", "--prefix", "fo", "-w", "json"},
      {"get", "--prefix", ""},
      {"get", "--from-key", "fop"},
      {"get", "--from-key", "", "--keys-only"},
      {"get", "foo", "zeta"},
      {"get", "--prefix", "f", "--limit", "2", "-w", "json"},
      {"get", "--prefix", "f", "--sort-by=VALUE", "--order=DESCEND"},
      {"get", "--prefix", "f", "--sort-by=MODIFY"},
      {"get", "--prefix", "f", "--sort-by=CREATE", "--order=ascend"},
      {"get", "--prefix", "f", "--sort-by=VERSION", "--order=DESCEND", "-w", "json"},
      {"get", "--prefix", "f", "--order=DESCEND"},
      {"get", "foo", "--rev=2"},
      {"get", "foo", "--rev", "2", "-w", "json"},
      {"get", "foo", "--print-value-only"},
      {"get", "--prefix", "f", "--keys-only", "--hex"},
      {"get", "foo", "--consistency=s"},
      {"get", "missing"},
      {"get", "missing", "-w", "json"},
      {"get"},
      {"get", "a", "b", "c"},
      {"get", "--prefix", "--from-key", "a"},
      {"get", "--prefix", "a", "b"},
      {"get", "foo", "--order=BAD"},
      {"get", "foo", "--sort-by=BAD"},
      {"get", "foo", "--consistency=x"},
      {"get", "foo", "--rev=1000"},
      {"get", "foo", "-w", "nope"},
  };
  for (const auto& args : cases) s.Compare(args);
  // etcdctl also prints cobra's usage on stdout for an unknown flag; kvctl only the error.
  RunResult e = s.Etcdctl({"get", "foo", "--bogus"});
  RunResult k = s.Kvctl({"get", "foo", "--bogus"});
  CHECK(k.exit_code == e.exit_code);
  CHECK(k.err == "Error: unknown flag: --bogus\n");
}

CLI_COMPAT_TEST(PutDelCommands, "kvctl put and del match etcdctl") {
  // Goal: same output and resulting state for put/del flags, stdin values and errors.
  TwinServers s(kind);
  PrepareKeys(s);
  const std::vector<std::vector<std::string>> cases = {
      {"put", "k1", "v1"},
      {"put", "k1", "v2", "--prev-kv"},
      {"put", "k1", "v3", "--prev-kv", "-w", "json"},
      {"put", "k1", "--ignore-value"},
      {"put", "k1", "x", "--ignore-value"},
      {"put", "k1", "v4", "--lease=zz"},
      {"put", "k1", "v4", "--lease=1234"},
      {"put", "k1", "v4", "--ignore-lease"},
      {"put"},
      {"put", "k2", "-w", "table"},
      {"del", "k1", "--prev-kv"},
      {"del", "k1"},
      {"del", "--prefix", "fo", "--prev-kv", "-w", "json"},
      {"del", "--from-key", "z"},
      {"del", "a", "b", "c"},
      {"del", "--prefix", "--from-key", "a"},
      {"del", "x", "-w", "table"},
      {"get", "--from-key", "", "-w", "json"},
  };
  for (const auto& args : cases) s.Compare(args);
  s.Compare({"put", "from-stdin"}, "value from stdin\n");
  s.Compare({"put", "from-stdin-empty"}, "");
  s.Compare({"get", "from-stdin", "-w", "json"});
}

CLI_COMPAT_TEST(TxnCommand, "kvctl txn matches etcdctl, including syntax errors") {
  // Goal: txn scripts (compares, success, failure) and malformed scripts give etcdctl's
  // stdout and exit codes.
  TwinServers s(kind);
  PrepareKeys(s);
  const std::vector<std::string> scripts = {
      "mod(\"foo\") > \"0\"\nvalue(\"foo\") = \"bar2\"\n\nput foo y\nget foo\ndel fop\n\nput "
      "bar z\n\n",
      "value(\"foo\") = \"nope\"\n\nput a b\n\nput foo \"q r\"\nget --prefix f --limit 1\n"
      "del --prefix zz\nput --prev-kv foo w\n\n",
      "ver(\"foo\") > \"1\"\nc(\"foo\") != \"0\"\ncreate(\"nothing\") = \"0\"\n\nget foo\n\n\n",
      "\n\nput only-success 1\n\n\n",
      "bad(\"foo\") > \"0\"\n\n\n",
      "value(\"foo\") = nope\n\n\n",
      "\n\nputt a b\n\n",
      "ver(foo) = \"3\"\n\n\n",
      "mod(\"foo\") > \"0\"\n\nput foo y\n",
      "ver(\"foo\") = \"x\"\n\n\n",
  };
  for (const auto& script : scripts) {
    s.Compare({"txn"}, script);
    s.Compare({"txn", "-w", "json"}, script);
  }
  s.Compare({"txn", "-i"}, "value(\"foo\") = \"w\"\n\nget foo\n\n\n");
  s.Compare({"get", "--from-key", "", "-w", "json"});
}

// Starts a long-running command (watch, lock, elect) with both tools, runs `during`, then
// stops both with SIGTERM and compares what they printed.
void CompareBackground(TwinServers& s, const std::vector<std::string>& args,
                       const std::function<void()>& during) {
  std::vector<std::unique_ptr<kvtest::Process>> procs;
  std::vector<std::filesystem::path> outs;
  int i = 0;
  for (const auto& [tool, ep] :
       {std::pair<std::string, std::string>{"/usr/bin/etcdctl", s.endpoint_a()},
        {KVCTL_PATH, s.endpoint_b()}}) {
    auto out = s.dir() / ("watch" + std::to_string(i++) + ".out");
    std::string cmd = "exec " + tool + " --endpoints=" + ep;
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " >" + out.string() + " 2>/dev/null </dev/null";
    kvtest::ProcessOptions o;
    o.argv = {"/bin/sh", "-c", cmd};
    o.env_unset_prefixes = {"ETCDCTL_"};
    o.log_path = out.string() + ".log";
    procs.push_back(std::make_unique<kvtest::Process>(o));
    outs.push_back(out);
  }
  // The watchers have no readiness signal; writes made before they start are replayed with
  // --rev, so the test uses --rev and waits only to let them connect.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  during();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::vector<std::string> texts;
  for (std::size_t k = 0; k < procs.size(); ++k) {
    procs[k]->Stop(std::chrono::milliseconds(2000));
    std::ifstream in(outs[k]);
    std::stringstream ss;
    ss << in.rdbuf();
    texts.push_back(clitest::Normalize(ss.str()));
  }
  INFO("command: " << args.front() << " " << args.back());
  CHECK(!texts[0].empty());
  CHECK(texts[1] == texts[0]);
}

void CompareWatch(TwinServers& s, const std::vector<std::string>& args) {
  CompareBackground(s, args, [&s] {
    s.Prepare({"put", "w/a", "1"});
    s.Prepare({"put", "w/b", "2"});
    s.Prepare({"del", "w/a"});
    s.Prepare({"put", "w/a", "3"});
  });
}

CLI_COMPAT_TEST(LockElectCommands, "kvctl lock and elect match etcdctl") {
  // Goal: lock with an exec command (and its failure), a held election, an observer that
  // sees a new leader, and argument errors.
  TwinServers s(kind);
  s.Compare({"lock", "l1", "echo", "hi"});
  s.Compare({"lock", "l1", "false"});
  s.Compare({"lock"});
  s.Compare({"elect"});
  s.Compare({"elect", "e", "a", "b"});
  s.Compare({"elect", "-l", "e", "prop"});
  s.Compare({"elect", "e"});
  CompareBackground(s, {"elect", "e1", "proposal"}, [] {});
  CompareBackground(s, {"lock", "l2"}, [] {});
  CompareBackground(s, {"elect", "-l", "e2"}, [&s] { s.Prepare({"put", "e2/x", "leader"}); });
  s.Compare({"get", "--prefix", "l"});
}

CLI_COMPAT_TEST(WatchCommand, "kvctl watch matches etcdctl, and exits 5 on a compaction cancel") {
  // Goal: watch event output in simple/json formats with --prefix/--prev-kv, and the
  // compacted-revision cancel path (message and exit code 5).
  TwinServers s(kind);
  PrepareKeys(s);
  CompareWatch(s, {"watch", "--prefix", "w/", "--prev-kv"});
  CompareWatch(s, {"watch", "w/a", "-w", "json"});
  CompareWatch(s, {"watch", "w/a", "w/c", "--rev", "1"});
  s.Compare({"compaction", "8"});
  s.Compare({"compaction", "8"});
  s.Compare({"compaction", "x"});
  s.Compare({"compaction"});
  s.Compare({"compaction", "--physical", "9"});
  RunResult k = s.Compare({"watch", "foo", "--rev", "2"});
  CHECK(k.exit_code == 5);
  CHECK(k.err.find("watch was canceled (etcdserver: mvcc: required revision has been "
                   "compacted)") != std::string::npos);
  s.Compare({"watch"});
  s.Compare({"watch", "-i"}, "watch foo\n");
}

CLI_COMPAT_TEST(GlobalFlags,
                "kvctl global flags, environment and connection errors match etcdctl") {
  // Goal: ETCDCTL_* variables, their conflict with flags, and unreachable endpoints.
  TwinServers s(kind);
  PrepareKeys(s);
  for (const std::string& tool : {std::string("/usr/bin/etcdctl"), std::string(KVCTL_PATH)}) {
    const std::string& ep = tool == KVCTL_PATH ? s.endpoint_b() : s.endpoint_a();
    RunResult env = clitest::RunTool(tool, {"get", "foo"}, "", s.dir(), 30000,
                                     {{"ETCDCTL_ENDPOINTS", ep}, {"ETCDCTL_WRITE_OUT", "json"}});
    CHECK(env.exit_code == 0);
    CHECK(env.out.find("\"kvs\":[{\"key\":\"Zm9v\"") != std::string::npos);
    RunResult conflict = clitest::RunTool(tool, {"--endpoints=" + ep, "get", "foo"}, "", s.dir(),
                                          30000, {{"ETCDCTL_ENDPOINTS", ep}});
    CHECK(conflict.exit_code == 1);
    CHECK(conflict.out.empty());
    RunResult dead = clitest::RunTool(
        tool, {"--endpoints=127.0.0.1:1", "--command-timeout=1s", "get", "foo"}, "", s.dir());
    CHECK(dead.exit_code == 1);
    CHECK(dead.err.find("Error: context deadline exceeded") != std::string::npos);
  }
}

}  // namespace
