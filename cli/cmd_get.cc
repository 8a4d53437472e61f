// kvctl get: etcdctl's `get` (one KV/Range).
#include "cli/commands.h"
#include "cli/requests.h"

namespace cli {
namespace {

Status RunGet(Context& ctx, const GetArgs& f) {
  etcdserverpb::RangeRequest req;
  Status s = BuildRange(f, &req);
  if (!s.ok()) return s;
  auto client = DialGlobal(ctx);
  etcdserverpb::RangeResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->kv().Range(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  if (f.count_only && ctx.global.write_out == OutputFormat::kSimple) {
    // etcdctl 3.5's spelling; 3.4.23 has no --count-only.
    *ctx.out << resp.count() << "\n";
    return Status::Ok();
  }
  return MakePrinter(ctx, f.print_value_only)->Get(resp);
}

}  // namespace

void RegisterGet(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<GetArgs>();
  CLI::App* cmd = registry.AddCommand(&root, "get", "Gets the key or a range of keys",
                                      "kvctl get --prefix /app/ --sort-by=MODIFY --order=DESCEND");
  cmd->add_option("args", flags->args, "<key> [range_end]");
  cmd->add_option("--consistency", flags->consistency, "Linearizable(l) or Serializable(s)");
  cmd->add_option("--order", flags->order, "Order of results; ASCEND or DESCEND");
  cmd->add_option("--sort-by", flags->sort_by,
                  "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION");
  cmd->add_flag("--prefix", flags->prefix, "Get keys with matching prefix");
  cmd->add_flag("--from-key", flags->from_key,
                "Get keys that are greater than or equal to the given key using byte compare");
  cmd->add_option("--limit", flags->limit, "Maximum number of results");
  cmd->add_option("--rev", flags->rev, "Specify the kv revision");
  cmd->add_flag("--keys-only", flags->keys_only, "Get only the keys");
  cmd->add_flag("--count-only", flags->count_only,
                "Get only the count (etcd 3.5 flag; not in etcdctl 3.4)");
  cmd->add_flag("--print-value-only", flags->print_value_only,
                "Only write values when using the \"simple\" output format");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunGet(*ctx, *flags); });
}

}  // namespace cli
