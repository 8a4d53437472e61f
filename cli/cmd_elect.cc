// kvctl elect NAME [PROPOSAL] / elect -l NAME: etcdctl's `elect`. Campaigns (holding
// leadership until interrupted), or observes and prints every new leader.
#include <thread>

#include "cli/lock_elect.h"
#include "cli/session.h"

namespace cli {
namespace {

struct ElectFlags {
  std::vector<std::string> args;
  bool listen = false;
  std::int64_t ttl = 60;
};

Status PrintKey(Context& ctx, Client& client, const std::string& key) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  etcdserverpb::RangeResponse resp;
  auto rpc = client.NewContext();
  Status s = RpcError(client.kv().Range(rpc.get(), req, &resp));
  if (!s.ok()) return s;
  s = MakePrinter(ctx)->Get(resp);
  ctx.out->flush();
  return s;
}

// The current leader: the first-created key under the prefix, if any.
Status Leader(Client& client, const std::string& pfx, etcdserverpb::RangeResponse* resp) {
  etcdserverpb::RangeRequest req;
  req.set_key(pfx);
  req.set_range_end(PrefixRangeEnd(pfx));
  req.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  req.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  req.set_limit(1);
  auto rpc = client.NewContext();
  return RpcError(client.kv().Range(rpc.get(), req, resp));
}

Status Observe(Context& ctx, Client& client, const std::string& name) {
  const std::string pfx = name + "/";
  // Each round waits for a leader, prints it, then waits for its key to be deleted; it ends
  // on SIGINT/SIGTERM.
  while (!InterruptFlag().load()) {
    etcdserverpb::RangeResponse leader;
    Status s = Leader(client, pfx, &leader);
    if (!s.ok()) return s;
    if (leader.kvs_size() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    s = MakePrinter(ctx)->Get(leader);
    ctx.out->flush();
    if (!s.ok()) return s;
    s = WaitDelete(client, leader.kvs(0).key(), leader.header().revision(), InterruptFlag());
    if (!s.ok() && !InterruptFlag().load()) return s;
  }
  return Status::Ok();
}

Status RunElect(Context& ctx, const ElectFlags& f) {
  if (f.args.empty() || f.args.size() > 2) {
    return Status::Error(kExitBadArgs,
                         "elect takes one election name argument and an optional "
                         "proposal argument");
  }
  if (f.listen && f.args.size() == 2) {
    return Status::Error(kExitBadArgs, "proposal given but -l is set");
  }
  if (!f.listen && f.args.size() == 1) {
    return Status::Error(kExitBadArgs, "no proposal argument but -l not set");
  }
  InterruptFlag();
  auto client = DialGlobal(ctx);
  if (f.listen) return Observe(ctx, *client, f.args[0]);
  Session session(*client);
  Status s = session.Open(f.ttl);
  if (!s.ok()) return s;
  std::string key;
  std::int64_t revision = 0;
  s = AcquireOrdered(*client, session, f.args[0], f.args[1], &key, &revision);
  if (!s.ok()) return s;
  s = PrintKey(ctx, *client, key);
  if (!s.ok()) return s;
  while (!InterruptFlag().load() && !session.expired()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (session.expired()) return Status::Error(kExitError, "session expired");
  // Resign: delete our key so the next candidate takes over.
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(key);
  etcdserverpb::DeleteRangeResponse resp;
  auto rpc = client->NewContext();
  s = RpcError(client->kv().DeleteRange(rpc.get(), del, &resp));
  session.Close();
  return s;
}

}  // namespace

void RegisterElect(CLI::App& root, Registry& registry) {
  auto flags = std::make_shared<ElectFlags>();
  CLI::App* cmd =
      registry.AddCommand(&root, "elect", "Observes and participates in leader election",
                          "kvctl elect scheduler node-a   # or: kvctl elect -l scheduler");
  cmd->add_option("args", flags->args, "<election-name> [proposal]");
  cmd->add_flag("-l,--listen", flags->listen, "observation mode");
  cmd->add_option("--ttl", flags->ttl, "timeout for session")->capture_default_str();
  Context* ctx = &registry.context();
  registry.SetAction(cmd, [ctx, flags] { return RunElect(*ctx, *flags); });
}

}  // namespace cli
