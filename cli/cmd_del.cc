// kvctl del: etcdctl's `del` (one KV/DeleteRange).
#include "cli/commands.h"
#include "cli/requests.h"

namespace cli {
namespace {

Status RunDel(Context& ctx, const DelArgs& f) {
  etcdserverpb::DeleteRangeRequest req;
  Status s = BuildDelete(f, &req);
  if (!s.ok()) return s;
  auto client = DialGlobal(ctx);
  etcdserverpb::DeleteRangeResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->kv().DeleteRange(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->Del(resp);
}

}  // namespace

void RegisterDel(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<DelArgs>();
  CLI::App* cmd = registry.AddCommand(&root, "del",
                                      "Removes the specified key or range of keys [key, range_end)",
                                      "kvctl del --prefix /app/old/");
  cmd->add_option("args", flags->args, "<key> [range_end]");
  cmd->add_flag("--prefix", flags->prefix, "delete keys with matching prefix");
  cmd->add_flag("--from-key", flags->from_key,
                "delete keys that are greater than or equal to the given key using byte compare");
  cmd->add_flag("--prev-kv", flags->prev_kv, "return deleted key-value pairs");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunDel(*ctx, *flags); });
}

}  // namespace cli
