// Shared helpers of the kvstore tests: a temp dir that removes itself, a store opened on it and
// builders for the etcd requests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kvstore/mvcc_store.h"
#include "tests/support/temp_dir.h"

namespace kvtest {

inline kvdpb::InternalRequest PutReq(const std::string& k, const std::string& v,
                                     int64_t lease = 0) {
  kvdpb::InternalRequest r;
  r.mutable_put()->set_key(k);
  r.mutable_put()->set_value(v);
  r.mutable_put()->set_lease(lease);
  return r;
}

inline kvdpb::InternalRequest DelReq(const std::string& k, const std::string& end = "",
                                     bool prev = false) {
  kvdpb::InternalRequest r;
  r.mutable_delete_range()->set_key(k);
  r.mutable_delete_range()->set_range_end(end);
  r.mutable_delete_range()->set_prev_kv(prev);
  return r;
}

inline kvdpb::InternalRequest CompactReq(int64_t rev) {
  kvdpb::InternalRequest r;
  r.mutable_compaction()->set_revision(rev);
  return r;
}

inline kvdpb::InternalRequest GrantReq(int64_t id, int64_t ttl) {
  kvdpb::InternalRequest r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(ttl);
  return r;
}

inline kvdpb::InternalRequest RevokeReq(int64_t id) {
  kvdpb::InternalRequest r;
  r.mutable_lease_revoke()->set_id(id);
  return r;
}

inline kvdpb::InternalRequest TxnReq(const etcdserverpb::TxnRequest& t) {
  kvdpb::InternalRequest r;
  *r.mutable_txn() = t;
  return r;
}

inline etcdserverpb::RangeRequest RangeOf(const std::string& k, const std::string& end = "",
                                          int64_t rev = 0) {
  etcdserverpb::RangeRequest r;
  r.set_key(k);
  r.set_range_end(end);
  r.set_revision(rev);
  return r;
}

// A store in its own temp dir, applying one entry per call with increasing raft indexes.
class TestStore {
 public:
  explicit TestStore(kvstore::StoreOptions opts = {}) : opts_(opts) { Open(); }

  void Open() {
    kvstore::Status s = kvstore::MvccStore::OpenDir(dir_.Sub("db"), opts_, &engine_, &store_);
    if (!s.ok()) {
      fprintf(stderr, "open failed: %s\n", s.ToString().c_str());
      std::abort();
    }
    next_index_ = store_->AppliedIndex() + 1;
  }
  void Close() {
    store_.reset();
    engine_.reset();
  }
  void Reopen() {
    Close();
    Open();
  }
  // Options for the next Open / Reopen.
  void set_options(const kvstore::StoreOptions& opts) { opts_ = opts; }

  kvstore::Status Do(const kvdpb::InternalRequest& req, kvdpb::InternalResponse* out = nullptr,
                     int64_t now_ms = 0) {
    kvstore::ApplyEntry e{next_index_++, &req};
    std::vector<kvstore::ApplyResult> res;
    kvstore::Status s = store_->Apply({&e, 1}, now_ms, &res);
    if (!s.ok()) return s;
    if (out != nullptr) *out = res.at(0).response;
    return res.at(0).status;
  }

  // Applies `reqs` as ONE Apply call at the next indexes: one result per request. An Apply
  // failure (I/O) aborts, as in Get.
  std::vector<kvstore::ApplyResult> DoBatch(std::span<const kvdpb::InternalRequest> reqs) {
    std::vector<kvstore::ApplyEntry> entries;
    for (const auto& r : reqs) entries.push_back({next_index_++, &r});
    std::vector<kvstore::ApplyResult> res;
    kvstore::Status s = store_->Apply(entries, 0, &res);
    if (!s.ok() || res.size() != reqs.size()) {
      fprintf(stderr, "apply batch failed: %s\n", s.ToString().c_str());
      std::abort();
    }
    return res;
  }

  etcdserverpb::RangeResponse Get(const std::string& k, const std::string& end = "",
                                  int64_t rev = 0) {
    etcdserverpb::RangeResponse resp;
    kvstore::Status s = store_->Range(RangeOf(k, end, rev), &resp);
    if (!s.ok()) {
      fprintf(stderr, "range failed: %s\n", s.ToString().c_str());
      std::abort();
    }
    return resp;
  }

  kvstore::MvccStore* operator->() { return store_.get(); }
  kvstore::MvccStore& store() { return *store_; }
  kvstore::Engine& engine() { return *engine_; }
  const TempDir& dir() const { return dir_; }
  std::string db_path() const { return dir_.Sub("db"); }
  uint64_t next_index() const { return next_index_; }

 private:
  kvstore::StoreOptions opts_;
  TempDir dir_;
  std::unique_ptr<kvstore::Engine> engine_;
  std::unique_ptr<kvstore::MvccStore> store_;
  uint64_t next_index_ = 1;
};

}  // namespace kvtest
