#include "server/restore.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "kvstore/mvcc_store.h"
#include "kvstore/raft_log_store.h"
#include "server/log.h"

namespace server {
namespace {

constexpr uint64_t kSha256Bytes = 32;
constexpr uint64_t kAlignBytes = 512;
constexpr size_t kCopyChunkBytes = 1 << 20;

struct EvpDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

std::string JoinComma(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// The members file Node reads on restart (format owned by server/node.cc: "cluster <id hex>",
// then "member <id hex> <name> <peer urls, comma-separated>" per member).
Status WriteMembers(const std::string& path, const Config& config) {
  std::ofstream out(path, std::ios::trunc);
  out << "cluster " << FormatId(config.cluster_id) << "\n";
  std::vector<const InitialMember*> members;
  for (const InitialMember& m : config.initial_cluster) members.push_back(&m);
  std::sort(members.begin(), members.end(),
            [](const InitialMember* a, const InitialMember* b) { return a->id < b->id; });
  for (const InitialMember* m : members) {
    out << "member " << FormatId(m->id) << " " << m->name << " " << JoinComma(m->peer_urls) << "\n";
  }
  out.flush();
  if (!out) return Status(1, "kvd: cannot write " + path);
  return Status::Ok();
}

}  // namespace

Status ExtractSnapshotCheckpoint(const std::string& snapshot_path,
                                 const std::string& checkpoint_path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(snapshot_path, ec);
  if (ec) return Status(1, "kvd: cannot read snapshot " + snapshot_path + ": " + ec.message());
  if (size < kAlignBytes + kSha256Bytes || (size - kSha256Bytes) % kAlignBytes != 0) {
    return Status(1, "kvd: " + snapshot_path +
                         " is not a kvd snapshot (expected a 512-byte aligned image and a "
                         "SHA-256 trailer, got " +
                         std::to_string(size) + " bytes)");
  }
  std::ifstream in(snapshot_path, std::ios::binary);
  std::ofstream out(checkpoint_path, std::ios::binary | std::ios::trunc);
  if (!in || !out) return Status(1, "kvd: cannot open " + snapshot_path + " or " + checkpoint_path);
  std::unique_ptr<EVP_MD_CTX, EvpDeleter> sha(EVP_MD_CTX_new());
  if (!sha || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1) {
    return Status(1, "kvd: SHA-256 unavailable");
  }
  std::vector<char> buf(kCopyChunkBytes);
  uint64_t left = size - kSha256Bytes;
  // Bounded: each round consumes up to one chunk of a file of known size.
  while (left > 0) {
    const auto n = static_cast<std::streamsize>(std::min<uint64_t>(left, buf.size()));
    if (!in.read(buf.data(), n)) return Status(1, "kvd: short read on " + snapshot_path);
    EVP_DigestUpdate(sha.get(), buf.data(), static_cast<size_t>(n));
    out.write(buf.data(), n);
    left -= static_cast<uint64_t>(n);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  EVP_DigestFinal_ex(sha.get(), digest.data(), &digest_len);
  std::array<char, kSha256Bytes> trailer{};
  if (!in.read(trailer.data(), trailer.size())) return Status(1, "kvd: short read on trailer");
  if (digest_len != kSha256Bytes ||
      !std::equal(trailer.begin(), trailer.end(), reinterpret_cast<const char*>(digest.data()))) {
    return Status(1, "kvd: snapshot " + snapshot_path +
                         " failed its SHA-256 check (corrupt or "
                         "truncated)");
  }
  out.flush();
  if (!out) return Status(1, "kvd: cannot write " + checkpoint_path);
  return Status::Ok();
}

Status RestoreSnapshotFile(const Config& config, const std::string& snapshot_path, bool* restored) {
  *restored = false;
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string member_dir = config.data_dir + "/member";
  if (fs::exists(member_dir, ec)) {
    KVD_LOG("data dir %s already holds a member: --restore %s ignored", config.data_dir.c_str(),
            snapshot_path.c_str());
    return Status::Ok();
  }
  if (config.initial_cluster_state != ClusterState::kNew) {
    return Status(1, "kvd: --restore builds a new cluster: use --initial-cluster-state=new");
  }
  std::vector<uint64_t> voters;
  bool self_found = false;
  for (const InitialMember& m : config.initial_cluster) {
    voters.push_back(m.id);
    self_found = self_found || m.id == config.member_id;
  }
  if (!self_found) return Status(1, "kvd: this member is not in --initial-cluster");
  std::sort(voters.begin(), voters.end());

  // Built aside, renamed into place last.
  const std::string staging = config.data_dir + "/member.restoring";
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return Status(1, "kvd: cannot create " + staging + ": " + ec.message());
  const std::string checkpoint = staging + "/restore.checkpoint";
  if (Status s = ExtractSnapshotCheckpoint(snapshot_path, checkpoint); !s.ok()) return s;

  uint64_t applied = 0;
  int64_t revision = 0;
  {
    kvstore::StoreOptions opts;
    std::unique_ptr<kvstore::Engine> engine;
    std::unique_ptr<kvstore::MvccStore> store;
    kvstore::Status ks = kvstore::MvccStore::OpenDir(staging + "/kv", opts, &engine, &store);
    if (!ks.ok()) return Status(1, "kvd: cannot create the store: " + ks.message());
    ks = store->RestoreCheckpointFile(checkpoint);
    if (!ks.ok()) return Status(1, "kvd: cannot restore " + snapshot_path + ": " + ks.message());
    applied = store->AppliedIndex();
    revision = store->CurrentRevision();

    std::unique_ptr<kvstore::RaftLogStore> log;
    ks = kvstore::RaftLogStore::Open(engine.get(), kvstore::RaftLogStoreOptions{}, &log);
    if (!ks.ok()) return Status(1, "kvd: cannot create the raft log: " + ks.message());
    // Every restored member starts at the source's applied index, under a snapshot that holds
    // the new configuration: no member replays the source's entries, and the next entry any
    // of them proposes is applied+1 everywhere. The store skips nothing it should not: it has
    // applied exactly up to `applied`.
    raft::Snapshot snap;
    snap.metadata.index = std::max<uint64_t>(applied, 1);
    snap.metadata.term = 1;
    snap.metadata.conf_state.voters = voters;
    raft::HardState hs;
    hs.term = 1;
    hs.commit = snap.metadata.index;
    ks = log->Save(&hs, {}, &snap);
    if (!ks.ok()) return Status(1, "kvd: cannot write the raft log: " + ks.message());
  }
  fs::remove(checkpoint, ec);
  if (Status s = WriteMembers(staging + "/members", config); !s.ok()) return s;
  fs::rename(staging, member_dir, ec);
  if (ec) return Status(1, "kvd: cannot rename " + staging + ": " + ec.message());
  *restored = true;
  KVD_LOG("restored %s into %s: revision %lld, raft index %llu, cluster %s with %zu members",
          snapshot_path.c_str(), member_dir.c_str(), static_cast<long long>(revision),
          static_cast<unsigned long long>(applied), FormatId(config.cluster_id).c_str(),
          voters.size());
  return Status::Ok();
}

}  // namespace server
