// kvctl compaction: etcdctl's `compaction` (KV/Compact).
#include <charconv>

#include "cli/commands.h"

namespace cli {
namespace {

struct CompactionFlags {
  std::vector<std::string> args;
  bool physical = false;
};

Status RunCompaction(Context& ctx, const CompactionFlags& f) {
  if (f.args.size() != 1) return Status::Error(kExitBadArgs, "compaction command needs 1 argument");
  const std::string& text = f.args[0];
  std::int64_t rev = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), rev);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) {
    return Status::Error(kExitError, "strconv.ParseInt: parsing \"" + text + "\": invalid syntax");
  }
  etcdserverpb::CompactionRequest req;
  req.set_revision(rev);
  req.set_physical(f.physical);
  auto client = DialGlobal(ctx);
  etcdserverpb::CompactionResponse resp;
  auto rpc = client->NewContext();
  Status s = RpcError(client->kv().Compact(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  *ctx.out << "compacted revision " << rev << "\n";
  return Status::Ok();
}

}  // namespace

void RegisterCompaction(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<CompactionFlags>();
  CLI::App* cmd = registry.AddCommand(&root, "compaction", "Compacts the event history in etcd",
                                      "kvctl compaction --physical 1234");
  cmd->add_option("args", flags->args, "<revision>");
  cmd->add_flag("--physical", flags->physical,
                "'true' to wait for compaction to physically remove all old revisions");
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunCompaction(*ctx, *flags); });
}

}  // namespace cli
