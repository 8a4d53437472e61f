// Unit tests of kvstore::failpoint (named fault-injection points) and of the points wired into
// the raft log store and the MVCC store.
#include "kvstore/failpoint.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/kvstore/test_util.h"

namespace fp = kvstore::failpoint;

namespace {
// Disarms every point when a test ends, whatever it armed.
struct Disarm {
  ~Disarm() {
    for (const char* n :
         {"raftBeforeSave", "raftAfterSave", "backendBeforeCommit", "restoreAfterDrop"}) {
      (void)fp::Set(n, "off");
    }
  }
};
}  // namespace

TEST_CASE("failpoint: actions are parsed, listed and evaluated", "[failpoint]") {
  // Goal: each action does what it says, and off really disarms.
  Disarm d;
  CHECK(fp::List().empty());
  CHECK(fp::Eval("raftBeforeSave").ok());
  REQUIRE(fp::Set("raftBeforeSave", "error").ok());
  kvstore::Status s = fp::Eval("raftBeforeSave");
  CHECK(s.code() == kvstore::Code::kInternal);
  CHECK(s.message() == "failpoint raftBeforeSave: injected I/O error");
  CHECK(fp::Eval("raftAfterSave").ok());  // only the armed one fires
  REQUIRE(fp::Set("raftAfterSave", "sleep(30)").ok());
  CHECK(fp::List() == "raftAfterSave=sleep(30)\nraftBeforeSave=error\n");
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(fp::Eval("raftAfterSave").ok());
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(30));
  REQUIRE(fp::Set("raftBeforeSave", "off").ok());
  REQUIRE(fp::Set("raftAfterSave", "off").ok());
  CHECK(fp::List().empty());
  CHECK(fp::Eval("raftBeforeSave").ok());
}

TEST_CASE("failpoint: bad names, actions and specs are refused with a reason", "[failpoint]") {
  // Goal: a typo in a test's spec is an error, never a silently unarmed point.
  Disarm d;
  CHECK(fp::Set("raftBeforeSav", "error").code() == kvstore::Code::kInvalidArgument);
  CHECK(fp::Set("raftBeforeSave", "explode").message().find("unknown action") != std::string::npos);
  CHECK_FALSE(fp::Set("raftBeforeSave", "sleep(x)").ok());
  CHECK_FALSE(fp::Set("raftBeforeSave", "sleep(-1)").ok());
  CHECK_FALSE(fp::Set("raftBeforeSave", "sleep(600000)").ok());
  CHECK_FALSE(fp::SetFromSpec("raftBeforeSave").ok());
  CHECK(fp::List().empty());
  REQUIRE(fp::SetFromSpec("raftBeforeSave=sleep(1);backendBeforeCommit=error;").ok());
  CHECK(fp::List() == "backendBeforeCommit=error\nraftBeforeSave=sleep(1)\n");
  CHECK(fp::Known("restoreAfterDrop"));
  CHECK_FALSE(fp::Known("nope"));
}

TEST_CASE("failpoint: backendBeforeCommit fails an apply without applying it", "[failpoint]") {
  // Goal: an injected commit failure is reported as an I/O error and nothing is applied.
  Disarm d;
  kvtest::TestStore store;
  REQUIRE(store.Do(kvtest::PutReq("a", "1")).ok());
  const uint64_t applied = store->AppliedIndex();
  REQUIRE(fp::Set("backendBeforeCommit", "error").ok());
  kvstore::Status s = store.Do(kvtest::PutReq("b", "2"));
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("failpoint backendBeforeCommit") != std::string::npos);
  CHECK(store->AppliedIndex() == applied);
}

TEST_CASE("failpoint: a bulk delete whose commit fails leaves every key after a reopen",
          "[failpoint]") {
  // Goal: a DeleteRange big enough to write its own batch (>= 1024 keys) whose commit fails is
  // reported, applies nothing, and the reopened store still has every key and applies the same
  // delete in full.
  Disarm d;
  kvtest::TestStore store;
  std::vector<kvdpb::InternalRequest> puts;
  for (int i = 0; i < 1100; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "k/%05d", i);
    puts.push_back(kvtest::PutReq(k, "v"));
  }
  store.DoBatch(puts);
  const uint64_t applied = store->AppliedIndex();
  const int64_t rev = store->CurrentRevision();
  REQUIRE(fp::Set("backendBeforeCommit", "error").ok());
  kvstore::Status s = store.Do(kvtest::DelReq("k/", "k0"));
  CHECK_FALSE(s.ok());
  CHECK(store->AppliedIndex() == applied);
  CHECK(store->CurrentRevision() == rev);
  CHECK(store.Get("k/", "k0").count() == 1100);
  REQUIRE(fp::Set("backendBeforeCommit", "off").ok());
  store.Reopen();
  CHECK(store->AppliedIndex() == applied);
  CHECK(store.Get("k/", "k0").count() == 1100);
  kvdpb::InternalResponse out;
  REQUIRE(store.Do(kvtest::DelReq("k/", "k0"), &out).ok());
  CHECK(out.delete_range().deleted() == 1100);
  CHECK(store.Get("k/", "k0").count() == 0);
  CHECK(store->CurrentRevision() == rev + 1);
}
