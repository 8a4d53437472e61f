// Unit tests of the printers and formatting helpers against bytes taken from etcdctl 3.4.23.
#include "cli/printer.h"

#include <catch2/catch.hpp>
#include <functional>
#include <sstream>

#include "cli/json_util.h"
#include "cli/progress.h"

namespace {

etcdserverpb::RangeResponse SampleRange() {
  etcdserverpb::RangeResponse r;
  auto* h = r.mutable_header();
  h->set_cluster_id(324952591200643719ULL);
  h->set_member_id(3319814642761637952ULL);
  h->set_revision(3);
  h->set_raft_term(2);
  auto* kv = r.add_kvs();
  kv->set_key("foo");
  kv->set_create_revision(2);
  kv->set_mod_revision(2);
  kv->set_version(1);
  kv->set_value("bar");
  r.set_count(1);
  return r;
}

std::string Print(cli::OutputFormat format, bool hex, bool value_only,
                  const std::function<cli::Status(cli::Printer&)>& call, int* code = nullptr) {
  std::ostringstream out;
  std::ostringstream err;
  cli::PrinterOptions o;
  o.hex = hex;
  o.value_only = value_only;
  o.out = &out;
  o.err = &err;
  auto p = cli::NewPrinter(format, o);
  cli::Status s = call(*p);
  if (code != nullptr) *code = s.exit_code;
  return out.str();
}

TEST_CASE("Get prints etcdctl's simple, hex and json forms", "[unit]") {
  // Goal: byte-identical output to etcdctl for a one-key range.
  auto r = SampleRange();
  auto get = [&](cli::Printer& p) { return p.Get(r); };
  CHECK(Print(cli::OutputFormat::kSimple, false, false, get) == "foo\nbar\n");
  CHECK(Print(cli::OutputFormat::kSimple, false, true, get) == "bar\n");
  CHECK(Print(cli::OutputFormat::kSimple, true, false, get) ==
        "\\x66\\x6f\\x6f\n\\x62\\x61\\x72\n");
  CHECK(Print(cli::OutputFormat::kJson, false, false, get) ==
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,"
        "\"revision\":3,\"raft_term\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,"
        "\"mod_revision\":2,\"version\":1,\"value\":\"YmFy\"}],\"count\":1}\n");
  int code = 0;
  CHECK(Print(cli::OutputFormat::kTable, false, false, get, &code).empty());
  CHECK(code == cli::kExitBadFeature);
}

TEST_CASE("Txn and lease printers match etcdctl", "[unit]") {
  // Goal: txn sections, %016x lease IDs and the expired form.
  etcdserverpb::TxnResponse t;
  t.set_succeeded(true);
  t.add_responses()->mutable_response_put();
  *t.add_responses()->mutable_response_range() = SampleRange();
  t.add_responses()->mutable_response_delete_range()->set_deleted(2);
  CHECK(Print(cli::OutputFormat::kSimple, false, false,
              [&](cli::Printer& p) { return p.Txn(t); }) == "SUCCESS\n\nOK\n\nfoo\nbar\n\n2\n");
  etcdserverpb::LeaseGrantResponse g;
  g.set_id(0x2040a2010c733220);
  g.set_ttl(100);
  CHECK(Print(cli::OutputFormat::kSimple, false, false, [&](cli::Printer& p) {
          return p.Grant(g);
        }) == "lease 2040a2010c733220 granted with TTL(100s)\n");
  CHECK(Print(cli::OutputFormat::kJson, false, false, [&](cli::Printer& p) {
          return p.Grant(g);
        }) == "{\"ID\":2324035533110719008,\"TTL\":100,\"Error\":\"\"}\n");
  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ttl.set_id(0x1234);
  ttl.set_ttl(-1);
  CHECK(Print(cli::OutputFormat::kSimple, false, false, [&](cli::Printer& p) {
          return p.TimeToLive(ttl, false);
        }) == "lease 0000000000001234 already expired\n");
  ttl.set_ttl(5);
  ttl.set_grantedttl(10);
  ttl.add_keys("a");
  ttl.add_keys("b");
  CHECK(Print(cli::OutputFormat::kSimple, false, false,
              [&](cli::Printer& p) { return p.TimeToLive(ttl, true); }) ==
        "lease 0000000000001234 granted with TTL(10s), remaining(5s), attached keys([a b])\n");
}

TEST_CASE("Member list renders etcdctl's table", "[unit]") {
  // Goal: tablewriter's layout: centred upper-case headers, right-aligned cells.
  etcdserverpb::MemberListResponse r;
  auto* m = r.add_members();
  m->set_id(0x2e1259d415f2a040);
  m->set_name("default");
  m->add_peerurls("http://127.0.0.1:23800");
  m->add_clienturls("http://127.0.0.1:23790");
  auto list = [&](cli::Printer& p) { return p.MemberList(r); };
  CHECK(Print(cli::OutputFormat::kTable, false, false, list) ==
        "+------------------+---------+---------+------------------------+-------------------"
        "-----+------------+\n"
        "|        ID        | STATUS  |  NAME   |       PEER ADDRS       |      CLIENT ADDRS   "
        "   | IS LEARNER |\n"
        "+------------------+---------+---------+------------------------+-------------------"
        "-----+------------+\n"
        "| 2e1259d415f2a040 | started | default | http://127.0.0.1:23800 | http://127.0.0.1:2"
        "3790 |      false |\n"
        "+------------------+---------+---------+------------------------+-------------------"
        "-----+------------+\n");
  CHECK(Print(cli::OutputFormat::kSimple, false, false, list) ==
        "2e1259d415f2a040, started, default, http://127.0.0.1:23800, http://127.0.0.1:23790, "
        "false\n");
}

TEST_CASE("Formatting helpers follow Go's spellings", "[unit]") {
  // Goal: humanize.Bytes, time.Duration.String, base64 and %16x as etcdctl prints them.
  CHECK(cli::HumanizeBytes(7) == "7 B");
  CHECK(cli::HumanizeBytes(20480) == "20 kB");
  CHECK(cli::HumanizeBytes(1500000) == "1.5 MB");
  CHECK(cli::GoDurationString(std::chrono::nanoseconds(1608986)) == "1.608986ms");
  CHECK(cli::GoDurationString(std::chrono::nanoseconds(1500)) == "1.5\xc2\xb5s");
  CHECK(cli::GoDurationString(std::chrono::seconds(2)) == "2s");
  CHECK(cli::GoDurationString(std::chrono::seconds(3725)) == "1h2m5s");
  CHECK(cli::GoDurationString(std::chrono::nanoseconds(0)) == "0s");
  CHECK(cli::Base64Encode("foo2") == "Zm9vMg==");
  std::string decoded;
  REQUIRE(cli::Base64Decode("Zm9vMg==", &decoded));
  CHECK(decoded == "foo2");
  CHECK(cli::HexIdPad16(0xabc) == "             abc");
  CHECK(cli::ParseGoDuration("1m30s") == std::chrono::seconds(90));
  CHECK(!cli::ParseGoDuration("5x").has_value());
  CHECK(cli::ProgressBar::Render("import", 5, 10) ==
        "import [###############               ] 50% (5/10)");
}

}  // namespace
