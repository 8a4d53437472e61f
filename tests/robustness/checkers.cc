#include "tests/robustness/checkers.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace kv::robustness {
namespace {

// Client id of the lease-expiry deletes that ResolveUnknownWrites adds.
constexpr int kLeaseExpiryClient = -2;

std::string EventString(const WatchEvent& e) {
  std::ostringstream out;
  out << (e.type == EventType::kPut ? "PUT " : "DELETE ") << e.kv.key;
  if (e.type == EventType::kPut) out << "=" << e.kv.value;
  out << " mod_rev " << e.kv.mod_revision;
  if (e.type == EventType::kPut) {
    out << " create_rev " << e.kv.create_revision << " version " << e.kv.version;
  }
  return out.str();
}

std::string StreamName(const WatchStream& w, std::size_t index) {
  return "watch #" + std::to_string(index) + " (client " + std::to_string(w.client) + ")";
}

bool IsWrite(const Op& op) {
  return op.kind == OpKind::kPut || op.kind == OpKind::kLeasePut || op.kind == OpKind::kCas;
}

// The revisions a stream is known to have delivered completely: per segment, from where the
// logical stream stood (last delivered revision + 1, or the compaction revision; a reconnect
// that resumes later than that does not excuse what it skips) to its last event (later
// revisions may still have been in flight at the disconnect); the last segment up to the
// stream's sync point.
std::vector<std::pair<std::int64_t, std::int64_t>> Windows(const WatchStream& w) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  std::int64_t next = w.segments.empty() ? 0 : w.segments.front().start_revision;
  for (std::size_t i = 0; i < w.segments.size(); ++i) {
    const WatchSegment& s = w.segments[i];
    const std::int64_t lo = std::min(next, s.start_revision);
    if (s.compact_revision > 0) {
      next = s.compact_revision;
      continue;
    }
    std::int64_t hi = s.events.empty() ? lo - 1 : s.events.back().kv.mod_revision;
    if (i + 1 == w.segments.size()) hi = std::max(hi, w.synced_through_revision);
    if (hi >= lo) out.emplace_back(lo, hi);
    if (!s.events.empty()) next = std::max(next, s.events.back().kv.mod_revision + 1);
  }
  return out;
}

bool InWindows(const std::vector<std::pair<std::int64_t, std::int64_t>>& windows, std::int64_t rev,
               std::int64_t* lo) {
  for (const auto& [a, b] : windows) {
    if (rev >= a && rev <= b) {
      *lo = a;
      return true;
    }
  }
  return false;
}

// A stream that saw every revision from 1 up to its sync point for `key`.
bool CompleteFor(const WatchStream& w, const std::string& key) {
  if (!w.Covers(key) || w.segments.empty() || w.synced_through_revision <= 0) return false;
  std::int64_t next = 1;
  for (const WatchSegment& s : w.segments) {
    if (s.compact_revision > 0 || s.start_revision > next) return false;
    if (!s.events.empty()) next = std::max(next, s.events.back().kv.mod_revision + 1);
  }
  return true;
}

struct Change {
  EventType type = EventType::kPut;
  std::string value;
};

}  // namespace

Resolution ResolveUnknownWrites(History& h) {
  Resolution r;
  // value -> revision at which a watch delivered it
  std::unordered_map<std::string, std::int64_t> seen;
  std::set<std::pair<std::string, std::int64_t>> deletes_seen;
  for (const WatchStream& w : h.watches) {
    for (const WatchSegment& s : w.segments) {
      for (const WatchEvent& e : s.events) {
        if (e.type == EventType::kPut) {
          seen.emplace(e.kv.value, e.kv.mod_revision);
        } else {
          deletes_seen.emplace(e.kv.key, e.kv.mod_revision);
        }
      }
    }
  }
  std::vector<Op> kept;
  std::set<std::string> lease_keys;
  std::set<std::pair<std::string, std::int64_t>> explained_deletes;
  for (Op& op : h.ops) {
    if (op.kind == OpKind::kLeasePut) lease_keys.insert(op.key);
    if (op.kind == OpKind::kDelete && op.outcome == Outcome::kOk && op.deleted > 0) {
      explained_deletes.emplace(op.key, op.revision);
    }
    if (op.outcome == Outcome::kUnknown && IsWrite(op)) {
      auto it = seen.find(op.value);
      if (it != seen.end()) {
        op.revision = it->second;
        if (op.kind == OpKind::kCas) op.cas_succeeded = true;
        ++r.happened;
      } else {
        const bool complete =
            std::any_of(h.watches.begin(), h.watches.end(),
                        [&op](const WatchStream& w) { return CompleteFor(w, op.key); });
        if (complete) {
          ++r.did_not_happen;
          continue;
        }
        ++r.unresolved;
      }
    }
    kept.push_back(std::move(op));
  }
  h.ops = std::move(kept);
  for (const auto& [key, rev] : deletes_seen) {
    if (lease_keys.count(key) == 0 || explained_deletes.count({key, rev}) > 0) continue;
    Op expiry;
    expiry.client = kLeaseExpiryClient;
    expiry.kind = OpKind::kDelete;
    expiry.key = key;
    expiry.call_ns = 0;
    expiry.return_ns = kNeverReturned;
    expiry.outcome = Outcome::kUnknown;
    expiry.revision = rev;
    h.ops.push_back(std::move(expiry));
  }
  return r;
}

WatchCheckResult CheckWatches(const History& h) {
  WatchCheckResult result;
  auto add = [&result](std::string kind, std::string detail) {
    result.anomalies.push_back({std::move(kind), std::move(detail)});
  };

  // What the KV history says.
  std::unordered_map<std::string, const Op*> writer;                // value -> op
  std::map<std::pair<std::int64_t, std::string>, const Op*> acked;  // (rev, key) -> change
  std::set<std::string> lease_keys;
  std::set<std::string> unknown_delete_keys;
  std::map<std::string, std::map<std::int64_t, Change>> timeline;  // key -> rev -> change
  for (const Op& op : h.ops) {
    if (IsWrite(op)) writer.emplace(op.value, &op);
    if (op.kind == OpKind::kLeasePut) lease_keys.insert(op.key);
    if (op.kind == OpKind::kDelete && op.outcome == Outcome::kUnknown) {
      unknown_delete_keys.insert(op.key);
    }
    if (op.outcome == Outcome::kOk && op.ChangedStore()) {
      acked.emplace(std::make_pair(op.revision, op.key), &op);
      timeline[op.key][op.revision] = op.kind == OpKind::kDelete
                                          ? Change{EventType::kDelete, ""}
                                          : Change{EventType::kPut, op.value};
    }
  }
  // Every stream's events, for cross-stream agreement and the key timelines.
  std::map<std::pair<std::int64_t, std::string>, const WatchEvent*> reference;
  for (const WatchStream& w : h.watches) {
    for (const WatchSegment& s : w.segments) {
      for (const WatchEvent& e : s.events) {
        reference.emplace(std::make_pair(e.kv.mod_revision, e.kv.key), &e);
        timeline[e.kv.key].emplace(e.kv.mod_revision,
                                   Change{e.type, e.type == EventType::kPut ? e.kv.value : ""});
      }
    }
  }

  for (std::size_t wi = 0; wi < h.watches.size(); ++wi) {
    const WatchStream& w = h.watches[wi];
    const std::string name = StreamName(w, wi);
    ++result.streams_checked;
    std::set<std::pair<std::int64_t, std::string>> delivered;
    std::map<std::int64_t, std::int64_t> response_of_revision;
    std::int64_t last_rev = 0;
    std::int64_t next_start = w.segments.empty() ? 0 : w.segments.front().start_revision;
    const auto windows = Windows(w);
    for (std::size_t si = 0; si < w.segments.size(); ++si) {
      const WatchSegment& s = w.segments[si];
      if (si > 0 && s.start_revision != next_start) {
        add("watch-resume", name + " segment " + std::to_string(si) + " resumed at revision " +
                                std::to_string(s.start_revision) + ", expected " +
                                std::to_string(next_start));
      }
      response_of_revision.clear();  // response indexes are per connection
      for (const WatchEvent& e : s.events) {
        ++result.events_checked;
        const std::int64_t rev = e.kv.mod_revision;
        const std::string where = name + ": " + EventString(e);
        if (rev < s.start_revision) {
          add("watch-before-start",
              where + " precedes the segment's start revision " + std::to_string(s.start_revision));
        }
        if (!delivered.emplace(rev, e.kv.key).second) {
          add("watch-duplicate", where + " delivered twice");
        } else if (rev < last_rev) {
          add("watch-reordered", where + " after an event at revision " + std::to_string(last_rev));
        }
        if (!w.Covers(e.kv.key)) add("watch-out-of-range", where);
        last_rev = std::max(last_rev, rev);
        auto [it, fresh] = response_of_revision.emplace(rev, e.response_index);
        if (!fresh && it->second != e.response_index) {
          add("watch-split-revision", where + " arrived in response " +
                                          std::to_string(e.response_index) + ", its revision in " +
                                          std::to_string(it->second));
        }
        // Agreement with the other streams.
        const WatchEvent& ref = *reference.at({rev, e.kv.key});
        if (ref.type != e.type || ref.kv.value != e.kv.value ||
            ref.kv.create_revision != e.kv.create_revision || ref.kv.version != e.kv.version) {
          add("watch-mismatch", where + " differs from another stream's " + EventString(ref));
        }
        // Agreement with the KV history.
        if (e.type == EventType::kPut) {
          auto wit = writer.find(e.kv.value);
          if (wit == writer.end()) {
            add("watch-phantom", where + ": no operation wrote this value");
          } else {
            const Op& op = *wit->second;
            if (op.key != e.kv.key) {
              add("watch-mismatch",
                  where + " but the value was written to another key by " + Describe(op));
            } else if (op.outcome == Outcome::kOk && !op.ChangedStore()) {
              add("watch-phantom", where + ": written by a cas that failed: " + Describe(op));
            } else if (op.outcome == Outcome::kOk && op.revision != rev) {
              add("watch-mismatch",
                  where + " but the write returned another revision: " + Describe(op));
            }
          }
        } else {
          auto ait = acked.find({rev, e.kv.key});
          const bool explained = (ait != acked.end() && ait->second->kind == OpKind::kDelete) ||
                                 unknown_delete_keys.count(e.kv.key) > 0 ||
                                 lease_keys.count(e.kv.key) > 0;
          if (!explained) add("watch-phantom", where + ": no delete or lease explains it");
        }
        // prev_kv against the key's previous change.
        if (w.prev_kv) {
          const auto& t = timeline[e.kv.key];
          auto cur = t.find(rev);
          const bool has_before = cur != t.begin();
          std::int64_t before_rev = 0;
          const Change* before = nullptr;
          if (has_before) {
            auto p = std::prev(cur);
            before_rev = p->first;
            before = &p->second;
          }
          std::int64_t window_lo = 0;
          const bool in_window = InWindows(windows, rev, &window_lo);
          const bool complete = in_window && window_lo <= before_rev + 1;
          const bool expect_prev = before != nullptr && before->type == EventType::kPut;
          // etcd reads prev_kv at mod_revision - 1 when it sends the event: a compaction
          // issued before delivery that covers it makes the server omit prev_kv.
          const bool prev_compacted = std::any_of(
              h.compactions.begin(), h.compactions.end(),
              [&](const Compaction& c) { return c.revision >= rev && c.call_ns < e.received_ns; });
          if (complete && !(expect_prev && !e.has_prev && prev_compacted)) {
            if (expect_prev != e.has_prev ||
                (expect_prev &&
                 (e.prev_kv.value != before->value || e.prev_kv.mod_revision != before_rev))) {
              add("watch-prev-kv",
                  where + " has prev_kv " +
                      (e.has_prev ? e.prev_kv.value + "@" + std::to_string(e.prev_kv.mod_revision)
                                  : std::string("none")) +
                      ", expected " +
                      (expect_prev ? before->value + "@" + std::to_string(before_rev)
                                   : std::string("none")));
            }
          } else if (e.has_prev && before != nullptr && e.prev_kv.mod_revision < before_rev) {
            add("watch-prev-kv",
                where + " has prev_kv from revision " + std::to_string(e.prev_kv.mod_revision) +
                    " but the key changed at revision " + std::to_string(before_rev));
          } else if (e.has_prev && t.count(e.prev_kv.mod_revision) > 0) {
            const Change& c = t.at(e.prev_kv.mod_revision);
            if (c.type != EventType::kPut || c.value != e.prev_kv.value) {
              add("watch-prev-kv", where + " has prev_kv " + e.prev_kv.value + "@" +
                                       std::to_string(e.prev_kv.mod_revision) +
                                       " that the key never had");
            }
          }
        }
      }
      if (s.compact_revision > 0) {
        next_start = s.compact_revision;
      } else if (!s.events.empty()) {
        next_start = std::max(next_start, s.events.back().kv.mod_revision + 1);
      }
    }
    // No gaps: every acknowledged change inside a delivered window is in the stream.
    for (const auto& [rev_key, op] : acked) {
      const auto& [rev, key] = rev_key;
      std::int64_t lo = 0;
      if (!w.Covers(key) || !InWindows(windows, rev, &lo)) continue;
      if (delivered.count(rev_key) == 0) {
        add("watch-gap", name + " skipped the change at revision " + std::to_string(rev) + " of " +
                             Describe(*op));
      }
    }
  }
  return result;
}

std::vector<Anomaly> CheckAcknowledgedWrites(const History& h) {
  std::vector<Anomaly> out;
  std::map<std::string, const Op*> final_read;
  std::map<std::string, const Op*> last_change;
  std::set<std::string> may_vanish;  // a delete (any) or a lease could explain absence
  for (const Op& op : h.ops) {
    if (op.client == kFinalReadClient && op.kind == OpKind::kGet && op.outcome == Outcome::kOk) {
      const Op*& f = final_read[op.key];
      if (f == nullptr || f->call_ns < op.call_ns) f = &op;
    }
    if (op.kind == OpKind::kDelete || op.kind == OpKind::kLeasePut) may_vanish.insert(op.key);
    if (op.outcome == Outcome::kOk && op.ChangedStore()) {
      const Op*& c = last_change[op.key];
      if (c == nullptr || c->revision < op.revision) c = &op;
    }
  }
  for (const auto& [key, change] : last_change) {
    auto it = final_read.find(key);
    if (it == final_read.end()) continue;  // the harness could not read it: nothing to compare
    const Op& f = *it->second;
    if (f.found) {
      if (f.read_mod_revision < change->revision ||
          (f.read_mod_revision == change->revision &&
           (change->kind == OpKind::kDelete || f.read_value != change->value))) {
        out.push_back({"lost-write",
                       "final " + Describe(f) + " but " + Describe(*change) + " was acknowledged"});
      }
    } else if (change->kind != OpKind::kDelete && may_vanish.count(key) == 0) {
      out.push_back({"lost-write", "final " + Describe(f) + " but " + Describe(*change) +
                                       " was acknowledged and nothing deletes the key"});
    }
  }
  return out;
}

std::vector<Anomaly> CheckHashes(const std::vector<MemberHash>& hashes) {
  std::vector<Anomaly> out;
  std::map<std::int64_t, const MemberHash*> first;
  for (const MemberHash& m : hashes) {
    auto [it, fresh] = first.emplace(m.revision, &m);
    if (!fresh && it->second->hash != m.hash) {
      out.push_back({"hash-mismatch", "HashKV at revision " + std::to_string(m.revision) + ": " +
                                          it->second->member + " " +
                                          std::to_string(it->second->hash) + ", " + m.member + " " +
                                          std::to_string(m.hash)});
    }
  }
  return out;
}

std::string Report::Summary(std::size_t anomalies_max) const {
  std::ostringstream out;
  out << "operations: " << ops << " (unknown writes resolved by watch: " << resolution.happened
      << " happened, " << resolution.did_not_happen << " did not, " << resolution.unresolved
      << " unresolved)\n";
  out << "watch: " << streams_checked << " streams, " << events_checked << " events checked\n";
  out << "linearizability: " << ToString(linearizability.verdict) << " ("
      << linearizability.keys_checked << " keys, " << linearizability.ops_checked << " ops, "
      << linearizability.steps << " search steps)\n";
  for (const KeyResult& k : linearizability.problems) {
    out << "  " << ToString(k.verdict) << ": " << k.detail << "\n";
  }
  std::map<std::string, std::size_t> by_kind;
  for (const Anomaly& a : anomalies) ++by_kind[a.kind];
  out << "anomalies: " << anomalies.size();
  for (const auto& [kind, n] : by_kind) out << " " << kind << "=" << n;
  out << "\n";
  for (std::size_t i = 0; i < anomalies.size() && i < anomalies_max; ++i) {
    out << "  " << anomalies[i].kind << ": " << anomalies[i].detail << "\n";
  }
  return out.str();
}

Report CheckHistory(History h, const LinearizabilityOptions& options) {
  Report report;
  WatchCheckResult watch = CheckWatches(h);
  report.anomalies = std::move(watch.anomalies);
  report.events_checked = watch.events_checked;
  report.streams_checked = watch.streams_checked;
  report.ops = h.ops.size();
  for (Anomaly& a : CheckRevisionOrder(h.ops)) report.anomalies.push_back(std::move(a));
  for (Anomaly& a : CheckAcknowledgedWrites(h)) report.anomalies.push_back(std::move(a));
  for (Anomaly& a : CheckHashes(h.hashes)) report.anomalies.push_back(std::move(a));
  report.resolution = ResolveUnknownWrites(h);
  report.linearizability = CheckLinearizable(h.ops, options);
  return report;
}

}  // namespace kv::robustness
