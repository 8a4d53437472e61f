// kvctl txn: etcdctl's `txn`, reading the script from stdin (prompts with -i).
#include "cli/commands.h"
#include "cli/txn_parser.h"

namespace cli {
namespace {

struct TxnFlags {
  std::vector<std::string> args;
  bool interactive = false;
};

Status RunTxn(Context& ctx, const TxnFlags& f) {
  if (!f.args.empty()) return Status::Error(kExitBadArgs, "txn command does not accept argument");
  etcdserverpb::TxnRequest req;
  Status s = ParseTxnScript(*ctx.in, f.interactive ? ctx.out : nullptr, &req);
  if (!s.ok()) return s;
  auto client = DialGlobal(ctx);
  etcdserverpb::TxnResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->kv().Txn(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->Txn(resp);
}

}  // namespace

void RegisterTxn(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<TxnFlags>();
  CLI::App* cmd = registry.AddCommand(
      &root, "txn", "Txn processes all the requests in one transaction",
      "printf 'mod(\"/app/a\") > \"0\"\\n\\nput /app/a 1\\n\\nput /app/b 2\\n\\n' | kvctl txn");
  cmd->add_option("args", flags->args, "(none)");
  cmd->add_flag("-i,--interactive", flags->interactive, "Input transaction in interactive mode");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunTxn(*ctx, *flags); });
}

}  // namespace cli
