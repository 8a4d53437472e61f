// kvctl endpoint health|status|hashkv [--cluster]: etcdctl's `endpoint` commands, one
// connection per endpoint.
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
  std::vector<EndpointHealth> list;
  bool unhealthy = false;
  for (const auto& ep : endpoints) {
    auto client = Client::Dial({ep}, ctx.global.dial_timeout, ctx.global.command_timeout);
    auto start = std::chrono::steady_clock::now();
    etcdserverpb::RangeRequest req;
    req.set_key("health");
    etcdserverpb::RangeResponse resp;
    auto rpc = client->NewContext();
    grpc::Status st = client->kv().Range(rpc.get(), req, &resp);
    EndpointHealth h;
    h.endpoint = ep;
    h.took = std::chrono::steady_clock::now() - start;
    // A permission error still proves the member can commit (etcdctl's rule).
    if (!st.ok() && st.error_code() != grpc::StatusCode::PERMISSION_DENIED) {
      h.error = RpcError(st).message;
      unhealthy = true;
    }
    h.healthy = h.error.empty();
    list.push_back(h);
  }
  s = MakePrinter(ctx)->EndpointHealthList(list);
  if (!s.ok()) return s;
  if (unhealthy) return Status::Error(kExitError, "unhealthy cluster");
  return Status::Ok();
}

Status RunStatus(Context& ctx, const EndpointFlags& f) {
  std::vector<std::string> endpoints;
  Status s = ResolveEndpoints(ctx, f.cluster, &endpoints);
  if (!s.ok()) return s;
  std::vector<EndpointStatus> list;
  bool failed = false;
  for (const auto& ep : endpoints) {
    auto client = Client::Dial({ep}, ctx.global.dial_timeout, ctx.global.command_timeout);
    EndpointStatus status;
    status.endpoint = ep;
    auto rpc = client->NewContext();
    Status rs = RpcError(client->maintenance().Status(rpc.get(), {}, &status.response));
    if (!rs.ok()) {
      *ctx.err << "Failed to get the status of endpoint " << ep << " (" << rs.message << ")\n";
      failed = true;
      continue;
    }
    list.push_back(std::move(status));
  }
  s = MakePrinter(ctx)->EndpointStatusList(list);
  if (!s.ok()) return s;
  if (failed) return Status::Error(kExitError, "");
  return Status::Ok();
}

Status RunHashKV(Context& ctx, const EndpointFlags& f) {
  std::vector<std::string> endpoints;
  Status s = ResolveEndpoints(ctx, f.cluster, &endpoints);
  if (!s.ok()) return s;
  std::vector<EndpointHashKV> list;
  bool failed = false;
  for (const auto& ep : endpoints) {
    auto client = Client::Dial({ep}, ctx.global.dial_timeout, ctx.global.command_timeout);
    EndpointHashKV hash;
    hash.endpoint = ep;
    etcdserverpb::HashKVRequest req;
    req.set_revision(f.rev);
    auto rpc = client->NewContext();
    Status rs = RpcError(client->maintenance().HashKV(rpc.get(), req, &hash.response));
    if (!rs.ok()) {
      *ctx.err << "Failed to get the hash of endpoint " << ep << " (" << rs.message << ")\n";
      failed = true;
      continue;
    }
    list.push_back(std::move(hash));
  }
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
