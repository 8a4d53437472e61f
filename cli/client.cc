#include "cli/client.h"

#include <iterator>

namespace cli {

namespace {

std::chrono::system_clock::time_point DeadlineAfter(std::chrono::nanoseconds timeout) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  // Reconnect quickly, as clientv3 does; the defaults back off up to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // clientv3 limits: send 2 MiB, receive unlimited.
  args.SetMaxSendMessageSize(2 * 1024 * 1024);
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// grpc-go's codes.Code.String().
std::string GoCodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  const auto index = static_cast<std::size_t>(code);
  if (index < std::size(kNames)) return kNames[index];
  return "Code(" + std::to_string(index) + ")";
}

}  // namespace

std::string StripScheme(const std::string& endpoint) {
  for (const char* scheme : {"http://", "https://", "unix://"}) {
    std::string s(scheme);
    if (endpoint.rfind(s, 0) == 0) return endpoint.substr(s.size());
  }
  return endpoint;
}

Client::Client(std::string endpoint, std::shared_ptr<grpc::Channel> channel,
               std::chrono::nanoseconds command_timeout)
    : endpoint_(std::move(endpoint)),
      channel_(std::move(channel)),
      command_timeout_(command_timeout),
      kv_(etcdserverpb::KV::NewStub(channel_)),
      watch_(etcdserverpb::Watch::NewStub(channel_)),
      lease_(etcdserverpb::Lease::NewStub(channel_)),
      cluster_(etcdserverpb::Cluster::NewStub(channel_)),
      maintenance_(etcdserverpb::Maintenance::NewStub(channel_)) {}

std::unique_ptr<Client> Client::Dial(const std::vector<std::string>& endpoints,
                                     std::chrono::nanoseconds dial_timeout,
                                     std::chrono::nanoseconds command_timeout) {
  KVCTL_CHECK(!endpoints.empty());
  // Bounded by the number of endpoints; each attempt by the dial timeout.
  for (const std::string& endpoint : endpoints) {
    auto channel = MakeChannel(StripScheme(endpoint));
    if (channel->WaitForConnected(DeadlineAfter(dial_timeout))) {
      return std::unique_ptr<Client>(new Client(endpoint, std::move(channel), command_timeout));
    }
  }
  return std::unique_ptr<Client>(
      new Client(endpoints.front(), MakeChannel(StripScheme(endpoints.front())), command_timeout));
}

std::unique_ptr<grpc::ClientContext> Client::NewContext() const {
  auto context = NewStreamContext();
  context->set_deadline(DeadlineAfter(command_timeout_));
  return context;
}

std::unique_ptr<grpc::ClientContext> Client::NewStreamContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("client-api-version", "3.4");
  context->set_wait_for_ready(true);
  return context;
}

Status RpcError(const grpc::Status& status) {
  if (status.ok()) return Status::Ok();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
      status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    if (status.error_message().rfind("etcdserver:", 0) == 0) {
      return Status::Error(kExitError, status.error_message());
    }
    return Status::Error(kExitError, "context deadline exceeded");
  }
  // clientv3 turns the server's known errors (all "etcdserver: ...") into their text and
  // leaves any other gRPC error in grpc-go's form, e.g. an unimplemented method.
  if (status.error_message().rfind("etcdserver: ", 0) == 0) {
    return Status::Error(kExitError, status.error_message());
  }
  return Status::Error(kExitError, "rpc error: code = " + GoCodeName(status.error_code()) +
                                       " desc = " + status.error_message());
}

}  // namespace cli
