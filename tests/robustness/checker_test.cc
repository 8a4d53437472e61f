// Unit tests of the robustness checkers on hand-made histories: every kind of anomaly the
// harness looks for (lost write, stale read, duplicated, skipped and reordered watch events,
// wrong prev_kv, ...) must be rejected, and valid histories, including concurrent ones and
// ones with unknown outcomes, accepted.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/robustness/checkers.h"
#include "tests/robustness/history.h"
#include "tests/robustness/linearizability.h"

namespace {

using namespace kv::robustness;

Op Put(int client, const std::string& key, const std::string& value, std::int64_t call,
       std::int64_t ret, std::int64_t rev) {
  Op op;
  op.client = client;
  op.kind = OpKind::kPut;
  op.key = key;
  op.value = value;
  op.call_ns = call;
  op.return_ns = ret;
  op.outcome = Outcome::kOk;
  op.revision = rev;
  return op;
}

Op UnknownPut(int client, const std::string& key, const std::string& value, std::int64_t call) {
  Op op = Put(client, key, value, call, kNeverReturned, 0);
  op.outcome = Outcome::kUnknown;
  return op;
}

Op Get(int client, const std::string& key, std::int64_t call, std::int64_t ret,
       std::int64_t header_rev, const std::string& value, std::int64_t mod_rev) {
  Op op;
  op.client = client;
  op.kind = OpKind::kGet;
  op.key = key;
  op.call_ns = call;
  op.return_ns = ret;
  op.outcome = Outcome::kOk;
  op.revision = header_rev;
  op.found = !value.empty();
  op.read_value = value;
  op.read_mod_revision = mod_rev;
  return op;
}

Op Cas(int client, const std::string& key, const std::string& value, std::int64_t expected_mod,
       std::int64_t call, std::int64_t ret, std::int64_t rev, bool succeeded) {
  Op op = Put(client, key, value, call, ret, rev);
  op.kind = OpKind::kCas;
  op.cas_on = CasOn::kModRevision;
  op.cas_expected_mod_revision = expected_mod;
  op.cas_succeeded = succeeded;
  return op;
}

Op Delete(int client, const std::string& key, std::int64_t call, std::int64_t ret, std::int64_t rev,
          std::int64_t deleted) {
  Op op;
  op.client = client;
  op.kind = OpKind::kDelete;
  op.key = key;
  op.call_ns = call;
  op.return_ns = ret;
  op.outcome = Outcome::kOk;
  op.revision = rev;
  op.deleted = deleted;
  return op;
}

WatchEvent PutEvent(const std::string& key, const std::string& value, std::int64_t rev,
                    std::int64_t create, std::int64_t version, std::int64_t response) {
  WatchEvent e;
  e.type = EventType::kPut;
  e.kv = KeyValue{key, value, create, rev, version, 0};
  e.response_index = response;
  return e;
}

WatchEvent DeleteEvent(const std::string& key, std::int64_t rev, std::int64_t response) {
  WatchEvent e;
  e.type = EventType::kDelete;
  e.kv.key = key;
  e.kv.mod_revision = rev;
  e.response_index = response;
  return e;
}

WatchEvent WithPrev(WatchEvent e, const std::string& value, std::int64_t mod_rev) {
  e.has_prev = true;
  e.prev_kv = KeyValue{e.kv.key, value, 0, mod_rev, 0, 0};
  return e;
}

// A valid run: a=1@2, b=1@3, a=2@4, delete a@5, with a full-keyspace prev_kv watcher from
// revision 1 synced through 5, and final reads.
History ValidHistory() {
  History h;
  h.ops = {
      Put(1, "a", "a1", 10, 20, 2),
      Put(2, "b", "b1", 15, 25, 3),
      Put(1, "a", "a2", 30, 40, 4),
      Delete(2, "a", 45, 50, 5, 1),
      Get(kFinalReadClient, "a", 60, 70, 5, "", 0),
      Get(kFinalReadClient, "b", 60, 70, 5, "b1", 3),
  };
  WatchStream w;
  w.client = 9;
  w.key = "";
  w.range_end = std::string(1, '\0');
  w.prev_kv = true;
  WatchSegment s;
  s.start_revision = 1;
  s.events = {PutEvent("a", "a1", 2, 2, 1, 0), PutEvent("b", "b1", 3, 3, 1, 1),
              WithPrev(PutEvent("a", "a2", 4, 2, 2, 2), "a1", 2),
              WithPrev(DeleteEvent("a", 5, 3), "a2", 4)};
  w.segments.push_back(s);
  w.synced_through_revision = 5;
  h.watches.push_back(w);
  h.hashes = {{"m0", 5, 1234, 0}, {"m1", 5, 1234, 0}, {"m2", 5, 1234, 0}};
  return h;
}

std::vector<std::string> Kinds(const Report& r) {
  std::vector<std::string> out;
  for (const Anomaly& a : r.anomalies) out.push_back(a.kind);
  return out;
}

bool Has(const Report& r, const std::string& kind) {
  const auto kinds = Kinds(r);
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

TEST_CASE("a valid history passes every checker", "[robustness]") {
  // Goal: the reference history is accepted, so every rejection below is due to its mutation.
  const Report r = CheckHistory(ValidHistory());
  INFO(r.Summary());
  CHECK(r.Passed());
  CHECK(r.linearizability.verdict == Verdict::kOk);
  CHECK(r.events_checked == 4);
  CHECK(r.linearizability.keys_checked == 2);
}

TEST_CASE("a lost write is rejected", "[robustness]") {
  // Goal: an acknowledged put that the final read does not see is caught by both the search
  // and the acknowledged-writes check.
  History h = ValidHistory();
  h.ops.push_back(Put(3, "b", "b2", 80, 90, 6));
  h.ops.push_back(Get(kFinalReadClient, "b", 100, 110, 6, "b1", 3));
  h.watches.clear();
  const Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(r.linearizability.verdict == Verdict::kViolation);
  CHECK(Has(r, "lost-write"));
}

TEST_CASE("a stale read is rejected", "[robustness]") {
  // Goal: a read that starts after a put returned yet sees the previous value is not
  // linearizable, even when its header revision looks current.
  History h = ValidHistory();
  h.ops.push_back(Get(3, "a", 42, 44, 4, "a1", 2));  // after a2@4 returned at 40
  const Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(r.linearizability.verdict == Verdict::kViolation);
  REQUIRE(r.linearizability.problems.size() == 1);
  CHECK(r.linearizability.problems[0].key == "a");
}

TEST_CASE("a read whose header revision goes back in real time is rejected", "[robustness]") {
  // Goal: the cross-key revision check catches a read served from a lagging member.
  History h = ValidHistory();
  h.ops.push_back(Get(3, "b", 52, 54, 3, "b1", 3));  // after delete@5 returned at 50
  const Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(Has(r, "revision-went-back"));
}

TEST_CASE("two acknowledged writes at one revision are rejected", "[robustness]") {
  // Goal: a revision handed out twice (e.g. by two leaders) is an anomaly on its own.
  History h;
  h.ops = {Put(1, "x", "x1", 10, 20, 2), Put(2, "y", "y1", 10, 20, 2)};
  const Report r = CheckHistory(h);
  CHECK(Has(r, "duplicate-revision"));
}

TEST_CASE("concurrent writes may be ordered either way", "[robustness]") {
  // Goal: overlapping puts are linearizable in revision order, whichever was called first,
  // and reads concurrent with them may see either value.
  History h;
  h.ops = {Put(1, "k", "v1", 10, 100, 3), Put(2, "k", "v2", 20, 90, 2),
           Get(3, "k", 30, 95, 2, "v2", 2), Get(4, "k", 40, 110, 3, "v1", 3),
           Get(5, "k", 120, 130, 3, "v1", 3)};
  const Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(r.Passed());
  CHECK(r.linearizability.verdict == Verdict::kOk);
}

TEST_CASE("revisions constrain the order of concurrent writes", "[robustness]") {
  // Goal: the later revision wins, so a final read of the lower revision's value is rejected.
  History h;
  h.ops = {Put(1, "k", "v1", 10, 100, 3), Put(2, "k", "v2", 20, 90, 2),
           Get(5, "k", 120, 130, 3, "v2", 2)};
  const Report r = CheckHistory(h);
  CHECK(r.linearizability.verdict == Verdict::kViolation);
}

TEST_CASE("unknown writes may or may not have happened", "[robustness]") {
  // Goal: an unknown put that a later read observes is accepted, as is one nobody observes;
  // but a value that no operation wrote is rejected.
  History h;
  h.ops = {Put(1, "k", "v1", 10, 20, 2), UnknownPut(2, "k", "v2", 30), UnknownPut(3, "k", "v3", 35),
           Get(4, "k", 50, 60, 4, "v2", 4), Get(4, "k", 70, 80, 4, "v2", 4)};
  Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(r.Passed());
  CHECK(r.resolution.unresolved == 2);

  h.ops.push_back(Get(4, "k", 90, 95, 4, "v9", 4));
  r = CheckHistory(h);
  CHECK(r.linearizability.verdict == Verdict::kViolation);
}

TEST_CASE("an unknown write takes effect only once and after its call", "[robustness]") {
  // Goal: a read before the unknown put was called cannot see its value.
  History h;
  h.ops = {Put(1, "k", "v1", 10, 20, 2), Get(2, "k", 25, 28, 3, "v2", 3),
           UnknownPut(3, "k", "v2", 30)};
  const Report r = CheckHistory(h);
  CHECK(r.linearizability.verdict == Verdict::kViolation);
}

TEST_CASE("compare-and-swap on mod_revision", "[robustness]") {
  // Goal: a cas succeeds only if the compare held in some linearization, and fails only if it
  // did not.
  History h;
  h.ops = {Put(1, "k", "v1", 10, 20, 2), Cas(2, "k", "v2", 2, 30, 40, 3, true),
           Cas(3, "k", "v3", 2, 50, 60, 3, false), Get(4, "k", 70, 80, 3, "v2", 3)};
  CHECK(CheckHistory(h).Passed());

  History wrong_success = h;
  wrong_success.ops[2] = Cas(3, "k", "v3", 2, 50, 60, 4, true);  // compare could not hold
  wrong_success.ops[3] = Get(4, "k", 70, 80, 4, "v3", 4);
  CHECK(CheckHistory(wrong_success).linearizability.verdict == Verdict::kViolation);

  History wrong_failure = h;
  wrong_failure.ops[1] = Cas(2, "k", "v2", 2, 30, 40, 2, false);  // compare held
  wrong_failure.ops[3] = Get(4, "k", 70, 80, 2, "v1", 2);
  CHECK(CheckHistory(wrong_failure).linearizability.verdict == Verdict::kViolation);
}

TEST_CASE("deletes must agree with the key's existence", "[robustness]") {
  // Goal: deleting an absent key cannot report deleted=1.
  History h;
  h.ops = {Put(1, "k", "v1", 10, 20, 2), Delete(2, "k", 30, 40, 3, 1),
           Delete(3, "k", 50, 60, 4, 1)};
  CHECK(CheckHistory(h).linearizability.verdict == Verdict::kViolation);
  h.ops[2] = Delete(3, "k", 50, 60, 3, 0);
  CHECK(CheckHistory(h).linearizability.verdict == Verdict::kOk);
}

TEST_CASE("a search over its budget is inconclusive, not a verdict", "[robustness]") {
  // Goal: many concurrent unknown writes exhaust a small budget and report inconclusive.
  History h;
  for (int i = 0; i < 8; ++i) {
    h.ops.push_back(UnknownPut(i, "k", "v" + std::to_string(i), 10 + i));
  }
  h.ops.push_back(Get(99, "k", 100, 110, 30, "v0", 30));
  LinearizabilityOptions options;
  options.steps_per_key_max = 50;
  const LinearizabilityResult r = CheckLinearizable(h.ops, options);
  CHECK(r.verdict == Verdict::kInconclusive);
  CHECK(CheckLinearizable(h.ops).verdict == Verdict::kOk);
}

TEST_CASE("a duplicated watch event is rejected", "[robustness]") {
  // Goal: the same (revision, key) delivered twice in one stream is caught.
  History h = ValidHistory();
  auto& events = h.watches[0].segments[0].events;
  events.insert(events.begin() + 2, events[1]);
  events[2].response_index = 1;
  const Report r = CheckHistory(h);
  CHECK(Has(r, "watch-duplicate"));
}

TEST_CASE("a skipped watch event is rejected", "[robustness]") {
  // Goal: an acknowledged write inside the delivered window but missing is a gap.
  History h = ValidHistory();
  auto& events = h.watches[0].segments[0].events;
  events.erase(events.begin() + 1);  // b1@3
  const Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(Has(r, "watch-gap"));
}

TEST_CASE("a skipped event after a reconnect is rejected", "[robustness]") {
  // Goal: resuming past last revision + 1 is flagged, and so is the event it loses.
  History h = ValidHistory();
  WatchStream& w = h.watches[0];
  WatchSegment second;
  second.start_revision = 4;  // last delivered was 2: should resume at 3
  second.events = {w.segments[0].events[2], w.segments[0].events[3]};
  w.segments[0].events.resize(1);
  w.segments.push_back(second);
  const Report r = CheckHistory(h);
  CHECK(Has(r, "watch-resume"));
  CHECK(Has(r, "watch-gap"));
}

TEST_CASE("a correct resume after a reconnect and after a compaction is accepted", "[robustness]") {
  // Goal: segments that resume from last revision + 1, or from the compaction revision, with
  // the compacted revisions missing, pass.
  History h = ValidHistory();
  WatchStream& w = h.watches[0];
  const auto all = w.segments[0].events;
  w.segments.clear();
  WatchSegment s1;
  s1.start_revision = 1;
  s1.events = {all[0]};
  WatchSegment s2;
  s2.start_revision = 3;
  s2.compact_revision = 4;
  WatchSegment s3;
  s3.start_revision = 4;
  s3.events = {all[2], all[3]};
  w.segments = {s1, s2, s3};
  const Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(r.Passed());
}

TEST_CASE("a reordered watch event is rejected", "[robustness]") {
  // Goal: events must arrive in revision order.
  History h = ValidHistory();
  auto& events = h.watches[0].segments[0].events;
  std::swap(events[1], events[2]);
  events[1].response_index = 1;
  events[2].response_index = 2;
  const Report r = CheckHistory(h);
  CHECK(Has(r, "watch-reordered"));
}

TEST_CASE("a wrong prev_kv is rejected", "[robustness]") {
  // Goal: prev_kv must be the key's previous value, and absent for a created key.
  History h = ValidHistory();
  h.watches[0].segments[0].events[3].prev_kv.value = "a1";
  CHECK(Has(CheckHistory(h), "watch-prev-kv"));

  History stale = ValidHistory();
  stale.watches[0].segments[0].events[3].prev_kv.mod_revision = 2;
  stale.watches[0].segments[0].events[3].prev_kv.value = "a1";
  CHECK(Has(CheckHistory(stale), "watch-prev-kv"));

  History created = ValidHistory();
  created.watches[0].segments[0].events[0] =
      WithPrev(created.watches[0].segments[0].events[0], "zz", 1);
  CHECK(Has(CheckHistory(created), "watch-prev-kv"));
}

TEST_CASE("a prev_kv omitted after a compaction is accepted, and only then", "[robustness]") {
  // Goal: like etcd, an event delivered after a compaction that covers its previous revision
  // may lack prev_kv; without such a compaction, or if it came after delivery, it may not.
  History h = ValidHistory();
  auto& ev = h.watches[0].segments[0].events[2];  // a2@4, prev a1@2
  ev.has_prev = false;
  ev.received_ns = 100;
  CHECK(Has(CheckHistory(h), "watch-prev-kv"));
  h.compactions = {Compaction{4, 150}};  // after delivery
  CHECK(Has(CheckHistory(h), "watch-prev-kv"));
  h.compactions = {Compaction{3, 50}};  // before, but revision 3 is still readable
  CHECK(Has(CheckHistory(h), "watch-prev-kv"));
  h.compactions = {Compaction{4, 50}};
  const Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(r.Passed());
  // A wrong prev_kv (not a missing one) stays wrong whatever was compacted.
  ev.has_prev = true;
  ev.prev_kv = KeyValue{"a", "zz", 2, 2, 1, 0};
  CHECK(Has(CheckHistory(h), "watch-prev-kv"));
}

TEST_CASE("a revision split over two watch responses is rejected", "[robustness]") {
  // Goal: one revision's events (a txn, or a lease revoke deleting two keys) arrive together.
  History h;
  h.ops = {Put(1, "l1", "x", 10, 20, 2), Put(1, "l2", "y", 10, 20, 3)};
  h.ops[0].kind = OpKind::kLeasePut;
  h.ops[1].kind = OpKind::kLeasePut;
  WatchStream w;
  w.key = "";
  w.range_end = std::string(1, '\0');
  WatchSegment s;
  s.start_revision = 1;
  s.events = {PutEvent("l1", "x", 2, 2, 1, 0), PutEvent("l2", "y", 3, 3, 1, 0),
              DeleteEvent("l1", 4, 1), DeleteEvent("l2", 4, 1)};
  w.segments = {s};
  w.synced_through_revision = 4;
  h.watches = {w};
  Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(r.Passed());
  CHECK(r.ops == 2);

  h.watches[0].segments[0].events[3].response_index = 2;
  CHECK(Has(CheckHistory(h), "watch-split-revision"));
}

TEST_CASE("watch events that contradict the history are rejected", "[robustness]") {
  // Goal: a value nobody wrote, a wrong revision for a write, and a delete nobody issued are
  // each caught, as is disagreement between two streams.
  History phantom = ValidHistory();
  phantom.watches[0].segments[0].events[1].kv.value = "nobody";
  CHECK(Has(CheckHistory(phantom), "watch-phantom"));

  History moved = ValidHistory();
  moved.ops[1].revision = 7;  // b1 acknowledged at 7 but delivered at 3
  CHECK(Has(CheckHistory(moved), "watch-mismatch"));

  History deleted = ValidHistory();
  deleted.watches[0].segments[0].events.push_back(DeleteEvent("b", 6, 4));
  CHECK(Has(CheckHistory(deleted), "watch-phantom"));

  History disagree = ValidHistory();
  disagree.watches.push_back(disagree.watches[0]);
  disagree.watches[1].prev_kv = false;
  disagree.watches[1].segments[0].events[2].kv.version = 7;
  CHECK(Has(CheckHistory(disagree), "watch-mismatch"));
}

TEST_CASE("unknown writes are settled by a complete watch", "[robustness]") {
  // Goal: an unknown put seen by the watch gets its revision; one absent from a complete
  // watch is dropped, so a final read of the old value still passes.
  History h = ValidHistory();
  h.ops.push_back(UnknownPut(3, "b", "b-ghost", 55));
  Report r = CheckHistory(h);
  INFO(r.Summary());
  CHECK(r.Passed());
  CHECK(r.resolution.did_not_happen == 1);

  History seen = ValidHistory();
  seen.ops.push_back(UnknownPut(3, "b", "b2", 55));
  seen.ops[5] = Get(kFinalReadClient, "b", 100, 110, 6, "b2", 6);
  seen.watches[0].segments[0].events.push_back(WithPrev(PutEvent("b", "b2", 6, 3, 2, 4), "b1", 3));
  seen.watches[0].synced_through_revision = 6;
  r = CheckHistory(seen);
  INFO(r.Summary());
  CHECK(r.Passed());
  CHECK(r.resolution.happened == 1);
}

TEST_CASE("HashKV disagreement is rejected", "[robustness]") {
  // Goal: members that hash differently at the same revision are flagged.
  History h = ValidHistory();
  h.hashes[2].hash = 4321;
  CHECK(Has(CheckHistory(h), "hash-mismatch"));
}

TEST_CASE("a history survives its JSON round trip", "[robustness]") {
  // Goal: a saved history re-checks identically (replay of a failed run's checkers).
  History h = ValidHistory();
  h.seed = 42;
  h.ops.push_back(UnknownPut(3, "b", "b-ghost", 55));
  h.watches[0].segments[0].events[1].received_ns = 77;
  const History back = FromJson(ToJson(h));
  CHECK(back.seed == 42);
  REQUIRE(back.ops.size() == h.ops.size());
  CHECK(back.ops.back().return_ns == kNeverReturned);
  CHECK(back.ops.back().outcome == Outcome::kUnknown);
  REQUIRE(back.watches.size() == 1);
  CHECK(back.watches[0].range_end == std::string(1, '\0'));
  CHECK(back.watches[0].segments[0].events[3].has_prev);
  CHECK(back.watches[0].segments[0].events[1].received_ns == 77);
  CHECK(ToJson(back) == ToJson(h));
  CHECK_THROWS(FromJson("{\"seed\": 1}"));
}

}  // namespace
