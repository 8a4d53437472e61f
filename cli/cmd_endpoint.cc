// kvctl endpoint health|status|hashkv [--cluster]: etcdctl's `endpoint` commands, one
// connection per endpoint, queried in parallel (at most kEndpointsInFlightMax at once) and
// printed in endpoint order.
#include <algorithm>
#include <functional>

#include "cli/commands.h"
#include "cli/endpoints.h"

namespace cli {
namespace {

struct EndpointFlags {
  std::vector<std::string> args;
  bool cluster = false;
  std::int64_t rev = 0;
};

Status RunHealth(Context& ctx, const EndpointFlags& f) {
  std::vector<std::string> endpoints;
  Status s = ResolveEndpoints(ctx, f.cluster, &endpoints);
  if (!s.ok()) return s;
  std::vector<EndpointHealth> list(endpoints.size());
  ForEachInParallel(endpoints.size(), kEndpointsInFlightMax, [&](std::size_t i) {
    const std::string& ep = endpoints[i];
    auto client = Client::Dial({ep}, ctx.global.dial_timeout, ctx.global.command_timeout);
    auto start = std::chrono::steady_clock::now();
    etcdserverpb::RangeRequest req;
    req.set_key("health");
    etcdserverpb::RangeResponse resp;
    auto rpc = client->NewContext();
    grpc::Status st = client->kv().Range(rpc.get(), req, &resp);
    EndpointHealth& h = list[i];
    h.endpoint = ep;
    h.took = std::chrono::steady_clock::now() - start;
    // A permission error still proves the member can commit (etcdctl's rule).
    if (!st.ok() && st.error_code() != grpc::StatusCode::PERMISSION_DENIED) {
      h.error = RpcError(st).message;
    }
    h.healthy = h.error.empty();
  });
  const bool unhealthy =
      std::any_of(list.begin(), list.end(), [](const EndpointHealth& h) { return !h.healthy; });
  s = MakePrinter(ctx)->EndpointHealthList(list);
  if (!s.ok()) return s;
  if (unhealthy) return Status::Error(kExitError, "unhealthy cluster");
  return Status::Ok();
}

// Queries every endpoint with `call` in parallel; prints "<failure> of endpoint EP (why)" on
// stderr for the failed ones and returns the successful responses, both in endpoint order.
template <typename Response>
std::vector<Response> QueryEach(Context& ctx, const std::vector<std::string>& endpoints,
                                const std::string& failure,
                                const std::function<Status(Client&, Response*)>& call,
                                bool* failed) {
  std::vector<Response> ok(endpoints.size());
  std::vector<Status> status(endpoints.size());
  ForEachInParallel(endpoints.size(), kEndpointsInFlightMax, [&](std::size_t i) {
    auto client = Client::Dial({endpoints[i]}, ctx.global.dial_timeout, ctx.global.command_timeout);
    ok[i].endpoint = endpoints[i];
    status[i] = call(*client, &ok[i]);
  });
  std::vector<Response> list;
  *failed = false;
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    if (!status[i].ok()) {
      *ctx.err << failure << " of endpoint " << endpoints[i] << " (" << status[i].message << ")\n";
      *failed = true;
      continue;
    }
    list.push_back(std::move(ok[i]));
  }
  return list;
}

Status RunStatus(Context& ctx, const EndpointFlags& f) {
  std::vector<std::string> endpoints;
  Status s = ResolveEndpoints(ctx, f.cluster, &endpoints);
  if (!s.ok()) return s;
  bool failed = false;
  std::vector<EndpointStatus> list = QueryEach<EndpointStatus>(
      ctx, endpoints, "Failed to get the status",
      [](Client& client, EndpointStatus* out) {
        auto rpc = client.NewContext();
        return RpcError(client.maintenance().Status(rpc.get(), {}, &out->response));
      },
      &failed);
  s = MakePrinter(ctx)->EndpointStatusList(list);
  if (!s.ok()) return s;
  if (failed) return Status::Error(kExitError, "");
  return Status::Ok();
}

Status RunHashKV(Context& ctx, const EndpointFlags& f) {
  std::vector<std::string> endpoints;
  Status s = ResolveEndpoints(ctx, f.cluster, &endpoints);
  if (!s.ok()) return s;
  bool failed = false;
  const std::int64_t rev = f.rev;
  std::vector<EndpointHashKV> list = QueryEach<EndpointHashKV>(
      ctx, endpoints, "Failed to get the hash",
      [rev](Client& client, EndpointHashKV* out) {
        etcdserverpb::HashKVRequest req;
        req.set_revision(rev);
        auto rpc = client.NewContext();
        return RpcError(client.maintenance().HashKV(rpc.get(), req, &out->response));
      },
      &failed);
  s = MakePrinter(ctx)->EndpointHashKVList(list);
  if (!s.ok()) return s;
  if (failed) return Status::Error(kExitError, "");
  return Status::Ok();
}

}  // namespace

void RegisterEndpoint(CLI::App& root, Registry& registry) {
  CLI::App* endpoint = registry.AddCommand(&root, "endpoint", "Endpoint related commands",
                                           "kvctl endpoint status --cluster -w table");
  endpoint->require_subcommand(1);
  auto flags = std::make_shared<EndpointFlags>();
  endpoint->add_flag("--cluster", flags->cluster, "use all endpoints from the cluster member list");
  Context* ctx = &registry.context();
  CLI::App* health = registry.AddCommand(endpoint, "health",
                                         "Checks the healthiness of endpoints specified in "
                                         "`--endpoints` flag",
                                         "kvctl endpoint health --cluster");
  health->add_option("args", flags->args, "(none)");
  registry.SetAction(health, [ctx, flags] { return RunHealth(*ctx, *flags); });
  CLI::App* status = registry.AddCommand(endpoint, "status",
                                         "Prints out the status of endpoints specified in "
                                         "`--endpoints` flag",
                                         "kvctl endpoint status -w table");
  status->add_option("args", flags->args, "(none)");
  registry.SetAction(status, [ctx, flags] { return RunStatus(*ctx, *flags); });
  CLI::App* hashkv = registry.AddCommand(endpoint, "hashkv",
                                         "Prints the KV history hash for each endpoint in "
                                         "--endpoints",
                                         "kvctl endpoint hashkv --rev 100");
  hashkv->add_option("args", flags->args, "(none)");
  hashkv->add_option("--rev", flags->rev, "maximum revision to hash (default: all revisions)");
  registry.SetAction(hashkv, [ctx, flags] { return RunHashKV(*ctx, *flags); });
}

}  // namespace cli
