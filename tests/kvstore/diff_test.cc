// Seeded differential test: random operations applied to MvccStore and to the in-memory model
// (tests/kvstore/model.h) must give the same statuses, responses, ranges at old revisions and
// event history. Env: KV_DIFF_SEEDS (number of seeds, default 3), KV_DIFF_SEED (run one seed),
// KV_DIFF_OPS (operations per seed, default 1200).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <sstream>

#include "tests/kvstore/model.h"
#include "tests/kvstore/test_util.h"

namespace {

using etcdserverpb::RangeRequest;

int64_t EnvInt(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoll(v, nullptr, 10) : def;
}

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  int64_t Int(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Chance(int pct) { return Int(0, 99) < pct; }

  std::string Key() {
    static const std::vector<std::string> pool = {"a",
                                                  "ab",
                                                  "abc",
                                                  "b",
                                                  "ba",
                                                  std::string("a\0", 2),
                                                  std::string("a\0b", 3),
                                                  "\xff",
                                                  "\xff\xff",
                                                  std::string("b\0", 2),
                                                  "c",
                                                  "cd",
                                                  "d"};
    return pool[static_cast<size_t>(Int(0, static_cast<int64_t>(pool.size()) - 1))];
  }
  std::string Value() {
    return std::string(static_cast<size_t>(Int(0, 6)), 'a' + static_cast<char>(Int(0, 3)));
  }

  std::string End(const std::string& key) {
    switch (Int(0, 3)) {
      case 0:
        return "";
      case 1:
        return std::string(1, '\0');
      case 2:
        return Key();
      default: {
        std::string e = key;
        while (!e.empty() && static_cast<uint8_t>(e.back()) == 0xff) e.pop_back();
        if (e.empty()) return std::string(1, '\0');
        e.back() = static_cast<char>(static_cast<uint8_t>(e.back()) + 1);
        return e;
      }
    }
  }

  RangeRequest Range(const kvtest::Model& m) {
    RangeRequest r;
    r.set_key(Key());
    r.set_range_end(End(r.key()));
    if (Chance(50)) r.set_revision(Int(std::max<int64_t>(m.compact - 1, 1), m.rev + 1));
    r.set_limit(Chance(50) ? 0 : Int(1, 4));
    if (Chance(40)) r.set_sort_order(static_cast<RangeRequest::SortOrder>(Int(0, 2)));
    if (Chance(40)) r.set_sort_target(static_cast<RangeRequest::SortTarget>(Int(0, 4)));
    r.set_keys_only(Chance(15));
    r.set_count_only(Chance(10));
    if (Chance(15)) r.set_min_mod_revision(Int(1, m.rev));
    if (Chance(15)) r.set_max_mod_revision(Int(1, m.rev));
    if (Chance(15)) r.set_min_create_revision(Int(1, m.rev));
    if (Chance(15)) r.set_max_create_revision(Int(1, m.rev));
    return r;
  }

  int64_t Lease(const kvtest::Model& m) {
    if (Chance(70) || m.leases.empty()) return Chance(10) ? 424242 : 0;
    auto it = m.leases.begin();
    std::advance(it, Int(0, static_cast<int64_t>(m.leases.size()) - 1));
    return it->first;
  }

  kvdpb::InternalRequest Request(const kvtest::Model& m) {
    kvdpb::InternalRequest r;
    int64_t p = Int(0, 99);
    if (p < 35) {
      auto* put = r.mutable_put();
      put->set_key(Key());
      put->set_value(Value());
      put->set_lease(Lease(m));
      put->set_prev_kv(Chance(50));
    } else if (p < 47) {
      auto* d = r.mutable_delete_range();
      d->set_key(Key());
      d->set_range_end(Chance(50) ? "" : End(d->key()));
      d->set_prev_kv(Chance(50));
    } else if (p < 67) {
      auto* t = r.mutable_txn();
      for (int64_t i = Int(0, 2); i > 0; --i) {
        auto* c = t->add_compare();
        c->set_key(Key());
        if (Chance(20)) c->set_range_end(End(c->key()));
        c->set_result(static_cast<etcdserverpb::Compare::CompareResult>(Int(0, 3)));
        c->set_target(static_cast<etcdserverpb::Compare::CompareTarget>(Int(0, 4)));
        switch (c->target()) {
          case etcdserverpb::Compare::VERSION:
            c->set_version(Int(0, 3));
            break;
          case etcdserverpb::Compare::CREATE:
            c->set_create_revision(Int(0, m.rev));
            break;
          case etcdserverpb::Compare::MOD:
            c->set_mod_revision(Int(0, m.rev));
            break;
          case etcdserverpb::Compare::VALUE:
            c->set_value(Value());
            break;
          default:
            c->set_lease(Lease(m));
        }
      }
      for (auto* branch : {t->mutable_success(), t->mutable_failure()}) {
        std::set<std::string> used;
        for (int64_t i = Int(0, 3); i > 0; --i) {
          auto* op = branch->Add();
          std::string k = Key();
          int64_t kind = Int(0, 2);
          if (kind < 2 && used.count(k) != 0) kind = 2;  // keep puts/deletes on distinct keys
          if (kind == 0) {
            used.insert(k);
            auto* put = op->mutable_request_put();
            put->set_key(k);
            put->set_value(Value());
            put->set_lease(Lease(m));
            put->set_prev_kv(Chance(30));
          } else if (kind == 1) {
            used.insert(k);
            op->mutable_request_delete_range()->set_key(k);
            op->mutable_request_delete_range()->set_prev_kv(Chance(30));
          } else {
            *op->mutable_request_range() = Range(m);
          }
        }
      }
    } else if (p < 75) {
      *r.mutable_range() = Range(m);
    } else if (p < 80) {
      r.mutable_compaction()->set_revision(Int(std::max<int64_t>(m.compact - 1, 0), m.rev + 1));
    } else if (p < 90) {
      r.mutable_lease_grant()->set_id(Int(1, 12));
      r.mutable_lease_grant()->set_ttl(Int(0, 100));
    } else {
      r.mutable_lease_revoke()->set_id(Int(1, 12));
    }
    return r;
  }

 private:
  std::mt19937_64 rng_;
};

std::string Replay(uint64_t seed) {
  return "replay: KV_DIFF_SEED=" + std::to_string(seed) +
         " build/tests/kvstore/kvstore_unit_tests '[diff]'";
}

// Runs one seed; returns "" on success, else a description of the first difference.
// `latest_value_bytes_max` as in StoreOptions (3 mixes both kinds of latest record: the
// generated values are 0 to 6 bytes long).
std::string RunSeed(uint64_t seed, int64_t ops, size_t latest_value_bytes_max) {
  Gen g(seed);
  kvtest::Model m;
  kvstore::StoreOptions opts;
  opts.latest_value_bytes_max = latest_value_bytes_max;
  kvtest::TestStore s(opts);
  uint64_t index = 0;
  std::ostringstream err;
  auto same = [&](const std::string& what, const kvstore::Status& a, const kvstore::Status& b,
                  const google::protobuf::Message& ra, const google::protobuf::Message& rb) {
    if (a == b && (!a.ok() || ra.SerializeAsString() == rb.SerializeAsString())) return true;
    err << what << ": store " << a.ToString() << " " << ra.ShortDebugString() << "\n  model "
        << b.ToString() << " " << rb.ShortDebugString();
    return false;
  };
  for (int64_t op = 0; op < ops;) {
    // A batch of 1..4 entries applied together.
    std::vector<kvdpb::InternalRequest> reqs;
    for (int64_t n = g.Int(1, 4); n > 0; --n) reqs.push_back(g.Request(m));
    std::vector<kvstore::ApplyEntry> entries;
    for (auto& r : reqs) entries.push_back({++index, &r});
    std::vector<kvstore::ApplyResult> res;
    kvstore::Status st = s->Apply(entries, 0, &res);
    if (!st.ok()) return "apply failed: " + st.ToString();
    for (size_t i = 0; i < reqs.size(); ++i, ++op) {
      kvdpb::InternalResponse mo;
      kvstore::Status ms = m.Apply(entries[i].index, reqs[i], &mo);
      if (!same("op " + std::to_string(op) + " " + reqs[i].ShortDebugString(), res[i].status, ms,
                res[i].response, mo)) {
        return err.str();
      }
    }
    if (s->CurrentRevision() != m.rev) return "revision differs at op " + std::to_string(op);
    // Reads and maintenance between batches.
    int64_t p = g.Int(0, 99);
    if (p < 30) {
      RangeRequest rr = g.Range(m);
      etcdserverpb::RangeResponse a, b;
      kvstore::Status sa = s->Range(rr, &a);
      kvstore::Status sb = m.Range(rr, m.rev, &b);
      if (!same("range " + rr.ShortDebugString(), sa, sb, a, b)) return err.str();
    } else if (p < 45) {
      std::string key = g.Key();
      std::string end = g.End(key);
      int64_t from = g.Int(std::max<int64_t>(m.compact - 1, 1), m.rev);
      bool prev = g.Chance(50);
      std::vector<mvccpb::Event> got;
      int64_t next = from;
      kvstore::Status sa;
      for (int guard = 0; guard < 10000 && next <= m.rev; ++guard) {
        sa = s->ReadEvents({key, end}, next, m.rev, static_cast<size_t>(g.Int(1, 5)), prev, &got,
                           &next);
        if (!sa.ok()) break;
      }
      if (from < m.compact) {
        if (!(sa == kvstore::errors::Compacted()))
          return "ReadEvents below compaction: " + sa.ToString();
      } else {
        auto want = m.Events(key, end, from, m.rev, prev);
        std::string ga, wa;
        for (const auto& e : got) ga += e.ShortDebugString() + "\n";
        for (const auto& e : want) wa += e.ShortDebugString() + "\n";
        if (!sa.ok() || ga != wa) {
          return "events from " + std::to_string(from) + " differ: " + sa.ToString() +
                 "\nstore:\n" + ga + "model:\n" + wa;
        }
      }
    } else if (p < 55) {
      uint32_t h1 = 0, h2 = 0;
      int64_t c1 = 0, c2 = 0, r1 = 0;
      kvstore::Status a = s->HashKV(0, &h1, &c1, &r1);
      bool done = false;
      kvstore::Status b = s->CompactStep(static_cast<size_t>(g.Int(1, 4)), &done);
      kvstore::Status c = s->HashKV(0, &h2, &c2, &r1);
      if (!a.ok() || !b.ok() || !c.ok() || h1 != h2) return "hash changed by CompactStep";
    } else if (p < 57) {
      s.Reopen();
      etcdserverpb::LeaseLeasesResponse l;
      s->LeaseLeases(&l);
      std::string got, want;
      for (const auto& x : l.leases()) got += std::to_string(x.id()) + ",";
      for (const auto& [id, ttl] : m.leases) want += std::to_string(id) + ",";
      if (got != want) return "leases differ after reopen: " + got + " vs " + want;
      if (s->AppliedIndex() != index) return "applied index lost on reopen";
    }
  }
  // Every retained revision, whole key space.
  for (int64_t r = std::max<int64_t>(m.compact, 1); r <= m.rev; ++r) {
    RangeRequest rr;
    rr.set_key(std::string(1, '\0'));
    rr.set_range_end(std::string(1, '\0'));
    rr.set_revision(r);
    etcdserverpb::RangeResponse a, b;
    if (!same("final range at " + std::to_string(r), s->Range(rr, &a), m.Range(rr, m.rev, &b), a,
              b)) {
      return err.str();
    }
  }
  return "";
}

}  // namespace

TEST_CASE("differential: random operations agree with the in-memory model", "[diff]") {
  // Goal: store and model agree on every response, range and event for many random histories.
  const int64_t ops = EnvInt("KV_DIFF_OPS", 1200);
  std::vector<uint64_t> seeds;
  if (std::getenv("KV_DIFF_SEED") != nullptr) {
    seeds.push_back(static_cast<uint64_t>(EnvInt("KV_DIFF_SEED", 1)));
  } else {
    for (int64_t i = 1; i <= EnvInt("KV_DIFF_SEEDS", 3); ++i)
      seeds.push_back(static_cast<uint64_t>(i));
  }
  for (const size_t latest_value_bytes_max :
       {kvstore::StoreOptions().latest_value_bytes_max, size_t{3}}) {
    for (uint64_t seed : seeds) {
      std::string diff = RunSeed(seed, ops, latest_value_bytes_max);
      INFO("seed " << seed << ", latest_value_bytes_max " << latest_value_bytes_max << "\n"
                   << Replay(seed));
      CHECK(diff == "");
      if (!diff.empty()) break;
    }
  }
}
