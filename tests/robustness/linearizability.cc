#include "tests/robustness/linearizability.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace kv::robustness {
namespace {

// Always-on invariant check for the checker's own bookkeeping.
#define ROBUST_CHECK(cond)                                                          \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

constexpr std::int64_t kUnknownRevision = -1;

// One register: the model state of a key. Values are interned per key (value_id -1: absent).
struct State {
  bool exists = false;
  int value_id = -1;
  std::int64_t revision = 0;  // revision of the last change; kUnknownRevision if unknown

  bool operator==(const State& o) const {
    return exists == o.exists && value_id == o.value_id && revision == o.revision;
  }
};

// An operation of one key's sub-history, with values interned.
struct KeyOp {
  const Op* op = nullptr;
  int value_id = -1;           // written value
  int expected_value_id = -2;  // cas on value; -2: a value nobody wrote (never equal)
  int read_value_id = -2;      // get; -2: a value nobody wrote
};

bool CompareHolds(const KeyOp& k, const State& s, bool* ambiguous) {
  *ambiguous = false;
  const Op& op = *k.op;
  if (op.cas_on == CasOn::kValue) return s.exists && s.value_id == k.expected_value_id;
  if (!s.exists) return op.cas_expected_mod_revision == 0;
  if (s.revision == kUnknownRevision) {
    *ambiguous = op.cas_expected_mod_revision > 0;
    return op.cas_expected_mod_revision > 0;
  }
  return s.revision == op.cas_expected_mod_revision;
}

// A write that takes effect at `rev` (or an unknown revision) after state `s`.
std::optional<State> Write(const State& s, bool exists, int value_id, std::int64_t rev) {
  if (rev != kUnknownRevision && s.revision != kUnknownRevision && rev <= s.revision) {
    return std::nullopt;  // a key's revisions only grow
  }
  return State{exists, exists ? value_id : -1, rev};
}

bool HeaderAtLeast(const Op& op, const State& s) {
  return s.revision == kUnknownRevision || op.revision >= s.revision;
}

// The model's transition: the state after `k` if it may be linearized in state `s`.
std::optional<State> Step(const State& s, const KeyOp& k) {
  const Op& op = *k.op;
  const bool ok = op.outcome == Outcome::kOk;
  const std::int64_t rev = op.revision > 0 ? op.revision : kUnknownRevision;
  switch (op.kind) {
    case OpKind::kPut:
    case OpKind::kLeasePut:
      return Write(s, true, k.value_id, rev);
    case OpKind::kGet: {
      ROBUST_CHECK(ok);
      if (!HeaderAtLeast(op, s)) return std::nullopt;
      if (!op.found) {
        if (s.exists) return std::nullopt;
        return s;
      }
      if (!s.exists || s.value_id != k.read_value_id) return std::nullopt;
      if (s.revision != kUnknownRevision && s.revision != op.read_mod_revision) {
        return std::nullopt;
      }
      State bound = s;
      bound.revision = op.read_mod_revision;  // a read pins an unknown revision
      return bound;
    }
    case OpKind::kCas: {
      bool ambiguous = false;
      const bool holds = CompareHolds(k, s, &ambiguous);
      if (ok) {
        if (!HeaderAtLeast(op, s) && !op.cas_succeeded) return std::nullopt;
        if (op.cas_succeeded) {
          if (!holds) return std::nullopt;
          return Write(s, true, k.value_id, rev);
        }
        if (holds && !ambiguous) return std::nullopt;
        return s;
      }
      // Unknown: if it took effect, its compare held then. (Not taking effect at all is
      // covered by linearizing it after every other operation.)
      if (rev != kUnknownRevision) {  // resolved: it did succeed
        if (!holds) return std::nullopt;
        return Write(s, true, k.value_id, rev);
      }
      if (holds) return Write(s, true, k.value_id, rev);
      return s;
    }
    case OpKind::kDelete: {
      if (ok) {
        if (op.deleted > 0) {
          if (!s.exists) return std::nullopt;
          return Write(s, false, -1, rev);
        }
        if (s.exists || !HeaderAtLeast(op, s)) return std::nullopt;
        return s;
      }
      if (!s.exists) return s;
      return Write(s, false, -1, rev);
    }
  }
  return std::nullopt;
}

struct CacheKey {
  std::vector<std::uint64_t> bits;
  State state;
  bool operator==(const CacheKey& o) const { return state == o.state && bits == o.bits; }
};

struct CacheKeyHash {
  std::size_t operator()(const CacheKey& k) const {
    std::uint64_t h = 1469598103934665603ULL;
    auto mix = [&h](std::uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
    for (std::uint64_t w : k.bits) mix(w);
    mix(k.state.exists ? 1U : 0U);
    mix(static_cast<std::uint64_t>(k.state.value_id));
    mix(static_cast<std::uint64_t>(k.state.revision));
    return static_cast<std::size_t>(h);
  }
};

struct Entry {
  bool is_call = false;
  int op = 0;  // index into the key's KeyOp vector
  std::int64_t time = 0;
  int match = -1;  // call: its return entry
  int prev = -1;
  int next = -1;
};

std::string DescribeState(const State& s, const std::vector<std::string>& values) {
  std::ostringstream out;
  if (s.exists) {
    out << "value " << values.at(static_cast<std::size_t>(s.value_id));
  } else {
    out << "absent";
  }
  out << ", last change at ";
  if (s.revision == kUnknownRevision) {
    out << "unknown revision";
  } else {
    out << "rev " << s.revision;
  }
  return out.str();
}

KeyResult CheckKey(const std::string& key, const std::vector<const Op*>& key_ops,
                   const LinearizabilityOptions& options) {
  KeyResult result;
  result.key = key;
  // Intern values.
  std::unordered_map<std::string, int> ids;
  std::vector<std::string> values;
  auto intern = [&](const std::string& v) {
    auto [it, inserted] = ids.emplace(v, static_cast<int>(values.size()));
    if (inserted) values.push_back(v);
    return it->second;
  };
  std::vector<KeyOp> ops;
  for (const Op* op : key_ops) {
    KeyOp k;
    k.op = op;
    if (op->kind == OpKind::kPut || op->kind == OpKind::kLeasePut || op->kind == OpKind::kCas) {
      k.value_id = intern(op->value);
    }
    ops.push_back(k);
  }
  for (KeyOp& k : ops) {
    if (k.op->kind == OpKind::kCas && k.op->cas_on == CasOn::kValue) {
      auto it = ids.find(k.op->cas_expected_value);
      if (it != ids.end()) k.expected_value_id = it->second;
    }
    if (k.op->kind == OpKind::kGet && k.op->found) {
      auto it = ids.find(k.op->read_value);
      if (it != ids.end()) k.read_value_id = it->second;
    }
  }

  // Entries: sentinel head at 0, then calls and returns sorted by time (calls first on ties,
  // which only widens the allowed concurrency).
  std::vector<Entry> entries(1);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    Entry c;
    c.is_call = true;
    c.op = static_cast<int>(i);
    c.time = ops[i].op->call_ns;
    Entry r;
    r.op = static_cast<int>(i);
    r.time = ops[i].op->return_ns;
    entries.push_back(c);
    entries.push_back(r);
  }
  std::vector<int> order(entries.size() - 1);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i + 1);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const Entry& ea = entries[static_cast<std::size_t>(a)];
    const Entry& eb = entries[static_cast<std::size_t>(b)];
    if (ea.time != eb.time) return ea.time < eb.time;
    return ea.is_call && !eb.is_call;
  });
  int prev = 0;
  std::vector<int> return_of(ops.size(), -1);
  for (int idx : order) {
    Entry& e = entries[static_cast<std::size_t>(idx)];
    e.prev = prev;
    entries[static_cast<std::size_t>(prev)].next = idx;
    prev = idx;
    if (!e.is_call) return_of[static_cast<std::size_t>(e.op)] = idx;
  }
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].is_call) entries[i].match = return_of[static_cast<std::size_t>(entries[i].op)];
  }
  auto E = [&entries](int i) -> Entry& { return entries[static_cast<std::size_t>(i)]; };
  auto lift = [&](int i) {
    Entry& e = E(i);
    E(e.prev).next = e.next;
    if (e.next != -1) E(e.next).prev = e.prev;
    Entry& m = E(e.match);
    E(m.prev).next = m.next;
    if (m.next != -1) E(m.next).prev = m.prev;
  };
  auto unlift = [&](int i) {
    Entry& e = E(i);
    Entry& m = E(e.match);
    E(m.prev).next = e.match;
    if (m.next != -1) E(m.next).prev = e.match;
    E(e.prev).next = i;
    if (e.next != -1) E(e.next).prev = i;
  };

  const std::size_t words = (ops.size() + 63) / 64;
  std::vector<std::uint64_t> bits(words, 0);
  std::unordered_set<CacheKey, CacheKeyHash> cache;
  std::vector<std::pair<int, State>> stack;
  State state;
  int entry = E(0).next;
  std::size_t deepest = 0;
  int blocked_op = -1;
  State blocked_state;
  while (E(0).next != -1) {
    if (++result.steps > options.steps_per_key_max) {
      result.verdict = Verdict::kInconclusive;
      result.detail = "search budget of " + std::to_string(options.steps_per_key_max) +
                      " steps exhausted after " + std::to_string(deepest) + " of " +
                      std::to_string(ops.size()) + " operations linearized";
      return result;
    }
    ROBUST_CHECK(entry != -1);
    Entry& e = E(entry);
    if (e.is_call) {
      const std::size_t op = static_cast<std::size_t>(e.op);
      std::optional<State> next = Step(state, ops[op]);
      if (next) {
        CacheKey key_state{bits, *next};
        key_state.bits[op / 64] |= 1ULL << (op % 64);
        if (cache.insert(key_state).second) {
          stack.emplace_back(entry, state);
          bits = std::move(key_state.bits);
          state = *next;
          lift(entry);
          entry = E(0).next;
          continue;
        }
      }
      entry = e.next;
      continue;
    }
    // A return: its operation must be linearized before anything after it; backtrack.
    if (stack.size() >= deepest) {
      deepest = stack.size();
      blocked_op = e.op;
      blocked_state = state;
    }
    if (stack.empty()) break;
    auto [call, saved] = stack.back();
    stack.pop_back();
    const std::size_t op = static_cast<std::size_t>(E(call).op);
    bits[op / 64] &= ~(1ULL << (op % 64));
    state = saved;
    unlift(call);
    entry = E(call).next;
  }
  if (E(0).next == -1) return result;  // every operation linearized
  result.verdict = Verdict::kViolation;
  std::ostringstream out;
  out << "key " << key << ": no linearization of " << ops.size() << " operations; at most "
      << deepest << " ordered, then ";
  if (blocked_op >= 0) {
    out << Describe(*ops[static_cast<std::size_t>(blocked_op)].op)
        << " fits no order (state there: " << DescribeState(blocked_state, values) << ")";
  }
  result.detail = out.str();
  return result;
}

}  // namespace

std::string ToString(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kViolation:
      return "violation";
    case Verdict::kInconclusive:
      return "inconclusive";
  }
  return "?";
}

LinearizabilityResult CheckLinearizable(const std::vector<Op>& ops,
                                        const LinearizabilityOptions& options) {
  std::map<std::string, std::vector<const Op*>> by_key;
  for (const Op& op : ops) {
    if (op.kind == OpKind::kGet && op.outcome != Outcome::kOk) continue;  // no information
    ROBUST_CHECK(op.outcome == Outcome::kUnknown || op.return_ns != kNeverReturned);
    by_key[op.key].push_back(&op);
  }
  LinearizabilityResult result;
  for (const auto& [key, key_ops] : by_key) {
    KeyResult k = CheckKey(key, key_ops, options);
    ++result.keys_checked;
    result.ops_checked += key_ops.size();
    result.steps += k.steps;
    if (k.verdict == Verdict::kViolation) result.verdict = Verdict::kViolation;
    if (k.verdict == Verdict::kInconclusive && result.verdict == Verdict::kOk) {
      result.verdict = Verdict::kInconclusive;
    }
    if (k.verdict != Verdict::kOk) result.problems.push_back(std::move(k));
  }
  return result;
}

std::vector<Anomaly> CheckRevisionOrder(const std::vector<Op>& ops) {
  std::vector<Anomaly> out;
  std::vector<const Op*> done;
  for (const Op& op : ops) {
    if (op.outcome == Outcome::kOk) done.push_back(&op);
  }
  std::map<std::int64_t, const Op*> writes;
  for (const Op* op : done) {
    if (!op->ChangedStore()) continue;
    auto [it, inserted] = writes.emplace(op->revision, op);
    if (!inserted) {
      out.push_back({"duplicate-revision", "two acknowledged writes at revision " +
                                               std::to_string(op->revision) + ": " +
                                               Describe(*it->second) + " and " + Describe(*op)});
    }
  }
  std::vector<const Op*> by_call = done;
  std::vector<const Op*> by_return = done;
  std::sort(by_call.begin(), by_call.end(),
            [](const Op* a, const Op* b) { return a->call_ns < b->call_ns; });
  std::sort(by_return.begin(), by_return.end(),
            [](const Op* a, const Op* b) { return a->return_ns < b->return_ns; });
  std::size_t r = 0;
  const Op* max_op = nullptr;
  for (const Op* b : by_call) {
    while (r < by_return.size() && by_return[r]->return_ns < b->call_ns) {
      if (max_op == nullptr || by_return[r]->revision > max_op->revision) max_op = by_return[r];
      ++r;
    }
    if (max_op == nullptr) continue;
    const bool bad =
        b->ChangedStore() ? b->revision <= max_op->revision : b->revision < max_op->revision;
    if (bad) {
      out.push_back({"revision-went-back",
                     Describe(*b) + " was called after " + Describe(*max_op) + " returned"});
    }
  }
  return out;
}

}  // namespace kv::robustness
