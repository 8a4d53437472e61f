// A second oracle for our field numbers, independent of the reference document: the real
// etcd's own schema. etcd 3.4 also serves its API as JSON (grpc-gateway, /v3/...) with the
// original .proto field names. We send the same request over gRPC (decoded by field number
// with our .proto) and as JSON (decoded by field name with our .proto, unknown names
// rejected); both must give the same message. A field whose number differs from etcd's would
// decode to a different value (or be lost) on one side only. This test always drives
// /usr/bin/etcd, whatever KV_COMPAT_SERVER says: it checks our schema, not the server.
#include <arpa/inet.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <string>

#include "tests/proto/etcd_client.h"

namespace {

using namespace kvcompat;  // NOLINT(google-build-using-namespace): test file
using google::protobuf::util::MessageDifferencer;

const std::filesystem::path kRealEtcd = "/usr/bin/etcd";
// Gateway responses here are a few KiB; anything beyond this is a broken server.
constexpr std::size_t kHttpResponseBytesMax = 1 << 20;

// A minimal HTTP/1.0 POST on 127.0.0.1 (the server closes the connection after the response,
// so no chunked encoding); returns the body of a 200 response, fails the test otherwise.
std::string HttpPost(const std::string& endpoint, const std::string& path,
                     const std::string& body) {
  const auto port = static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.find(':') + 1)));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval timeout{};
  timeout.tv_sec = 5;  // bounds connect, every send and every recv
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  INFO("POST " << path << " " << body);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  const std::string request = "POST " + path +
                              " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  while (response.size() < kHttpResponseBytesMax) {
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    INFO("recv: " << std::strerror(errno));
    REQUIRE(got >= 0);
    if (got == 0) break;
    response.append(buffer, static_cast<std::size_t>(got));
  }
  INFO("response: " << response);
  const auto split = response.find("\r\n\r\n");
  REQUIRE(split != std::string::npos);
  REQUIRE(response.rfind("HTTP/1.0 200", 0) == 0);
  return response.substr(split + 4);
}

template <typename M>
std::string ToJson(const M& msg) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  REQUIRE(google::protobuf::util::MessageToJsonString(msg, &json, options).ok());
  return json;
}

// Parses etcd's JSON with our schema; a field name we do not have fails the parse.
template <typename M>
M FromJson(const std::string& json) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  M msg;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &msg, options);
  INFO("JSON from etcd: " << json << "\nparse: " << status.ToString());
  REQUIRE(status.ok());
  return msg;
}

template <typename M>
void CheckSame(const M& via_grpc, const M& via_json, MessageDifferencer* differ = nullptr) {
  MessageDifferencer plain;
  if (differ == nullptr) differ = &plain;
  std::string report;
  differ->ReportDifferencesToString(&report);
  INFO(M::descriptor()->name() << "\nvia gRPC: " << via_grpc.ShortDebugString() << "\nvia JSON: "
                               << via_json.ShortDebugString() << "\ndifferences: " << report);
  CHECK(differ->Compare(via_grpc, via_json));
}

// The same read-only request over gRPC and over the gateway must give the same response.
template <typename Stub, typename Req, typename Resp>
Resp CrossCheck(Server& s, Stub& stub, UnaryMethod<Stub, Req, Resp> method, const std::string& path,
                const Req& req, MessageDifferencer* differ = nullptr) {
  const Resp via_grpc = Call(stub, method, req);
  const Resp via_json = FromJson<Resp>(HttpPost(s.cluster().endpoint(0), path, ToJson(req)));
  CheckSame(via_grpc, via_json, differ);
  return via_grpc;
}

}  // namespace

TEST_CASE("Our schema agrees with etcd's own through its JSON gateway", "[compat][gateway]") {
  // Goal: for every message etcd fills here, decoding by field number (gRPC, our .proto) and
  // by field name (JSON, etcd's names) gives the same values.
  INFO("the real etcd is needed for this oracle: install etcd-server (scripts/setup.sh)");
  REQUIRE(std::filesystem::exists(kRealEtcd));
  Server s(1, kRealEtcd);
  auto& stubs = s.on();
  pb::LeaseGrantRequest grant_req;
  grant_req.set_ttl(600);
  const auto lease = Call(*stubs.lease, &pb::Lease::Stub::LeaseGrant, grant_req).id();
  Put(s, "g/a", "1", lease);
  Put(s, "g/b", "2");
  Put(s, "g/a", "3", lease);
  Put(s, "g/c", std::string("\x00\xff", 2));
  Call(*stubs.kv, &pb::KV::Stub::DeleteRange, DeleteReq("g/b"));
  Put(s, "g/b", "4");

  auto range = RangeReq("g/", "g0");
  const auto all = CrossCheck(s, *stubs.kv, &pb::KV::Stub::Range, "/v3/kv/range", range);
  REQUIRE(all.kvs_size() == 3);  // the comparison covered every KeyValue field
  range.set_sort_target(pb::RangeRequest::MOD);
  range.set_sort_order(pb::RangeRequest::DESCEND);
  range.set_limit(2);
  range.set_min_create_revision(3);
  range.set_keys_only(true);
  range.set_serializable(true);
  const auto limited = CrossCheck(s, *stubs.kv, &pb::KV::Stub::Range, "/v3/kv/range", range);
  CHECK(limited.kvs_size() == 2);
  range = RangeReq("g/", "g0");
  range.set_revision(3);
  range.set_max_mod_revision(3);
  CrossCheck(s, *stubs.kv, &pb::KV::Stub::Range, "/v3/kv/range", range);
  range.set_count_only(true);
  CrossCheck(s, *stubs.kv, &pb::KV::Stub::Range, "/v3/kv/range", range);

  pb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("g/");
  cmp->set_range_end("g0");
  cmp->set_target(pb::Compare::CREATE);
  cmp->set_result(pb::Compare::GREATER);
  cmp->set_create_revision(1);
  cmp = txn.add_compare();
  cmp->set_key("g/a");
  cmp->set_target(pb::Compare::LEASE);
  cmp->set_result(pb::Compare::EQUAL);
  cmp->set_lease(lease);
  *txn.add_success()->mutable_request_range() = RangeReq("g/a");
  auto* nested = txn.add_success()->mutable_request_txn();
  auto* nested_cmp = nested->add_compare();
  nested_cmp->set_key("g/c");
  nested_cmp->set_target(pb::Compare::VALUE);
  nested_cmp->set_result(pb::Compare::NOT_EQUAL);
  nested_cmp->set_value("x");
  *nested->add_success()->mutable_request_range() = RangeReq("g/", "g0");
  const auto txn_resp = CrossCheck(s, *stubs.kv, &pb::KV::Stub::Txn, "/v3/kv/txn", txn);
  CHECK(txn_resp.succeeded());

  pb::LeaseTimeToLiveRequest ttl_req;
  ttl_req.set_id(lease);
  ttl_req.set_keys(true);
  MessageDifferencer ignore_ttl;  // the remaining TTL may tick between the two calls
  ignore_ttl.IgnoreField(pb::LeaseTimeToLiveResponse::descriptor()->FindFieldByName("TTL"));
  const auto ttl = CrossCheck(s, *stubs.lease, &pb::Lease::Stub::LeaseTimeToLive,
                              "/v3/lease/timetolive", ttl_req, &ignore_ttl);
  CHECK(ttl.keys_size() == 1);
  CrossCheck(s, *stubs.lease, &pb::Lease::Stub::LeaseLeases, "/v3/lease/leases", {});
  CrossCheck(s, *stubs.cluster, &pb::Cluster::Stub::MemberList, "/v3/cluster/member/list", {});
  MessageDifferencer ignore_raft_indexes;  // etcd may append internal entries between calls
  ignore_raft_indexes.IgnoreField(pb::StatusResponse::descriptor()->FindFieldByName("raftIndex"));
  ignore_raft_indexes.IgnoreField(
      pb::StatusResponse::descriptor()->FindFieldByName("raftAppliedIndex"));
  // etcd's backend commits in the background, which changes its sizes between two calls (seen:
  // dbSizeInUse 20480 over gRPC, 16384 over JSON a moment later).
  ignore_raft_indexes.IgnoreField(pb::StatusResponse::descriptor()->FindFieldByName("dbSize"));
  ignore_raft_indexes.IgnoreField(pb::StatusResponse::descriptor()->FindFieldByName("dbSizeInUse"));
  const auto status = CrossCheck(s, *stubs.maintenance, &pb::Maintenance::Stub::Status,
                                 "/v3/maintenance/status", {}, &ignore_raft_indexes);
  const auto status_json = FromJson<pb::StatusResponse>(
      HttpPost(s.cluster().endpoint(0), "/v3/maintenance/status", "{}"));
  CHECK(status_json.raftindex() >= status.raftindex());
  CHECK(status_json.raftappliedindex() >= status.raftappliedindex());
  CHECK(status_json.raftindex() < status.raftindex() + 10);
  CHECK(status_json.dbsize() > 0);
  CHECK(status_json.dbsizeinuse() > 0);
  CrossCheck(s, *stubs.maintenance, &pb::Maintenance::Stub::Hash, "/v3/maintenance/hash", {});
  // (HashKV has no gateway route of its own in 3.4: /v3/maintenance/hashkv is a 404.)
  pb::AlarmRequest alarm;
  alarm.set_action(pb::AlarmRequest::GET);
  CrossCheck(s, *stubs.maintenance, &pb::Maintenance::Stub::Alarm, "/v3/maintenance/alarm", alarm);

  // Writes, sent once as JSON: the response must parse strictly and carry what gRPC reads show.
  const auto before = Get(s, "g/a");
  auto put = PutReq("g/a", "json", lease);
  put.set_prev_kv(true);
  const auto put_json =
      FromJson<pb::PutResponse>(HttpPost(s.cluster().endpoint(0), "/v3/kv/put", ToJson(put)));
  CheckSame(before.kvs(0), put_json.prev_kv());
  s.CheckHeader(put_json.header(), before.header().revision() + 1);
  const auto after = Get(s, "g/", "g0");
  auto del = DeleteReq("g/", "g0");
  del.set_prev_kv(true);
  const auto del_json = FromJson<pb::DeleteRangeResponse>(
      HttpPost(s.cluster().endpoint(0), "/v3/kv/deleterange", ToJson(del)));
  CHECK(del_json.deleted() == 3);
  REQUIRE(del_json.prev_kvs_size() == 3);
  for (int i = 0; i < 3; ++i) CheckSame(after.kvs(i), del_json.prev_kvs(i));
  grant_req.set_ttl(42);
  grant_req.set_id(0x77);
  const auto grant_json = FromJson<pb::LeaseGrantResponse>(
      HttpPost(s.cluster().endpoint(0), "/v3/lease/grant", ToJson(grant_req)));
  CHECK(grant_json.id() == 0x77);
  CHECK(grant_json.ttl() == 42);
  pb::CompactionRequest compact;
  compact.set_revision(4);
  const auto compact_json = FromJson<pb::CompactionResponse>(
      HttpPost(s.cluster().endpoint(0), "/v3/kv/compaction", ToJson(compact)));
  s.CheckHeader(compact_json.header(), after.header().revision() + 1);
  pb::HashKVRequest old;
  old.set_revision(4);
  pb::HashKVResponse dummy;
  const auto old_status =
      CallStatus(*stubs.maintenance, &pb::Maintenance::Stub::HashKV, old, &dummy);
  CHECK(old_status.error_code() == grpc::StatusCode::OUT_OF_RANGE);  // the compaction applied
}
