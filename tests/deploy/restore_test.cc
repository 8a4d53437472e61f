// Backup and restore round trip on real kvd processes: `kvctl snapshot save` from a member of a
// 3-member cluster while a writer keeps writing, `kvd --restore FILE` into the empty data dirs of
// a NEW 3-member cluster, then HashKV at the snapshot's revision must match the source's on
// every restored member. Also: a corrupt snapshot is refused before anything is written.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "proto/rpc.grpc.pb.h"
#include "tests/server/kvd_test_util.h"
#include "tests/support/etcd_grpc.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

using std::chrono::milliseconds;

struct Hash {
  bool ok = false;
  uint32_t hash = 0;
  int64_t header_revision = 0;
  std::string error;
};

Hash HashKv(const std::string& endpoint, int64_t revision) {
  auto stub = etcdserverpb::Maintenance::NewStub(kvtest::MakeChannel(endpoint));
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(milliseconds(10000)));
  etcdserverpb::HashKVRequest req;
  req.set_revision(revision);
  etcdserverpb::HashKVResponse resp;
  grpc::Status s = stub->HashKV(&ctx, req, &resp);
  Hash h;
  h.ok = s.ok();
  h.error = s.error_message();
  h.hash = resp.hash();
  h.header_revision = resp.header().revision();
  return h;
}

int64_t CurrentRevision(const std::string& endpoint) {
  auto stub = etcdserverpb::KV::NewStub(kvtest::MakeChannel(endpoint));
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
  etcdserverpb::RangeRequest req;
  req.set_key("restore/");
  req.set_range_end("restore0");
  req.set_count_only(true);
  req.set_serializable(true);
  etcdserverpb::RangeResponse resp;
  if (!stub->Range(&ctx, req, &resp).ok()) return -1;
  return resp.header().revision();
}

grpc::Status Put(const std::string& endpoint, const std::string& key, const std::string& value) {
  auto stub = etcdserverpb::KV::NewStub(kvtest::MakeChannel(endpoint));
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(milliseconds(5000)));
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  etcdserverpb::PutResponse resp;
  return stub->Put(&ctx, req, &resp);
}

// Runs a command to completion (bounded); returns its exit status and log.
std::pair<kvtest::ExitStatus, std::string> Run(std::vector<std::string> argv,
                                               const std::string& log_path) {
  kvtest::ProcessOptions p;
  p.argv = std::move(argv);
  p.log_path = log_path;
  p.env_unset_prefixes = {"ETCD_", "ETCDCTL_"};
  kvtest::Process proc(p);
  auto status = proc.Wait(milliseconds(120000));
  if (!status) {
    proc.Kill(SIGKILL);
    FAIL(p.argv[0] << " hung:\n" << proc.LogTail());
  }
  return {*status, proc.LogTail()};
}

TEST_CASE("snapshot save under load, restore into a new cluster, HashKV matches",
          "[restore][integration]") {
  // Goal: a snapshot taken while writes go on restores into a new 3-member cluster whose
  // every member has the same HashKV at the snapshot's revision as the source, and which then
  // accepts writes.
  kvtest::TempDir dir("kvd-restore");
  const std::string snapshot = dir.Sub("backup.db");
  int64_t source_revision_after = 0;
  std::string source_endpoint;

  auto source = kvtest::StartEtcdLikeCluster(kvdtest::KvdOptions(3));
  source_endpoint = source->endpoint(1);
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    // Bounded: at most 3000 writes, and stops as soon as the snapshot is taken.
    for (int i = 0; i < 3000 && !stop.load(); ++i) {
      if (Put(source->endpoint(0), "restore/" + std::to_string(i % 500), std::to_string(i)).ok()) {
        written.fetch_add(1);
      }
    }
  });
  // Let the writer get going, then snapshot a follower or leader (member 1) mid-stream.
  const auto started = std::chrono::steady_clock::now();
  while (written.load() < 100 &&
         std::chrono::steady_clock::now() - started < std::chrono::seconds(60)) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  auto [save_status, save_log] =
      Run({KVCTL_BINARY, "--endpoints=" + source_endpoint, "snapshot", "save", snapshot},
          dir.Sub("save.log"));
  const int written_at_save = written.load();
  stop = true;
  writer.join();
  INFO("snapshot save:\n" << save_log);
  REQUIRE(save_status.ExitedWith(0));
  REQUIRE(written_at_save >= 100);
  source_revision_after = CurrentRevision(source_endpoint);

  // A new cluster (new names, ports and token) from the snapshot.
  kvtest::ClusterOptions o = kvdtest::KvdOptions(3);
  o.cluster_token = "restored-cluster";
  o.extra_args = {"--restore=" + snapshot};
  auto restored = kvtest::StartEtcdLikeCluster(o);
  const int64_t snap_revision = CurrentRevision(restored->endpoint(0));
  INFO("snapshot revision " << snap_revision << ", source revision after "
                            << source_revision_after);
  REQUIRE(snap_revision > 1);
  CHECK(snap_revision <= source_revision_after);

  const Hash want = HashKv(source_endpoint, snap_revision);
  REQUIRE(want.ok);
  for (size_t i = 0; i < restored->size(); ++i) {
    const Hash got = HashKv(restored->endpoint(i), snap_revision);
    INFO("restored member " << i << ": " << got.error);
    REQUIRE(got.ok);
    CHECK(got.hash == want.hash);
  }
  // The restored cluster is a working cluster, and a different one.
  REQUIRE(Put(restored->endpoint(2), "restore/new", "x").ok());
  CHECK(CurrentRevision(restored->endpoint(0)) == snap_revision + 1);
  CHECK(restored->LogTails().find("restored ") != std::string::npos);
}

TEST_CASE("a corrupt snapshot is refused and leaves the data dir empty", "[restore][integration]") {
  // Goal: one flipped byte fails the SHA-256 check: kvd exits 1 before creating a member dir.
  kvtest::TempDir dir("kvd-restore-bad");
  const std::string snapshot = dir.Sub("backup.db");
  {
    auto source = kvtest::StartEtcdLikeCluster(kvdtest::KvdOptions(1));
    REQUIRE(Put(source->endpoint(0), "restore/a", "1").ok());
    auto [st, log] =
        Run({KVCTL_BINARY, "--endpoints=" + source->endpoint(0), "snapshot", "save", snapshot},
            dir.Sub("save.log"));
    INFO(log);
    REQUIRE(st.ExitedWith(0));
  }
  {
    std::fstream f(snapshot, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');
  }
  const std::string data_dir = dir.Sub("member-data");
  // Real free ports: should the check wrongly pass, the member must not collide with others.
  const std::vector<std::uint16_t> ports = kvtest::PickFreePorts(2);
  const std::string client = "http://127.0.0.1:" + std::to_string(ports[0]);
  const std::string peer = "http://127.0.0.1:" + std::to_string(ports[1]);
  auto [st, log] = Run({KVD_BINARY, "--restore=" + snapshot, "--data-dir=" + data_dir, "--name=m",
                        "--listen-client-urls=" + client, "--advertise-client-urls=" + client,
                        "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
                        "--initial-cluster=m=" + peer},
                       dir.Sub("restore.log"));
  INFO(log);
  CHECK(st.ExitedWith(1));
  CHECK(log.find("SHA-256") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(data_dir + "/member"));
}

}  // namespace
