#include "tests/proto/etcd_client.h"

#include <cstdlib>

namespace kvcompat {

std::filesystem::path ServerBinary() {
  const char* env = std::getenv("KV_COMPAT_SERVER");
  const std::filesystem::path path = (env != nullptr && *env != '\0') ? env : "/usr/bin/etcd";
  INFO("server under test " << path.string()
                            << " is missing: install etcd-server (scripts/setup.sh) or set "
                               "KV_COMPAT_SERVER to an etcd-compatible binary");
  REQUIRE(std::filesystem::exists(path));
  return path;
}

namespace {

void CollectUnknown(const google::protobuf::Message& msg, const std::string& path,
                    std::vector<std::string>& out) {
  const auto* reflection = msg.GetReflection();
  const auto& unknown = reflection->GetUnknownFields(msg);
  for (int i = 0; i < unknown.field_count(); ++i) {
    out.push_back(path + "#" + std::to_string(unknown.field(i).number()));
  }
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(msg, &fields);
  for (const auto* field : fields) {
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const std::string sub = path + "." + field->name();
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(msg, field); ++i) {
        CollectUnknown(reflection->GetRepeatedMessage(msg, field, i),
                       sub + "[" + std::to_string(i) + "]", out);
      }
    } else {
      CollectUnknown(reflection->GetMessage(msg, field), sub, out);
    }
  }
}

}  // namespace

std::vector<std::string> UnknownFieldPaths(const google::protobuf::Message& msg) {
  std::vector<std::string> out;
  CollectUnknown(msg, msg.GetDescriptor()->name(), out);
  return out;
}

Stubs::Stubs(const std::shared_ptr<grpc::Channel>& channel)
    : kv(pb::KV::NewStub(channel)),
      watch(pb::Watch::NewStub(channel)),
      lease(pb::Lease::NewStub(channel)),
      cluster(pb::Cluster::NewStub(channel)),
      maintenance(pb::Maintenance::NewStub(channel)),
      auth(pb::Auth::NewStub(channel)) {}

Server::Server(std::size_t members, const std::filesystem::path& binary,
               const std::vector<std::string>& extra_args) {
  kvtest::ClusterOptions options;
  options.binary = binary.empty() ? ServerBinary() : binary;
  options.extra_args = extra_args;
  options.member_count = members;
  cluster_ = kvtest::StartEtcdLikeCluster(options);
  for (std::size_t i = 0; i < members; ++i) {
    stubs_.push_back(std::make_unique<Stubs>(kvtest::MakeChannel(cluster_->endpoint(i))));
    const auto status = Call(*on(i).maintenance, &pb::Maintenance::Stub::Status, {});
    REQUIRE(status.header().member_id() != 0);
    REQUIRE(status.header().cluster_id() != 0);
    if (i == 0) cluster_id_ = status.header().cluster_id();
    REQUIRE(status.header().cluster_id() == cluster_id_);
    member_ids_.push_back(status.header().member_id());
  }
}

void Server::Reconnect(std::size_t i) {
  stubs_.at(i) = std::make_unique<Stubs>(kvtest::MakeChannel(cluster_->endpoint(i)));
}

void Server::CheckHeader(const pb::ResponseHeader& header, std::int64_t revision,
                         std::size_t member) const {
  CHECK(header.cluster_id() == cluster_id_);
  CHECK(header.member_id() == member_ids_.at(member));
  CHECK(header.raft_term() >= 1);
  CHECK(header.revision() == revision);
}

void CheckKv(const mvccpb::KeyValue& kv, const std::string& key, const std::string& value,
             std::int64_t create_revision, std::int64_t mod_revision, std::int64_t version,
             std::int64_t lease) {
  INFO("kv {" << kv.ShortDebugString() << "}");
  CHECK(kv.key() == key);
  CHECK(kv.value() == value);
  CHECK(kv.create_revision() == create_revision);
  CHECK(kv.mod_revision() == mod_revision);
  CHECK(kv.version() == version);
  CHECK(kv.lease() == lease);
}

pb::PutRequest PutReq(const std::string& key, const std::string& value, std::int64_t lease) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  return req;
}

pb::RangeRequest RangeReq(const std::string& key, const std::string& range_end) {
  pb::RangeRequest req;
  req.set_key(key);
  req.set_range_end(range_end);
  return req;
}

pb::DeleteRangeRequest DeleteReq(const std::string& key, const std::string& range_end) {
  pb::DeleteRangeRequest req;
  req.set_key(key);
  req.set_range_end(range_end);
  return req;
}

pb::PutResponse Put(Server& s, const std::string& key, const std::string& value,
                    std::int64_t lease) {
  return Call(*s.on().kv, &pb::KV::Stub::Put, PutReq(key, value, lease));
}

pb::RangeResponse Range(Server& s, const pb::RangeRequest& req) {
  return Call(*s.on().kv, &pb::KV::Stub::Range, req);
}

pb::RangeResponse Get(Server& s, const std::string& key, const std::string& range_end) {
  return Range(s, RangeReq(key, range_end));
}

std::int64_t CurrentRevision(Server& s) {
  return Get(s, "\x01unused-probe-key").header().revision();
}

}  // namespace kvcompat
