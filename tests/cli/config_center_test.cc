// The commands etcdctl lacks, against a real server: history, diff, rollback (including a
// concurrent change that must abort it), import/export round trips and dry runs.
#include <catch2/catch.hpp>
#include <fstream>

#include "cli/client.h"
#include "cli/kv_read.h"
#include "cli/rollback.h"
#include "tests/cli/compat_harness.h"

namespace {

using clitest::RunResult;

using Server = clitest::SingleServer;

CLI_COMPAT_TEST(HistoryCommand, "kvctl history lists every retained version oldest first") {
  // Goal: history shows every retained change in order, with deletes as tombstones and the
  // versions of a life that ended in a delete, for a live and for a deleted key.
  Server s(kind);
  s.Ok({"put", "other", "x"});  // rev 2
  s.Ok({"put", "k", "one"});    // rev 3
  s.Ok({"put", "other", "y"});  // rev 4
  s.Ok({"put", "k", "two"});    // rev 5
  s.Ok({"put", "k", "three"});  // rev 6
  RunResult r = s.Kvctl({"history", "k"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out ==
        "revision 3 (version 1, create_revision 3, mod_revision 3)\none\n"
        "revision 5 (version 2, create_revision 3, mod_revision 5)\ntwo\n"
        "revision 6 (version 3, create_revision 3, mod_revision 6)\nthree\n");
  RunResult j = s.Kvctl({"history", "k", "-w", "json"});
  CHECK(j.out.find("{\"revision\":5,\"version\":2,\"create_revision\":3,\"mod_revision\":5,"
                   "\"lease\":0,\"value\":\"two\"}") != std::string::npos);
  s.Ok({"del", "k"});             // rev 7
  s.Ok({"put", "other", "z"});    // rev 8
  s.Ok({"put", "k", "reborn"});   // rev 9
  s.Ok({"put", "k", "reborn2"});  // rev 10
  const std::string first_life =
      "revision 3 (version 1, create_revision 3, mod_revision 3)\none\n"
      "revision 5 (version 2, create_revision 3, mod_revision 5)\ntwo\n"
      "revision 6 (version 3, create_revision 3, mod_revision 6)\nthree\n"
      "revision 7 (deleted)\n";
  const std::string second_life =
      "revision 9 (version 1, create_revision 9, mod_revision 9)\nreborn\n"
      "revision 10 (version 2, create_revision 9, mod_revision 10)\nreborn2\n";
  RunResult reborn = s.Kvctl({"history", "k"});
  CHECK(reborn.exit_code == 0);
  CHECK(reborn.out == first_life + second_life);
  CHECK(reborn.err.empty());
  RunResult last2 = s.Kvctl({"history", "k", "--limit", "2"});
  CHECK(last2.out == second_life);
  RunResult table = s.Kvctl({"history", "k", "-w", "table"});
  CHECK(table.out.find("|        7 |       - |               - | (deleted) |") !=
        std::string::npos);
  RunResult tj = s.Kvctl({"history", "k", "-w", "json"});
  CHECK(tj.out.find("{\"revision\":7,\"deleted\":true}") != std::string::npos);
  // Deleted now: the replay must still end (at the current revision) and show the tombstone.
  s.Ok({"del", "k"});           // rev 11
  s.Ok({"put", "other", "w"});  // rev 12
  RunResult gone = s.Kvctl({"history", "k"});
  CHECK(gone.exit_code == 0);
  CHECK(gone.out == first_life + second_life + "revision 11 (deleted)\n");
  s.Ok({"compaction", "5"});
  RunResult c = s.Kvctl({"history", "k"});
  CHECK(c.exit_code == 0);
  CHECK(c.out.find("one") == std::string::npos);
  CHECK(c.out.rfind("revision 5 (version 2, create_revision 3, mod_revision 5)\ntwo\n", 0) == 0);
  CHECK(c.out.find("revision 11 (deleted)") != std::string::npos);
  CHECK(c.err == "older revisions of k have been compacted (compact revision 5)\n");
  RunResult missing = s.Kvctl({"history", "nope"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("Error: key \"nope\" not found\n") != std::string::npos);
}

CLI_COMPAT_TEST(DiffCommand, "kvctl diff shows line diffs and structural JSON/YAML diffs") {
  // Goal: text values get a unified diff, JSON/YAML values a list of changed paths.
  Server s(kind);
  s.Ok({"put", "t", "a\nb\nc\n"});                                             // rev 2
  s.Ok({"put", "t", "a\nB\nc\n"});                                             // rev 3
  s.Ok({"put", "j", "{\"port\": 80, \"tls\": {\"on\": false}}"});              // rev 4
  s.Ok({"put", "j", "{\"port\": 81, \"tls\": {\"on\": false}, \"x\": [1]}"});  // rev 5
  s.Ok({"put", "y", "server:\n  port: 80\n  hosts: [a, b]\n"});                // rev 6
  s.Ok({"put", "y", "server:\n  port: 80\n  hosts: [a]\ndebug: true\n"});      // rev 7
  RunResult t = s.Kvctl({"diff", "t", "2", "3"});
  CHECK(t.exit_code == 0);
  CHECK(t.out == "--- t@2\n+++ t@3\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
  RunResult j = s.Kvctl({"diff", "j", "4"});
  CHECK(j.out == "--- j@4\n+++ j@7 (latest)\n~ /port: 80 -> 81\n+ /x/0: 1\n");
  RunResult y = s.Kvctl({"diff", "y", "6", "7"});
  CHECK(y.out == "--- y@6\n+++ y@7\n+ /debug: true\n- /server/hosts/1: b\n");
  RunResult same = s.Kvctl({"diff", "t", "3", "3"});
  CHECK(same.out.empty());
  CHECK(s.Kvctl({"diff", "t"}).exit_code == 128);
  CHECK(s.Kvctl({"diff", "t", "x"}).exit_code == 128);
}

CLI_COMPAT_TEST(RollbackCommand, "kvctl rollback restores old values in one guarded transaction") {
  // Goal: rollback of a key and of a prefix, --dry-run writes nothing, and a txn whose
  // guard fails (a concurrent change) writes nothing.
  Server s(kind);
  s.Ok({"put", "app/a", "1"});    // rev 2
  s.Ok({"put", "app/b", "1"});    // rev 3
  s.Ok({"put", "app/a", "2"});    // rev 4
  s.Ok({"put", "app/c", "new"});  // rev 5
  s.Ok({"del", "app/b"});         // rev 6
  RunResult dry = s.Kvctl({"rollback", "app/", "--prefix", "--to-rev", "3", "--dry-run"});
  CHECK(dry.exit_code == 0);
  CHECK(dry.out.find("dry run: 3 key(s)") != std::string::npos);
  CHECK(s.Kvctl({"get", "app/a", "--print-value-only"}).out == "2\n");
  RunResult done = s.Kvctl({"rollback", "app/", "--prefix", "--to-rev", "3"});
  CHECK(done.exit_code == 0);
  CHECK(done.out.find("rolled back 3 key(s) to revision 3") != std::string::npos);
  CHECK(s.Kvctl({"get", "--prefix", "app/"}).out == "app/a\n1\napp/b\n1\n");
  RunResult single = s.Kvctl({"rollback", "app/a", "--to-rev", "4"});
  CHECK(single.exit_code == 0);
  CHECK(s.Kvctl({"get", "app/a", "--print-value-only"}).out == "2\n");
  RunResult nothing = s.Kvctl({"rollback", "app/a", "--to-rev", "4"});
  CHECK(nothing.out.find("nothing to roll back") != std::string::npos);
  CHECK(s.Kvctl({"rollback", "app/a", "--to-rev", "1000"}).exit_code == 1);
  CHECK(s.Kvctl({"rollback", "app/a"}).exit_code != 0);
}

CLI_COMPAT_TEST(RollbackGuard, "kvctl rollback's guard rejects a concurrent change") {
  // Goal: the txn rollback builds pins every touched key's mod revision, so a write between
  // its reads and its commit makes the whole txn fail and nothing is written.
  Server s(kind);
  s.Ok({"put", "g/a", "old-a"});  // rev 2
  s.Ok({"put", "g/b", "old-b"});  // rev 3
  s.Ok({"put", "g/a", "new-a"});  // rev 4
  s.Ok({"put", "g/b", "new-b"});  // rev 5
  auto client =
      cli::Client::Dial({s.cluster->endpoint(0)}, std::chrono::seconds(2), std::chrono::seconds(5));
  std::map<std::string, mvccpb::KeyValue> current;
  std::map<std::string, mvccpb::KeyValue> target;
  REQUIRE(cli::GetPrefixAt(*client, "g/", 0, 100, &current).ok());
  REQUIRE(cli::GetPrefixAt(*client, "g/", 3, 100, &target).ok());
  std::string report;
  etcdserverpb::TxnRequest txn = cli::BuildRollbackTxn(current, target, 3, &report);
  REQUIRE(txn.compare_size() == 2);
  CHECK(txn.compare(0).mod_revision() == 4);
  CHECK(txn.compare(1).mod_revision() == 5);
  s.Ok({"put", "g/b", "concurrent"});  // rev 6: lands between read and commit
  etcdserverpb::TxnResponse resp;
  auto rpc = client->NewContext();
  REQUIRE(client->kv().Txn(rpc.get(), txn, &resp).ok());
  CHECK_FALSE(resp.succeeded());
  CHECK(s.Kvctl({"get", "--prefix", "g/"}).out == "g/a\nnew-a\ng/b\nconcurrent\n");
  // Without the interference the same rollback commits both keys at once.
  RunResult fresh = s.Kvctl({"rollback", "g/", "--prefix", "--to-rev", "3"});
  CHECK(fresh.exit_code == 0);
  CHECK(s.Kvctl({"get", "--prefix", "g/"}).out == "g/a\nold-a\ng/b\nold-b\n");
}

CLI_COMPAT_TEST(ImportExportFormats, "kvctl import and export round-trip every file format") {
  // Goal: YAML/JSON/.properties/.env import into P/..., export yaml|json, re-import of the
  // export changes nothing; malformed files name the line and write nothing.
  Server s(kind);
  s.Write("app.yaml",
          "# service config\nserver:\n  port: 8080\n  host: \"0.0.0.0\"\n  tags:\n    - a\n"
          "    - 'b c'\nfeature: {beta: true, ratio: 0.5}\nempty: ''\n");
  RunResult dry = s.Kvctl({"import", "app.yaml", "--prefix", "/cfg", "--dry-run"});
  REQUIRE(dry.exit_code == 0);
  CHECK(dry.out.find("+ /cfg/server/port = 8080") != std::string::npos);
  CHECK(s.Kvctl({"get", "--prefix", "/cfg/"}).out.empty());
  RunResult imp = s.Kvctl({"import", "app.yaml", "--prefix", "/cfg"});
  REQUIRE(imp.exit_code == 0);
  CHECK(imp.out == "imported 7 key(s) under /cfg/, 0 unchanged\n");
  CHECK(s.Kvctl({"get", "/cfg/server/tags/1", "--print-value-only"}).out == "b c\n");
  CHECK(s.Kvctl({"get", "/cfg/feature/ratio", "--print-value-only"}).out == "0.5\n");
  RunResult yaml = s.Kvctl({"export", "--prefix", "/cfg", "--format", "yaml"});
  REQUIRE(yaml.exit_code == 0);
  s.Write("round.yaml", yaml.out);
  RunResult again = s.Kvctl({"import", "round.yaml", "--prefix", "/cfg"});
  CHECK(again.out == "imported 0 key(s) under /cfg/, 7 unchanged\n");
  RunResult json = s.Kvctl({"export", "--prefix", "/cfg", "--format", "json"});
  s.Write("round.json", json.out);
  CHECK(s.Kvctl({"import", "round.json", "--prefix", "/copy"}).exit_code == 0);
  CHECK(s.Kvctl({"export", "--prefix", "/copy"}).out == yaml.out);

  s.Write("a.properties", "# c\ndb.url=jdbc:x\ndb.pool = 5\nname: kv\\\n  d\n");
  CHECK(s.Kvctl({"import", "a.properties", "--prefix", "p"}).exit_code == 0);
  CHECK(s.Kvctl({"get", "--prefix", "p/"}).out == "p/db/pool\n5\np/db/url\njdbc:x\np/name\nkvd\n");
  s.Write("b.env", "export A=1\nB=\"two words\" # note\n# skip\nC='x'\n");
  CHECK(s.Kvctl({"import", "b.env", "--prefix", "e"}).exit_code == 0);
  CHECK(s.Kvctl({"get", "--prefix", "e/"}).out == "e/A\n1\ne/B\ntwo words\ne/C\nx\n");

  s.Write("bad.yaml", "a: 1\nb:\n  c: 2\n   d: 3\n");
  RunResult bad = s.Kvctl({"import", "bad.yaml", "--prefix", "bad"});
  CHECK(bad.exit_code == 3);
  CHECK(bad.err == "Error: bad.yaml: line 4: unexpected indentation\n");
  s.Write("bad.json", "{\n  \"a\": 1,\n  \"b\": \n}\n");
  RunResult badj = s.Kvctl({"import", "bad.json", "--prefix", "bad"});
  CHECK(badj.exit_code == 3);
  CHECK(badj.err.find("bad.json: line 4:") != std::string::npos);
  s.Write("bad.env", "A=1\nnot a pair\n");
  CHECK(s.Kvctl({"import", "bad.env", "--prefix", "bad"}).err ==
        "Error: bad.env: line 2: expected KEY=value\n");
  CHECK(s.Kvctl({"get", "--prefix", "bad"}).out.empty());
  CHECK(s.Kvctl({"import", "missing.yaml", "--prefix", "x"}).exit_code == 6);
  CHECK(s.Kvctl({"import", "x.txt", "--prefix", "x"}).exit_code == 128);
}

CLI_COMPAT_TEST(ImportBatches, "kvctl import writes large files in batches of at most 128 ops") {
  // Goal: 300 keys import through several transactions (etcd rejects > 128 ops per txn).
  Server s(kind);
  std::string env;
  for (int i = 0; i < 300; ++i) env += "K" + std::to_string(i) + "=" + std::to_string(i) + "\n";
  s.Write("many.env", env);
  RunResult r = s.Kvctl({"import", "many.env", "--prefix", "m"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "imported 300 key(s) under m/, 0 unchanged\n");
  CHECK(s.Kvctl({"get", "--prefix", "m/", "--count-only"}).out == "300\n");
}

}  // namespace
