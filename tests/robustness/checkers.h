// The watch, final-state and whole-history checkers of a robustness run (the search for a
// linearization is in linearizability.h). Each returns anomalies; none of them can be
// satisfied by an empty or truncated history that the harness believed complete, because the
// windows they check are derived from what the streams and clients actually acknowledged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/robustness/history.h"
#include "tests/robustness/linearizability.h"

namespace kv::robustness {

// Client id of the linearizable reads the harness issues after the workload stopped (one per
// key); CheckAcknowledgedWrites compares them with every acknowledged write.
constexpr int kFinalReadClient = -1;

struct Resolution {
  std::size_t happened = 0;        // unknown writes whose value a watch delivered
  std::size_t did_not_happen = 0;  // unknown writes absent from a complete watch: removed
  std::size_t unresolved = 0;
};

// Uses the watch streams to settle unknown writes (values are unique): a put or cas whose
// value appears in an event took effect at that event's revision (Op::revision is set); one
// absent from a stream that saw every key, every revision from 1 through its sync point
// (no compaction, no gap: check that with CheckWatches first) never took effect and is
// removed from `h.ops`. Also adds, for every DELETE event of a lease-attached key that no
// client delete explains, a lease-expiry delete with that revision (unknown times), so the
// linearizability search knows about it.
Resolution ResolveUnknownWrites(History& h);

struct WatchCheckResult {
  std::vector<Anomaly> anomalies;
  std::size_t streams_checked = 0;
  std::size_t events_checked = 0;
};

// Watch guarantees, per stream and across streams, against the KV history:
//  * watch-before-start: an event older than its segment's start revision;
//  * watch-duplicate: the same (revision, key) twice in one stream;
//  * watch-reordered: an event with a lower revision than an earlier one;
//  * watch-split-revision: one revision's events spread over two responses (not atomic);
//  * watch-resume: a reconnect that did not resume from last revision + 1 (or the
//    compaction revision);
//  * watch-gap: an acknowledged write, in the stream's range and inside the window the stream
//    is known to have delivered, missing from it;
//  * watch-mismatch: two streams disagree on an event, or an event contradicts the write that
//    produced it (key, revision);
//  * watch-phantom: an event no operation explains (a value nobody wrote, a failed cas's
//    value, a delete of a key no delete or lease covers);
//  * watch-prev-kv: prev_kv differs from the key's previous state (a missing prev_kv is
//    accepted when a compaction to at least the event's revision was issued before the
//    event arrived: etcd then omits it too).
WatchCheckResult CheckWatches(const History& h);

// Every acknowledged write is present at the end or overwritten by a later change: for each
// key, the final read (client kFinalReadClient) sees a mod_revision >= the latest
// acknowledged write's, or the key is absent and a delete (or lease expiry) may explain it.
std::vector<Anomaly> CheckAcknowledgedWrites(const History& h);

// HashKV answers at the same revision must be equal on every member.
std::vector<Anomaly> CheckHashes(const std::vector<MemberHash>& hashes);

struct Report {
  std::vector<Anomaly> anomalies;
  LinearizabilityResult linearizability;
  Resolution resolution;
  std::size_t ops = 0;
  std::size_t events_checked = 0;
  std::size_t streams_checked = 0;

  bool Passed() const {
    return anomalies.empty() && linearizability.verdict != Verdict::kViolation;
  }
  // A multi-line summary: counts, verdict, and the first `anomalies_max` anomalies.
  std::string Summary(std::size_t anomalies_max = 20) const;
};

// Runs every checker: watches, resolution of unknown writes, revision order,
// linearizability, acknowledged writes, hashes. Takes a copy: resolution edits the ops.
Report CheckHistory(History h, const LinearizabilityOptions& options = {});

}  // namespace kv::robustness
