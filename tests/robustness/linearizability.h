// Linearizability of a key-value history, checked key by key: Wing & Gong's search with
// Lowe's state cache, as in Porcupine (P-compositionality: a history of single-key operations
// is linearizable iff each key's sub-history is). Revisions returned by the server add
// ordering constraints to the model (a key's revisions only grow; a read's header revision is
// at least the revision of the key's last change), which prunes most of the search.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/robustness/history.h"

namespace kv::robustness {

enum class Verdict { kOk, kViolation, kInconclusive };

std::string ToString(Verdict v);

struct LinearizabilityOptions {
  // Search steps allowed per key before that key is reported inconclusive instead of hanging.
  std::uint64_t steps_per_key_max = 5'000'000;
};

struct KeyResult {
  std::string key;
  Verdict verdict = Verdict::kOk;
  std::string detail;  // for a violation: the operation that could not be linearized
  std::uint64_t steps = 0;
};

struct LinearizabilityResult {
  Verdict verdict = Verdict::kOk;  // worst over the keys: violation > inconclusive > ok
  std::size_t keys_checked = 0;
  std::size_t ops_checked = 0;
  std::uint64_t steps = 0;
  std::vector<KeyResult> problems;  // keys whose verdict is not kOk
};

// Checks every key's sub-history against a single-register model with revisions.
// Model (etcd semantics): state = {exists, value, revision of the last change (or unknown)}.
//  * put / lease-put / successful cas (ok): revision must exceed the last change's.
//  * get (ok): found/value/mod_revision must equal the state, header revision >= last change.
//  * cas (ok, failed): the compare must not hold. cas compares mod_revision (0 if absent) or
//    value (absent never equals).
//  * delete (ok): deleted == 1 iff the key exists; a delete's revision exceeds the last change.
//  * unknown ops may take effect at any time after their call, or never; unknown gets are
//    ignored. An unknown write's effect has an unknown revision unless the caller resolved it
//    (Op::revision > 0), and a later read binds it.
// Values must be unique per write (the workload guarantees it). Thread-compatible.
LinearizabilityResult CheckLinearizable(const std::vector<Op>& ops,
                                        const LinearizabilityOptions& options = {});

// Cross-key revision checks, cheap and independent of the search:
//  * two acknowledged writes that changed the store never share a revision;
//  * real time: if a returned before b was called, rev(b) >= rev(a), and > if b changed the
//    store (a linearizable server's revision never goes back).
std::vector<Anomaly> CheckRevisionOrder(const std::vector<Op>& ops);

}  // namespace kv::robustness
