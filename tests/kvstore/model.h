// A small in-memory model of etcd's MVCC semantics, written independently of kvstore's
// implementation, for the differential and crash tests. It covers the requests the random
// generators produce: puts (lease, prev_kv), deletes, txns without nesting (compares with
// range_end, put/delete/range ops), ranges with every option, compaction, lease grant (explicit
// IDs) and revoke, and the event history.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kvstore/mvcc_store.h"

namespace kvtest {

class Model {
 public:
  struct Ver {
    int64_t main = 0;
    int64_t sub = 0;
    bool tomb = false;
    int64_t create = 0;
    int64_t version = 0;
    int64_t lease = 0;
    std::string value;
  };
  struct Ev {
    int64_t main, sub;
    std::string key;
  };

  int64_t rev = 1;
  int64_t compact = 0;
  uint64_t applied = 0;
  std::map<std::string, std::vector<Ver>> keys;  // versions oldest first
  std::map<int64_t, int64_t> leases;             // id -> granted TTL
  std::vector<Ev> history;                       // every change in (main, sub) order
  int64_t min_ttl = 2;

  // Newest version of k with main <= at.
  const Ver* At(const std::string& k, int64_t at) const {
    auto it = keys.find(k);
    if (it == keys.end()) return nullptr;
    const Ver* best = nullptr;
    for (const auto& v : it->second) {
      if (v.main <= at) best = &v;
    }
    return best;
  }
  const Ver* Live(const std::string& k, int64_t at) const {
    const Ver* v = At(k, at);
    return v != nullptr && !v->tomb ? v : nullptr;
  }

  static bool InRange(const std::string& k, const std::string& key, const std::string& end) {
    if (end.empty()) return k == key;
    if (end == std::string(1, '\0')) return k >= key;
    return k >= key && k < end;
  }

  static void Fill(const std::string& k, const Ver& v, bool value, mvccpb::KeyValue* kv) {
    kv->set_key(k);
    kv->set_create_revision(v.create);
    kv->set_mod_revision(v.main);
    kv->set_version(v.version);
    kv->set_lease(v.lease);
    if (value) kv->set_value(v.value);
  }

  kvstore::Status Range(const etcdserverpb::RangeRequest& r, int64_t cur,
                        etcdserverpb::RangeResponse* resp) const {
    using RR = etcdserverpb::RangeRequest;
    if (r.key().empty()) return kvstore::errors::KeyNotProvided();
    int64_t at = r.revision() > 0 ? r.revision() : cur;
    if (at > cur) return kvstore::errors::FutureRev();
    if (at < compact) return kvstore::errors::Compacted();
    struct Item {
      std::string k;
      Ver v;
    };
    std::vector<Item> all;
    for (const auto& [k, vs] : keys) {
      if (!InRange(k, r.key(), r.range_end())) continue;
      if (const Ver* v = Live(k, at)) all.push_back({k, *v});
    }
    const auto count = static_cast<int64_t>(all.size());
    std::vector<Item> got;
    if (!r.count_only()) {
      bool fetch_all = r.sort_order() != RR::NONE || r.min_mod_revision() || r.max_mod_revision() ||
                       r.min_create_revision() || r.max_create_revision();
      size_t n = all.size();
      if (!fetch_all && r.limit() > 0) n = std::min(n, static_cast<size_t>(r.limit() + 1));
      got.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    }
    std::vector<Item> kept;
    for (auto& it : got) {
      if (r.max_mod_revision() && it.v.main > r.max_mod_revision()) continue;
      if (r.min_mod_revision() && it.v.main < r.min_mod_revision()) continue;
      if (r.max_create_revision() && it.v.create > r.max_create_revision()) continue;
      if (r.min_create_revision() && it.v.create < r.min_create_revision()) continue;
      kept.push_back(it);
    }
    auto order = r.sort_order();
    if (r.sort_target() != RR::KEY && order == RR::NONE) order = RR::ASCEND;
    auto field = [&](const Item& x, const Item& y) {
      switch (r.sort_target()) {
        case RR::VERSION:
          return x.v.version < y.v.version;
        case RR::CREATE:
          return x.v.create < y.v.create;
        case RR::MOD:
          return x.v.main < y.v.main;
        case RR::VALUE:
          return x.v.value < y.v.value;
        default:
          return x.k < y.k;
      }
    };
    if (order == RR::ASCEND) std::stable_sort(kept.begin(), kept.end(), field);
    if (order == RR::DESCEND) {
      std::stable_sort(kept.begin(), kept.end(),
                       [&](const Item& x, const Item& y) { return field(y, x); });
    }
    if (r.limit() > 0 && static_cast<int64_t>(kept.size()) > r.limit()) {
      kept.resize(static_cast<size_t>(r.limit()));
      resp->set_more(true);
    }
    for (const auto& it : kept) Fill(it.k, it.v, !r.keys_only(), resp->add_kvs());
    resp->set_count(count);
    resp->mutable_header()->set_revision(cur);
    return kvstore::Status::Ok();
  }

  struct W {
    int64_t begin;
    int64_t n = 0;
    int64_t Rev() const { return n ? begin + 1 : begin; }
  };

  void Write(W* w, const std::string& k, Ver v) {
    v.main = w->begin + 1;
    v.sub = w->n++;
    keys[k].push_back(v);
    history.push_back({v.main, v.sub, k});
  }

  kvstore::Status Put(W* w, const etcdserverpb::PutRequest& p, etcdserverpb::PutResponse* resp) {
    if (p.key().empty()) return kvstore::errors::KeyNotProvided();
    if (p.lease() != 0 && leases.count(p.lease()) == 0) return kvstore::errors::LeaseNotFound();
    const Ver* prev = Live(p.key(), INT64_MAX);
    Ver v;
    v.value = p.value();
    v.lease = p.lease();
    v.create = prev ? prev->create : w->begin + 1;
    v.version = prev ? prev->version + 1 : 1;
    if (p.prev_kv() && prev) Fill(p.key(), *prev, true, resp->mutable_prev_kv());
    Write(w, p.key(), v);
    resp->mutable_header()->set_revision(w->Rev());
    return kvstore::Status::Ok();
  }

  kvstore::Status Del(W* w, const etcdserverpb::DeleteRangeRequest& d,
                      etcdserverpb::DeleteRangeResponse* resp) {
    if (d.key().empty()) return kvstore::errors::KeyNotProvided();
    std::vector<std::string> victims;
    for (const auto& [k, vs] : keys) {
      if (InRange(k, d.key(), d.range_end()) && Live(k, INT64_MAX)) victims.push_back(k);
    }
    for (const auto& k : victims) {
      if (d.prev_kv()) Fill(k, *Live(k, INT64_MAX), true, resp->add_prev_kvs());
      Ver t;
      t.tomb = true;
      Write(w, k, t);
    }
    resp->set_deleted(static_cast<int64_t>(victims.size()));
    resp->mutable_header()->set_revision(w->Rev());
    return kvstore::Status::Ok();
  }

  bool CompareOne(const etcdserverpb::Compare& c) const {
    using C = etcdserverpb::Compare;
    std::vector<std::pair<std::string, Ver>> in;
    for (const auto& [k, vs] : keys) {
      if (InRange(k, c.key(), c.range_end()))
        if (const Ver* v = Live(k, INT64_MAX)) in.emplace_back(k, *v);
    }
    auto test = [&](const Ver* v) {
      int r = 0;
      auto cmp = [](auto a, auto b) { return a < b ? -1 : (a > b ? 1 : 0); };
      switch (c.target()) {
        case C::VALUE:
          r = cmp(v ? v->value : std::string(), c.value());
          break;
        case C::CREATE:
          r = cmp(v ? v->create : 0, c.create_revision());
          break;
        case C::MOD:
          r = cmp(v ? v->main : 0, c.mod_revision());
          break;
        case C::VERSION:
          r = cmp(v ? v->version : 0, c.version());
          break;
        case C::LEASE:
          r = cmp(v ? v->lease : 0, c.lease());
          break;
        default:
          break;
      }
      switch (c.result()) {
        case C::EQUAL:
          return r == 0;
        case C::NOT_EQUAL:
          return r != 0;
        case C::GREATER:
          return r > 0;
        case C::LESS:
          return r < 0;
        default:
          return true;
      }
    };
    if (in.empty()) return c.target() != C::VALUE && test(nullptr);
    for (const auto& [k, v] : in) {
      if (!test(&v)) return false;
    }
    return true;
  }

  kvstore::Status Txn(W* w, const etcdserverpb::TxnRequest& t, etcdserverpb::TxnResponse* resp) {
    bool ok = true;
    for (const auto& c : t.compare()) ok = ok && CompareOne(c);
    const auto& ops = ok ? t.success() : t.failure();
    for (const auto& op : ops) {  // checks before execution, against the pre-txn state
      if (op.has_request_put() && op.request_put().lease() != 0 &&
          leases.count(op.request_put().lease()) == 0) {
        return kvstore::errors::LeaseNotFound();
      }
      if (op.has_request_range()) {
        int64_t rv = op.request_range().revision();
        if (rv > w->begin) return kvstore::errors::FutureRev();
        if (rv > 0 && rv < compact) return kvstore::errors::Compacted();
      }
    }
    resp->set_succeeded(ok);
    for (const auto& op : ops) {
      auto* out = resp->add_responses();
      kvstore::Status s;
      if (op.has_request_put()) s = Put(w, op.request_put(), out->mutable_response_put());
      if (op.has_request_delete_range()) {
        s = Del(w, op.request_delete_range(), out->mutable_response_delete_range());
      }
      if (op.has_request_range()) {
        s = Range(op.request_range(), w->Rev(), out->mutable_response_range());
      }
      if (!s.ok()) return s;
    }
    resp->mutable_header()->set_revision(w->Rev());
    return kvstore::Status::Ok();
  }

  // Applies one request; on error nothing changes.
  kvstore::Status Apply(uint64_t index, const kvdpb::InternalRequest& req,
                        kvdpb::InternalResponse* out) {
    if (index <= applied) return kvstore::Status::Ok();
    applied = index;
    Model backup = *this;
    W w{rev};
    kvstore::Status s;
    switch (req.request_case()) {
      case kvdpb::InternalRequest::kPut:
        s = Put(&w, req.put(), out->mutable_put());
        break;
      case kvdpb::InternalRequest::kDeleteRange:
        s = Del(&w, req.delete_range(), out->mutable_delete_range());
        break;
      case kvdpb::InternalRequest::kTxn:
        s = Txn(&w, req.txn(), out->mutable_txn());
        break;
      case kvdpb::InternalRequest::kRange:
        s = Range(req.range(), rev, out->mutable_range());
        break;
      case kvdpb::InternalRequest::kCompaction: {
        int64_t c = req.compaction().revision();
        if (c <= compact) {
          s = kvstore::errors::Compacted();
        } else if (c > rev) {
          s = kvstore::errors::FutureRev();
        } else {
          compact = c;
          out->mutable_compaction()->mutable_header()->set_revision(rev);
        }
        break;
      }
      case kvdpb::InternalRequest::kLeaseGrant: {
        const auto& g = req.lease_grant();
        if (g.ttl() > 9'000'000'000) {
          s = kvstore::errors::LeaseTtlTooLarge();
        } else if (leases.count(g.id()) != 0) {
          s = kvstore::errors::LeaseExists();
        } else {
          leases[g.id()] = std::max(g.ttl(), min_ttl);
          out->mutable_lease_grant()->set_id(g.id());
          out->mutable_lease_grant()->set_ttl(leases[g.id()]);
          out->mutable_lease_grant()->mutable_header()->set_revision(rev);
        }
        break;
      }
      case kvdpb::InternalRequest::kLeaseRevoke: {
        int64_t id = req.lease_revoke().id();
        if (leases.count(id) == 0) {
          s = kvstore::errors::LeaseNotFound();
          break;
        }
        std::vector<std::string> victims;
        for (const auto& [k, vs] : keys) {
          const Ver* v = Live(k, INT64_MAX);
          if (v != nullptr && v->lease == id) victims.push_back(k);
        }
        for (const auto& k : victims) {
          Ver t;
          t.tomb = true;
          Write(&w, k, t);
        }
        leases.erase(id);
        out->mutable_lease_revoke()->mutable_header()->set_revision(w.Rev());
        break;
      }
      default:
        s = {kvstore::Code::kInvalidArgument, "model: unsupported request"};
    }
    if (!s.ok()) {
      uint64_t a = applied;
      *this = std::move(backup);
      applied = a;
      out->Clear();
      return s;
    }
    rev = w.Rev();
    return s;
  }

  // Events of revisions [from, to] on keys in [key, end), with prev_kv as the History contract
  // defines it.
  std::vector<mvccpb::Event> Events(const std::string& key, const std::string& end, int64_t from,
                                    int64_t to, bool prev) const {
    std::vector<mvccpb::Event> out;
    for (const auto& e : history) {
      if (e.main < from || e.main > to || !InRange(e.key, key, end)) continue;
      const auto& vs = keys.at(e.key);
      const Ver* cur = nullptr;
      const Ver* before = nullptr;
      for (const auto& v : vs) {
        if (v.main == e.main && v.sub == e.sub) cur = &v;
        if (v.main < e.main) before = &v;
      }
      mvccpb::Event ev;
      if (cur->tomb) {
        ev.set_type(mvccpb::Event::DELETE);
        ev.mutable_kv()->set_key(e.key);
        ev.mutable_kv()->set_mod_revision(e.main);
      } else {
        Fill(e.key, *cur, true, ev.mutable_kv());
      }
      if (prev && before != nullptr && !before->tomb && e.main - 1 >= compact) {
        Fill(e.key, *before, true, ev.mutable_prev_kv());
      }
      out.push_back(ev);
    }
    return out;
  }
};

}  // namespace kvtest
