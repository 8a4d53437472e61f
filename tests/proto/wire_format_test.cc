// Our .proto files against etcd 3.4.23's wire format, without a server: (1) a schema table
// transcribed from shared/reference/etcd-v3-api.md section 2 is compared with our descriptors,
// field by field; (2) hand-encoded wire bytes, built from the reference's field numbers, are
// decoded into our messages and every field is checked; (3) our requests serialize to the
// bytes etcd expects. Also proves that the checks can fail: bytes under a wrong field number
// end up as unknown fields, not as values.
#include <google/protobuf/descriptor.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "proto/auth.pb.h"
#include "proto/kv.pb.h"
#include "proto/rpc.pb.h"
#include "tests/proto/sha256.h"

namespace {

namespace pb = etcdserverpb;
using google::protobuf::FieldDescriptor;

// ---- A minimal protobuf encoder, independent of libprotobuf ----
constexpr int kVarint = 0;
constexpr int kLen = 2;

std::string Varint(std::uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Tag(int field, int wire_type) {
  return Varint((static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire_type));
}
// int64, uint64, uint32, bool and enums are plain varints (negative int64: 10 bytes).
std::string V(int field, std::int64_t value) {
  return Tag(field, kVarint) + Varint(static_cast<std::uint64_t>(value));
}
std::string U(int field, std::uint64_t value) { return Tag(field, kVarint) + Varint(value); }
std::string L(int field, const std::string& bytes) {
  return Tag(field, kLen) + Varint(bytes.size()) + bytes;
}

std::string Hex(const std::string& bytes) {
  std::ostringstream out;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
  }
  return out.str();
}

template <typename M>
M Parse(const std::string& bytes) {
  M msg;
  REQUIRE(msg.ParseFromString(bytes));
  // Every byte was understood: nothing left over as an unknown field.
  CHECK(msg.GetReflection()->GetUnknownFields(msg).empty());
  return msg;
}

// Values chosen so that no two fields of a message share one, and so that a uint64/int64 mixup
// or a 32-bit truncation changes the value.
constexpr std::uint64_t kClusterId = 0xfedcba9876543210ULL;
constexpr std::uint64_t kMemberId = 0x8000000000000001ULL;
std::string HeaderBytes() {
  return U(1, kClusterId) + U(2, kMemberId) + V(3, 1234567890123) + U(4, 77);
}
void CheckHeader(const pb::ResponseHeader& h) {
  CHECK(h.cluster_id() == kClusterId);
  CHECK(h.member_id() == kMemberId);
  CHECK(h.revision() == 1234567890123);
  CHECK(h.raft_term() == 77);
}
std::string KvBytes(const std::string& key) {
  return L(1, key) + V(2, 11) + V(3, 12) + V(4, 13) + L(5, "value-" + key) + V(6, 14);
}
void CheckKv(const mvccpb::KeyValue& kv, const std::string& key) {
  CHECK(kv.key() == key);
  CHECK(kv.create_revision() == 11);
  CHECK(kv.mod_revision() == 12);
  CHECK(kv.version() == 13);
  CHECK(kv.value() == "value-" + key);
  CHECK(kv.lease() == 14);
}
std::string MemberBytes(std::uint64_t id) {
  return U(1, id) + L(2, "name") + L(3, "http://p1") + L(3, "http://p2") + L(4, "http://c1") +
         V(5, 1);
}
void CheckMember(const pb::Member& m, std::uint64_t id) {
  CHECK(m.id() == id);
  CHECK(m.name() == "name");
  REQUIRE(m.peerurls_size() == 2);
  CHECK(m.peerurls(1) == "http://p2");
  REQUIRE(m.clienturls_size() == 1);
  CHECK(m.clienturls(0) == "http://c1");
  CHECK(m.islearner());
}

// ---- The reference's schema table (section 2), one message per line ----
// "Message field=number:type ...", type "T[]" = repeated. Message and enum types are written
// with the name protoc gives them in our files (package-qualified where it differs).
const char* const kReferenceSchema[] = {
    "etcdserverpb.ResponseHeader cluster_id=1:uint64 member_id=2:uint64 revision=3:int64 "
    "raft_term=4:uint64",
    "mvccpb.KeyValue key=1:bytes create_revision=2:int64 mod_revision=3:int64 version=4:int64 "
    "value=5:bytes lease=6:int64",
    "mvccpb.Event type=1:mvccpb.Event.EventType kv=2:mvccpb.KeyValue prev_kv=3:mvccpb.KeyValue",
    "authpb.UserAddOptions no_password=1:bool",
    "authpb.User name=1:bytes password=2:bytes roles=3:string[] options=4:authpb.UserAddOptions",
    "authpb.Permission permType=1:authpb.Permission.Type key=2:bytes range_end=3:bytes",
    "authpb.Role name=1:bytes keyPermission=2:authpb.Permission[]",
    "etcdserverpb.RangeRequest key=1:bytes range_end=2:bytes limit=3:int64 revision=4:int64 "
    "sort_order=5:etcdserverpb.RangeRequest.SortOrder "
    "sort_target=6:etcdserverpb.RangeRequest.SortTarget serializable=7:bool keys_only=8:bool "
    "count_only=9:bool min_mod_revision=10:int64 max_mod_revision=11:int64 "
    "min_create_revision=12:int64 max_create_revision=13:int64",
    "etcdserverpb.RangeResponse header=1:etcdserverpb.ResponseHeader kvs=2:mvccpb.KeyValue[] "
    "more=3:bool count=4:int64",
    "etcdserverpb.PutRequest key=1:bytes value=2:bytes lease=3:int64 prev_kv=4:bool "
    "ignore_value=5:bool ignore_lease=6:bool",
    "etcdserverpb.PutResponse header=1:etcdserverpb.ResponseHeader prev_kv=2:mvccpb.KeyValue",
    "etcdserverpb.DeleteRangeRequest key=1:bytes range_end=2:bytes prev_kv=3:bool",
    "etcdserverpb.DeleteRangeResponse header=1:etcdserverpb.ResponseHeader deleted=2:int64 "
    "prev_kvs=3:mvccpb.KeyValue[]",
    "etcdserverpb.RequestOp request_range=1:etcdserverpb.RangeRequest "
    "request_put=2:etcdserverpb.PutRequest request_delete_range=3:etcdserverpb.DeleteRangeRequest "
    "request_txn=4:etcdserverpb.TxnRequest",
    "etcdserverpb.ResponseOp response_range=1:etcdserverpb.RangeResponse "
    "response_put=2:etcdserverpb.PutResponse "
    "response_delete_range=3:etcdserverpb.DeleteRangeResponse "
    "response_txn=4:etcdserverpb.TxnResponse",
    "etcdserverpb.Compare result=1:etcdserverpb.Compare.CompareResult "
    "target=2:etcdserverpb.Compare.CompareTarget key=3:bytes version=4:int64 "
    "create_revision=5:int64 mod_revision=6:int64 value=7:bytes lease=8:int64 "
    "range_end=64:bytes",
    "etcdserverpb.TxnRequest compare=1:etcdserverpb.Compare[] success=2:etcdserverpb.RequestOp[] "
    "failure=3:etcdserverpb.RequestOp[]",
    "etcdserverpb.TxnResponse header=1:etcdserverpb.ResponseHeader succeeded=2:bool "
    "responses=3:etcdserverpb.ResponseOp[]",
    "etcdserverpb.CompactionRequest revision=1:int64 physical=2:bool",
    "etcdserverpb.CompactionResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.WatchRequest create_request=1:etcdserverpb.WatchCreateRequest "
    "cancel_request=2:etcdserverpb.WatchCancelRequest "
    "progress_request=3:etcdserverpb.WatchProgressRequest",
    "etcdserverpb.WatchCreateRequest key=1:bytes range_end=2:bytes start_revision=3:int64 "
    "progress_notify=4:bool filters=5:etcdserverpb.WatchCreateRequest.FilterType[] "
    "prev_kv=6:bool watch_id=7:int64 fragment=8:bool",
    "etcdserverpb.WatchCancelRequest watch_id=1:int64",
    "etcdserverpb.WatchProgressRequest",
    "etcdserverpb.WatchResponse header=1:etcdserverpb.ResponseHeader watch_id=2:int64 "
    "created=3:bool canceled=4:bool compact_revision=5:int64 cancel_reason=6:string "
    "fragment=7:bool events=11:mvccpb.Event[]",
    "etcdserverpb.LeaseGrantRequest TTL=1:int64 ID=2:int64",
    "etcdserverpb.LeaseGrantResponse header=1:etcdserverpb.ResponseHeader ID=2:int64 "
    "TTL=3:int64 error=4:string",
    "etcdserverpb.LeaseRevokeRequest ID=1:int64",
    "etcdserverpb.LeaseRevokeResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.LeaseKeepAliveRequest ID=1:int64",
    "etcdserverpb.LeaseKeepAliveResponse header=1:etcdserverpb.ResponseHeader ID=2:int64 "
    "TTL=3:int64",
    "etcdserverpb.LeaseTimeToLiveRequest ID=1:int64 keys=2:bool",
    "etcdserverpb.LeaseTimeToLiveResponse header=1:etcdserverpb.ResponseHeader ID=2:int64 "
    "TTL=3:int64 grantedTTL=4:int64 keys=5:bytes[]",
    "etcdserverpb.LeaseLeasesRequest",
    "etcdserverpb.LeaseStatus ID=1:int64",
    "etcdserverpb.LeaseLeasesResponse header=1:etcdserverpb.ResponseHeader "
    "leases=2:etcdserverpb.LeaseStatus[]",
    "etcdserverpb.LeaseCheckpoint ID=1:int64 remaining_TTL=2:int64",
    "etcdserverpb.LeaseCheckpointRequest checkpoints=1:etcdserverpb.LeaseCheckpoint[]",
    "etcdserverpb.LeaseCheckpointResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.Member ID=1:uint64 name=2:string peerURLs=3:string[] clientURLs=4:string[] "
    "isLearner=5:bool",
    "etcdserverpb.MemberAddRequest peerURLs=1:string[] isLearner=2:bool",
    "etcdserverpb.MemberAddResponse header=1:etcdserverpb.ResponseHeader "
    "member=2:etcdserverpb.Member members=3:etcdserverpb.Member[]",
    "etcdserverpb.MemberRemoveRequest ID=1:uint64",
    "etcdserverpb.MemberRemoveResponse header=1:etcdserverpb.ResponseHeader "
    "members=2:etcdserverpb.Member[]",
    "etcdserverpb.MemberUpdateRequest ID=1:uint64 peerURLs=2:string[]",
    "etcdserverpb.MemberUpdateResponse header=1:etcdserverpb.ResponseHeader "
    "members=2:etcdserverpb.Member[]",
    "etcdserverpb.MemberListRequest",
    "etcdserverpb.MemberListResponse header=1:etcdserverpb.ResponseHeader "
    "members=2:etcdserverpb.Member[]",
    "etcdserverpb.MemberPromoteRequest ID=1:uint64",
    "etcdserverpb.MemberPromoteResponse header=1:etcdserverpb.ResponseHeader "
    "members=2:etcdserverpb.Member[]",
    "etcdserverpb.AlarmRequest action=1:etcdserverpb.AlarmRequest.AlarmAction memberID=2:uint64 "
    "alarm=3:etcdserverpb.AlarmType",
    "etcdserverpb.AlarmMember memberID=1:uint64 alarm=2:etcdserverpb.AlarmType",
    "etcdserverpb.AlarmResponse header=1:etcdserverpb.ResponseHeader "
    "alarms=2:etcdserverpb.AlarmMember[]",
    "etcdserverpb.StatusRequest",
    "etcdserverpb.StatusResponse header=1:etcdserverpb.ResponseHeader version=2:string "
    "dbSize=3:int64 leader=4:uint64 raftIndex=5:uint64 raftTerm=6:uint64 "
    "raftAppliedIndex=7:uint64 errors=8:string[] dbSizeInUse=9:int64 isLearner=10:bool",
    "etcdserverpb.DefragmentRequest",
    "etcdserverpb.DefragmentResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.HashRequest",
    "etcdserverpb.HashResponse header=1:etcdserverpb.ResponseHeader hash=2:uint32",
    "etcdserverpb.HashKVRequest revision=1:int64",
    "etcdserverpb.HashKVResponse header=1:etcdserverpb.ResponseHeader hash=2:uint32 "
    "compact_revision=3:int64",
    "etcdserverpb.SnapshotRequest",
    "etcdserverpb.SnapshotResponse header=1:etcdserverpb.ResponseHeader remaining_bytes=2:uint64 "
    "blob=3:bytes",
    "etcdserverpb.MoveLeaderRequest targetID=1:uint64",
    "etcdserverpb.MoveLeaderResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthEnableRequest",
    "etcdserverpb.AuthDisableRequest",
    "etcdserverpb.AuthenticateRequest name=1:string password=2:string",
    "etcdserverpb.AuthUserAddRequest name=1:string password=2:string "
    "options=3:authpb.UserAddOptions",
    "etcdserverpb.AuthUserGetRequest name=1:string",
    "etcdserverpb.AuthUserDeleteRequest name=1:string",
    "etcdserverpb.AuthUserChangePasswordRequest name=1:string password=2:string",
    "etcdserverpb.AuthUserGrantRoleRequest user=1:string role=2:string",
    "etcdserverpb.AuthUserRevokeRoleRequest name=1:string role=2:string",
    "etcdserverpb.AuthRoleAddRequest name=1:string",
    "etcdserverpb.AuthRoleGetRequest role=1:string",
    "etcdserverpb.AuthRoleDeleteRequest role=1:string",
    "etcdserverpb.AuthUserListRequest",
    "etcdserverpb.AuthRoleListRequest",
    "etcdserverpb.AuthRoleGrantPermissionRequest name=1:string perm=2:authpb.Permission",
    "etcdserverpb.AuthRoleRevokePermissionRequest role=1:string key=2:bytes range_end=3:bytes",
    "etcdserverpb.AuthenticateResponse header=1:etcdserverpb.ResponseHeader token=2:string",
    "etcdserverpb.AuthUserGetResponse header=1:etcdserverpb.ResponseHeader roles=2:string[]",
    "etcdserverpb.AuthRoleGetResponse header=1:etcdserverpb.ResponseHeader "
    "perm=2:authpb.Permission[]",
    "etcdserverpb.AuthRoleListResponse header=1:etcdserverpb.ResponseHeader roles=2:string[]",
    "etcdserverpb.AuthUserListResponse header=1:etcdserverpb.ResponseHeader users=2:string[]",
    "etcdserverpb.AuthEnableResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthDisableResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserAddResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserDeleteResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserChangePasswordResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserGrantRoleResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthUserRevokeRoleResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthRoleAddResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthRoleDeleteResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthRoleGrantPermissionResponse header=1:etcdserverpb.ResponseHeader",
    "etcdserverpb.AuthRoleRevokePermissionResponse header=1:etcdserverpb.ResponseHeader",
};

// Enum values by number, from the reference: "Enum NAME=number ...".
const char* const kReferenceEnums[] = {
    "mvccpb.Event.EventType PUT=0 DELETE=1",
    "authpb.Permission.Type READ=0 WRITE=1 READWRITE=2",
    "etcdserverpb.RangeRequest.SortOrder NONE=0 ASCEND=1 DESCEND=2",
    "etcdserverpb.RangeRequest.SortTarget KEY=0 VERSION=1 CREATE=2 MOD=3 VALUE=4",
    "etcdserverpb.Compare.CompareResult EQUAL=0 GREATER=1 LESS=2 NOT_EQUAL=3",
    "etcdserverpb.Compare.CompareTarget VERSION=0 CREATE=1 MOD=2 VALUE=3 LEASE=4",
    "etcdserverpb.WatchCreateRequest.FilterType NOPUT=0 NODELETE=1",
    "etcdserverpb.AlarmType NONE=0 NOSPACE=1 CORRUPT=2",
    "etcdserverpb.AlarmRequest.AlarmAction GET=0 ACTIVATE=1 DEACTIVATE=2",
};

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string TypeOf(const FieldDescriptor* f) {
  std::string type;
  if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
    type = f->message_type()->full_name();
  } else if (f->type() == FieldDescriptor::TYPE_ENUM) {
    type = f->enum_type()->full_name();
  } else {
    type = f->type_name();
  }
  return f->is_repeated() ? type + "[]" : type;
}

}  // namespace

TEST_CASE("Every message and field matches the reference schema table", "[proto][wire]") {
  // Goal: each message in the reference exists with exactly the listed fields, numbers, wire
  // types and repetition, and no extra fields (an extra field could shadow a number).
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  pb::RangeRequest force_link_rpc;  // the generated files register their descriptors
  mvccpb::KeyValue force_link_kv;
  authpb::Role force_link_auth;
  for (const char* line : kReferenceSchema) {
    const auto words = Words(line);
    INFO(line);
    const auto* message = pool->FindMessageTypeByName(words[0]);
    REQUIRE(message != nullptr);
    CHECK(static_cast<std::size_t>(message->field_count()) == words.size() - 1);
    for (std::size_t i = 1; i < words.size(); ++i) {
      const auto eq = words[i].find('=');
      const auto colon = words[i].find(':');
      const std::string name = words[i].substr(0, eq);
      const int number = std::stoi(words[i].substr(eq + 1, colon - eq - 1));
      const std::string type = words[i].substr(colon + 1);
      INFO("field " << name);
      const auto* field = message->FindFieldByName(name);
      REQUIRE(field != nullptr);
      CHECK(field->number() == number);
      CHECK(TypeOf(field) == type);
      CHECK(field->is_packed() == (field->is_repeated() && field->is_packable()));
    }
  }
  for (const char* line : kReferenceEnums) {
    const auto words = Words(line);
    INFO(line);
    const auto* e = pool->FindEnumTypeByName(words[0]);
    REQUIRE(e != nullptr);
    CHECK(static_cast<std::size_t>(e->value_count()) == words.size() - 1);
    for (std::size_t i = 1; i < words.size(); ++i) {
      const auto eq = words[i].find('=');
      const auto* value = e->FindValueByName(words[i].substr(0, eq));
      REQUIRE(value != nullptr);
      CHECK(value->number() == std::stoi(words[i].substr(eq + 1)));
    }
  }
  // The services and methods, whose names are on the wire as HTTP/2 paths.
  const std::map<std::string, std::vector<std::string>> services = {
      {"etcdserverpb.KV", {"Range", "Put", "DeleteRange", "Txn", "Compact"}},
      {"etcdserverpb.Watch", {"Watch"}},
      {"etcdserverpb.Lease",
       {"LeaseGrant", "LeaseRevoke", "LeaseKeepAlive", "LeaseTimeToLive", "LeaseLeases"}},
      {"etcdserverpb.Cluster",
       {"MemberAdd", "MemberRemove", "MemberUpdate", "MemberList", "MemberPromote"}},
      {"etcdserverpb.Maintenance",
       {"Alarm", "Status", "Defragment", "Hash", "HashKV", "Snapshot", "MoveLeader"}},
      {"etcdserverpb.Auth",
       {"AuthEnable", "AuthDisable", "Authenticate", "UserAdd", "UserGet", "UserList", "UserDelete",
        "UserChangePassword", "UserGrantRole", "UserRevokeRole", "RoleAdd", "RoleGet", "RoleList",
        "RoleDelete", "RoleGrantPermission", "RoleRevokePermission"}},
  };
  for (const auto& [service_name, methods] : services) {
    INFO(service_name);
    const auto* service = pool->FindServiceByName(service_name);
    REQUIRE(service != nullptr);
    CHECK(static_cast<std::size_t>(service->method_count()) == methods.size());
    for (const auto& method : methods) CHECK(service->FindMethodByName(method) != nullptr);
  }
  const auto* watch = pool->FindMethodByName("etcdserverpb.Watch.Watch");
  CHECK(watch->client_streaming());
  CHECK(watch->server_streaming());
  const auto* keep_alive = pool->FindMethodByName("etcdserverpb.Lease.LeaseKeepAlive");
  CHECK(keep_alive->client_streaming());
  CHECK(keep_alive->server_streaming());
  const auto* snapshot = pool->FindMethodByName("etcdserverpb.Maintenance.Snapshot");
  CHECK_FALSE(snapshot->client_streaming());
  CHECK(snapshot->server_streaming());
}

TEST_CASE("Hand-encoded KV responses decode field by field", "[proto][wire]") {
  // Goal: RangeResponse, PutResponse, DeleteRangeResponse and a nested TxnResponse written byte
  // by byte from the reference's numbers decode into the right fields.
  const auto range = Parse<pb::RangeResponse>(L(1, HeaderBytes()) + L(2, KvBytes("a")) +
                                              L(2, KvBytes("b")) + V(3, 1) + V(4, 99));
  CheckHeader(range.header());
  REQUIRE(range.kvs_size() == 2);
  CheckKv(range.kvs(0), "a");
  CheckKv(range.kvs(1), "b");
  CHECK(range.more());
  CHECK(range.count() == 99);

  const auto put = Parse<pb::PutResponse>(L(1, HeaderBytes()) + L(2, KvBytes("p")));
  CheckHeader(put.header());
  CheckKv(put.prev_kv(), "p");

  const auto del =
      Parse<pb::DeleteRangeResponse>(L(1, HeaderBytes()) + V(2, 5) + L(3, KvBytes("d")));
  CheckHeader(del.header());
  CHECK(del.deleted() == 5);
  REQUIRE(del.prev_kvs_size() == 1);
  CheckKv(del.prev_kvs(0), "d");

  const std::string inner_txn = L(1, HeaderBytes()) + V(2, 1) + L(3, L(2, L(2, KvBytes("n"))));
  const auto txn = Parse<pb::TxnResponse>(L(1, HeaderBytes()) + V(2, 1) + L(3, L(1, V(4, 7))) +
                                          L(3, L(2, L(2, KvBytes("q")))) + L(3, L(3, V(2, 3))) +
                                          L(3, L(4, inner_txn)));
  CheckHeader(txn.header());
  CHECK(txn.succeeded());
  REQUIRE(txn.responses_size() == 4);
  REQUIRE(txn.responses(0).has_response_range());
  CHECK(txn.responses(0).response_range().count() == 7);
  REQUIRE(txn.responses(1).has_response_put());
  CheckKv(txn.responses(1).response_put().prev_kv(), "q");
  REQUIRE(txn.responses(2).has_response_delete_range());
  CHECK(txn.responses(2).response_delete_range().deleted() == 3);
  REQUIRE(txn.responses(3).has_response_txn());
  const auto& nested = txn.responses(3).response_txn();
  CHECK(nested.succeeded());
  REQUIRE(nested.responses_size() == 1);
  CheckKv(nested.responses(0).response_put().prev_kv(), "n");

  CheckHeader(Parse<pb::CompactionResponse>(L(1, HeaderBytes())).header());
}

TEST_CASE("Hand-encoded WatchResponse decodes, events at field 11", "[proto][wire]") {
  // Goal: every WatchResponse field, incl. events at 11 and a negative watch_id as a 10-byte
  // varint (int64, not sint64), decodes as etcd encodes it.
  const std::string event = V(1, 1) + L(2, KvBytes("w")) + L(3, KvBytes("old"));
  const auto resp = Parse<pb::WatchResponse>(L(1, HeaderBytes()) + V(2, -1) + V(3, 1) + V(4, 1) +
                                             V(5, 42) + L(6, "why") + V(7, 1) + L(11, event) +
                                             L(11, V(2 - 1, 0) + L(2, KvBytes("x"))));
  CheckHeader(resp.header());
  CHECK(resp.watch_id() == -1);
  CHECK(resp.created());
  CHECK(resp.canceled());
  CHECK(resp.compact_revision() == 42);
  CHECK(resp.cancel_reason() == "why");
  CHECK(resp.fragment());
  REQUIRE(resp.events_size() == 2);
  CHECK(resp.events(0).type() == mvccpb::Event::DELETE);
  CheckKv(resp.events(0).kv(), "w");
  CheckKv(resp.events(0).prev_kv(), "old");
  CHECK(resp.events(1).type() == mvccpb::Event::PUT);
  CheckKv(resp.events(1).kv(), "x");
  CHECK_FALSE(resp.events(1).has_prev_kv());

  // Literal bytes, no encoder: events = field 11, length-delimited -> tag 0x5a.
  const auto literal = Parse<pb::WatchResponse>(std::string("\x10\x07\x5a\x02\x08\x01", 6));
  CHECK(literal.watch_id() == 7);
  REQUIRE(literal.events_size() == 1);
  CHECK(literal.events(0).type() == mvccpb::Event::DELETE);
}

TEST_CASE("Hand-encoded Lease, Cluster, Maintenance and Auth responses decode", "[proto][wire]") {
  // Goal: the remaining response messages decode field by field from reference numbers.
  const auto grant = Parse<pb::LeaseGrantResponse>(L(1, HeaderBytes()) + V(2, 0x2040a200b34e590c) +
                                                   V(3, 30) + L(4, "err"));
  CheckHeader(grant.header());
  CHECK(grant.id() == 0x2040a200b34e590c);
  CHECK(grant.ttl() == 30);
  CHECK(grant.error() == "err");
  const auto keep = Parse<pb::LeaseKeepAliveResponse>(L(1, HeaderBytes()) + V(2, 5) + V(3, 6));
  CheckHeader(keep.header());
  CHECK(keep.id() == 5);
  CHECK(keep.ttl() == 6);
  const auto ttl = Parse<pb::LeaseTimeToLiveResponse>(L(1, HeaderBytes()) + V(2, 5) + V(3, -1) +
                                                      V(4, 60) + L(5, "k1") + L(5, "k2"));
  CheckHeader(ttl.header());
  CHECK(ttl.id() == 5);
  CHECK(ttl.ttl() == -1);
  CHECK(ttl.grantedttl() == 60);
  REQUIRE(ttl.keys_size() == 2);
  CHECK(ttl.keys(1) == "k2");
  const auto leases =
      Parse<pb::LeaseLeasesResponse>(L(1, HeaderBytes()) + L(2, V(1, 8)) + L(2, V(1, 9)));
  REQUIRE(leases.leases_size() == 2);
  CHECK(leases.leases(1).id() == 9);
  CheckHeader(Parse<pb::LeaseRevokeResponse>(L(1, HeaderBytes())).header());

  const auto list =
      Parse<pb::MemberListResponse>(L(1, HeaderBytes()) + L(2, MemberBytes(kMemberId)));
  CheckHeader(list.header());
  REQUIRE(list.members_size() == 1);
  CheckMember(list.members(0), kMemberId);
  const auto add = Parse<pb::MemberAddResponse>(L(1, HeaderBytes()) + L(2, MemberBytes(3)) +
                                                L(3, MemberBytes(3)) + L(3, MemberBytes(4)));
  CheckHeader(add.header());
  CheckMember(add.member(), 3);
  REQUIRE(add.members_size() == 2);
  CheckMember(add.members(1), 4);
  CheckMember(Parse<pb::MemberRemoveResponse>(L(2, MemberBytes(5))).members(0), 5);
  CheckMember(Parse<pb::MemberUpdateResponse>(L(2, MemberBytes(6))).members(0), 6);
  CheckMember(Parse<pb::MemberPromoteResponse>(L(2, MemberBytes(7))).members(0), 7);

  const auto status = Parse<pb::StatusResponse>(
      L(1, HeaderBytes()) + L(2, "3.4.23") + V(3, 24576) + U(4, kMemberId) + U(5, 105) + U(6, 106) +
      U(7, 107) + L(8, "etcdserver: no leader") + L(8, "NOSPACE") + V(9, 20480) + V(10, 1));
  CheckHeader(status.header());
  CHECK(status.version() == "3.4.23");
  CHECK(status.dbsize() == 24576);
  CHECK(status.leader() == kMemberId);
  CHECK(status.raftindex() == 105);
  CHECK(status.raftterm() == 106);
  CHECK(status.raftappliedindex() == 107);
  REQUIRE(status.errors_size() == 2);
  CHECK(status.errors(0) == "etcdserver: no leader");
  CHECK(status.dbsizeinuse() == 20480);
  CHECK(status.islearner());

  const auto alarms = Parse<pb::AlarmResponse>(L(1, HeaderBytes()) + L(2, U(1, 3) + V(2, 1)) +
                                               L(2, U(1, 4) + V(2, 2)));
  REQUIRE(alarms.alarms_size() == 2);
  CHECK(alarms.alarms(0).memberid() == 3);
  CHECK(alarms.alarms(0).alarm() == pb::NOSPACE);
  CHECK(alarms.alarms(1).alarm() == pb::CORRUPT);
  const auto hash = Parse<pb::HashResponse>(L(1, HeaderBytes()) + U(2, 0xfffffffe));
  CheckHeader(hash.header());
  CHECK(hash.hash() == 0xfffffffeU);
  const auto hashkv = Parse<pb::HashKVResponse>(L(1, HeaderBytes()) + U(2, 0x80000001) + V(3, 9));
  CHECK(hashkv.hash() == 0x80000001U);
  CHECK(hashkv.compact_revision() == 9);
  const auto snap = Parse<pb::SnapshotResponse>(L(1, HeaderBytes()) + U(2, 1ULL << 40) +
                                                L(3, std::string("\x00\xff", 2)));
  CheckHeader(snap.header());
  CHECK(snap.remaining_bytes() == (1ULL << 40));
  CHECK(snap.blob() == std::string("\x00\xff", 2));
  CheckHeader(Parse<pb::DefragmentResponse>(L(1, HeaderBytes())).header());
  CheckHeader(Parse<pb::MoveLeaderResponse>(L(1, HeaderBytes())).header());

  const auto token =
      Parse<pb::AuthenticateResponse>(L(1, HeaderBytes()) + L(2, "YLstHzSlbAoefewh.19110"));
  CheckHeader(token.header());
  CHECK(token.token() == "YLstHzSlbAoefewh.19110");
  const auto user = Parse<pb::AuthUserGetResponse>(L(2, "root") + L(2, "app"));
  REQUIRE(user.roles_size() == 2);
  CHECK(user.roles(1) == "app");
  const auto role = Parse<pb::AuthRoleGetResponse>(L(2, V(1, 2) + L(2, "/a/") + L(3, "/a0")));
  REQUIRE(role.perm_size() == 1);
  CHECK(role.perm(0).permtype() == authpb::Permission::READWRITE);
  CHECK(role.perm(0).key() == "/a/");
  CHECK(role.perm(0).range_end() == "/a0");
  CHECK(Parse<pb::AuthRoleListResponse>(L(2, "r1")).roles(0) == "r1");
  CHECK(Parse<pb::AuthUserListResponse>(L(2, "u1")).users(0) == "u1");
}

TEST_CASE("Our requests serialize to the bytes etcd expects", "[proto][wire]") {
  // Goal: every request field we send lands under the reference's number with its wire type.
  pb::RangeRequest range;
  range.set_key("k");
  range.set_range_end("e");
  range.set_limit(3);
  range.set_revision(4);
  range.set_sort_order(pb::RangeRequest::DESCEND);
  range.set_sort_target(pb::RangeRequest::VALUE);
  range.set_serializable(true);
  range.set_keys_only(true);
  range.set_count_only(true);
  range.set_min_mod_revision(10);
  range.set_max_mod_revision(11);
  range.set_min_create_revision(12);
  range.set_max_create_revision(13);
  CHECK(Hex(range.SerializeAsString()) ==
        Hex(L(1, "k") + L(2, "e") + V(3, 3) + V(4, 4) + V(5, 2) + V(6, 4) + V(7, 1) + V(8, 1) +
            V(9, 1) + V(10, 10) + V(11, 11) + V(12, 12) + V(13, 13)));

  pb::PutRequest put;
  put.set_key("k");
  put.set_value("v");
  put.set_lease(-2);
  put.set_prev_kv(true);
  put.set_ignore_value(true);
  put.set_ignore_lease(true);
  CHECK(Hex(put.SerializeAsString()) ==
        Hex(L(1, "k") + L(2, "v") + V(3, -2) + V(4, 1) + V(5, 1) + V(6, 1)));

  pb::DeleteRangeRequest del;
  del.set_key("k");
  del.set_range_end(std::string(1, '\0'));
  del.set_prev_kv(true);
  CHECK(Hex(del.SerializeAsString()) == Hex(L(1, "k") + L(2, std::string(1, '\0')) + V(3, 1)));

  // Compare: the oneof is sent even when it holds 0, and range_end is field 64, whose tag
  // (64 << 3 | 2 = 514) takes two varint bytes: 0x82 0x04.
  pb::Compare cmp;
  cmp.set_result(pb::Compare::NOT_EQUAL);
  cmp.set_target(pb::Compare::MOD);
  cmp.set_key("k");
  cmp.set_mod_revision(0);
  cmp.set_range_end("z");
  CHECK(Hex(cmp.SerializeAsString()) ==
        Hex(V(1, 3) + V(2, 2) + L(3, "k") + V(6, 0) + std::string("\x82\x04\x01z", 4)));
  cmp.set_version(5);
  CHECK(Hex(cmp.SerializeAsString()).find(Hex(V(4, 5))) != std::string::npos);
  cmp.set_create_revision(6);
  CHECK(Hex(cmp.SerializeAsString()).find(Hex(V(5, 6))) != std::string::npos);
  cmp.set_value("v");
  CHECK(Hex(cmp.SerializeAsString()).find(Hex(L(7, "v"))) != std::string::npos);
  cmp.set_lease(8);
  CHECK(Hex(cmp.SerializeAsString()) ==
        Hex(V(1, 3) + V(2, 2) + L(3, "k") + V(8, 8) + std::string("\x82\x04\x01z", 4)));

  pb::TxnRequest txn;
  *txn.add_compare() = cmp;
  txn.add_success()->mutable_request_range()->set_key("r");
  txn.add_success()->mutable_request_put()->set_key("p");
  txn.add_failure()->mutable_request_delete_range()->set_key("d");
  txn.add_failure()->mutable_request_txn();
  CHECK(Hex(txn.SerializeAsString()) ==
        Hex(L(1, cmp.SerializeAsString()) + L(2, L(1, L(1, "r"))) + L(2, L(2, L(1, "p"))) +
            L(3, L(3, L(1, "d"))) + L(3, L(4, ""))));

  pb::CompactionRequest compact;
  compact.set_revision(9);
  compact.set_physical(true);
  CHECK(Hex(compact.SerializeAsString()) == Hex(V(1, 9) + V(2, 1)));

  pb::WatchRequest watch;
  auto* create = watch.mutable_create_request();
  create->set_key("k");
  create->set_range_end("e");
  create->set_start_revision(3);
  create->set_progress_notify(true);
  create->add_filters(pb::WatchCreateRequest::NOPUT);
  create->add_filters(pb::WatchCreateRequest::NODELETE);
  create->set_prev_kv(true);
  create->set_watch_id(100);
  create->set_fragment(true);
  const std::string packed_filters = L(5, Varint(0) + Varint(1));
  CHECK(Hex(watch.SerializeAsString()) ==
        Hex(L(1, L(1, "k") + L(2, "e") + V(3, 3) + V(4, 1) + packed_filters + V(6, 1) + V(7, 100) +
                     V(8, 1))));
  // etcd may also send (and must accept) filters unpacked: both decode the same.
  const auto unpacked = Parse<pb::WatchCreateRequest>(L(1, "k") + V(5, 1) + V(5, 0) + V(7, 100));
  REQUIRE(unpacked.filters_size() == 2);
  CHECK(unpacked.filters(0) == pb::WatchCreateRequest::NODELETE);
  watch.mutable_cancel_request()->set_watch_id(100);
  CHECK(Hex(watch.SerializeAsString()) == Hex(L(2, V(1, 100))));
  watch.mutable_progress_request();
  CHECK(Hex(watch.SerializeAsString()) == Hex(L(3, "")));

  pb::LeaseGrantRequest grant;
  grant.set_ttl(30);
  grant.set_id(7);
  CHECK(Hex(grant.SerializeAsString()) == Hex(V(1, 30) + V(2, 7)));
  pb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(7);
  ttl.set_keys(true);
  CHECK(Hex(ttl.SerializeAsString()) == Hex(V(1, 7) + V(2, 1)));
  pb::LeaseKeepAliveRequest keep;
  keep.set_id(7);
  CHECK(Hex(keep.SerializeAsString()) == Hex(V(1, 7)));
  pb::LeaseRevokeRequest revoke;
  revoke.set_id(7);
  CHECK(Hex(revoke.SerializeAsString()) == Hex(V(1, 7)));

  pb::MemberAddRequest member_add;
  member_add.add_peerurls("http://a");
  member_add.set_islearner(true);
  CHECK(Hex(member_add.SerializeAsString()) == Hex(L(1, "http://a") + V(2, 1)));
  pb::MemberUpdateRequest member_update;
  member_update.set_id(kMemberId);
  member_update.add_peerurls("http://b");
  CHECK(Hex(member_update.SerializeAsString()) == Hex(U(1, kMemberId) + L(2, "http://b")));
  pb::MemberRemoveRequest member_remove;
  member_remove.set_id(kMemberId);
  CHECK(Hex(member_remove.SerializeAsString()) == Hex(U(1, kMemberId)));
  pb::MemberPromoteRequest member_promote;
  member_promote.set_id(kMemberId);
  CHECK(Hex(member_promote.SerializeAsString()) == Hex(U(1, kMemberId)));

  pb::AlarmRequest alarm;
  alarm.set_action(pb::AlarmRequest::DEACTIVATE);
  alarm.set_memberid(kMemberId);
  alarm.set_alarm(pb::NOSPACE);
  CHECK(Hex(alarm.SerializeAsString()) == Hex(V(1, 2) + U(2, kMemberId) + V(3, 1)));
  pb::HashKVRequest hashkv;
  hashkv.set_revision(5);
  CHECK(Hex(hashkv.SerializeAsString()) == Hex(V(1, 5)));
  pb::MoveLeaderRequest move;
  move.set_targetid(kMemberId);
  CHECK(Hex(move.SerializeAsString()) == Hex(U(1, kMemberId)));

  pb::AuthenticateRequest auth;
  auth.set_name("root");
  auth.set_password("pw");
  CHECK(Hex(auth.SerializeAsString()) == Hex(L(1, "root") + L(2, "pw")));
  pb::AuthUserAddRequest user_add;
  user_add.set_name("u");
  user_add.set_password("pw");
  user_add.mutable_options()->set_no_password(true);
  CHECK(Hex(user_add.SerializeAsString()) == Hex(L(1, "u") + L(2, "pw") + L(3, V(1, 1))));
  pb::AuthUserGrantRoleRequest grant_role;
  grant_role.set_user("u");
  grant_role.set_role("r");
  CHECK(Hex(grant_role.SerializeAsString()) == Hex(L(1, "u") + L(2, "r")));
  pb::AuthRoleGrantPermissionRequest grant_perm;
  grant_perm.set_name("r");
  grant_perm.mutable_perm()->set_permtype(authpb::Permission::WRITE);
  grant_perm.mutable_perm()->set_key("/a/");
  grant_perm.mutable_perm()->set_range_end("/a0");
  CHECK(Hex(grant_perm.SerializeAsString()) ==
        Hex(L(1, "r") + L(2, V(1, 1) + L(2, "/a/") + L(3, "/a0"))));
  pb::AuthRoleRevokePermissionRequest revoke_perm;
  revoke_perm.set_role("r");
  revoke_perm.set_key("/a/");
  revoke_perm.set_range_end("/a0");
  CHECK(Hex(revoke_perm.SerializeAsString()) == Hex(L(1, "r") + L(2, "/a/") + L(3, "/a0")));
}

TEST_CASE("Bytes under a wrong field number are not taken for the right field", "[proto][wire]") {
  // Goal: show the decoding checks can fail: if etcd used another number than ours, the value
  // would land in the unknown fields (which the compat tests assert empty), not in the field.
  pb::WatchResponse resp;
  REQUIRE(resp.ParseFromString(L(10, V(1, 1))));  // events one number off
  CHECK(resp.events_size() == 0);
  CHECK_FALSE(resp.GetReflection()->GetUnknownFields(resp).empty());
  pb::Compare cmp;
  REQUIRE(cmp.ParseFromString(L(9, "z")));  // range_end at 9 instead of 64
  CHECK(cmp.range_end().empty());
  CHECK_FALSE(cmp.GetReflection()->GetUnknownFields(cmp).empty());
  pb::RangeResponse range;
  REQUIRE(range.ParseFromString(V(3, 5)));  // count sent under "more"'s number
  CHECK(range.count() == 0);
  CHECK(range.more());
}

TEST_CASE("Sha256 matches the FIPS 180-4 test vectors", "[proto][sha256]") {
  // Goal: the digest used to check snapshot trailers is right (empty, one and two blocks).
  const auto hex = [](std::string_view data) {
    const auto digest = kvcompat::Sha256(data);
    return Hex(std::string(digest.begin(), digest.end()));
  };
  CHECK(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
