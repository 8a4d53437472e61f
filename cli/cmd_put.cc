// kvctl put: etcdctl's `put` (one KV/Put); the value comes from stdin when omitted.
#include "cli/commands.h"
#include "cli/requests.h"

namespace cli {
namespace {

// The server rejects larger requests anyway (1.5 MiB by default); stop reading early.
constexpr std::size_t kStdinValueBytesMax = 2 * 1024 * 1024;

Status RunPut(Context& ctx, const PutArgs& f) {
  std::string stdin_value;
  const std::string* from_stdin = nullptr;
  if (f.args.size() == 1 && !f.ignore_value) {
    if (!ReadAllBounded(*ctx.in, kStdinValueBytesMax, &stdin_value)) {
      return Status::Error(kExitBadArgs, "value from stdin is larger than 2 MiB");
    }
    from_stdin = &stdin_value;
  }
  etcdserverpb::PutRequest req;
  Status s = BuildPut(f, from_stdin, &req);
  if (!s.ok()) return s;
  auto client = DialGlobal(ctx);
  etcdserverpb::PutResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->kv().Put(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  return MakePrinter(ctx)->Put(resp);
}

}  // namespace

void RegisterPut(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<PutArgs>();
  CLI::App* cmd =
      registry.AddCommand(&root, "put", "Puts the given key into the store",
                          "kvctl put /app/port 8080   # or: echo 8080 | kvctl put /app/port");
  cmd->add_option("args", flags->args, "<key> <value>");
  cmd->add_option("--lease", flags->lease, "lease ID (in hexadecimal) to attach to the key");
  cmd->add_flag("--prev-kv", flags->prev_kv,
                "return the previous key-value pair before modification");
  cmd->add_flag("--ignore-value", flags->ignore_value, "updates the key using its current value");
  cmd->add_flag("--ignore-lease", flags->ignore_lease, "updates the key using its current lease");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunPut(*ctx, *flags); });
}

}  // namespace cli
