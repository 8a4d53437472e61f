// Helpers of the RaftLogStore tests: a temp dir, an engine + store that can be reopened, and a
// comparison of a store against a raft::MemoryStorage model that names the first difference.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kvstore/engine.h"
#include "kvstore/raft_log_store.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raftlogtest {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/raft-log-test-XXXXXX";
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An Engine and a RaftLogStore on `dir`, closed and reopened on demand.
struct OpenLog {
  std::unique_ptr<kvstore::Engine> engine;
  std::unique_ptr<kvstore::RaftLogStore> store;

  // Closes whatever is open, then opens the engine (its open must succeed) and the store;
  // returns the store's Open status.
  kvstore::Status Reopen(const std::string& dir, const kvstore::RaftLogStoreOptions& options) {
    Close();
    kvstore::EngineOptions eo;
    eo.block_cache_bytes = 1u << 20;
    eo.write_buffer_bytes = 1u << 20;
    kvstore::Status s = kvstore::Engine::Open(dir, eo, {}, &engine);
    if (!s.ok()) return s;
    return kvstore::RaftLogStore::Open(engine.get(), options, &store);
  }
  void Close() {
    store.reset();
    engine.reset();
  }
};

inline std::string Str(const raft::Status& s) {
  return s.ok() ? "ok" : std::string(raft::CodeName(s.code())) + " (" + s.message() + ")";
}

inline std::string Str(const std::vector<raft::Entry>& ents) {
  std::string out = "[";
  for (const auto& e : ents) out += raft::Describe(e) + "; ";
  return out + "]";
}

// The first observable difference between `got` and the model `want` (both raft::Storage),
// or "" when none: first/last index, initial state, snapshot, Term() of every index around the
// log, and all retained entries.
inline std::string Diff(const raft::Storage& want, const raft::Storage& got) {
  std::ostringstream d;
  if (want.FirstIndex() != got.FirstIndex() || want.LastIndex() != got.LastIndex()) {
    d << "first/last: want " << want.FirstIndex() << "/" << want.LastIndex() << " got "
      << got.FirstIndex() << "/" << got.LastIndex();
    return d.str();
  }
  raft::HardState whs, ghs;
  raft::ConfState wcs, gcs;
  if (!want.InitialState(&whs, &wcs).ok() || !got.InitialState(&ghs, &gcs).ok()) {
    return "InitialState failed";
  }
  if (whs != ghs) return "hard state: want " + raft::Describe(whs) + " got " + raft::Describe(ghs);
  if (wcs != gcs) return "conf state: want " + raft::Describe(wcs) + " got " + raft::Describe(gcs);
  raft::Snapshot wsn, gsn;
  if (!want.Snapshot(&wsn).ok() || !got.Snapshot(&gsn).ok()) return "Snapshot failed";
  if (wsn != gsn) {
    d << "snapshot: want index " << wsn.metadata.index << " term " << wsn.metadata.term << " data '"
      << wsn.data << "' got index " << gsn.metadata.index << " term " << gsn.metadata.term
      << " data '" << gsn.data << "'";
    return d.str();
  }
  const uint64_t first = want.FirstIndex();
  const uint64_t last = want.LastIndex();
  for (uint64_t i = first >= 3 ? first - 3 : 0; i <= last + 2; ++i) {
    uint64_t wt = 0, gt = 0;
    raft::Status ws = want.Term(i, &wt);
    raft::Status gs = got.Term(i, &gt);
    if (ws.code() != gs.code() || (ws.ok() && wt != gt)) {
      d << "Term(" << i << "): want " << Str(ws) << " " << wt << " got " << Str(gs) << " " << gt;
      return d.str();
    }
  }
  std::vector<raft::Entry> we, ge;
  raft::Status ws = want.Entries(first, last + 1, raft::kNoLimit, &we);
  raft::Status gs = got.Entries(first, last + 1, raft::kNoLimit, &ge);
  if (ws.code() != gs.code() || we != ge) {
    return "all entries: want " + Str(ws) + " " + Str(we) + " got " + Str(gs) + " " + Str(ge);
  }
  return "";
}

// The path of the running executable (for replay commands and re-executing a helper).
inline std::string SelfExe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("<test binary>") : p.string();
}

}  // namespace raftlogtest
