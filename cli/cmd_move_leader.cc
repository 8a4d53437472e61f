// kvctl move-leader: etcdctl's `move-leader` (Status on each endpoint to find the leader,
// then MoveLeader on the leader's connection).
#include "cli/commands.h"

namespace cli {
namespace {

struct MoveLeaderFlags {
  std::vector<std::string> args;
};

Status RunMoveLeader(Context& ctx, const MoveLeaderFlags& f) {
  if (f.args.size() != 1)
    return Status::Error(kExitBadArgs, "move-leader command needs 1 argument");
  auto target = ParseHexId(f.args[0]);
  if (!target) {
    return Status::Error(kExitBadArgs, "bad leader ID arg (strconv.ParseUint: parsing \"" +
                                           f.args[0] + "\": invalid syntax), expecting ID in Hex");
  }
  std::uint64_t leader_id = 0;
  std::unique_ptr<Client> leader;
  for (const auto& ep : ctx.global.endpoints) {
    auto client = Client::Dial({ep}, ctx.global.dial_timeout, ctx.global.command_timeout);
    etcdserverpb::StatusResponse status;
    auto rpc = client->NewContext();
    Status s = RpcError(client->maintenance().Status(rpc.get(), {}, &status));
    if (!s.ok()) return Status::Error(kExitError, s.message);
    if (status.header().member_id() == status.leader()) {
      leader_id = status.leader();
      leader = std::move(client);
      break;
    }
  }
  if (!leader) {
    std::string list;
    for (const auto& e : ctx.global.endpoints) list += (list.empty() ? "" : " ") + e;
    return Status::Error(kExitError, "no leader endpoint given at [" + list + "]");
  }
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(*target);
  etcdserverpb::MoveLeaderResponse resp;
  auto rpc = leader->NewContext();
  Status s = RpcError(leader->maintenance().MoveLeader(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->MoveLeader(leader_id, *target, resp);
}

}  // namespace

void RegisterMoveLeader(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<MoveLeaderFlags>();
  CLI::App* cmd = registry.AddCommand(
      &root, "move-leader", "Transfers leadership to another etcd cluster member.",
      "kvctl --endpoints=a:2379,b:2379 move-leader 8e9e05c52164694d");
  cmd->add_option("args", flags->args, "<transferee-member-id>");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunMoveLeader(*ctx, *flags); });
}

}  // namespace cli
