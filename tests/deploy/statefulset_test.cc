// Plays the kvd StatefulSet (deploy/kubernetes) on loopback addresses, without Kubernetes:
// the entrypoint derives every flag from the pod's hostname and the core size, the core
// members form a cluster, a pod restarted with its volume rejoins with its data, and the set
// scales to 5 (learner via MemberAdd, then promoted) and back to 3 (preStop removes the member).
// Built twice: against kvd (label integration) and, with KVD_STS_WITH_ETCD, against the real
// etcd 3.4.23 / etcdctl (label compat), which checks the entrypoint's membership logic on the
// reference while kvd's MemberAdd/Promote/Remove are not there yet.
#include <catch2/catch.hpp>
#include <string>

#include "tests/deploy/pod_set.h"
#include "tests/support/http_get.h"

namespace {

using deploytest::Eventually;
using deploytest::PodSet;

// Test names differ per server: CTest names each test after its test case.
#if KVD_STS_WITH_ETCD
constexpr bool kWithEtcd = true;
#define STS_SERVER "etcd "
#else
constexpr bool kWithEtcd = false;
#define STS_SERVER "kvd "
#endif

PodSet MakePodSet() {
  deploytest::PodSetOptions o;
  o.entrypoint = KVD_ENTRYPOINT;
  if (kWithEtcd) {
    o.server_binary = "/usr/bin/etcd";
    o.ctl_binary = "/usr/bin/etcdctl";
  } else {
    o.server_binary = KVD_BINARY;
    o.ctl_binary = KVCTL_BINARY;
    o.server_args.push_back("--log-format=json");
  }
  return PodSet(o);
}

uint64_t MemberIdByName(const PodSet& pods, int asked, const std::string& name) {
  for (const auto& m : pods.Members(asked)) {
    if (m.name() == name) return m.id();
  }
  return 0;
}

void StartCore(PodSet& pods) {
  for (int i = 0; i < 3; ++i) pods.Start(i);
  for (int i = 0; i < 3; ++i) pods.WaitReady(i);
  REQUIRE(Eventually([&] { return pods.StartedVoters(0) == 3; }));
  for (int i = 0; i < 3; ++i) {
    CHECK(MemberIdByName(pods, 0, "kvd-" + std::to_string(i)) != 0);
  }
}

// Whether the server implements the membership RPCs: MemberPromote of an unknown ID is
// NotFound ("member not found") on etcd, Unimplemented on a kvd without them.
bool MembershipImplemented(const PodSet& pods) {
  auto stub = etcdserverpb::Cluster::NewStub(kvtest::MakeChannel(pods.Endpoint(0)));
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(std::chrono::seconds(5)));
  etcdserverpb::MemberPromoteRequest req;
  req.set_id(1);
  etcdserverpb::MemberPromoteResponse resp;
  return stub->MemberPromote(&ctx, req, &resp).error_code() != grpc::StatusCode::UNIMPLEMENTED;
}

TEST_CASE(STS_SERVER "statefulset: core pods form a cluster, a restarted pod rejoins with its data",
          "[statefulset]") {
  // Goal: ordinals 0..2 bootstrap from their hostnames alone, and pod 1 restarted on its volume
  // keeps its member ID and its data and catches up on writes made while it was down.
  PodSet pods = MakePodSet();
  StartCore(pods);
  if (!kWithEtcd) {
    // The probes the StatefulSet uses, on the metrics port at the pod's own address.
    CHECK(kvtest::HttpGet(pods.metrics_port(), "/livez", PodSet::Host(0)).status == 200);
    CHECK(kvtest::HttpGet(pods.metrics_port(), "/readyz", PodSet::Host(0)).status == 200);
  }
  REQUIRE(pods.Put(0, "sts/before", "v1").ok());
  const uint64_t id1 = MemberIdByName(pods, 0, "kvd-1");
  REQUIRE(id1 != 0);

  pods.Stop(1);
  REQUIRE(pods.Put(0, "sts/while-down", "v2").ok());  // 2 of 3 are a quorum
  pods.Start(1);
  pods.WaitReady(1);
  INFO(pods.LogTail(1));
  CHECK(pods.LogTail(1).find("restarting kvd-1 with its data") != std::string::npos);
  CHECK(MemberIdByName(pods, 1, "kvd-1") == id1);
  CHECK(pods.LocalGet(1, "sts/before") == std::optional<std::string>("v1"));
  CHECK(Eventually(
      [&] { return pods.LocalGet(1, "sts/while-down") == std::optional<std::string>("v2"); }));
  CHECK(pods.StartedVoters(1) == 3);
}

TEST_CASE(STS_SERVER "statefulset: scale to 5 (learners, promoted) and back to 3 (preStop removes)",
          "[statefulset][scale]") {
  // Goal: ordinals 3 and 4 join through MemberAdd as learners and get promoted to voters; the
  // preStop hook of a scale-down removes them, leaving a healthy 3-member cluster.
  PodSet pods = MakePodSet();
  StartCore(pods);
  REQUIRE(MembershipImplemented(pods));
  REQUIRE(pods.Put(0, "sts/k", "v").ok());
  for (int i = 3; i < 5; ++i) {
    pods.Start(i);
    // Ready means promoted: a learner does not serve linearizable reads.
    pods.WaitReady(i, std::chrono::seconds(150));
    REQUIRE(Eventually([&] { return pods.StartedVoters(0) == i + 1; }));
    INFO(pods.LogTail(i));
    CHECK(pods.LogTail(i).find("joining as learner kvd-" + std::to_string(i)) != std::string::npos);
  }
  CHECK(pods.LocalGet(4, "sts/k") == std::optional<std::string>("v"));

  for (int i = 4; i >= 3; --i) {
    REQUIRE(pods.PreStop(i).ExitedWith(0));
    pods.Stop(i);
    REQUIRE(Eventually([&] { return pods.Members(0).size() == static_cast<size_t>(i); }));
  }
  CHECK(pods.StartedVoters(0) == 3);
  CHECK(MemberIdByName(pods, 0, "kvd-3") == 0);
  REQUIRE(Eventually([&] { return pods.Put(0, "sts/after", "w").ok(); }));
  // A core member's preStop leaves it in the cluster (a restart, not a scale-down).
  REQUIRE(pods.PreStop(2).ExitedWith(0));
  CHECK(pods.Members(0).size() == 3);
}

}  // namespace
