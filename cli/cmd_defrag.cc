// kvctl defrag [--cluster]: etcdctl's `defrag` (Maintenance/Defragment per endpoint).
#include "cli/commands.h"
#include "cli/endpoints.h"

namespace cli {
namespace {

struct DefragFlags {
  std::vector<std::string> args;
  bool cluster = false;
};

Status RunDefrag(Context& ctx, const DefragFlags& f) {
  std::vector<std::string> endpoints;
  Status s = ResolveEndpoints(ctx, f.cluster, &endpoints);
  if (!s.ok()) return s;
  bool failed = false;
  for (const auto& ep : endpoints) {
    auto client = Client::Dial({ep}, ctx.global.dial_timeout, ctx.global.command_timeout);
    etcdserverpb::DefragmentResponse resp;
    auto rpc = client->NewContext();
    Status rs = RpcError(client->maintenance().Defragment(rpc.get(), {}, &resp));
    if (!rs.ok()) {
      *ctx.err << "Failed to defragment etcd member[" << ep << "] (" << rs.message << ")\n";
      failed = true;
      continue;
    }
    *ctx.out << "Finished defragmenting etcd member[" << ep << "]\n";
  }
  if (failed) return Status::Error(kExitError, "");
  return Status::Ok();
}

}  // namespace

void RegisterDefrag(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<DefragFlags>();
  CLI::App* cmd = registry.AddCommand(&root, "defrag",
                                      "Defragments the storage of the etcd members with given "
                                      "endpoints",
                                      "kvctl defrag --cluster");
  cmd->add_option("args", flags->args, "(none)");
  cmd->add_flag("--cluster", flags->cluster, "use all endpoints from the cluster member list");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunDefrag(*ctx, *flags); });
}

}  // namespace cli
